//! Grouped writes: a group with a failing row, and the checkpoint after a large group.

use std::time::{Duration, Instant};

use chrono::Utc;

use crate::db::Database;
use crate::store::{ExecutionStore, NewExecution};

/// Two ends written in one group, one of whose rows was already closed (abandoned by
/// another replica) and fails its rare-path write (a trigger raises on it): the other
/// run's end is written and reported as such, not failed with the group.
#[tokio::test(flavor = "current_thread")]
async fn one_failing_rare_path_does_not_fail_the_group() {
    use crate::store::{Outcome, RunEnd};
    let dir = tempfile::tempdir().unwrap();
    let db = Database::connect(&format!("sqlite://{}", dir.path().join("j.db").display()))
        .await
        .unwrap();
    let store = ExecutionStore::new(db.clone());
    store.migrate().await.unwrap();
    let good = store
        .start(&NewExecution::manual("good", Utc::now()))
        .await
        .unwrap();
    let closed = store
        .start(&NewExecution::manual("closed", Utc::now()))
        .await
        .unwrap();
    store
        .close_abandoned_ids(&[closed], Utc::now())
        .await
        .unwrap();
    let trigger = format!(
        "CREATE TRIGGER refuse BEFORE UPDATE ON job_executions WHEN OLD.id = {closed} \
         BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
    );
    match &db {
        Database::Sqlite(p) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(trigger))
                .execute(p)
                .await
                .unwrap();
        }
        #[allow(unreachable_patterns)]
        _ => unreachable!(),
    }
    let end = |id| {
        RunEnd::new(
            id,
            Outcome::Succeeded {
                records_processed: 1,
            },
            Utc::now(),
        )
        .with_duration(Duration::from_millis(5))
    };
    // One task on a current-thread runtime: both are queued before the writer first
    // runs, so they are written as one group.
    let (good_end, closed_end) =
        tokio::join!(store.record_end(end(good)), store.record_end(end(closed)));
    assert!(good_end.unwrap(), "the open row was closed by the group");
    assert!(closed_end.is_err(), "the refused row's own error");
    assert!(
        store
            .get(good)
            .await
            .unwrap()
            .unwrap()
            .completed_at
            .is_some()
    );
}

/// A group of writes past [`super::CHECKPOINT_AFTER_ROWS`] is copied into the database
/// file once it is written, though its WAL frames are far from SQLite's own threshold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_groups_are_checkpointed_once_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let db = Database::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let store = ExecutionStore::new(db);
    store.migrate().await.unwrap();
    // Until a checkpoint, new pages live in the WAL and the database file keeps its size.
    let file_size = || std::fs::metadata(&path).unwrap().len();
    let before = file_size();
    let starts = (0..1500)
        .map(|i| store.start_grouped(NewExecution::manual(format!("job_{i}"), Utc::now())));
    for id in futures_util::future::join_all(starts).await {
        id.unwrap();
    }
    let until = Instant::now() + Duration::from_secs(10);
    while file_size() <= before {
        assert!(
            Instant::now() < until,
            "the database file stayed at {before} bytes: no checkpoint"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
