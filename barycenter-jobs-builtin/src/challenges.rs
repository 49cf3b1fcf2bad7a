//! `cleanup_expired_challenges`: delete WebAuthn challenges older than five minutes or past
//! their expiry.

use barycenter_jobs_core::{Backend, Error, Identifier, register_job};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::batch::BatchedDelete;
use crate::cleanup::{Cleanup, CleanupKind};
use crate::schema::CheckedColumn;
use crate::table::{ExpiringTable, earlier, expiring_table, seconds};
use crate::time::TimeFormat;

/// Where the challenges live (`[challenges]` in [`BuiltinConfig`](crate::BuiltinConfig)).
/// The defaults are Barycenter's schema.
///
/// ```
/// use barycenter_jobs_builtin::ChallengesConfig;
///
/// let config: ChallengesConfig = toml::from_str("max_age_secs = 120").unwrap();
/// assert_eq!(config.table, "webauthn_challenges");
/// assert_eq!(config.max_age_secs, 120);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ChallengesConfig {
    /// Table name (default `webauthn_challenges`).
    pub table: String,
    /// Primary key column, the challenge itself (default `challenge`).
    pub key_column: String,
    /// Creation time column (default `created_at`).
    pub created_column: String,
    /// Expiry column (default `expires_at`); NULL means "no expiry of its own".
    pub expires_column: String,
    /// How the time columns store instants (default epoch seconds).
    pub time_format: TimeFormat,
    /// A challenge created more than this many seconds ago is deleted whatever its expiry
    /// (default 300, five minutes).
    pub max_age_secs: u64,
    /// Safety margin, in seconds (default 0), taken off "now" for both rules: a challenge is
    /// deleted once `expires_at < now - margin` or `created_at < now - margin - max age`.
    pub keep_if_younger_secs: u64,
}

impl Default for ChallengesConfig {
    fn default() -> Self {
        Self {
            table: "webauthn_challenges".into(),
            key_column: "challenge".into(),
            created_column: "created_at".into(),
            expires_column: "expires_at".into(),
            time_format: TimeFormat::EpochSeconds,
            max_age_secs: 5 * 60,
            keep_if_younger_secs: 0,
        }
    }
}

/// The [`CleanupKind`] of [`ChallengesCleanup`]: the challenges table, validated.
#[derive(Debug, Clone)]
pub struct Challenges {
    table: ExpiringTable,
    created: Identifier,
    max_age: Duration,
}

/// Deletes challenges with `expires_at < now`, then those with
/// `created_at < now - max age`, where "now" is the run's cut-off clock
/// ([`JobContext::cutoff_now`](barycenter_jobs_core::JobContext::cutoff_now), the
/// database's by default) minus [`ChallengesConfig::keep_if_younger_secs`].
///
/// ```
/// use barycenter_jobs_builtin::ChallengesCleanup;
/// use barycenter_jobs_core::Job;
///
/// let job = ChallengesCleanup::default();
/// assert_eq!(job.name(), "cleanup_expired_challenges");
/// assert_eq!(job.schedule(), "0 */5 * * * *");
/// ```
pub type ChallengesCleanup = Cleanup<Challenges>;

impl CleanupKind for Challenges {
    const NAME: &'static str = "cleanup_expired_challenges";
    const DESCRIPTION: &'static str = "Clean up expired WebAuthn challenges";
    /// Every five minutes.
    const SCHEDULE: &'static str = "0 */5 * * * *";
    type Config = ChallengesConfig;

    fn from_config(config: &ChallengesConfig) -> Result<Self, Error> {
        Ok(Self {
            table: expiring_table!(config)?,
            created: Identifier::new(config.created_column.as_str())?,
            max_age: seconds(config.max_age_secs),
        })
    }

    fn keep_if_younger(&self) -> Duration {
        self.table.margin
    }

    fn passes(&self, backend: Backend, now: DateTime<Utc>) -> Vec<BatchedDelete> {
        // Two passes, each walking the index of its own column, rather than one OR that no
        // index serves.
        vec![self.table.expired(backend, now), self.too_old(backend, now)]
    }

    fn columns(&self) -> Vec<CheckedColumn> {
        let mut columns = self.table.columns();
        columns.push(self.table.time_column(&self.created, "created_column"));
        columns
    }
}

impl Challenges {
    /// Challenges created before `now - max age`, oldest first (`now` with the margin
    /// already taken off).
    fn too_old(&self, backend: Backend, now: DateTime<Utc>) -> BatchedDelete {
        let t = &self.table;
        let cutoff = earlier(now, self.max_age);
        BatchedDelete::new(
            t.table.clone(),
            t.key.clone(),
            self.created.clone(),
            t.format
                .column_before(backend, &t.table, &self.created, cutoff),
        )
    }
}

register_job!(ChallengesCleanup::default());
