//! An operator's cancel of one running run (`cancelRun`): whichever replica runs it stops it
//! within about two seconds. The run in this process is stopped at once; any other is asked
//! through its job's lease row ([`LeaseStore::request_cancel`]), which the run's supervision
//! reads once a second while it lasts (see [`super::beside`]). The run ends `cancelled`,
//! with the records it reported and the principal in its message, and gives its lease back
//! as any run does. Every attempt is audited (`cancel`), refusals included.
//!
//! [`LeaseStore::request_cancel`]: crate::LeaseStore::request_cancel

use std::sync::Arc;

use super::shared::Shared;
use crate::error::{Error, Result};
use crate::settings::{AuditAction, NewAuditEntry};

/// Cancel run `execution_id` as `actor`; the job's name when the cancel was asked of the
/// run. [`Error::ExecutionNotFound`] for an id the history does not hold,
/// [`Error::RunNotRunning`] for a run that ended or that no replica holds.
pub(super) async fn cancel_run(
    shared: &Arc<Shared>,
    execution_id: i64,
    actor: &str,
) -> Result<String> {
    let result = ask(shared, execution_id, actor).await;
    let (job, detail) = match &result {
        Ok(job) => (job.clone(), format!("cancel of run {execution_id} asked")),
        Err(e) => {
            let detail = if e.is_invalid_input() {
                format!("refused: {e}")
            } else {
                "failed: internal error".to_owned()
            };
            (String::new(), detail)
        }
    };
    shared
        .audit(NewAuditEntry {
            actor: actor.to_owned(),
            action: AuditAction::Cancel,
            job_name: job,
            detail: Some(detail),
        })
        .await;
    result
}

async fn ask(shared: &Arc<Shared>, execution_id: i64, actor: &str) -> Result<String> {
    let reason = format!("cancelled by {actor}");
    if !shared.record_history {
        // Ids are this process's own: only a run here can be meant.
        for (name, slot) in &shared.slots {
            if slot.stop_execution(execution_id, &reason) {
                return Ok(name.clone());
            }
        }
        return Err(Error::ExecutionNotFound(execution_id));
    }
    let row = shared
        .store
        .get(execution_id)
        .await?
        .ok_or(Error::ExecutionNotFound(execution_id))?;
    if row.completed_at.is_some() {
        return Err(Error::RunNotRunning {
            id: execution_id,
            reason: format!("it ended ({})", row.status.as_str()),
        });
    }
    // Here: stopped now, without the database's round trip.
    if let Some(slot) = shared.slots.get(&row.job_name)
        && slot.stop_execution(execution_id, &reason)
    {
        return Ok(row.job_name);
    }
    let asked = match &shared.leases {
        Some(leases) => {
            leases
                .request_cancel(&row.job_name, Some(execution_id), &reason)
                .await?
        }
        None => false,
    };
    if asked {
        Ok(row.job_name)
    } else {
        Err(Error::RunNotRunning {
            id: execution_id,
            reason: "no scheduler holds it (it is closed as abandoned by the next run of its job)"
                .to_owned(),
        })
    }
}
