//! A SeaORM 2 host hands the sqlx pool of its `DatabaseConnection` to barycenter-jobs.
//!
//! The host's tables are created the way Barycenter's SeaORM migrations create them
//! (`sessions`, a `job_executions` that already holds history, `seaql_migrations`), through
//! SeaORM itself; the built-in session cleanup then runs on the pool SeaORM opened, and
//! everything is checked from both sides: SeaORM sees the rows our cleanup left and the
//! history row our scheduler wrote, our store reads the rows Barycenter wrote, and
//! `seaql_migrations` is exactly as it was.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use barycenter_jobs::builtin::{self, BuiltinConfig};
use barycenter_jobs::{
    Backend, Database, ExecutionQuery, ExecutionStatus, JobConfig, Registry, Scheduler,
    SchedulerConfig,
};
use barycenter_jobs_test_support::{TestDb, backend_tests};
use sea_orm::sea_query::{
    ColumnDef, Expr, ExprTrait, Index, IndexCreateStatement, Order, Query, Table,
    TableCreateStatement,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, QueryResult};

const BUILTINS: [&str; 4] = [
    "cleanup_expired_sessions",
    "cleanup_expired_refresh_tokens",
    "cleanup_expired_challenges",
    "cleanup_expired_device_codes",
];

fn epoch_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A column as Barycenter's SeaORM migrations declare it: text or `bigint`, `NOT NULL`
/// unless named `Null…`.
#[derive(Clone, Copy)]
enum Col {
    /// A text primary key.
    TextKey,
    /// A `bigint` auto-increment primary key.
    Serial,
    Text,
    NullText,
    BigInt,
    NullBigInt,
}

/// Barycenter's `job_executions`, in its column order.
const JOB_EXECUTIONS: [(&str, Col); 7] = [
    ("id", Col::Serial),
    ("job_name", Col::Text),
    ("started_at", Col::BigInt),
    ("completed_at", Col::NullBigInt),
    ("success", Col::NullBigInt),
    ("error_message", Col::NullText),
    ("records_processed", Col::NullBigInt),
];

/// The column names of [`JOB_EXECUTIONS`], `id` first.
fn history_columns() -> impl Iterator<Item = &'static str> {
    JOB_EXECUTIONS.iter().map(|&(name, _)| name)
}

/// `CREATE TABLE name (columns…)`, the columns in the order given.
fn table(name: &'static str, columns: &[(&'static str, Col)]) -> TableCreateStatement {
    let mut table = Table::create().table(name).to_owned();
    for &(column, col) in columns {
        let mut def = ColumnDef::new(column);
        match col {
            Col::TextKey => def.string().not_null().primary_key(),
            Col::Serial => def.big_integer().not_null().auto_increment().primary_key(),
            Col::Text => def.string().not_null(),
            Col::NullText => def.string().null(),
            Col::BigInt => def.big_integer().not_null(),
            Col::NullBigInt => def.big_integer().null(),
        };
        table.col(def);
    }
    table
}

/// `CREATE INDEX name ON table (column)`.
fn index(name: &str, table: &'static str, column: &'static str) -> IndexCreateStatement {
    Index::create()
        .name(name)
        .table(table)
        .col(column)
        .to_owned()
}

/// The tables as Barycenter's SeaORM migrations leave them (see BARYCENTER-SCHEMA.md):
/// `sessions` with its expiry index, `job_executions` with `idx_job_executions_started`, and
/// SeaORM's own `seaql_migrations` bookkeeping, all created through the host's connection.
async fn migrate_like_barycenter(conn: &DatabaseConnection) {
    conn.execute(
        table(
            "sessions",
            &[
                ("session_id", Col::TextKey),
                ("subject", Col::Text),
                ("auth_time", Col::BigInt),
                ("created_at", Col::BigInt),
                ("expires_at", Col::BigInt),
                ("user_agent", Col::NullText),
                ("ip_address", Col::NullText),
                ("amr", Col::NullText),
                ("acr", Col::NullText),
            ],
        )
        .col(
            ColumnDef::new("mfa_verified")
                .big_integer()
                .not_null()
                .default(0),
        ),
    )
    .await
    .expect("create sessions");
    conn.execute(&index("idx_sessions_expires", "sessions", "expires_at"))
        .await
        .expect("create idx_sessions_expires");

    conn.execute(&table("job_executions", &JOB_EXECUTIONS))
        .await
        .expect("create job_executions");
    conn.execute(&index(
        "idx_job_executions_started",
        "job_executions",
        "started_at",
    ))
    .await
    .expect("create idx_job_executions_started");

    // sea-orm-migration's table: one row per applied migration.
    conn.execute(&table(
        "seaql_migrations",
        &[("version", Col::TextKey), ("applied_at", Col::BigInt)],
    ))
    .await
    .expect("create seaql_migrations");
    conn.execute(
        Query::insert()
            .into_table("seaql_migrations")
            .columns(["version", "applied_at"])
            .values_panic([
                "m20240101_000001_create_sessions".into(),
                1_704_067_200.into(),
            ])
            .values_panic([
                "m20240101_000002_create_job_executions".into(),
                1_704_067_201.into(),
            ]),
    )
    .await
    .expect("fill seaql_migrations");
}

/// Rows as Barycenter writes them: three expired sessions, two live ones, and two finished
/// runs of its own scheduler from yesterday (one succeeded, one failed).
async fn seed(conn: &DatabaseConnection, now: i64) {
    let mut sessions = Query::insert()
        .into_table("sessions")
        .columns([
            "session_id",
            "subject",
            "auth_time",
            "created_at",
            "expires_at",
        ])
        .to_owned();
    for (id, expires_at) in [
        ("expired-1", now - 7_200),
        ("expired-2", now - 3_600),
        ("expired-3", now - 600),
        ("live-1", now + 600),
        ("live-2", now + 86_400),
    ] {
        sessions.values_panic([
            id.into(),
            "alice".into(),
            (now - 90_000).into(),
            (now - 90_000).into(),
            expires_at.into(),
        ]);
    }
    conn.execute(&sessions).await.expect("insert sessions");

    let yesterday = now - 86_400;
    conn.execute(
        Query::insert()
            .into_table("job_executions")
            // All but `id`, which the database assigns.
            .columns(history_columns().skip(1))
            .values_panic([
                "cleanup_expired_sessions".into(),
                yesterday.into(),
                (yesterday + 1).into(),
                1i64.into(),
                Option::<String>::None.into(),
                7i64.into(),
            ])
            .values_panic([
                "cleanup_expired_sessions".into(),
                (yesterday + 3_600).into(),
                (yesterday + 3_601).into(),
                0i64.into(),
                "database is locked".into(),
                Option::<i64>::None.into(),
            ]),
    )
    .await
    .expect("insert Barycenter's history");
}

async fn session_ids(conn: &DatabaseConnection) -> Vec<String> {
    conn.query_all(
        Query::select()
            .column("session_id")
            .from("sessions")
            .order_by("session_id", Order::Asc),
    )
    .await
    .expect("select sessions")
    .iter()
    .map(|row| row.try_get::<String>("", "session_id").unwrap())
    .collect()
}

async fn seaql_migrations(conn: &DatabaseConnection) -> Vec<(String, i64)> {
    conn.query_all(
        Query::select()
            .columns(["version", "applied_at"])
            .from("seaql_migrations")
            .order_by("version", Order::Asc),
    )
    .await
    .expect("select seaql_migrations")
    .iter()
    .map(|row| {
        (
            row.try_get::<String>("", "version").unwrap(),
            row.try_get::<i64>("", "applied_at").unwrap(),
        )
    })
    .collect()
}

/// The column names of `table`, from the catalogue, in order.
async fn columns_of(conn: &DatabaseConnection, backend: Backend, table: &str) -> Vec<String> {
    let sql = match backend {
        Backend::Sqlite => format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
        _ => format!(
            "SELECT column_name AS name FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{table}' \
             ORDER BY ordinal_position"
        ),
    };
    conn.query_all_raw(sea_orm::Statement::from_string(
        conn.get_database_backend(),
        sql,
    ))
    .await
    .expect("read the catalogue")
    .iter()
    .map(|row| row.try_get::<String>("", "name").unwrap())
    .collect()
}

/// The declared type of `job_executions.id`, to check the fixture against Barycenter's
/// (`integer` autoincrement on SQLite, a `bigint` identity on PostgreSQL).
async fn id_column(conn: &DatabaseConnection, backend: Backend) -> String {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT lower(type) || ' ' || \
            (SELECT CASE WHEN sql LIKE '%AUTOINCREMENT%' THEN 'autoincrement' ELSE '' END \
             FROM sqlite_master WHERE name = 'job_executions') AS t \
            FROM pragma_table_info('job_executions') WHERE name = 'id'"
        }
        _ => {
            "SELECT data_type || ' ' || CASE is_identity WHEN 'YES' THEN 'identity' ELSE '' END \
              AS t FROM information_schema.columns \
              WHERE table_schema = current_schema() AND table_name = 'job_executions' \
              AND column_name = 'id'"
        }
    };
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            sql,
        ))
        .await
        .expect("read the catalogue")
        .expect("job_executions.id exists");
    row.try_get("", "t").unwrap()
}

/// One `job_executions` row read as Barycenter's SeaORM entity types it (`bigint` columns as
/// `i64`, nullable ones as `Option`).
#[derive(Debug, PartialEq, Eq)]
struct BarycenterExecution {
    id: i64,
    job_name: String,
    started_at: i64,
    completed_at: Option<i64>,
    success: Option<i64>,
    error_message: Option<String>,
    records_processed: Option<i64>,
}

impl BarycenterExecution {
    fn from_row(row: &QueryResult) -> Self {
        Self {
            id: row.try_get("", "id").unwrap(),
            job_name: row.try_get("", "job_name").unwrap(),
            started_at: row.try_get("", "started_at").unwrap(),
            completed_at: row.try_get("", "completed_at").unwrap(),
            success: row.try_get("", "success").unwrap(),
            error_message: row.try_get("", "error_message").unwrap(),
            records_processed: row.try_get("", "records_processed").unwrap(),
        }
    }
}

async fn barycenter_history(conn: &DatabaseConnection) -> Vec<BarycenterExecution> {
    conn.query_all(
        Query::select()
            .columns(history_columns())
            .from("job_executions")
            .order_by("id", Order::Asc),
    )
    .await
    .expect("select job_executions through SeaORM")
    .iter()
    .map(BarycenterExecution::from_row)
    .collect()
}

/// The pool inside SeaORM's connection, as barycenter-jobs' handle: no second pool, no URL.
fn hand_over(conn: &DatabaseConnection, backend: Backend) -> Database {
    match backend {
        Backend::Sqlite => Database::from(conn.get_sqlite_connection_pool().clone()),
        Backend::Postgres => Database::from(conn.get_postgres_connection_pool().clone()),
        other => unreachable!("no SeaORM driver compiled in for {other:?}"),
    }
}

async fn seaorm_host_hands_over_its_pool(t: &TestDb) {
    let backend = t.backend();
    let conn = sea_orm::Database::connect(t.url.as_str())
        .await
        .expect("SeaORM connects");
    migrate_like_barycenter(&conn).await;
    let barycenter_id = match backend {
        Backend::Sqlite => "integer autoincrement",
        _ => "bigint identity",
    };
    assert_eq!(id_column(&conn, backend).await, barycenter_id);
    let now = epoch_now();
    seed(&conn, now).await;
    let before = barycenter_history(&conn).await;
    assert_eq!(before.len(), 2);
    let migrations_before = seaql_migrations(&conn).await;
    let migrations_columns_before = columns_of(&conn, backend, "seaql_migrations").await;

    let db = hand_over(&conn, backend);
    assert_eq!(db.backend(), backend);
    let registry = builtin::configure(
        Registry::builder().with_inventory(),
        &BuiltinConfig::default(),
    )
    .expect("builtin configuration")
    .build()
    .expect("registry");
    // No scheduled run may fire while the test runs (the challenges cleanup fires every
    // 5 minutes, and its table does not exist here): only the manual trigger below runs.
    let config = BUILTINS.iter().fold(SchedulerConfig::default(), |c, name| {
        c.job(*name, JobConfig::default().with_enabled(false))
    });
    let scheduler = Scheduler::builder(registry, db)
        .config(config)
        .start()
        .await
        .expect("scheduler starts on SeaORM's pool (and migrates job_executions in place)");

    let run = scheduler
        .trigger("cleanup_expired_sessions")
        .await
        .expect("trigger");
    let execution = run.wait().await.expect("run finishes");
    assert_eq!(
        execution.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        execution.error_message
    );
    assert_eq!(execution.records_processed, Some(3));

    // The host's view, through SeaORM: expired sessions gone, live ones kept.
    assert_eq!(session_ids(&conn).await, ["live-1", "live-2"]);

    // Barycenter's rows, read by our store with their meaning intact.
    let history = scheduler
        .store()
        .list(&ExecutionQuery::new().job("cleanup_expired_sessions"))
        .await
        .expect("list history");
    assert_eq!(history.len(), 3, "{history:#?}");
    assert_eq!(history[0].id, execution.id, "newest first");
    assert!(history[0].id > before[1].id);
    let old_ok = history.iter().find(|e| e.id == before[0].id).unwrap();
    assert_eq!(old_ok.status, ExecutionStatus::Succeeded);
    assert_eq!(old_ok.success, Some(true));
    assert_eq!(old_ok.records_processed, Some(7));
    assert_eq!(old_ok.started_at.timestamp(), before[0].started_at);
    assert_eq!(old_ok.trigger, None, "Barycenter's rows have no trigger");
    let failures = scheduler
        .store()
        .list(&ExecutionQuery::new().failures())
        .await
        .expect("list failures");
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert_eq!(failures[0].id, before[1].id);
    assert_eq!(failures[0].status, ExecutionStatus::Failed);
    assert_eq!(
        failures[0].error_message.as_deref(),
        Some("database is locked")
    );

    // Our row, read by a plain SeaORM query with Barycenter's column types; the old rows
    // are unchanged by the in-place migration.
    let after = barycenter_history(&conn).await;
    assert_eq!(after[..2], before[..]);
    assert_eq!(after.len(), 3);
    let ours = &after[2];
    assert_eq!(ours.id, execution.id);
    assert_eq!(ours.job_name, "cleanup_expired_sessions");
    assert_eq!(ours.started_at, execution.started_at.timestamp());
    assert!((now - 5..=now + 60).contains(&ours.started_at), "{ours:?}");
    assert!(ours.completed_at.is_some_and(|c| c >= ours.started_at));
    assert_eq!(ours.success, Some(1));
    assert_eq!(ours.error_message, None);
    assert_eq!(ours.records_processed, Some(3));
    // The migration added its columns beside Barycenter's, at the end.
    let columns = columns_of(&conn, backend, "job_executions").await;
    assert_eq!(
        columns[..7],
        [
            "id",
            "job_name",
            "started_at",
            "completed_at",
            "success",
            "error_message",
            "records_processed"
        ]
    );
    assert!(columns.iter().any(|c| c == "status"), "{columns:?}");

    scheduler
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shutdown");

    // SeaORM's bookkeeping is untouched, and the host's connection outlives the scheduler:
    // the pool is shared, not closed by shutdown.
    assert_eq!(seaql_migrations(&conn).await, migrations_before);
    assert_eq!(
        columns_of(&conn, backend, "seaql_migrations").await,
        migrations_columns_before
    );
    conn.execute(
        Query::delete()
            .from_table("sessions")
            .and_where(Expr::col("session_id").eq("live-1")),
    )
    .await
    .expect("SeaORM still works after the scheduler shut down");
    assert_eq!(session_ids(&conn).await, ["live-2"]);
    conn.close().await.expect("close SeaORM's connection");
}

backend_tests!([sqlite, postgres] seaorm_host_hands_over_its_pool);
