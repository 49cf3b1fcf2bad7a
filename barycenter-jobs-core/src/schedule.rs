//! Cron schedules: parsing, next fire time, and a short English description.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, Weak};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::error::{Error, Result};

/// A parsed cron expression with an optional IANA time zone (UTC when none is given).
///
/// Six fields with seconds (`sec min hour day-of-month month day-of-week`), or five fields
/// meaning "at second 0". Parsing and calendar arithmetic are done by the `croner` crate;
/// daylight-saving transitions are handled by evaluating the expression in the zone through
/// `chrono-tz`, never with a fixed offset. A local time skipped when clocks spring forward
/// fires once, at the first instant after the gap; a local time repeated when they fall back
/// fires once.
///
/// ```
/// use barycenter_jobs_core::Schedule;
/// use chrono::{TimeZone, Utc};
///
/// let s = Schedule::parse("0 30 * * * *").unwrap();
/// assert_eq!(s.describe(), "Hourly at :30");
/// let next = s.next_after(Utc.with_ymd_and_hms(2026, 1, 1, 10, 15, 0).unwrap()).unwrap();
/// assert_eq!(next, Utc.with_ymd_and_hms(2026, 1, 1, 10, 30, 0).unwrap());
///
/// assert!(Schedule::parse("61 * * * * *").is_err());
/// ```
#[derive(Clone)]
pub struct Schedule {
    expression: String,
    /// Shared by every schedule parsed from the same expression (see [`parsed`]).
    cron: Arc<Cron>,
    tz: Option<Tz>,
}

/// The parsed patterns in use, by expression. A `croner::Cron` is about 5 KiB (its year
/// field alone is a 5,001-entry table), and a process may hold thousands of jobs on one
/// expression, each with a few copies of its schedule (default, in force, timer group):
/// one pattern per distinct expression keeps that at a few KiB in all, and parses each
/// expression once.
static PARSED: Mutex<Option<HashMap<String, Weak<Cron>>>> = Mutex::new(None);

/// The pattern of `expression`, parsed by `parse` unless one is already in use.
fn parsed(
    expression: &str,
    parse: impl FnOnce() -> std::result::Result<Cron, croner::errors::CronError>,
) -> std::result::Result<Arc<Cron>, croner::errors::CronError> {
    let mut cache = PARSED.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(cron) = cache.get(expression).and_then(Weak::upgrade) {
        return Ok(cron);
    }
    let cron = Arc::new(parse()?);
    // Forget the patterns nobody uses any more before the table doubles.
    if cache.len() >= 64 && cache.len().is_power_of_two() {
        cache.retain(|_, cron| cron.strong_count() > 0);
    }
    cache.insert(expression.to_owned(), Arc::downgrade(&cron));
    Ok(cron)
}

impl Schedule {
    /// Parse a five- or six-field cron expression, evaluated in UTC.
    pub fn parse(expression: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidCron {
            expression: expression.to_owned(),
            reason,
        };
        let fields = expression.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(invalid(format!(
                "expected 6 fields (sec min hour day month weekday) or 5, found {fields}"
            )));
        }
        let cron = parsed(expression, || {
            CronParser::builder()
                .seconds(Seconds::Optional)
                .year(Year::Disallowed)
                .build()
                .parse(expression)
        })
        .map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            expression: expression.trim().to_owned(),
            cron,
            tz: None,
        })
    }

    /// Evaluate the expression in the IANA zone `name` (`"Europe/Berlin"`).
    pub fn with_time_zone(mut self, name: &str) -> Result<Self> {
        let tz = Tz::from_str(name).map_err(|_| Error::UnknownTimeZone(name.to_owned()))?;
        self.tz = Some(tz);
        Ok(self)
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The zone, if not UTC.
    pub fn time_zone(&self) -> Option<Tz> {
        self.tz
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.tz {
            None => self.cron.find_next_occurrence(&after, false).ok(),
            Some(tz) => self
                .cron
                .find_next_occurrence(&after.with_timezone(&tz), false)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        }
    }

    /// The first `count` fire times strictly after `after`, in order.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(count.min(1024));
        let mut from = after;
        while out.len() < count {
            let Some(next) = self.next_after(from) else {
                break;
            };
            out.push(next);
            from = next;
        }
        out
    }

    /// The last fire time at or before `at`.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.tz {
            None => self.cron.find_previous_occurrence(&at, true).ok(),
            Some(tz) => self
                .cron
                .find_previous_occurrence(&at.with_timezone(&tz), true)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        }
    }

    /// A short English rendering: "Every second", "Every 5 minutes", "Hourly at :30",
    /// "Daily at 03:00"; anything less regular gets croner's longer description.
    pub fn describe(&self) -> String {
        let zone = self.tz.map(|tz| format!(" ({tz})")).unwrap_or_default();
        format!(
            "{}{zone}",
            self.short_description()
                .unwrap_or_else(|| self.cron.describe())
        )
    }

    fn short_description(&self) -> Option<String> {
        let f: Vec<&str> = self.expression.split_whitespace().collect();
        let (sec, min, hour, dom, mon, dow) = match f.as_slice() {
            [s, m, h, d, mo, w] => (*s, *m, *h, *d, *mo, *w),
            [m, h, d, mo, w] => ("0", *m, *h, *d, *mo, *w),
            _ => return None,
        };
        let any = |x: &str| x == "*" || x == "?";
        if !(any(dom) && any(mon) && any(dow)) {
            return None;
        }
        let num = |x: &str| x.parse::<u32>().ok();
        let step = |x: &str| x.strip_prefix("*/").and_then(|n| n.parse::<u32>().ok());
        let plural = |n: u32, unit: &str| {
            if n == 1 {
                format!("Every {unit}")
            } else {
                format!("Every {n} {unit}s")
            }
        };
        Some(match (sec, min, hour) {
            (s, m, h) if any(s) && any(m) && any(h) => "Every second".to_owned(),
            (s, m, h) if step(s).is_some() && any(m) && any(h) => plural(step(s)?, "second"),
            ("0", m, h) if any(m) && any(h) => "Every minute".to_owned(),
            ("0", m, h) if step(m).is_some() && any(h) => plural(step(m)?, "minute"),
            ("0", m, h) if num(m).is_some() && any(h) => format!("Hourly at :{:02}", num(m)?),
            ("0", m, h) if num(m).is_some() && step(h).is_some() => {
                format!("{} at :{:02}", plural(step(h)?, "hour"), num(m)?)
            }
            ("0", m, h) if num(m).is_some() && num(h).is_some() => {
                format!("Daily at {:02}:{:02}", num(h)?, num(m)?)
            }
            _ => return None,
        })
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schedule")
            .field("expression", &self.expression)
            .field("tz", &self.tz)
            .finish()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.tz == other.tz
    }
}

impl FromStr for Schedule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn six_fields_fire_on_the_second() {
        let s = Schedule::parse("*/10 * * * * *").unwrap();
        assert_eq!(
            s.next_after(utc(2026, 1, 1, 0, 0, 1)),
            Some(utc(2026, 1, 1, 0, 0, 10))
        );
        assert_eq!(s.describe(), "Every 10 seconds");
    }

    #[test]
    fn five_fields_mean_second_zero() {
        let s = Schedule::parse("*/5 * * * *").unwrap();
        assert_eq!(
            s.next_after(utc(2026, 1, 1, 0, 0, 1)),
            Some(utc(2026, 1, 1, 0, 5, 0))
        );
        assert_eq!(s.describe(), "Every 5 minutes");
    }

    #[test]
    fn builtin_schedules_read_like_the_docs() {
        for (expr, text) in [
            ("0 0 * * * *", "Hourly at :00"),
            ("0 30 * * * *", "Hourly at :30"),
            ("0 */5 * * * *", "Every 5 minutes"),
            ("0 45 * * * *", "Hourly at :45"),
            ("* * * * * *", "Every second"),
            ("0 0 3 * * *", "Daily at 03:00"),
        ] {
            assert_eq!(Schedule::parse(expr).unwrap().describe(), text, "{expr}");
        }
        // Irregular ones fall back to croner's wording rather than saying nothing.
        assert!(
            !Schedule::parse("0 0 9 * * MON-FRI")
                .unwrap()
                .describe()
                .is_empty()
        );
    }

    #[test]
    fn invalid_expressions_are_typed_errors() {
        for bad in [
            "",
            "* * *",
            "61 * * * * *",
            "0 0 25 * * *",
            "a b c d e f",
            "0 0 0 0 * * * *",
        ] {
            match Schedule::parse(bad) {
                Err(Error::InvalidCron { expression, .. }) => assert_eq!(expression, bad),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_zone_is_a_typed_error() {
        let s = Schedule::parse("0 0 2 * * *").unwrap();
        assert!(matches!(
            s.with_time_zone("Mars/Olympus"),
            Err(Error::UnknownTimeZone(_))
        ));
    }

    #[test]
    fn dst_spring_forward_in_berlin() {
        // 2026-03-29: Berlin jumps from 02:00 CET to 03:00 CEST; 02:30 local does not exist.
        let s = Schedule::parse("0 30 2 * * *")
            .unwrap()
            .with_time_zone("Europe/Berlin")
            .unwrap();
        let next = s.next_after(utc(2026, 3, 28, 12, 0, 0)).unwrap();
        // 02:30 local does not exist on the 29th: the run is not lost, it fires once at the
        // first instant after the gap (03:00 CEST = 01:00 UTC), as cronie does.
        assert_eq!(next, utc(2026, 3, 29, 1, 0, 0));
        // and the day after, at 02:30 CEST = 00:30 UTC.
        assert_eq!(s.next_after(next), Some(utc(2026, 3, 30, 0, 30, 0)));
        // An hourly job keeps firing every real hour across the jump (no duplicate, no gap
        // other than the missing local hour).
        let hourly = Schedule::parse("0 0 * * * *")
            .unwrap()
            .with_time_zone("Europe/Berlin")
            .unwrap();
        let a = hourly.next_after(utc(2026, 3, 29, 0, 30, 0)).unwrap();
        let b = hourly.next_after(a).unwrap();
        assert_eq!((b - a).num_minutes(), 60);
    }

    #[test]
    fn dst_fall_back_repeated_hour_fires_once() {
        // 2026-10-25: Berlin repeats 02:00-03:00 (CEST, then CET). 02:30 local happens twice;
        // the job runs once that day.
        let s = Schedule::parse("0 30 2 * * *")
            .unwrap()
            .with_time_zone("Europe/Berlin")
            .unwrap();
        let first = s.next_after(utc(2026, 10, 24, 12, 0, 0)).unwrap();
        let second = s.next_after(first).unwrap();
        assert_eq!(
            first
                .with_timezone(&chrono_tz::Europe::Berlin)
                .date_naive()
                .to_string(),
            "2026-10-25"
        );
        assert_eq!(
            second
                .with_timezone(&chrono_tz::Europe::Berlin)
                .date_naive()
                .to_string(),
            "2026-10-26"
        );
    }

    #[test]
    fn dst_fall_back_in_new_york() {
        // 2026-11-01: New York goes from 02:00 EDT back to 01:00 EST. A daily 09:00 local job
        // fires at 13:00 UTC before the change and 14:00 UTC after it.
        let s = Schedule::parse("0 0 9 * * *")
            .unwrap()
            .with_time_zone("America/New_York")
            .unwrap();
        assert_eq!(
            s.next_after(utc(2026, 10, 31, 0, 0, 0)),
            Some(utc(2026, 10, 31, 13, 0, 0))
        );
        assert_eq!(
            s.next_after(utc(2026, 11, 1, 0, 0, 0)),
            Some(utc(2026, 11, 1, 14, 0, 0))
        );
    }

    #[test]
    fn latest_at_or_before_includes_the_instant() {
        let s = Schedule::parse("0 */5 * * * *").unwrap();
        assert_eq!(
            s.latest_at_or_before(utc(2026, 1, 1, 0, 10, 0)),
            Some(utc(2026, 1, 1, 0, 10, 0))
        );
        assert_eq!(
            s.latest_at_or_before(utc(2026, 1, 1, 0, 12, 0)),
            Some(utc(2026, 1, 1, 0, 10, 0))
        );
    }
}
