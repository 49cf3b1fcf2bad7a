//! `cleanup_expired_refresh_tokens`: delete expired refresh tokens, and rotated ones once
//! their successor is older than a grace period.
//!
//! When a refresh token is used, Barycenter issues a new one whose `parent_token` names the
//! old one, and marks the old one `revoked`. The old token is kept for a grace period (so a
//! client whose response was lost can be recognised, and a replay detected). A revoked token
//! that no token names was revoked for another reason (logout, reuse detection) and is kept
//! until it expires; a token that is not revoked is kept whatever names it.
//!
//! # Rotated tokens and replay detection
//!
//! What happens to a rotated token after the grace period is a trade-off, chosen with
//! [`RefreshTokensConfig::rotated`]:
//!
//! - [`RotatedTokens::AfterGrace`] (the default): it is deleted once its successor is older
//!   than the grace period, which keeps the table small. **This removes the server's ability
//!   to detect a later replay of that token**: refresh-token reuse detection (RFC 9700, the
//!   OAuth 2.0 Security Best Current Practice, section 4.14 on refresh token protection)
//!   relies on the server recognising a presented token as one it already rotated, and then
//!   revoking the whole family, the successor an attacker (or the legitimate client) holds
//!   included. Once the row is gone, a stolen token replayed after the grace period is
//!   merely "unknown": it is refused, but nothing flags the theft or revokes its successors.
//! - [`RotatedTokens::AtExpiry`]: rotated tokens stay until their own `expires_at`, like
//!   every other token, so a replay is recognised for as long as the token could have been
//!   used at all, at the cost of one row per rotation for the token's whole lifetime.
//!
//! Either way a token past its `expires_at` is deleted, rotated or not.

use barycenter_jobs_core::{Backend, Error, Identifier, register_job};
use chrono::{DateTime, Duration, Utc};
use sea_query::{Alias, Cond, Condition, Expr, ExprTrait, Query};
use serde::{Deserialize, Serialize};

use crate::batch::BatchedDelete;
use crate::cleanup::{Cleanup, CleanupKind};
use crate::schema::CheckedColumn;
use crate::table::{ExpiringTable, earlier, expiring_table, seconds};
use crate::time::TimeFormat;

/// How the `revoked` flag is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FlagFormat {
    /// An integer, non-zero when set (Barycenter's `INTEGER NOT NULL DEFAULT 0`; also MySQL's
    /// `BOOLEAN`, which is a `TINYINT`).
    #[default]
    Integer,
    /// A native boolean (PostgreSQL `BOOLEAN`).
    Boolean,
}

/// When rotated refresh tokens are deleted (`rotated` in `[refresh_tokens]`).
///
/// Refresh-token reuse detection (RFC 9700, the OAuth 2.0 Security Best Current Practice,
/// section 4.14) needs the rotated token's row: the server recognises a presented token as one
/// it already rotated and revokes the whole family, successors included. Deleting a rotated
/// token after the grace period ([`AfterGrace`](Self::AfterGrace), the default) **removes the
/// server's ability to detect a later replay of it**: the replayed token is merely unknown,
/// refused, but nothing flags the theft or revokes the successor the thief holds.
/// [`AtExpiry`](Self::AtExpiry) keeps that ability for the token's whole lifetime, at the
/// cost of one row per rotation until then.
///
/// In TOML it is written in snake case:
///
/// ```
/// use barycenter_jobs_builtin::{RefreshTokensConfig, RotatedTokens};
///
/// let config: RefreshTokensConfig = toml::from_str(r#"rotated = "at_expiry""#).unwrap();
/// assert_eq!(config.rotated, RotatedTokens::AtExpiry);
/// assert!(toml::from_str::<RefreshTokensConfig>(r#"rotated = "never""#).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RotatedTokens {
    /// Delete a rotated token once its successor is older than
    /// [`rotation_grace_period_secs`](RefreshTokensConfig::rotation_grace_period_secs). A
    /// replay of it after that can no longer be told from an unknown token.
    #[default]
    AfterGrace,
    /// Keep rotated tokens until their own expiry (no rotation pass), so a replay is detected
    /// for the token's whole lifetime; the table holds one row per rotation meanwhile.
    AtExpiry,
}

/// Where the refresh tokens live, and what happens to rotated ones (`[refresh_tokens]` in
/// [`BuiltinConfig`](crate::BuiltinConfig)). The defaults are Barycenter's schema and
/// behaviour.
///
/// ```
/// use barycenter_jobs_builtin::{RefreshTokensConfig, RotatedTokens};
///
/// let config: RefreshTokensConfig = toml::from_str("rotation_grace_period_secs = 600").unwrap();
/// assert_eq!(config.table, "refresh_tokens");
/// assert_eq!(config.rotation_grace_period_secs, 600);
/// assert_eq!(config.rotated, RotatedTokens::AfterGrace);
/// assert_eq!(config.keep_if_younger_secs, 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RefreshTokensConfig {
    /// Table name (default `refresh_tokens`).
    pub table: String,
    /// Primary key column, the token itself (default `token`).
    pub key_column: String,
    /// Creation time column (default `created_at`).
    pub created_column: String,
    /// Expiry column (default `expires_at`); NULL means "never expires".
    pub expires_column: String,
    /// Revocation flag column (default `revoked`).
    pub revoked_column: String,
    /// How the revocation flag is stored (default integer 0/1).
    pub revoked_format: FlagFormat,
    /// Column naming the token this one replaced (default `parent_token`).
    pub parent_column: String,
    /// How the time columns store instants (default epoch seconds).
    pub time_format: TimeFormat,
    /// A rotated token is deleted once its successor was created more than this many seconds
    /// ago (default 1800, 30 minutes), unless [`rotated`](Self::rotated) is `at_expiry`.
    pub rotation_grace_period_secs: u64,
    /// `after_grace` (default) deletes rotated tokens after the grace period; `at_expiry`
    /// keeps them until their own expiry, so their replay stays detectable.
    pub rotated: RotatedTokens,
    /// Safety margin, in seconds (default 0), taken off "now" for both passes: a token is
    /// deleted once `expires_at < now - margin`, a rotated one once its successor's
    /// `created_at < now - margin - grace period`.
    pub keep_if_younger_secs: u64,
}

impl Default for RefreshTokensConfig {
    fn default() -> Self {
        Self {
            table: "refresh_tokens".into(),
            key_column: "token".into(),
            created_column: "created_at".into(),
            expires_column: "expires_at".into(),
            revoked_column: "revoked".into(),
            revoked_format: FlagFormat::Integer,
            parent_column: "parent_token".into(),
            time_format: TimeFormat::EpochSeconds,
            rotation_grace_period_secs: 30 * 60,
            rotated: RotatedTokens::AfterGrace,
            keep_if_younger_secs: 0,
        }
    }
}

/// The [`CleanupKind`] of [`RefreshTokensCleanup`]: the refresh-token table, validated.
#[derive(Debug, Clone)]
pub struct RefreshTokens {
    table: ExpiringTable,
    created: Identifier,
    revoked: Identifier,
    revoked_format: FlagFormat,
    parent: Identifier,
    grace: Duration,
    rotated: RotatedTokens,
}

/// Deletes refresh tokens with `expires_at < now`, then (unless rotated tokens are kept
/// [until expiry](RotatedTokens::AtExpiry)) rotated tokens: `revoked` is set and another
/// token's `parent_token` names it, with that successor's `created_at` before
/// `now - grace period`. "Now" is the run's cut-off clock
/// ([`JobContext::cutoff_now`](barycenter_jobs_core::JobContext::cutoff_now), the
/// database's by default) minus [`RefreshTokensConfig::keep_if_younger_secs`].
///
/// ```
/// use barycenter_jobs_builtin::{RefreshTokensCleanup, RefreshTokensConfig};
/// use barycenter_jobs_core::Job;
///
/// let job = RefreshTokensCleanup::default();
/// assert_eq!(job.name(), "cleanup_expired_refresh_tokens");
/// assert_eq!(job.schedule(), "0 30 * * * *");
///
/// let mut config = RefreshTokensConfig::default();
/// config.parent_column = "parent token".into();
/// assert!(RefreshTokensCleanup::new(&config).is_err());
/// ```
pub type RefreshTokensCleanup = Cleanup<RefreshTokens>;

impl CleanupKind for RefreshTokens {
    const NAME: &'static str = "cleanup_expired_refresh_tokens";
    const DESCRIPTION: &'static str = "Clean up expired refresh tokens";
    /// Hourly at :30.
    const SCHEDULE: &'static str = "0 30 * * * *";
    type Config = RefreshTokensConfig;

    fn from_config(config: &RefreshTokensConfig) -> Result<Self, Error> {
        Ok(Self {
            table: expiring_table!(config)?,
            created: Identifier::new(config.created_column.as_str())?,
            revoked: Identifier::new(config.revoked_column.as_str())?,
            revoked_format: config.revoked_format,
            parent: Identifier::new(config.parent_column.as_str())?,
            grace: seconds(config.rotation_grace_period_secs),
            rotated: config.rotated,
        })
    }

    fn keep_if_younger(&self) -> Duration {
        self.table.margin
    }

    fn passes(&self, backend: Backend, now: DateTime<Utc>) -> Vec<BatchedDelete> {
        match self.rotated {
            RotatedTokens::AfterGrace => vec![
                self.table.expired(backend, now),
                self.rotated_tokens(backend, now),
            ],
            // Kept for replay detection; the expiry pass takes them in time.
            RotatedTokens::AtExpiry => vec![self.table.expired(backend, now)],
        }
    }

    fn columns(&self) -> Vec<CheckedColumn> {
        let mut columns = self.table.columns();
        if self.rotated == RotatedTokens::AfterGrace {
            let t = &self.table.table;
            columns.push(self.table.time_column(&self.created, "created_column"));
            columns.push(CheckedColumn::new(t, &self.revoked, "revoked_column"));
            columns.push(CheckedColumn::new(t, &self.parent, "parent_column"));
        }
        columns
    }
}

impl RefreshTokens {
    /// Rotated tokens whose successor was created before `now - grace` (`now` with the margin
    /// already taken off).
    fn rotated_tokens(&self, backend: Backend, now: DateTime<Utc>) -> BatchedDelete {
        let t = &self.table.table;
        let key = &self.table.key;
        let child = Alias::new("successor");
        let cutoff = earlier(now, self.grace);
        let successors = Query::select()
            .column((child.clone(), self.parent.clone()))
            .from_as(t.clone(), child.clone())
            .and_where(Expr::col((child.clone(), self.parent.clone())).is_not_null())
            .cond_where(self.table.format.before(
                backend,
                Expr::col((child.clone(), self.created.clone())),
                cutoff,
            ))
            .to_owned();
        let revoked = Expr::col((t.clone(), self.revoked.clone()));
        let revoked = match self.revoked_format {
            FlagFormat::Integer => revoked.ne(0),
            FlagFormat::Boolean => revoked.eq(true),
        };
        let filter: Condition = Cond::all()
            .add(revoked.clone())
            .add(Expr::col((t.clone(), key.clone())).in_subquery(successors));
        // The subquery reads the whole table (there is no index on the parent column), so it
        // is evaluated once, by a read that finds the tokens, and the batches delete those by
        // key, re-checking the revoked flag; a subquery in every batch (or every heap range on
        // PostgreSQL) would read the whole table again each time. Judged once, a chain
        // a -> b -> c also loses a and b in the same run, as one plain DELETE would: b going
        // in an earlier batch cannot take a's successor away from a later one.
        BatchedDelete::new(t.clone(), key.clone(), key.clone(), filter)
            .reads_own_table()
            .keys_first(Cond::all().add(revoked))
    }
}

register_job!(RefreshTokensCleanup::default());
