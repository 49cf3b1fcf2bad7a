//! Runtime control over GraphQL (issue 15): the pause / resume / reschedule / reset and dry
//! run mutations, the audit log, roles, closed-by-default service with its Host allow-list,
//! and the bounds on work per request; on SQLite, PostgreSQL and MariaDB.

mod common;

use barycenter_jobs_core::Backend;
use barycenter_jobs_graphql::{AdminService, Role};
use chrono::Timelike as _;
use common::*;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use std::time::Duration;

const SESSIONS: &str = "cleanup_expired_sessions";

fn with_token(mut req: Request<Full<bytes::Bytes>>, token: &str) -> Request<Full<bytes::Bytes>> {
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    req
}

/// POST `query` with `token`; the whole JSON answer.
async fn ask(svc: &AdminService, token: &str, query: &str) -> Value {
    let answer = send(svc.clone(), with_token(post_query(query), token)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer.json()
}

async fn data(svc: &AdminService, token: &str, query: &str) -> Value {
    let json = ask(svc, token, query).await;
    assert!(json.get("errors").is_none(), "unexpected errors: {json}");
    json["data"].clone()
}

async fn sessions_job(svc: &AdminService) -> Value {
    let d = data(
        svc,
        "op",
        &format!(
            r#"{{ job(name: "{SESSIONS}") {{ schedule defaultSchedule timeZone paused enabled firesOnSchedule nextRunAt timeoutSecs changedBy upcomingRuns(count: 3) }} }}"#
        ),
    )
    .await;
    d["job"].clone()
}

async fn runtime_control(backend: Backend) {
    let f = Fixture::on(barycenter_jobs_test_support::fresh(backend).await, false).await;
    let svc = AdminService::builder(f.handle.clone())
        .bearer_token("op")
        .read_only_token("ro")
        .build();

    // A read principal may query, not mutate: a GraphQL error, no effect, an audit entry.
    let d = data(&svc, "ro", "{ availableJobs { name paused } }").await;
    assert_eq!(d["availableJobs"].as_array().unwrap().len(), 4);
    let json = ask(
        &svc,
        "ro",
        &format!(r#"mutation {{ pauseJob(jobName: "{SESSIONS}") {{ success }} }}"#),
    )
    .await;
    let error = json["errors"][0]["message"].as_str().unwrap();
    assert!(
        error.starts_with("forbidden: readonly-token has the read role"),
        "{json}"
    );
    assert_eq!(json["data"], Value::Null);
    assert_eq!(sessions_job(&svc).await["paused"], json!(false));
    let json = ask(
        &svc,
        "ro",
        &format!(r#"mutation {{ triggerJob(jobName: "{SESSIONS}") {{ success }} }}"#),
    )
    .await;
    assert!(
        json["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("forbidden")
    );
    assert!(
        f.handle
            .store()
            .list(&barycenter_jobs_core::ExecutionQuery::new())
            .await
            .unwrap()
            .is_empty(),
        "no run was started"
    );

    // Pause and resume.
    let d = data(
        &svc,
        "op",
        &format!(r#"mutation {{ pauseJob(jobName: "{SESSIONS}") {{ success message jobName }} }}"#),
    )
    .await;
    assert_eq!(
        d["pauseJob"],
        json!({ "success": true, "message": format!("Job {SESSIONS} paused"), "jobName": SESSIONS })
    );
    let job = sessions_job(&svc).await;
    assert_eq!(job["paused"], json!(true));
    assert_eq!(job["enabled"], json!(false));
    assert_eq!(job["firesOnSchedule"], json!(false));
    assert_eq!(job["nextRunAt"], Value::Null);
    assert_eq!(job["changedBy"], json!("admin-token"));
    let d = data(
        &svc,
        "op",
        &format!(r#"mutation {{ resumeJob(jobName: "{SESSIONS}") {{ success message }} }}"#),
    )
    .await;
    assert_eq!(d["resumeJob"]["success"], json!(true));
    assert_eq!(sessions_job(&svc).await["paused"], json!(false));

    // Reschedule: invalid input refused with its reason, nothing changed.
    let before = sessions_job(&svc).await;
    for (args, expected) in [
        (
            r#"schedule: "61 * * * * *""#,
            "invalid cron expression \"61 * * * * *\"",
        ),
        (
            r#"timeZone: "Mars/Olympus""#,
            "unknown time zone \"Mars/Olympus\"",
        ),
        ("timeoutSecs: 0", "timeoutSecs must be at least 1, got 0"),
        // The largest Int is past the bound of a timeout (a year): refused with the bound.
        (
            "timeoutSecs: 2147483647",
            "invalid timeout_secs = 2147483647: must be between 1 and 31536000",
        ),
    ] {
        let d = data(
            &svc,
            "op",
            &format!(
                r#"mutation {{ rescheduleJob(jobName: "{SESSIONS}", {args}) {{ success message jobName }} }}"#
            ),
        )
        .await;
        assert_eq!(d["rescheduleJob"]["success"], json!(false), "{args}");
        let message = d["rescheduleJob"]["message"].as_str().unwrap();
        assert!(message.starts_with(expected), "{args}: {message}");
        assert_eq!(sessions_job(&svc).await, before, "{args} changed something");
    }
    // Valid: in force at once; defaultSchedule stays the job's own; upcomingRuns follow the
    // zone (00:00 in New York is 05:00 UTC in January).
    let d = data(
        &svc,
        "op",
        &format!(
            r#"mutation {{ rescheduleJob(jobName: "{SESSIONS}", schedule: "0 0 0 * * *", timeZone: "America/New_York", timeoutSecs: 90) {{ success message }} }}"#
        ),
    )
    .await;
    assert_eq!(d["rescheduleJob"]["success"], json!(true), "{d}");
    let job = sessions_job(&svc).await;
    assert_eq!(job["schedule"], json!("0 0 0 * * *"));
    assert_eq!(job["defaultSchedule"], json!("0 0 * * * *"));
    assert_eq!(job["timeZone"], json!("America/New_York"));
    assert_eq!(job["timeoutSecs"], json!(90));
    assert_eq!(
        job["upcomingRuns"],
        json!([
            "2026-01-01T05:00:00Z",
            "2026-01-02T05:00:00Z",
            "2026-01-03T05:00:00Z"
        ])
    );
    // A null argument keeps the setting.
    data(
        &svc,
        "op",
        &format!(
            r#"mutation {{ rescheduleJob(jobName: "{SESSIONS}", timeoutSecs: 30) {{ success }} }}"#
        ),
    )
    .await;
    let job = sessions_job(&svc).await;
    assert_eq!(job["schedule"], json!("0 0 0 * * *"));
    assert_eq!(job["timeoutSecs"], json!(30));
    let json = ask(
        &svc,
        "op",
        &format!(r#"{{ job(name: "{SESSIONS}") {{ upcomingRuns(count: 101) }} }}"#),
    )
    .await;
    assert!(
        json["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("count must be between 0 and 100"),
        "{json}"
    );

    // Reset drops every runtime setting.
    let d = data(
        &svc,
        "op",
        &format!(r#"mutation {{ resetJob(jobName: "{SESSIONS}") {{ success message jobName }} }}"#),
    )
    .await;
    assert_eq!(d["resetJob"]["success"], json!(true));
    let job = sessions_job(&svc).await;
    assert_eq!(job["schedule"], json!("0 0 * * * *"));
    assert_eq!(job["timeZone"], Value::Null);
    // The reset itself is the last change (health judges the job from it).
    assert_eq!(job["changedBy"], json!("admin-token"));

    // Unknown jobs, for each mutation.
    for m in [
        r#"pauseJob(jobName: "nope")"#,
        r#"resumeJob(jobName: "nope")"#,
        r#"rescheduleJob(jobName: "nope", schedule: "0 0 * * * *")"#,
        r#"resetJob(jobName: "nope")"#,
        r#"triggerJob(jobName: "nope", dryRun: true)"#,
    ] {
        let d = data(
            &svc,
            "op",
            &format!("mutation {{ m: {m} {{ success message jobName }} }}"),
        )
        .await;
        assert_eq!(
            d["m"],
            json!({ "success": false, "message": "Unknown job: nope", "jobName": "nope" }),
            "{m}"
        );
    }

    // Dry run of a job without one: refused in the result, nothing run.
    let d = data(
        &svc,
        "op",
        &format!(
            r#"mutation {{ triggerJob(jobName: "{SESSIONS}", dryRun: true) {{ success message wouldProcess executionId }} }}"#
        ),
    )
    .await;
    assert_eq!(
        d["triggerJob"],
        json!({
            "success": false,
            "message": format!("job {SESSIONS} does not support dry runs"),
            "wouldProcess": null,
            "executionId": null
        })
    );

    // The audit log: one entry per mutation, newest first, with the actor.
    let d = data(
        &svc,
        "ro",
        &format!(r#"{{ auditLog(limit: 100, jobName: "{SESSIONS}") {{ id at actor action jobName detail }} }}"#),
    )
    .await;
    let entries = d["auditLog"].as_array().unwrap();
    let summary: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        summary,
        pairs(&[
            ("admin-token", "dry_run"),
            ("admin-token", "reset"),
            ("admin-token", "reschedule"),
            ("admin-token", "reschedule"),
            ("admin-token", "reschedule"),
            ("admin-token", "reschedule"),
            ("admin-token", "reschedule"),
            ("admin-token", "reschedule"),
            ("admin-token", "resume"),
            ("admin-token", "pause"),
            ("readonly-token", "trigger"),
            ("readonly-token", "pause"),
        ])
    );
    assert!(
        entries[11]["detail"]
            .as_str()
            .unwrap()
            .starts_with("denied: the read role")
    );
    assert!(
        entries[7]["detail"]
            .as_str()
            .unwrap()
            .starts_with("refused: invalid cron")
    );
    assert!(entries[0]["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(entries[0]["jobName"], json!(SESSIONS));
    let ids: Vec<i64> = entries
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let d = data(&svc, "op", "{ auditLog { jobName } }").await;
    assert_eq!(d["auditLog"].as_array().unwrap().len(), 17);
    f.shutdown().await;
}

async fn runtime_control_on_postgres() {
    runtime_control(Backend::Postgres).await;
}
async fn runtime_control_on_mysql() {
    runtime_control(Backend::MySql).await;
}
barycenter_jobs_test_support::server_test!(postgres, runtime_control_on_postgres);
barycenter_jobs_test_support::server_test!(mysql, runtime_control_on_mysql);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_control_on_sqlite() {
    runtime_control(Backend::Sqlite).await;
}

/// `setJobPolicy` and `pauseJob` with a note and an end (issue 25): the policy in force and
/// the pause show on the job, bad values are refused with their reason and change nothing,
/// and every change and refusal is audited.
async fn policies(backend: Backend) {
    let f = Fixture::on(barycenter_jobs_test_support::fresh(backend).await, false).await;
    let svc = AdminService::builder(f.handle.clone())
        .bearer_token("op")
        .read_only_token("ro")
        .build();
    let policy = |svc: &AdminService| {
        let svc = svc.clone();
        async move {
            data(
                &svc,
                "op",
                "{ availableJobs { name paused pauseNote pausedUntil pausedBy upcomingRuns(count: 3) policy { misfire catchUpWindowSecs jitterSecs pauseAfterFailures } } }",
            )
            .await["availableJobs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|j| j["name"] == json!(SESSIONS))
                .unwrap()
                .clone()
        }
    };
    let defaults = policy(&svc).await;
    assert_eq!(
        defaults["policy"],
        json!({ "misfire": "run_once", "catchUpWindowSecs": null, "jitterSecs": 0, "pauseAfterFailures": 0 })
    );
    let d = data(
        &svc,
        "op",
        &format!(
            r#"mutation {{ setJobPolicy(jobName: "{SESSIONS}", misfire: "run_all", catchUpWindowSecs: 86400, jitterSecs: 30, pauseAfterFailures: 3) {{ success message jobName }} }}"#
        ),
    )
    .await;
    assert_eq!(
        d["setJobPolicy"],
        json!({ "success": true, "message": format!("Job {SESSIONS} policy changed"), "jobName": SESSIONS })
    );
    let set = policy(&svc).await;
    assert_eq!(
        set["policy"],
        json!({ "misfire": "run_all", "catchUpWindowSecs": 86400, "jitterSecs": 30, "pauseAfterFailures": 3 })
    );
    // Refused with a reason, nothing changed: an unknown misfire, a negative count, a
    // jitter past its bound.
    for (args, reason) in [
        (r#"misfire: "sometimes""#, "invalid misfire"),
        ("jitterSecs: -1", "invalid jitterSecs"),
        ("jitterSecs: 3601", "invalid jitter_secs = 3601"),
    ] {
        let d = data(
            &svc,
            "op",
            &format!(
                r#"mutation {{ setJobPolicy(jobName: "{SESSIONS}", {args}) {{ success message }} }}"#
            ),
        )
        .await;
        assert_eq!(d["setJobPolicy"]["success"], json!(false), "{args}");
        let message = d["setJobPolicy"]["message"].as_str().unwrap();
        assert!(message.starts_with(reason), "{args}: {message}");
    }
    assert_eq!(policy(&svc).await["policy"], set["policy"]);

    // A pause with a note and an end; an end in the past, or not a date, is refused.
    let until = (chrono::Utc::now() + chrono::Duration::hours(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for (bad, reason) in [
        (
            "2001-01-01T00:00:00Z",
            "invalid until: 2001-01-01T00:00:00+00:00 is not in the future",
        ),
        ("tomorrow", "invalid until: \"tomorrow\" is not an ISO 8601"),
    ] {
        let d = data(
            &svc,
            "op",
            &format!(
                r#"mutation {{ pauseJob(jobName: "{SESSIONS}", note: "n", until: "{bad}") {{ success message }} }}"#
            ),
        )
        .await;
        assert_eq!(d["pauseJob"]["success"], json!(false));
        let message = d["pauseJob"]["message"].as_str().unwrap();
        assert!(message.starts_with(reason), "{message}");
    }
    assert_eq!(policy(&svc).await["paused"], json!(false));
    let d = data(
        &svc,
        "op",
        &format!(
            r#"mutation {{ pauseJob(jobName: "{SESSIONS}", note: "key rotation", until: "{until}") {{ success }} }}"#
        ),
    )
    .await;
    assert_eq!(d["pauseJob"]["success"], json!(true));
    let paused = policy(&svc).await;
    assert_eq!(paused["paused"], json!(true));
    assert_eq!(paused["pauseNote"], json!("key rotation"));
    assert_eq!(paused["pausedUntil"], json!(until));
    assert_eq!(paused["pausedBy"], json!("admin-token"));
    // A resume forgets the note; a reset drops the policy too.
    data(
        &svc,
        "op",
        &format!(r#"mutation {{ resumeJob(jobName: "{SESSIONS}") {{ success }} }}"#),
    )
    .await;
    let resumed = policy(&svc).await;
    assert_eq!(resumed["pauseNote"], json!(null));
    assert_eq!(resumed["pausedBy"], json!(null));
    data(
        &svc,
        "op",
        &format!(r#"mutation {{ resetJob(jobName: "{SESSIONS}") {{ success }} }}"#),
    )
    .await;
    assert_eq!(policy(&svc).await["policy"], defaults["policy"]);
    let d = data(
        &svc,
        "op",
        &format!(r#"{{ auditLog(jobName: "{SESSIONS}") {{ actor action detail }} }}"#),
    )
    .await;
    let actions: Vec<&str> = d["auditLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "reset", "resume", "pause", "pause", "pause", "policy", "policy", "policy", "policy"
        ]
    );
    f.shutdown().await;
}

async fn policies_on_postgres() {
    policies(Backend::Postgres).await;
}
async fn policies_on_mysql() {
    policies(Backend::MySql).await;
}
barycenter_jobs_test_support::server_test!(postgres, policies_on_postgres);
barycenter_jobs_test_support::server_test!(mysql, policies_on_mysql);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_on_sqlite() {
    policies(Backend::Sqlite).await;
}

/// The overlap policy through `setJobPolicy`, and a backfill through the API: previewed,
/// refused past its bounds (and not as a read-only principal), run once per tick with
/// `trigger: "backfill"` and its tick as `scheduledFor`, then gone from the job.
async fn overlap_and_backfill(backend: Backend) {
    let f = Fixture::on(barycenter_jobs_test_support::fresh(backend).await, false).await;
    let svc = AdminService::builder(f.handle.clone())
        .bearer_token("op")
        .read_only_token("ro")
        .build();
    let job = |svc: &AdminService| {
        let svc = svc.clone();
        async move {
            data(
                &svc,
                "op",
                &format!(
                    r#"{{ job(name: "{SESSIONS}") {{ policy {{ overlap retryAttempts }} backfill {{ from to requestedBy }} }} }}"#
                ),
            )
            .await["job"]
                .clone()
        }
    };
    assert_eq!(job(&svc).await["policy"]["overlap"], json!("skip"));
    for (value, success) in [
        ("buffer_one", true),
        ("always", false),
        ("cancel_running", true),
    ] {
        let d = data(
            &svc,
            "op",
            &format!(
                r#"mutation {{ setJobPolicy(jobName: "{SESSIONS}", overlap: "{value}") {{ success message }} }}"#
            ),
        )
        .await;
        assert_eq!(d["setJobPolicy"]["success"], json!(success), "{d}");
        if !success {
            let message = d["setJobPolicy"]["message"].as_str().unwrap();
            assert!(message.starts_with("invalid overlap"), "{message}");
        }
    }
    let set = job(&svc).await;
    assert_eq!(
        set["policy"],
        json!({ "overlap": "cancel_running", "retryAttempts": 0 })
    );

    // Three hourly ticks a day ago: previewed, then run.
    // The fixture's scheduler runs on a clock of its own.
    let day_ago = f.handle.now() - chrono::Duration::days(1);
    let start = day_ago
        .date_naive()
        .and_hms_opt(day_ago.hour(), 30, 0)
        .unwrap()
        .and_utc();
    let (from, to) = (start, start + chrono::Duration::hours(3));
    let iso =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let ticks: Vec<String> = (1..=3)
        .map(|h| iso(start + chrono::Duration::minutes(30) + chrono::Duration::hours(h - 1)))
        .collect();
    let d = data(
        &svc,
        "ro",
        &format!(
            r#"{{ previewBackfill(jobName: "{SESSIONS}", from: "{}", to: "{}", count: 2) {{ valid message ticks first }} }}"#,
            iso(from),
            iso(to)
        ),
    )
    .await;
    assert_eq!(
        d["previewBackfill"],
        json!({ "valid": true, "message": "ok", "ticks": 3, "first": ticks[..2] })
    );
    let ask_backfill = |token: &'static str, from: String, to: String| {
        let svc = svc.clone();
        async move {
            ask(
                &svc,
                token,
                &format!(
                    r#"mutation {{ backfillJob(jobName: "{SESSIONS}", from: "{from}", to: "{to}") {{ success message jobName ticks }} }}"#
                ),
            )
            .await
        }
    };
    // A read-only principal is refused; bad ranges are refused with their reason.
    let denied = ask_backfill("ro", iso(from), iso(to)).await;
    assert!(
        denied["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("forbidden"),
        "{denied}"
    );
    let far = iso(from - chrono::Duration::days(60));
    let future = iso(f.handle.now() + chrono::Duration::days(1));
    for (f, t, reason) in [
        (iso(from), "yesterday".to_owned(), "invalid to"),
        (far, iso(from), "invalid to"),
        (iso(from), future, "invalid to"),
        (iso(to), iso(from), "invalid from"),
    ] {
        let d = ask_backfill("op", f.clone(), t.clone()).await;
        let r = &d["data"]["backfillJob"];
        assert_eq!(r["success"], json!(false), "{f} {t}: {d}");
        assert_eq!(r["ticks"], json!(0));
        assert!(
            r["message"].as_str().unwrap().starts_with(reason),
            "{f} {t}: {d}"
        );
    }
    let started = ask_backfill("op", iso(from), iso(to)).await;
    assert_eq!(
        started["data"]["backfillJob"],
        json!({ "success": true, "message": format!("Job {SESSIONS}: backfill of 3 ticks started"), "jobName": SESSIONS, "ticks": 3 })
    );
    let runs = || async {
        let d = data(
            &svc,
            "op",
            &format!(
                r#"{{ jobLogs(jobName: "{SESSIONS}") {{ trigger scheduledFor attempt status }} }}"#
            ),
        )
        .await;
        let mut rows: Vec<Value> = d["jobLogs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["trigger"] == json!("backfill"))
            .cloned()
            .collect();
        rows.reverse();
        rows
    };
    barycenter_jobs_test_support::eventually(
        Duration::from_secs(60),
        "three backfill runs and the backfill gone",
        || async { runs().await.len() == 3 && job(&svc).await["backfill"].is_null() },
    )
    .await;
    let expected: Vec<Value> = ticks
        .iter()
        .map(|t| json!({ "trigger": "backfill", "scheduledFor": t, "attempt": 1, "status": "succeeded" }))
        .collect();
    assert_eq!(runs().await, expected);
    let d = ask(
        &svc,
        "op",
        &format!(r#"mutation {{ cancelBackfill(jobName: "{SESSIONS}") {{ success message }} }}"#),
    )
    .await;
    assert_eq!(d["data"]["cancelBackfill"]["success"], json!(false), "{d}");
    assert!(
        d["data"]["cancelBackfill"]["message"]
            .as_str()
            .unwrap()
            .contains("no backfill is in progress"),
        "{d}"
    );
    f.shutdown().await;
}

async fn overlap_and_backfill_on_postgres() {
    overlap_and_backfill(Backend::Postgres).await;
}
async fn overlap_and_backfill_on_mysql() {
    overlap_and_backfill(Backend::MySql).await;
}
barycenter_jobs_test_support::server_test!(postgres, overlap_and_backfill_on_postgres);
barycenter_jobs_test_support::server_test!(mysql, overlap_and_backfill_on_mysql);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_and_backfill_on_sqlite() {
    overlap_and_backfill(Backend::Sqlite).await;
}

/// `cancelRun` stops a running run (its row `cancelled`, "cancelled by" the principal),
/// refuses a finished or unknown run and a malformed id with the reason and a read-only
/// principal with an error; `fleet` lists the scheduler.
async fn cancel_run_and_fleet(backend: Backend) {
    let f = Fixture::on(barycenter_jobs_test_support::fresh(backend).await, true).await;
    let svc = AdminService::builder(f.handle.clone())
        .bearer_token("op")
        .read_only_token("ro")
        .build();
    let run = f.handle.trigger("gated_job").await.unwrap();
    f.started.notified().await;
    let id = run.execution_id;
    let cancel = |token: &'static str, id: String| {
        let svc = svc.clone();
        async move {
            ask(
                &svc,
                token,
                &format!(
                    r#"mutation {{ cancelRun(executionId: "{id}") {{ success message jobName }} }}"#
                ),
            )
            .await
        }
    };
    let denied = cancel("ro", id.to_string()).await;
    assert!(
        denied["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("forbidden"),
        "{denied}"
    );
    let d = cancel("op", id.to_string()).await;
    assert_eq!(
        d["data"]["cancelRun"],
        json!({ "success": true, "message": format!("Run {id} of gated_job: cancel asked"), "jobName": "gated_job" })
    );
    let row = run.wait().await.unwrap();
    assert_eq!(row.status.as_str(), "cancelled");
    let d = data(
        &svc,
        "op",
        &format!(r#"{{ jobExecution(id: "{id}") {{ status errorMessage }} }}"#),
    )
    .await;
    assert_eq!(
        d["jobExecution"],
        json!({ "status": "cancelled", "errorMessage": "cancelled by admin-token" })
    );
    for (bad, reason) in [
        (
            id.to_string(),
            format!("run {id} is not running: it ended (cancelled)"),
        ),
        (
            (id + 1000).to_string(),
            format!("execution {} is not in the history", id + 1000),
        ),
        (
            "seven".to_owned(),
            "invalid executionId \"seven\"".to_owned(),
        ),
    ] {
        let d = cancel("op", bad.clone()).await;
        assert_eq!(
            d["data"]["cancelRun"]["success"],
            json!(false),
            "{bad}: {d}"
        );
        let message = d["data"]["cancelRun"]["message"].as_str().unwrap();
        assert!(message.starts_with(&reason), "{bad}: {message}");
    }
    let d = data(
        &svc,
        "ro",
        "{ fleet { instance host version running lastSeenAt } }",
    )
    .await;
    let fleet = d["fleet"].as_array().unwrap();
    assert_eq!(fleet.len(), 1, "{d}");
    assert_eq!(fleet[0]["instance"], json!(f.handle.instance()));
    assert_eq!(fleet[0]["version"], json!(env!("CARGO_PKG_VERSION")));
    f.shutdown().await;
}

async fn cancel_run_and_fleet_on_postgres() {
    cancel_run_and_fleet(Backend::Postgres).await;
}
async fn cancel_run_and_fleet_on_mysql() {
    cancel_run_and_fleet(Backend::MySql).await;
}
barycenter_jobs_test_support::server_test!(postgres, cancel_run_and_fleet_on_postgres);
barycenter_jobs_test_support::server_test!(mysql, cancel_run_and_fleet_on_mysql);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_run_and_fleet_on_sqlite() {
    cancel_run_and_fleet(Backend::Sqlite).await;
}

fn with_host(mut req: Request<Full<bytes::Bytes>>, host: &str) -> Request<Full<bytes::Bytes>> {
    req.headers_mut().insert("host", host.parse().unwrap());
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_by_default_and_loopback_only_when_open() {
    let f = Fixture::seed_only().await;
    const Q: &str = "{ availableJobs { name } }";

    // No authorization configured: every request is refused.
    let closed = AdminService::builder(f.handle.clone()).build();
    for req in [with_host(post_query(Q), "localhost:8081"), post_query(Q)] {
        let answer = send(closed.clone(), req).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
        assert!(answer.error().starts_with("no authorization configured"));
    }
    let closed = AdminService::new(f.handle.clone());
    assert_eq!(
        send(closed, with_host(post_query(Q), "127.0.0.1"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // Opened explicitly: loopback names and the hosts it is told, nothing else.
    let open = f.builder().allow_host("jobs.internal").build();
    for host in [
        "localhost:8081",
        "127.0.0.1:8081",
        "[::1]:8081",
        "jobs.internal:80",
    ] {
        let answer = send(open.clone(), with_host(post_query(Q), host)).await;
        assert_eq!(answer.status, StatusCode::OK, "{host}: {}", answer.text());
    }
    for host in [
        "evil.example",
        "evil.example:8081",
        "localhost.evil.example",
    ] {
        let answer = send(open.clone(), with_host(post_query(Q), host)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{host}");
        assert!(answer.error().starts_with("host not allowed"));
        let page = Request::get("/admin/jobs/playground")
            .header("host", host)
            .body(Full::default())
            .unwrap();
        assert_eq!(send(open.clone(), page).await.status, StatusCode::FORBIDDEN);
    }
    // The anonymous principal may operate, and is named in the audit log.
    let answer = send(
        open.clone(),
        with_host(
            post_query(&format!(
                r#"mutation {{ pauseJob(jobName: "{SESSIONS}") {{ success }} }}"#
            )),
            "localhost",
        ),
    )
    .await;
    assert_eq!(answer.json()["data"]["pauseJob"]["success"], json!(true));
    let log = f
        .handle
        .audit_log(&barycenter_jobs_core::AuditQuery::new())
        .await
        .unwrap();
    assert_eq!(log[0].actor, "anonymous");
    // A host check names principals with roles of its own.
    let checked = AdminService::builder(f.handle.clone())
        .authorize(
            |parts| match parts.headers.get("x-scope").map(|v| v.as_bytes()) {
                Some(b"jobs:read") => Ok(barycenter_jobs_graphql::Principal::new(
                    "client-7",
                    Role::Read,
                )),
                Some(_) => Err(barycenter_jobs_graphql::Denied::Forbidden),
                None => Err(barycenter_jobs_graphql::Denied::Unauthenticated),
            },
        )
        .build();
    let mut req = post_query(&format!(
        r#"mutation {{ resetJob(jobName: "{SESSIONS}") {{ success }} }}"#
    ));
    req.headers_mut()
        .insert("x-scope", "jobs:read".parse().unwrap());
    let answer = send(checked.clone(), req).await;
    assert!(
        answer
            .error()
            .starts_with("forbidden: client-7 has the read role")
    );
    let mut req = post_query(Q);
    req.headers_mut()
        .insert("x-scope", "other".parse().unwrap());
    assert_eq!(
        send(checked.clone(), req).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(checked, post_query(Q)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        f.handle.job(SESSIONS).unwrap().paused,
        "the read principal reset nothing"
    );
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_per_request_is_bounded() {
    let f = Fixture::seed_only().await;
    let svc = f.service();

    // Complexity counts row limits: 50 aliases of jobLogs(limit: 1000) are refused...
    let wide: String = (0..50)
        .map(|i| format!("l{i}: jobLogs(limit: 1000) {{ id }} "))
        .collect();
    let answer = send(svc.clone(), post_query(&format!("{{ {wide} }}"))).await;
    assert!(answer.error().contains("too complex"), "{}", answer.text());
    let wide: String = (0..50)
        .map(|i| format!("l{i}: auditLog(limit: 1000) {{ id }} "))
        .collect();
    let answer = send(svc.clone(), post_query(&format!("{{ {wide} }}"))).await;
    assert!(answer.error().contains("too complex"), "{}", answer.text());
    // ...one is fine.
    query_data(
        &svc,
        "{ jobLogs(limit: 1000) { id jobName startedAt } auditLog(limit: 1000) { id } }",
    )
    .await;

    // At most 10 mutations per request, aliases and batches included; refused before any runs.
    let pauses = |n: usize| -> String {
        let fields: String = (0..n)
            .map(|i| format!(r#"p{i}: pauseJob(jobName: "{SESSIONS}") {{ success }} "#))
            .collect();
        format!("mutation {{ {fields} }}")
    };
    let answer = send(svc.clone(), post_query(&pauses(11))).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.error(),
        "request runs 11 mutations, more than the limit of 10"
    );
    let fragment = format!(
        r#"mutation {{ ...many }} fragment many on MutationRoot {{ {} }}"#,
        (0..11)
            .map(|i| format!(r#"t{i}: triggerJob(jobName: "{SESSIONS}") {{ success }} "#))
            .collect::<String>()
    );
    let answer = send(svc.clone(), post_query(&fragment)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    let batch = json!([{ "query": pauses(6) }, { "query": pauses(5) }]).to_string();
    let answer = send(svc.clone(), post(batch)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        f.handle
            .audit_log(&Default::default())
            .await
            .unwrap()
            .is_empty(),
        "nothing ran"
    );
    assert!(!f.handle.job(SESSIONS).unwrap().paused);
    // Ten are fine; the limit is configurable.
    let d = query_data(&svc, &pauses(10)).await;
    assert_eq!(d["p9"]["success"], json!(true));
    let strict = f.builder().max_mutations(1).build();
    let answer = send(strict, post_query(&pauses(2))).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    f.shutdown().await;
}
