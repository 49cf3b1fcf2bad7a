//! One configuration for the four cleanups, loaded by the host (from TOML, say) and applied to
//! a [`RegistryBuilder`].

use barycenter_jobs_core::{Error, RegistryBuilder};
use serde::{Deserialize, Serialize};

use crate::batch::Batching;
use crate::challenges::{ChallengesCleanup, ChallengesConfig};
use crate::expiry::{
    AccessTokensCleanup, AccessTokensConfig, AuthCodesCleanup, AuthCodesConfig, DeviceCodesCleanup,
    DeviceCodesConfig, FederationRequestsCleanup, FederationRequestsConfig, SessionsCleanup,
    SessionsConfig,
};
use crate::refresh_tokens::{RefreshTokensCleanup, RefreshTokensConfig};

/// Settings of the four built-in cleanups: one section per job plus the shared batching.
/// Every field has a default (Barycenter's schema), so an empty file is a valid
/// configuration.
///
/// Three more cleanups are **opt-in**: `[auth_codes]`, `[access_tokens]` and
/// `[federation_requests]` (Barycenter's `auth_codes`, `access_tokens` and
/// `federation_auth_requests`). Each runs only when its section is present (an empty section
/// takes Barycenter's schema), or when enabled from code with
/// [`with_auth_codes`](Self::with_auth_codes) and its siblings; otherwise it is never
/// registered, and a registry holds the four.
///
/// ```toml
/// [batch]
/// target_statement_ms = 15
/// pause_ms = 2
///
/// [sessions]
/// table = "user_sessions"
/// time_format = "timestamp_tz"
/// keep_if_younger_secs = 60
///
/// [refresh_tokens]
/// rotation_grace_period_secs = 1800
/// rotated = "at_expiry"
///
/// [challenges]
/// max_age_secs = 300
///
/// [device_codes]
/// expires_column = "expires"
///
/// # opt-in, Barycenter's schema
/// [auth_codes]
/// [access_tokens]
/// [federation_requests]
/// keep_if_younger_secs = 60
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BuiltinConfig {
    /// Batching shared by the four cleanups.
    pub batch: Batching,
    /// `cleanup_expired_sessions`.
    pub sessions: SessionsConfig,
    /// `cleanup_expired_refresh_tokens`.
    pub refresh_tokens: RefreshTokensConfig,
    /// `cleanup_expired_challenges`.
    pub challenges: ChallengesConfig,
    /// `cleanup_expired_device_codes`.
    pub device_codes: DeviceCodesConfig,
    /// `cleanup_expired_auth_codes`, registered only when set (opt-in).
    pub auth_codes: Option<AuthCodesConfig>,
    /// `cleanup_expired_access_tokens`, registered only when set (opt-in).
    pub access_tokens: Option<AccessTokensConfig>,
    /// `cleanup_expired_federation_requests`, registered only when set (opt-in).
    pub federation_requests: Option<FederationRequestsConfig>,
}

impl BuiltinConfig {
    /// Enable `cleanup_expired_auth_codes` with Barycenter's schema (`auth_codes`, key
    /// `code`, `expires_at` in epoch seconds), unless its section already configures it.
    ///
    /// ```
    /// use barycenter_jobs_builtin::{BuiltinConfig, configure};
    /// use barycenter_jobs_core::Registry;
    ///
    /// let config = BuiltinConfig::default()
    ///     .with_auth_codes()
    ///     .with_access_tokens()
    ///     .with_federation_requests();
    /// let registry = configure(Registry::builder().with_inventory(), &config)?.build()?;
    /// assert_eq!(registry.len(), 7);
    /// assert!(registry.get("cleanup_expired_federation_requests").is_some());
    /// # Ok::<(), barycenter_jobs_core::Error>(())
    /// ```
    pub fn with_auth_codes(mut self) -> Self {
        self.auth_codes.get_or_insert_with(Default::default);
        self
    }

    /// Enable `cleanup_expired_access_tokens` with Barycenter's schema (`access_tokens`, key
    /// `token`, `expires_at` in epoch seconds), unless its section already configures it.
    pub fn with_access_tokens(mut self) -> Self {
        self.access_tokens.get_or_insert_with(Default::default);
        self
    }

    /// Enable `cleanup_expired_federation_requests` with Barycenter's schema
    /// (`federation_auth_requests`, key `id`, `expires_at` as RFC 3339 text), unless its
    /// section already configures it.
    pub fn with_federation_requests(mut self) -> Self {
        self.federation_requests
            .get_or_insert_with(Default::default);
        self
    }
}

/// Put the four cleanups configured by `config` in `builder`, in place of the default
/// instances the inventory registers, through the registry's one mechanism for host
/// configuration, [`RegistryBuilder::replace`], and register the opt-in cleanups whose
/// sections are set ([`RegistryBuilder::register`]). Also [links](crate::link) this crate.
///
/// Fails with [`Error::InvalidIdentifier`] when a table or column name in `config` is not a
/// plain SQL identifier. The builder must include the inventory
/// ([`RegistryBuilder::with_inventory`]); otherwise its `build()` fails with
/// [`Error::UnknownJob`].
///
/// ```
/// use barycenter_jobs_builtin::{BuiltinConfig, configure};
/// use barycenter_jobs_core::{Error, Registry};
///
/// let config: BuiltinConfig = toml::from_str(r#"
///     [sessions]
///     table = "user_sessions"
///     [challenges]
///     max_age_secs = 120
/// "#).unwrap();
/// let registry = configure(Registry::builder().with_inventory(), &config)?.build()?;
/// assert!(registry.get("cleanup_expired_sessions").is_some());
///
/// let mut bad = BuiltinConfig::default();
/// bad.device_codes.table = "device_codes; DROP TABLE users".into();
/// let err = configure(Registry::builder().with_inventory(), &bad).err().unwrap();
/// assert!(matches!(err, Error::InvalidIdentifier(_)));
/// # Ok::<(), Error>(())
/// ```
pub fn configure(
    builder: RegistryBuilder,
    config: &BuiltinConfig,
) -> Result<RegistryBuilder, Error> {
    crate::link();
    let batch = &config.batch;
    batch.validate()?;
    let mut builder = builder
        .replace(SessionsCleanup::new(&config.sessions)?.with_batching(batch))
        .replace(RefreshTokensCleanup::new(&config.refresh_tokens)?.with_batching(batch))
        .replace(ChallengesCleanup::new(&config.challenges)?.with_batching(batch))
        .replace(DeviceCodesCleanup::new(&config.device_codes)?.with_batching(batch));
    if let Some(c) = &config.auth_codes {
        builder = builder.register(AuthCodesCleanup::new(c)?.with_batching(batch));
    }
    if let Some(c) = &config.access_tokens {
        builder = builder.register(AccessTokensCleanup::new(c)?.with_batching(batch));
    }
    if let Some(c) = &config.federation_requests {
        builder = builder.register(FederationRequestsCleanup::new(c)?.with_batching(batch));
    }
    Ok(builder)
}
