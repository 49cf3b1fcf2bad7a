//! Figure 5: a fleet of three schedulers on one PostgreSQL database.
//!
//! Three schedulers, each with its own pool and its own tokio runtime on its own thread,
//! coordination on (default config, instance names `replica-0..2`), share one every-second
//! job for `--secs` seconds (default 60, 15 with `--quick`), all started at once on a fresh
//! database (so the migrations race too). Every run records (replica, tick, time of entry).
//!
//! Reported: ticks of the measured window, runs, duplicate runs (a tick run more than once,
//! seen by the job and in the history table), missed ticks, runs per replica; the time from the
//! tick to the job's entry (the claim `UPDATE` and the history `INSERT`s happen in between);
//! and the database work per claimed tick, from PostgreSQL's `pg_stat_database` counters for
//! the bench database over the window (transactions, which are single statements here, and
//! rows inserted/updated/fetched), all replicas together, the losers' claims included.
//!
//! ```text
//! cargo bench -p barycenter-jobs-benches --bench fleet -- [--quick] [--secs N] [--replicas N]
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use barycenter_jobs_benches::{Args, Summary, Table, f};
use barycenter_jobs_core::{
    CoordinationConfig, Database, Job, JobContext, JobError, JobOutput, Registry, Scheduler,
    SchedulerConfig, async_trait,
};
use chrono::Utc;
use sqlx::Connection as _;

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

#[derive(Debug, Default, Clone, Copy)]
struct PgCounters {
    xact: i64,
    inserted: i64,
    updated: i64,
    fetched: i64,
    returned: i64,
}

async fn counters(url: &str) -> PgCounters {
    let mut c = sqlx::PgConnection::connect(url).await.expect("pg");
    // Counters of other backends are flushed at most once a second.
    let row: (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT xact_commit + xact_rollback, tup_inserted, tup_updated, tup_fetched, tup_returned
           FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&mut c)
    .await
    .expect("pg_stat_database");
    c.close().await.expect("close");
    PgCounters {
        xact: row.0,
        inserted: row.1,
        updated: row.2,
        fetched: row.3,
        returned: row.4,
    }
}

fn main() {
    let args = Args::from_env();
    let secs: i64 = args.parsed("--secs", if args.quick() { 15 } else { 60 });
    let replicas: usize = args.parsed("--replicas", 3);
    let setup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // A fresh database, dropped at the end (test support's, as the tests use).
    let fresh = setup.block_on(async {
        let fresh =
            barycenter_jobs_test_support::postgres_on(&barycenter_jobs_benches::postgres_url())
                .await;
        fresh.db.close().await;
        fresh
    });
    let url = fresh.url.clone();
    println!("# fleet: {}", barycenter_jobs_benches::machine_line());
    println!(
        "{replicas} schedulers (own pool, own runtime, own thread), coordination on, one `* * * * * *` job, {secs} s\n"
    );

    let rec = Arc::new(Recorder::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let mut threads = Vec::new();
    for replica in 0..replicas {
        let (url, rec, mut stop_rx, ready_tx) =
            (url.clone(), rec.clone(), stop_rx.clone(), ready_tx.clone());
        threads.push(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
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
        }));
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
        let mut c = sqlx::PgConnection::connect(&url).await.expect("pg");
        let dup: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT scheduled_for FROM job_executions WHERE job_name = $1
               GROUP BY scheduled_for HAVING count(*) > 1) AS d",
        )
        .bind(JOB)
        .fetch_one(&mut c)
        .await
        .expect("duplicates");
        let runs: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM job_executions WHERE job_name = $1 AND scheduled_for >= $2 AND scheduled_for < $3",
        )
        .bind(JOB)
        .bind(w_start)
        .bind(w_end)
        .fetch_one(&mut c)
        .await
        .expect("runs");
        c.close().await.expect("close");
        (c0, c1, dup, runs)
    });
    stop_tx.send(true).expect("stop");
    for t in threads {
        t.join().expect("replica thread");
    }

    let runs = rec.runs.lock().unwrap().clone();
    let mut per_tick = vec![0u32; secs as usize];
    let mut per_replica = vec![0u32; replicas];
    let mut late = Vec::new();
    for (replica, tick, l) in &runs {
        if *tick >= w_start && *tick < w_end {
            per_tick[(tick - w_start) as usize] += 1;
            per_replica[*replica] += 1;
            late.push(*l);
        }
    }
    let missed = per_tick.iter().filter(|c| **c == 0).count();
    let duplicate: u32 = per_tick.iter().map(|c| c.saturating_sub(1)).sum();
    let s = Summary::of(&mut late);
    let claimed = s.count.max(1) as f64;
    // The two counter reads in the window are one transaction each.
    let xact = (c1.xact - c0.xact - 1) as f64;

    let mut t = Table::new(&[
        "ticks",
        "runs",
        "duplicate runs (job / history)",
        "missed ticks",
        "runs per replica",
        "tick→entry p50 ms",
        "p99 ms",
        "max ms",
    ]);
    t.row(&[
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
    t.print();
    let mut d = Table::new(&[
        "per claimed tick, all replicas",
        "transactions",
        "rows inserted",
        "rows updated",
        "rows fetched",
        "rows returned",
    ]);
    d.row(&[
        "pg_stat_database deltas / runs".to_owned(),
        f(xact / claimed, 1),
        f((c1.inserted - c0.inserted) as f64 / claimed, 2),
        f((c1.updated - c0.updated) as f64 / claimed, 2),
        f((c1.fetched - c0.fetched) as f64 / claimed, 1),
        f((c1.returned - c0.returned) as f64 / claimed, 1),
    ]);
    d.print();

    drop(fresh);
}

async fn sleep_until_second(sec: i64) {
    let target = chrono::DateTime::<Utc>::from_timestamp(sec, 0).expect("time");
    if let Ok(d) = (target - Utc::now()).to_std() {
        tokio::time::sleep(d).await;
    }
}
