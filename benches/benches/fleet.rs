//! Figure 5: a fleet of schedulers on one PostgreSQL database, 3 and 10 replicas.
//!
//! N schedulers (`--replicas 3,10` by default), each with its own pool and its own tokio
//! runtime on its own thread, coordination on (default config, instance names
//! `replica-0..N`), share one every-second job for `--secs` seconds (default 60, 15 with
//! `--quick`), all started at once on a fresh database (so the migrations race too). Every
//! run records (replica, tick, time of entry).
//!
//! Reported: ticks of the measured window, runs, duplicate runs (a tick run more than once,
//! seen by the job and in the history table), missed ticks, runs per replica; the winner's
//! lateness (tick to the job's entry: the claim `UPDATE` and the history writes happen in
//! between); and **statements per tick**, counted per replica: sqlx reports every statement
//! it executes as a `tracing` event (target `sqlx::query`, at DEBUG, sent when the statement
//! finishes). This bench installs a subscriber that only counts those events, by the thread
//! they were sent from (each replica's runtime names its threads `replica-K`), the second
//! they finished in and the statement's verb and table. A statement of replica K in second S
//! belongs to tick S; the replica that ran tick S is its winner, the others are losers. The
//! settings poll (`job_settings`, every 2 s, not per tick) and each scheduler's fleet row
//! (`job_fleet`, every 10 s) are counted apart, per second. Last, one scheduler runs one
//! 10-second job that reports progress every 100 ms, and the statements its run sent are
//! listed by kind: what a long run costs (progress written every 2 s, the cancel watch's
//! read every second, the lease renewed every 10 s).
//! PostgreSQL's own counters (`pg_stat_database`, transactions over the window, all
//! replicas together) are printed beside as a cross-check; `pg_stat_statements` is not
//! installed on the test server, and `pg_stat_database` cannot tell replicas, winners and
//! losers apart.
//!
//! ```text
//! cargo bench -p barycenter-jobs-benches --bench fleet -- [--quick] [--secs N] [--replicas 3,10]
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use barycenter_jobs_benches::{Args, Summary, Table, f, scalar};
use barycenter_jobs_core::sea_query::{
    Alias, Asterisk, Expr, ExprTrait as _, Func, Iden, Query, SelectStatement,
};
use barycenter_jobs_core::{
    CoordinationConfig, Database, Job, JobContext, JobError, JobOutput, Registry, Scheduler,
    SchedulerConfig, async_trait,
};
use chrono::Utc;

const JOB: &str = "fleet_tick";

#[derive(Default)]
struct Recorder {
    /// (replica, tick second, entry lateness in ms)
    runs: Mutex<Vec<(usize, i64, f64)>>,
}

struct FleetTick {
    replica: usize,
    rec: Arc<Recorder>,
}

#[async_trait]
impl Job for FleetTick {
    fn name(&self) -> &str {
        JOB
    }
    fn description(&self) -> &str {
        "fleet bench tick"
    }
    fn schedule(&self) -> &str {
        "* * * * * *"
    }
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        let now = Utc::now();
        if let Some(tick) = ctx.trigger().fire_time() {
            let late = (now - tick).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e3;
            self.rec
                .runs
                .lock()
                .unwrap()
                .push((self.replica, tick.timestamp(), late));
        }
        Ok(JobOutput::processed(1))
    }
}

/// One statement a replica executed: (replica, second it finished in, "VERB table").
type Statement = (usize, i64, String);

/// Statements sqlx reported, from threads named `replica-K`.
static STATEMENTS: Mutex<Vec<Statement>> = Mutex::new(Vec::new());

/// A `tracing` subscriber that only counts sqlx's per-statement events (`sqlx::query`).
struct StatementCounter;

const TABLES: [&str; 6] = [
    "job_leases",
    "job_settings",
    "job_registry",
    "job_audit",
    "job_fleet",
    "job_executions",
];

#[derive(Default)]
struct SqlField(String);

impl tracing::field::Visit for SqlField {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        // The whole SQL when sqlx shortened the summary, else the summary (the whole SQL).
        let full = field.name() == "db.statement" && !value.trim().is_empty();
        if full || (field.name() == "summary" && self.0.is_empty()) {
            self.0 = value.to_owned();
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" && self.0.is_empty() {
            self.0 = format!("{value:?}");
        }
    }
}

/// "VERB table" of a statement: its first word and the first bench table it names.
fn classify(sql: &str) -> String {
    let verb = sql
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .trim_matches('"')
        .to_uppercase();
    let table = TABLES
        .iter()
        .find(|t| sql.contains(*t))
        .copied()
        .unwrap_or("other");
    format!("{verb} {table}")
}

impl tracing::Subscriber for StatementCounter {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        // sqlx first asks `enabled!` (a callsite of kind HINT, not EVENT), then sends.
        metadata.target() == "sqlx::query"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let Some(replica) = std::thread::current()
            .name()
            .and_then(|n| n.strip_prefix("replica-"))
            .and_then(|k| k.parse::<usize>().ok())
        else {
            return;
        };
        let mut sql = SqlField::default();
        event.record(&mut sql);
        let sec = Utc::now().timestamp();
        STATEMENTS
            .lock()
            .unwrap()
            .push((replica, sec, classify(&sql.0)));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[derive(Debug, Default, Clone, Copy)]
struct PgCounters {
    xact: i64,
}

/// PostgreSQL's statistics view of its databases (a system view, read as it is).
#[derive(Iden, Clone, Copy)]
enum PgStatDatabase {
    Table,
    Datname,
    XactCommit,
    XactRollback,
}

/// The columns of `job_executions` the checks read (the core's column enum is private to it).
#[derive(Iden, Clone, Copy)]
enum JobExecutions {
    Table,
    JobName,
    ScheduledFor,
}

/// A connection of the bench's own on the fleet's database (outside the replicas' threads, so
/// its statements are not counted).
async fn connection(url: &str) -> Database {
    Database::connect_with_max(url, 1).await.expect("pg")
}

async fn counters(url: &str) -> PgCounters {
    let db = connection(url).await;
    // Counters of other backends are flushed at most once a second.
    let query = Query::select()
        .expr(Expr::col(PgStatDatabase::XactCommit).add(Expr::col(PgStatDatabase::XactRollback)))
        .from(PgStatDatabase::Table)
        .and_where(Expr::col(PgStatDatabase::Datname).eq(Func::cust("current_database")))
        .to_owned();
    let xact = scalar(&db, &query, "pg_stat_database").await;
    db.close().await;
    PgCounters { xact }
}

/// How many ticks of the fleet's job the history holds more than one run of.
fn duplicate_ticks() -> SelectStatement {
    use JobExecutions as H;
    let ticks = Query::select()
        .column(H::ScheduledFor)
        .from(H::Table)
        .and_where(Expr::col(H::JobName).eq(JOB))
        .group_by_col(H::ScheduledFor)
        .and_having(Expr::col(Asterisk).count().gt(1))
        .to_owned();
    Query::select()
        .expr(Expr::col(Asterisk).count())
        .from_subquery(ticks, Alias::new("d"))
        .to_owned()
}

/// How many runs of the fleet's job the history holds for the ticks `from..to`.
fn runs_between(from: i64, to: i64) -> SelectStatement {
    use JobExecutions as H;
    Query::select()
        .expr(Expr::col(Asterisk).count())
        .from(H::Table)
        .and_where(Expr::col(H::JobName).eq(JOB))
        .and_where(Expr::col(H::ScheduledFor).gte(from))
        .and_where(Expr::col(H::ScheduledFor).lt(to))
        .to_owned()
}

fn main() {
    let args = Args::from_env();
    let secs: i64 = args.parsed("--secs", if args.quick() { 15 } else { 60 });
    let sizes: Vec<usize> = args
        .value("--replicas")
        .unwrap_or("3,10")
        .split(',')
        .filter_map(|v| v.parse().ok())
        .collect();
    tracing::subscriber::set_global_default(StatementCounter).expect("subscriber");
    println!("# fleet: {}", barycenter_jobs_benches::machine_line());
    println!(
        "N schedulers (own pool, own runtime, own thread), coordination on, one `* * * * * *` job, {secs} s per fleet\n"
    );
    let mut runs_t = Table::new(&[
        "replicas",
        "ticks",
        "runs",
        "duplicate runs (job / history)",
        "missed ticks",
        "runs per replica",
        "winner tick→entry p50 ms",
        "p99 ms",
        "max ms",
    ]);
    let mut stmt_t = Table::new(&[
        "replicas",
        "statements per tick: winner (mean / max)",
        "per loser (mean / max)",
        "whole fleet per tick",
        "settings poll per replica-second",
        "fleet row per replica-second",
        "pg_stat_database transactions per tick (cross-check)",
    ]);
    let mut kinds_t = Table::new(&[
        "replicas",
        "statement",
        "winner, per tick",
        "each loser, per tick",
    ]);
    let mut goals = Table::new(&["goal", "replicas", "measured", "met?"]);
    for n in sizes {
        fleet(n, secs, &mut runs_t, &mut stmt_t, &mut kinds_t, &mut goals);
    }
    runs_t.print();
    stmt_t.print();
    kinds_t.print();
    println!("goals (issue 18):\n");
    goals.print();
    long_run();
}

/// A fresh PostgreSQL database (test support's, as the tests use), dropped with the value;
/// its setup connection closed, so every statement counted is a scheduler's.
fn fresh_postgres(setup: &tokio::runtime::Runtime) -> barycenter_jobs_test_support::TestDb {
    setup.block_on(async {
        let fresh =
            barycenter_jobs_test_support::postgres_on(&barycenter_jobs_benches::postgres_url())
                .await;
        fresh.db.close().await;
        fresh
    })
}

/// A job that runs for ten seconds, reporting a record every 100 ms.
struct LongRun;

#[async_trait]
impl Job for LongRun {
    fn name(&self) -> &str {
        "long_run"
    }
    fn description(&self) -> &str {
        "fleet bench: a long run"
    }
    fn schedule(&self) -> &str {
        "0 0 0 1 1 *"
    }
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        for _ in 0..100 {
            ctx.report_processed(1);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(JobOutput::processed(100))
    }
}

/// One scheduler on a fresh database runs `long_run` once by hand; the statements its
/// runtime sent from the trigger to the run's end, by kind.
fn long_run() {
    let setup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let fresh = fresh_postgres(&setup);
    let url = fresh.url.clone();
    let counted = std::thread::Builder::new()
        .name("replica-0".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("replica-0")
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let db = Database::connect(&url).await.expect("db");
                let registry = Registry::builder()
                    .register(LongRun)
                    .build()
                    .expect("registry");
                let handle = Scheduler::builder(registry, db.clone())
                    .start()
                    .await
                    .expect("start");
                STATEMENTS.lock().unwrap().clear();
                let started = std::time::Instant::now();
                let row = handle
                    .trigger("long_run")
                    .await
                    .expect("trigger")
                    .wait()
                    .await
                    .expect("run");
                let took = started.elapsed();
                let statements = std::mem::take(&mut *STATEMENTS.lock().unwrap());
                handle
                    .shutdown(Duration::from_secs(5))
                    .await
                    .expect("shutdown");
                db.close().await;
                (row.records_processed, took, statements)
            })
        })
        .expect("thread")
        .join()
        .expect("long run");
    let (records, took, statements) = counted;
    println!(
        "\none 10 s run (records {records:?}, {:.1} s from the trigger to its recorded end), statements its scheduler sent meanwhile:\n",
        took.as_secs_f64()
    );
    let mut kinds: BTreeMap<String, u32> = BTreeMap::new();
    for (_, _, kind) in statements {
        *kinds.entry(kind).or_default() += 1;
    }
    let mut t = Table::new(&["statement", "count"]);
    for (kind, n) in kinds {
        t.row(&[kind, n.to_string()]);
    }
    t.print();
    setup.block_on(async move { drop(fresh) });
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn fleet(
    replicas: usize,
    secs: i64,
    runs_t: &mut Table,
    stmt_t: &mut Table,
    kinds_t: &mut Table,
    goals: &mut Table,
) {
    let setup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let fresh = fresh_postgres(&setup);
    let url = fresh.url.clone();
    STATEMENTS.lock().unwrap().clear();

    let rec = Arc::new(Recorder::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let mut threads = Vec::new();
    for replica in 0..replicas {
        let (url, rec, mut stop_rx, ready_tx) =
            (url.clone(), rec.clone(), stop_rx.clone(), ready_tx.clone());
        let thread = std::thread::Builder::new().name(format!("replica-{replica}"));
        threads.push(
            thread
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(1)
                        .thread_name(format!("replica-{replica}"))
                        .enable_all()
                        .build()
                        .expect("runtime");
                    rt.block_on(async move {
                        let db = Database::connect(&url).await.expect("db");
                        let registry = Registry::builder()
                            .register(FleetTick { replica, rec })
                            .build()
                            .expect("registry");
                        let config = SchedulerConfig {
                            coordination: CoordinationConfig {
                                instance: Some(format!("replica-{replica}")),
                                ..CoordinationConfig::default()
                            },
                            ..SchedulerConfig::default()
                        };
                        let handle = Scheduler::builder(registry, db.clone())
                            .config(config)
                            .start()
                            .await
                            .expect("start");
                        ready_tx.send(()).expect("ready");
                        let _ = stop_rx.wait_for(|s| *s).await;
                        handle
                            .shutdown(Duration::from_secs(5))
                            .await
                            .expect("shutdown");
                        db.close().await;
                    });
                })
                .expect("replica thread"),
        );
    }
    for _ in 0..replicas {
        ready_rx.recv().expect("replica started");
    }

    let w_start = Utc::now().timestamp() + 2;
    let w_end = w_start + secs;
    let (c0, c1, dup_history, history_runs) = setup.block_on(async {
        sleep_until_second(w_start).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let c0 = counters(&url).await;
        sleep_until_second(w_end).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Let the other backends flush their counters.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let c1 = counters(&url).await;
        let c = connection(&url).await;
        let dup = scalar(&c, &duplicate_ticks(), "duplicates").await;
        let runs = scalar(&c, &runs_between(w_start, w_end), "runs").await;
        c.close().await;
        (c0, c1, dup, runs)
    });
    stop_tx.send(true).expect("stop");
    for t in threads {
        t.join().expect("replica thread");
    }

    let runs = rec.runs.lock().unwrap().clone();
    let mut per_tick = vec![0u32; secs as usize];
    let mut winner = vec![None; secs as usize];
    let mut per_replica = vec![0u32; replicas];
    let mut late = Vec::new();
    for (replica, tick, l) in &runs {
        if *tick >= w_start && *tick < w_end {
            per_tick[(tick - w_start) as usize] += 1;
            winner[(tick - w_start) as usize] = Some(*replica);
            per_replica[*replica] += 1;
            late.push(*l);
        }
    }
    let missed = per_tick.iter().filter(|c| **c == 0).count();
    let duplicate: u32 = per_tick.iter().map(|c| c.saturating_sub(1)).sum();
    let s = Summary::of(&mut late);
    let claimed = s.count.max(1) as f64;
    // The two counter reads in the window are one transaction each; the window of those
    // reads is 0.5 s late at both ends, the same length.
    let xact = (c1.xact - c0.xact - 1) as f64;

    // Statements per (tick, replica), the settings poll apart; and per kind.
    let statements = std::mem::take(&mut *STATEMENTS.lock().unwrap());
    let mut cells = vec![vec![0u32; replicas]; secs as usize];
    let mut kinds: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let (mut polls, mut fleet_rows) = (0u32, 0u32);
    for (replica, sec, kind) in &statements {
        if *sec < w_start || *sec >= w_end {
            continue;
        }
        let i = (sec - w_start) as usize;
        if kind.ends_with("job_settings") {
            polls += 1;
            continue;
        }
        // Each scheduler's own row, every 10 s: not a tick's work either.
        if kind.ends_with("job_fleet") {
            fleet_rows += 1;
            continue;
        }
        let Some(w) = winner[i] else { continue };
        cells[i][*replica] += 1;
        let e = kinds.entry(kind.clone()).or_default();
        if *replica == w {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    let mut win = Vec::new();
    let mut lose = Vec::new();
    let mut fleet_total = Vec::new();
    for (i, row) in cells.iter().enumerate() {
        let Some(w) = winner[i] else { continue };
        win.push(f64::from(row[w]));
        fleet_total.push(f64::from(row.iter().sum::<u32>()));
        for (r, c) in row.iter().enumerate() {
            if r != w {
                lose.push(f64::from(*c));
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    // No statement seen means the counting failed, not that the fleet is free.
    let counted = !statements.is_empty();
    let ticks_won = win.len().max(1) as f64;
    let loser_ticks = lose.len().max(1) as f64;

    runs_t.row(&[
        replicas.to_string(),
        secs.to_string(),
        format!("{} (history: {history_runs})", s.count),
        format!("{duplicate} / {dup_history}"),
        missed.to_string(),
        per_replica
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" / "),
        f(s.p50, 2),
        f(s.p99, 2),
        f(s.max, 2),
    ]);
    stmt_t.row(&[
        replicas.to_string(),
        format!("{} / {}", f(mean(&win), 2), f(max(&win), 0)),
        format!("{} / {}", f(mean(&lose), 2), f(max(&lose), 0)),
        f(mean(&fleet_total), 2),
        f(f64::from(polls) / (secs as f64 * replicas as f64), 2),
        f(f64::from(fleet_rows) / (secs as f64 * replicas as f64), 2),
        f(xact / claimed, 1),
    ]);
    for (kind, (w, l)) in &kinds {
        kinds_t.row(&[
            replicas.to_string(),
            kind.clone(),
            f(f64::from(*w) / ticks_won, 2),
            f(f64::from(*l) / loser_ticks, 2),
        ]);
    }
    goals.row(&[
        "0 duplicates, ≤ 1 missed tick".to_owned(),
        replicas.to_string(),
        format!("{duplicate} / {dup_history} duplicates, {missed} missed"),
        met(duplicate == 0 && dup_history == 0 && missed <= 1).to_owned(),
    ]);
    goals.row(&[
        "statements per tick, winner ≤ 5".to_owned(),
        replicas.to_string(),
        format!("{} (max {})", f(mean(&win), 2), f(max(&win), 0)),
        met(counted && max(&win) <= 5.0).to_owned(),
    ]);
    goals.row(&[
        "statements per tick, each loser 1".to_owned(),
        replicas.to_string(),
        format!("{} (max {})", f(mean(&lose), 2), f(max(&lose), 0)),
        met(counted && max(&lose) <= 1.0).to_owned(),
    ]);
    eprintln!(
        "  {replicas} replicas: winner p99 tick→entry {} ms",
        f(s.p99, 2)
    );
    drop(fresh);
}

async fn sleep_until_second(sec: i64) {
    let target = chrono::DateTime::<Utc>::from_timestamp(sec, 0).expect("time");
    if let Ok(d) = (target - Utc::now()).to_std() {
        tokio::time::sleep(d).await;
    }
}
