//! The supervision of a running run: the job's future is polled beside its timeout, the
//! scheduler's shutdown and its lease, which a task of its own renews. This is where a run
//! is stopped from outside: the place run controls hook into. How the lease is renewed, and
//! why the run stops before it could lapse, is in [`super::renew`]; the other tasks beside a
//! run are in [`super::beside`].

use std::any::Any;
use std::future::Future as _;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::FutureExt as _;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::beside::{AbortOnDrop, cancel_watch, progress_writer};
use super::bounds::instant_after;
use super::renew::{LeaseState, renew_loop, stop_at};
use super::run_log::{self, RunLog};
use super::shared::Shared;
use super::slot::Slot;
use super::stop::StopSignal;
use crate::job::{JobContext, JobError, JobOutput, Trigger};
use crate::lease::Lease;
use crate::store::Outcome;

/// A job's future's output, or its panic.
type RunResult = std::result::Result<std::result::Result<JobOutput, JobError>, Box<dyn Any + Send>>;

/// What supervision made of a run.
pub(super) struct Supervised {
    pub(super) outcome: Outcome,
    /// The records the job reported (kept for a run that did not succeed).
    pub(super) partial: Option<u64>,
    /// Stopped by its timeout (recorded as failed).
    pub(super) timed_out: bool,
    /// What it logged, when logs are captured (`run_log/`).
    pub(super) log: Option<Arc<RunLog>>,
}

/// Run the job of `slot` as run `execution_id` under its timeout, the shutdown and its
/// lease, and say how it ended. Never panics on the job's account.
pub(super) async fn run_job(
    shared: &Arc<Shared>,
    slot: &Slot,
    execution_id: i64,
    trigger: Trigger,
    lease: &Option<Lease>,
    lease_state: LeaseState,
    stop: &Arc<StopSignal>,
) -> Supervised {
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
    let progress = ctx.progress_handle();
    tracing::info!("job started");
    // Read once: a timeout changed at run time applies from the next run on.
    let timeout = slot.timeout();
    let deadline = instant_after(Instant::now(), timeout);
    // Polled in this task rather than spawned: one task per run. A panic is caught here,
    // also one raised by `run` itself before it returns its future (a hand-written impl).
    let log = RunLog::for_run(shared);
    let run = match std::panic::catch_unwind(AssertUnwindSafe(|| {
        run_log::capture(slot.job.run(ctx), log.as_ref())
    })) {
        Ok(run) => run,
        Err(panic) => {
            return Supervised {
                outcome: outcome_of(Err(panic)),
                partial: progress.get(),
                timed_out: false,
                log,
            };
        }
    };
    let mut run = AssertUnwindSafe(run).catch_unwind();
    // A first poll before anything else is armed: a run that ends in it (most runs of short
    // jobs) needs no timer, no lease watch and no select, and nothing else could have fired
    // before it (the select below polls the run first too).
    let first = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut run).poll(cx))).await;
    if let Poll::Ready(result) = first {
        return Supervised {
            outcome: outcome_of(result),
            partial: progress.get(),
            timed_out: false,
            log,
        };
    }
    let _progress = shared.record_history.then(|| {
        AbortOnDrop(tokio::spawn(progress_writer(
            shared.clone(),
            execution_id,
            progress.clone(),
        )))
    });
    // Boxed: the supervision is larger than all the rest of a run, and only runs that wait
    // need it.
    let outcome = Box::pin(supervise(
        shared,
        run,
        &cancel,
        Deadline {
            timeout,
            at: deadline,
        },
        lease,
        lease_state,
        stop,
    ))
    .await;
    Supervised {
        outcome: outcome.0,
        partial: progress.get(),
        timed_out: outcome.1,
        log,
    }
}

/// A run's timeout, and the instant it ends.
struct Deadline {
    timeout: Duration,
    at: Instant,
}

/// Drive a run that did not end in its first poll to its outcome, beside its timeout, the
/// shutdown, a stop asked from outside and its lease; the second value: whether the timeout
/// stopped it.
async fn supervise<F>(
    shared: &Arc<Shared>,
    run: F,
    cancel: &CancellationToken,
    Deadline {
        timeout,
        at: deadline,
    }: Deadline,
    lease: &Option<Lease>,
    lease_state: LeaseState,
    stop: &Arc<StopSignal>,
) -> (Outcome, bool)
where
    F: std::future::Future<Output = RunResult>,
{
    let mut timed_out = false;
    tokio::pin!(run);

    let (state_tx, mut state) = watch::channel(lease_state);
    let _renewal = lease
        .clone()
        .map(|lease| AbortOnDrop(tokio::spawn(renew_loop(shared.clone(), lease, state_tx))));
    let _cancel_watch = lease.clone().map(|lease| {
        AbortOnDrop(tokio::spawn(cancel_watch(
            shared.clone(),
            lease,
            stop.clone(),
        )))
    });
    let fence_margin = shared.lease_ttl / 5;

    let deadline = tokio::time::sleep_until(deadline);
    tokio::pin!(deadline);
    let outcome = loop {
        let fence = stop_at(*state.borrow(), fence_margin);
        tokio::select! {
            biased;
            result = &mut run => break outcome_of(result),
            _ = &mut deadline => {
                timed_out = true;
                cancel.cancel();
                // A job that ignores its token is dropped (cancelled) after the grace period.
                let _ = wind_down(&mut run, shared, &mut state).await;
                break Outcome::Failed {
                    message: format!("timed out after {}s", timeout.as_secs_f64()),
                };
            }
            _ = stop.stopped() => {
                // Cancelled from outside: the job's records so far are kept with the row.
                cancel.cancel();
                break match wind_down(&mut run, shared, &mut state).await {
                    Some(Ok(Ok(out))) => Outcome::Succeeded { records_processed: out.records_processed },
                    _ => Outcome::Cancelled { message: stop.reason_given() },
                };
            }
            _ = shared.cancel_runs.cancelled() => {
                // Shutdown past its grace period.
                cancel.cancel();
                break match wind_down(&mut run, shared, &mut state).await {
                    Some(Ok(Ok(out))) => Outcome::Succeeded { records_processed: out.records_processed },
                    _ => Outcome::Cancelled {
                        message: "cancelled: scheduler shut down before the run finished".into(),
                    },
                };
            }
            _ = sleep_until_opt(fence), if fence.is_some() => {
                cancel.cancel();
                let lost = *state.borrow() == LeaseState::Lost;
                let _ = wind_down(&mut run, shared, &mut state).await;
                break Outcome::Failed {
                    message: if lost {
                        "lease lost: another instance took over the job".into()
                    } else {
                        "stopped before its lease expired: the lease could not be renewed (database unreachable or lease row locked)".into()
                    },
                };
            }
            _ = state.changed(), if lease.is_some() => {}
        }
    };
    (outcome, timed_out)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// After cancelling a run: wait for it to return for the cancel grace, but never past a
/// tenth of the TTL before its lease would expire; `None` if it had to be dropped.
async fn wind_down<F>(
    run: &mut std::pin::Pin<&mut F>,
    shared: &Shared,
    state: &mut watch::Receiver<LeaseState>,
) -> Option<RunResult>
where
    F: std::future::Future<Output = RunResult>,
{
    let grace_end = instant_after(Instant::now(), shared.cancel_grace);
    let leased = *state.borrow() != LeaseState::NotLeased;
    loop {
        let hard_stop = stop_at(*state.borrow(), shared.lease_ttl / 10)
            .map_or(grace_end, |at| at.min(grace_end));
        tokio::select! {
            biased;
            result = run.as_mut() => return Some(result),
            _ = tokio::time::sleep_until(hard_stop) => return None,
            _ = state.changed(), if leased => {}
        }
    }
}

fn outcome_of(result: RunResult) -> Outcome {
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

pub(super) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::scheduler::claim::claim;
    use crate::scheduler::testing::{Script, parts, started};

    const SECS: fn(u64) -> Duration = Duration::from_secs;

    /// Supervise one claimed run of `job` and say how it ended.
    async fn supervised(job: Script, timeout: Duration, grace: Duration) -> Supervised {
        let (handle, _dir) = started(job, timeout, grace).await;
        let (shared, slot) = parts(&handle);
        let claimed = claim(&shared, &slot, Trigger::Manual).await.unwrap();
        run_job(
            &shared,
            &slot,
            claimed.execution_id,
            Trigger::Manual,
            &claimed.lease,
            claimed.lease_state,
            claimed.running.stop_signal(),
        )
        .await
    }

    #[tokio::test]
    async fn a_run_past_its_timeout_is_cancelled_with_its_progress() {
        let job = Script::new("slow", |ctx| async move {
            ctx.report_processed(7);
            ctx.cancellation().cancelled().await;
            Err(JobError::Cancelled)
        });
        let out = supervised(job, SECS(1), SECS(5)).await;
        assert!(out.timed_out);
        assert_eq!(out.partial, Some(7));
        assert!(
            matches!(&out.outcome, Outcome::Failed { message } if message == "timed out after 1s"),
            "{:?}",
            out.outcome
        );
    }

    #[tokio::test]
    async fn a_run_that_ignores_its_cancellation_is_dropped_after_the_grace() {
        let dropped = Arc::new(AtomicBool::new(false));
        let seen = dropped.clone();
        let job = Script::new("stubborn", move |_| {
            let seen = seen.clone();
            async move {
                struct Flag(Arc<AtomicBool>);
                impl Drop for Flag {
                    fn drop(&mut self) {
                        self.0.store(true, Ordering::SeqCst);
                    }
                }
                let _flag = Flag(seen);
                std::future::pending::<()>().await;
                Ok(JobOutput::processed(0))
            }
        });
        let out = supervised(job, SECS(1), SECS(1)).await;
        assert!(out.timed_out);
        assert!(dropped.load(Ordering::SeqCst), "its future was dropped");
    }

    #[tokio::test]
    async fn a_panic_is_the_runs_failure() {
        let job = Script::new("panics", |_| async { panic!("job blew up") });
        let out = supervised(job, SECS(60), SECS(5)).await;
        assert!(!out.timed_out);
        assert!(
            matches!(&out.outcome, Outcome::Failed { message } if message == "panicked: job blew up"),
            "{:?}",
            out.outcome
        );
    }
}
