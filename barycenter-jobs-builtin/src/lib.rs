//! The four built-in cleanup jobs of barycenter-jobs, for the expiring tables of an OpenID
//! Connect / OAuth server:
//!
//! | job | description | schedule | deletes |
//! |---|---|---|---|
//! | `cleanup_expired_sessions` | Clean up expired user sessions | `0 0 * * * *` | `sessions` rows with `expires_at < now` |
//! | `cleanup_expired_refresh_tokens` | Clean up expired refresh tokens | `0 30 * * * *` | `refresh_tokens` rows with `expires_at < now`, and rotated tokens once their successor is older than a grace period (30 min), unless `rotated = "at_expiry"` keeps them for replay detection ([`RotatedTokens`]) |
//! | `cleanup_expired_challenges` | Clean up expired WebAuthn challenges | `0 */5 * * * *` | `webauthn_challenges` rows created more than 5 minutes ago or with `expires_at < now` |
//! | `cleanup_expired_device_codes` | Clean up expired device authorization codes | `0 45 * * * *` | `device_codes` rows with `expires_at < now` |
//!
//! Three more are opt-in (see [`BuiltinConfig`]): registered only when their configuration
//! section is present or they are enabled with [`BuiltinConfig::with_auth_codes`],
//! [`with_access_tokens`](BuiltinConfig::with_access_tokens) or
//! [`with_federation_requests`](BuiltinConfig::with_federation_requests):
//!
//! | job | description | schedule | deletes |
//! |---|---|---|---|
//! | `cleanup_expired_auth_codes` | Clean up expired authorization codes | `0 */15 * * * *` | `auth_codes` rows with `expires_at < now` |
//! | `cleanup_expired_access_tokens` | Clean up expired access tokens | `0 15 * * * *` | `access_tokens` rows with `expires_at < now` |
//! | `cleanup_expired_federation_requests` | Clean up expired federation requests | `0 */5 * * * *` | `federation_auth_requests` rows whose RFC 3339 text `expires_at` is before now ([`TimeFormat::Iso8601Text`]) |
//!
//! Before every run and dry run, a cleanup reads its table's columns from the database's
//! catalogue and refuses to run ([`SchemaError`]: the run fails, is logged, deletes nothing)
//! when the table or a column is missing, or a time column's type cannot hold the configured
//! [`TimeFormat`] (a text column with epoch seconds would otherwise match no row and
//! "succeed").
//!
//! "Now" is the run's cut-off clock
//! ([`JobContext::cutoff_now`](barycenter_jobs_core::JobContext::cutoff_now)), read once at
//! the start of a run and used by every pass of it. By default it is **the database's clock**:
//! a replica whose own clock runs ahead cannot delete a row that is still live, and a run is
//! refused (recorded as failed, nothing deleted) when the application clock is more than the
//! scheduler's `[clock] max_skew_secs` (30) away from the database's. The scheduler's
//! `[clock] cutoffs = "app"` takes the application server's clock instead, as Barycenter's own
//! cleanups do. A row expiring exactly now, or whose time is NULL, is kept.
//!
//! Each cleanup also has a safety margin, `keep_if_younger_secs` (default 0): with it, "now"
//! is moved back by that many seconds for every pass, so a row that expired less than the
//! margin ago is kept for the next run.
//!
//! Rows deleted are reported to the run statement by statement
//! ([`JobContext::report_processed`](barycenter_jobs_core::JobContext::report_processed)), so
//! a run that fails, times out or is cancelled records the exact number it removed.
//! Rows are deleted in bounded, adaptive batches by one shared mechanism,
//! [`BatchedDelete`] (see [`batch`] for the statements per database), and every cleanup is
//! one job type, [`Cleanup<K>`], over what its [`CleanupKind`] deletes (see [`cleanup`]).
//! After a run, [`Cleanup::last_report`] tells what it did (rows, statements, time the locks
//! were held), on the job and on every clone of it.
//!
//! # Registration and linking
//!
//! Each job is submitted to the global registry with
//! [`register_job!`](barycenter_jobs_core::register_job) (`inventory::submit!`), so
//! `Registry::from_inventory()` finds all four. Registration happens through link sections,
//! and a linker drops a crate that nothing in the final binary references, taking its
//! registrations with it ([inventory issue #50](https://github.com/dtolnay/inventory/issues/50)).
//! A host that only depends on this crate for its side effects must therefore reference it
//! once: call [`link()`] (or [`configure`], which calls it) before building the registry.
//!
//! ```
//! use barycenter_jobs_core::Registry;
//!
//! barycenter_jobs_builtin::link();
//! let registry = Registry::from_inventory().unwrap();
//! assert!(registry.get("cleanup_expired_sessions").is_some());
//! assert!(registry.get("cleanup_expired_device_codes").is_some());
//! ```
//!
//! # Configuration
//!
//! The defaults are Barycenter's schema: tables `sessions`, `refresh_tokens`,
//! `webauthn_challenges`, `device_codes` with text primary keys `session_id`, `token`,
//! `challenge`, `device_code`, and `created_at` / `expires_at` in epoch seconds. Another server
//! renames tables and columns, and picks epoch milliseconds or native timestamps
//! ([`TimeFormat`]), in a [`BuiltinConfig`] that [`configure`] applies to a registry builder:
//!
//! ```
//! use barycenter_jobs_builtin::{BuiltinConfig, configure};
//! use barycenter_jobs_core::Registry;
//!
//! let config: BuiltinConfig = toml::from_str(r#"
//!     [sessions]
//!     table = "user_sessions"
//!     key_column = "id"
//!     time_format = "timestamp_tz"
//! "#)?;
//! let registry = configure(Registry::builder().with_inventory(), &config)?.build()?;
//! assert_eq!(registry.len(), 4);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Names are validated as plain identifiers ([`Identifier`](barycenter_jobs_core::Identifier);
//! a bad one is [`Error::InvalidIdentifier`](barycenter_jobs_core::Error::InvalidIdentifier))
//! and quoted by sea-query; they are never spliced into SQL.
//!
//! # Indexes
//!
//! Each batch walks an index in order: give `expires_at` an index (and `created_at` on the
//! challenges table). The rotation pass of the refresh-token cleanup looks up successors by
//! `parent_token`; an index on it keeps that pass cheap on large tables.

#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod batch;
mod challenges;
pub mod cleanup;
mod config;
mod expiry;
mod refresh_tokens;
mod schema;
mod table;
mod time;

pub use batch::{BatchedDelete, Batching, DeleteReport};
pub use challenges::{Challenges, ChallengesCleanup, ChallengesConfig};
pub use cleanup::{Cleanup, CleanupKind};
pub use config::{BuiltinConfig, configure};
pub use expiry::{
    AccessTokens, AccessTokensCleanup, AccessTokensConfig, AuthCodes, AuthCodesCleanup,
    AuthCodesConfig, DeviceCodes, DeviceCodesCleanup, DeviceCodesConfig, Expiry, ExpiryCleanup,
    ExpiryConfig, ExpiryKind, FederationRequests, FederationRequestsCleanup,
    FederationRequestsConfig, Sessions, SessionsCleanup, SessionsConfig,
};
pub use refresh_tokens::{
    FlagFormat, RefreshTokens, RefreshTokensCleanup, RefreshTokensConfig, RotatedTokens,
};
pub use schema::{CheckedColumn, SchemaError};
pub use time::TimeFormat;

/// Make sure this crate, and with it the `inventory` registrations of its four jobs (the
/// opt-in ones are registered by [`configure`], never through the inventory), is
/// linked into the final binary.
///
/// Call it once (at start-up, before `Registry::from_inventory()` or
/// `RegistryBuilder::with_inventory`) from a binary that otherwise names nothing of this
/// crate. It does nothing at run time; referencing it is what keeps the linker from dropping
/// the crate ([inventory issue #50](https://github.com/dtolnay/inventory/issues/50)).
/// [`configure`] calls it for you.
#[inline(never)]
pub fn link() {
    // Name each job type so its module, and the registration beside it, is kept too.
    std::hint::black_box((
        SessionsCleanup::NAME,
        RefreshTokensCleanup::NAME,
        ChallengesCleanup::NAME,
        DeviceCodesCleanup::NAME,
    ));
}
