//! How a table stores its instants, and how a cut-off instant is bound against it.

use barycenter_jobs_core::{Backend, Identifier};
use chrono::{DateTime, SecondsFormat, Utc};
use sea_query::{Cond, Condition, Expr, ExprTrait, Value};
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
    /// `chrono::DateTime<Utc>` (on MySQL and MariaDB a `DATETIME` / `TIMESTAMP` holding UTC
    /// takes it too).
    TimestampTz,
    /// RFC 3339 (ISO 8601) **text** in UTC, as Barycenter writes its federation requests'
    /// `expires_at`: `2026-12-07T02:35:00Z`. Accepted in a text column (`TEXT`, `VARCHAR`,
    /// `CHAR`) on all three databases.
    ///
    /// A row counts as expired when its text has the form `YYYY-MM-DDTHH:MM:SS`, an optional
    /// fraction of a second, then `Z` or `+00:00`, and its date and time are before the
    /// cut-off. For exactly these forms the text's order as a string is its order in time,
    /// so the comparison is a plain `<` against the cut-off written as
    /// `YYYY-MM-DDTHH:MM:SS` (rounded down to the second; a row within the cut-off's second
    /// waits for the next run), which an index on the column serves. Any other text (another
    /// zone such as `+02:00`, no zone, a space instead of the `T`, a date out of range, not a
    /// date at all) is never deleted: read as a string it could sort before the cut-off
    /// while being later in time. See
    /// [`Backend::is_utc_rfc3339`](barycenter_jobs_core::Backend::is_utc_rfc3339) for how
    /// each database checks the form.
    Iso8601Text,
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
    ///
    /// For [`Iso8601Text`](Self::Iso8601Text) it is the text Barycenter writes (with a
    /// fraction only when `at` has one); the cut-off of a cleanup is compared differently
    /// (see the variant).
    ///
    /// ```
    /// use barycenter_jobs_builtin::TimeFormat;
    /// use chrono::{TimeZone, Utc};
    /// use barycenter_jobs_core::sea_query::Value;
    ///
    /// let at = Utc.timestamp_opt(1_796_610_900, 0).unwrap();
    /// assert_eq!(TimeFormat::Iso8601Text.value(at), Value::from("2026-12-07T02:35:00Z"));
    /// ```
    pub fn value(self, at: DateTime<Utc>) -> Value {
        match self {
            TimeFormat::EpochSeconds => at.timestamp().into(),
            TimeFormat::EpochMillis => at.timestamp_millis().into(),
            TimeFormat::Timestamp => at.naive_utc().into(),
            TimeFormat::TimestampTz => at.into(),
            TimeFormat::Iso8601Text => at.to_rfc3339_opts(SecondsFormat::AutoSi, true).into(),
        }
    }

    /// The setting's spelling in a configuration file (`"epoch_seconds"`, ...), for messages.
    ///
    /// ```
    /// use barycenter_jobs_builtin::TimeFormat;
    ///
    /// assert_eq!(TimeFormat::Iso8601Text.name(), "iso8601_text");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            TimeFormat::EpochSeconds => "epoch_seconds",
            TimeFormat::EpochMillis => "epoch_millis",
            TimeFormat::Timestamp => "timestamp",
            TimeFormat::TimestampTz => "timestamp_tz",
            TimeFormat::Iso8601Text => "iso8601_text",
        }
    }

    /// `column < at` on `backend`, for a column of this format: a bound value of the
    /// format's type, or for [`Iso8601Text`](Self::Iso8601Text) the string comparison
    /// guarded by the form check (see the variant).
    pub(crate) fn before(self, backend: Backend, column: Expr, at: DateTime<Utc>) -> Condition {
        match self {
            TimeFormat::Iso8601Text => Cond::all()
                .add(column.clone().lt(iso8601_cutoff(at)))
                .add(backend.is_utc_rfc3339(column)),
            _ => Cond::all().add(column.lt(self.value(at))),
        }
    }

    /// `table.column < at` (see [`before`](Self::before)).
    pub(crate) fn column_before(
        self,
        backend: Backend,
        table: &Identifier,
        column: &Identifier,
        at: DateTime<Utc>,
    ) -> Condition {
        self.before(backend, Expr::col((table.clone(), column.clone())), at)
    }
}

/// The cut-off of an [`Iso8601Text`](TimeFormat::Iso8601Text) comparison: `at` rounded down
/// to the second, as `YYYY-MM-DDTHH:MM:SS` with nothing after. A row of the accepted forms
/// whose first 19 characters are those is at or after `at`'s second and is longer, so it is
/// not less than this and stays; a row of an earlier second differs first in a digit.
/// An instant outside years 0 to 9999 (the earliest instant, when the margin is out of
/// range) cannot be written in four digits: it becomes the earliest text of the form, which
/// no row is before, so nothing is deleted.
fn iso8601_cutoff(at: DateTime<Utc>) -> String {
    use chrono::Datelike;
    if (0..=9999).contains(&at.year()) {
        at.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else if at.year() < 0 {
        "0000-01-01T00:00:00".into()
    } else {
        "9999-12-31T23:59:59".into()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn iso8601_cutoffs_are_the_second_without_a_zone() {
        let at = Utc.timestamp_millis_opt(1_796_610_900_999).unwrap();
        assert_eq!(iso8601_cutoff(at), "2026-12-07T02:35:00");
        assert_eq!(
            iso8601_cutoff(DateTime::<Utc>::MIN_UTC),
            "0000-01-01T00:00:00"
        );
        let t = Identifier::new("federation_auth_requests").unwrap();
        let c = Identifier::new("expires_at").unwrap();
        let cond = TimeFormat::Iso8601Text.column_before(Backend::MySql, &t, &c, at);
        let sql = Backend::MySql.render(
            &sea_query::Query::delete()
                .from_table(t.clone())
                .cond_where(cond)
                .to_owned(),
        );
        assert_eq!(
            sql,
            "DELETE FROM `federation_auth_requests` WHERE `federation_auth_requests`.`expires_at` < ? AND (`federation_auth_requests`.`expires_at` REGEXP ?)"
        );
    }
}
