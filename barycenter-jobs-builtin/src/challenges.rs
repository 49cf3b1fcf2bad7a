//! `cleanup_expired_challenges`: delete WebAuthn challenges older than five minutes or past
//! their expiry.

use barycenter_jobs_core::{
    Error, Identifier, Job, JobContext, JobError, JobOutput, async_trait, register_job,
};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::batch::{BatchedDelete, Batching, before};
use crate::table::{ExpiringTable, earlier, seconds};
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

/// Deletes challenges with `expires_at < now`, then those with
/// `created_at < now - max age`, where "now" is the run's cut-off clock
/// ([`JobContext::cutoff_now`], the database's by default) minus
/// [`ChallengesConfig::keep_if_younger_secs`].
///
/// ```
/// use barycenter_jobs_builtin::ChallengesCleanup;
/// use barycenter_jobs_core::Job;
///
/// let job = ChallengesCleanup::default();
/// assert_eq!(job.name(), "cleanup_expired_challenges");
/// assert_eq!(job.schedule(), "0 */5 * * * *");
/// ```
#[derive(Debug, Clone)]
pub struct ChallengesCleanup {
    table: ExpiringTable,
    created: Identifier,
    max_age: Duration,
    batching: Batching,
}

impl ChallengesCleanup {
    /// The job's name.
    pub const NAME: &'static str = "cleanup_expired_challenges";
    /// The job's description.
    pub const DESCRIPTION: &'static str = "Clean up expired WebAuthn challenges";
    /// The job's default schedule: every five minutes.
    pub const SCHEDULE: &'static str = "0 */5 * * * *";

    /// A cleanup of the table described by `config`; fails with
    /// [`Error::InvalidIdentifier`] on a name that is not a plain SQL identifier.
    pub fn new(config: &ChallengesConfig) -> Result<Self, Error> {
        Ok(Self {
            table: ExpiringTable::new(
                &config.table,
                &config.key_column,
                &config.expires_column,
                config.time_format,
                config.keep_if_younger_secs,
            )?,
            created: Identifier::new(config.created_column.as_str())?,
            max_age: seconds(config.max_age_secs),
            batching: Batching::default(),
        })
    }

    /// Use these batching settings.
    pub fn with_batching(mut self, batching: &Batching) -> Self {
        self.batching = batching.clone();
        self
    }

    /// Challenges created before `now - max age`, oldest first (`now` with the margin
    /// already taken off).
    fn too_old(&self, now: DateTime<Utc>) -> BatchedDelete {
        let t = &self.table;
        let cutoff = earlier(now, self.max_age);
        BatchedDelete::new(
            t.table.clone(),
            t.key.clone(),
            self.created.clone(),
            before(&t.table, &self.created, t.format.value(cutoff)),
        )
        .with_batching(&self.batching)
    }
}

impl Default for ChallengesCleanup {
    fn default() -> Self {
        Self::new(&ChallengesConfig::default()).expect("the default names are valid identifiers")
    }
}

#[async_trait]
impl Job for ChallengesCleanup {
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
        let now = self.table.cutoff(&ctx).await?;
        // Two passes, each walking the index of its own column, rather than one OR that no
        // index serves.
        let expired = self.table.expired(now, &self.batching).run(&ctx).await?;
        let too_old = self.too_old(now).run(&ctx).await?;
        Ok(JobOutput::processed(expired.deleted + too_old.deleted))
    }
}

register_job!(ChallengesCleanup::default());
