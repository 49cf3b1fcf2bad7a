//! Execution store conformance suite, run on SQLite, PostgreSQL and MariaDB.

use barycenter_jobs_core::{
    Backend, Database, Error, ExecutionQuery, ExecutionStatus, ExecutionStore, NewExecution,
    Outcome, RunEnd, Trigger,
};
use barycenter_jobs_test_support::{TestDb, backend_tests};
use chrono::{DateTime, Duration, TimeZone, Utc};

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + secs, 0).unwrap()
}

async fn raw(t: &TestDb, sql: &str) {
    barycenter_jobs_test_support::raw(&t.db, sql).await;
}

/// Barycenter's `job_executions` table (without its index): `id` declared as `id`, `job_name`
/// of type `job_name`, the two time columns of type `time`. The backends' DDL differs only in
/// these, and a test can give a column a type Barycenter's DDL does not.
fn barycenter_table(id: &str, job_name: &str, time: &str) -> String {
    format!(
        "CREATE TABLE job_executions (
            id {id},
            job_name {job_name} NOT NULL,
            started_at {time} NOT NULL,
            completed_at {time},
            success INTEGER,
            error_message TEXT,
            records_processed INTEGER
        )"
    )
}

/// Barycenter's MySQL / MariaDB `id` column.
const MYSQL_ID: &str = "BIGINT AUTO_INCREMENT PRIMARY KEY";

/// Barycenter's own DDL for the history table on each database, with rows in it.
async fn create_barycenter_table(t: &TestDb) {
    let ddl = match t.backend() {
        Backend::Sqlite => barycenter_table("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", "INTEGER"),
        Backend::Postgres => barycenter_table("BIGSERIAL PRIMARY KEY", "TEXT", "BIGINT"),
        _ => barycenter_table(MYSQL_ID, "VARCHAR(255)", "BIGINT"),
    };
    raw(t, &ddl).await;
    raw(
        t,
        "CREATE INDEX idx_job_executions_started ON job_executions(started_at)",
    )
    .await;
    raw(
        t,
        "INSERT INTO job_executions (job_name, started_at, completed_at, success, error_message, records_processed) VALUES
            ('cleanup_expired_sessions', 1790000000, 1790000001, 1, NULL, 42),
            ('cleanup_expired_challenges', 1790000300, 1790000301, 0, 'database is locked', NULL),
            ('cleanup_expired_sessions', 1790003600, NULL, NULL, NULL, NULL)",
    )
    .await;
}

/// Every migration this build knows, in order: what a first `migrate` applies.
fn every_version() -> Vec<i64> {
    // Not `1..=latest_version()`: versions may have gaps (16 is another branch's).
    barycenter_jobs_core::store::known_versions()
}

async fn upgrades_barycenter_table_in_place(t: &TestDb) {
    create_barycenter_table(t).await;
    let store = ExecutionStore::new(t.db.clone());
    let first = store.migrate().await.unwrap();
    assert_eq!(first, every_version());
    // Idempotent: a second run applies nothing and breaks nothing.
    assert!(store.migrate().await.unwrap().is_empty());
    // And a second store over a fresh pool (another replica) agrees.
    assert!(
        ExecutionStore::new(t.another_pool().await)
            .migrate()
            .await
            .unwrap()
            .is_empty()
    );

    let all = store.list(&ExecutionQuery::new()).await.unwrap();
    assert_eq!(all.len(), 3, "old rows survive the upgrade");
    let old = &all[2];
    assert_eq!(old.job_name, "cleanup_expired_sessions");
    assert_eq!(old.started_at, at(0));
    assert_eq!(old.completed_at, Some(at(1)));
    assert_eq!(old.success, Some(true));
    assert_eq!(old.records_processed, Some(42));
    assert_eq!(old.status, ExecutionStatus::Succeeded);
    assert_eq!(old.trigger, None);
    let failed = &all[1];
    assert_eq!(failed.status, ExecutionStatus::Failed);
    assert_eq!(failed.error_message.as_deref(), Some("database is locked"));
    assert_eq!(all[0].status, ExecutionStatus::Running);

    // New rows go into the upgraded table with the extra columns filled.
    let id = store
        .start(&NewExecution {
            job_name: "cleanup_expired_sessions".into(),
            started_at: at(7200),
            trigger: Trigger::Scheduled {
                fire_time: at(7200),
            },
            instance: Some("host-1:42".into()),
        })
        .await
        .unwrap();
    assert!(id > all[0].id);
    let row = store.get(id).await.unwrap().unwrap();
    assert_eq!(row.trigger.as_deref(), Some("scheduled"));
    assert_eq!(row.instance.as_deref(), Some("host-1:42"));
    assert_eq!(row.scheduled_for, Some(at(7200)));
}

async fn fresh_database_gets_the_table(t: &TestDb) {
    let store = ExecutionStore::new(t.db.clone());
    assert_eq!(store.migrate().await.unwrap(), every_version());
    assert!(store.migrate().await.unwrap().is_empty());
    assert!(store.list(&ExecutionQuery::new()).await.unwrap().is_empty());
    assert_eq!(store.get(12345).await.unwrap(), None);
}

async fn concurrent_migrations_from_replicas(t: &TestDb) {
    let a = ExecutionStore::new(t.db.clone());
    let b = ExecutionStore::new(t.another_pool().await);
    let c = ExecutionStore::new(t.another_pool().await);
    let (ra, rb, rc) = tokio::join!(a.migrate(), b.migrate(), c.migrate());
    ra.unwrap();
    rb.unwrap();
    rc.unwrap();
    assert!(a.migrate().await.unwrap().is_empty());
}

async fn start_finish_and_read_back(t: &TestDb) {
    let store = ExecutionStore::new(t.db.clone());
    store.migrate().await.unwrap();
    let id = store
        .start(&NewExecution::manual("job_a", at(10)))
        .await
        .unwrap();
    let running = store.get(id).await.unwrap().unwrap();
    assert_eq!(running.status, ExecutionStatus::Running);
    assert_eq!(running.success, None);
    assert_eq!(running.completed_at, None);

    assert!(
        store
            .record_end(
                RunEnd::new(
                    id,
                    Outcome::Succeeded {
                        records_processed: 7
                    },
                    at(12)
                )
                .with_duration(std::time::Duration::from_millis(1534))
            )
            .await
            .unwrap()
    );
    let done = store.get(id).await.unwrap().unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.success, Some(true));
    assert_eq!(done.records_processed, Some(7));
    assert_eq!(done.completed_at, Some(at(12)));
    assert_eq!(done.duration_ms, Some(1534));
    assert_eq!(done.trigger.as_deref(), Some("manual"));

    // A closed row is never rewritten (through the deprecated name too, which stays).
    #[allow(deprecated)]
    let rewritten = store
        .finish(
            id,
            &Outcome::Failed {
                message: "late".into(),
            },
            at(20),
        )
        .await
        .unwrap();
    assert!(!rewritten);
    assert_eq!(
        store.get(id).await.unwrap().unwrap().status,
        ExecutionStatus::Succeeded
    );

    for (outcome, status) in [
        (
            Outcome::Failed {
                message: "boom".into(),
            },
            ExecutionStatus::Failed,
        ),
        (
            Outcome::Cancelled {
                message: "shutdown".into(),
            },
            ExecutionStatus::Cancelled,
        ),
        (
            Outcome::Abandoned {
                message: "gone".into(),
            },
            ExecutionStatus::Abandoned,
        ),
    ] {
        let id = store
            .start(&NewExecution::manual("job_a", at(30)))
            .await
            .unwrap();
        store
            .record_end(
                RunEnd::new(id, outcome, at(31))
                    .with_duration(std::time::Duration::from_millis(250)),
            )
            .await
            .unwrap();
        let row = store.get(id).await.unwrap().unwrap();
        assert_eq!(row.duration_ms, Some(250));
        assert_eq!(row.status, status);
        assert_eq!(row.success, Some(false));
        assert!(row.error_message.is_some());
        assert_eq!(row.records_processed, None);
    }
}

async fn filters_and_ordering(t: &TestDb) {
    let store = ExecutionStore::new(t.db.clone());
    store.migrate().await.unwrap();
    let mut expected_a_failures = Vec::new();
    let mut ids = Vec::new();
    for i in 0..30i64 {
        let job = if i % 3 == 0 { "job_a" } else { "job_b" };
        let id = store
            .start(&NewExecution::manual(job, at(i)))
            .await
            .unwrap();
        let outcome = if i % 4 == 0 {
            Outcome::Failed {
                message: format!("fail {i}"),
            }
        } else {
            Outcome::Succeeded {
                records_processed: i as u64,
            }
        };
        store
            .record_end(RunEnd::new(id, outcome, at(i + 1)))
            .await
            .unwrap();
        if job == "job_a" && i % 4 == 0 {
            expected_a_failures.push(id);
        }
        ids.push(id);
    }
    let all = store.list(&ExecutionQuery::new()).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        ids.iter().rev().copied().collect::<Vec<_>>()
    );

    let a = store
        .list(&ExecutionQuery::new().job("job_a"))
        .await
        .unwrap();
    assert_eq!(a.len(), 10);
    assert!(a.iter().all(|e| e.job_name == "job_a"));
    assert!(a.windows(2).all(|w| w[0].id > w[1].id), "newest first");

    let fails = store.list(&ExecutionQuery::new().failures()).await.unwrap();
    assert_eq!(fails.len(), 8);
    assert!(fails.iter().all(|e| e.success == Some(false)));

    let a_fails = store
        .list(&ExecutionQuery::new().job("job_a").failures())
        .await
        .unwrap();
    expected_a_failures.reverse();
    assert_eq!(
        a_fails.iter().map(|e| e.id).collect::<Vec<_>>(),
        expected_a_failures
    );

    let limited = store.list(&ExecutionQuery::new().limit(5)).await.unwrap();
    assert_eq!(limited.len(), 5);
    assert_eq!(limited[0].id, *ids.last().unwrap());
    // Out-of-range limits are clamped, never an error or an unbounded scan.
    assert_eq!(
        store
            .list(&ExecutionQuery::new().limit(0))
            .await
            .unwrap()
            .len(),
        1
    );

    let latest = store
        .latest_per_job(&["job_a", "job_b", "never_ran"])
        .await
        .unwrap();
    assert_eq!(latest.len(), 2);
    assert_eq!(latest[0].id, a[0].id);
    assert_eq!(store.latest("never_ran").await.unwrap(), None);
}

async fn abandoned_runs_are_closed(t: &TestDb) {
    let store = ExecutionStore::new(t.db.clone());
    store.migrate().await.unwrap();
    let dead = store
        .start(&NewExecution::manual("job_a", at(0)))
        .await
        .unwrap();
    let other_job = store
        .start(&NewExecution::manual("job_b", at(0)))
        .await
        .unwrap();
    let mine = store
        .start(&NewExecution::manual("job_a", at(5)))
        .await
        .unwrap();
    assert_eq!(
        store
            .close_abandoned("job_a", Some(mine), at(6))
            .await
            .unwrap(),
        1
    );
    let row = store.get(dead).await.unwrap().unwrap();
    assert_eq!(row.status, ExecutionStatus::Abandoned);
    assert_eq!(row.success, Some(false));
    assert_eq!(row.completed_at, Some(at(6)));
    assert_eq!(
        store.get(mine).await.unwrap().unwrap().status,
        ExecutionStatus::Running
    );
    assert_eq!(
        store.get(other_job).await.unwrap().unwrap().status,
        ExecutionStatus::Running
    );
}

async fn retention_purges_in_batches(t: &TestDb) {
    let store = ExecutionStore::new(t.db.clone());
    store.migrate().await.unwrap();
    for i in 0..25i64 {
        let id = store
            .start(&NewExecution::manual("job_a", at(i * 10)))
            .await
            .unwrap();
        store
            .record_end(RunEnd::new(
                id,
                Outcome::Succeeded {
                    records_processed: 0,
                },
                at(i * 10 + 1),
            ))
            .await
            .unwrap();
    }
    // An old run still open is never purged.
    let open = store
        .start(&NewExecution::manual("job_a", at(0)))
        .await
        .unwrap();
    let cutoff = at(200);
    let mut total = 0;
    loop {
        let n = store.purge_batch(cutoff, 7).await.unwrap();
        assert!(n <= 7);
        total += n;
        if n < 7 {
            break;
        }
    }
    assert_eq!(total, 20);
    let left = store.list(&ExecutionQuery::new().limit(100)).await.unwrap();
    assert_eq!(left.len(), 6);
    assert!(left.iter().any(|e| e.id == open));
    assert!(
        left.iter()
            .filter(|e| e.id != open)
            .all(|e| e.started_at >= cutoff)
    );
    let _ = Duration::zero();
}

async fn custom_table_names(t: &TestDb) {
    use barycenter_jobs_core::{Identifier, TableNames};
    let tables = TableNames {
        executions: Identifier::new("myapp_job_history").unwrap(),
        leases: Identifier::new("myapp_job_leases").unwrap(),
        settings: Identifier::new("myapp_job_settings").unwrap(),
        audit: Identifier::new("myapp_job_audit").unwrap(),
        registry: Identifier::new("myapp_job_registry").unwrap(),
        fleet: Identifier::new("myapp_job_fleet").unwrap(),
        logs: Identifier::new("myapp_job_logs").unwrap(),
        alerts: Identifier::new("myapp_job_alerts").unwrap(),
    };
    let store = ExecutionStore::with_tables(t.db.clone(), tables);
    store.migrate().await.unwrap();
    let default = ExecutionStore::new(t.db.clone());
    default.migrate().await.unwrap();
    let id = store
        .start(&NewExecution::manual("x", at(0)))
        .await
        .unwrap();
    assert!(store.get(id).await.unwrap().is_some());
    assert!(
        default
            .list(&ExecutionQuery::new())
            .await
            .unwrap()
            .is_empty()
    );
}

backend_tests!(
    upgrades_barycenter_table_in_place,
    fresh_database_gets_the_table,
    concurrent_migrations_from_replicas,
    start_finish_and_read_back,
    filters_and_ordering,
    abandoned_runs_are_closed,
    retention_purges_in_batches,
    custom_table_names,
);

/// How many columns the history table's index `index` has on MariaDB (0: no such index).
async fn mysql_index_columns(t: &TestDb, index: &str) -> i64 {
    let Database::MySql(pool) = &t.db else {
        unreachable!("MariaDB only");
    };
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.statistics
         WHERE table_schema = DATABASE() AND table_name = 'job_executions' AND index_name = ?",
    )
    .bind(index)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// A history table whose `job_name` is TEXT cannot take the `(job_name, id)` index: MySQL
/// refuses a TEXT key without a length (error 1170), MariaDB 10.x tries the whole column and
/// finds the key too long (error 1071). Both come with SQLSTATE 42000, which a duplicate index
/// name has too. The index step must fail and name itself, not count as done and leave the
/// history without its index for good.
async fn refused_index_fails_the_migration(t: &TestDb) {
    // Barycenter's MySQL table, but with a TEXT `job_name`.
    raw(t, &barycenter_table(MYSQL_ID, "TEXT", "BIGINT")).await;
    let store = ExecutionStore::new(t.db.clone());
    let err = store.migrate().await.unwrap_err();
    let Error::Migration {
        version,
        name,
        source,
    } = &err
    else {
        panic!("expected a migration error, got {err:?}");
    };
    assert_eq!((*version, *name), (3, "add_execution_indexes"), "{err}");
    let number = source
        .as_database_error()
        .and_then(|d| d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
        .map(|d| d.number());
    assert!(matches!(number, Some(1170 | 1071)), "{err}");
    assert!(err.to_string().contains("add_execution_indexes"), "{err}");
    assert_eq!(mysql_index_columns(t, "job_executions_job_id_idx").await, 0);

    // Not recorded as applied: once the column is fixed, the next run creates the indexes.
    raw(
        t,
        "ALTER TABLE job_executions MODIFY job_name VARCHAR(191) NOT NULL",
    )
    .await;
    let ran = store.migrate().await.unwrap();
    assert_eq!(ran.first(), Some(&3), "{ran:?}");
    assert_eq!(mysql_index_columns(t, "job_executions_job_id_idx").await, 2);
}

/// The index step run again over indexes that exist (its record lost, or a replica that
/// created them first) completes: on MariaDB through ER_DUP_KEYNAME (1061), elsewhere through
/// IF NOT EXISTS.
async fn index_step_rerun_over_existing_indexes(t: &TestDb) {
    let store = ExecutionStore::new(t.db.clone());
    store.migrate().await.unwrap();
    assert!(store.migrate().await.unwrap().is_empty());
    raw(
        t,
        "DELETE FROM barycenter_jobs_migrations WHERE version = 3",
    )
    .await;
    assert_eq!(store.migrate().await.unwrap(), vec![3]);
    assert!(store.migrate().await.unwrap().is_empty());
    if t.backend() == Backend::MySql {
        assert_eq!(mysql_index_columns(t, "job_executions_job_id_idx").await, 2);
    }
}

/// An integer the history reads that does not fit 64 signed bits (a host's `BIGINT
/// UNSIGNED` column holding more than i64::MAX) is a decode error naming the column, never
/// a silent wrap to a negative number.
async fn unsigned_overflow_is_an_error_not_a_wrap(t: &TestDb) {
    raw(
        t,
        "CREATE TABLE job_executions (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            job_name VARCHAR(191) NOT NULL,
            started_at BIGINT NOT NULL,
            completed_at BIGINT,
            success INTEGER,
            error_message TEXT,
            records_processed BIGINT UNSIGNED
        )",
    )
    .await;
    let store = ExecutionStore::new(t.db.clone());
    store.migrate().await.unwrap();
    raw(
        t,
        "INSERT INTO job_executions (job_name, started_at, completed_at, success, records_processed)
         VALUES ('big', 1790000000, 1790000001, 1, 18446744073709551615)",
    )
    .await;
    let err = store
        .list(&ExecutionQuery::new().job("big"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("records_processed") && err.to_string().contains("does not fit"),
        "{err}"
    );
}

/// Barycenter's `idx_job_executions_started (started_at)` serves the retention purge: the
/// migration reuses it instead of adding a second index on `started_at`; the lookups
/// Barycenter has no index for get ours.
async fn existing_index_is_reused_not_doubled(t: &TestDb) {
    create_barycenter_table(t).await;
    ExecutionStore::new(t.db.clone()).migrate().await.unwrap();
    assert_eq!(
        t.indexes_on("job_executions", "started_at").await,
        vec!["idx_job_executions_started".to_owned()]
    );
    assert_eq!(
        t.indexes_on("job_executions", "success").await,
        vec!["job_executions_success_id_idx".to_owned()]
    );
    assert!(
        t.indexes_on("job_executions", "job_name")
            .await
            .contains(&"job_executions_job_id_idx".to_owned())
    );
}

/// A fresh database gets all three of ours.
async fn fresh_database_gets_every_index(t: &TestDb) {
    ExecutionStore::new(t.db.clone()).migrate().await.unwrap();
    assert_eq!(
        t.indexes_on("job_executions", "started_at").await,
        vec!["job_executions_started_idx".to_owned()]
    );
}

backend_tests!(
    existing_index_is_reused_not_doubled,
    fresh_database_gets_every_index
);

/// An existing SQLite database keeps its journal mode (`delete` here): WAL is persistent,
/// so switching it is the host's call. A database the library creates gets WAL.
#[tokio::test]
async fn sqlite_journal_mode_is_kept_on_existing_databases() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("host.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    {
        use sqlx::Connection as _;
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "PRAGMA journal_mode = DELETE; CREATE TABLE sessions (session_id TEXT PRIMARY KEY)",
        )
        .execute(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
    }
    let mode = |db: Database| async move {
        match &db {
            Database::Sqlite(p) => sqlx::query_scalar::<_, String>("PRAGMA journal_mode")
                .fetch_one(p)
                .await
                .unwrap(),
            _ => unreachable!(),
        }
    };
    let db = Database::connect(&url).await.unwrap();
    ExecutionStore::new(db.clone()).migrate().await.unwrap();
    assert_eq!(mode(db.clone()).await, "delete");
    db.close().await;
    let fresh = format!("sqlite://{}", dir.path().join("new.db").display());
    assert_eq!(mode(Database::connect(&fresh).await.unwrap()).await, "wal");
}

backend_tests!(index_step_rerun_over_existing_indexes);
backend_tests!([mysql] unsigned_overflow_is_an_error_not_a_wrap);
backend_tests!([mysql] refused_index_fails_the_migration);
