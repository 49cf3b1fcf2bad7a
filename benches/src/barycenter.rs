//! The four Barycenter tables the built-in cleanups clean — `sessions`, `refresh_tokens`,
//! `webauthn_challenges`, `device_codes` — as sea-query statements, one definition for every
//! bench (`cleanup`, `refresh_tokens`, `scheduler`).
//!
//! The layout is Barycenter's (as its SeaORM migrations create it): text keys, epoch-second
//! `BIGINT` times. Each table has the columns the benches
//! write or the cleanups read, not every column Barycenter has; the indexes are created by the
//! benches that fill the tables, after the rows (cheaper than keeping them up to date).

use barycenter_jobs_core::sea_query::{ColumnDef, Iden, IntoIden, Table, TableCreateStatement};

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
    Table::create()
        .table(S::Table)
        .col(key(S::SessionId))
        .col(text(S::Subject))
        .col(ColumnDef::new(S::AuthTime).big_integer())
        .col(time(S::CreatedAt))
        .col(time(S::ExpiresAt))
        .col(ColumnDef::new(S::Amr).text())
        .col(ColumnDef::new(S::Acr).text())
        .col(flag(S::MfaVerified))
        .to_owned()
}

/// `CREATE TABLE refresh_tokens`.
pub fn refresh_tokens() -> TableCreateStatement {
    use RefreshTokens as R;
    Table::create()
        .table(R::Table)
        .col(key(R::Token))
        .col(text(R::ClientId))
        .col(text(R::Subject))
        .col(text(R::Scope))
        .col(time(R::CreatedAt))
        .col(time(R::ExpiresAt))
        .col(flag(R::Revoked))
        .col(ColumnDef::new(R::ParentToken).text())
        .to_owned()
}

/// `CREATE TABLE webauthn_challenges`.
pub fn webauthn_challenges() -> TableCreateStatement {
    use WebauthnChallenges as W;
    Table::create()
        .table(W::Table)
        .col(key(W::Challenge))
        .col(ColumnDef::new(W::Subject).text())
        .col(text(W::ChallengeType))
        .col(time(W::CreatedAt))
        .col(time(W::ExpiresAt))
        .col(text(W::OptionsJson))
        .to_owned()
}

/// `CREATE TABLE device_codes`.
pub fn device_codes() -> TableCreateStatement {
    use DeviceCodes as D;
    Table::create()
        .table(D::Table)
        .col(key(D::DeviceCode))
        .col(text(D::UserCode))
        .col(text(D::ClientId))
        .col(text(D::Scope))
        .col(time(D::CreatedAt))
        .col(time(D::ExpiresAt))
        .to_owned()
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

/// A `TEXT` primary key.
fn key(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name)
        .text()
        .not_null()
        .primary_key()
        .to_owned()
}

/// A `TEXT NOT NULL` column.
fn text(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).text().not_null().to_owned()
}

/// A `BIGINT NOT NULL` column (epoch seconds).
fn time(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}

/// A `BIGINT NOT NULL DEFAULT 0` column (0 or 1).
fn flag(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name)
        .big_integer()
        .not_null()
        .default(0)
        .to_owned()
}
