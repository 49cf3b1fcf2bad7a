//! The shape shared by the cleanups that delete by one expiry column.

use barycenter_jobs_core::{Error, Identifier};
use chrono::{DateTime, Utc};

use crate::batch::{BatchedDelete, Batching, before};
use crate::time::TimeFormat;

/// A table whose rows expire at the instant in one column. Names are validated.
#[derive(Debug, Clone)]
pub(crate) struct ExpiringTable {
    pub(crate) table: Identifier,
    pub(crate) key: Identifier,
    pub(crate) expires: Identifier,
    pub(crate) format: TimeFormat,
}

impl ExpiringTable {
    pub(crate) fn new(
        table: &str,
        key: &str,
        expires: &str,
        format: TimeFormat,
    ) -> Result<Self, Error> {
        Ok(Self {
            table: Identifier::new(table)?,
            key: Identifier::new(key)?,
            expires: Identifier::new(expires)?,
            format,
        })
    }

    /// Delete the rows with `expires < now` (NULL never expires), oldest first.
    pub(crate) fn expired(&self, now: DateTime<Utc>, batching: &Batching) -> BatchedDelete {
        BatchedDelete::new(
            self.table.clone(),
            self.key.clone(),
            self.expires.clone(),
            before(&self.table, &self.expires, self.format.value(now)),
        )
        .with_batching(batching)
    }
}
