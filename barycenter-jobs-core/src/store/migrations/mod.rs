//! Versioned, idempotent schema migrations.
//!
//! Each step is written so that running it against a database where it already happened (or
//! half happened, or another replica is running it at the same moment) is harmless: tables and
//! indexes are created only if missing, and a column is added only after checking that it is
//! not there. Applied versions are recorded in `barycenter_jobs_migrations`, keyed by the name of
//! the table each one creates or changes, so two differently-named histories can share one
//! database, and a table renamed in the configuration is created under its new name.
//!
//! This module owns the DDL of every table the crate creates, one submodule per target table;
//! the stores that read and write those tables (`lease`, `settings`) take only their names
//! and columns from [`schema`](super::schema), and nothing here calls into them.

mod alerts;
mod audit;
mod executions;
mod fleet;
pub(crate) mod leases;
mod logs;
mod registry;
pub(crate) mod settings;

use chrono::Utc;
use sea_query::{
    ColumnDef, Expr, ExprTrait, Index, IndexCreateStatement, IntoIden, Query, Table,
    TableCreateStatement,
};

use super::TableNames;
use super::schema::Migrations;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::ident::Identifier;

/// The name of the bookkeeping table.
pub const MIGRATIONS_TABLE: &str = "barycenter_jobs_migrations";

/// One migration, run against the table its [`Target`] names.
type Step =
    for<'a> fn(
        &'a Database,
        &'a Identifier,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>>;

/// The table a migration creates or changes: its applied version is recorded under that
/// table's name, so a table renamed in the configuration after the first start (`[tables]
/// settings`, `audit`, `registry`, `leases`, `logs`) is created under its new name on the next
/// start, while the others are not migrated again.
type Target = fn(&TableNames) -> &Identifier;

fn executions_table(t: &TableNames) -> &Identifier {
    &t.executions
}

/// All migrations, in order. Never edit a released one: add a new version.
const MIGRATIONS: &[(i64, &str, Target, Step)] = &[
    (1, "create_job_executions", executions_table, |db, table| {
        Box::pin(executions::create(db, table))
    }),
    (
        2,
        "add_execution_detail_columns",
        executions_table,
        |db, table| Box::pin(executions::add_detail_columns(db, table)),
    ),
    (3, "add_execution_indexes", executions_table, |db, table| {
        Box::pin(executions::add_indexes(db, table))
    }),
    (
        4,
        "create_job_leases",
        |t| &t.leases,
        |db, table| Box::pin(leases::create(db, table)),
    ),
    (
        5,
        "create_job_settings",
        |t| &t.settings,
        |db, table| Box::pin(settings::create(db, table)),
    ),
    (
        6,
        "create_job_audit",
        |t| &t.audit,
        |db, table| Box::pin(audit::create(db, table)),
    ),
    (
        7,
        "add_execution_job_outcome_index",
        executions_table,
        |db, table| Box::pin(executions::add_job_outcome_index(db, table)),
    ),
    (
        8,
        "create_job_registry",
        |t| &t.registry,
        |db, table| Box::pin(registry::create(db, table)),
    ),
    (
        9,
        "add_settings_policy_columns",
        |t| &t.settings,
        |db, table| Box::pin(settings::add_policy_columns(db, table)),
    ),
    (
        10,
        "add_settings_retry_columns",
        |t| &t.settings,
        |db, table| Box::pin(settings::add_retry_columns(db, table)),
    ),
    (
        11,
        "add_lease_retry_columns",
        |t| &t.leases,
        |db, table| Box::pin(leases::add_retry_columns(db, table)),
    ),
    (
        12,
        "add_execution_attempt_column",
        executions_table,
        |db, table| Box::pin(executions::add_attempt_column(db, table)),
    ),
    (
        13,
        "add_settings_overlap_and_backfill_columns",
        |t| &t.settings,
        |db, table| Box::pin(settings::add_overlap_and_backfill_columns(db, table)),
    ),
    (
        14,
        "add_lease_run_control_columns",
        |t| &t.leases,
        |db, table| Box::pin(leases::add_run_control_columns(db, table)),
    ),
    (
        15,
        "create_job_fleet",
        |t| &t.fleet,
        |db, table| Box::pin(fleet::create(db, table)),
    ),
    (
        16,
        "create_job_execution_logs",
        |t| &t.logs,
        |db, table| Box::pin(logs::create(db, table)),
    ),
    (
        17,
        "create_job_alerts",
        |t| &t.alerts,
        |db, table| Box::pin(alerts::create(db, table)),
    ),
];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

/// Every schema version this build knows, in order: what a first migration applies. Not
/// necessarily `1..=latest_version()`: a version given to work that is not in this build is
/// skipped.
pub fn known_versions() -> Vec<i64> {
    MIGRATIONS.iter().map(|m| m.0).collect()
}

/// Versions that belong to the runtime control (settings and audit tables), the only ones a
/// scheduler without history needs; every other version is the history's.
const CONTROL_VERSIONS: &[i64] = &[5, 6, 9, 10, 13];

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
        new_table(&book)
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
        let table = target(tables);
        let scope = table.as_str().to_owned();
        if applied.iter().any(|(s, v)| *s == scope && v == version)
            || (which == Scope::ControlOnly && !CONTROL_VERSIONS.contains(version))
        {
            continue;
        }
        step(db, table).await.map_err(|e| match e {
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

/// `CREATE TABLE IF NOT EXISTS`, tolerating the race PostgreSQL loses when two sessions
/// create the same table at once (a unique violation in its catalog).
/// `CREATE TABLE IF NOT EXISTS name`, to add the columns to.
fn new_table(name: &Identifier) -> TableCreateStatement {
    Table::create()
        .table(name.clone())
        .if_not_exists()
        .to_owned()
}

/// The job-name key of a table keyed by job: 191 characters, the most a MySQL `utf8mb4`
/// primary key may hold.
fn job_name_key(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .string_len(191)
        .not_null()
        .primary_key()
        .to_owned()
}

/// A `BIGINT NOT NULL DEFAULT 0` column: a counter, a token or a time in milliseconds.
fn zero_default(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .big_integer()
        .not_null()
        .default(0)
        .to_owned()
}

/// `CREATE INDEX IF NOT EXISTS {table}{suffix} ON table (cols)`.
fn index_on<C: IntoIden>(
    table: &Identifier,
    suffix: &str,
    cols: impl IntoIterator<Item = C>,
) -> Result<IndexCreateStatement> {
    let mut index = Index::create()
        .name(table.with_suffix(suffix)?.as_str())
        .table(table.clone())
        .if_not_exists()
        .to_owned();
    for col in cols {
        index.col(col);
    }
    Ok(index)
}

/// Create `index`; one that exists already is done. MySQL has no `CREATE INDEX IF NOT
/// EXISTS`, and PostgreSQL can lose a race: only the backend's own "that index exists"
/// means the step is done. Anything else (permission denied, key too long) fails the
/// migration: treating it as done would record the step as applied without its index, for
/// good.
async fn create_index(db: &Database, index: &IndexCreateStatement) -> Result<()> {
    match db.execute_schema(index).await {
        Err(e) if !db.is_duplicate_index(&e) => Err(e),
        _ => Ok(()),
    }
}

/// Add each of `columns` that `table` lacks: a re-run adds nothing, and a replica that adds
/// the same column at the same moment is not an error.
async fn add_columns<C: IntoIden + Copy>(
    db: &Database,
    table: &Identifier,
    columns: impl IntoIterator<Item = (C, ColumnDef)>,
) -> Result<()> {
    for (col, mut def) in columns {
        if column_exists(db, table, col).await {
            continue;
        }
        let alter = Table::alter()
            .table(table.clone())
            .add_column(&mut def)
            .to_owned();
        if let Err(e) = db.execute_schema(&alter).await
            && !column_exists(db, table, col).await
        {
            return Err(e);
        }
    }
    Ok(())
}

async fn column_exists<C: IntoIden>(db: &Database, table: &Identifier, col: C) -> bool {
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

async fn create_table(
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
