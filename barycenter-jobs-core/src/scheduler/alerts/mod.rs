//! The alerts' tasks (see [`crate::alert`]): one turns signals from the run path into
//! delivery rows and delivers due rows (any replica's) one claim at a time, checking the
//! fleet's health for overdue jobs now and then; the other sends the pings. Both run on the
//! scheduler's tracker, off the run path, until shutdown.

mod deliver;
mod parts;
mod pings;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::handle::SchedulerHandle;
use super::shared::Shared;
use crate::alert::store::AlertStore;
use crate::alert::{Alert, AlertEvent, HttpClient, Signal, Target};
use crate::error::Result;
use crate::job::Trigger;
use crate::observe::RunStatus;
use crate::store::ExecutionStatus;
use deliver::deliver_due;
pub(super) use parts::parts;
pub(super) use pings::ping_loop;

/// Signals the run path may queue before it starts dropping them.
pub(super) const QUEUE: usize = 1024;
/// How often due rows are looked for when nothing happened here (rows another replica
/// recorded and could not deliver, retries after a restart).
const POLL: Duration = Duration::from_secs(5);
/// How often the fleet's health is checked for overdue jobs.
const OVERDUE_CHECK: Duration = Duration::from_secs(30);
/// The longest shutdown waits to record the alerts still queued.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(2);
/// How often settled rows past the retention are deleted.
const PURGE: Duration = Duration::from_secs(3600);

/// The alerts' task's configuration.
pub(super) struct Alerting {
    pub(super) webhook: Target,
    pub(super) client: HttpClient,
    pub(super) store: AlertStore,
    /// `alert_after_failures` of each job that sets one (default 1).
    pub(super) after_failures: BTreeMap<String, u32>,
    /// Settled rows are kept as long as the history (`retention.keep_days`; `None`:
    /// forever), with the history's batch size.
    pub(super) keep: Option<(chrono::Duration, u32)>,
}

impl Shared {
    /// Tell the alerts' task that the system paused `job` (`note`: why).
    pub(super) fn alert_paused(&self, job: &str, note: &str) {
        if let Some(tx) = &self.alerts {
            crate::alert::offer(
                tx,
                "alert",
                Signal::Paused {
                    job: job.to_owned(),
                    note: note.to_owned(),
                    at: self.clock.now(),
                },
            );
        }
    }
}

/// The alerts' task: record events, deliver what is due, until shutdown.
pub(super) async fn alert_loop(shared: Arc<Shared>, mut rx: mpsc::Receiver<Signal>, a: Alerting) {
    let mut next_poll = Instant::now();
    let mut next_health = Instant::now() + OVERDUE_CHECK;
    let mut next_purge = Instant::now() + OVERDUE_CHECK;
    tracing::info!(webhook_host = %a.webhook.host(), "alerts on");
    loop {
        let wake = next_poll.min(next_health);
        let step = async {
            // Whether to look for due rows now: an event was recorded here, or it is time.
            let look = tokio::select! {
                signal = rx.recv() => match signal {
                    Some(signal) => match record(&shared, &a, signal).await {
                        Ok(recorded) => recorded,
                        Err(e) => {
                            tracing::warn!(error = %e, "could not record an alert");
                            false
                        }
                    },
                    // The scheduler is gone.
                    None => return false,
                },
                _ = tokio::time::sleep_until(wake) => true,
            };
            if Instant::now() >= next_health {
                next_health = Instant::now() + OVERDUE_CHECK;
                if let Err(e) = record_overdue(&shared, &a).await {
                    tracing::warn!(error = %e, "could not check for overdue jobs");
                }
            }
            if Instant::now() >= next_purge {
                next_purge = Instant::now() + PURGE;
                purge(&shared, &a).await;
            }
            // Most run ends are no event (a success with nothing to recover): they cost the
            // one read that says so, not a look for due rows as well.
            if look || Instant::now() >= next_poll {
                next_poll = Instant::now() + deliver_due(&shared, &a).await;
            }
            true
        };
        // Shutdown does not wait for a receiver: an attempt cut short is tried again (by
        // another replica, or after a restart) once its claim lapses.
        tokio::select! {
            _ = shared.stop_firing.cancelled() => break,
            go_on = step => if !go_on { return },
        }
    }
    // The events already queued are recorded (not sent) for the rest of the fleet, or this
    // replica's next start, to deliver; bounded, so shutdown keeps its budget.
    let drain = async {
        while let Ok(signal) = rx.try_recv() {
            if let Err(e) = record(&shared, &a, signal).await {
                tracing::warn!(error = %e, "could not record an alert at shutdown");
            }
        }
    };
    if tokio::time::timeout(SHUTDOWN_DRAIN, drain).await.is_err() {
        tracing::warn!("alerts still queued at shutdown were dropped");
    }
}

/// Turn one signal into its delivery row, if it is an event; returns whether it was.
async fn record(shared: &Shared, a: &Alerting, signal: Signal) -> Result<bool> {
    match signal {
        Signal::Paused { job, note, at } => {
            let key = format!("paused:{job}:{}", at.timestamp_millis());
            let alert = Alert::new(
                AlertEvent::Paused,
                &job,
                None,
                Some(note),
                at,
                &shared.instance,
            );
            a.store
                .record(&key, "paused", &job, &alert.to_json())
                .await?;
            Ok(true)
        }
        Signal::Ended {
            job,
            execution_id,
            trigger,
            status,
            message,
            at,
            retry_follows,
        } => {
            match status {
                RunStatus::Succeeded => {
                    // A recovery answers the job's newest alert, and is keyed by it: two
                    // replicas that see two successes after one failure record one.
                    match a.store.newest_of(&job).await? {
                        Some((key, event)) if event == "failure" || event == "overdue" => {
                            let alert = Alert::new(
                                AlertEvent::Recovery,
                                &job,
                                Some(execution_id),
                                None,
                                at,
                                &shared.instance,
                            );
                            let key = format!("recovery:{key}");
                            a.store
                                .record(&key, "recovery", &job, &alert.to_json())
                                .await?;
                            Ok(true)
                        }
                        _ => Ok(false),
                    }
                }
                RunStatus::Failed | RunStatus::TimedOut if !retry_follows => {
                    if !enough_failures(shared, a, &job, execution_id, trigger).await? {
                        return Ok(false);
                    }
                    let alert = Alert::new(
                        AlertEvent::Failure,
                        &job,
                        Some(execution_id),
                        message,
                        at,
                        &shared.instance,
                    );
                    let key = format!("failure:{execution_id}");
                    a.store
                        .record(&key, "failure", &job, &alert.to_json())
                        .await?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        }
    }
}

/// Whether the final failure `execution_id` of `job` makes `alert_after_failures`
/// consecutive failed ticks (counted up to that run: the next tick may have started).
async fn enough_failures(
    shared: &Shared,
    a: &Alerting,
    job: &str,
    execution_id: i64,
    trigger: Trigger,
) -> Result<bool> {
    let n = a.after_failures.get(job).copied().unwrap_or(1);
    if n <= 1 {
        return Ok(true);
    }
    if matches!(trigger, Trigger::Manual | Trigger::Backfill { .. }) {
        return Ok(false);
    }
    let Some(slot) = shared.slots.get(job) else {
        return Ok(false);
    };
    let attempts = slot.policy().retry_attempts.saturating_add(1);
    let statuses = shared
        .store
        .tick_statuses_up_to(job, n, attempts, Some(execution_id))
        .await?;
    Ok(statuses.len() >= n as usize
        && statuses
            .iter()
            .all(|s| matches!(s, ExecutionStatus::Failed)))
}

/// Record an `overdue` event for each job the fleet's health finds overdue, keyed by its
/// missed tick: every replica computes the same key, one row results.
async fn record_overdue(shared: &Arc<Shared>, a: &Alerting) -> Result<()> {
    let health = SchedulerHandle {
        shared: shared.clone(),
    }
    .health()
    .await?;
    for job in health.overdue_jobs() {
        let Some(tick) = job.missed_tick else {
            continue;
        };
        let key = format!("overdue:{}:{}", job.name, tick.timestamp());
        let message = format!(
            "no successful run since the tick of {} (grace {} s)",
            tick.to_rfc3339(),
            job.overdue_after.as_secs()
        );
        let at = job.overdue_since.unwrap_or(health.checked_at);
        let alert = Alert::new(
            AlertEvent::Overdue,
            &job.name,
            None,
            Some(message),
            at,
            &shared.instance,
        );
        a.store
            .record(&key, "overdue", &job.name, &alert.to_json())
            .await?;
    }
    Ok(())
}

/// Delete settled rows older than the history is kept.
async fn purge(shared: &Shared, a: &Alerting) {
    let Some((keep, batch)) = a.keep else { return };
    let cutoff = (shared.clock.now() - keep).timestamp_millis();
    loop {
        match a.store.purge_batch(cutoff, batch).await {
            Ok(n) if n < u64::from(batch.max(1)) => return,
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => {
                tracing::warn!(error = %e, "could not purge old alerts; will retry next interval");
                return;
            }
        }
    }
}
