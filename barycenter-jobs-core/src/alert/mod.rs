//! Alerts: one JSON POST per event per fleet to `[alerts] webhook_url`, and per-job
//! Healthchecks-style pings (`[jobs.NAME] ping_url`).
//!
//! # Events
//!
//! | event | when | key (one delivery per key per fleet) |
//! |---|---|---|
//! | `failure` | a run failed or timed out and no retry of its tick follows, from the job's `alert_after_failures`-th consecutive failed tick on (default 1: every such run) | `failure:<execution id>` |
//! | `recovery` | the first success after a `failure` or `overdue` alert of the job | `recovery:<that alert's key>` |
//! | `overdue` | the job's health turned overdue (see [`SchedulerHandle::health`](crate::SchedulerHandle::health)) | `overdue:<job>:<missed tick>` |
//! | `paused` | the system paused the job (`pause_after_failures`) | `paused:<job>:<when>` |
//!
//! With `alert_after_failures = N > 1` only ticks count (scheduled, caught-up, retried runs:
//! the history's view of consecutive failures); a failed manual run alerts only when `N = 1`.
//!
//! # What the webhook receives
//!
//! ```json
//! {
//!   "event": "failure",
//!   "job": "cleanup_expired_sessions",
//!   "executionId": 4711,
//!   "message": "timed out after 60s",
//!   "at": "2026-12-07T09:30:00.123Z",
//!   "instance": "auth-1:4242",
//!   "text": "barycenter-jobs: cleanup_expired_sessions failed on auth-1:4242: timed out after 60s (run 4711)"
//! }
//! ```
//!
//! `text` is one line that Slack and Mattermost incoming webhooks display as is;
//! `executionId` is `null` for `overdue` and `paused`.
//!
//! # Delivery
//!
//! The run path only hands the run's end to a bounded channel (an observer, see
//! [`crate::observe`]); a task of the scheduler's decides whether it is an event, inserts
//! the event's row into the deliveries table (`job_alerts`) under its key (a replica that
//! computes the same key inserts nothing), claims a due row with a conditional `UPDATE`
//! (only one replica's matches) and POSTs it. A 2xx answer marks it `delivered`; anything
//! else (another status, a connection error, 10 s without an answer) schedules another
//! attempt 1 s, 2 s, 4 s ... later, until 10 minutes after the event, when it is marked
//! `failed`. Either end is written to the audit log (action `alert`, actor `system`). A
//! replica stopped in the middle of a POST leaves the row claimed for 30 s, after which
//! any replica tries again: a receiver may then see that event twice, never none. At
//! shutdown the events already queued are recorded for the rest of the fleet to send; a run
//! that ends after that (during the shutdown's grace period) is not alerted.
//!
//! The webhook's URL is never logged nor audited, only its host: Slack's carry a secret.
//!
//! # Pings
//!
//! `{url}/start` when a run starts, `{url}` when it succeeds, `{url}/fail` (its message as
//! the body) when it fails or times out with no retry following; one POST each, by the
//! replica that runs the job, from a task of their own (a slow ping server delays neither
//! runs nor alerts), at most 10 s each. A cancelled run sends no end ping.
//!
//! # https
//!
//! `http://` works in every build; `https://` needs the `alerts-https` feature (rustls with
//! the webpki roots; no OpenSSL). An `https://` URL without it is refused at start.

mod http;
mod observer;
pub(crate) mod store;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::error::{Error, Result};

pub(crate) use self::http::{HttpClient, Target};
pub(crate) use observer::{AlertObserver, Ping, Signal, offer};

/// The kinds of alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertEvent {
    /// A run failed or timed out, and no retry of its tick follows.
    Failure,
    /// A job's health turned overdue.
    Overdue,
    /// The first success after a `failure` or `overdue` alert.
    Recovery,
    /// The system paused the job after consecutive failures.
    Paused,
}

impl AlertEvent {
    /// `failure`, `overdue`, `recovery` or `paused`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AlertEvent::Failure => "failure",
            AlertEvent::Overdue => "overdue",
            AlertEvent::Recovery => "recovery",
            AlertEvent::Paused => "paused",
        }
    }
}

/// The JSON body of one alert (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Alert {
    /// What happened.
    pub event: AlertEvent,
    /// The job's name.
    pub job: String,
    /// The run, for `failure` and `recovery`.
    pub execution_id: Option<i64>,
    /// The error of a failure, the pause's note, or what the overdue job missed.
    pub message: Option<String>,
    /// When it happened (RFC 3339, UTC, milliseconds).
    pub at: String,
    /// The scheduler instance that saw it.
    pub instance: String,
    /// One line for chat webhooks.
    pub text: String,
}

impl Alert {
    pub(crate) fn new(
        event: AlertEvent,
        job: &str,
        execution_id: Option<i64>,
        message: Option<String>,
        at: DateTime<Utc>,
        instance: &str,
    ) -> Self {
        let run = execution_id
            .map(|id| format!(" (run {id})"))
            .unwrap_or_default();
        let what = match event {
            AlertEvent::Failure => "failed",
            AlertEvent::Overdue => "is overdue",
            AlertEvent::Recovery => "recovered",
            AlertEvent::Paused => "was paused by the system",
        };
        let detail = message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        Self {
            text: format!("barycenter-jobs: {job} {what} on {instance}{detail}{run}"),
            event,
            job: job.to_owned(),
            execution_id,
            message,
            at: at.to_rfc3339_opts(SecondsFormat::Millis, true),
            instance: instance.to_owned(),
        }
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// Check a webhook or ping URL at start: `http://` (or `https://` with the `alerts-https`
/// feature) with a host. The error names `key`, never the URL (it may hold a secret).
pub(crate) fn check_url(key: &str, url: &str) -> Result<()> {
    Target::parse(url)
        .map(drop)
        .map_err(|reason| Error::InvalidSetting {
            key: key.to_owned(),
            reason: reason.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_the_documented_fields() {
        let at = DateTime::parse_from_rfc3339("2026-12-07T09:30:00.123Z")
            .unwrap()
            .with_timezone(&Utc);
        let alert = Alert::new(
            AlertEvent::Failure,
            "cleanup",
            Some(7),
            Some("boom".into()),
            at,
            "a:1",
        );
        let v: serde_json::Value = serde_json::from_str(&alert.to_json()).unwrap();
        assert_eq!(v["event"], "failure");
        assert_eq!(v["job"], "cleanup");
        assert_eq!(v["executionId"], 7);
        assert_eq!(v["message"], "boom");
        assert_eq!(v["at"], "2026-12-07T09:30:00.123Z");
        assert_eq!(v["instance"], "a:1");
        assert_eq!(
            v["text"],
            "barycenter-jobs: cleanup failed on a:1: boom (run 7)"
        );
    }

    #[test]
    fn urls_are_checked_without_repeating_them() {
        assert!(check_url("k", "http://127.0.0.1:9/hook").is_ok());
        for bad in [
            "",
            "hooks.slack.com/services/SECRET",
            "ftp://h/SECRET",
            "http:///SECRET",
        ] {
            let err = check_url("alerts.webhook_url", bad).unwrap_err();
            assert!(
                matches!(err, Error::InvalidSetting { ref key, .. } if key == "alerts.webhook_url")
            );
            assert!(!err.to_string().contains("SECRET"), "{err}");
        }
        #[cfg(not(feature = "alerts-https"))]
        assert!(check_url("k", "https://hooks.slack.com/x").is_err());
        #[cfg(feature = "alerts-https")]
        assert!(check_url("k", "https://hooks.slack.com/x").is_ok());
    }
}
