//! Which open runs are dead: the one judge of runs left open by processes that stopped,
//! used by claims (under the job's lease) and by the start-up sweep.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::identity::this_host;
use super::shared::Shared;
use super::slot::Slot;
use crate::error::Result;
use crate::observe::RunsAbandoned;
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
            shared.observers.abandoned(&RunsAbandoned {
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
    host == this_host() && pid.parse::<u32>().is_ok_and(|pid| !process_alive(pid))
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
