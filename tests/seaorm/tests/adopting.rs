//! The code of `docs/ADOPTING.md`, compiled and run: a SeaORM host replaces its
//! tokio-cron-scheduler job module. Its configuration (TOML, with the old `device_code` table
//! name and the opt-in federation cleanup on Barycenter's `federation_auth_requests`, whose
//! `expires_at` is RFC 3339 text), an expiry cleanup of its own for another text column
//! (registered through inventory), a job that keeps the host's own SeaORM connection, and
//! the admin service mounted in axum beside the host's own GraphQL route, behind a bearer
//! token.
//!
//! The invitations and peer tables are stand-ins: the guide does not know the host's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use barycenter_jobs::builtin::{BuiltinConfig, ExpiryCleanup, ExpiryKind, TimeFormat};
use barycenter_jobs::graphql::AdminService;
use barycenter_jobs::{
    Backend, Database, ExecutionStatus, Job, JobContext, JobError, JobOutput, Registry, Scheduler,
    SchedulerConfig, async_trait, register_job,
};
use barycenter_jobs_test_support::{TestDb, backend_tests};
use http_body_util::BodyExt;
use sea_orm::sea_query::{Alias, ColumnDef, Expr, ExprTrait, Order, Query, Table};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr};
use serde::Deserialize;
use tower::ServiceExt;

// --- Step 3 of the guide: the jobs of the host's own, as plugins. ---

/// Expired invitations: an expiry cleanup like the built-in ones (batched deletes, the
/// database's clock, dry runs), declared by naming its table and how its expiry column
/// stores instants (RFC 3339 text here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Invitations;

impl ExpiryKind for Invitations {
    const NAME: &'static str = "cleanup_expired_invitations";
    const DESCRIPTION: &'static str = "Clean up expired invitations";
    const SCHEDULE: &'static str = "0 0 * * * *";
    const TABLE: &'static str = "invitations";
    const KEY: &'static str = "id";
    const EXPIRES: &'static str = "expires_at";
    const TIME_FORMAT: TimeFormat = TimeFormat::Iso8601Text;
}

register_job!(ExpiryCleanup::<Invitations>::default());

/// Peer discovery refresh: needs the host's own state (here its SeaORM connection), so it is
/// registered with `RegistryBuilder::register` rather than through inventory.
pub struct RefreshPeers {
    conn: DatabaseConnection,
}

#[async_trait]
impl Job for RefreshPeers {
    fn name(&self) -> &str {
        "refresh_peer_discovery"
    }

    fn description(&self) -> &str {
        "Refresh federation peer discovery documents"
    }

    fn schedule(&self) -> &str {
        "0 0 3 * * *"
    }

    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        // The body of the old tokio-cron-scheduler closure, unchanged.
        let refreshed = refresh_peers(&self.conn, ctx.now().timestamp())
            .await
            .map_err(JobError::failed)?;
        Ok(JobOutput::processed(refreshed))
    }
}

/// Stand-in for the host's existing peer discovery code.
async fn refresh_peers(conn: &DatabaseConnection, now: i64) -> Result<u64, DbErr> {
    let done = conn
        .execute(
            Query::update()
                .table("peers")
                .value("refreshed_at", now)
                .and_where(Expr::col("refreshed_at").lt(now - 86_400)),
        )
        .await?;
    Ok(done.rows_affected())
}

// --- Step 2: configuration. ---

/// The host's settings file, with the job settings in sections of their own.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Settings {
    scheduler: SchedulerConfig,
    cleanup: BuiltinConfig,
}

const SETTINGS: &str = r#"
[scheduler.jobs.cleanup_expired_challenges]
schedule = "0 */2 * * * *"

[scheduler.jobs.refresh_peer_discovery]
time_zone = "Europe/Zurich"
timeout_secs = 600

[scheduler.retention]
keep_days = 90

[cleanup.device_codes]
table = "device_code"

# Opt-in: Barycenter's federation_auth_requests (RFC 3339 text), with a margin.
[cleanup.federation_requests]
keep_if_younger_secs = 60
"#;

fn epoch_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// `epoch` as RFC 3339 text in UTC, as Barycenter writes `expires_at` of its federation
/// requests.
fn rfc3339(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .expect("in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn create_host_tables(conn: &DatabaseConnection, now: i64) {
    // (table, key, expires_at as text?)
    for (table, key, text) in [
        ("device_code", "device_code", false),
        ("federation_auth_requests", "id", true),
        ("invitations", "id", true),
    ] {
        let expires = ColumnDef::new("expires_at").not_null().to_owned();
        let expires = if text {
            expires.clone().text().to_owned()
        } else {
            expires.clone().big_integer().to_owned()
        };
        conn.execute(
            Table::create()
                .table(table)
                .col(ColumnDef::new(key).string().not_null().primary_key())
                .col(expires),
        )
        .await
        .expect("create table");
        let at = |epoch: i64| -> sea_orm::sea_query::Expr {
            if text {
                rfc3339(epoch).into()
            } else {
                epoch.into()
            }
        };
        conn.execute(
            Query::insert()
                .into_table(table)
                .columns([key, "expires_at"])
                .values_panic(["expired".into(), at(now - 3_600)])
                // Expired 10 s ago: inside the federation cleanup's 60 s margin, kept there.
                .values_panic(["just-expired".into(), at(now - 10)])
                .values_panic(["live".into(), at(now + 3_600)]),
        )
        .await
        .expect("insert rows");
    }
    conn.execute(
        Table::create()
            .table("peers")
            .col(ColumnDef::new("issuer").string().not_null().primary_key())
            .col(ColumnDef::new("refreshed_at").big_integer().not_null()),
    )
    .await
    .expect("create peers");
    conn.execute(
        Query::insert()
            .into_table("peers")
            .columns(["issuer", "refreshed_at"])
            .values_panic(["https://a.example".into(), (now - 2 * 86_400).into()])
            .values_panic(["https://b.example".into(), now.into()]),
    )
    .await
    .expect("insert peers");
}

async fn keys(conn: &DatabaseConnection, table: &str, key: &str) -> Vec<String> {
    conn.query_all(
        Query::select()
            .column(Alias::new(key))
            .from(Alias::new(table))
            .order_by(Alias::new(key), Order::Asc),
    )
    .await
    .expect("select")
    .iter()
    .map(|row| row.try_get::<String>("", key).unwrap())
    .collect()
}

async fn post_graphql(app: &Router, path: &str, token: Option<&str>, query: &str) -> (u16, String) {
    let mut request = http::Request::post(path).header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = serde_json_body(query);
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

fn serde_json_body(query: &str) -> String {
    format!(
        r#"{{"query":"{}"}}"#,
        query.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

async fn guide_end_to_end(t: &TestDb) {
    let backend = t.backend();
    // Step 5: room in SeaORM's pool for the scheduler, and WAL on SQLite.
    let mut options = sea_orm::ConnectOptions::new(t.url.as_str());
    options
        .max_connections(16)
        .map_sqlx_sqlite_opts(|o| o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal));
    let conn = sea_orm::Database::connect(options)
        .await
        .expect("SeaORM connects");
    if backend == Backend::Sqlite {
        let mode = conn
            .query_one_raw(sea_orm::Statement::from_string(
                conn.get_database_backend(),
                "PRAGMA journal_mode",
            ))
            .await
            .expect("journal mode")
            .expect("a row");
        assert_eq!(mode.try_get_by_index::<String>(0).unwrap(), "wal");
    }
    let now = epoch_now();
    create_host_tables(&conn, now).await;

    // Step 2: configuration from the host's TOML.
    let settings: Settings = toml::from_str(SETTINGS).expect("settings parse");

    // Step 5: SeaORM's pool, handed over.
    let db = match conn.get_database_backend() {
        DbBackend::Postgres => Database::from(conn.get_postgres_connection_pool().clone()),
        DbBackend::Sqlite => Database::from(conn.get_sqlite_connection_pool().clone()),
        other => panic!("unsupported database: {other:?}"),
    };
    assert_eq!(db.backend(), backend);

    // Step 3: the registry: built-ins (configured), inventory plugins (configured), and the
    // job with host state.
    let registry = barycenter_jobs::builtin::configure(
        Registry::builder().with_inventory(),
        &settings.cleanup,
    )
    .expect("builtin configuration")
    .register(RefreshPeers { conn: conn.clone() })
    .build()
    .expect("registry");
    let mut names: Vec<&str> = registry.names().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "cleanup_expired_challenges",
            "cleanup_expired_device_codes",
            "cleanup_expired_federation_requests",
            "cleanup_expired_invitations",
            "cleanup_expired_refresh_tokens",
            "cleanup_expired_sessions",
            "refresh_peer_discovery",
        ]
    );
    // Nothing scheduled may fire during the test: every job stays triggerable by hand.
    let mut config = settings.scheduler;
    for name in &names {
        config.jobs.entry((*name).to_owned()).or_default().enabled = Some(false);
    }
    let scheduler = Scheduler::builder(registry, db)
        .config(config)
        .start()
        .await
        .expect("scheduler starts");

    let challenges = scheduler.job("cleanup_expired_challenges").unwrap();
    assert_eq!(challenges.schedule.expression(), "0 */2 * * * *");
    let peers = scheduler.job("refresh_peer_discovery").unwrap();
    assert_eq!(peers.schedule.expression(), "0 0 3 * * *");
    assert_eq!(peers.timeout, Duration::from_secs(600));
    assert_eq!(
        peers.schedule.time_zone().map(|z| z.name().to_owned()),
        Some("Europe/Zurich".to_owned())
    );

    for (job, processed) in [
        // The old table name, from [cleanup.device_codes]: both expired rows go.
        ("cleanup_expired_device_codes", 2),
        // RFC 3339 text; the 60 s margin of [cleanup.federation_requests] keeps the row
        // that expired 10 s ago.
        ("cleanup_expired_federation_requests", 1),
        // The host's own text column: both expired rows go.
        ("cleanup_expired_invitations", 2),
        ("refresh_peer_discovery", 1),
    ] {
        let run = scheduler.trigger(job).await.expect("trigger");
        let execution = run.wait().await.expect("run finishes");
        assert_eq!(
            execution.status,
            ExecutionStatus::Succeeded,
            "{job}: {:?}",
            execution.error_message
        );
        assert_eq!(execution.records_processed, Some(processed), "{job}");
    }
    assert_eq!(keys(&conn, "device_code", "device_code").await, ["live"]);
    assert_eq!(
        keys(&conn, "federation_auth_requests", "id").await,
        ["just-expired", "live"]
    );
    assert_eq!(keys(&conn, "invitations", "id").await, ["live"]);
    let stale_peers = conn
        .query_all(
            Query::select()
                .column("issuer")
                .from("peers")
                .and_where(Expr::col("refreshed_at").lt(now - 86_400)),
        )
        .await
        .expect("select peers");
    assert!(stale_peers.is_empty());

    // Step 6: the admin service beside the host's own GraphQL endpoint.
    let admin = AdminService::builder(scheduler.clone())
        .bearer_token("s3cret")
        .build();
    let app = Router::new()
        .route("/graphql", post(|| async { "the host's own schema" }))
        .nest_service("/admin/jobs", admin);

    let (status, body) = post_graphql(
        &app,
        "/admin/jobs",
        Some("s3cret"),
        "{ availableJobs { name schedule } }",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#""name":"refresh_peer_discovery","schedule":"0 0 3 * * *""#),
        "{body}"
    );
    assert!(
        body.contains("cleanup_expired_federation_requests"),
        "{body}"
    );
    let (status, _) = post_graphql(&app, "/admin/jobs", None, "{ availableJobs { name } }").await;
    assert_eq!(status, 401);
    let (status, body) = post_graphql(&app, "/graphql", None, "{ me { id } }").await;
    assert_eq!((status, body.as_str()), (200, "the host's own schema"));

    scheduler
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shutdown");
}

backend_tests!([sqlite, postgres] guide_end_to_end);
