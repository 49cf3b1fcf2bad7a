//! The run path: claim, record the start, run with a timeout, record the end, release.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::Instrument;

use super::{Shared, Slot};
use crate::error::{Error, Result};
use crate::job::{JobContext, JobError, Trigger};
use crate::lease::{ClaimKind, Lease};
use crate::store::{NewExecution, Outcome};

use super::handle::TriggeredRun;

/// How long a cancelled job gets to notice its token before its task is aborted.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// Clears the slot's running flag however the run ends.
struct Running(Arc<Shared>, String);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(slot) = self.0.slots.get(&self.1) {
            slot.running.store(false, Ordering::Release);
        }
    }
}

/// Start a run of `slot` (no overlap, lease claimed when coordinating) and return once its
/// start is recorded; the run itself goes on in a task of the scheduler's tracker.
pub(super) async fn start(
    shared: &Arc<Shared>,
    slot: &Slot,
    trigger: Trigger,
) -> Result<TriggeredRun> {
    if shared.stop_firing.is_cancelled() {
        return Err(Error::ShutDown);
    }
    let name = slot.job.name().to_owned();
    if slot
        .running
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Err(Error::AlreadyRunning(name));
    }
    let running = Running(shared.clone(), name.clone());

    let now = shared.clock.now();
    let lease = match &shared.leases {
        Some(leases) => {
            let kind = match trigger.fire_time() {
                Some(tick) => ClaimKind::Tick(tick),
                None => ClaimKind::Now,
            };
            match leases
                .claim(&name, &shared.instance, kind, now, shared.lease_ttl)
                .await?
            {
                Some(lease) => Some(lease),
                None => return Err(Error::AlreadyRunning(name)),
            }
        }
        None => None,
    };

    let execution_id = if shared.record_history {
        if lease.is_some() {
            // We hold the lease, so any run of this job still open belongs to a dead process.
            match shared.store.close_abandoned(&name, None, now).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(job = %name, closed = n, "closed abandoned runs"),
                Err(e) => tracing::warn!(job = %name, error = %e, "could not close abandoned runs"),
            }
        }
        let new = NewExecution {
            job_name: name.clone(),
            started_at: now,
            trigger,
            instance: Some(shared.instance.clone()),
        };
        match shared.store.start(&new).await {
            Ok(id) => id,
            Err(e) => {
                if let (Some(leases), Some(lease)) = (&shared.leases, &lease) {
                    let _ = leases.release(lease).await;
                }
                return Err(e);
            }
        }
    } else {
        // History off: ids only need to be unique within this process.
        shared.local_ids.fetch_add(1, Ordering::Relaxed) + 1
    };
    if let (Some(leases), Some(lease)) = (&shared.leases, &lease) {
        let _ = leases.set_execution(lease, execution_id).await;
    }

    let (done_tx, done_rx) = oneshot::channel();
    let span = tracing::info_span!(
        "job_run",
        job = %name,
        execution_id,
        trigger = trigger.as_str(),
    );
    let task_shared = shared.clone();
    let name_for_task = name.clone();
    shared.tracker.spawn(
        async move {
            let name = name_for_task;
            run_and_record(task_shared, &name, execution_id, trigger, lease).await;
            drop(running);
            drop(done_tx);
        }
        .instrument(span),
    );
    Ok(TriggeredRun {
        execution_id,
        done: done_rx,
        store: shared.record_history.then(|| shared.store.clone()),
    })
}

async fn run_and_record(
    shared: Arc<Shared>,
    job_name: &str,
    execution_id: i64,
    trigger: Trigger,
    lease: Option<Lease>,
) {
    let started = Instant::now();
    let outcome = match shared.slots.get(job_name) {
        Some(slot) => run_job(&shared, slot, execution_id, trigger, lease.as_ref()).await,
        None => Outcome::Failed {
            message: "internal error: unknown job".into(),
        },
    };
    let duration = started.elapsed();

    match &outcome {
        Outcome::Succeeded { records_processed } => tracing::info!(
            records_processed,
            duration_ms = duration.as_millis() as u64,
            "job succeeded"
        ),
        Outcome::Failed { message } => tracing::error!(
            error = %message,
            duration_ms = duration.as_millis() as u64,
            "job failed"
        ),
        Outcome::Cancelled { message } | Outcome::Abandoned { message } => tracing::warn!(
            reason = %message,
            duration_ms = duration.as_millis() as u64,
            "job cancelled"
        ),
    }

    if shared.record_history {
        record(&shared, execution_id, &outcome, duration).await;
    }
    if let (Some(leases), Some(lease)) = (&shared.leases, &lease)
        && let Err(e) = leases.release(lease).await
    {
        // Not fatal: the lease lapses after its TTL.
        tracing::warn!(job = %job_name, error = %e, "could not release lease");
    }
}

/// Write the end of the run, retrying for a while if the database is unavailable. The
/// outcome is in the trace either way.
async fn record(shared: &Shared, execution_id: i64, outcome: &Outcome, duration: Duration) {
    let mut backoff = Duration::from_millis(200);
    for attempt in 1..=6 {
        match shared
            .store
            .finish(execution_id, outcome, shared.clock.now())
            .await
        {
            Ok(updated) => {
                if !updated {
                    tracing::warn!("run was already closed (lease lost?); its row is left as is");
                }
                let _ = shared.store.set_duration(execution_id, duration).await;
                return;
            }
            Err(e) => {
                tracing::warn!(attempt, error = %e, "could not record the end of the run");
                if attempt == 6 {
                    tracing::error!(
                        ?outcome,
                        "giving up recording the end of the run; it will be closed as abandoned later"
                    );
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn run_job(
    shared: &Arc<Shared>,
    slot: &Slot,
    execution_id: i64,
    trigger: Trigger,
    lease: Option<&Lease>,
) -> Outcome {
    let span = tracing::Span::current();
    let cancel = shared.cancel_runs.child_token();
    let ctx = JobContext::new(
        shared.db.clone(),
        trigger,
        execution_id,
        shared.clock.clone(),
        cancel.clone(),
    );
    let job = slot.job.clone();
    tracing::info!("job started");
    let mut task = tokio::spawn(async move { job.run(ctx).await }.instrument(span));

    let deadline = tokio::time::sleep(slot.timeout);
    tokio::pin!(deadline);
    let renew_every = shared.lease_ttl / 3;
    let mut renew =
        tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);

    loop {
        tokio::select! {
            joined = &mut task => return outcome_of(joined),
            _ = &mut deadline => {
                cancel.cancel();
                stop(&mut task).await;
                return Outcome::Failed {
                    message: format!("timed out after {}s", slot.timeout.as_secs_f64()),
                };
            }
            _ = shared.cancel_runs.cancelled() => {
                // Shutdown past its grace period: the token already fired for the job.
                return match tokio::time::timeout(CANCEL_GRACE, &mut task).await {
                    Ok(Ok(Ok(out))) => Outcome::Succeeded { records_processed: out.records_processed },
                    _ => {
                        task.abort();
                        Outcome::Cancelled { message: "cancelled: scheduler shut down before the run finished".into() }
                    }
                };
            }
            _ = renew.tick(), if lease.is_some() => {
                let (Some(leases), Some(lease)) = (&shared.leases, lease) else { continue };
                match leases.renew(lease, shared.clock.now(), shared.lease_ttl).await {
                    Ok(true) => {}
                    Ok(false) => {
                        // Another replica took over (we could not renew in time): stop, so the
                        // job never runs twice at once.
                        cancel.cancel();
                        stop(&mut task).await;
                        return Outcome::Failed { message: "lease lost: another instance took over the job".into() };
                    }
                    Err(e) => tracing::warn!(error = %e, "could not renew lease; will retry"),
                }
            }
        }
    }
}

/// Give a cancelled job a moment to return on its own, then abort its task.
async fn stop(task: &mut tokio::task::JoinHandle<std::result::Result<crate::JobOutput, JobError>>) {
    if tokio::time::timeout(CANCEL_GRACE, &mut *task)
        .await
        .is_err()
    {
        task.abort();
    }
}

fn outcome_of(
    joined: std::result::Result<
        std::result::Result<crate::JobOutput, JobError>,
        tokio::task::JoinError,
    >,
) -> Outcome {
    match joined {
        Ok(Ok(out)) => Outcome::Succeeded {
            records_processed: out.records_processed,
        },
        Ok(Err(JobError::Cancelled)) => Outcome::Cancelled {
            message: "cancelled".into(),
        },
        Ok(Err(e)) => Outcome::Failed {
            message: e.to_string(),
        },
        Err(e) if e.is_panic() => Outcome::Failed {
            message: format!("panicked: {}", panic_message(e.into_panic())),
        },
        Err(_) => Outcome::Failed {
            message: "aborted".into(),
        },
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}
