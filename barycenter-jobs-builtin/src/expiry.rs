//! `cleanup_expired_sessions` and `cleanup_expired_device_codes`, and the opt-in
//! `cleanup_expired_auth_codes`, `cleanup_expired_access_tokens` and
//! `cleanup_expired_federation_requests`: the cleanups that delete the rows of one table whose
//! expiry column is past. They differ only in names and defaults, so they are one cleanup
//! kind, [`Expiry`], instantiated per [`ExpiryKind`].

use std::fmt;
use std::marker::PhantomData;

use barycenter_jobs_core::{Backend, Error, register_job};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::batch::BatchedDelete;
use crate::cleanup::{Cleanup, CleanupKind};
use crate::schema::CheckedColumn;
use crate::table::{ExpiringTable, expiring_table};
use crate::time::TimeFormat;

/// What distinguishes one expiry cleanup from another: its job identity and the default
/// table layout (Barycenter's): table, key column, expiry column and how that column stores
/// instants. Each default is what [`ExpiryConfig::default`] starts from; the columns and
/// format are checked against the database before every run (a text column with an epoch
/// format is refused, not cleaned of nothing).
///
/// ```
/// use barycenter_jobs_builtin::{ExpiryCleanup, ExpiryConfig, ExpiryKind, TimeFormat};
///
/// #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
/// struct Invitations;
///
/// impl ExpiryKind for Invitations {
///     const NAME: &'static str = "cleanup_expired_invitations";
///     const DESCRIPTION: &'static str = "Clean up expired invitations";
///     const SCHEDULE: &'static str = "0 0 * * * *";
///     const TABLE: &'static str = "invitations";
///     const KEY: &'static str = "id";
///     const EXPIRES: &'static str = "valid_until";
///     const TIME_FORMAT: TimeFormat = TimeFormat::Iso8601Text;
/// }
///
/// let config = ExpiryConfig::<Invitations>::default();
/// assert_eq!(config.expires_column, "valid_until");
/// assert_eq!(config.time_format, TimeFormat::Iso8601Text);
/// let job = ExpiryCleanup::<Invitations>::new(&config).unwrap();
/// ```
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
    /// Default expiry column (`expires_at` unless the kind says otherwise).
    const EXPIRES: &'static str = "expires_at";
    /// How the expiry column stores instants by default (epoch seconds unless the kind says
    /// otherwise).
    const TIME_FORMAT: TimeFormat = TimeFormat::EpochSeconds;
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

/// Authorization codes: `cleanup_expired_auth_codes`, every 15 minutes, table `auth_codes`
/// keyed by `code`, `expires_at` in epoch seconds. **Opt-in**: not registered unless enabled
/// (`[auth_codes]` in [`BuiltinConfig`](crate::BuiltinConfig), or
/// [`BuiltinConfig::with_auth_codes`](crate::BuiltinConfig::with_auth_codes)). Codes live
/// minutes, so a quarter-hourly run keeps the table small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthCodes;

impl ExpiryKind for AuthCodes {
    const NAME: &'static str = "cleanup_expired_auth_codes";
    const DESCRIPTION: &'static str = "Clean up expired authorization codes";
    const SCHEDULE: &'static str = "0 */15 * * * *";
    const TABLE: &'static str = "auth_codes";
    const KEY: &'static str = "code";
}

/// Access tokens: `cleanup_expired_access_tokens`, hourly at :15, table `access_tokens`
/// keyed by `token`, `expires_at` in epoch seconds. **Opt-in**: not registered unless enabled
/// (`[access_tokens]`, or
/// [`BuiltinConfig::with_access_tokens`](crate::BuiltinConfig::with_access_tokens)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccessTokens;

impl ExpiryKind for AccessTokens {
    const NAME: &'static str = "cleanup_expired_access_tokens";
    const DESCRIPTION: &'static str = "Clean up expired access tokens";
    const SCHEDULE: &'static str = "0 15 * * * *";
    const TABLE: &'static str = "access_tokens";
    const KEY: &'static str = "token";
}

/// Federation authorization requests: `cleanup_expired_federation_requests`, every 5
/// minutes (Barycenter's own name and schedule), table `federation_auth_requests` keyed by
/// `id`, `expires_at` as RFC 3339 **text** in UTC ([`TimeFormat::Iso8601Text`]).
/// **Opt-in**: not registered unless enabled (`[federation_requests]`, or
/// [`BuiltinConfig::with_federation_requests`](crate::BuiltinConfig::with_federation_requests)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FederationRequests;

impl ExpiryKind for FederationRequests {
    const NAME: &'static str = "cleanup_expired_federation_requests";
    const DESCRIPTION: &'static str = "Clean up expired federation requests";
    const SCHEDULE: &'static str = "0 */5 * * * *";
    const TABLE: &'static str = "federation_auth_requests";
    const KEY: &'static str = "id";
    const TIME_FORMAT: TimeFormat = TimeFormat::Iso8601Text;
}

/// Where the rows of an expiry cleanup live, and how long past their expiry they are kept
/// (`[sessions]` / `[device_codes]`, and the opt-in `[auth_codes]` / `[access_tokens]` /
/// `[federation_requests]`, in [`BuiltinConfig`](crate::BuiltinConfig)). The defaults are
/// the kind's ([`ExpiryKind`]: Barycenter's schema) and Barycenter's rule
/// (`expires_at < now`).
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
    /// Expiry column (default [`ExpiryKind::EXPIRES`], `expires_at`); NULL means "never
    /// expires".
    pub expires_column: String,
    /// How the expiry column stores instants (default [`ExpiryKind::TIME_FORMAT`]: epoch
    /// seconds, RFC 3339 text for federation requests).
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
            expires_column: K::EXPIRES.into(),
            time_format: K::TIME_FORMAT,
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

    fn passes(&self, backend: Backend, now: DateTime<Utc>) -> Vec<BatchedDelete> {
        vec![self.table.expired(backend, now)]
    }

    fn columns(&self) -> Vec<CheckedColumn> {
        self.table.columns()
    }
}

/// An expiry cleanup of kind `K`: [`SessionsCleanup`], [`DeviceCodesCleanup`], or one of
/// the opt-in [`AuthCodesCleanup`], [`AccessTokensCleanup`],
/// [`FederationRequestsCleanup`].
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

/// `cleanup_expired_auth_codes` (opt-in): deletes `auth_codes` rows with
/// `expires_at < now - margin`.
pub type AuthCodesCleanup = ExpiryCleanup<AuthCodes>;
/// Table layout of [`AuthCodesCleanup`] (`[auth_codes]`).
pub type AuthCodesConfig = ExpiryConfig<AuthCodes>;
/// `cleanup_expired_access_tokens` (opt-in): deletes `access_tokens` rows with
/// `expires_at < now - margin`.
pub type AccessTokensCleanup = ExpiryCleanup<AccessTokens>;
/// Table layout of [`AccessTokensCleanup`] (`[access_tokens]`).
pub type AccessTokensConfig = ExpiryConfig<AccessTokens>;
/// `cleanup_expired_federation_requests` (opt-in): deletes `federation_auth_requests` rows
/// whose RFC 3339 `expires_at` is before `now - margin`.
///
/// ```
/// use barycenter_jobs_builtin::{FederationRequestsCleanup, FederationRequestsConfig, TimeFormat};
/// use barycenter_jobs_core::Job;
///
/// let config = FederationRequestsConfig::default();
/// assert_eq!(config.table, "federation_auth_requests");
/// assert_eq!(config.time_format, TimeFormat::Iso8601Text);
/// assert_eq!(FederationRequestsCleanup::default().schedule(), "0 */5 * * * *");
/// ```
pub type FederationRequestsCleanup = ExpiryCleanup<FederationRequests>;
/// Table layout of [`FederationRequestsCleanup`] (`[federation_requests]`).
pub type FederationRequestsConfig = ExpiryConfig<FederationRequests>;

// The four of Barycenter's own cleanups only: the opt-in ones are registered by
// `configure` when their section is present, so a default registry stays the four.
register_job!(SessionsCleanup::default());
register_job!(DeviceCodesCleanup::default());
