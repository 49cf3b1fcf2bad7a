//! `cleanup_expired_sessions`: delete user sessions whose `expires_at` is past.

use barycenter_jobs_core::{
    Error, Job, JobContext, JobError, JobOutput, async_trait, register_job,
};
use serde::{Deserialize, Serialize};

use crate::batch::Batching;
use crate::table::ExpiringTable;
use crate::time::TimeFormat;

/// Where the sessions live (`[sessions]` in [`BuiltinConfig`](crate::BuiltinConfig)).
/// The defaults are Barycenter's schema.
///
/// ```
/// use barycenter_jobs_builtin::{SessionsCleanup, SessionsConfig, TimeFormat};
///
/// let config: SessionsConfig = toml::from_str(r#"
///     table = "user_sessions"
///     expires_column = "valid_until"
///     time_format = "timestamp_tz"
/// "#).unwrap();
/// assert_eq!(config.key_column, "session_id");
/// let job = SessionsCleanup::new(&config).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SessionsConfig {
    /// Table name (default `sessions`).
    pub table: String,
    /// Primary key column (default `session_id`).
    pub key_column: String,
    /// Expiry column (default `expires_at`); NULL means "never expires".
    pub expires_column: String,
    /// How the expiry column stores instants (default epoch seconds).
    pub time_format: TimeFormat,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        Self {
            table: "sessions".into(),
            key_column: "session_id".into(),
            expires_column: "expires_at".into(),
            time_format: TimeFormat::EpochSeconds,
        }
    }
}

/// Deletes sessions with `expires_at < now`. A session expiring exactly now, or with a NULL
/// expiry, stays.
///
/// ```
/// use barycenter_jobs_builtin::SessionsCleanup;
/// use barycenter_jobs_core::Job;
///
/// let job = SessionsCleanup::default();
/// assert_eq!(job.name(), "cleanup_expired_sessions");
/// assert_eq!(job.schedule(), "0 0 * * * *");
/// ```
#[derive(Debug, Clone)]
pub struct SessionsCleanup {
    table: ExpiringTable,
    batching: Batching,
}

impl SessionsCleanup {
    /// The job's name.
    pub const NAME: &'static str = "cleanup_expired_sessions";
    /// The job's description.
    pub const DESCRIPTION: &'static str = "Clean up expired user sessions";
    /// The job's default schedule: hourly at :00.
    pub const SCHEDULE: &'static str = "0 0 * * * *";

    /// A cleanup of the table described by `config`; fails with
    /// [`Error::InvalidIdentifier`] on a name that is not a plain SQL identifier.
    pub fn new(config: &SessionsConfig) -> Result<Self, Error> {
        Ok(Self {
            table: ExpiringTable::new(
                &config.table,
                &config.key_column,
                &config.expires_column,
                config.time_format,
            )?,
            batching: Batching::default(),
        })
    }

    /// Use these batching settings.
    pub fn with_batching(mut self, batching: &Batching) -> Self {
        self.batching = batching.clone();
        self
    }
}

impl Default for SessionsCleanup {
    fn default() -> Self {
        Self::new(&SessionsConfig::default()).expect("the default names are valid identifiers")
    }
}

#[async_trait]
impl Job for SessionsCleanup {
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
        let report = self
            .table
            .expired(ctx.now(), &self.batching)
            .run(&ctx)
            .await?;
        Ok(JobOutput::processed(report.deleted))
    }
}

register_job!(SessionsCleanup::default());
