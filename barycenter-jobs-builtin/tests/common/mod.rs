//! Helpers shared by the builtin crate's tests: Barycenter's DDL per backend, inserts, and a
//! job context with a stopped clock.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::Arc;

use barycenter_jobs_core::sea_query::{Alias, Expr, Order, Query, Value};
use barycenter_jobs_core::{
    Backend, CancellationToken, Database, JobContext, ManualClock, SharedClock, Trigger,
};
use barycenter_jobs_test_support::TestDb;
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
