//! A run's log over GraphQL (issue 26): `jobExecution(id) { logs { at level message } }`,
//! on SQLite, PostgreSQL and MariaDB.

mod common;

use barycenter_jobs_core::Backend;
use common::*;
use serde_json::json;

const SESSIONS: &str = "cleanup_expired_sessions";

async fn run_logs(backend: Backend) {
    let f = Fixture::on(barycenter_jobs_test_support::fresh(backend).await, false).await;
    let svc = f.service();
    let run = f
        .handle
        .trigger(SESSIONS)
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();

    let d = query_data(
        &svc,
        &format!(
            r#"{{ jobExecution(id: "{}") {{ status logs {{ at level message }} }} }}"#,
            run.id
        ),
    )
    .await;
    // The scheduler's clock is frozen: the line's time is known to the second.
    assert_eq!(
        d["jobExecution"],
        json!({
            "status": "succeeded",
            "logs": [
                { "at": "2026-01-01T00:00:10Z", "level": "INFO", "message": "deleted nothing rows=7" },
            ],
        })
    );

    // Each run has its own log, also when listed.
    let second = f
        .handle
        .trigger(SESSIONS)
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let d = query_data(
        &svc,
        &format!(r#"{{ jobLogs(jobName: "{SESSIONS}", limit: 5) {{ id logs {{ message }} }} }}"#),
    )
    .await;
    assert_eq!(
        d["jobLogs"],
        json!([
            { "id": second.id.to_string(), "logs": [{ "message": "deleted nothing rows=7" }] },
            { "id": run.id.to_string(), "logs": [{ "message": "deleted nothing rows=7" }] },
        ])
    );
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_logs_on_sqlite() {
    run_logs(Backend::Sqlite).await;
}

async fn run_logs_on_postgres() {
    run_logs(Backend::Postgres).await;
}

async fn run_logs_on_mysql() {
    run_logs(Backend::MySql).await;
}

barycenter_jobs_test_support::server_test!(postgres, run_logs_on_postgres);
barycenter_jobs_test_support::server_test!(mysql, run_logs_on_mysql);
