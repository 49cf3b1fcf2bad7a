//! The shape shared by the cleanups that delete by one expiry column, and the one place that
//! turns "now" and the configured durations into cut-offs.

use barycenter_jobs_core::{Error, Identifier, JobContext, JobError};
use chrono::{DateTime, Duration, Utc};

use crate::batch::{BatchedDelete, Batching, before};
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

    /// The "now" every pass of one run compares with: the run's cut-off clock
    /// ([`JobContext::cutoff_now`], the database's by default), read once, minus the safety
    /// margin. Reading it once keeps the passes of a run consistent with each other; taking
    /// the margin off here, not per pass, applies it to every pass alike (a rotated token or
    /// an old challenge is judged against the same shifted instant as an expired row).
    ///
    /// Fails with [`JobError::ClockSkew`] when the application clock is too far from the
    /// database's, before anything is deleted.
    pub(crate) async fn cutoff(&self, ctx: &JobContext) -> Result<DateTime<Utc>, JobError> {
        Ok(earlier(ctx.cutoff_now().await?, self.margin))
    }

    /// Delete the rows with `expires < now` (NULL never expires), oldest first. `now` is what
    /// [`cutoff`](Self::cutoff) returned, margin already taken off.
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
