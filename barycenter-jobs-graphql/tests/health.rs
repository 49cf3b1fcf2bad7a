//! Health and metrics through the admin service, on SQLite and PostgreSQL: the GraphQL
//! fields, `GET /admin/jobs/health` (200 / 503 and its JSON), `GET /admin/jobs/metrics`
//! (every metric name with its labels and values after known runs), and their
//! authorization.

mod common;

use std::sync::Arc;
use std::time::Duration;

use barycenter_jobs_core::{
    Database, Job, JobContext, JobError, JobOutput, ManualClock, Registry, Scheduler,
    SchedulerHandle, async_trait,
};
use barycenter_jobs_graphql::{AdminService, Metrics};
use barycenter_jobs_test_support::{TestDb, backend_tests};
use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use common::{send, urlencode};
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

const TOKEN: &str = "s3cret";

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, h, m, s).unwrap()
}

/// Hourly job: succeeds with 7 records, fails with "boom", or holds until released.
struct Scripted {
    name: &'static str,
    schedule: &'static str,
    behaviour: Behaviour,
}

#[derive(Clone)]
enum Behaviour {
    Succeed,
    Fail,
    Hold(Arc<Semaphore>),
}

#[async_trait]
impl Job for Scripted {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "scripted"
    }
    fn schedule(&self) -> &str {
        self.schedule
    }
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        match &self.behaviour {
            Behaviour::Succeed => Ok(JobOutput::processed(7)),
            Behaviour::Fail => Err(JobError::failed("boom")),
            Behaviour::Hold(gate) => tokio::select! {
                _ = gate.acquire() => Ok(JobOutput::processed(1)),
                _ = ctx.cancellation().cancelled() => Err(JobError::Cancelled),
            },
        }
    }
}

struct Fixture {
    handle: SchedulerHandle,
    clock: ManualClock,
    metrics: Metrics,
    gate: Arc<Semaphore>,
}

impl Fixture {
    /// `ok`, `failing` and `held`, hourly, first seen at 00:00:10 by a manual clock.
    async fn on(db: &Database) -> Self {
        let clock = ManualClock::new(at(0, 0, 10));
        let gate = Arc::new(Semaphore::new(0));
        let jobs = [
            ("ok", Behaviour::Succeed),
            ("failing", Behaviour::Fail),
            ("held", Behaviour::Hold(gate.clone())),
        ];
        let mut registry = Registry::builder();
        for (name, behaviour) in jobs {
            registry = registry.register(Scripted {
                name,
                schedule: "0 0 * * * *",
                behaviour,
            });
        }
        let metrics = Metrics::new();
        let handle = Scheduler::builder(registry.build().unwrap(), db.clone())
            .clock(Arc::new(clock.clone()))
            .observer(metrics.clone())
            .start()
            .await
            .unwrap();
        Self {
            handle,
            clock,
            metrics,
            gate,
        }
    }

    fn service(&self) -> AdminService {
        AdminService::builder(self.handle.clone())
            .bearer_token(TOKEN)
            .metrics(self.metrics.clone())
            .build()
    }

    async fn run(&self, job: &str) {
        self.handle
            .trigger(job)
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
    }

    async fn shutdown(self) {
        self.gate.add_permits(100);
        self.handle.shutdown(Duration::from_secs(5)).await.unwrap();
    }
}

fn get(path: &str, token: Option<&str>) -> Request<Full<Bytes>> {
    let mut req = Request::get(path);
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    req.body(Full::default()).unwrap()
}

async fn graphql(svc: &AdminService, query: &str) -> Value {
    let path = format!("/admin/jobs?query={}", urlencode(query));
    let answer = send(svc.clone(), get(&path, Some(TOKEN))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let json = answer.json();
    assert!(json.get("errors").is_none(), "{json}");
    json["data"].clone()
}

/// The GraphQL fields and `/health` agree, from ok to overdue and back.
async fn health_over_graphql_and_http(t: &TestDb) {
    let f = Fixture::on(&t.db).await;
    let svc = f.service();
    let query = "{ availableJobs { name lastSuccessAt lastFailureAt overdue overdueSince }
                   health { status overdueJobs { name overdueSince } clockSkewSecs } }";

    let data = graphql(&svc, query).await;
    assert_eq!(data["health"]["status"], json!("ok"));
    assert_eq!(data["health"]["overdueJobs"], json!([]));
    assert!(data["health"]["clockSkewSecs"].is_number(), "{data}");
    let answer = send(svc.clone(), get("/admin/jobs/health", Some(TOKEN))).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let body = answer.json();
    assert_eq!(body["status"], json!("ok"));
    assert_eq!(body["overdueJobs"], json!([]));
    assert_eq!(body["jobs"].as_array().unwrap().len(), 3);

    // 00:30: one success, one failure.
    f.clock.set(at(0, 30, 0));
    f.run("ok").await;
    f.run("failing").await;
    // 02:00:01: `ok` succeeded after first-seen but not since the 01:00 tick, nor did the
    // others: all three are overdue since 02:00.
    f.clock.set(at(2, 0, 1));
    let data = graphql(&svc, query).await;
    assert_eq!(
        data["availableJobs"],
        json!([
            { "name": "failing", "lastSuccessAt": null, "lastFailureAt": "2026-01-01T00:30:00Z",
              "overdue": true, "overdueSince": "2026-01-01T02:00:00Z" },
            { "name": "held", "lastSuccessAt": null, "lastFailureAt": null,
              "overdue": true, "overdueSince": "2026-01-01T02:00:00Z" },
            { "name": "ok", "lastSuccessAt": "2026-01-01T00:30:00Z", "lastFailureAt": null,
              "overdue": true, "overdueSince": "2026-01-01T02:00:00Z" },
        ])
    );
    assert_eq!(data["health"]["status"], json!("overdue"));

    // Recovery of two of them: only `failing` is left.
    f.run("ok").await;
    f.gate.add_permits(1);
    f.run("held").await;
    f.run("failing").await;
    let data = graphql(&svc, query).await;
    assert_eq!(
        data["health"]["overdueJobs"],
        json!([{ "name": "failing", "overdueSince": "2026-01-01T02:00:00Z" }])
    );
    let answer = send(svc.clone(), get("/admin/jobs/health", Some(TOKEN))).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let body = answer.json();
    assert_eq!(body["status"], json!("overdue"));
    assert_eq!(
        body["overdueJobs"],
        json!([{ "name": "failing", "overdueSince": "2026-01-01T02:00:00Z",
                 "missedTick": "2026-01-01T01:00:00Z" }])
    );
    assert_eq!(body["checkedAt"], json!("2026-01-01T02:00:01Z"));
    let failing = &body["jobs"][0];
    assert_eq!(failing["name"], json!("failing"));
    assert_eq!(failing["lastFailureAt"], json!("2026-01-01T02:00:01Z"));
    assert_eq!(failing["firstSeenAt"], json!("2026-01-01T00:00:10Z"));
    f.shutdown().await;
}

/// `/health` and `/metrics` are behind the query authorization unless opened; GET only.
async fn health_and_metrics_authorization(t: &TestDb) {
    let f = Fixture::on(&t.db).await;
    let closed = f.service();
    for path in ["/admin/jobs/health", "/admin/jobs/metrics"] {
        let answer = send(closed.clone(), get(path, None)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
        let answer = send(closed.clone(), get(path, Some("wrong"))).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        let post = Request::post(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Full::default())
            .unwrap();
        let answer = send(closed.clone(), post).await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(answer.header("allow"), Some("GET, HEAD"));
        // HEAD answers as GET, without a body.
        let head = Request::head(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Full::default())
            .unwrap();
        let answer = send(closed.clone(), head).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert!(answer.text().is_empty(), "{path}");
        assert!(answer.header("content-type").is_some(), "{path}");
    }
    // Opened for probes only: metrics stay closed, and so does GraphQL.
    let probes = AdminService::builder(f.handle.clone())
        .bearer_token(TOKEN)
        .open_health()
        .build();
    let answer = send(probes.clone(), get("/admin/jobs/health", None)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["status"], json!("ok"));
    let answer = send(probes.clone(), get("/admin/jobs/metrics", None)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let answer = send(
        probes.clone(),
        get("/admin/jobs?query=%7Bhealth%7Bstatus%7D%7D", None),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    // Opened for scrapes.
    let scrapes = AdminService::builder(f.handle.clone())
        .bearer_token(TOKEN)
        .open_metrics()
        .build();
    let answer = send(scrapes.clone(), get("/admin/jobs/metrics", None)).await;
    assert_eq!(answer.status, StatusCode::OK);
    let answer = send(scrapes, get("/admin/jobs/health", None)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    // Nested under a router that strips the mount path.
    let answer = send(closed, get("/health", Some(TOKEN))).await;
    assert_eq!(answer.status, StatusCode::OK);
    f.shutdown().await;
}

/// The value of the sample `series` (name and labels exactly as exposed).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse::<f64>().unwrap())
        })
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
}

/// Every metric name, with its labels and values after known runs.
async fn metrics_after_known_runs(t: &TestDb) {
    let f = Fixture::on(&t.db).await;
    let svc = f.service();
    f.clock.set(at(0, 30, 0));
    f.run("ok").await;
    f.clock.set(at(0, 40, 0));
    f.run("ok").await;
    f.run("failing").await;
    let held = f.handle.trigger("held").await.unwrap();
    f.clock.set(at(2, 0, 1));

    let answer = send(svc.clone(), get("/admin/jobs/metrics", Some(TOKEN))).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = answer.text();
    assert!(text.ends_with("# EOF\n"), "{text}");
    for (family, kind) in [
        ("barycenter_jobs_runs", "counter"),
        ("barycenter_jobs_run_duration_seconds", "histogram"),
        ("barycenter_jobs_records_processed", "counter"),
        ("barycenter_jobs_last_success_timestamp_seconds", "gauge"),
        ("barycenter_jobs_overdue", "gauge"),
        ("barycenter_jobs_running", "gauge"),
        ("barycenter_jobs_ticks", "counter"),
        ("barycenter_jobs_clock_skew_seconds", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} {kind}\n")),
            "{family} {kind} missing in\n{text}"
        );
    }
    let runs = |job: &str, status: &str| {
        sample(
            &text,
            &format!(r#"barycenter_jobs_runs_total{{job_name="{job}",status="{status}"}}"#),
        )
    };
    assert_eq!(runs("ok", "succeeded"), 2.0);
    assert_eq!(runs("failing", "failed"), 1.0);
    for status in ["failed", "timed_out", "cancelled", "abandoned"] {
        assert_eq!(runs("ok", status), 0.0, "{status}");
    }
    assert_eq!(runs("held", "succeeded"), 0.0);
    assert_eq!(
        sample(
            &text,
            r#"barycenter_jobs_run_duration_seconds_count{job_name="ok"}"#
        ),
        2.0
    );
    assert_eq!(
        sample(
            &text,
            r#"barycenter_jobs_run_duration_seconds_bucket{le="+Inf",job_name="ok"}"#
        ),
        2.0
    );
    assert_eq!(
        sample(
            &text,
            r#"barycenter_jobs_records_processed_total{job_name="ok"}"#
        ),
        14.0
    );
    assert_eq!(
        sample(
            &text,
            r#"barycenter_jobs_records_processed_total{job_name="failing"}"#
        ),
        0.0
    );
    assert_eq!(
        sample(
            &text,
            r#"barycenter_jobs_last_success_timestamp_seconds{job_name="ok"}"#
        ),
        at(0, 40, 0).timestamp() as f64
    );
    assert!(
        !text.contains(r#"barycenter_jobs_last_success_timestamp_seconds{job_name="failing"}"#)
    );
    // 02:00:01: `failing` and `held` never succeeded; `ok` not since the 01:00 tick.
    for job in ["ok", "failing", "held"] {
        assert_eq!(
            sample(
                &text,
                &format!(r#"barycenter_jobs_overdue{{job_name="{job}"}}"#)
            ),
            1.0
        );
    }
    assert_eq!(
        sample(&text, r#"barycenter_jobs_running{job_name="held"}"#),
        1.0
    );
    assert_eq!(
        sample(&text, r#"barycenter_jobs_running{job_name="ok"}"#),
        0.0
    );
    for outcome in [
        "claimed",
        "lost",
        "skipped_running",
        "skipped_paused",
        "error",
    ] {
        assert_eq!(
            sample(
                &text,
                &format!(r#"barycenter_jobs_ticks_total{{job_name="ok",outcome="{outcome}"}}"#)
            ),
            0.0,
            "no tick fires by the manual clock"
        );
    }
    let skew = sample(&text, "barycenter_jobs_clock_skew_seconds");
    let measured = f.handle.clock_skew().unwrap().num_milliseconds() as f64 / 1000.0;
    assert!((skew - measured).abs() < 1e-9, "{skew} vs {measured}");

    // A success moves the store gauges on the next scrape.
    f.run("ok").await;
    f.gate.add_permits(1);
    held.wait().await.unwrap();
    let text = f.metrics.render(&f.handle).await.unwrap();
    assert_eq!(
        sample(&text, r#"barycenter_jobs_overdue{job_name="ok"}"#),
        0.0
    );
    assert_eq!(
        sample(&text, r#"barycenter_jobs_overdue{job_name="held"}"#),
        0.0
    );
    assert_eq!(
        sample(&text, r#"barycenter_jobs_overdue{job_name="failing"}"#),
        1.0
    );
    assert_eq!(
        sample(&text, r#"barycenter_jobs_running{job_name="held"}"#),
        0.0
    );
    assert_eq!(
        sample(
            &text,
            r#"barycenter_jobs_last_success_timestamp_seconds{job_name="ok"}"#
        ),
        at(2, 0, 1).timestamp() as f64
    );
    assert_eq!(
        sample(
            &text,
            r#"barycenter_jobs_runs_total{job_name="held",status="succeeded"}"#
        ),
        1.0
    );
    f.shutdown().await;
}

backend_tests!(
    [sqlite, postgres]
    health_over_graphql_and_http,
    health_and_metrics_authorization,
    metrics_after_known_runs,
);

/// Ticks reach the counters: a real every-second job, counted until it has run twice.
/// The service counts runs with no wiring: its metrics attach themselves to the scheduler
/// when it is built; metrics the host attached itself are not attached twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_with_no_wiring() {
    let t = barycenter_jobs_test_support::sqlite().await;
    let registry = || {
        Registry::builder()
            .register(Scripted {
                name: "ok",
                schedule: "0 0 * * * *",
                behaviour: Behaviour::Succeed,
            })
            .build()
            .unwrap()
    };
    let handle = Scheduler::builder(registry(), t.db.clone())
        .start()
        .await
        .unwrap();
    let svc = AdminService::builder(handle.clone())
        .bearer_token(TOKEN)
        .build();
    handle.trigger("ok").await.unwrap().wait().await.unwrap();
    let answer = send(svc.clone(), get("/admin/jobs/metrics", Some(TOKEN))).await;
    let succeeded = r#"barycenter_jobs_runs_total{job_name="ok",status="succeeded"}"#;
    assert_eq!(sample(&answer.text(), succeeded), 1.0);
    handle.shutdown(Duration::from_secs(5)).await.unwrap();

    // Wired by the host as well (the old recipe): still counted once.
    let metrics = Metrics::new();
    let handle = Scheduler::builder(registry(), t.db.clone())
        .observer(metrics.clone())
        .start()
        .await
        .unwrap();
    let svc = AdminService::builder(handle.clone())
        .bearer_token(TOKEN)
        .metrics(metrics.clone())
        .build();
    handle.trigger("ok").await.unwrap().wait().await.unwrap();
    let answer = send(svc, get("/admin/jobs/metrics", Some(TOKEN))).await;
    assert_eq!(sample(&answer.text(), succeeded), 1.0);
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tick_counters_follow_the_timer() {
    let t = barycenter_jobs_test_support::sqlite().await;
    let registry = Registry::builder()
        .register(Scripted {
            name: "every_second",
            schedule: "* * * * * *",
            behaviour: Behaviour::Succeed,
        })
        .build()
        .unwrap();
    let metrics = Metrics::new();
    let handle = Scheduler::builder(registry, t.db.clone())
        .observer(metrics.clone())
        .start()
        .await
        .unwrap();
    let claimed = r#"barycenter_jobs_ticks_total{job_name="every_second",outcome="claimed"}"#;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = metrics.render(&handle).await.unwrap();
        if sample(&text, claimed) >= 2.0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
    // Every claimed tick ran once, and succeeded.
    let text = metrics.render(&handle).await.unwrap();
    assert_eq!(
        sample(&text, claimed),
        sample(
            &text,
            r#"barycenter_jobs_runs_total{job_name="every_second",status="succeeded"}"#
        )
    );
}
