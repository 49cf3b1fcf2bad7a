//! Recovery after a crash: runs left open by dead processes are closed as abandoned, and a
//! tick missed while no scheduler ran is caught up once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{MisfirePolicy, Shared, Slot, run};
use crate::error::{Error, Result};
use crate::job::Trigger;
use crate::lease::ClaimKind;
use crate::store::Execution;

/// Close the open runs of `slot`'s job that belong to dead processes; the one place that
/// decides which open runs are dead.
///
/// - `lease_held`: this process holds the job's lease, which proves nobody else runs it, so
///   every open run of the job is dead.
/// - otherwise (coordination off), a run is dead when no process can still be running it,
///   judged without trusting the `instance` label (operators may give several processes
///   one): it outlived the longest run the job allows (timeout plus cancel grace, plus a
///   minute: every runner stops its run by then and records it), or its label is a
///   default `HOST:PID` of this host whose process is gone. A younger run of any other
///   label may be a live process's, and is left for a later sweep.
///
/// Returns false when the database could not be asked (open runs may remain).
pub(super) async fn close_abandoned(
    shared: &Shared,
    slot: &Slot,
    lease_held: bool,
    now: DateTime<Utc>,
) -> bool {
    let name = slot.job.name();
    let closed: Result<u64> = if lease_held {
        shared.store.close_abandoned(name, None, now).await
    } else {
        match shared.store.open_runs(name).await {
            Ok(open) => {
                let longest = chrono::Duration::from_std(
                    slot.timeout() + shared.cancel_grace + Duration::from_secs(60),
                )
                .unwrap_or(chrono::Duration::MAX);
                let dead: Vec<i64> = open
                    .iter()
                    .filter(|run| now - run.started_at > longest || is_dead_process(run))
                    .map(|run| run.id)
                    .collect();
                shared.store.close_abandoned_ids(&dead, now).await
            }
            Err(e) => Err(e),
        }
    };
    match closed {
        Ok(0) => true,
        Ok(n) => {
            tracing::warn!(job = %name, closed = n, "closed runs abandoned by a dead process");
            shared.observers.abandoned(&crate::observe::RunsAbandoned {
                job: name,
                count: n,
            });
            true
        }
        Err(e) => {
            tracing::warn!(job = %name, error = %e, "could not check for abandoned runs");
            false
        }
    }
}

/// Whether an open run's label is a default `HOST:PID` (unique to one process) of this host
/// whose process is gone.
fn is_dead_process(run: &Execution) -> bool {
    let Some(instance) = run.instance.as_deref() else {
        return false; // written by another tool: not ours to judge
    };
    let Some((host, pid)) = instance.rsplit_once(':') else {
        return false;
    };
    // `PID` or `PID/N` (the Nth scheduler of that process).
    let pid = pid.split_once('/').map_or(pid, |(pid, _)| pid);
    host == super::this_host() && pid.parse::<u32>().is_ok_and(|pid| !process_alive(pid))
}

/// Whether a process with this id runs on this host (Linux: `/proc/PID`); elsewhere we
/// cannot tell and answer yes, which keeps the run open.
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// How long a run of a job this scheduler does not know may stay open before a starting
/// scheduler closes it as abandoned: a day, far longer than a run with the default timeout
/// (an hour), so that in a fleet whose replicas register different jobs a live run of
/// another replica's job is not closed; rows left by a module the host replaced (its old
/// hand-written loop, a removed plugin) are closed instead of staying `running` forever.
pub const UNKNOWN_JOB_RUN_BOUND: chrono::Duration = chrono::Duration::hours(24);

/// At start-up: close runs left open by processes that died, for every job nobody is
/// running now, and open runs of unknown jobs older than [`UNKNOWN_JOB_RUN_BOUND`].
pub(super) async fn close_stale_runs(shared: &Shared) {
    let now = shared.clock.now();
    if shared.record_history {
        let known: Vec<&str> = shared.slots.keys().map(String::as_str).collect();
        match shared
            .store
            .close_unknown_abandoned(&known, now - UNKNOWN_JOB_RUN_BOUND, now)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                closed = n,
                "closed runs of jobs this scheduler does not know, open for more than a day, as abandoned"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "could not check for abandoned runs of unknown jobs")
            }
        }
    }
    for slot in shared.slots.values() {
        let Some(leases) = &shared.leases else {
            let _ = close_abandoned(shared, slot, false, now).await;
            continue;
        };
        match leases
            .claim(
                slot.job.name(),
                &shared.holder,
                ClaimKind::Now,
                shared.lease_ttl,
            )
            .await
        {
            Ok(Some(claimed)) => {
                // Always looked for here, whatever the lease says: rows may be left open by
                // versions that kept no such record, or by another tool.
                let _ = if close_abandoned(shared, slot, true, now).await {
                    leases.release(&claimed.lease).await
                } else {
                    leases.release_unclean(&claimed.lease).await
                };
            }
            Ok(None) => {} // somebody is running it right now
            Err(e) => {
                tracing::warn!(job = %slot.job.name(), error = %e, "could not check for abandoned runs")
            }
        }
    }
}

/// Run once each enabled job whose latest tick is newer than its last recorded run.
pub(super) async fn catch_up(shared: &Arc<Shared>) {
    let now = shared.clock.now();
    for (name, slot) in &shared.slots {
        if !slot.fires() || slot.misfire == MisfirePolicy::Skip {
            continue;
        }
        let Some(tick) = slot.schedule().latest_at_or_before(now) else {
            continue;
        };
        let last = match shared.store.latest(name).await {
            Ok(Some(last)) => last,
            Ok(None) => continue, // never ran: nothing was missed
            Err(e) => {
                tracing::warn!(job = %name, error = %e, "cannot read history for catch-up");
                continue;
            }
        };
        if last.started_at >= tick {
            continue;
        }
        tracing::info!(job = %name, missed_tick = %tick, last_run = %last.started_at, "catching up a missed tick");
        match run::start(shared, slot, Trigger::CatchUp { fire_time: tick }).await {
            Ok(_) | Err(Error::AlreadyRunning(_)) => {}
            Err(e) => tracing::warn!(job = %name, error = %e, "catch-up run not started"),
        }
    }
}
