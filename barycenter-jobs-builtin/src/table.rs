//! The shape shared by the cleanups that delete by one expiry column, and the one place that
//! turns the configured durations into cut-offs.

use barycenter_jobs_core::{Backend, Error, Identifier};
use chrono::{DateTime, Duration, Utc};

use crate::batch::BatchedDelete;
use crate::schema::CheckedColumn;
use crate::time::TimeFormat;

/// A configured number of seconds as a duration. A value too large for [`Duration`] becomes
/// [`Duration::MAX`]: every cut-off computed with it is then the earliest instant, which
/// deletes nothing, the safe side of a setting nobody meant literally.
pub(crate) fn seconds(secs: u64) -> Duration {
    i64::try_from(secs)
        .ok()
        .and_then(Duration::try_seconds)
        .unwrap_or(Duration::MAX)
}

/// `at - by`, or the earliest instant when that is out of range (deletes nothing).
pub(crate) fn earlier(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    at.checked_sub_signed(by)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The [`ExpiringTable`] a cleanup's configuration describes. Each `*Config` names its
/// table, key column, expiry column, time format and margin with the same fields
/// (`table`, `key_column`, `expires_column`, `time_format`, `keep_if_younger_secs`), but
/// they are separate structs: their TOML sections are flat, and serde cannot flatten a shared
/// struct into a section that refuses unknown keys. This reads those fields by name.
macro_rules! expiring_table {
    ($config:expr) => {
        $crate::table::ExpiringTable::new(
            &$config.table,
            &$config.key_column,
            &$config.expires_column,
            $config.time_format,
            $config.keep_if_younger_secs,
        )
    };
}
pub(crate) use expiring_table;

/// A table whose rows expire at the instant in one column. Names are validated.
#[derive(Debug, Clone)]
pub(crate) struct ExpiringTable {
    pub(crate) table: Identifier,
    pub(crate) key: Identifier,
    pub(crate) expires: Identifier,
    pub(crate) format: TimeFormat,
    /// How long after its expiry a row is still kept (`keep_if_younger_secs`).
    pub(crate) margin: Duration,
}

impl ExpiringTable {
    /// The table, validated, with a safety margin of `keep_if_younger_secs`.
    pub(crate) fn new(
        table: &str,
        key: &str,
        expires: &str,
        format: TimeFormat,
        keep_if_younger_secs: u64,
    ) -> Result<Self, Error> {
        Ok(Self {
            table: Identifier::new(table)?,
            key: Identifier::new(key)?,
            expires: Identifier::new(expires)?,
            format,
            margin: seconds(keep_if_younger_secs),
        })
    }

    /// Delete the rows with `expires < now` (NULL never expires), oldest first. `now` is the
    /// run's cut-off with the margin already taken off.
    pub(crate) fn expired(&self, backend: Backend, now: DateTime<Utc>) -> BatchedDelete {
        BatchedDelete::new(
            self.table.clone(),
            self.key.clone(),
            self.expires.clone(),
            self.format
                .column_before(backend, &self.table, &self.expires, now),
        )
    }

    /// The key and expiry columns, for the check before each run.
    pub(crate) fn columns(&self) -> Vec<CheckedColumn> {
        vec![
            CheckedColumn::new(&self.table, &self.key, "key_column"),
            CheckedColumn::new(&self.table, &self.expires, "expires_column").holding(self.format),
        ]
    }

    /// Another time column of the table, in the table's format.
    pub(crate) fn time_column(&self, column: &Identifier, setting: &'static str) -> CheckedColumn {
        CheckedColumn::new(&self.table, column, setting).holding(self.format)
    }
}
