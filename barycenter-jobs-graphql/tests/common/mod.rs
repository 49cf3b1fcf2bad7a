//! Shared fixtures: a scheduler with stand-ins for the four built-in jobs (same names,
//! descriptions and schedules as the seed document), a job that stays running until the test
//! releases it, and a job that always fails.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use barycenter_jobs_core::{
    Database, Job, JobContext, JobError, JobOutput, ManualClock, Registry, Scheduler,
    SchedulerHandle, async_trait,
};
use barycenter_jobs_graphql::{AdminService, AdminServiceBuilder, PeerAddr};
use barycenter_jobs_test_support::TestDb;
use bytes::Bytes;
use chrono::{TimeZone, Utc};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tokio::sync::{Notify, Semaphore};
use tower::ServiceExt;

/// The four jobs of the seed document, as `(name, description, cron)`.
pub const SEED_JOBS: [(&str, &str, &str); 4] = [
    (
        "cleanup_expired_sessions",
        "Clean up expired user sessions",
        "0 0 * * * *",
    ),
    (
        "cleanup_expired_refresh_tokens",
        "Clean up expired refresh tokens",
        "0 30 * * * *",
    ),
    (
        "cleanup_expired_challenges",
        "Clean up expired WebAuthn challenges",
        "0 */5 * * * *",
    ),
    (
        "cleanup_expired_device_codes",
        "Clean up expired device authorization codes",
        "0 45 * * * *",
    ),
];

/// A job with a seed name that deletes nothing, reports 7 rows and logs one line.
struct SeedJob(&'static str, &'static str, &'static str);

#[async_trait]
impl Job for SeedJob {
    fn name(&self) -> &str {
        self.0
    }
    fn description(&self) -> &str {
        self.1
    }
    fn schedule(&self) -> &str {
        self.2
    }
    async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
        // The run's log (`jobExecution { logs }`): one line kept, one below `info`.
        tracing::debug!("not kept");
        tracing::info!(rows = 7, "deleted nothing");
        Ok(JobOutput::processed(7))
    }
}

/// `gated_job`: announces it started, then holds until the test adds a permit.
pub struct GatedJob {
    pub started: Arc<Notify>,
    pub release: Arc<Semaphore>,
}

#[async_trait]
impl Job for GatedJob {
    fn name(&self) -> &str {
        "gated_job"
    }
    fn description(&self) -> &str {
        "Wait for the test to release it"
    }
    fn schedule(&self) -> &str {
        "0 0 3 * * *"
    }
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        self.started.notify_one();
        tokio::select! {
            permit = self.release.acquire() => {
                permit.map_err(JobError::failed)?.forget();
                Ok(JobOutput::processed(1))
            }
            _ = ctx.cancellation().cancelled() => Err(JobError::Cancelled),
        }
    }
}

/// `failing_job`: always fails with "boom".
struct FailingJob;

#[async_trait]
impl Job for FailingJob {
    fn name(&self) -> &str {
        "failing_job"
    }
    fn description(&self) -> &str {
        "Always fail"
    }
    fn schedule(&self) -> &str {
        "0 0 4 * * *"
    }
    async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
        Err(JobError::failed("boom"))
    }
}

/// 2026-01-01T00:00:10Z: the clock the scheduler reads, frozen, so that no tick fires during a
/// test (the next one is minutes away) and `nextRunAt` is known.
pub fn frozen_now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 10).unwrap()
}

pub struct Fixture {
    pub handle: SchedulerHandle,
    pub started: Arc<Notify>,
    pub release: Arc<Semaphore>,
    pub db: TestDb,
}

impl Fixture {
    /// A started scheduler on SQLite with only the four seed jobs.
    pub async fn seed_only() -> Self {
        Self::on(barycenter_jobs_test_support::sqlite().await, false).await
    }

    /// A started scheduler on SQLite with the seed jobs, `gated_job` and `failing_job`.
    pub async fn new() -> Self {
        Self::on(barycenter_jobs_test_support::sqlite().await, true).await
    }

    /// A started scheduler on `db`.
    pub async fn on(db: TestDb, extra_jobs: bool) -> Self {
        let started = Arc::new(Notify::new());
        let release = Arc::new(Semaphore::new(0));
        let mut registry = Registry::builder();
        for (name, description, cron) in SEED_JOBS {
            registry = registry.register(SeedJob(name, description, cron));
        }
        if extra_jobs {
            registry = registry
                .register(GatedJob {
                    started: Arc::clone(&started),
                    release: Arc::clone(&release),
                })
                .register(FailingJob);
        }
        let handle = Scheduler::builder(registry.build().unwrap(), db.db.clone())
            .clock(Arc::new(ManualClock::new(frozen_now())))
            .start()
            .await
            .unwrap();
        Self {
            handle,
            started,
            release,
            db,
        }
    }

    pub fn builder(&self) -> AdminServiceBuilder {
        AdminService::builder(self.handle.clone()).allow_unauthenticated()
    }

    /// A builder with no authorization at all (closed until a token or check is added).
    pub fn builder_closed(&self) -> AdminServiceBuilder {
        AdminService::builder(self.handle.clone())
    }

    pub fn service(&self) -> AdminService {
        self.builder().build()
    }

    pub async fn shutdown(self) {
        self.release.add_permits(100);
        self.handle.shutdown(Duration::from_secs(5)).await.unwrap();
    }
}

/// Insert a row the way Barycenter does: only its seven columns, no status, trigger, instance.
pub async fn insert_barycenter_row(db: &Database, sql_values: &'static str) {
    // The values are test constants; the statement is static SQL.
    let sql: &'static str = match sql_values {
        "ok" => {
            "INSERT INTO job_executions (job_name, started_at, completed_at, success, error_message, records_processed) \
             VALUES ('cleanup_expired_sessions', 1767225600, 1767225601, 1, NULL, 42)"
        }
        "failed" => {
            "INSERT INTO job_executions (job_name, started_at, completed_at, success, error_message, records_processed) \
             VALUES ('cleanup_expired_sessions', 1767229200, 1767229203, 0, 'disk full', NULL)"
        }
        "other" => {
            "INSERT INTO job_executions (job_name, started_at, completed_at, success, error_message, records_processed) \
             VALUES ('cleanup_expired_challenges', 1767229500, 1767229500, 1, NULL, 0)"
        }
        other => panic!("unknown row {other}"),
    };
    match db {
        Database::Sqlite(pool) => {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
        Database::Postgres(pool) => {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
        Database::MySql(pool) => {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
        _ => unreachable!("all backends are compiled in"),
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first error message of a GraphQL error body.
    pub fn error(&self) -> String {
        self.json()["errors"][0]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {}", self.text()))
            .to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Send `req` through `svc` with `oneshot`, as a local client does over HTTP/1.1: from the
/// loopback peer 127.0.0.1:50000 and with `Host: localhost`, unless `req` already names a
/// peer or a host.
pub async fn send<S>(svc: S, req: Request<Full<Bytes>>) -> Answer
where
    S: tower::Service<Request<Full<Bytes>>, Response = http::Response<Full<Bytes>>>,
    S::Error: std::fmt::Debug,
{
    send_raw(svc, local(req)).await
}

/// `req` as a local client sends it: from the loopback peer 127.0.0.1:50000 and with
/// `Host: localhost`, unless it already names a peer or a host.
pub fn local<B>(mut req: Request<B>) -> Request<B> {
    if req.extensions().get::<PeerAddr>().is_none() {
        req.extensions_mut()
            .insert(PeerAddr(([127, 0, 0, 1], 50000).into()));
    }
    if !req.headers().contains_key(http::header::HOST) {
        req.headers_mut().insert(
            http::header::HOST,
            http::HeaderValue::from_static("localhost"),
        );
    }
    req
}

/// Send `req` through `svc` with `oneshot` as it is: no peer address, no `Host` added.
pub async fn send_raw<S>(svc: S, req: Request<Full<Bytes>>) -> Answer
where
    S: tower::Service<Request<Full<Bytes>>, Response = http::Response<Full<Bytes>>>,
    S::Error: std::fmt::Debug,
{
    let res = svc.oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// `POST /admin/jobs` with a JSON body.
pub fn post(body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::post("/admin/jobs")
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap()
}

/// `POST /admin/jobs` of `{"query": query}`.
pub fn post_query(query: &str) -> Request<Full<Bytes>> {
    post(serde_json::json!({ "query": query }).to_string())
}

/// `GET /admin/jobs?query=...`.
pub fn get_query(query: &str) -> Request<Full<Bytes>> {
    Request::get(format!("/admin/jobs?query={}", urlencode(query)))
        .body(Full::default())
        .unwrap()
}

/// Run `query` over POST and return `data`, asserting there was no error.
pub async fn query_data(svc: &AdminService, query: &str) -> Value {
    let answer = send(svc.clone(), post_query(query)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let json = answer.json();
    assert!(json.get("errors").is_none(), "unexpected errors: {json}");
    json["data"].clone()
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `availableJobs { name description schedule }` answer for the seed jobs, sorted by name.
pub fn seed_available_jobs() -> Value {
    let mut jobs: Vec<_> = SEED_JOBS.to_vec();
    jobs.sort_by_key(|(name, _, _)| *name);
    Value::Array(
        jobs.into_iter()
            .map(|(name, description, schedule)| {
                serde_json::json!({ "name": name, "description": description, "schedule": schedule })
            })
            .collect(),
    )
}
