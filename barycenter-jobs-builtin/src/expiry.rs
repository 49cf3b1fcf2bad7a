//! `cleanup_expired_sessions` and `cleanup_expired_device_codes`: the cleanups that delete the
//! rows of one table whose expiry column is past. They differ only in names and defaults, so
//! they are one cleanup kind, [`Expiry`], instantiated per [`ExpiryKind`].

use std::fmt;
use std::marker::PhantomData;

use barycenter_jobs_core::{Error, register_job};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::batch::BatchedDelete;
use crate::cleanup::{Cleanup, CleanupKind};
use crate::table::{ExpiringTable, expiring_table};
use crate::time::TimeFormat;

/// What distinguishes one expiry cleanup from another: its job identity and the default
/// table layout (Barycenter's).
pub trait ExpiryKind: fmt::Debug + Clone + Eq + Send + Sync + 'static {
    /// The job's name.
    const NAME: &'static str;
    /// The job's description.
    const DESCRIPTION: &'static str;
    /// The job's default schedule.
    const SCHEDULE: &'static str;
    /// Default table name.
    const TABLE: &'static str;
    /// Default primary key column.
    const KEY: &'static str;
}

/// User sessions: `cleanup_expired_sessions`, hourly at :00, table `sessions` keyed by
/// `session_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sessions;

impl ExpiryKind for Sessions {
    const NAME: &'static str = "cleanup_expired_sessions";
    const DESCRIPTION: &'static str = "Clean up expired user sessions";
    const SCHEDULE: &'static str = "0 0 * * * *";
    const TABLE: &'static str = "sessions";
    const KEY: &'static str = "session_id";
}

/// Device authorization codes (RFC 8628): `cleanup_expired_device_codes`, hourly at :45,
/// table `device_codes` keyed by `device_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceCodes;

impl ExpiryKind for DeviceCodes {
    const NAME: &'static str = "cleanup_expired_device_codes";
    const DESCRIPTION: &'static str = "Clean up expired device authorization codes";
    const SCHEDULE: &'static str = "0 45 * * * *";
    const TABLE: &'static str = "device_codes";
    const KEY: &'static str = "device_code";
}

/// Where the rows of an expiry cleanup live, and how long past their expiry they are kept
/// (`[sessions]` / `[device_codes]` in [`BuiltinConfig`](crate::BuiltinConfig)). The
/// defaults are Barycenter's schema and rule (`expires_at < now`).
///
/// ```
/// use barycenter_jobs_builtin::{SessionsCleanup, SessionsConfig, TimeFormat};
///
/// let config: SessionsConfig = toml::from_str(r#"
///     table = "user_sessions"
///     expires_column = "valid_until"
///     time_format = "timestamp_tz"
///     keep_if_younger_secs = 60
/// "#).unwrap();
/// assert_eq!(config.key_column, "session_id");
/// assert_eq!(config.keep_if_younger_secs, 60);
/// let job = SessionsCleanup::new(&config).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, bound = "")]
#[non_exhaustive]
pub struct ExpiryConfig<K: ExpiryKind> {
    /// Table name (default [`ExpiryKind::TABLE`]: `sessions`, `device_codes`).
    pub table: String,
    /// Primary key column (default [`ExpiryKind::KEY`]: `session_id`, `device_code`).
    pub key_column: String,
    /// Expiry column (default `expires_at`); NULL means "never expires".
    pub expires_column: String,
    /// How the expiry column stores instants (default epoch seconds).
    pub time_format: TimeFormat,
    /// Safety margin, in seconds (default 0): a row is deleted only once it expired more than
    /// this long ago (`expires_at < now - margin`), so a clock that runs a little ahead of
    /// the one that wrote the expiry times still never deletes a live row.
    pub keep_if_younger_secs: u64,
    #[serde(skip)]
    kind: PhantomData<K>,
}

impl<K: ExpiryKind> Default for ExpiryConfig<K> {
    fn default() -> Self {
        Self {
            table: K::TABLE.into(),
            key_column: K::KEY.into(),
            expires_column: "expires_at".into(),
            time_format: TimeFormat::EpochSeconds,
            keep_if_younger_secs: 0,
            kind: PhantomData,
        }
    }
}

/// The [`CleanupKind`] of an expiry cleanup: one pass that deletes the rows whose expiry is
/// before now minus the configured margin ([`ExpiryConfig::keep_if_younger_secs`], default
/// 0). A row expiring exactly at that instant, or with a NULL expiry, stays. "Now" is the
/// run's cut-off clock
/// ([`JobContext::cutoff_now`](barycenter_jobs_core::JobContext::cutoff_now)): the
/// database's by default.
///
/// ```
/// use barycenter_jobs_builtin::{DeviceCodesCleanup, SessionsCleanup};
/// use barycenter_jobs_core::Job;
///
/// let job = SessionsCleanup::default();
/// assert_eq!(job.name(), "cleanup_expired_sessions");
/// assert_eq!(job.schedule(), "0 0 * * * *");
/// assert_eq!(DeviceCodesCleanup::default().schedule(), "0 45 * * * *");
/// ```
#[derive(Debug, Clone)]
pub struct Expiry<K: ExpiryKind> {
    table: ExpiringTable,
    kind: PhantomData<K>,
}

impl<K: ExpiryKind> CleanupKind for Expiry<K> {
    const NAME: &'static str = K::NAME;
    const DESCRIPTION: &'static str = K::DESCRIPTION;
    const SCHEDULE: &'static str = K::SCHEDULE;
    type Config = ExpiryConfig<K>;

    fn from_config(config: &ExpiryConfig<K>) -> Result<Self, Error> {
        Ok(Self {
            table: expiring_table!(config)?,
            kind: PhantomData,
        })
    }

    fn keep_if_younger(&self) -> Duration {
        self.table.margin
    }

    fn passes(&self, now: DateTime<Utc>) -> Vec<BatchedDelete> {
        vec![self.table.expired(now)]
    }
}

/// An expiry cleanup of kind `K`: [`SessionsCleanup`] or [`DeviceCodesCleanup`].
pub type ExpiryCleanup<K> = Cleanup<Expiry<K>>;

/// `cleanup_expired_sessions`: deletes `sessions` rows with `expires_at < now - margin`.
pub type SessionsCleanup = ExpiryCleanup<Sessions>;
/// Table layout of [`SessionsCleanup`] (`[sessions]`).
pub type SessionsConfig = ExpiryConfig<Sessions>;
/// `cleanup_expired_device_codes`: deletes `device_codes` rows with
/// `expires_at < now - margin`.
pub type DeviceCodesCleanup = ExpiryCleanup<DeviceCodes>;
/// Table layout of [`DeviceCodesCleanup`] (`[device_codes]`).
pub type DeviceCodesConfig = ExpiryConfig<DeviceCodes>;

register_job!(SessionsCleanup::default());
register_job!(DeviceCodesCleanup::default());
