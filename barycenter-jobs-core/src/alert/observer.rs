//! The alerts' observer: the only part on the run path. It copies what it needs of a run's
//! start or end into a bounded channel and returns; a full channel drops the signal (with a
//! warning) rather than wait.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use tokio::sync::mpsc;

use super::Target;
use crate::job::Trigger;
use crate::observe::{RunEnded, RunObserver, RunStarted, RunStatus};

/// What the run path tells the alerts' task.
#[derive(Debug, Clone)]
pub(crate) enum Signal {
    /// A run ended (succeeded, failed or timed out; cancelled and abandoned runs are no
    /// events).
    Ended {
        job: String,
        execution_id: i64,
        trigger: Trigger,
        status: RunStatus,
        message: Option<String>,
        at: DateTime<Utc>,
        retry_follows: bool,
    },
    /// The system paused a job after consecutive failures.
    Paused {
        job: String,
        note: String,
        at: DateTime<Utc>,
    },
}

/// One ping to send.
#[derive(Debug, Clone)]
pub(crate) struct Ping {
    pub(crate) target: Target,
    pub(crate) body: String,
}

/// Hands run starts and ends to the alerts' and pings' tasks.
#[derive(Debug)]
pub(crate) struct AlertObserver {
    /// `None` without a webhook.
    pub(crate) events: Option<mpsc::Sender<Signal>>,
    /// `None` when no job has a ping URL.
    pub(crate) pings: Option<mpsc::Sender<Ping>>,
    pub(crate) ping_urls: BTreeMap<String, Target>,
}

/// Send without waiting; a full channel loses the signal, loudly.
pub(crate) fn offer<T>(tx: &mpsc::Sender<T>, what: &'static str, value: T) {
    if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(value) {
        tracing::warn!(
            what,
            "alert queue full (the receiver is slow or down); dropped"
        );
    }
}

impl AlertObserver {
    fn ping(&self, job: &str, suffix: &str, body: String) {
        if let (Some(tx), Some(url)) = (&self.pings, self.ping_urls.get(job)) {
            let target = if suffix.is_empty() {
                url.clone()
            } else {
                url.with_suffix(suffix)
            };
            offer(tx, "ping", Ping { target, body });
        }
    }
}

impl RunObserver for AlertObserver {
    fn on_start(&self, run: &RunStarted<'_>) {
        self.ping(run.job, "/start", String::new());
    }

    fn on_end(&self, run: &RunEnded<'_>) {
        match run.status {
            RunStatus::Succeeded => self.ping(run.job, "", String::new()),
            RunStatus::Failed | RunStatus::TimedOut if !run.retry_follows => {
                self.ping(run.job, "/fail", run.message.unwrap_or_default().to_owned())
            }
            RunStatus::Failed | RunStatus::TimedOut => {}
            // Shutdown or a dead process: not the job's outcome.
            _ => return,
        }
        if let Some(tx) = &self.events {
            offer(
                tx,
                "alert",
                Signal::Ended {
                    job: run.job.to_owned(),
                    execution_id: run.execution_id,
                    trigger: run.trigger,
                    status: run.status,
                    message: run.message.map(str::to_owned),
                    at: run.started_at
                        + chrono::Duration::from_std(run.duration).unwrap_or_default(),
                    retry_follows: run.retry_follows,
                },
            );
        }
    }
}
