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

use barycenter_jobs_benches::history::{self, JOBS, job_name};
use barycenter_jobs_benches::{Args, Summary, Table, f, ms};
use barycenter_jobs_core::sea_query::Index;
use barycenter_jobs_core::{
    Backend, Database, ExecutionQuery, ExecutionStore, Identifier, TableNames,
};
use barycenter_jobs_test_support::raw;

/// Builds the i-th query of one kind.
type QueryFn = Box<dyn Fn(usize) -> ExecutionQuery>;

fn main() {
    let args = Args::from_env();
    let rows: i64 = args.parsed("--rows", if args.quick() { 100_000 } else { 1_000_000 });
    let iters: usize = args.parsed("--iters", if args.quick() { 50 } else { 200 });
    let rt = barycenter_jobs_benches::runtime();
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
    for backend in barycenter_jobs_benches::backends(&args) {
        rt.block_on(bench_db(backend, rows, iters, &mut t));
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
        fleet: Identifier::new(format!("{name}_fleet")).expect("ident"),
        logs: Identifier::new(format!("{name}_logs")).expect("ident"),
        alerts: Identifier::new(format!("{name}_alerts")).expect("ident"),
    }
}

async fn bench_db(backend: Backend, rows: i64, iters: usize, t: &mut Table) {
    // A fresh database, dropped at the end.
    let fresh = barycenter_jobs_benches::fresh_database(backend).await;
    fresh.db.close().await;
    let url = fresh.url.clone();
    let db = Database::connect_with_max(&url, 2).await.expect("connect");
    let ours = ExecutionStore::with_tables(db.clone(), tables("job_executions"));
    let bary = ExecutionStore::with_tables(db.clone(), tables("bary_executions"));
    ours.migrate().await.expect("migrate");
    bary.migrate().await.expect("migrate");
    let started = Instant::now();
    history::fill(&db, "job_executions", rows).await;
    history::copy(&db, "job_executions", "bary_executions").await;
    for idx in [
        "bary_executions_job_id_idx",
        "bary_executions_success_id_idx",
        "bary_executions_job_success_id_idx",
    ] {
        db.execute_schema(Index::drop().name(idx))
            .await
            .expect("drop index");
    }
    raw(&db, "ANALYZE").await;
    let failures = history::failures(&db, "job_executions").await;
    println!(
        "{}: {rows} rows ({failures} failed) in each table, filled in {:.1} s",
        barycenter_jobs_benches::label(backend),
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
    let label = barycenter_jobs_benches::label(backend);
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
    job_name(i as i64)
}
