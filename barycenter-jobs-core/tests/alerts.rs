//! Alerts (issue 26): three replicas and a local HTTP receiver get one `failure` POST per
//! failed run and one `recovery`; a receiver that answers 500 then 200 gets the event once;
//! a receiver that never answers delays no run. On the three backends.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use barycenter_jobs_core::{
    AuditAction, AuditQuery, Error, ExecutionQuery, ExecutionStatus, JobConfig, JobError,
    JobOutput, Registry, SchedulerConfig, SchedulerHandle,
};
use barycenter_jobs_test_support::{TestDb, backend_tests, eventually};
use common::ScriptedJob;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

backend_tests!(
    three_replicas_send_one_failure_per_failed_run_and_one_recovery,
    a_receiver_that_answers_500_then_200_gets_the_event_once,
    a_receiver_that_hangs_delays_no_run,
    a_system_pause_is_alerted_and_the_success_after_it_recovers,
    an_overdue_job_is_alerted_once_per_missed_tick,
);

const HANG: Duration = Duration::from_secs(60);
const GRACE: Duration = Duration::from_secs(5);

/// How the receiver answers.
#[derive(Clone, Copy)]
enum Answer {
    /// 200 to everything.
    Ok,
    /// 500 to the first request, 200 after.
    FailFirst,
    /// Never: reads the request and holds the connection.
    Hang,
}

/// One request the receiver read.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    body: String,
}

/// A local HTTP/1 receiver on 127.0.0.1: records every request, answers as told.
#[derive(Clone)]
struct Receiver {
    base: String,
    seen: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let (log, n) = (seen.clone(), count.clone());
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (log, n) = (log.clone(), n.clone());
                tokio::spawn(async move { serve(conn, answer, log, n).await });
            }
        });
        Self { base, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn all(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// The JSON bodies POSTed to `/hook`.
    fn alerts(&self) -> Vec<serde_json::Value> {
        self.all()
            .iter()
            .filter(|r| r.path == "/hook")
            .map(|r| serde_json::from_str(&r.body).expect("a JSON body"))
            .collect()
    }

    fn events(&self, event: &str) -> Vec<serde_json::Value> {
        self.alerts()
            .into_iter()
            .filter(|a| a["event"] == event)
            .collect()
    }
}

/// Read one request (head and `content-length` body), record it, answer.
async fn serve(
    mut conn: TcpStream,
    answer: Answer,
    log: Arc<Mutex<Vec<Received>>>,
    count: Arc<AtomicUsize>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
    log.lock().unwrap().push(Received { path, body });
    let nth = count.fetch_add(1, Ordering::SeqCst);
    let status = match answer {
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        Answer::FailFirst if nth == 0 => "500 Internal Server Error",
        _ => "200 OK",
    };
    let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let _ = conn.write_all(reply.as_bytes()).await;
    let _ = conn.shutdown().await;
}

fn config(instance: &str, webhook: &str) -> SchedulerConfig {
    let mut config = SchedulerConfig::default();
    config.coordination.lease_ttl_secs = 3;
    config.coordination.instance = Some(instance.to_owned());
    config.alerts.webhook_url = Some(webhook.to_owned());
    config
}

/// A job every second that fails its first `failures` runs (across replicas), then
/// succeeds.
fn flaky(runs: &Arc<AtomicUsize>, failures: usize) -> Registry {
    let runs = runs.clone();
    Registry::builder()
        .register(ScriptedJob::new("flaky", "* * * * * *", move |_| {
            let nth = runs.fetch_add(1, Ordering::SeqCst);
            async move {
                if nth < failures {
                    Err(JobError::Failed(format!("failure number {}", nth + 1)))
                } else {
                    Ok(JobOutput::processed(1))
                }
            }
        }))
        .build()
        .unwrap()
}

async fn start(t: &TestDb, registry: Registry, config: SchedulerConfig) -> SchedulerHandle {
    common::start(t, registry, config).await
}

/// The ids of the failed runs of `flaky`, newest first.
async fn failed_runs(h: &SchedulerHandle) -> Vec<i64> {
    h.store()
        .list(&ExecutionQuery::new().job("flaky").failures().limit(100))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}

/// `alert` audit entries whose detail starts with `prefix`.
async fn audited(handle: &SchedulerHandle, prefix: &str) -> Vec<String> {
    handle
        .audit_log(&AuditQuery::new().limit(1000))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == AuditAction::Alert.as_str())
        .filter_map(|e| e.detail)
        .filter(|d| d.starts_with(prefix))
        .collect()
}

/// Three replicas run a job that fails twice then succeeds: the receiver gets one `failure`
/// POST for each failed run (its execution id), one `recovery`, and nothing twice; each
/// delivery is audited.
async fn three_replicas_send_one_failure_per_failed_run_and_one_recovery(t: &TestDb) {
    let hook = Receiver::start(Answer::Ok).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let mut fleet = Vec::new();
    for name in ["a", "b", "c"] {
        fleet.push(start(t, flaky(&runs, 2), config(name, &hook.url("/hook"))).await);
    }
    eventually(HANG, "a recovery is delivered", || async {
        !hook.events("recovery").is_empty()
    })
    .await;
    eventually(HANG, "three deliveries are audited", || async {
        audited(&fleet[0], "delivered").await.len() >= 3
    })
    .await;
    // A few more successful runs: they recover nothing.
    let after = runs.load(Ordering::SeqCst);
    eventually(HANG, "more runs", || async {
        runs.load(Ordering::SeqCst) >= after + 2
    })
    .await;
    for handle in &fleet {
        handle.shutdown(GRACE).await.unwrap();
    }

    let failed = failed_runs(&fleet[0]).await;
    assert_eq!(failed.len(), 2, "two failed runs");
    let mut alerted: Vec<i64> = hook
        .events("failure")
        .iter()
        .map(|a| a["executionId"].as_i64().unwrap())
        .collect();
    alerted.sort();
    let mut expected = failed.clone();
    expected.sort();
    assert_eq!(alerted, expected, "one failure POST per failed run");
    let recoveries = hook.events("recovery");
    assert_eq!(recoveries.len(), 1, "one recovery: {recoveries:?}");
    assert_eq!(hook.alerts().len(), 3, "nothing else: {:?}", hook.all());
    let failure = &hook.events("failure")[0];
    for field in [
        "event",
        "job",
        "executionId",
        "message",
        "at",
        "instance",
        "text",
    ] {
        assert!(failure.get(field).is_some(), "{field} in {failure}");
    }
    assert_eq!(failure["job"], "flaky");
    assert!(
        failure["message"]
            .as_str()
            .unwrap()
            .starts_with("failure number")
    );
    assert!(
        failure["text"]
            .as_str()
            .unwrap()
            .contains("flaky failed on")
    );
    assert_eq!(audited(&fleet[0], "delivered").await.len(), 3);
}

/// The receiver answers 500 to the first POST and 200 to the second: two requests with the
/// same body, one delivery in the audit log, no third request.
async fn a_receiver_that_answers_500_then_200_gets_the_event_once(t: &TestDb) {
    let hook = Receiver::start(Answer::FailFirst).await;
    let registry = Registry::builder()
        .register(ScriptedJob::new("boom", "0 0 0 1 1 *", |_| async {
            Err(JobError::Failed("boom".into()))
        }))
        .build()
        .unwrap();
    let a = start(t, registry, config("a", &hook.url("/hook"))).await;
    let run = a.trigger("boom").await.unwrap().wait().await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    eventually(HANG, "the delivery is audited", || async {
        !audited(&a, "delivered").await.is_empty()
    })
    .await;
    let delivered = audited(&a, "delivered").await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert!(delivered[0].contains("after 2 attempt(s)"), "{delivered:?}");
    assert!(
        !delivered[0].contains("/hook"),
        "the URL's path is not audited"
    );
    // Past the next poll: nothing more is sent.
    tokio::time::sleep(Duration::from_secs(6)).await;
    a.shutdown(GRACE).await.unwrap();
    let all = hook.all();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0].body, all[1].body);
    assert_eq!(hook.events("failure")[0]["executionId"], run.id);
}

/// A receiver (webhook and pings) that never answers: a job that fails every second keeps
/// running every tick, none skipped, while its alerts wait for their answers.
async fn a_receiver_that_hangs_delays_no_run(t: &TestDb) {
    let hook = Receiver::start(Answer::Hang).await;
    let registry = Registry::builder()
        .register(ScriptedJob::new("ticker", "* * * * * *", |_| async {
            Err(JobError::Failed("down".into()))
        }))
        .build()
        .unwrap();
    let mut config = config("a", &hook.url("/hook"));
    config = config.job(
        "ticker",
        JobConfig {
            ping_url: Some(hook.url("/ping/ticker")),
            ..JobConfig::default()
        },
    );
    let a = start(t, registry, config).await;
    let ticks = || async {
        let mut rows = a
            .store()
            .list(&ExecutionQuery::new().job("ticker").limit(100))
            .await
            .unwrap();
        rows.retain(|r| {
            r.trigger.as_deref() == Some("scheduled") && r.status != ExecutionStatus::Running
        });
        rows.reverse();
        rows
    };
    eventually(HANG, "eight finished scheduled runs", || async {
        ticks().await.len() >= 8
    })
    .await;
    a.shutdown(GRACE).await.unwrap();
    let rows = ticks().await;
    // Every tick from the first to the last ran: one second apart, none skipped.
    let fired: Vec<i64> = rows
        .iter()
        .map(|r| r.scheduled_for.unwrap().timestamp())
        .collect();
    let first = fired[0];
    assert_eq!(
        fired,
        (first..first + fired.len() as i64).collect::<Vec<_>>(),
        "no tick skipped while the receiver hung"
    );
    assert!(rows.iter().all(|r| r.status == ExecutionStatus::Failed));
    // The receiver was reached (and held) by the alert and by the pings.
    let seen = hook.all();
    assert!(seen.iter().any(|r| r.path == "/hook"), "{seen:?}");
    assert!(
        seen.iter().any(|r| r.path == "/ping/ticker/start"),
        "{seen:?}"
    );
}

/// Two replicas, a job paused by the system after two failed ticks (alerted from the
/// second on): `failure` for the second run only, one `paused` with the pause's note; after
/// an operator's resume the next success sends one `recovery` of that failure.
async fn a_system_pause_is_alerted_and_the_success_after_it_recovers(t: &TestDb) {
    let hook = Receiver::start(Answer::Ok).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let job = JobConfig {
        pause_after_failures: Some(2),
        alert_after_failures: Some(2),
        ..JobConfig::default()
    };
    let mut fleet = Vec::new();
    for name in ["a", "b"] {
        let config = config(name, &hook.url("/hook")).job("flaky", job.clone());
        fleet.push(start(t, flaky(&runs, 2), config).await);
    }
    eventually(HANG, "the pause is delivered", || async {
        !hook.events("paused").is_empty()
    })
    .await;
    fleet[0].resume("flaky", "alice").await.unwrap();
    eventually(HANG, "a recovery is delivered", || async {
        !hook.events("recovery").is_empty()
    })
    .await;
    eventually(HANG, "three deliveries are audited", || async {
        audited(&fleet[0], "delivered").await.len() >= 3
    })
    .await;
    for handle in &fleet {
        handle.shutdown(GRACE).await.unwrap();
    }
    let failed = failed_runs(&fleet[0]).await;
    assert_eq!(failed.len(), 2, "two failed runs");
    let failures = hook.events("failure");
    assert_eq!(failures.len(), 1, "only the second failure: {failures:?}");
    // Newest first: the second failed run.
    assert_eq!(failures[0]["executionId"], failed[0]);
    let paused = hook.events("paused");
    assert_eq!(paused.len(), 1, "{paused:?}");
    assert!(paused[0]["executionId"].is_null());
    assert!(
        paused[0]["message"]
            .as_str()
            .unwrap()
            .contains("after 2 consecutive failed runs"),
        "{paused:?}"
    );
    assert_eq!(hook.events("recovery").len(), 1);
    assert_eq!(hook.alerts().len(), 3, "{:?}", hook.all());
}

/// A job that never succeeds, with a one-second grace and failures not alerted (below
/// their threshold): the health check (every 30 s) finds it overdue and the receiver gets
/// one `overdue` with no run, saying what it missed.
async fn an_overdue_job_is_alerted_once_per_missed_tick(t: &TestDb) {
    let hook = Receiver::start(Answer::Ok).await;
    let job = JobConfig {
        overdue_after_secs: Some(1),
        alert_after_failures: Some(1000),
        ..JobConfig::default()
    };
    let config = config("a", &hook.url("/hook")).job("flaky", job);
    let a = start(t, flaky(&Arc::new(AtomicUsize::new(0)), usize::MAX), config).await;
    eventually(HANG, "an overdue alert is delivered", || async {
        !hook.events("overdue").is_empty()
    })
    .await;
    a.shutdown(GRACE).await.unwrap();
    let overdue = hook.events("overdue");
    assert_eq!(overdue.len(), 1, "{overdue:?}");
    assert_eq!(overdue[0]["job"], "flaky");
    assert!(overdue[0]["executionId"].is_null());
    assert!(
        overdue[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("no successful run since"),
        "{overdue:?}"
    );
    assert!(hook.events("failure").is_empty(), "below the threshold");
}

/// A bad URL is refused at start with a typed error that does not repeat it.
#[tokio::test]
async fn a_bad_webhook_url_is_refused_at_start() {
    let t = barycenter_jobs_test_support::sqlite().await;
    let registry = flaky(&Arc::new(AtomicUsize::new(0)), 0);
    let err = barycenter_jobs_core::Scheduler::builder(registry, t.db.clone())
        .webhook_url("hooks.example/services/SECRET")
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidSetting { ref key, .. } if key == "alerts.webhook_url"),
        "{err}"
    );
    assert!(!err.to_string().contains("SECRET"));
}
