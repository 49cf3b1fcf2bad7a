//! Figure 3: `jobLogs(limit: 100)` against a history of 1,000,000 runs.
//!
//! `job_executions` holds `--rows` runs (default 1,000,000) of 20 jobs, about 2% failed,
//! created by our migrations (indexes on `(job_name, id)`, `(success, id)`, `started_at` and,
//! from migration 7, `(job_name, success, id)`). A second table, `bary_executions`, holds the
//! same rows with Barycenter's index set: the same migrations, then the three extra indexes
//! dropped, so only `started_at` is indexed. Both are queried through the same
//! `ExecutionStore::list` SQL, alternating, on SQLite and PostgreSQL, for every filter
//! combination: none, by job name, failures only (all jobs), and failures of one job. The
//! goal (p50 ≤ 2 ms for each combination, ours) is printed met/missed.
//!
//! ```text
//! cargo bench -p barycenter-jobs-benches --bench history -- [--quick] [--rows N] [--iters N] [--db sqlite|postgres|all]
//! ```

use std::time::Instant;

use barycenter_jobs_benches::{Args, Summary, Table, f, ms};
use barycenter_jobs_core::{Database, ExecutionQuery, ExecutionStore, Identifier, TableNames};
use barycenter_jobs_test_support::raw;
use sqlx::AssertSqlSafe;

const JOBS: i64 = 20;

/// Builds the i-th query of one kind.
type QueryFn = Box<dyn Fn(usize) -> ExecutionQuery>;

fn main() {
    let args = Args::from_env();
    let rows: i64 = args.parsed("--rows", if args.quick() { 100_000 } else { 1_000_000 });
    let iters: usize = args.parsed("--iters", if args.quick() { 50 } else { 200 });
    let dbs: Vec<&str> = match args.value("--db").unwrap_or("all") {
        "sqlite" => vec!["sqlite"],
        "postgres" => vec!["postgres"],
        _ => vec!["sqlite", "postgres"],
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "# execution history at scale: {}",
        barycenter_jobs_benches::machine_line()
    );
    println!(
        "{rows} runs of {JOBS} jobs, ~2% failed; {iters} queries per cell, limit 100, through ExecutionStore::list\n"
    );
    let mut t = Table::new(&[
        "database",
        "indexes",
        "query",
        "p50 ms",
        "p99 ms",
        "max ms",
        "rows returned",
        "p50 vs Barycenter's",
        "goal p50 ≤ 2 ms (ours)",
    ]);
    for db in dbs {
        rt.block_on(bench_db(db, rows, iters, &mut t));
    }
    t.print();
}

fn tables(name: &str) -> TableNames {
    TableNames {
        executions: Identifier::new(name).expect("ident"),
        leases: Identifier::new(format!("{name}_leases")).expect("ident"),
        settings: Identifier::new(format!("{name}_settings")).expect("ident"),
        audit: Identifier::new(format!("{name}_audit")).expect("ident"),
        registry: Identifier::new(format!("{name}_registry")).expect("ident"),
    }
}

async fn bench_db(kind: &str, rows: i64, iters: usize, t: &mut Table) {
    // A fresh database (test support's, as the tests use), dropped at the end.
    let fresh = match kind {
        "sqlite" => barycenter_jobs_test_support::sqlite().await,
        _ => {
            barycenter_jobs_test_support::postgres_on(&barycenter_jobs_benches::postgres_url())
                .await
        }
    };
    fresh.db.close().await;
    let url = fresh.url.clone();
    let db = Database::connect_with_max(&url, 2).await.expect("connect");
    let ours = ExecutionStore::with_tables(db.clone(), tables("job_executions"));
    let bary = ExecutionStore::with_tables(db.clone(), tables("bary_executions"));
    ours.migrate().await.expect("migrate");
    bary.migrate().await.expect("migrate");
    let started = Instant::now();
    let base_ts = chrono::Utc::now().timestamp() - rows;
    let cols = "job_name, started_at, completed_at, success, error_message, records_processed, status, trigger_kind, instance, duration_ms, scheduled_for";
    let fill = match kind {
        "sqlite" => format!(
            "INSERT INTO job_executions ({cols})
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last}),
                  r(i, failed) AS (SELECT i, abs(random()) % 50 = 0 FROM n)
             SELECT 'job_' || printf('%02d', i % {JOBS}), {base_ts} + i, {base_ts} + i + 1,
                    CASE WHEN failed THEN 0 ELSE 1 END, CASE WHEN failed THEN 'boom' END,
                    CASE WHEN failed THEN NULL ELSE i % 100 END,
                    CASE WHEN failed THEN 'failed' ELSE 'succeeded' END, 'scheduled', 'bench', 5, {base_ts} + i
             FROM r",
            last = rows - 1
        ),
        _ => format!(
            "INSERT INTO job_executions ({cols})
             SELECT 'job_' || lpad((i % {JOBS})::text, 2, '0'), {base_ts} + i, {base_ts} + i + 1,
                    CASE WHEN failed THEN 0 ELSE 1 END, CASE WHEN failed THEN 'boom' END,
                    CASE WHEN failed THEN NULL ELSE i % 100 END,
                    CASE WHEN failed THEN 'failed' ELSE 'succeeded' END, 'scheduled', 'bench', 5, {base_ts} + i
             FROM (SELECT i, random() < 0.02 AS failed FROM generate_series(0, {last}) AS g(i)) AS r",
            last = rows - 1
        ),
    };
    raw(&db, &fill).await;
    raw(
        &db,
        &format!(
            "INSERT INTO bary_executions ({cols}) SELECT {cols} FROM job_executions ORDER BY id"
        ),
    )
    .await;
    for idx in [
        "bary_executions_job_id_idx",
        "bary_executions_success_id_idx",
        "bary_executions_job_success_id_idx",
    ] {
        raw(&db, &format!("DROP INDEX {idx}")).await;
    }
    raw(&db, "ANALYZE").await;
    let failures: i64 = scalar(&db, "SELECT count(*) FROM job_executions WHERE success = 0").await;
    println!(
        "{kind}: {rows} rows ({failures} failed) in each table, filled in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let queries: [(&str, QueryFn); 4] = [
        ("no filter", Box::new(|_| ExecutionQuery::new().limit(100))),
        (
            "by job name",
            Box::new(|i| ExecutionQuery::new().job(job(i)).limit(100)),
        ),
        (
            "onlyFailures",
            Box::new(|_| ExecutionQuery::new().failures().limit(100)),
        ),
        (
            "job name + onlyFailures",
            Box::new(|i| ExecutionQuery::new().job(job(i)).failures().limit(100)),
        ),
    ];
    let label = if kind == "sqlite" {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    for (qname, q) in &queries {
        let mut lat: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut returned = [0usize; 2];
        for i in 0..iters + 5 {
            for (k, store) in [&ours, &bary].into_iter().enumerate() {
                let query = q(i);
                let t0 = Instant::now();
                let got = store.list(&query).await.expect("list");
                let took = ms(t0.elapsed());
                if i >= 5 {
                    lat[k].push(took);
                    returned[k] = got.len();
                }
            }
        }
        let s_ours = Summary::of(&mut lat[0]);
        let s_bary = Summary::of(&mut lat[1]);
        let goal = if s_ours.p50 <= 2.0 { "met" } else { "MISSED" };
        for (name, s, n, ratio, goal) in [
            (
                "ours (migrations)",
                s_ours,
                returned[0],
                f(s_ours.p50 / s_bary.p50, 3),
                goal,
            ),
            (
                "Barycenter's (started_at only)",
                s_bary,
                returned[1],
                "1".to_owned(),
                "",
            ),
        ] {
            t.row(&[
                label.to_owned(),
                name.to_owned(),
                (*qname).to_owned(),
                f(s.p50, 3),
                f(s.p99, 3),
                f(s.max, 3),
                n.to_string(),
                ratio,
                goal.to_owned(),
            ]);
        }
    }
    db.close().await;
    drop(fresh);
}

fn job(i: usize) -> String {
    format!("job_{:02}", i as i64 % JOBS)
}

async fn scalar(db: &Database, sql: &str) -> i64 {
    let sql = sql.to_owned();
    match db {
        Database::Sqlite(p) => sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(p).await,
        Database::Postgres(p) => sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(p).await,
        _ => unreachable!("sqlite and postgres only"),
    }
    .expect("scalar")
}
