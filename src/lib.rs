//! **barycenter-jobs**: periodic background jobs for OpenID Connect / OAuth servers.
//!
//! A [`Job`] trait and plugin [`Registry`], a cron [`Scheduler`] that runs every tick once
//! across a fleet of replicas sharing one database, an [`ExecutionStore`] compatible with
//! Barycenter's `job_executions` table, four built-in cleanup jobs ([`builtin`]), and a
//! GraphQL admin API as a `tower::Service` ([`graphql`]).
//!
//! This crate re-exports the others; depend on it alone.
//!
//! | feature | default | what |
//! |---|---|---|
//! | `sqlite` | yes | the SQLite driver (SQLite bundled) |
//! | `postgres` | yes | the PostgreSQL driver |
//! | `mysql` | yes | the MySQL / MariaDB driver |
//! | `builtin` | yes | [`builtin`]: the four cleanup jobs |
//! | `graphql` | yes | [`graphql`]: the admin API service |
//!
//! A backend feature turns its driver on in the core and in [`builtin`] / [`graphql`] when
//! those are enabled, and no feature turns on a backend by itself: with
//! `default-features = false, features = ["postgres", "builtin", "graphql"]` neither SQLite
//! nor the MySQL driver is compiled. Enable at least one backend.
//!
//! ```
//! # #[cfg(all(feature = "sqlite", feature = "builtin"))]
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use barycenter_jobs::{Database, Registry, Scheduler, SchedulerConfig};
//!
//! # let dir = tempfile::tempdir()?;
//! # let url = format!("sqlite://{}", dir.path().join("auth.db").display());
//! let db = Database::connect(&url).await?;
//! barycenter_jobs::builtin::link(); // keep the built-in jobs' registrations in the binary
//! let registry = Registry::from_inventory()?;
//! let scheduler = Scheduler::builder(registry, db)
//!     .config(SchedulerConfig::default())
//!     .start()
//!     .await?;
//! assert_eq!(scheduler.jobs().len(), 4);
//! scheduler.shutdown(std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! # #[cfg(not(all(feature = "sqlite", feature = "builtin")))] fn main() {}
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use barycenter_jobs_core::*;

/// The four built-in cleanup jobs (feature `builtin`).
#[cfg(feature = "builtin")]
#[cfg_attr(docsrs, doc(cfg(feature = "builtin")))]
pub use barycenter_jobs_builtin as builtin;

/// The GraphQL admin API service (feature `graphql`).
#[cfg(feature = "graphql")]
#[cfg_attr(docsrs, doc(cfg(feature = "graphql")))]
pub use barycenter_jobs_graphql as graphql;
