//! The embedded server: the four built-in cleanups on a database, with the admin API.
//!
//! ```text
//! cargo run --example server [-- --database-url URL] [--listen ADDR] [--config FILE] [--no-seed]
//! ```
//!
//! With no arguments it opens (creating it if needed) `barycenter-jobs.db` in the current
//! directory, creates the four host tables in Barycenter's layout if they are missing, adds a
//! handful of expired and live demo rows to tables it just created, runs the scheduler, and
//! serves the admin API on `http://127.0.0.1:8081/admin/jobs`, the dashboard on
//! `/admin/jobs/ui` and GraphiQL (scripts from unpkg.com) on `/admin/jobs/playground`.
//!
//! Pointed at an existing Barycenter database it changes nothing but the job tables (upgraded
//! in place) and the rows the jobs delete: host tables that exist are left alone and demo rows
//! only go into tables it created itself.
//!
//! `BARYCENTER_JOBS_ADMIN_TOKEN` (role `operate`: queries and mutations) and
//! `BARYCENTER_JOBS_READONLY_TOKEN` (role `read`: queries only), when either is set, make
//! every admin request need `Authorization: Bearer TOKEN`, except `GET /admin/jobs/health` (200 ok / 503 overdue, for
//! probes). `GET /admin/jobs/metrics` serves Prometheus metrics. With neither set:
//!
//! - listening on a loopback address (the default `127.0.0.1:8081`), the API is open to
//!   clients on this machine only ([`allow_unauthenticated`]): a connection from any other
//!   address, or a request whose `Host` is not a loopback name, gets 403, so neither another
//!   machine nor a web page rebinding its DNS name to 127.0.0.1 reaches it;
//! - listening on any other address (`--listen 0.0.0.0:8081`), the server does not run open:
//!   it generates a random operate token at start, prints it once next to the dashboard
//!   address (`operate token: ...`), and requires it. The dashboard asks for it on its first
//!   401. Set `BARYCENTER_JOBS_ADMIN_TOKEN` to choose the token instead.
//!
//! [`allow_unauthenticated`]: barycenter_jobs::graphql::AdminServiceBuilder::allow_unauthenticated
//!
//! `BARYCENTER_JOBS_DEMO_SLOW_JOB=1` adds a fifth job, `demo_slow_run`, to try the run
//! controls on (the dashboard's tests do): scheduled only once an hour, so it runs when
//! triggered, it reports one record every 100 ms for up to 5 minutes, so its count grows
//! while it runs, and stops with `cancelled` as soon as it is cancelled, printing
//! `demo_slow_run: run ID cancelled after N records`. Without the variable the job does not
//! exist.
//!
//! # Shutdown
//!
//! SIGINT or SIGTERM shut the server down within a fixed budget, 28 s by default, so that it
//! is done before an orchestrator's 30 s grace period (Kubernetes' default
//! `terminationGracePeriodSeconds`) ends in SIGKILL. From the signal on:
//!
//! | when (default) | what |
//! |---|---|
//! | 0 s | no new connections are accepted and no new runs fire; open HTTP requests and running jobs go on, side by side |
//! | 5 s (`http_drain_secs`) | HTTP connections still open are dropped |
//! | 15 s (`grace_secs`) | jobs still running are cancelled: they stop at their next batch boundary |
//! | 20 s (+ `cancel_grace_secs`) | a job that has not stopped is dropped; every run is recorded as succeeded or cancelled and its lease released |
//! | 28 s (`budget_secs`) | the process exits, finished or not (exit status 1 if not) |
//! | 30 s | the orchestrator's SIGKILL, which therefore never comes |
//!
//! The 8 s between the cancel grace and the budget are for the final writes: once shutdown
//! has begun, the end of each run is retried for up to 3 s against a database that is briefly
//! unavailable, and the lease release is bounded by the lease statement timeout (a sixth of
//! the TTL, 5 s at the default 30 s). A run cut off by the budget stays open and is closed as
//! `abandoned` by the next replica that claims the job. The budget counts from the signal and
//! the HTTP drain overlaps the jobs' grace, so the drain adds nothing while it is shorter.
//! The server refuses, at start-up, a configuration whose `grace_secs + cancel_grace_secs`
//! or `http_drain_secs` reaches `budget_secs`. A clean shutdown exits with status 0.
//!
//! # Configuration
//!
//! The `--config` file is TOML: [`SchedulerConfig`]'s keys at the top level, plus
//! `[builtin]` and `[shutdown]`:
//!
//! ```toml
//! default_timeout_secs = 3600          # jobs without their own timeout
//! cancel_grace_secs = 5                # a cancelled run's time to stop before it is dropped
//!
//! [jobs.cleanup_expired_sessions]      # per job: schedule, time_zone, enabled, timeout_secs, misfire
//! schedule = "0 */10 * * * *"
//! timeout_secs = 600
//!
//! [jobs.cleanup_expired_device_codes]
//! enabled = false                      # not scheduled; can still be triggered
//!
//! [retention]                          # execution history
//! keep_days = 30                       # 0 keeps everything
//!
//! [coordination]                       # replicas sharing one database
//! enabled = true
//! lease_ttl_secs = 30
//!
//! [alerts]                             # one POST per event per fleet (https is on here)
//! # webhook_url = "https://hooks.slack.com/services/T000/B000/XXXX"
//! # (per job: alert_after_failures = 3, ping_url = "https://hc-ping.com/UUID")
//!
//! [clock]                              # where cut-offs come from
//! cutoffs = "database"
//!
//! [tables]
//! executions = "job_executions"
//! leases = "job_leases"
//!
//! [shutdown]                           # see "Shutdown" above
//! http_drain_secs = 5
//! grace_secs = 15
//! budget_secs = 28
//!
//! [builtin.batch]                      # the cleanups' batched deletes
//! target_statement_ms = 15             # default: 10 on SQLite, 20 elsewhere
//!
//! [builtin.refresh_tokens]
//! rotation_grace_period_secs = 1800
//!
//! [builtin.sessions]                   # other table / column names, time formats
//! table = "sessions"
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use barycenter_jobs::builtin::BuiltinConfig;
use barycenter_jobs::graphql::{AdminService, Metrics, PeerAddr};
use barycenter_jobs::{
    Database, Job, JobContext, JobError, JobOutput, Registry, Scheduler, SchedulerConfig,
    async_trait,
};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

const USAGE: &str =
    "usage: server [--database-url URL] [--listen ADDR] [--config FILE] [--no-seed]";

/// The `--config` file: the scheduler's settings at the top level, the server's own in
/// sections of their own.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    #[serde(flatten)]
    scheduler: SchedulerConfig,
    builtin: BuiltinConfig,
    shutdown: ShutdownConfig,
}

/// `[shutdown]`: how the time between SIGTERM and exit is spent (see the module docs).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ShutdownConfig {
    /// Seconds open HTTP requests get to finish before their connections are dropped.
    http_drain_secs: u64,
    /// Seconds running jobs get to finish before they are cancelled.
    grace_secs: u64,
    /// Seconds after which the process exits whatever is left.
    budget_secs: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            http_drain_secs: 5,
            grace_secs: 15,
            budget_secs: 28,
        }
    }
}

impl ShutdownConfig {
    /// Refuse a split that leaves no time for the final writes: a budget that is cut short
    /// leaves runs open until another replica closes them as abandoned.
    fn check(&self, cancel_grace_secs: u64) -> Result<(), String> {
        let jobs = self.grace_secs + cancel_grace_secs;
        if jobs >= self.budget_secs || self.http_drain_secs >= self.budget_secs {
            return Err(format!(
                "[shutdown] budget_secs = {} leaves no time for the final writes after \
                 grace_secs + cancel_grace_secs = {jobs} (http_drain_secs = {})",
                self.budget_secs, self.http_drain_secs
            ));
        }
        Ok(())
    }
}

struct Args {
    database_url: String,
    listen: String,
    config: Option<String>,
    seed: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        database_url: "sqlite://barycenter-jobs.db".into(),
        listen: "127.0.0.1:8081".into(),
        config: None,
        seed: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--database-url" => args.database_url = value("--database-url")?,
            "--listen" => args.listen = value("--listen")?,
            "--config" => args.config = Some(value("--config")?),
            "--no-seed" => args.seed = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

#[path = "common/mod.rs"]
mod common;
#[path = "server/seed.rs"]
mod seed;

#[tokio::main]
async fn main() {
    common::init_tracing();
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let file: FileConfig = match &args.config {
        Some(path) => {
            toml::from_str(&std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?)
                .map_err(|e| format!("{path}: {e}"))?
        }
        None => FileConfig::default(),
    };
    let stop = file.shutdown;
    stop.check(file.scheduler.cancel_grace_secs)?;

    let db = Database::connect(&args.database_url).await?;
    if args.seed {
        seed::demo_data(&db).await?;
    }

    let mut registry =
        barycenter_jobs::builtin::configure(Registry::builder().with_inventory(), &file.builtin)?;
    if std::env::var("BARYCENTER_JOBS_DEMO_SLOW_JOB").is_ok_and(|v| v == "1") {
        registry = registry.register(DemoSlowRun);
    }
    let registry = registry.build()?;
    // Prometheus metrics: one observer of the scheduler's runs, served on /admin/jobs/metrics.
    let metrics = Metrics::new();
    let scheduler = Scheduler::builder(registry, db)
        .config(file.scheduler)
        .observer(metrics.clone())
        .start()
        .await?;

    // /admin/jobs/health is open for probes (job names and overdue state only); metrics
    // and GraphQL keep the token.
    // GraphiQL loads React and GraphiQL from unpkg.com, so it is off unless the host says
    // so; this local demo does. The dashboard on /admin/jobs/ui needs nothing from outside.
    let mut admin = AdminService::builder(scheduler.clone())
        .metrics(metrics)
        .open_health()
        .graphiql_from_cdn();
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let addr: SocketAddr = listener.local_addr()?;

    // Operate (queries and mutations) and read-only tokens. With neither: unauthenticated
    // use for clients on this machine when the listener is loopback only (so the README's
    // curl lines work out of the box); otherwise a token made up now, since the admin API
    // pauses and runs jobs and must not be open to the network.
    let token = |name: &str| std::env::var(name).ok().filter(|t| !t.is_empty());
    let mut operate = token("BARYCENTER_JOBS_ADMIN_TOKEN");
    let read = token("BARYCENTER_JOBS_READONLY_TOKEN");
    let mut generated = false;
    if operate.is_none() && read.is_none() {
        if addr.ip().to_canonical().is_loopback() {
            admin = admin.allow_unauthenticated();
        } else {
            operate = Some(random_token()?);
            generated = true;
        }
    }
    if let Some(t) = &operate {
        admin = admin.bearer_token(t);
    }
    if let Some(t) = read {
        admin = admin.read_only_token(t);
    }
    let admin = admin.build();
    let app = axum::Router::new().nest_service("/admin/jobs", admin);

    println!("admin API:  http://{addr}/admin/jobs");
    println!("dashboard:  http://{addr}/admin/jobs/ui");
    if let Some(t) = operate.as_ref().filter(|_| generated) {
        // Printed once, here: it is not logged anywhere else.
        println!("operate token: {t}");
        println!(
            "            generated for this run: {addr} is reachable from other machines and \
             BARYCENTER_JOBS_ADMIN_TOKEN is unset; the dashboard asks for it, curl sends it \
             as -H 'Authorization: Bearer TOKEN'"
        );
    }
    println!("GraphiQL:   http://{addr}/admin/jobs/playground");
    println!("health:     http://{addr}/admin/jobs/health");
    println!("metrics:    http://{addr}/admin/jobs/metrics");
    let auth_header = if operate.is_some() {
        " -H 'Authorization: Bearer TOKEN'"
    } else {
        ""
    };
    println!(
        "try:        curl -s -X POST http://{addr}/admin/jobs{auth_header} -H 'Content-Type: application/json' -d '{{\"query\": \"{{ availableJobs {{ name description schedule }} }}\"}}'"
    );

    // Our own accept loop rather than axum::serve: its graceful shutdown waits for every
    // connection without bound, and a client that keeps a request open would hold the
    // process past the orchestrator's grace period.
    let mut connections = JoinSet::new();
    // Dropping the sender tells every connection to finish its request and close.
    let (drain_tx, drain_rx) = watch::channel(());
    let signal = common::shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(stream, peer, app.clone(), drain_rx.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Reap finished connections so the set does not grow with every request served.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    let begun = Instant::now();
    drop(listener);
    drop(drain_tx);
    println!("shutting down: draining HTTP requests, waiting for running jobs");

    let http = drain(connections, Duration::from_secs(stop.http_drain_secs));
    let jobs = scheduler.shutdown(Duration::from_secs(stop.grace_secs));
    let budget = Duration::from_secs(stop.budget_secs);
    match tokio::time::timeout(budget, async { tokio::join!(http, jobs).1 }).await {
        Ok(result) => result?,
        Err(_) => {
            eprintln!(
                "error: shutdown budget of {}s used up; runs still open are closed as abandoned \
                 by the next replica that claims their job",
                stop.budget_secs
            );
            // Not a return from main: the runtime's drop would wait for blocking tasks.
            std::process::exit(1);
        }
    }
    println!("stopped after {:.1}s", begun.elapsed().as_secs_f64());
    Ok(())
}

/// Serve one HTTP/1 connection from `peer` until it closes, or, once the drain begins, until
/// its request in progress is answered.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: axum::Router,
    mut drain: watch::Receiver<()>,
) {
    // The admin service tells clients on this machine from others by this address, never by
    // what the request says about itself.
    let app = tower::ServiceBuilder::new()
        .map_request(move |mut req: http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(PeerAddr(peer));
            req
        })
        .service(app);
    let conn =
        http1::Builder::new().serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(conn);
    let result = tokio::select! {
        // The connection first: a request whose bytes have arrived by the time the drain
        // begins is in progress, and is answered.
        biased;
        result = conn.as_mut() => result,
        _ = drain.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection closed");
    }
}

/// `demo_slow_run` (only with `BARYCENTER_JOBS_DEMO_SLOW_JOB=1`): a run long enough to watch
/// its count grow and to cancel it. One record every 100 ms, for at most 5 minutes.
struct DemoSlowRun;

#[async_trait]
impl Job for DemoSlowRun {
    fn name(&self) -> &str {
        "demo_slow_run"
    }

    fn description(&self) -> &str {
        "Demo: one record every 100 ms for up to 5 minutes, until cancelled"
    }

    fn schedule(&self) -> &str {
        "0 0 * * * *"
    }

    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        const STEPS: u64 = 5 * 60 * 10;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate
        for _ in 0..STEPS {
            tokio::select! {
                _ = ctx.cancellation().cancelled() => {
                    // What the history must say it did (the dashboard's test compares).
                    println!(
                        "demo_slow_run: run {} cancelled after {} records",
                        ctx.execution_id(),
                        ctx.processed_so_far().unwrap_or(0)
                    );
                    return Err(JobError::Cancelled);
                }
                _ = tick.tick() => ctx.report_processed(1),
            }
        }
        Ok(JobOutput::processed(STEPS))
    }
}

/// 32 bytes from the operating system's random source, as 64 hex digits: an operate token
/// nobody can guess, for a run that would otherwise be open to the network.
fn random_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        format!("no random source for the admin token ({e}): set BARYCENTER_JOBS_ADMIN_TOKEN")
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Give open connections up to `within` to finish, then drop those that have not.
async fn drain(mut connections: JoinSet<()>, within: Duration) {
    let all_done = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(within, all_done).await.is_err() {
        tracing::warn!(
            open = connections.len(),
            "HTTP drain time over: dropping open connections"
        );
        connections.shutdown().await;
    }
}
