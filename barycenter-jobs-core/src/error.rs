//! The one error type of the core crate.

use std::time::Duration;

/// Everything that can go wrong in the core crate.
///
/// Variants are grouped by what the caller can do about them: fix their input
/// (`InvalidCron`, `DuplicateJob`, ...), retry later (`Database`), or accept a
/// state of the world (`AlreadyRunning`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A cron expression could not be parsed.
    #[error("invalid cron expression {expression:?}: {reason}")]
    InvalidCron {
        /// The expression as given.
        expression: String,
        /// Why the parser refused it.
        reason: String,
    },
    /// A time zone name is not in the IANA database.
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
    /// Two jobs registered under the same name.
    #[error("duplicate job name {0:?}")]
    DuplicateJob(String),
    /// A job name is empty or has characters other than ASCII letters, digits, `_`, `-`, `.`.
    #[error("invalid job name {0:?}: use 1-128 ASCII letters, digits, '_', '-' or '.'")]
    InvalidJobName(String),
    /// No job of that name is registered.
    #[error("Unknown job: {0}")]
    UnknownJob(String),
    /// The job has a run in progress (here or on another replica).
    #[error("job {0} is already running")]
    AlreadyRunning(String),
    /// A table or column name given in configuration is not a plain identifier.
    #[error(
        "invalid SQL identifier {0:?}: use 1-63 ASCII letters, digits or '_', not starting with a digit"
    )]
    InvalidIdentifier(String),
    /// A duration or size given in configuration, through the Rust API or over GraphQL is
    /// outside its documented bounds (see [`crate::scheduler::bounds`]).
    #[error("invalid {key} = {value}: {bound}")]
    OutOfBounds {
        /// The setting, as its configuration key (`retention.batch_size`,
        /// `jobs.NAME.timeout_secs`, `timeout_secs`).
        key: String,
        /// The value given.
        value: u64,
        /// The bound it breaks, in words (`must be between 1 and 10000`).
        bound: String,
    },
    /// A setting given at run time (or in configuration) that cannot be applied: a policy
    /// name this version does not know, a pause that would end in the past, a note that is
    /// too long.
    #[error("invalid {key}: {reason}")]
    InvalidSetting {
        /// The setting, as the caller named it (`misfire`, `until`, `note`).
        key: String,
        /// Why it was refused.
        reason: String,
    },
    /// A database URL with a scheme this build does not support.
    #[error("unsupported database URL scheme in {0:?} (expected sqlite:, postgres: or mysql:)")]
    UnsupportedDatabase(String),
    /// No execution with this id is in the history (it was purged, or the scheduler runs
    /// without history).
    #[error("execution {0} is not in the history")]
    ExecutionNotFound(i64),
    /// A run that cannot be cancelled: it has ended, or no replica holds it (it was left
    /// open by a replica that died, and is closed as abandoned later).
    #[error("run {id} is not running: {reason}")]
    RunNotRunning {
        /// The execution id.
        id: i64,
        /// Why, in words (`it succeeded`).
        reason: String,
    },
    /// The job does not implement [`Job::dry_run`](crate::Job::dry_run).
    #[error("job {0} does not support dry runs")]
    DryRunNotSupported(String),
    /// A dry run returned an error, timed out or panicked.
    #[error("dry run of {job} failed: {message}")]
    DryRunFailed {
        /// The job.
        job: String,
        /// Why.
        message: String,
    },
    /// The scheduler has been shut down (or is shutting down).
    #[error("the scheduler is shut down")]
    ShutDown,
    /// A run did not finish before a deadline.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// An error reported by the database driver.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A schema migration failed.
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        /// Migration version number.
        version: i64,
        /// Migration name.
        name: &'static str,
        /// Underlying driver error.
        #[source]
        source: sqlx::Error,
    },
}

impl Error {
    /// True for errors caused by the caller's input (bad cron, bad name, unknown job),
    /// as opposed to the environment (database, shutdown).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::InvalidCron { .. }
                | Error::UnknownTimeZone(_)
                | Error::DuplicateJob(_)
                | Error::InvalidJobName(_)
                | Error::UnknownJob(_)
                | Error::InvalidIdentifier(_)
                | Error::UnsupportedDatabase(_)
                | Error::OutOfBounds { .. }
                | Error::InvalidSetting { .. }
                | Error::ExecutionNotFound(_)
                | Error::RunNotRunning { .. }
        )
    }
}

/// Shorthand for `Result<T, barycenter_jobs_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
