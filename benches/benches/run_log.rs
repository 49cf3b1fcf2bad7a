//! The cost of keeping a run's log (issue 26): a job that logs 1,000 `info` lines, run
//! through the scheduler (`trigger`, then `wait` for its recorded end) with the capture on
//! and off, side by side in one process, alternating run by run.
//!
//! The host logs as a real one does: a `tracing-subscriber` `fmt` subscriber at `info`,
//! writing to a sink, so both sides format every line once for the host; the capture adds
//! the copy of the first 200 lines (then only counts), and one INSERT of 201 rows after the
//! run's end is recorded. Two schedulers on one database (no coordination), one per side,
//! each with its own job. Two figures per side: the job's own time (its 1,000 lines, timed
//! inside the job: what the capture costs the job, the goal's figure, on / off ≤ 1.05), and
//! the whole run, trigger to recorded end (which also holds the log's INSERT, written after
//! the run's end and before its waiters are woken).
//!
//! ```text
//! cargo bench -p barycenter-jobs-benches --bench run_log -- [--quick] [--runs N] [--db sqlite|postgres|all]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use barycenter_jobs_benches::{Args, Summary, Table, f, label, ms};
use barycenter_jobs_core::{
    Backend, ExecutionStore, Job, JobContext, JobError, JobOutput, Registry, Scheduler,
    SchedulerConfig, SchedulerHandle, async_trait,
};

/// Lines each run logs.
const LINES: u64 = 1_000;

/// A job logging [`LINES`] lines; its last run's own time, in nanoseconds.
struct Chatty(&'static str, Arc<AtomicU64>);

#[async_trait]
impl Job for Chatty {
    fn name(&self) -> &str {
        self.0
    }
    fn description(&self) -> &str {
        "logs 1,000 info lines"
    }
    fn schedule(&self) -> &str {
        // Never on schedule in the bench: every run is triggered.
        "0 0 0 1 1 *"
    }
    async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
        let began = Instant::now();
        for i in 0..LINES {
            tracing::info!(table = "sessions", batch = i, rows = 1000, "batch deleted");
        }
        let took = u64::try_from(began.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.1.store(took, Ordering::Release);
        Ok(JobOutput::processed(LINES))
    }
}

fn main() {
    let args = Args::from_env();
    let runs: usize = args.parsed("--runs", if args.quick() { 30 } else { 300 });
    // The host's logging: formatted, at info, to nowhere.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::sink)
        .init();
    let rt = barycenter_jobs_benches::runtime();
    println!("# a run's log: {}", barycenter_jobs_benches::machine_line());
    println!(
        "a job logging {LINES} info lines, host subscriber fmt at info to a sink; {runs} runs per side, alternating; the job's own time and the whole run (trigger to recorded end)\n"
    );
    let mut t = Table::new(&[
        "database",
        "capture",
        "job's own p50 ms",
        "p99 ms",
        "mean ms",
        "on / off (p50)",
        "on / off (mean)",
        "goal ≤ 1.05",
        "whole run p50 ms",
        "on / off (p50)",
        "lines kept",
    ]);
    for backend in barycenter_jobs_benches::backends(&args) {
        rt.block_on(bench_db(backend, runs, &mut t));
    }
    t.print();
}

async fn start(
    db: &barycenter_jobs_core::Database,
    name: &'static str,
    capture: bool,
    own: Arc<AtomicU64>,
) -> SchedulerHandle {
    let registry = Registry::builder()
        .register(Chatty(name, own))
        .build()
        .expect("registry");
    let config = SchedulerConfig {
        capture_run_logs: capture,
        ..SchedulerConfig::default()
    }
    .without_coordination();
    Scheduler::builder(registry, db.clone())
        .config(config)
        .start()
        .await
        .expect("scheduler")
}

async fn bench_db(backend: Backend, runs: usize, t: &mut Table) {
    let fresh = barycenter_jobs_benches::fresh_database(backend).await;
    let (own_on, own_off) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let on = start(&fresh.db, "chatty_on", true, own_on.clone()).await;
    let off = start(&fresh.db, "chatty_off", false, own_off.clone()).await;
    // (whole run, the job's own time, execution id)
    let time = |handle: &SchedulerHandle, name: &'static str| {
        let handle = handle.clone();
        let own = if name == "chatty_on" {
            own_on.clone()
        } else {
            own_off.clone()
        };
        async move {
            let began = Instant::now();
            let run = handle.trigger(name).await.expect("trigger");
            let id = run.execution_id;
            run.wait().await.expect("run");
            let job = Duration::from_nanos(own.load(Ordering::Acquire));
            (began.elapsed(), job, id)
        }
    };
    // Warm-up: connections, caches, the callsites' registration.
    for _ in 0..5 {
        time(&on, "chatty_on").await;
        time(&off, "chatty_off").await;
    }
    let (mut with, mut without) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    let (mut whole_on, mut whole_off) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    let mut last_on = 0;
    for i in 0..runs {
        // Alternating which side goes first, so neither always follows the other's writes.
        let mut run_on = async || {
            let (whole, job, id) = time(&on, "chatty_on").await;
            whole_on.push(ms(whole));
            with.push(ms(job));
            last_on = id;
        };
        if i % 2 == 0 {
            run_on().await;
            let (whole, job, _) = time(&off, "chatty_off").await;
            whole_off.push(ms(whole));
            without.push(ms(job));
        } else {
            let (whole, job, _) = time(&off, "chatty_off").await;
            whole_off.push(ms(whole));
            without.push(ms(job));
            run_on().await;
        }
    }
    let kept = ExecutionStore::new(fresh.db.clone())
        .run_log(last_on)
        .await
        .expect("log")
        .len();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mean_on, mean_off) = (mean(&with), mean(&without));
    let (on_s, off_s) = (Summary::of(&mut with), Summary::of(&mut without));
    let (whole_on_s, whole_off_s) = (Summary::of(&mut whole_on), Summary::of(&mut whole_off));
    let ratio = on_s.p50 / off_s.p50;
    t.row(&[
        label(backend).to_owned(),
        "off".to_owned(),
        f(off_s.p50, 3),
        f(off_s.p99, 3),
        f(mean_off, 3),
        String::new(),
        String::new(),
        String::new(),
        f(whole_off_s.p50, 2),
        String::new(),
        "0".to_owned(),
    ]);
    t.row(&[
        label(backend).to_owned(),
        "on".to_owned(),
        f(on_s.p50, 3),
        f(on_s.p99, 3),
        f(mean_on, 3),
        f(ratio, 3),
        f(mean_on / mean_off, 3),
        if ratio <= 1.05 { "met" } else { "missed" }.to_owned(),
        f(whole_on_s.p50, 2),
        f(whole_on_s.p50 / whole_off_s.p50, 3),
        kept.to_string(),
    ]);
    on.shutdown(Duration::from_secs(5)).await.expect("shutdown");
    off.shutdown(Duration::from_secs(5))
        .await
        .expect("shutdown");
}
