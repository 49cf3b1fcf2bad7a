//! How a table stores its instants, and how a cut-off instant is bound against it.

use chrono::{DateTime, Utc};
use sea_query::Value;
use serde::{Deserialize, Serialize};

/// How a time column (`created_at`, `expires_at`) stores an instant.
///
/// The cut-off is always computed from the run's cut-off clock ([`JobContext::cutoff_now`],
/// the database's by default) and bound as a parameter of the right type; it is never
/// formatted into the SQL.
///
/// In TOML it is written in snake case:
///
/// ```
/// use barycenter_jobs_builtin::TimeFormat;
///
/// #[derive(serde::Deserialize)]
/// struct Row { format: TimeFormat }
///
/// let row: Row = toml::from_str(r#"format = "epoch_millis""#).unwrap();
/// assert_eq!(row.format, TimeFormat::EpochMillis);
/// ```
///
/// [`JobContext::cutoff_now`]: barycenter_jobs_core::JobContext::cutoff_now
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TimeFormat {
    /// Integer seconds since the Unix epoch (Barycenter's choice). A cut-off with a fraction of
    /// a second is rounded down, so a row is never deleted early.
    #[default]
    EpochSeconds,
    /// Integer milliseconds since the Unix epoch (rounded down like seconds).
    EpochMillis,
    /// A native timestamp holding UTC wall-clock time without a zone: `TIMESTAMP` on
    /// PostgreSQL, `DATETIME` / `TIMESTAMP` on MySQL and MariaDB. Bound as a
    /// `chrono::NaiveDateTime`.
    Timestamp,
    /// A native timestamp with a time zone: `TIMESTAMPTZ` on PostgreSQL. Bound as a
    /// `chrono::DateTime<Utc>`.
    TimestampTz,
}

impl TimeFormat {
    /// The value that represents `at` in a column of this format.
    ///
    /// ```
    /// use barycenter_jobs_builtin::TimeFormat;
    /// use chrono::{TimeZone, Utc};
    /// use barycenter_jobs_core::sea_query::Value;
    ///
    /// let at = Utc.timestamp_millis_opt(1_700_000_000_999).unwrap();
    /// assert_eq!(TimeFormat::EpochSeconds.value(at), Value::from(1_700_000_000_i64));
    /// assert_eq!(TimeFormat::EpochMillis.value(at), Value::from(1_700_000_000_999_i64));
    /// ```
    pub fn value(self, at: DateTime<Utc>) -> Value {
        match self {
            TimeFormat::EpochSeconds => at.timestamp().into(),
            TimeFormat::EpochMillis => at.timestamp_millis().into(),
            TimeFormat::Timestamp => at.naive_utc().into(),
            TimeFormat::TimestampTz => at.into(),
        }
    }
}
