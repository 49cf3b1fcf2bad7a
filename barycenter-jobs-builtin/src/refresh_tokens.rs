//! `cleanup_expired_refresh_tokens`: delete expired refresh tokens, and rotated ones once
//! their successor is older than a grace period.
//!
//! When a refresh token is used, Barycenter issues a new one whose `parent_token` names the
//! old one, and marks the old one `revoked`. The old token is kept for a grace period (so a
//! client whose response was lost can be recognised, and a replay detected); after that it is
//! only history. A revoked token that no token names was revoked for another reason (logout,
//! reuse detection) and is kept until it expires; a token that is not revoked is kept whatever
//! names it.

use barycenter_jobs_core::{
    Error, Identifier, Job, JobContext, JobError, JobOutput, async_trait, register_job,
};
use chrono::{DateTime, Duration, Utc};
use sea_query::{Alias, Cond, Condition, Expr, ExprTrait, Query};
use serde::{Deserialize, Serialize};

use crate::batch::{BatchedDelete, Batching};
use crate::table::ExpiringTable;
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

/// Where the refresh tokens live (`[refresh_tokens]` in
/// [`BuiltinConfig`](crate::BuiltinConfig)). The defaults are Barycenter's schema.
///
/// ```
/// use barycenter_jobs_builtin::RefreshTokensConfig;
///
/// let config: RefreshTokensConfig = toml::from_str("rotation_grace_period_secs = 600").unwrap();
/// assert_eq!(config.table, "refresh_tokens");
/// assert_eq!(config.rotation_grace_period_secs, 600);
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
    /// ago (default 1800, 30 minutes).
    pub rotation_grace_period_secs: u64,
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
        }
    }
}

/// Deletes refresh tokens with `expires_at < now`, then rotated tokens: `revoked` is set and
/// another token's `parent_token` names it, with that successor's `created_at` before
/// `now - grace period`.
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
#[derive(Debug, Clone)]
pub struct RefreshTokensCleanup {
    table: ExpiringTable,
    created: Identifier,
    revoked: Identifier,
    revoked_format: FlagFormat,
    parent: Identifier,
    grace: Duration,
    batching: Batching,
}

impl RefreshTokensCleanup {
    /// The job's name.
    pub const NAME: &'static str = "cleanup_expired_refresh_tokens";
    /// The job's description.
    pub const DESCRIPTION: &'static str = "Clean up expired refresh tokens";
    /// The job's default schedule: hourly at :30.
    pub const SCHEDULE: &'static str = "0 30 * * * *";

    /// A cleanup of the table described by `config`; fails with
    /// [`Error::InvalidIdentifier`] on a name that is not a plain SQL identifier.
    pub fn new(config: &RefreshTokensConfig) -> Result<Self, Error> {
        let grace = i64::try_from(config.rotation_grace_period_secs)
            .ok()
            .and_then(Duration::try_seconds)
            .unwrap_or(Duration::MAX);
        Ok(Self {
            table: ExpiringTable::new(
                &config.table,
                &config.key_column,
                &config.expires_column,
                config.time_format,
            )?,
            created: Identifier::new(config.created_column.as_str())?,
            revoked: Identifier::new(config.revoked_column.as_str())?,
            revoked_format: config.revoked_format,
            parent: Identifier::new(config.parent_column.as_str())?,
            grace,
            batching: Batching::default(),
        })
    }

    /// Use these batching settings.
    pub fn with_batching(mut self, batching: &Batching) -> Self {
        self.batching = batching.clone();
        self
    }

    /// Rotated tokens whose successor was created before `now - grace`.
    fn rotated(&self, now: DateTime<Utc>) -> BatchedDelete {
        let t = &self.table.table;
        let key = &self.table.key;
        let child = Alias::new("successor");
        let cutoff = now
            .checked_sub_signed(self.grace)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let successors = Query::select()
            .column((child.clone(), self.parent.clone()))
            .from_as(t.clone(), child.clone())
            .and_where(Expr::col((child.clone(), self.parent.clone())).is_not_null())
            .and_where(
                Expr::col((child.clone(), self.created.clone()))
                    .lt(self.table.format.value(cutoff)),
            )
            .to_owned();
        let revoked = Expr::col((t.clone(), self.revoked.clone()));
        let revoked = match self.revoked_format {
            FlagFormat::Integer => revoked.ne(0),
            FlagFormat::Boolean => revoked.eq(true),
        };
        let filter: Condition = Cond::all()
            .add(revoked)
            .add(Expr::col((t.clone(), key.clone())).in_subquery(successors));
        BatchedDelete::new(t.clone(), key.clone(), key.clone(), filter)
            .reads_own_table()
            .with_batching(&self.batching)
    }
}

impl Default for RefreshTokensCleanup {
    fn default() -> Self {
        Self::new(&RefreshTokensConfig::default()).expect("the default names are valid identifiers")
    }
}

#[async_trait]
impl Job for RefreshTokensCleanup {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn description(&self) -> &str {
        Self::DESCRIPTION
    }

    fn schedule(&self) -> &str {
        Self::SCHEDULE
    }

    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        let now = ctx.now();
        let expired = self.table.expired(now, &self.batching).run(&ctx).await?;
        let rotated = self.rotated(now).run(&ctx).await?;
        Ok(JobOutput::processed(expired.deleted + rotated.deleted))
    }
}

register_job!(RefreshTokensCleanup::default());
