//! The four Barycenter tables the built-in cleanups clean — `sessions`, `refresh_tokens`,
//! `webauthn_challenges`, `device_codes` — as sea-query statements, one definition for every
//! bench (`cleanup`, `refresh_tokens`, `scheduler`).
//!
//! The layout is Barycenter's (as its SeaORM migrations create it): text keys, epoch-second
//! `BIGINT` times. Each table has the columns the benches
//! write or the cleanups read, not every column Barycenter has; the indexes are created by the
//! benches that fill the tables, after the rows (cheaper than keeping them up to date).

use barycenter_jobs_core::sea_query::{
    ColumnDef, Expr, Iden, IntoIden, Query, Table, TableCreateStatement,
};

/// Barycenter's `sessions` table.
#[derive(Iden, Clone, Copy)]
pub enum Sessions {
    /// The table.
    Table,
    /// Primary key.
    SessionId,
    /// The user.
    Subject,
    /// When the user authenticated (epoch seconds).
    AuthTime,
    /// When the session was created (epoch seconds).
    CreatedAt,
    /// When it expires (epoch seconds); what the cleanup looks at.
    ExpiresAt,
    /// Authentication methods (JSON array).
    Amr,
    /// Authentication context class.
    Acr,
    /// Whether a second factor was verified (0 or 1, default 0).
    MfaVerified,
}

/// Barycenter's `refresh_tokens` table.
#[derive(Iden, Clone, Copy)]
pub enum RefreshTokens {
    /// The table.
    Table,
    /// Primary key.
    Token,
    /// The client the token was issued to.
    ClientId,
    /// The user.
    Subject,
    /// Granted scopes.
    Scope,
    /// When the token was issued (epoch seconds).
    CreatedAt,
    /// When it expires (epoch seconds).
    ExpiresAt,
    /// Whether it was revoked (0 or 1, default 0).
    Revoked,
    /// The token this one replaced when it was rotated (NULL for the first of a chain).
    ParentToken,
}

/// Barycenter's `webauthn_challenges` table.
#[derive(Iden, Clone, Copy)]
pub enum WebauthnChallenges {
    /// The table.
    Table,
    /// Primary key.
    Challenge,
    /// The user, when known.
    Subject,
    /// Registration or authentication.
    ChallengeType,
    /// When the challenge was issued (epoch seconds).
    CreatedAt,
    /// When it expires (epoch seconds).
    ExpiresAt,
    /// The WebAuthn options sent (JSON).
    OptionsJson,
}

/// Barycenter's `device_codes` table.
#[derive(Iden, Clone, Copy)]
pub enum DeviceCodes {
    /// The table.
    Table,
    /// Primary key.
    DeviceCode,
    /// The code the user types.
    UserCode,
    /// The client that asked for it.
    ClientId,
    /// Requested scopes.
    Scope,
    /// When the code was issued (epoch seconds).
    CreatedAt,
    /// When it expires (epoch seconds).
    ExpiresAt,
}

/// `CREATE TABLE sessions`.
pub fn sessions() -> TableCreateStatement {
    use Sessions as S;
    let mut t = table(S::Table, S::SessionId);
    add(&mut t, text, [S::Subject]);
    add(&mut t, optional_time, [S::AuthTime]);
    add(&mut t, time, [S::CreatedAt, S::ExpiresAt]);
    add(&mut t, optional_text, [S::Amr, S::Acr]);
    add(&mut t, flag, [S::MfaVerified]);
    t
}

/// `CREATE TABLE refresh_tokens`.
pub fn refresh_tokens() -> TableCreateStatement {
    use RefreshTokens as R;
    let mut t = table(R::Table, R::Token);
    add(&mut t, text, [R::ClientId, R::Subject, R::Scope]);
    add(&mut t, time, [R::CreatedAt, R::ExpiresAt]);
    add(&mut t, flag, [R::Revoked]);
    add(&mut t, optional_text, [R::ParentToken]);
    t
}

/// `CREATE TABLE webauthn_challenges`.
pub fn webauthn_challenges() -> TableCreateStatement {
    use WebauthnChallenges as W;
    let mut t = table(W::Table, W::Challenge);
    add(&mut t, optional_text, [W::Subject]);
    add(&mut t, text, [W::ChallengeType]);
    add(&mut t, time, [W::CreatedAt, W::ExpiresAt]);
    add(&mut t, text, [W::OptionsJson]);
    t
}

/// `CREATE TABLE device_codes`.
pub fn device_codes() -> TableCreateStatement {
    use DeviceCodes as D;
    let mut t = table(D::Table, D::DeviceCode);
    add(&mut t, text, [D::UserCode, D::ClientId, D::Scope]);
    add(&mut t, time, [D::CreatedAt, D::ExpiresAt]);
    t
}

/// All four tables, in the order above.
pub fn all() -> [TableCreateStatement; 4] {
    [
        sessions(),
        refresh_tokens(),
        webauthn_challenges(),
        device_codes(),
    ]
}

/// `CREATE TABLE name` with its `TEXT` primary key `key`.
fn table<T: IntoIden>(name: T, key: T) -> TableCreateStatement {
    Table::create()
        .table(name)
        .col(text(key).primary_key())
        .to_owned()
}

/// Append `columns`, each defined by `def`.
fn add<T, const N: usize>(t: &mut TableCreateStatement, def: fn(T) -> ColumnDef, columns: [T; N]) {
    for column in columns {
        t.col(def(column));
    }
}

/// A `TEXT NOT NULL` column.
fn text<T: IntoIden>(name: T) -> ColumnDef {
    optional_text(name).not_null().to_owned()
}

/// A nullable `TEXT` column.
fn optional_text<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).text().to_owned()
}

/// A `BIGINT NOT NULL` column (epoch seconds).
fn time<T: IntoIden>(name: T) -> ColumnDef {
    optional_time(name).not_null().to_owned()
}

/// A nullable `BIGINT` column (epoch seconds).
fn optional_time<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).big_integer().to_owned()
}

/// A `BIGINT NOT NULL DEFAULT 0` column (0 or 1).
fn flag<T: IntoIden>(name: T) -> ColumnDef {
    time(name).default(0).to_owned()
}

/// Insert `rows` into `table`, each row's values in the order of `columns`, `chunk` rows per
/// INSERT (a bench sizes it to keep the bound values within SQLite's limit of 32,766). Rows
/// are taken from the iterator as they are inserted, so a generator sees them in order.
pub async fn fill<T: IntoIden + Copy, const N: usize>(
    db: &barycenter_jobs_core::Database,
    table: T,
    columns: [T; N],
    rows: impl IntoIterator<Item = [Expr; N]>,
    chunk: usize,
) {
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut insert = Query::insert();
        insert.into_table(table).columns(columns);
        for row in rows.by_ref().take(chunk) {
            insert.values_panic(row);
        }
        db.execute(&insert).await.expect("fill");
    }
}

/// Make a filled bench table ready to be copied as a template: index `column` as `index`
/// (the index the cleanup walks), then leave the file or the statistics as a host's would
/// be (SQLite: the WAL checkpointed and truncated; PostgreSQL: vacuumed and analysed), and
/// close the pool, since a PostgreSQL template database must have no connection when it is
/// copied.
pub async fn finish_template(
    db: &barycenter_jobs_core::Database,
    table: impl IntoIden + Clone,
    index: &str,
    column: impl IntoIden,
) {
    use barycenter_jobs_core::sea_query::Index;
    let table = table.into_iden();
    db.execute_schema(Index::create().name(index).table(table.clone()).col(column))
        .await
        .expect("index");
    match db.backend() {
        barycenter_jobs_core::Backend::Sqlite => {
            barycenter_jobs_test_support::raw(db, "PRAGMA wal_checkpoint(TRUNCATE)").await
        }
        _ => {
            let vacuum = format!("VACUUM ANALYZE {table}");
            barycenter_jobs_test_support::raw(db, &vacuum).await
        }
    }
    db.close().await;
}
