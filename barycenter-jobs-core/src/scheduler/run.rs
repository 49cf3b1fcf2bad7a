//! The run path: claim, record the start, run with a timeout, record the end, release.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Shared, Slot};
use crate::error::{Error, Result};
use crate::job::{JobContext, JobError, Trigger};
use crate::lease::{ClaimKind, Lease};
use crate::store::{NewExecution, Outcome};

use super::handle::TriggeredRun;

/// How long a cancelled job gets to notice its token before its future is dropped.
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

/// A run whose start is claimed and recorded, ready to execute.
pub(super) struct Prepared {
    shared: Arc<Shared>,
    name: String,
    execution_id: i64,
    trigger: Trigger,
    lease: Option<Lease>,
    running: Running,
    done: Option<oneshot::Sender<()>>,
}

impl Prepared {
    /// A handle to wait for this run's end.
    pub(super) fn handle(&mut self) -> TriggeredRun {
        let (tx, rx) = oneshot::channel();
        self.done = Some(tx);
        TriggeredRun {
            execution_id: self.execution_id,
            done: rx,
            store: self
                .shared
                .record_history
                .then(|| self.shared.store.clone()),
        }
    }

    /// Run the job and record its end; waiters are woken once the row is written.
    pub(super) async fn execute(self) {
        let Prepared {
            shared,
            name,
            execution_id,
            trigger,
            lease,
            running,
            done,
        } = self;
        let span = tracing::info_span!(
            "job_run",
            job = %name,
            execution_id,
            trigger = trigger.as_str(),
        );
        run_and_record(shared, &name, execution_id, trigger, lease)
            .instrument(span)
            .await;
        drop(running);
        drop(done);
    }
}

/// Start a run of `slot` and return once its start is recorded; the run goes on in a task
/// of the scheduler's tracker.
pub(super) async fn start(
    shared: &Arc<Shared>,
    slot: &Slot,
    trigger: Trigger,
) -> Result<TriggeredRun> {
    let mut prepared = begin(shared, slot, trigger).await?;
    let handle = prepared.handle();
    shared.tracker.spawn(prepared.execute());
    Ok(handle)
}

/// Claim a run of `slot`: no overlap in this process, the job's lease when coordinating,
/// runs abandoned by dead processes closed, and the start recorded.
pub(super) async fn begin(shared: &Arc<Shared>, slot: &Slot, trigger: Trigger) -> Result<Prepared> {
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
    Ok(Prepared {
        shared: shared.clone(),
        name,
        execution_id,
        trigger,
        lease,
        running,
        done: None,
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
            .finish_timed(execution_id, outcome, shared.clock.now(), Some(duration))
            .await
        {
            Ok(updated) => {
                if !updated {
                    tracing::warn!("run was already closed (lease lost?); its row is left as is");
                }
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
    // A token of its own (not a child of `cancel_runs`: thousands of children registering
    // with one parent contend on its lock); shutdown cancels it below.
    let cancel = CancellationToken::new();
    let ctx = JobContext::new(
        shared.db.clone(),
        trigger,
        execution_id,
        shared.clock.clone(),
        cancel.clone(),
    )
    .with_time_source(shared.time_source);
    tracing::info!("job started");
    // Polled in this task rather than spawned: one task per run. A panic is caught here.
    let run = AssertUnwindSafe(slot.job.run(ctx)).catch_unwind();
    tokio::pin!(run);

    let deadline = tokio::time::sleep(slot.timeout);
    tokio::pin!(deadline);
    // Only a run holding a lease needs the renewal timer.
    let renew_every = shared.lease_ttl / 3;
    let mut renew = lease
        .map(|_| tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every));

    loop {
        tokio::select! {
            result = &mut run => return outcome_of(result),
            _ = &mut deadline => {
                cancel.cancel();
                // A job that ignores its token is dropped (cancelled) after the grace period.
                let _ = tokio::time::timeout(CANCEL_GRACE, &mut run).await;
                return Outcome::Failed {
                    message: format!("timed out after {}s", slot.timeout.as_secs_f64()),
                };
            }
            _ = shared.cancel_runs.cancelled() => {
                // Shutdown past its grace period.
                cancel.cancel();
                return match tokio::time::timeout(CANCEL_GRACE, &mut run).await {
                    Ok(Ok(Ok(out))) => Outcome::Succeeded { records_processed: out.records_processed },
                    _ => Outcome::Cancelled {
                        message: "cancelled: scheduler shut down before the run finished".into(),
                    },
                };
            }
            _ = async { renew.as_mut().expect("guarded").tick().await }, if renew.is_some() => {
                let (Some(leases), Some(lease)) = (&shared.leases, lease) else { continue };
                match leases.renew(lease, shared.clock.now(), shared.lease_ttl).await {
                    Ok(true) => {}
                    Ok(false) => {
                        // Another replica took over (we could not renew in time): stop, so the
                        // job never runs twice at once.
                        cancel.cancel();
                        let _ = tokio::time::timeout(CANCEL_GRACE, &mut run).await;
                        return Outcome::Failed { message: "lease lost: another instance took over the job".into() };
                    }
                    Err(e) => tracing::warn!(error = %e, "could not renew lease; will retry"),
                }
            }
        }
    }
}

fn outcome_of(
    result: std::result::Result<
        std::result::Result<crate::JobOutput, JobError>,
        Box<dyn Any + Send>,
    >,
) -> Outcome {
    match result {
        Ok(Ok(out)) => Outcome::Succeeded {
            records_processed: out.records_processed,
        },
        Ok(Err(JobError::Cancelled)) => Outcome::Cancelled {
            message: "cancelled".into(),
        },
        Ok(Err(e)) => Outcome::Failed {
            message: e.to_string(),
        },
        Err(panic) => Outcome::Failed {
            message: format!("panicked: {}", panic_message(panic)),
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
