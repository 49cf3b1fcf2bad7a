//! The database work one admin request costs (issue 22): the store-backed fields are loaded
//! once per request (a batch included) however many aliases and jobs it names, and aliases
//! of `availableJobs` count their per-job fields once per job in the complexity limit.
//!
//! Statements are counted from sqlx's own `sqlx::query` events (one per statement it runs,
//! on every backend), by a process-wide subscriber that counts only the events emitted
//! inside a [`measured`] request's span: the scheduler's own background statements (its
//! settings poll, its fleet row) during a request are not the request's. SQLite runs its
//! statements on a worker thread, which enters the span current when the statement was
//! sent, so they count too. The tests of this file hold [`SERIAL`] all the same.
//!
//! On PostgreSQL, a flood of admin reads made to hang (another session locks the history
//! table) holds no more than the service's share of the pool: a run with a 3 s lease goes on
//! renewing it and succeeds.

mod common;

use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use barycenter_jobs_core::{Backend, ExecutionStatus, Registry, Scheduler, SchedulerConfig};
use barycenter_jobs_graphql::AdminService;
use common::{Fixture, GatedJob, post, post_query, send};
use http::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, Row};
use tokio::sync::{Notify, Semaphore};
use tracing::subscriber::Interest;
use tracing::{Event, Instrument, Metadata, Subscriber, span};

/// One test of this file at a time (see the module docs).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The target of the span [`measured`] opens around a request.
const MEASURED: &str = "load::measured";
const SQLX_QUERY: &str = "sqlx::query";
/// The id of the measured span; no other span is enabled.
const MEASURED_SPAN: u64 = 1;
/// The metadata of the measured span (one callsite), kept when it is first opened.
static MEASURED_META: OnceLock<&'static Metadata<'static>> = OnceLock::new();

thread_local! {
    /// The spans this thread has entered and not left, innermost last.
    static ENTERED: RefCell<Vec<&'static Metadata<'static>>> = const { RefCell::new(Vec::new()) };
}

/// Counts sqlx's statement events inside the measured span; ignores everything else.
struct StatementCounter(Arc<AtomicUsize>);

impl StatementCounter {
    fn wanted(meta: &Metadata<'_>) -> bool {
        meta.target() == SQLX_QUERY || meta.target() == MEASURED
    }
}

impl Subscriber for StatementCounter {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if Self::wanted(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        Self::wanted(meta)
    }
    fn new_span(&self, attrs: &span::Attributes<'_>) -> span::Id {
        MEASURED_META.get_or_init(|| attrs.metadata());
        span::Id::from_u64(MEASURED_SPAN)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &Event<'_>) {
        let inside = ENTERED.with(|entered| !entered.borrow().is_empty());
        if inside && event.metadata().target() == SQLX_QUERY {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn enter(&self, _: &span::Id) {
        if let Some(meta) = MEASURED_META.get() {
            ENTERED.with(|entered| entered.borrow_mut().push(meta));
        }
    }
    fn exit(&self, _: &span::Id) {
        ENTERED.with(|entered| {
            entered.borrow_mut().pop();
        });
    }
    // SQLite's worker thread enters `Span::current()` of the task that sent the statement.
    fn current_span(&self) -> tracing_core::span::Current {
        match ENTERED.with(|entered| entered.borrow().last().copied()) {
            Some(meta) => tracing_core::span::Current::new(span::Id::from_u64(MEASURED_SPAN), meta),
            None => tracing_core::span::Current::none(),
        }
    }
}

/// The statements counted so far (installing the counter on first use).
fn statements() -> usize {
    static COUNT: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
    COUNT
        .get_or_init(|| {
            let count = Arc::new(AtomicUsize::new(0));
            tracing::subscriber::set_global_default(StatementCounter(Arc::clone(&count)))
                .expect("no other global subscriber in this test binary");
            count
        })
        .load(Ordering::Relaxed)
}

/// Runs `request` and returns its output with the statements it ran: those run while its
/// span is entered, on whichever thread polls it or runs a statement for it.
async fn measured<F: Future>(request: F) -> (F::Output, usize) {
    let before = statements();
    let out = request
        .instrument(tracing::info_span!(target: MEASURED, "measured"))
        .await;
    (out, statements() - before)
}

/// The start of `v` as text, for assertion messages (answers here are megabytes long).
fn short(v: &Value) -> String {
    v.to_string().chars().take(400).collect()
}

/// The batch of issue 22: 16 operations, each with 70 aliases of the four health fields of
/// every job.
fn issue_batch() -> String {
    let aliases: String = (0..70)
        .map(|i| {
            format!("a{i}: availableJobs {{ lastSuccessAt lastFailureAt overdue overdueSince }} ")
        })
        .collect();
    let op = json!({ "query": format!("{{ {aliases} }}") });
    Value::Array(vec![op; 16]).to_string()
}

/// The batch above, plus `lastExecution`, `health` and the per-job `job` field, which read
/// the same store data.
fn wider_batch() -> String {
    let aliases: String = (0..70)
        .map(|i| {
            format!(
                "a{i}: availableJobs {{ name lastSuccessAt lastFailureAt overdue overdueSince \
                 lastExecution {{ id status }} }} h{i}: health {{ status overdueJobs {{ name }} }} \
                 j{i}: job(name: \"failing_job\") {{ overdue lastExecution {{ id }} }} "
            )
        })
        .collect();
    let op = json!({ "query": format!("{{ {aliases} }}") });
    Value::Array(vec![op; 16]).to_string()
}

/// The batch of the issue is refused by the default complexity limit before it reads
/// anything: 70 aliases of a list of jobs count their fields once per job.
async fn issue_batch_is_refused(backend: Backend) {
    let _serial = SERIAL.lock().await;
    let f = Fixture::on(barycenter_jobs_test_support::fresh(backend).await, true).await;
    let svc = f.service();
    let (answer, cost) = measured(send(svc.clone(), post(issue_batch()))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let answers = answer.json();
    let answers = answers.as_array().expect("a batch answer");
    assert_eq!(answers.len(), 16);
    for a in answers {
        assert_eq!(a["data"], Value::Null, "{}", short(a));
        let message = a["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("too complex"), "{}", short(a));
    }
    eprintln!("{backend:?}: the refused batch cost {cost} statements");
    assert!(cost <= 50, "the refused batch cost {cost} statements");

    // One operation with a few aliases is still answered.
    let few: String = (0..5)
        .map(|i| {
            format!("a{i}: availableJobs {{ lastSuccessAt lastFailureAt overdue overdueSince }} ")
        })
        .collect();
    let answer = send(svc, post_query(&format!("{{ {few} }}"))).await;
    assert!(answer.json().get("errors").is_none(), "{}", answer.text());
    f.shutdown().await;
}

/// With no complexity limit at all, the batch (and a wider one that also reads
/// `lastExecution`, `health` and `job`) is answered with at most 50 statements, and every
/// alias gives the same answer as a request of its own.
async fn store_fields_load_once_per_request(backend: Backend) {
    let _serial = SERIAL.lock().await;
    let f = Fixture::on(barycenter_jobs_test_support::fresh(backend).await, true).await;
    let run = f
        .handle
        .trigger("failing_job")
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let svc = f.builder().limit_complexity(None).build();

    let single = send(
        svc.clone(),
        post_query(
            "{ availableJobs { name lastSuccessAt lastFailureAt overdue overdueSince \
             lastExecution { id status } } }",
        ),
    )
    .await
    .json();
    let jobs = single["data"]["availableJobs"].clone();
    let failing = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "failing_job")
        .unwrap()
        .clone();
    assert_eq!(failing["lastExecution"]["id"], json!(run.id.to_string()));
    assert!(failing["lastFailureAt"].is_string(), "{failing}");

    for (name, batch) in [("issue", issue_batch()), ("wider", wider_batch())] {
        let (answer, cost) = measured(send(svc.clone(), post(batch))).await;
        assert_eq!(answer.status, StatusCode::OK);
        let answers = answer.json();
        let answers = answers.as_array().expect("a batch answer").clone();
        assert_eq!(answers.len(), 16);
        for a in &answers {
            assert!(a.get("errors").is_none(), "{}", short(a));
            for i in [0, 69] {
                let got = a["data"][format!("a{i}")].as_array().unwrap();
                for (got, want) in got.iter().zip(jobs.as_array().unwrap()) {
                    for field in ["lastSuccessAt", "lastFailureAt", "overdue", "overdueSince"] {
                        assert_eq!(got[field], want[field], "{field} of {want}");
                    }
                }
            }
        }
        if name == "wider" {
            let a = &answers[15]["data"];
            assert_eq!(a["a3"], jobs, "{}", short(a));
            assert_eq!(a["h69"]["status"], json!("ok"));
            assert_eq!(a["j0"]["lastExecution"]["id"], json!(run.id.to_string()));
        }
        eprintln!("{backend:?}: the {name} batch cost {cost} statements");
        assert!(cost <= 50, "the {name} batch cost {cost} statements");
    }

    // The fleet and a run's log: read once per request, however many aliases name them.
    let aliases: String = (0..70)
        .map(|i| format!("f{i}: fleet {{ instance }} "))
        .collect();
    let logs: String = (0..70)
        .map(|i| format!("l{i}: logs {{ message }} "))
        .collect();
    let query = format!(
        r#"{{ {aliases} run: jobExecution(id: "{}") {{ {logs} }} }}"#,
        run.id
    );
    let (answer, cost) = measured(send(svc.clone(), post_query(&query))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let answer = answer.json();
    assert!(answer.get("errors").is_none(), "{}", short(&answer));
    assert_eq!(answer["data"]["f69"], answer["data"]["f0"]);
    assert_eq!(
        answer["data"]["f0"].as_array().map(Vec::len),
        Some(1),
        "{}",
        short(&answer)
    );
    assert_eq!(answer["data"]["run"]["l69"], answer["data"]["run"]["l0"]);
    eprintln!("{backend:?}: 70 aliases of fleet and of logs cost {cost} statements");
    assert!(
        cost <= 3,
        "70 aliases of fleet and of logs cost {cost} statements"
    );

    // `/health` and `/metrics`: one read each.
    for path in ["/admin/jobs/health", "/admin/jobs/metrics"] {
        let req = http::Request::get(path)
            .body(http_body_util::Full::default())
            .unwrap();
        let (answer, cost) = measured(send(svc.clone(), req)).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text());
        eprintln!("{backend:?}: {path} cost {cost} statements");
        assert!(cost <= 3, "{path} cost {cost} statements");
    }
    f.shutdown().await;
}

/// A mutation drops what the request loaded before it: a job read after `triggerJob` in
/// the same request shows the run it started.
async fn mutations_see_their_own_changes(backend: Backend) {
    let _serial = SERIAL.lock().await;
    let f = Fixture::on(barycenter_jobs_test_support::fresh(backend).await, true).await;
    let svc = f.service();
    let answer = send(
        svc,
        post_query(
            r#"mutation {
                a: pauseJob(jobName: "failing_job") { job { lastExecution { id } lastFailureAt } }
                t: triggerJob(jobName: "failing_job") { executionId }
                b: resumeJob(jobName: "failing_job") { job { lastExecution { id } } }
            }"#,
        ),
    )
    .await;
    let json = answer.json();
    assert!(json.get("errors").is_none(), "{json}");
    let data = &json["data"];
    assert_eq!(data["a"]["job"]["lastExecution"], Value::Null, "{data}");
    assert_eq!(
        data["b"]["job"]["lastExecution"]["id"], data["t"]["executionId"],
        "{data}"
    );
    f.shutdown().await;
}

/// The database's clock in milliseconds, as the lease statements read it.
const NOW_MS: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// Admin reads that hang hold at most the service's share of the pool (one connection of
/// the test pool's six): a run whose 3 s lease needs renewing every second goes on renewing
/// it while 48 reads wait, and succeeds.
///
/// The reads hang because another session holds an exclusive lock on the history table,
/// which every one of them reads; the lease table is not locked. So nothing depends on how
/// fast the reads are: without the bound, six of them hold the six connections for as long
/// as the lock is held, no renewal gets a connection, and the run is cancelled 2.4 s after
/// its last renewal. The test waits for proof of the opposite (a renewal a whole TTL after
/// the lock was taken, while every read of the flood is still waiting), then lets go.
async fn admin_reads_leave_room_for_lease_renewals() {
    let _serial = SERIAL.lock().await;
    let t = barycenter_jobs_test_support::postgres().await;
    assert_eq!(t.db.max_connections(), 6, "the test pool");
    let started = Arc::new(Notify::new());
    let release = Arc::new(Semaphore::new(0));
    let registry = Registry::builder()
        .register(GatedJob {
            started: Arc::clone(&started),
            release: Arc::clone(&release),
        })
        .build()
        .unwrap();
    let mut config = SchedulerConfig::default();
    config.coordination.lease_ttl_secs = 3;
    let handle = Scheduler::builder(registry, t.db.clone())
        .config(config)
        .start()
        .await
        .unwrap();
    let svc = AdminService::builder(handle.clone())
        .allow_unauthenticated()
        .build();
    let run = handle.trigger("gated_job").await.unwrap();
    started.notified().await;

    // Another session takes the history table: every admin read now waits on it.
    let mut locker = sqlx::PgConnection::connect(&t.url).await.unwrap();
    let mut tx = locker.begin().await.unwrap();
    sqlx::query("LOCK TABLE job_executions IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let locked_at: i64 = sqlx::query(NOW_MS)
        .fetch_one(&mut *tx)
        .await
        .unwrap()
        .get(0);

    // The flood: 48 requests that all read the history, sent at once and each answered
    // once the lock is gone.
    let flood: Vec<_> = (0..48)
        .map(|i| {
            let svc = svc.clone();
            let req = match i % 3 {
                0 => post_query("{ availableJobs { name lastSuccessAt lastExecution { id } } }"),
                1 => post_query("{ health { status } jobLogs(limit: 5) { id } }"),
                _ => http::Request::get("/admin/jobs/health")
                    .body(http_body_util::Full::default())
                    .unwrap(),
            };
            tokio::spawn(send(svc, req))
        })
        .collect();

    // Reads are waiting on the lock (so the flood has reached the database)...
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query(
            "SELECT count(*) FROM pg_locks \
             WHERE NOT granted AND relation = 'job_executions'::regclass",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap()
        .get(0);
        if waiting >= 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no admin read reached the locked history"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...and the lease is renewed a whole TTL after the lock was taken: past the moment the
    // fence would have cancelled the run had no renewal got a connection since.
    let renewed_past = locked_at + 2 * 3_000;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let expires: i64 =
            sqlx::query("SELECT expires_at_ms FROM job_leases WHERE job_name = 'gated_job'")
                .fetch_one(&mut *tx)
                .await
                .unwrap()
                .get(0);
        if expires > renewed_past {
            break;
        }
        assert!(
            handle.job("gated_job").unwrap().running,
            "the run ended while admin reads were waiting: its lease was not renewed"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the lease was not renewed while admin reads were waiting (expires at {expires}, \
             locked at {locked_at})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        flood.iter().all(|h| !h.is_finished()),
        "every read of the flood was still waiting during the renewals"
    );
    assert!(handle.job("gated_job").unwrap().running);

    // Let go: the flood is answered, and the run ends as the job says.
    tx.rollback().await.unwrap();
    for h in flood {
        let answer = h.await.unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let json = answer.json();
        assert!(json.get("errors").is_none(), "{}", short(&json));
    }
    release.add_permits(1);
    let done = run.wait().await.unwrap();
    assert_eq!(
        done.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        done.error_message
    );
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
}

barycenter_jobs_test_support::server_test!(postgres, admin_reads_leave_room_for_lease_renewals);

macro_rules! on_every_backend {
    ($($case:ident),+ $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$case(barycenter_jobs_core::Backend::Sqlite).await;
            }
            async fn on_postgres() {
                super::$case(barycenter_jobs_core::Backend::Postgres).await;
            }
            async fn on_mysql() {
                super::$case(barycenter_jobs_core::Backend::MySql).await;
            }
            barycenter_jobs_test_support::server_test!(postgres, on_postgres);
            barycenter_jobs_test_support::server_test!(mysql, on_mysql);
        }
    )+};
}

on_every_backend!(
    issue_batch_is_refused,
    store_fields_load_once_per_request,
    mutations_see_their_own_changes,
);
