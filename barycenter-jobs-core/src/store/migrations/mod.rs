//! Versioned, idempotent schema migrations.
//!
//! Each step is written so that running it against a database where it already happened (or
//! half happened, or another replica is running it at the same moment) is harmless: tables and
//! indexes are created only if missing, and a column is added only after checking that it is
//! not there. Applied versions are recorded in `barycenter_jobs_migrations`, keyed by the name of
//! the table each one creates or changes, so two differently-named histories can share one
//! database, and a table renamed in the configuration is created under its new name.

use chrono::Utc;
use sea_query::{ColumnDef, Expr, ExprTrait, Index, Query, Table};

use super::TableNames;
use super::schema::{Audit, Exec, JobRegistry, Migrations, Settings};
use crate::db::Database;
use crate::error::{Error, Result};
use crate::ident::Identifier;

/// The name of the bookkeeping table.
pub const MIGRATIONS_TABLE: &str = "barycenter_jobs_migrations";

type Step =
    for<'a> fn(
        &'a Database,
        &'a TableNames,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>>;

/// The table a migration creates or changes: its applied version is recorded under that
/// table's name, so a table renamed in the configuration after the first start (`[tables]
/// settings`, `audit`, `registry`, `leases`) is created under its new name on the next
/// start, while the others are not migrated again.
type Target = fn(&TableNames) -> &Identifier;

fn executions(t: &TableNames) -> &Identifier {
    &t.executions
}

/// All migrations, in order. Never edit a released one: add a new version.
const MIGRATIONS: &[(i64, &str, Target, Step)] = &[
    (1, "create_job_executions", executions, |db, t| {
        Box::pin(create_executions(db, t))
    }),
    (2, "add_execution_detail_columns", executions, |db, t| {
        Box::pin(add_detail_columns(db, t))
    }),
    (3, "add_execution_indexes", executions, |db, t| {
        Box::pin(add_indexes(db, t))
    }),
    (
        4,
        "create_job_leases",
        |t| &t.leases,
        |db, t| Box::pin(create_leases(db, t)),
    ),
    (
        5,
        "create_job_settings",
        |t| &t.settings,
        |db, t| Box::pin(create_settings(db, t)),
    ),
    (
        6,
        "create_job_audit",
        |t| &t.audit,
        |db, t| Box::pin(create_audit(db, t)),
    ),
    (7, "add_execution_job_outcome_index", executions, |db, t| {
        Box::pin(add_job_outcome_index(db, t))
    }),
    (
        8,
        "create_job_registry",
        |t| &t.registry,
        |db, t| Box::pin(create_registry(db, t)),
    ),
];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

/// Versions that belong to the runtime control (settings and audit tables), the only ones a
/// scheduler without history needs; every other version is the history's.
const CONTROL_VERSIONS: &[i64] = &[5, 6];

/// Which migrations to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// All of them (the history and what goes with it).
    Everything,
    /// Only the runtime control's tables: a scheduler without history, whose database must
    /// not get a `job_executions` it never writes.
    ControlOnly,
}

pub(crate) async fn run(db: &Database, tables: &TableNames) -> Result<Vec<i64>> {
    run_scope(db, tables, Scope::Everything).await
}

pub(crate) async fn run_scope(
    db: &Database,
    tables: &TableNames,
    which: Scope,
) -> Result<Vec<i64>> {
    let book = Identifier::new(MIGRATIONS_TABLE)?;
    create_table(
        db,
        &book,
        Table::create()
            .table(book.clone())
            .if_not_exists()
            .col(ColumnDef::new(Migrations::Scope).string_len(64).not_null())
            .col(ColumnDef::new(Migrations::Version).big_integer().not_null())
            .col(ColumnDef::new(Migrations::Name).string_len(128).not_null())
            .col(
                ColumnDef::new(Migrations::AppliedAt)
                    .big_integer()
                    .not_null(),
            )
            .primary_key(
                Index::create()
                    .col(Migrations::Scope)
                    .col(Migrations::Version),
            ),
    )
    .await?;

    // (table, version) pairs: a handful of rows per table set.
    let applied: Vec<(String, i64)> = db
        .fetch_all(
            Query::select()
                .columns([Migrations::Scope, Migrations::Version])
                .from(book.clone()),
        )
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.opt_string("scope")?.unwrap_or_default(),
                r.i64("version")?,
            ))
        })
        .collect::<Result<_>>()?;

    let mut ran = Vec::new();
    for (version, name, target, step) in MIGRATIONS {
        let scope = target(tables).as_str().to_owned();
        if applied.iter().any(|(s, v)| *s == scope && v == version)
            || (which == Scope::ControlOnly && !CONTROL_VERSIONS.contains(version))
        {
            continue;
        }
        step(db, tables).await.map_err(|e| match e {
            Error::Database(source) => Error::Migration {
                version: *version,
                name,
                source,
            },
            other => other,
        })?;
        let record = Query::insert()
            .into_table(book.clone())
            .columns([
                Migrations::Scope,
                Migrations::Version,
                Migrations::Name,
                Migrations::AppliedAt,
            ])
            .values_panic([
                scope.clone().into(),
                (*version).into(),
                (*name).into(),
                Utc::now().timestamp().into(),
            ])
            .to_owned();
        // A replica migrating at the same moment may have recorded it first: fine.
        if let Err(e) = db.execute(&record).await
            && !is_recorded(db, &book, &scope, *version).await?
        {
            return Err(e);
        }
        tracing::info!(version, name, table = %scope, "applied migration");
        ran.push(*version);
    }
    Ok(ran)
}

async fn is_recorded(db: &Database, book: &Identifier, scope: &str, version: i64) -> Result<bool> {
    Ok(db
        .fetch_optional(
            Query::select()
                .column(Migrations::Version)
                .from(book.clone())
                .and_where(Expr::col(Migrations::Scope).eq(scope))
                .and_where(Expr::col(Migrations::Version).eq(version)),
        )
        .await?
        .is_some())
}

/// Barycenter's table, exactly: an existing one is left as it is.
async fn create_executions(db: &Database, t: &TableNames) -> Result<()> {
    create_table(
        db,
        &t.executions,
        Table::create()
            .table(t.executions.clone())
            .if_not_exists()
            .col(
                ColumnDef::new(Exec::Id)
                    .big_integer()
                    .not_null()
                    .auto_increment()
                    .primary_key(),
            )
            .col(ColumnDef::new(Exec::JobName).string_len(191).not_null())
            .col(ColumnDef::new(Exec::StartedAt).big_integer().not_null())
            .col(ColumnDef::new(Exec::CompletedAt).big_integer().null())
            .col(ColumnDef::new(Exec::Success).big_integer().null())
            .col(ColumnDef::new(Exec::ErrorMessage).text().null())
            .col(ColumnDef::new(Exec::RecordsProcessed).big_integer().null()),
    )
    .await
}

async fn add_detail_columns(db: &Database, t: &TableNames) -> Result<()> {
    let columns = [
        (
            Exec::Status,
            ColumnDef::new(Exec::Status)
                .string_len(16)
                .null()
                .to_owned(),
        ),
        (
            Exec::TriggerKind,
            ColumnDef::new(Exec::TriggerKind)
                .string_len(16)
                .null()
                .to_owned(),
        ),
        (
            Exec::Instance,
            ColumnDef::new(Exec::Instance)
                .string_len(255)
                .null()
                .to_owned(),
        ),
        (
            Exec::DurationMs,
            ColumnDef::new(Exec::DurationMs)
                .big_integer()
                .null()
                .to_owned(),
        ),
        (
            Exec::ScheduledFor,
            ColumnDef::new(Exec::ScheduledFor)
                .big_integer()
                .null()
                .to_owned(),
        ),
    ];
    for (col, mut def) in columns {
        if column_exists(db, &t.executions, col).await {
            continue;
        }
        let alter = Table::alter()
            .table(t.executions.clone())
            .add_column(&mut def)
            .to_owned();
        if let Err(e) = db.execute_schema(&alter).await {
            // Lost a race with another replica adding the same column?
            if !column_exists(db, &t.executions, col).await {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// `CREATE TABLE IF NOT EXISTS`, tolerating the race PostgreSQL loses when two sessions
/// create the same table at once (a unique violation in its catalog).
pub(crate) async fn create_table(
    db: &Database,
    name: &Identifier,
    stmt: &mut sea_query::TableCreateStatement,
) -> Result<()> {
    match db.execute_schema(stmt).await {
        Err(e) if table_exists(db, name).await => {
            tracing::debug!(table = %name, error = %e, "table created concurrently");
            Ok(())
        }
        other => other,
    }
}

async fn table_exists(db: &Database, table: &Identifier) -> bool {
    db.fetch_all(
        Query::select()
            .expr(Expr::val(1))
            .from(table.clone())
            .and_where(Expr::val(1).eq(0)),
    )
    .await
    .is_ok()
}

async fn column_exists(db: &Database, table: &Identifier, col: Exec) -> bool {
    db.fetch_all(
        Query::select()
            // Qualified, because SQLite reads an unknown bare "column" as a string literal.
            .column((table.clone(), col))
            .from(table.clone())
            .and_where(Expr::val(1).eq(0)),
    )
    .await
    .is_ok()
}

async fn add_indexes(db: &Database, t: &TableNames) -> Result<()> {
    // "latest N of job X": WHERE job_name = ? ORDER BY id DESC
    let by_job = Index::create()
        .name(t.executions.with_suffix("_job_id_idx")?.as_str())
        .table(t.executions.clone())
        .col(Exec::JobName)
        .col(Exec::Id)
        .if_not_exists()
        .to_owned();
    // "latest N failures": WHERE success = 0 ORDER BY id DESC
    let by_outcome = Index::create()
        .name(t.executions.with_suffix("_success_id_idx")?.as_str())
        .table(t.executions.clone())
        .col(Exec::Success)
        .col(Exec::Id)
        .if_not_exists()
        .to_owned();
    // retention: WHERE started_at < ?
    let by_start = Index::create()
        .name(t.executions.with_suffix("_started_idx")?.as_str())
        .table(t.executions.clone())
        .col(Exec::StartedAt)
        .if_not_exists()
        .to_owned();
    for (index, leading) in [
        (by_job, "job_name"),
        (by_outcome, "success"),
        (by_start, "started_at"),
    ] {
        // An index the host already has on the same first column serves the same lookups
        // (Barycenter's `idx_job_executions_started`): reuse it rather than add a second
        // one the host did not ask for. Our own index of that name counts too, so a re-run
        // of this step adds nothing.
        let existing = db
            .fetch_all(&db.backend().indexes_leading_with(&t.executions, leading))
            .await?;
        if !existing.is_empty() {
            tracing::debug!(table = %t.executions, column = leading, "an index on this column exists; not adding another");
            continue;
        }
        if let Err(e) = db.execute_schema(&index).await {
            // MySQL has no CREATE INDEX IF NOT EXISTS: a duplicate name means it is there.
            // MySQL has no CREATE INDEX IF NOT EXISTS, and PostgreSQL can lose a race: only
            // the backend's own "that index exists" means the step is done. Anything else
            // (permission denied, key too long) fails the migration: treating it as done
            // would record the step as applied without its index, for good.
            if !db.is_duplicate_index(&e) {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Version 4 created the lease table with the history; the lease store owns its schema now
/// ([`LeaseStore::migrate`](crate::LeaseStore::migrate)), and this step is the same statement.
async fn create_leases(db: &Database, t: &TableNames) -> Result<()> {
    crate::lease::create_lease_table(db, &t.leases).await
}

/// The runtime-settings table, with its version row (see [`crate::settings`]).
async fn create_settings(db: &Database, t: &TableNames) -> Result<()> {
    create_table(
        db,
        &t.settings,
        Table::create()
            .table(t.settings.clone())
            .if_not_exists()
            .col(
                ColumnDef::new(Settings::JobName)
                    .string_len(191)
                    .not_null()
                    .primary_key(),
            )
            .col(ColumnDef::new(Settings::Paused).big_integer().null())
            .col(ColumnDef::new(Settings::Schedule).string_len(255).null())
            .col(ColumnDef::new(Settings::TimeZone).string_len(64).null())
            .col(ColumnDef::new(Settings::TimeoutSecs).big_integer().null())
            .col(ColumnDef::new(Settings::ChangedBy).string_len(255).null())
            .col(
                ColumnDef::new(Settings::ChangedAtMs)
                    .big_integer()
                    .not_null()
                    .default(0),
            )
            .col(
                ColumnDef::new(Settings::Revision)
                    .big_integer()
                    .not_null()
                    .default(0),
            ),
    )
    .await?;
    crate::settings::ensure_version_row(db, &t.settings).await
}

/// The audit log, with the indexes of its two reads: newest of one job, and retention.
async fn create_audit(db: &Database, t: &TableNames) -> Result<()> {
    create_table(
        db,
        &t.audit,
        Table::create()
            .table(t.audit.clone())
            .if_not_exists()
            .col(
                ColumnDef::new(Audit::Id)
                    .big_integer()
                    .not_null()
                    .auto_increment()
                    .primary_key(),
            )
            .col(ColumnDef::new(Audit::AtMs).big_integer().not_null())
            .col(ColumnDef::new(Audit::Actor).string_len(255).not_null())
            .col(ColumnDef::new(Audit::Action).string_len(32).not_null())
            .col(ColumnDef::new(Audit::JobName).string_len(191).not_null())
            .col(ColumnDef::new(Audit::Detail).text().null()),
    )
    .await?;
    let by_job = Index::create()
        .name(t.audit.with_suffix("_job_id_idx")?.as_str())
        .table(t.audit.clone())
        .col(Audit::JobName)
        .col(Audit::Id)
        .if_not_exists()
        .to_owned();
    let by_time = Index::create()
        .name(t.audit.with_suffix("_at_idx")?.as_str())
        .table(t.audit.clone())
        .col(Audit::AtMs)
        .if_not_exists()
        .to_owned();
    for index in [by_job, by_time] {
        if let Err(e) = db.execute_schema(&index).await
            && !db.is_duplicate_index(&e)
        {
            return Err(e);
        }
    }
    Ok(())
}

/// "Last success / last failure of job X" (health, metrics): `WHERE job_name = ? AND
/// success = ? ORDER BY id DESC LIMIT 1` is one index probe at any history size.
async fn add_job_outcome_index(db: &Database, t: &TableNames) -> Result<()> {
    let index = Index::create()
        .name(t.executions.with_suffix("_job_success_id_idx")?.as_str())
        .table(t.executions.clone())
        .col(Exec::JobName)
        .col(Exec::Success)
        .col(Exec::Id)
        .if_not_exists()
        .to_owned();
    match db.execute_schema(&index).await {
        Err(e) if !db.is_duplicate_index(&e) => Err(e),
        _ => Ok(()),
    }
}

/// When each job was first seen by this database: ticks before that never make it overdue.
async fn create_registry(db: &Database, t: &TableNames) -> Result<()> {
    create_table(
        db,
        &t.registry,
        Table::create()
            .table(t.registry.clone())
            .if_not_exists()
            .col(
                ColumnDef::new(JobRegistry::JobName)
                    .string_len(191)
                    .not_null()
                    .primary_key(),
            )
            .col(
                ColumnDef::new(JobRegistry::FirstSeenAt)
                    .big_integer()
                    .not_null(),
            ),
    )
    .await
}
