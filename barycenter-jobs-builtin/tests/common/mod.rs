//! Helpers shared by the builtin crate's tests: Barycenter's DDL per backend, inserts (one row
//! of each of its four tables, many expired sessions), batching settings, a job context with a
//! stopped clock, and one manual run through a scheduler.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use barycenter_jobs_builtin::Batching;
use barycenter_jobs_core::sea_query::{Alias, Expr, Order, Query, Value};
use barycenter_jobs_core::{
    Backend, CancellationToken, Database, Execution, Job, JobConfig, JobContext, ManualClock,
    Registry, Scheduler, SchedulerConfig, SharedClock, Trigger,
};
use barycenter_jobs_test_support::{TestDb, run_now};
use chrono::{DateTime, TimeZone, Utc};

/// The instant the tests' clock is stopped at.
pub const NOW: i64 = 1_790_000_000;

pub fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(NOW, 0).unwrap()
}

pub fn ctx(db: &Database) -> JobContext {
    ctx_with(db, CancellationToken::new())
}

pub fn ctx_with(db: &Database, cancel: CancellationToken) -> JobContext {
    JobContext::new(
        db.clone(),
        Trigger::Manual,
        0,
        Arc::new(ManualClock::new(now())) as SharedClock,
        cancel,
    )
}

pub use barycenter_jobs_test_support::raw;

/// Barycenter's four tables (SQLite DDL as Barycenter writes it; VARCHAR keys on MySQL and
/// BIGINT times elsewhere), with the indexes a host is advised to create.
pub async fn create_barycenter_tables(t: &TestDb) {
    let (key, time) = match t.backend() {
        Backend::Sqlite => ("TEXT", "INTEGER"),
        Backend::Postgres => ("TEXT", "BIGINT"),
        _ => ("VARCHAR(255)", "BIGINT"),
    };
    let ddl = format!(
        "CREATE TABLE sessions (
            session_id {key} PRIMARY KEY,
            subject TEXT NOT NULL,
            auth_time {time},
            amr TEXT,
            created_at {time} NOT NULL,
            expires_at {time} NOT NULL,
            user_agent TEXT
        );
        CREATE INDEX idx_sessions_expires ON sessions(expires_at);
        CREATE TABLE refresh_tokens (
            token {key} PRIMARY KEY,
            client_id TEXT,
            subject TEXT,
            created_at {time} NOT NULL,
            expires_at {time} NOT NULL,
            revoked INTEGER NOT NULL DEFAULT 0,
            parent_token {key}
        );
        CREATE INDEX idx_refresh_tokens_expires ON refresh_tokens(expires_at);
        CREATE TABLE webauthn_challenges (
            challenge {key} PRIMARY KEY,
            challenge_type TEXT,
            created_at {time} NOT NULL,
            expires_at {time} NOT NULL
        );
        CREATE TABLE device_codes (
            device_code {key} PRIMARY KEY,
            user_code TEXT,
            client_id TEXT,
            created_at {time} NOT NULL,
            expires_at {time} NOT NULL
        );"
    );
    raw(&t.db, &ddl).await;
}

/// Insert one row of `table`: `(column, value)` pairs.
pub async fn insert(db: &Database, table: &str, row: Vec<(&str, Value)>) {
    let mut stmt = Query::insert();
    stmt.into_table(Alias::new(table))
        .columns(row.iter().map(|(c, _)| Alias::new(*c)))
        .values_panic(row.into_iter().map(|(_, v)| Expr::val(v)));
    db.execute(&stmt).await.unwrap();
}

/// Insert one row of `sessions` (subject `alice`).
pub async fn insert_session(db: &Database, id: &str, created_at: i64, expires_at: i64) {
    insert(
        db,
        "sessions",
        vec![
            ("session_id", s(id)),
            ("subject", s("alice")),
            ("created_at", i(created_at)),
            ("expires_at", i(expires_at)),
        ],
    )
    .await;
}

/// Insert one row of `device_codes` (user code `ABCD-EFGH`, client `tv`).
pub async fn insert_device_code(db: &Database, id: &str, created_at: i64, expires_at: i64) {
    insert(
        db,
        "device_codes",
        vec![
            ("device_code", s(id)),
            ("user_code", s("ABCD-EFGH")),
            ("client_id", s("tv")),
            ("created_at", i(created_at)),
            ("expires_at", i(expires_at)),
        ],
    )
    .await;
}

/// One row of `refresh_tokens` (client `app`, subject `alice`), for [`insert`].
pub fn token_row(
    id: &str,
    created_at: i64,
    expires_at: i64,
    revoked: i64,
    parent: Option<&str>,
) -> Vec<(&'static str, Value)> {
    vec![
        ("token", s(id)),
        ("client_id", s("app")),
        ("subject", s("alice")),
        ("created_at", i(created_at)),
        ("expires_at", i(expires_at)),
        ("revoked", i(revoked)),
        ("parent_token", parent.map(s).unwrap_or_else(null_str)),
    ]
}

/// Insert one row of `refresh_tokens` (see [`token_row`]).
pub async fn insert_token(
    db: &Database,
    id: &str,
    created_at: i64,
    expires_at: i64,
    revoked: i64,
    parent: Option<&str>,
) {
    let row = token_row(id, created_at, expires_at, revoked, parent);
    insert(db, "refresh_tokens", row).await;
}

/// Insert one row of `webauthn_challenges` (an authentication challenge).
pub async fn insert_challenge(db: &Database, id: &str, created_at: i64, expires_at: i64) {
    insert(
        db,
        "webauthn_challenges",
        vec![
            ("challenge", s(id)),
            ("challenge_type", s("authentication")),
            ("created_at", i(created_at)),
            ("expires_at", i(expires_at)),
        ],
    )
    .await;
}

/// Insert `rows` sessions `s00000`, `s00001`, ..., all expired: the n-th `n + 1` s before
/// [`NOW`].
pub async fn insert_expired_sessions(db: &Database, rows: usize) {
    let rows = (0..rows)
        .map(|n| {
            vec![
                s(&format!("s{n:05}")),
                s("bob"),
                i(0),
                i(NOW - 1 - n as i64),
            ]
        })
        .collect();
    insert_many(
        db,
        "sessions",
        &["session_id", "subject", "created_at", "expires_at"],
        rows,
    )
    .await;
}

/// Batches of exactly `size` rows, with `pause_ms` between two statements.
pub fn fixed_batches(size: u64, pause_ms: u64) -> Batching {
    let mut b = Batching::default();
    b.initial_batch_size = size;
    b.min_batch_size = size;
    b.max_batch_size = size;
    b.pause_ms = pause_ms;
    b
}

/// One manual run of `job`, registered alone, by a scheduler with `config` and `clock`; the
/// job's own settings are `job_config` with the job disabled, so only the manual trigger runs
/// it, whatever the time of day. The recorded execution, once the scheduler is shut down.
pub async fn run_by_scheduler(
    db: &Database,
    job: impl Job,
    job_config: JobConfig,
    config: SchedulerConfig,
    clock: SharedClock,
) -> Execution {
    let name = job.name().to_owned();
    let registry = Registry::builder().register(job).build().unwrap();
    let config = config.job(
        name.clone(),
        JobConfig {
            enabled: Some(false),
            ..job_config
        },
    );
    let handle = Scheduler::builder(registry, db.clone())
        .config(config)
        .clock(clock)
        .start()
        .await
        .unwrap();
    let execution = run_now(&handle, &name).await;
    handle.shutdown(Duration::from_secs(10)).await.unwrap();
    execution
}

/// Insert many rows of `table` in one statement each `chunk` rows.
pub async fn insert_many(db: &Database, table: &str, columns: &[&str], rows: Vec<Vec<Value>>) {
    for chunk in rows.chunks(500) {
        let mut stmt = Query::insert();
        stmt.into_table(Alias::new(table))
            .columns(columns.iter().map(|c| Alias::new(*c)));
        for row in chunk {
            stmt.values_panic(row.iter().cloned().map(Expr::val));
        }
        db.execute(&stmt).await.unwrap();
    }
}

/// The keys left in `table`.
pub async fn keys(db: &Database, table: &str, key: &str) -> BTreeSet<String> {
    let stmt = Query::select()
        .column(Alias::new(key))
        .from(Alias::new(table))
        .order_by(Alias::new(key), Order::Asc)
        .to_owned();
    db.fetch_all(&stmt)
        .await
        .unwrap()
        .iter()
        .map(|r| r.opt_string(key).unwrap().unwrap())
        .collect()
}

pub fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

pub fn s(v: &str) -> Value {
    v.into()
}

pub fn i(v: i64) -> Value {
    v.into()
}

pub fn null_i64() -> Value {
    Value::BigInt(None)
}

pub fn null_str() -> Value {
    Value::String(None)
}
