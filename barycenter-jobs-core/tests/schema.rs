//! The schema a fresh database gets from the migrations, on SQLite, PostgreSQL and MariaDB:
//! every table with its columns and their declared types, the indexes of the tables beside the
//! history, the settings table's version row, and the applied versions.

use barycenter_jobs_core::sea_query::{Alias, Order, Query};
use barycenter_jobs_core::{Backend, ExecutionStore, Identifier};
use barycenter_jobs_test_support::{TestDb, backend_tests};

/// A column's type as the migrations declare it.
#[derive(Clone, Copy)]
enum Ty {
    BigInt,
    Varchar(u32),
    Text,
}

/// How `backend`'s catalogue spells `ty` ([`Backend::table_columns`]'s `data_type`; SQLite's
/// `pragma_table_info` writes the type names it knows in capitals).
fn spelled(backend: Backend, ty: Ty) -> String {
    match (backend, ty) {
        (Backend::Sqlite, Ty::BigInt) => "INTEGER".into(),
        (Backend::Sqlite, Ty::Varchar(n)) => format!("varchar({n})"),
        (Backend::Sqlite, Ty::Text) => "TEXT".into(),
        (Backend::Postgres, Ty::BigInt) => "bigint".into(),
        (Backend::Postgres, Ty::Varchar(n)) => format!("character varying({n})"),
        (_, Ty::BigInt) => "bigint".into(),
        (_, Ty::Varchar(_)) => "varchar".into(),
        (_, Ty::Text) => "text".into(),
    }
}

/// The columns of `table` as (name, declared type), sorted by name.
async fn columns(t: &TestDb, table: &str) -> Vec<(String, String)> {
    let table = Identifier::new(table).unwrap();
    let mut out: Vec<(String, String)> =
        t.db.fetch_all(&t.backend().table_columns(&table))
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.opt_string("column_name").unwrap().unwrap(),
                    r.opt_string("data_type").unwrap().unwrap(),
                )
            })
            .collect();
    out.sort();
    out
}

fn expected(backend: Backend, cols: &[(&str, Ty)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = cols
        .iter()
        .map(|(name, ty)| ((*name).to_owned(), spelled(backend, *ty)))
        .collect();
    out.sort();
    out
}

async fn fresh_database_gets_every_table(t: &TestDb) {
    use Ty::{BigInt, Text, Varchar};
    ExecutionStore::new(t.db.clone()).migrate().await.unwrap();
    let b = t.backend();

    let tables: [(&str, &[(&str, Ty)]); 9] = [
        (
            "barycenter_jobs_migrations",
            &[
                ("scope", Varchar(64)),
                ("version", BigInt),
                ("name", Varchar(128)),
                ("applied_at", BigInt),
            ],
        ),
        (
            "job_executions",
            &[
                ("id", BigInt),
                ("job_name", Varchar(191)),
                ("started_at", BigInt),
                ("completed_at", BigInt),
                ("success", BigInt),
                ("error_message", Text),
                ("records_processed", BigInt),
                ("status", Varchar(16)),
                ("trigger_kind", Varchar(16)),
                ("instance", Varchar(255)),
                ("duration_ms", BigInt),
                ("scheduled_for", BigInt),
                ("attempt", BigInt),
            ],
        ),
        (
            "job_leases",
            &[
                ("job_name", Varchar(191)),
                ("holder", Varchar(255)),
                ("token", BigInt),
                ("expires_at_ms", BigInt),
                ("last_tick", BigInt),
                ("execution_id", BigInt),
                ("retry_tick", BigInt),
                ("retry_attempt", BigInt),
                ("retry_due_ms", BigInt),
                ("retry_until_ms", BigInt),
                ("buffered_tick", BigInt),
                ("backfill_tick", BigInt),
                ("cancel_token", BigInt),
                ("cancel_by", Varchar(255)),
            ],
        ),
        (
            "job_settings",
            &[
                ("job_name", Varchar(191)),
                ("paused", BigInt),
                ("schedule", Varchar(255)),
                ("time_zone", Varchar(64)),
                ("timeout_secs", BigInt),
                ("changed_by", Varchar(255)),
                ("changed_at_ms", BigInt),
                ("revision", BigInt),
                ("misfire", Varchar(16)),
                ("catch_up_window_secs", BigInt),
                ("jitter_secs", BigInt),
                ("pause_after_failures", BigInt),
                ("pause_note", Varchar(500)),
                ("paused_until_ms", BigInt),
                ("paused_by", Varchar(255)),
                ("retry_attempts", BigInt),
                ("retry_backoff_secs", BigInt),
                ("overlap", Varchar(16)),
                ("backfill_from", BigInt),
                ("backfill_to", BigInt),
                ("backfill_by", Varchar(255)),
            ],
        ),
        (
            "job_audit",
            &[
                ("id", BigInt),
                ("at_ms", BigInt),
                ("actor", Varchar(255)),
                ("action", Varchar(32)),
                ("job_name", Varchar(191)),
                ("detail", Text),
            ],
        ),
        (
            "job_registry",
            &[("job_name", Varchar(191)), ("first_seen_at", BigInt)],
        ),
        (
            "job_fleet",
            &[
                ("holder", Varchar(191)),
                ("instance", Varchar(255)),
                ("host", Varchar(255)),
                ("pid", BigInt),
                ("version", Varchar(64)),
                ("started_at_ms", BigInt),
                ("last_seen_ms", BigInt),
                ("clock_skew_ms", BigInt),
                ("running", BigInt),
            ],
        ),
        (
            "job_execution_logs",
            &[
                ("id", BigInt),
                ("execution_id", BigInt),
                ("seq", BigInt),
                ("at_ms", BigInt),
                ("level", Varchar(8)),
                ("message", Text),
            ],
        ),
        (
            "job_alerts",
            &[
                ("alert_key", Varchar(191)),
                ("event", Varchar(32)),
                ("job_name", Varchar(191)),
                ("payload", Text),
                ("state", Varchar(16)),
                ("attempts", BigInt),
                ("created_ms", BigInt),
                ("next_attempt_ms", BigInt),
                ("claimed_by", Varchar(255)),
                ("claimed_until_ms", BigInt),
                ("delivered_at_ms", BigInt),
                ("last_error", Text),
            ],
        ),
    ];
    for (table, cols) in tables {
        assert_eq!(
            columns(t, table).await,
            expected(b, cols),
            "{table} on {b:?}"
        );
    }

    // The audit log's two reads: newest entries of one job, and retention by time.
    assert_eq!(
        t.indexes_on("job_audit", "job_name").await,
        vec!["job_audit_job_id_idx".to_owned()]
    );
    assert_eq!(
        t.indexes_on("job_audit", "at_ms").await,
        vec!["job_audit_at_idx".to_owned()]
    );
    // A run's log is read, and purged, by its run's id.
    assert_eq!(
        t.indexes_on("job_execution_logs", "execution_id").await,
        vec!["job_execution_logs_execution_idx".to_owned()]
    );
    // The alert deliveries: the senders' poll of due rows, and a job's newest alert.
    assert_eq!(
        t.indexes_on("job_alerts", "state").await,
        vec!["job_alerts_due_idx".to_owned()]
    );
    assert_eq!(
        t.indexes_on("job_alerts", "job_name").await,
        vec!["job_alerts_job_idx".to_owned()]
    );
    // The tables keyed by job name: their primary key, and no second index.
    for table in ["job_leases", "job_settings", "job_registry"] {
        assert_eq!(
            t.indexes_on(table, "job_name").await.len(),
            1,
            "{table} on {b:?}"
        );
    }

    // The settings table's version row, and nothing else.
    let settings: Vec<(String, i64, i64)> =
        t.db.fetch_all(
            Query::select()
                .columns([
                    Alias::new("job_name"),
                    Alias::new("revision"),
                    Alias::new("changed_at_ms"),
                ])
                .from(Alias::new("job_settings")),
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.opt_string("job_name").unwrap().unwrap(),
                r.i64("revision").unwrap(),
                r.i64("changed_at_ms").unwrap(),
            )
        })
        .collect();
    assert_eq!(settings, vec![("*".to_owned(), 0, 0)]);

    // Each version recorded under the table it creates or changes.
    let applied: Vec<(String, i64, String)> =
        t.db.fetch_all(
            Query::select()
                .columns([
                    Alias::new("scope"),
                    Alias::new("version"),
                    Alias::new("name"),
                ])
                .from(Alias::new("barycenter_jobs_migrations"))
                .order_by(Alias::new("version"), Order::Asc),
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.opt_string("scope").unwrap().unwrap(),
                r.i64("version").unwrap(),
                r.opt_string("name").unwrap().unwrap(),
            )
        })
        .collect();
    let want = [
        ("job_executions", 1, "create_job_executions"),
        ("job_executions", 2, "add_execution_detail_columns"),
        ("job_executions", 3, "add_execution_indexes"),
        ("job_leases", 4, "create_job_leases"),
        ("job_settings", 5, "create_job_settings"),
        ("job_audit", 6, "create_job_audit"),
        ("job_executions", 7, "add_execution_job_outcome_index"),
        ("job_registry", 8, "create_job_registry"),
        ("job_settings", 9, "add_settings_policy_columns"),
        ("job_settings", 10, "add_settings_retry_columns"),
        ("job_leases", 11, "add_lease_retry_columns"),
        ("job_executions", 12, "add_execution_attempt_column"),
        (
            "job_settings",
            13,
            "add_settings_overlap_and_backfill_columns",
        ),
        ("job_leases", 14, "add_lease_run_control_columns"),
        ("job_fleet", 15, "create_job_fleet"),
        ("job_execution_logs", 16, "create_job_execution_logs"),
        ("job_alerts", 17, "create_job_alerts"),
    ]
    .map(|(s, v, n)| (s.to_owned(), v, n.to_owned()));
    assert_eq!(applied, want);
}

backend_tests!(fresh_database_gets_every_table);
