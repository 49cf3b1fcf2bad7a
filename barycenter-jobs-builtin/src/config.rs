//! One configuration for the four cleanups, loaded by the host (from TOML, say) and applied to
//! a [`RegistryBuilder`].

use barycenter_jobs_core::{Error, RegistryBuilder};
use serde::{Deserialize, Serialize};

use crate::batch::Batching;
use crate::challenges::{ChallengesCleanup, ChallengesConfig};
use crate::expiry::{DeviceCodesCleanup, DeviceCodesConfig, SessionsCleanup, SessionsConfig};
use crate::refresh_tokens::{RefreshTokensCleanup, RefreshTokensConfig};

/// Settings of the four built-in cleanups: one section per job plus the shared batching.
/// Every field has a default (Barycenter's schema), so an empty file is a valid
/// configuration.
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
}

/// Put the four cleanups configured by `config` in `builder`, in place of the default
/// instances the inventory registers, through the registry's one mechanism for host
/// configuration, [`RegistryBuilder::replace`]. Also [links](crate::link) this crate.
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
    Ok(builder
        .replace(SessionsCleanup::new(&config.sessions)?.with_batching(batch))
        .replace(RefreshTokensCleanup::new(&config.refresh_tokens)?.with_batching(batch))
        .replace(ChallengesCleanup::new(&config.challenges)?.with_batching(batch))
        .replace(DeviceCodesCleanup::new(&config.device_codes)?.with_batching(batch)))
}
