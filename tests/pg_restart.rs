//! A real PostgreSQL server restart under three replicas (issue 22): between ticks (a fast
//! stop while no run is going) and mid-run (an immediate, crash-like stop while a long run
//! and a tick's runs are going).
//!
//! The test starts a throwaway cluster of its own (`initdb` into a temporary directory,
//! `pg_ctl start` on a free port), never the shared server, which other tests use at the same
//! time. It needs the PostgreSQL server binaries: without them it says so and returns, except
//! under `CI=true`, where it fails, so that CI cannot pass it unrun.
//!
//! Each replica has its own pool and its own instance name. All three register `tick` (every
//! second, 200 ms of work), which the leases give to one replica per tick, so `tick` alone
//! cannot show that *every* replica came back; each replica therefore also has a job of its
//! own, `own_<replica>` (every second, coordinated through its own lease row), whose first run
//! after the server answers again is that replica's resumption. A long job (6 s, twice the 3 s
//! lease TTL, so it renews) is triggered by hand on replica A for the mid-run restart. The
//! server stays away for a whole TTL, so that run cannot confirm its lease: the fence stops it
//! and its end is written once the server is back (recorded failed). Finishing, or being
//! closed as abandoned by a replica that got through first, would also keep the promise; a
//! row left open would not.
//!
//! Every wait is "until a condition holds", with a ceiling that only catches a hang. The only
//! timing assertion is the promise itself: every replica resumes within one tick of the server
//! answering again (plus the margin explained at [`RESUME_MARGIN`]). The figures are printed
//! as `RELIABILITY` lines (see RELIABILITY.md).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use barycenter_jobs::{
    Database, Execution, ExecutionQuery, ExecutionStatus, ExecutionStore, Job, JobContext,
    JobError, JobOutput, Registry, Scheduler, SchedulerConfig, SchedulerHandle, async_trait,
};
use barycenter_jobs_test_support::eventually;
use chrono::{DateTime, Utc};
use sqlx::Connection;

/// The replicas, each with a pool and an instance name of its own.
const REPLICAS: [&str; 3] = ["replica-a", "replica-b", "replica-c"];
/// The interval of `tick` and of every `own_<replica>` job.
const TICK: Duration = Duration::from_secs(1);
/// How long the server stays down in each scenario: longer than a tick, so at least one tick
/// falls entirely inside the outage, and (mid-run) as long as the lease TTL, so the long run
/// cannot confirm its lease in time.
const OUTAGE: Duration = Duration::from_secs(3);
/// The lease TTL of every replica.
const LEASE_TTL_SECS: u64 = 3;
/// The long job's work: twice the TTL, so it must renew its lease to finish.
const LONG_WORK: Duration = Duration::from_secs(6);
/// Allowed on top of one tick between the server answering again and a replica's first run.
/// A replica learns that the server is back only when one of its statements gets through, and
/// a statement that was waiting for a connection when the server went away (the end of a run,
/// say) is inside sqlx's pool, which retries refused connections with a growing pause capped
/// at a fifth of the pool's 10 s acquire timeout: up to 2 s pass between the server answering
/// and that attempt. Until then the job's runner is busy and its ticks are skipped. 1 s more
/// covers the claim, the start row and the wake-up on a loaded 2-core machine. A replica that
/// does not come back at all is caught by the 30 s ceiling of the wait instead.
const RESUME_MARGIN: Duration = Duration::from_secs(3);

/// One run, as the job saw it.
#[derive(Debug, Clone)]
struct Entry {
    replica: &'static str,
    job: String,
    /// The tick it ran for; `None` for a manual trigger.
    tick: Option<DateTime<Utc>>,
    started: Instant,
    ended: Option<Instant>,
}

/// Every run of every replica, in the order they started.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Entry>>>);

impl Log {
    fn entries(&self) -> Vec<Entry> {
        self.0.lock().unwrap().clone()
    }

    /// The first run of `job` that started after `after`.
    fn first_after(&self, job: &str, after: Instant) -> Option<Entry> {
        self.entries()
            .into_iter()
            .find(|e| e.job == job && e.started > after)
    }

    /// How many runs were going at `at`.
    fn going_at(&self, at: Instant) -> usize {
        self.entries()
            .iter()
            .filter(|e| e.started <= at && e.ended.is_none_or(|end| end > at))
            .count()
    }

    /// Ticks of scheduled jobs that ran more than once (by the jobs' own log), with the
    /// replicas that ran them.
    fn duplicates(&self) -> Vec<(String, DateTime<Utc>, Vec<&'static str>)> {
        let mut runs: BTreeMap<_, Vec<_>> = BTreeMap::new();
        for e in self.entries() {
            if let Some(tick) = e.tick {
                runs.entry((e.job, tick)).or_default().push(e.replica);
            }
        }
        runs.into_iter()
            .filter(|(_, replicas)| replicas.len() > 1)
            .map(|((job, tick), replicas)| (job, tick, replicas))
            .collect()
    }
}

/// Marks the end of a run when dropped: a run whose future is dropped (fenced off) ends too.
struct EndOnDrop(Log, usize);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.0.0.lock().unwrap()[self.1].ended = Some(Instant::now());
    }
}

/// A job that works for `work`, stopping when cancelled, and logs its run.
struct Work {
    name: String,
    schedule: &'static str,
    replica: &'static str,
    work: Duration,
    log: Log,
}

#[async_trait]
impl Job for Work {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        "PostgreSQL restart test job"
    }
    fn schedule(&self) -> &str {
        self.schedule
    }
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        let index = {
            let mut log = self.log.0.lock().unwrap();
            log.push(Entry {
                replica: self.replica,
                job: self.name.clone(),
                tick: ctx.trigger().fire_time(),
                started: Instant::now(),
                ended: None,
            });
            log.len() - 1
        };
        let _end = EndOnDrop(self.log.clone(), index);
        tokio::select! {
            _ = ctx.cancellation().cancelled() => Err(JobError::Cancelled),
            _ = tokio::time::sleep(self.work) => Ok(JobOutput::processed(1)),
        }
    }
}

fn own(replica: &str) -> String {
    format!("own_{}", replica.trim_start_matches("replica-"))
}

/// A throwaway PostgreSQL cluster in a temporary directory, stopped and removed when dropped
/// (also when the test panics).
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Run the server tools as `postgres`: initdb refuses to run as root.
    as_postgres: bool,
}

impl Cluster {
    /// `initdb` a new cluster and start it on a free port; `None` (after saying why) when
    /// the PostgreSQL server binaries are missing outside CI.
    fn start() -> Option<Cluster> {
        let Some(bin) = server_binaries() else {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "pg_restart: no PostgreSQL server binaries (initdb, pg_ctl) found, and CI=true requires them"
            );
            eprintln!(
                "skipping pg_restart: no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on PATH"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        // A directory we just created is ours: its owner is our effective user.
        let as_postgres = std::os::unix::fs::MetadataExt::uid(&dir.path().metadata().unwrap()) == 0;
        if as_postgres {
            run(Command::new("chown").arg("postgres").arg(dir.path()));
        }
        let port = free_port();
        let cluster = Cluster {
            bin,
            dir,
            port,
            as_postgres,
        };
        run(cluster.tool("initdb").arg("-D").arg(cluster.data()).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]));
        cluster.pg_ctl_start();
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn tool(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// Start the server and wait until it accepts connections (`pg_ctl -w`).
    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        run(self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-o", &options, "-l"])
            .arg(self.dir.path().join("log"))
            .arg("start"));
    }

    /// Stop the server with `mode` (`fast`: sessions terminated, clean shutdown;
    /// `immediate`: processes killed, crash recovery at the next start).
    fn pg_ctl_stop(&self, mode: &str) {
        run(self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-m", mode, "stop"]));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Whatever state the test left it in; the temporary directory goes after this.
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-m", "immediate", "stop"])
            .output();
    }
}

/// The directory holding `initdb` and `pg_ctl`: the newest `/usr/lib/postgresql/N/bin`
/// (Debian's layout, not on PATH), else the first PATH entry that has both.
fn server_binaries() -> Option<PathBuf> {
    let has_both = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has_both(&bin).then_some((version, bin))
        })
        .collect();
    versioned.sort();
    versioned
        .pop()
        .map(|(_, bin)| bin)
        .or_else(|| std::env::split_paths(&std::env::var_os("PATH")?).find(|d| has_both(d)))
}

/// A port nothing listens on right now (the OS's pick for a listener we drop at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Run `command`, panicking with its output when it fails.
fn run(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether a new connection to `url` gets an answer to `SELECT 1`.
async fn answers(url: &str) -> bool {
    let Ok(Ok(mut c)) =
        tokio::time::timeout(Duration::from_secs(1), sqlx::PgConnection::connect(url)).await
    else {
        return false;
    };
    let ok = sqlx::query("SELECT 1").execute(&mut c).await.is_ok();
    let _ = c.close().await;
    ok
}

/// One replica: `tick`, its own every-second job and the long job, 3 s leases.
async fn replica(url: &str, name: &'static str, log: &Log) -> SchedulerHandle {
    let job = |job: String, schedule, work| Work {
        name: job,
        schedule,
        replica: name,
        work,
        log: log.clone(),
    };
    let registry = Registry::builder()
        .register(job(
            "tick".into(),
            "* * * * * *",
            Duration::from_millis(200),
        ))
        .register(job(own(name), "* * * * * *", Duration::from_millis(100)))
        // Never due in the test (1 January): only the manual trigger runs it.
        .register(job("long".into(), "0 0 0 1 1 *", LONG_WORK))
        .build()
        .unwrap();
    let mut config = SchedulerConfig::default();
    config.coordination.lease_ttl_secs = LEASE_TTL_SECS;
    config.coordination.instance = Some(name.into());
    config.cancel_grace_secs = 1;
    let db = Database::connect_with_max(url, 4).await.unwrap();
    Scheduler::builder(registry, db)
        .config(config)
        .start()
        .await
        .unwrap()
}

/// What one restart did.
struct Restart {
    /// Runs going when the stop began.
    going_at_stop: usize,
    /// Runs that started while `pg_ctl stop` was at work.
    started_during_stop: usize,
    stopped: Instant,
    stopped_utc: DateTime<Utc>,
    /// The first successful `SELECT 1` of the test after the start.
    answered: Instant,
    answered_utc: DateTime<Utc>,
}

/// Stop the server with `mode`, keep it down for [`OUTAGE`], start it again and return once
/// it answers a `SELECT 1` of the test.
async fn restart(cluster: &Arc<Cluster>, mode: &'static str, log: &Log) -> Restart {
    let stopping = Instant::now();
    let going_at_stop = log.going_at(stopping);
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.pg_ctl_stop(mode))
        .await
        .unwrap();
    let (stopped, stopped_utc) = (Instant::now(), Utc::now());
    let started_during_stop = log
        .entries()
        .iter()
        .filter(|e| e.started >= stopping)
        .count();
    let url = cluster.url();
    assert!(!answers(&url).await, "the server is down");
    // The fault injected: how long the server is away, not a wait for anything.
    tokio::time::sleep(OUTAGE).await;
    let c = cluster.clone();
    let starting = tokio::task::spawn_blocking(move || c.pg_ctl_start());
    // Polled beside `pg_ctl -w`: the moment the server answers is what resumption is measured
    // from, not the moment pg_ctl noticed.
    eventually(Duration::from_secs(60), "the server answers again", || {
        let url = url.clone();
        async move { answers(&url).await }
    })
    .await;
    let (answered, answered_utc) = (Instant::now(), Utc::now());
    starting.await.unwrap();
    Restart {
        going_at_stop,
        started_during_stop,
        stopped,
        stopped_utc,
        answered,
        answered_utc,
    }
}

/// Per replica, the time from the server answering again to the start of its own job's first
/// run after that, waiting until every replica has one.
async fn resumed(log: &Log, answered: Instant) -> Vec<(&'static str, Duration)> {
    eventually(Duration::from_secs(30), "every replica runs again", || {
        let log = log.clone();
        async move {
            REPLICAS
                .iter()
                .all(|r| log.first_after(&own(r), answered).is_some())
        }
    })
    .await;
    REPLICAS
        .iter()
        .map(|r| {
            let first = log.first_after(&own(r), answered).unwrap();
            (*r, first.started - answered)
        })
        .collect()
}

/// Seconds of `tick` in `(from, to]` that no replica ran.
fn ticks_missed(log: &Log, from: DateTime<Utc>, to: DateTime<Utc>) -> usize {
    let ran: Vec<_> = log
        .entries()
        .into_iter()
        .filter(|e| e.job == "tick")
        .filter_map(|e| e.tick)
        .collect();
    let mut missed = 0;
    let mut t = from.timestamp() + 1;
    while t <= to.timestamp() {
        if !ran.iter().any(|r| r.timestamp() == t) {
            missed += 1;
        }
        t += 1;
    }
    missed
}

fn ms(latencies: &[(&str, Duration)]) -> String {
    latencies
        .iter()
        .map(|(r, d)| format!("{r}:{}", d.as_millis()))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_between_ticks_and_mid_run() {
    // `RUST_LOG=barycenter_jobs_core=debug` shows the run path (ticks skipped, retried,
    // writes waiting for a connection) when a figure needs explaining.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let Some(cluster) = tokio::task::spawn_blocking(Cluster::start).await.unwrap() else {
        return;
    };
    let cluster = Arc::new(cluster);
    let url = cluster.url();
    let log = Log::default();
    let mut handles = Vec::new();
    for name in REPLICAS {
        handles.push(replica(&url, name, &log).await);
    }
    let began = Instant::now();
    eventually(
        Duration::from_secs(30),
        "every replica runs its job",
        || {
            let log = log.clone();
            async move {
                REPLICAS
                    .iter()
                    .all(|r| log.first_after(&own(r), began).is_some())
            }
        },
    )
    .await;

    // Between ticks: stop once this second's runs have all ended, with at least 500 ms left
    // before the next tick, so no run is going when the server goes away.
    eventually(
        Duration::from_secs(30),
        "a quiet moment between ticks",
        || {
            let log = log.clone();
            async move {
                let entries = log.entries();
                let now = Utc::now();
                // `tick` and each replica's own job: every run of this second has come and gone.
                let this_second = entries
                    .iter()
                    .filter(|e| e.tick.is_some_and(|t| t.timestamp() == now.timestamp()))
                    .count();
                this_second == 1 + REPLICAS.len()
                    && entries.iter().all(|e| e.ended.is_some())
                    && now.timestamp_subsec_millis() < 500
            }
        },
    )
    .await;
    let between = restart(&cluster, "fast", &log).await;
    let between_resumed = resumed(&log, between.answered).await;
    let between_tick = log
        .first_after("tick", between.answered)
        .map(|e| e.started - between.answered);
    let between_missed = ticks_missed(&log, between.stopped_utc, between.answered_utc);

    // Mid-run: the long run on replica A has renewed its lease at least once, and a tick's
    // runs are going, when the server is killed.
    let long = handles[0].trigger("long").await.unwrap();
    eventually(
        Duration::from_secs(30),
        "the long run renewed its lease",
        || {
            let log = log.clone();
            async move {
                log.entries()
                    .iter()
                    .any(|e| e.job == "long" && e.started.elapsed() > Duration::from_millis(1500))
            }
        },
    )
    .await;
    eventually(Duration::from_secs(30), "a tick's run is going", || {
        let log = log.clone();
        async move {
            log.entries()
                .iter()
                .any(|e| e.tick.is_some() && e.ended.is_none())
        }
    })
    .await;
    let mid = restart(&cluster, "immediate", &log).await;
    let mid_resumed = resumed(&log, mid.answered).await;
    let mid_tick = log
        .first_after("tick", mid.answered)
        .map(|e| e.started - mid.answered);
    let mid_missed = ticks_missed(&log, mid.stopped_utc, mid.answered_utc);
    let long_row = tokio::time::timeout(Duration::from_secs(30), long.wait())
        .await
        .expect("the long run's end is recorded after the restart")
        .unwrap();
    // Two more ticks after the resumption, to see that the replicas go on once back.
    let settled = Utc::now() + chrono::Duration::seconds(2);
    eventually(
        Duration::from_secs(30),
        "ticks run after the restart",
        || {
            let log = log.clone();
            async move {
                log.entries()
                    .iter()
                    .any(|e| e.job == "tick" && e.tick.is_some_and(|t| t >= settled))
            }
        },
    )
    .await;
    for handle in &handles {
        handle.shutdown(Duration::from_secs(5)).await.unwrap();
    }

    // The history, through a pool of the test's own.
    let store = ExecutionStore::new(Database::connect(&url).await.unwrap());
    let rows: Vec<Execution> = store
        .list(&ExecutionQuery::new().limit(10_000))
        .await
        .unwrap();
    let open = rows.iter().filter(|r| r.completed_at.is_none()).count();
    let mut scheduled = BTreeMap::new();
    for r in &rows {
        if let Some(tick) = r.scheduled_for {
            *scheduled
                .entry((r.job_name.clone(), tick))
                .or_insert(0usize) += 1;
        }
    }
    let history_duplicates = scheduled.values().filter(|n| **n > 1).count();
    let log_duplicates = log.duplicates();
    let tick_runs = rows.iter().filter(|r| r.job_name == "tick").count();
    let abandoned = rows
        .iter()
        .filter(|r| r.status == ExecutionStatus::Abandoned)
        .count();
    let bound = TICK + RESUME_MARGIN;
    eprintln!(
        "RELIABILITY scenario=pg_restart_between_ticks backend=Postgres stop=fast outage_ms={} down_ms={} runs_going_at_stop={} runs_started_during_stop={} resume_ms={} tick_resume_ms={:?} bound_ms={} ticks_missed_during_outage={between_missed}",
        OUTAGE.as_millis(),
        (between.answered - between.stopped).as_millis(),
        between.going_at_stop,
        between.started_during_stop,
        ms(&between_resumed),
        between_tick.map(|d| d.as_millis()),
        bound.as_millis(),
    );
    eprintln!(
        "RELIABILITY scenario=pg_restart_mid_run backend=Postgres stop=immediate outage_ms={} down_ms={} runs_going_at_stop={} runs_started_during_stop={} resume_ms={} tick_resume_ms={:?} bound_ms={} ticks_missed_during_outage={mid_missed} long_run={} long_error={:?} duplicates_history={history_duplicates} duplicates_log={} open_rows={open} abandoned_rows={abandoned} tick_rows={tick_runs} rows={}",
        OUTAGE.as_millis(),
        (mid.answered - mid.stopped).as_millis(),
        mid.going_at_stop,
        mid.started_during_stop,
        ms(&mid_resumed),
        mid_tick.map(|d| d.as_millis()),
        bound.as_millis(),
        long_row.status.as_str(),
        long_row.error_message,
        log_duplicates.len(),
        rows.len(),
    );

    assert_eq!(between.going_at_stop, 0, "the fast stop fell between ticks");
    assert!(
        mid.going_at_stop >= 2,
        "the immediate stop hit the long run and a tick"
    );
    for (replica, took) in between_resumed.iter().chain(&mid_resumed) {
        assert!(
            *took <= bound,
            "{replica} resumed {took:?} after the server answered again (bound {bound:?})"
        );
    }
    assert!(
        matches!(
            long_row.status,
            ExecutionStatus::Succeeded | ExecutionStatus::Failed | ExecutionStatus::Abandoned
        ),
        "the long run: {long_row:?}"
    );
    assert_eq!(history_duplicates, 0, "a tick recorded twice");
    assert!(
        log_duplicates.is_empty(),
        "ticks run twice: {log_duplicates:?}"
    );
    assert_eq!(
        open,
        0,
        "rows left open: {:?}",
        rows.iter()
            .filter(|r| r.completed_at.is_none())
            .collect::<Vec<_>>()
    );
}
