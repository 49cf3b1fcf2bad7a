//! `cleanup_expired_device_codes`: delete device authorization codes (RFC 8628) whose
//! `expires_at` is past.

use barycenter_jobs_core::{
    Error, Job, JobContext, JobError, JobOutput, async_trait, register_job,
};
use serde::{Deserialize, Serialize};

use crate::batch::Batching;
use crate::table::ExpiringTable;
use crate::time::TimeFormat;

/// Where the device codes live (`[device_codes]` in [`BuiltinConfig`](crate::BuiltinConfig)).
/// The defaults are Barycenter's schema.
///
/// ```
/// use barycenter_jobs_builtin::{DeviceCodesCleanup, DeviceCodesConfig, TimeFormat};
///
/// let config: DeviceCodesConfig = toml::from_str(r#"
///     table = "oauth_device_codes"
///     expires_column = "valid_until"
///     time_format = "timestamp_tz"
/// "#).unwrap();
/// assert_eq!(config.key_column, "device_code");
/// let job = DeviceCodesCleanup::new(&config).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DeviceCodesConfig {
    /// Table name (default `device_codes`).
    pub table: String,
    /// Primary key column (default `device_code`).
    pub key_column: String,
    /// Expiry column (default `expires_at`); NULL means "never expires".
    pub expires_column: String,
    /// How the expiry column stores instants (default epoch seconds).
    pub time_format: TimeFormat,
}

impl Default for DeviceCodesConfig {
    fn default() -> Self {
        Self {
            table: "device_codes".into(),
            key_column: "device_code".into(),
            expires_column: "expires_at".into(),
            time_format: TimeFormat::EpochSeconds,
        }
    }
}

/// Deletes device codes with `expires_at < now`. A code expiring exactly now, or with a NULL
/// expiry, stays.
///
/// ```
/// use barycenter_jobs_builtin::DeviceCodesCleanup;
/// use barycenter_jobs_core::Job;
///
/// let job = DeviceCodesCleanup::default();
/// assert_eq!(job.name(), "cleanup_expired_device_codes");
/// assert_eq!(job.schedule(), "0 45 * * * *");
/// ```
#[derive(Debug, Clone)]
pub struct DeviceCodesCleanup {
    table: ExpiringTable,
    batching: Batching,
}

impl DeviceCodesCleanup {
    /// The job's name.
    pub const NAME: &'static str = "cleanup_expired_device_codes";
    /// The job's description.
    pub const DESCRIPTION: &'static str = "Clean up expired device authorization codes";
    /// The job's default schedule: hourly at :45.
    pub const SCHEDULE: &'static str = "0 45 * * * *";

    /// A cleanup of the table described by `config`; fails with
    /// [`Error::InvalidIdentifier`] on a name that is not a plain SQL identifier.
    pub fn new(config: &DeviceCodesConfig) -> Result<Self, Error> {
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

impl Default for DeviceCodesCleanup {
    fn default() -> Self {
        Self::new(&DeviceCodesConfig::default()).expect("the default names are valid identifiers")
    }
}

#[async_trait]
impl Job for DeviceCodesCleanup {
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

register_job!(DeviceCodesCleanup::default());
