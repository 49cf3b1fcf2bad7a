//! A run's log (issue 26): what a job logs at `info` and above is kept with its execution,
//! bounded, and purged with its row; each on the three backends.

mod common;

use barycenter_jobs_core::{ExecutionStore, JobOutput, Registry, SchedulerConfig};
use barycenter_jobs_test_support::{TestDb, backend_tests, raw, run_now};
use chrono::{Duration, Utc};
use common::{ScriptedJob, start};

backend_tests!(
    a_runs_log_is_kept_with_its_execution,
    a_runs_log_past_its_bound_ends_with_what_was_dropped,
    a_runs_log_is_purged_with_its_row,
    no_log_is_kept_when_capture_is_off,
);

/// A job that logs `lines` info lines (`line 0`, `line 1`, ...) and one debug line.
fn chatty(lines: usize) -> Registry {
    Registry::builder()
        .register(ScriptedJob::new(
            "chatty",
            "0 0 0 1 1 *",
            move |_ctx| async move {
                tracing::debug!("below info: not kept");
                for i in 0..lines {
                    tracing::info!(i, "line");
                    // Across polls: the capture is there on each.
                    tokio::task::yield_now().await;
                }
                tracing::warn!(table = "sessions", "the end");
                Ok(JobOutput::processed(lines as u64))
            },
        ))
        .build()
        .unwrap()
}

async fn a_runs_log_is_kept_with_its_execution(t: &TestDb) {
    let handle = start(t, chatty(3), SchedulerConfig::default()).await;
    let before = Utc::now() - Duration::seconds(1);
    let run = run_now(&handle, "chatty").await;
    let store = ExecutionStore::new(t.db.clone());
    let log = store.run_log(run.id).await.unwrap();
    let got: Vec<(&str, &str)> = log
        .iter()
        .map(|l| (l.level.as_str(), l.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("INFO", "line i=0"),
            ("INFO", "line i=1"),
            ("INFO", "line i=2"),
            ("WARN", "the end table=sessions"),
        ]
    );
    assert!(log.iter().all(|l| l.at >= before && l.at <= Utc::now()));
    // Another run has its own log.
    let second = run_now(&handle, "chatty").await;
    assert_eq!(store.run_log(second.id).await.unwrap().len(), 4);
    assert_eq!(store.run_log(run.id).await.unwrap().len(), 4);
    assert!(store.run_log(second.id + 1000).await.unwrap().is_empty());
    handle
        .shutdown(std::time::Duration::from_secs(5))
        .await
        .unwrap();
}

async fn a_runs_log_past_its_bound_ends_with_what_was_dropped(t: &TestDb) {
    let handle = start(t, chatty(1000), SchedulerConfig::default()).await;
    let run = run_now(&handle, "chatty").await;
    let log = ExecutionStore::new(t.db.clone())
        .run_log(run.id)
        .await
        .unwrap();
    assert_eq!(log.len(), 201);
    assert_eq!(log[0].message, "line i=0");
    assert_eq!(log[199].message, "line i=199");
    assert_eq!(log[200].level, "WARN");
    // 800 info lines past the bound, and the warning at the end.
    assert!(
        log[200].message.starts_with("801 more line(s) dropped"),
        "{}",
        log[200].message
    );
    handle
        .shutdown(std::time::Duration::from_secs(5))
        .await
        .unwrap();
}

async fn a_runs_log_is_purged_with_its_row(t: &TestDb) {
    let handle = start(t, chatty(2), SchedulerConfig::default()).await;
    let old = run_now(&handle, "chatty").await;
    let recent = run_now(&handle, "chatty").await;
    handle
        .shutdown(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    // The first run started ten days ago.
    raw(
        &t.db,
        &format!(
            "UPDATE job_executions SET started_at = started_at - 864000 WHERE id = {}",
            old.id
        ),
    )
    .await;
    let store = ExecutionStore::new(t.db.clone());
    assert_eq!(store.run_log(old.id).await.unwrap().len(), 3);

    let purged = store
        .purge_batch(Utc::now() - Duration::days(7), 100)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert!(store.get(old.id).await.unwrap().is_none());
    assert!(store.run_log(old.id).await.unwrap().is_empty());
    // The run that stays keeps its log, and no other line is left.
    assert_eq!(store.run_log(recent.id).await.unwrap().len(), 3);
    assert_eq!(log_rows(t).await, 3);
}

async fn no_log_is_kept_when_capture_is_off(t: &TestDb) {
    let config = SchedulerConfig {
        capture_run_logs: false,
        ..SchedulerConfig::default()
    };
    let handle = start(t, chatty(3), config).await;
    let run = run_now(&handle, "chatty").await;
    assert_eq!(run.records_processed, Some(3));
    assert_eq!(log_rows(t).await, 0);
    handle
        .shutdown(std::time::Duration::from_secs(5))
        .await
        .unwrap();
}

/// Every line of every run in the logs table.
async fn log_rows(t: &TestDb) -> usize {
    use barycenter_jobs_core::sea_query::{Alias, Expr, Query};
    t.db.fetch_all(
        Query::select()
            .expr(Expr::val(1))
            .from(Alias::new("job_execution_logs")),
    )
    .await
    .unwrap()
    .len()
}
