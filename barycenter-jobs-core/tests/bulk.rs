//! The bulk connection batched cleanups write through.

use barycenter_jobs_core::Database;
use barycenter_jobs_core::sea_query::{Alias, Query};

/// `(busy, frames in the WAL, frames copied to the database)` of a passive checkpoint run on
/// one of the pool's connections, as the automatic checkpoint after a host's commit would.
async fn host_checkpoint(db: &Database) -> (i64, i64, i64) {
    let Database::Sqlite(pool) = db else {
        unreachable!("a SQLite test")
    };
    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A host write on one of the pool's connections.
async fn host_write(db: &Database) {
    barycenter_jobs_test_support::raw(db, "INSERT INTO t (v) VALUES ('host')").await;
}

/// On SQLite the bulk connection holds a snapshot from its first write to `finish`, let go
/// only during its own checkpoints, so the host's checkpoints cannot copy (and sync) a
/// batch's pages, nor the host's own between two batches, inside the host's commits; its own
/// checkpoint copies everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_batches_are_checkpointed_by_the_bulk_connection() {
    let t = barycenter_jobs_test_support::sqlite().await;
    barycenter_jobs_test_support::raw(&t.db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        .await;
    host_checkpoint(&t.db).await;
    let insert = Query::insert()
        .into_table(Alias::new("t"))
        .columns([Alias::new("v")])
        .values_panic(["x".into()])
        .to_owned();

    let mut bulk = t.db.bulk_connection().await.unwrap();
    for _ in 0..3 {
        assert_eq!(bulk.execute(&insert).await.unwrap().rows, 1);
        let (_, log, copied) = host_checkpoint(&t.db).await;
        assert!(
            log > copied,
            "the batch's frames stay in the WAL: {log} > {copied}"
        );
        bulk.checkpoint().await.unwrap();
        let (_, log, copied) = host_checkpoint(&t.db).await;
        assert_eq!(log, copied, "the bulk checkpoint copied every frame");
        // A host write during the pause waits for the next bulk checkpoint too.
        host_write(&t.db).await;
        let (_, log, copied) = host_checkpoint(&t.db).await;
        assert!(
            log > copied,
            "the host's frames stay in the WAL between batches: {log} > {copied}"
        );
    }
    bulk.finish().await.unwrap();
    // Once the cleanup is done, the host's checkpoints copy everything again.
    host_write(&t.db).await;
    let (_, log, copied) = host_checkpoint(&t.db).await;
    assert_eq!(log, copied, "the host checkpoints again after finish");

    // Committed and visible to everybody.
    let Database::Sqlite(pool) = &t.db else {
        unreachable!()
    };
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(n, 7, "three bulk rows and four host rows");
}

/// On SQLite a statement's `lock_held` starts once it has the write lock: time spent waiting
/// behind a host writer is not counted as holding the lock.
///
/// Checked causally, not against a fraction of the wait: the bulk statement is issued while
/// the host holds the lock, the host commits half a second later, and the statement cannot
/// have held the lock before that commit, so `lock_held` is at most the time from the
/// commit to the statement's return. Counting the wait would add the half second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lock_held_excludes_waiting_for_the_lock() {
    let t = barycenter_jobs_test_support::sqlite().await;
    barycenter_jobs_test_support::raw(&t.db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        .await;
    let Database::Sqlite(pool) = &t.db else {
        unreachable!("a SQLite test")
    };
    // A host writer holds the write lock until told to commit.
    let mut host = pool.acquire().await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE; INSERT INTO t (v) VALUES ('host')")
        .execute(&mut *host)
        .await
        .unwrap();

    let mut bulk = t.db.bulk_connection().await.unwrap();
    let insert = Query::insert()
        .into_table(Alias::new("t"))
        .columns([Alias::new("v")])
        .values_panic(["bulk".into()])
        .to_owned();
    let (issuing_tx, issuing) = tokio::sync::oneshot::channel();
    let bulk_run = tokio::spawn(async move {
        issuing_tx.send(()).unwrap();
        let executed = bulk.execute(&insert).await.unwrap();
        let returned = std::time::Instant::now();
        bulk.finish().await.unwrap();
        (executed, returned)
    });
    issuing.await.unwrap();
    // Time for the statement to reach the lock and wait behind it; however long the machine
    // takes, it cannot get the lock before the commit below.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !bulk_run.is_finished(),
        "the bulk statement cannot finish while the host holds the write lock"
    );
    let commit_began = std::time::Instant::now();
    sqlx::raw_sql("COMMIT").execute(&mut *host).await.unwrap();
    let (executed, returned) = bulk_run.await.unwrap();

    assert_eq!(executed.rows, 1);
    let after_commit = returned - commit_began;
    assert!(
        executed.lock_held <= after_commit,
        "the wait is not counted as holding the lock: held {:?}, but the lock was free only \
         {after_commit:?} before the statement returned",
        executed.lock_held
    );
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(n, 2);
}
