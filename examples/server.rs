//! The embedded server: the four built-in cleanups on a database, with the admin API.
//!
//! ```text
//! cargo run --example server [-- --database-url URL] [--listen ADDR] [--config FILE] [--no-seed]
//! ```
//!
//! With no arguments it opens (creating it if needed) `barycenter-jobs.db` in the current
//! directory, creates the four host tables in Barycenter's layout if they are missing, adds a
//! handful of expired and live demo rows to tables it just created, runs the scheduler, and
//! serves the admin API on `http://127.0.0.1:8081/admin/jobs` (GraphiQL on
//! `/admin/jobs/playground`).
//!
//! Pointed at an existing Barycenter database it changes nothing but the job tables (upgraded
//! in place) and the rows the jobs delete: host tables that exist are left alone and demo rows
//! only go into tables it created itself.
//!
//! `BARYCENTER_JOBS_ADMIN_TOKEN`, when set, makes every admin request need
//! `Authorization: Bearer TOKEN`. SIGINT or SIGTERM shut down gracefully (exit status 0).
//!
//! The `--config` file is TOML:
//!
//! ```toml
//! default_timeout_secs = 3600          # jobs without their own timeout
//!
//! [jobs.cleanup_expired_sessions]      # per job: schedule, time_zone, enabled, timeout_secs, misfire
//! schedule = "0 */10 * * * *"
//! timeout_secs = 600
//!
//! [jobs.cleanup_expired_device_codes]
//! enabled = false                      # not scheduled; can still be triggered
//!
//! [retention]                          # execution history
//! keep_days = 30                       # omit the key to keep everything
//!
//! [coordination]                       # replicas sharing one database
//! enabled = true
//! lease_ttl_secs = 30
//!
//! [tables]
//! executions = "job_executions"
//! leases = "job_leases"
//!
//! [builtin.batch]                      # the cleanups' batched deletes
//! target_statement_ms = 15          # default: 10 on SQLite, 20 elsewhere
//!
//! [builtin.refresh_tokens]
//! rotation_grace_period_secs = 1800
//!
//! [builtin.sessions]                   # other table / column names, time formats
//! table = "sessions"
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use barycenter_jobs::builtin::BuiltinConfig;
use barycenter_jobs::graphql::AdminService;
use barycenter_jobs::sea_query::{ColumnDef, Expr, ExprTrait, Index, Query, Table};
use barycenter_jobs::{
    CoordinationConfig, Database, JobConfig, Registry, RetentionConfig, Scheduler, SchedulerConfig,
    TableNames,
};
use chrono::Utc;
use serde::Deserialize;

const USAGE: &str =
    "usage: server [--database-url URL] [--listen ADDR] [--config FILE] [--no-seed]";

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    jobs: BTreeMap<String, JobConfig>,
    default_timeout_secs: Option<u64>,
    retention: Option<RetentionConfig>,
    coordination: Option<CoordinationConfig>,
    tables: Option<TableNames>,
    builtin: BuiltinConfig,
}

struct Args {
    database_url: String,
    listen: String,
    config: Option<String>,
    seed: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        database_url: "sqlite://barycenter-jobs.db".into(),
        listen: "127.0.0.1:8081".into(),
        config: None,
        seed: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--database-url" => args.database_url = value("--database-url")?,
            "--listen" => args.listen = value("--listen")?,
            "--config" => args.config = Some(value("--config")?),
            "--no-seed" => args.seed = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

#[path = "common/mod.rs"]
mod common;

#[tokio::main]
async fn main() {
    common::init_tracing();
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let file: FileConfig = match &args.config {
        Some(path) => {
            toml::from_str(&std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?)
                .map_err(|e| format!("{path}: {e}"))?
        }
        None => FileConfig::default(),
    };
    let defaults = SchedulerConfig::default();
    let config = SchedulerConfig {
        jobs: file.jobs,
        default_timeout_secs: file
            .default_timeout_secs
            .unwrap_or(defaults.default_timeout_secs),
        retention: file.retention.unwrap_or(defaults.retention),
        coordination: file.coordination.unwrap_or(defaults.coordination),
        tables: file.tables.unwrap_or(defaults.tables),
        ..defaults
    };

    let db = Database::connect(&args.database_url).await?;
    if args.seed {
        seed_demo_data(&db).await?;
    }

    let registry =
        barycenter_jobs::builtin::configure(Registry::builder().with_inventory(), &file.builtin)?
            .build()?;
    let scheduler = Scheduler::builder(registry, db)
        .config(config)
        .start()
        .await?;

    let mut admin = AdminService::builder(scheduler.clone());
    if let Ok(token) = std::env::var("BARYCENTER_JOBS_ADMIN_TOKEN")
        && !token.is_empty()
    {
        admin = admin.bearer_token(token);
    }
    let admin = admin.build();
    let app = axum::Router::new().nest_service("/admin/jobs", admin);

    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let addr: SocketAddr = listener.local_addr()?;
    println!("admin API:  http://{addr}/admin/jobs");
    println!("GraphiQL:   http://{addr}/admin/jobs/playground");
    println!(
        "try:        curl -s -X POST http://{addr}/admin/jobs -H 'Content-Type: application/json' -d '{{\"query\": \"{{ availableJobs {{ name description schedule }} }}\"}}'"
    );

    axum::serve(listener, app)
        .with_graceful_shutdown(common::shutdown_signal())
        .await?;
    println!("shutting down: waiting for running jobs");
    scheduler.shutdown(Duration::from_secs(30)).await?;
    println!("stopped");
    Ok(())
}

/// Create the four host tables in Barycenter's layout where missing, and put demo rows into
/// the ones created now (never into existing tables).
async fn seed_demo_data(db: &Database) -> Result<(), Box<dyn std::error::Error>> {
    let now = Utc::now().timestamp();
    let (hour, day) = (3600, 86_400);
    let key = |name: &'static str| {
        ColumnDef::new(name)
            .string_len(255)
            .not_null()
            .primary_key()
            .to_owned()
    };
    let text = |name: &'static str| ColumnDef::new(name).string_len(255).null().to_owned();
    let time = |name: &'static str| ColumnDef::new(name).big_integer().not_null().to_owned();

    let tables: [DemoTable; 4] = [
        (
            "sessions",
            vec![
                key("session_id"),
                text("subject"),
                time("auth_time"),
                time("created_at"),
                time("expires_at"),
            ],
            vec!["expires_at"],
            vec![
                row(&[
                    ("session_id", "demo-session-expired-1".into()),
                    ("subject", "alice".into()),
                    ("auth_time", (now - 2 * day).into()),
                    ("created_at", (now - 2 * day).into()),
                    ("expires_at", (now - day).into()),
                ]),
                row(&[
                    ("session_id", "demo-session-expired-2".into()),
                    ("subject", "bob".into()),
                    ("auth_time", (now - 3 * hour).into()),
                    ("created_at", (now - 3 * hour).into()),
                    ("expires_at", (now - hour).into()),
                ]),
                row(&[
                    ("session_id", "demo-session-live".into()),
                    ("subject", "alice".into()),
                    ("auth_time", now.into()),
                    ("created_at", now.into()),
                    ("expires_at", (now + day).into()),
                ]),
            ],
        ),
        (
            "refresh_tokens",
            vec![
                key("token"),
                text("client_id"),
                text("subject"),
                time("created_at"),
                time("expires_at"),
                ColumnDef::new("revoked")
                    .integer()
                    .not_null()
                    .default(0)
                    .to_owned(),
                text("parent_token"),
            ],
            vec!["expires_at", "parent_token"],
            vec![
                row(&[
                    ("token", "demo-rt-expired".into()),
                    ("client_id", "demo-app".into()),
                    ("subject", "alice".into()),
                    ("created_at", (now - 40 * day).into()),
                    ("expires_at", (now - 10 * day).into()),
                    ("revoked", 0.into()),
                ]),
                row(&[
                    ("token", "demo-rt-rotated".into()),
                    ("client_id", "demo-app".into()),
                    ("subject", "bob".into()),
                    ("created_at", (now - 2 * day).into()),
                    ("expires_at", (now + 28 * day).into()),
                    ("revoked", 1.into()),
                ]),
                row(&[
                    ("token", "demo-rt-current".into()),
                    ("client_id", "demo-app".into()),
                    ("subject", "bob".into()),
                    ("created_at", (now - day).into()),
                    ("expires_at", (now + 29 * day).into()),
                    ("revoked", 0.into()),
                    ("parent_token", "demo-rt-rotated".into()),
                ]),
            ],
        ),
        (
            "webauthn_challenges",
            vec![
                key("challenge"),
                text("user_id"),
                text("challenge_type"),
                time("created_at"),
                time("expires_at"),
            ],
            vec!["created_at", "expires_at"],
            vec![
                row(&[
                    ("challenge", "demo-challenge-stale".into()),
                    ("user_id", "alice".into()),
                    ("challenge_type", "authentication".into()),
                    ("created_at", (now - hour).into()),
                    ("expires_at", (now - hour + 300).into()),
                ]),
                row(&[
                    ("challenge", "demo-challenge-fresh".into()),
                    ("user_id", "bob".into()),
                    ("challenge_type", "registration".into()),
                    ("created_at", now.into()),
                    ("expires_at", (now + 300).into()),
                ]),
            ],
        ),
        (
            "device_codes",
            vec![
                key("device_code"),
                text("user_code"),
                text("client_id"),
                time("created_at"),
                time("expires_at"),
            ],
            vec!["expires_at"],
            vec![
                row(&[
                    ("device_code", "demo-device-expired".into()),
                    ("user_code", "WDJB-MJHT".into()),
                    ("client_id", "demo-tv".into()),
                    ("created_at", (now - hour).into()),
                    ("expires_at", (now - hour + 600).into()),
                ]),
                row(&[
                    ("device_code", "demo-device-live".into()),
                    ("user_code", "KXQP-RTNV".into()),
                    ("client_id", "demo-tv".into()),
                    ("created_at", now.into()),
                    ("expires_at", (now + 600).into()),
                ]),
            ],
        ),
    ];

    for (table, columns, indexed, rows) in tables {
        if table_exists(db, table).await {
            continue;
        }
        let mut create = Table::create();
        create.table(table).if_not_exists();
        for mut c in columns {
            create.col(&mut c);
        }
        db.execute_schema(&create).await?;
        for col in indexed {
            db.execute_schema(
                Index::create()
                    .name(format!("idx_{table}_{col}"))
                    .table(table)
                    .col(col),
            )
            .await?;
        }
        for r in rows {
            let (cols, vals): (Vec<_>, Vec<_>) = r.into_iter().unzip();
            db.execute(
                Query::insert()
                    .into_table(table)
                    .columns(cols)
                    .values_panic(vals.into_iter().map(Expr::val)),
            )
            .await?;
        }
        println!("created demo table {table}");
    }
    Ok(())
}

/// A demo table: name, columns, indexed columns, rows.
type DemoTable = (&'static str, Vec<ColumnDef>, Vec<&'static str>, Vec<Row>);
/// A demo row: (column, value) pairs.
type Row = Vec<(&'static str, barycenter_jobs::sea_query::Value)>;

fn row(cells: &[(&'static str, barycenter_jobs::sea_query::Value)]) -> Row {
    cells.to_vec()
}

async fn table_exists(db: &Database, table: &'static str) -> bool {
    db.fetch_all(
        Query::select()
            .expr(Expr::val(1))
            .from(table)
            .and_where(Expr::val(1).eq(0)),
    )
    .await
    .is_ok()
}
