//! Figure 1: cleanup of expired sessions under a host workload.
//!
//! A `sessions` table in Barycenter's layout with an index on `expires_at`, `--rows` rows
//! (default 2,000,000) of which half are expired, randomly interleaved (rows are inserted in
//! random order). The table is built once per database into a template, and each run starts
//! from a fresh copy of it. During each run a host workload goes on: one connection inserting
//! 200 sessions per second on a fixed timetable (latency counted from the time each insert was
//! due, so waiting behind a lock counts), and one looking up random live sessions as fast as it
//! can. Then either (a) one plain `DELETE FROM sessions WHERE expires_at < ?`, as Barycenter
//! does, or (b) the builtin `cleanup_expired_sessions` job through `Job::run` runs.
//!
//! The longest statement of (b) is what the job's own `BatchedDelete` measured around each
//! statement, read from its `tracing` events (`batch` at trace level, `batched delete done` at
//! debug level); for (a) it is the time of the one DELETE.
//!
//! An extra row (c) runs the same job with a longer pause between batches
//! (`Batching::pause_ms`, `--extra-pause-ms`, default 20; 0 turns it off), to show what the
//! pause does to the host's inserts.
//!
//! `--batching JSON` runs (b) with other [`Batching`] settings (for instance
//! `'{"target_statement_ms": 8}'`), to try a trade-off without editing the library.
//!
//! ```text
//! cargo bench -p barycenter-jobs-benches --bench cleanup -- [--quick] [--rows N] [--rounds N] [--db sqlite|postgres|all] [--extra-pause-ms N] [--batching JSON]
//! ```

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use barycenter_jobs_benches::{Args, Summary, Table, f, median, ms};
use barycenter_jobs_builtin::{Batching, SessionsCleanup};
use barycenter_jobs_core::{CancellationToken, Database, Job, JobContext, SystemClock, Trigger};
use rand::Rng as _;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Connection as _};

/// Inserts per second of the host workload.
const INSERTS_PER_SEC: u64 = 200;
/// Live session ids the lookup connection picks from.
const LOOKUP_SAMPLE: i64 = 10_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    fn label(self) -> &'static str {
        match self {
            Db::Sqlite => "SQLite (WAL file)",
            Db::Postgres => "PostgreSQL",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Plain,
    Ours,
    /// The same job with `Batching::pause_ms` set to the given value.
    Paused(u64),
}

fn main() {
    let args = Args::from_env();
    let rows: i64 = args.parsed("--rows", if args.quick() { 200_000 } else { 2_000_000 });
    let rounds: usize = args.parsed("--rounds", 1);
    // Extra row: the job with a longer pause between batches (0 = no extra row).
    let pause_ms: u64 = args.parsed("--extra-pause-ms", 20);
    let batching: Batching = args
        .value("--batching")
        .map_or_else(Batching::default, |json| {
            serde_json::from_str(json).expect("--batching: Batching settings as JSON")
        });
    let dbs = match args.value("--db").unwrap_or("all") {
        "sqlite" => vec![Db::Sqlite],
        "postgres" => vec![Db::Postgres],
        _ => vec![Db::Sqlite, Db::Postgres],
    };
    let capture = Arc::new(Capture::default());
    tracing::subscriber::set_global_default(CaptureSubscriber(capture.clone()))
        .expect("no other subscriber");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "# cleanup under load: {}",
        barycenter_jobs_benches::machine_line()
    );
    println!(
        "{rows} sessions, {} expired, randomly interleaved; host workload: {INSERTS_PER_SEC} inserts/s on one connection, lookups of random live sessions flat out on another; {rounds} round(s), medians\n",
        rows / 2
    );
    for db in dbs {
        rt.block_on(bench_db(db, rows, rounds, pause_ms, &batching, &capture));
    }
}

#[derive(Debug, Clone, Default)]
struct RunResult {
    total: Duration,
    deleted: u64,
    statements: u64,
    longest_statement: Duration,
    statement_p50: f64,
    insert: Summary,
    inserts_failed: usize,
    lookup: Summary,
    lookups_per_sec: f64,
    left_expired: i64,
}

async fn bench_db(
    db: Db,
    rows: i64,
    rounds: usize,
    pause_ms: u64,
    batching: &Batching,
    capture: &Arc<Capture>,
) {
    let dir = std::env::temp_dir().join(format!("barycenter-bench-cleanup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pg_base = barycenter_jobs_benches::postgres_url();
    let now = chrono::Utc::now().timestamp();
    let started = Instant::now();
    match db {
        Db::Sqlite => build_sqlite_template(&dir.join("template.db"), rows, now).await,
        Db::Postgres => build_pg_template(&pg_base, rows, now).await,
    }
    println!(
        "{}: table of {rows} rows built in {:.1} s",
        db.label(),
        started.elapsed().as_secs_f64()
    );

    let mut results: Vec<(Mode, RunResult)> = Vec::new();
    for round in 0..rounds {
        let mut modes = vec![Mode::Plain, Mode::Ours];
        if pause_ms > 0 && pause_ms != 2 {
            modes.push(Mode::Paused(pause_ms));
        }
        for mode in modes {
            let r = run_once(db, mode, &dir, &pg_base, batching, capture).await;
            println!(
                "  round {} {:?}: {:.2} s, longest statement {:.1} ms, insert p99 {:.1} ms, failed inserts {}",
                round + 1,
                mode,
                r.total.as_secs_f64(),
                ms(r.longest_statement),
                r.insert.p99,
                r.inserts_failed
            );
            results.push((mode, r));
        }
    }
    let pick = |m: Mode| -> Vec<&RunResult> {
        results
            .iter()
            .filter(|(k, _)| *k == m)
            .map(|(_, r)| r)
            .collect()
    };
    let med = |rs: &[&RunResult], g: &dyn Fn(&RunResult) -> f64| {
        median(&rs.iter().map(|r| g(r)).collect::<Vec<_>>())
    };
    let plain = pick(Mode::Plain);
    let ours = pick(Mode::Ours);
    let plain_total = med(&plain, &|r| r.total.as_secs_f64());
    let mut t = Table::new(&[
        "cleanup",
        "total s",
        "ratio vs (a)",
        "longest stmt ms",
        "stmts",
        "stmt p50 ms",
        "deleted",
        "left expired",
        "insert p50 ms",
        "insert p99 ms",
        "insert max ms",
        "inserts",
        "failed inserts",
        "lookup p99 ms",
        "lookups/s",
    ]);
    let paused = pick(Mode::Paused(pause_ms));
    let paused_label = format!("(c) same job, pause_ms = {pause_ms}");
    for (label, rs) in [
        ("(a) one plain DELETE", &plain),
        ("(b) cleanup_expired_sessions", &ours),
        (paused_label.as_str(), &paused),
    ] {
        if rs.is_empty() {
            continue;
        }
        let total = med(rs, &|r| r.total.as_secs_f64());
        t.row(&[
            label.to_owned(),
            f(total, 2),
            f(total / plain_total, 2),
            f(med(rs, &|r| ms(r.longest_statement)), 1),
            f(med(rs, &|r| r.statements as f64), 0),
            f(med(rs, &|r| r.statement_p50), 1),
            f(med(rs, &|r| r.deleted as f64), 0),
            f(med(rs, &|r| r.left_expired as f64), 0),
            f(med(rs, &|r| r.insert.p50), 1),
            f(med(rs, &|r| r.insert.p99), 1),
            f(med(rs, &|r| r.insert.max), 1),
            f(med(rs, &|r| r.insert.count as f64), 0),
            f(med(rs, &|r| r.inserts_failed as f64), 0),
            f(med(rs, &|r| r.lookup.p99), 2),
            f(med(rs, &|r| r.lookups_per_sec), 0),
        ]);
    }
    println!("\n## {} — {rows} rows, {} expired\n", db.label(), rows / 2);
    t.print();

    let _ = std::fs::remove_dir_all(&dir);
    match db {
        Db::Sqlite => {}
        Db::Postgres => {
            let _ = barycenter_jobs_benches::drop_pg_database(&pg_base, "bench_cleanup").await;
            let _ = barycenter_jobs_benches::drop_pg_database(&pg_base, "bench_cleanup_tpl").await;
        }
    }
}

const SQLITE_DDL: &str = "CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    auth_time INTEGER,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    amr TEXT,
    acr TEXT,
    mfa_verified INTEGER NOT NULL DEFAULT 0
)";

async fn build_sqlite_template(path: &std::path::Path, rows: i64, now: i64) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Off)
        .pragma("cache_size", "-1000000");
    let mut c = sqlx::SqliteConnection::connect_with(&opts)
        .await
        .expect("sqlite");
    sqlx::query(SQLITE_DDL).execute(&mut c).await.expect("ddl");
    let fill = format!(
        "INSERT INTO sessions (session_id, subject, auth_time, created_at, expires_at, amr, acr)
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last})
         SELECT lower(hex(randomblob(16))), 'user-' || (i % 50000), {now} - 7200 - (i % 86400),
                {now} - 7200 - (i % 86400),
                CASE WHEN i < {expired} THEN {now} - 1 - abs(random() % 2592000)
                     ELSE {now} + 3600 + abs(random() % 2592000) END,
                '[\"pwd\"]', NULL
         FROM n ORDER BY random()",
        last = rows - 1,
        expired = rows / 2,
    );
    sqlx::query(AssertSqlSafe(fill))
        .execute(&mut c)
        .await
        .expect("fill");
    sqlx::query("CREATE INDEX idx_sessions_expires_at ON sessions (expires_at)")
        .execute(&mut c)
        .await
        .expect("index");
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut c)
        .await
        .expect("checkpoint");
    c.close().await.expect("close");
}

async fn build_pg_template(base: &str, rows: i64, now: i64) {
    barycenter_jobs_benches::drop_pg_database(base, "bench_cleanup")
        .await
        .expect("drop");
    barycenter_jobs_benches::recreate_pg_database(base, "bench_cleanup_tpl", None)
        .await
        .expect("create database");
    let url = barycenter_jobs_benches::postgres_db_url(base, "bench_cleanup_tpl");
    let mut c = sqlx::PgConnection::connect(&url).await.expect("pg");
    sqlx::query(AssertSqlSafe(SQLITE_DDL.replace("INTEGER", "BIGINT")))
        .execute(&mut c)
        .await
        .expect("ddl");
    let fill = format!(
        "INSERT INTO sessions (session_id, subject, auth_time, created_at, expires_at, amr, acr)
         SELECT md5(random()::text || i::text), 'user-' || (i % 50000), {now} - 7200 - (i % 86400),
                {now} - 7200 - (i % 86400),
                CASE WHEN i < {expired} THEN {now} - 1 - floor(random() * 2592000)::bigint
                     ELSE {now} + 3600 + floor(random() * 2592000)::bigint END,
                '[\"pwd\"]', NULL
         FROM generate_series(0, {last}) AS g(i) ORDER BY random()",
        last = rows - 1,
        expired = rows / 2,
    );
    sqlx::query(AssertSqlSafe(fill))
        .execute(&mut c)
        .await
        .expect("fill");
    sqlx::query("CREATE INDEX idx_sessions_expires_at ON sessions (expires_at)")
        .execute(&mut c)
        .await
        .expect("index");
    sqlx::query("VACUUM ANALYZE sessions")
        .execute(&mut c)
        .await
        .expect("vacuum");
    c.close().await.expect("close");
}

/// One connection of the host's workload.
#[derive(Clone)]
enum Host {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Host {
    async fn open(db: Db, url: &str) -> Self {
        match db {
            Db::Sqlite => {
                let opts = SqliteConnectOptions::from_str(url)
                    .expect("url")
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5));
                Host::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(1)
                        .connect_with(opts)
                        .await
                        .expect("sqlite pool"),
                )
            }
            Db::Postgres => Host::Postgres(
                PgPoolOptions::new()
                    .max_connections(1)
                    .connect(url)
                    .await
                    .expect("pg pool"),
            ),
        }
    }

    /// `?` placeholders for SQLite, `$n` for PostgreSQL.
    fn sql(&self, s: &str) -> String {
        match self {
            Host::Sqlite(_) => s.to_owned(),
            Host::Postgres(_) => {
                let mut out = String::new();
                let mut n = 0;
                for ch in s.chars() {
                    if ch == '?' {
                        n += 1;
                        out.push_str(&format!("${n}"));
                    } else {
                        out.push(ch);
                    }
                }
                out
            }
        }
    }

    async fn insert(&self, id: &str, now: i64) -> Result<(), sqlx::Error> {
        let sql = self.sql(
            "INSERT INTO sessions (session_id, subject, auth_time, created_at, expires_at, amr) VALUES (?, ?, ?, ?, ?, ?)",
        );
        macro_rules! run {
            ($p:expr) => {
                sqlx::query(AssertSqlSafe(sql))
                    .bind(id)
                    .bind("user-new")
                    .bind(now)
                    .bind(now)
                    .bind(now + 3600)
                    .bind("[\"pwd\"]")
                    .execute($p)
                    .await
                    .map(|_| ())
            };
        }
        match self {
            Host::Sqlite(p) => run!(p),
            Host::Postgres(p) => run!(p),
        }
    }

    async fn lookup(&self, id: &str) -> Result<bool, sqlx::Error> {
        let sql = self.sql("SELECT subject, expires_at FROM sessions WHERE session_id = ?");
        Ok(match self {
            Host::Sqlite(p) => sqlx::query(AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(p)
                .await?
                .is_some(),
            Host::Postgres(p) => sqlx::query(AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(p)
                .await?
                .is_some(),
        })
    }

    async fn plain_delete(&self, now: i64) -> Result<u64, sqlx::Error> {
        let sql = self.sql("DELETE FROM sessions WHERE expires_at < ?");
        Ok(match self {
            Host::Sqlite(p) => sqlx::query(AssertSqlSafe(sql))
                .bind(now)
                .execute(p)
                .await?
                .rows_affected(),
            Host::Postgres(p) => sqlx::query(AssertSqlSafe(sql))
                .bind(now)
                .execute(p)
                .await?
                .rows_affected(),
        })
    }

    async fn scalar(&self, sql: &str, now: i64) -> i64 {
        let sql = self.sql(sql);
        match self {
            Host::Sqlite(p) => {
                sqlx::query_scalar(AssertSqlSafe(sql))
                    .bind(now)
                    .fetch_one(p)
                    .await
            }
            Host::Postgres(p) => {
                sqlx::query_scalar(AssertSqlSafe(sql))
                    .bind(now)
                    .fetch_one(p)
                    .await
            }
        }
        .expect("scalar")
    }

    async fn live_sample(&self, now: i64) -> Vec<String> {
        let sql = self.sql(&format!(
            "SELECT session_id FROM sessions WHERE expires_at > ? ORDER BY random() LIMIT {LOOKUP_SAMPLE}"
        ));
        match self {
            Host::Sqlite(p) => {
                sqlx::query_scalar(AssertSqlSafe(sql))
                    .bind(now)
                    .fetch_all(p)
                    .await
            }
            Host::Postgres(p) => {
                sqlx::query_scalar(AssertSqlSafe(sql))
                    .bind(now)
                    .fetch_all(p)
                    .await
            }
        }
        .expect("sample")
    }

    async fn close(&self) {
        match self {
            Host::Sqlite(p) => p.close().await,
            Host::Postgres(p) => p.close().await,
        }
    }
}

async fn run_once(
    db: Db,
    mode: Mode,
    dir: &std::path::Path,
    pg_base: &str,
    batching: &Batching,
    capture: &Arc<Capture>,
) -> RunResult {
    // A fresh copy of the template, so (a) and (b) start from the same data.
    let url = match db {
        Db::Sqlite => {
            let run = dir.join("run.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", run.display()));
            }
            std::fs::copy(dir.join("template.db"), &run).expect("copy template");
            format!("sqlite://{}", run.display())
        }
        Db::Postgres => {
            barycenter_jobs_benches::recreate_pg_database(
                pg_base,
                "bench_cleanup",
                Some("bench_cleanup_tpl"),
            )
            .await
            .expect("copy template");
            let url = barycenter_jobs_benches::postgres_db_url(pg_base, "bench_cleanup");
            let mut c = sqlx::PgConnection::connect(&url).await.expect("pg");
            // The copy is WAL-logged; flush it now rather than during the measurement.
            sqlx::query("CHECKPOINT")
                .execute(&mut c)
                .await
                .expect("checkpoint");
            c.close().await.expect("close");
            url
        }
    };
    let inserter = Host::open(db, &url).await;
    let looker = Host::open(db, &url).await;
    let cleaner = Host::open(db, &url).await;
    let job_db = Database::connect_with_max(&url, 1)
        .await
        .expect("job database");
    let sample = Arc::new(looker.live_sample(chrono::Utc::now().timestamp()).await);
    // Warm the caches of the copy alike for both modes.
    let _ = looker
        .scalar(
            "SELECT count(*) FROM sessions WHERE expires_at < ?",
            chrono::Utc::now().timestamp(),
        )
        .await;

    let stop = Arc::new(AtomicBool::new(false));
    let origin = Instant::now();
    // (due offset, latency, ok)
    let inserts = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut out: Vec<(Duration, Duration, bool)> = Vec::new();
            let period = Duration::from_micros(1_000_000 / INSERTS_PER_SEC);
            let mut k: u32 = 0;
            while !stop.load(Ordering::Relaxed) {
                let due = origin + period * k;
                tokio::time::sleep_until(due.into()).await;
                let id = format!("new-{}-{k}", std::process::id());
                let ok = inserter
                    .insert(&id, chrono::Utc::now().timestamp())
                    .await
                    .is_ok();
                out.push((due - origin, due.elapsed(), ok));
                k += 1;
            }
            inserter.close().await;
            out
        }
    });
    let lookups = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut out: Vec<(Duration, Duration)> = Vec::new();
            let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(7);
            while !stop.load(Ordering::Relaxed) {
                let id = &sample[rng.random_range(0..sample.len())];
                let t = Instant::now();
                let _ = looker.lookup(id).await;
                out.push((t - origin, t.elapsed()));
            }
            looker.close().await;
            out
        }
    });

    tokio::time::sleep(Duration::from_secs(1)).await;
    capture.reset();
    let t0 = Instant::now();
    let (deleted, statements, longest) = match mode {
        Mode::Plain => {
            let n = cleaner
                .plain_delete(chrono::Utc::now().timestamp())
                .await
                .expect("plain DELETE");
            (n, 1, t0.elapsed())
        }
        Mode::Ours | Mode::Paused(_) => {
            let mut batching = batching.clone();
            if let Mode::Paused(p) = mode {
                batching.pause_ms = p;
            }
            let job = SessionsCleanup::default().with_batching(&batching);
            let ctx = JobContext::new(
                job_db.clone(),
                Trigger::Manual,
                0,
                Arc::new(SystemClock),
                CancellationToken::new(),
            );
            let out = job.run(ctx).await.expect("cleanup job");
            let done = capture.done();
            assert_eq!(
                done.deleted, out.records_processed,
                "tracing event matches the job's output"
            );
            (
                out.records_processed,
                done.statements,
                Duration::from_secs_f64(done.longest_ms / 1e3),
            )
        }
    };
    let t1 = Instant::now();
    let total = t1 - t0;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let inserts = inserts.await.expect("inserter");
    let lookups = lookups.await.expect("looker");
    let left_expired = cleaner
        .scalar(
            "SELECT count(*) FROM sessions WHERE expires_at < ?",
            chrono::Utc::now().timestamp() - 3,
        )
        .await;
    cleaner.close().await;
    job_db.close().await;

    let (w0, w1) = (t0 - origin, t1 - origin);
    let in_window: Vec<&(Duration, Duration, bool)> = inserts
        .iter()
        .filter(|(due, _, _)| *due >= w0 && *due <= w1)
        .collect();
    let mut ins: Vec<f64> = in_window.iter().map(|(_, l, _)| ms(*l)).collect();
    let failed = in_window.iter().filter(|(_, _, ok)| !ok).count();
    let mut look: Vec<f64> = lookups
        .iter()
        .filter(|(s, _)| *s >= w0 && *s <= w1)
        .map(|(_, l)| ms(*l))
        .collect();
    let lookups_per_sec = look.len() as f64 / total.as_secs_f64();
    let mut stmts = match mode {
        Mode::Plain => vec![ms(longest)],
        Mode::Ours | Mode::Paused(_) => capture.batches(),
    };
    RunResult {
        total,
        deleted,
        statements,
        longest_statement: longest,
        statement_p50: Summary::of(&mut stmts).p50,
        insert: Summary::of(&mut ins),
        inserts_failed: failed,
        lookup: Summary::of(&mut look),
        lookups_per_sec,
        left_expired,
    }
}

/// What the builtin crate's `BatchedDelete` reported through `tracing`.
#[derive(Debug, Default)]
struct Capture {
    batches_ms: Mutex<Vec<f64>>,
    done: Mutex<DoneEvent>,
}

#[derive(Debug, Default, Clone, Copy)]
struct DoneEvent {
    deleted: u64,
    statements: u64,
    longest_ms: f64,
}

impl Capture {
    fn reset(&self) {
        self.batches_ms.lock().unwrap().clear();
        *self.done.lock().unwrap() = DoneEvent::default();
    }
    fn batches(&self) -> Vec<f64> {
        self.batches_ms.lock().unwrap().clone()
    }
    fn done(&self) -> DoneEvent {
        *self.done.lock().unwrap()
    }
}

/// A minimal `tracing` subscriber that keeps the builtin crate's batch timings.
struct CaptureSubscriber(Arc<Capture>);

#[derive(Default)]
struct Fields {
    message: String,
    deleted: Option<u64>,
    statements: Option<u64>,
    elapsed_us: Option<u64>,
    longest_ms: Option<f64>,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        match field.name() {
            "deleted" => self.deleted = Some(value),
            "statements" => self.statements = Some(value),
            "elapsed_us" => self.elapsed_us = Some(value),
            _ => {}
        }
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.record_u64(field, u64::try_from(value).unwrap_or(0));
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        if field.name() == "longest_ms" {
            self.longest_ms = Some(value);
        }
    }
}

impl tracing::Subscriber for CaptureSubscriber {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target().starts_with("barycenter_jobs_builtin")
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.message == "batch" {
            if let Some(us) = fields.elapsed_us {
                self.0.batches_ms.lock().unwrap().push(us as f64 / 1e3);
            }
        } else if fields.message == "batched delete done" {
            *self.0.done.lock().unwrap() = DoneEvent {
                deleted: fields.deleted.unwrap_or(0),
                statements: fields.statements.unwrap_or(0),
                longest_ms: fields.longest_ms.unwrap_or(0.0),
            };
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
