//! Backfills: every tick of the job's schedule in force within a past range, run once,
//! oldest first, one at a time.
//!
//! The request is a runtime setting (`backfill_from`, `backfill_to`, `backfill_by` on the
//! job's settings row: audited, seen by every replica within 2 s, dropped by a pause, a
//! reset or a cancel). The progress is on the job's lease row: the backfill tick claimed
//! last ([`ClaimKind::Backfill`](crate::lease::ClaimKind::Backfill) takes only a newer one,
//! and only while the lease is free), so each tick runs once across the fleet and never
//! beside another run of the job. The backfill advances when a run of the job ends, on the
//! replica that ran it, and any replica's look-out for waiting work (see `takeover`) goes
//! on with it if that replica died. The replica that runs the last tick ends the backfill
//! (a conditional write, audited as `system`).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::bounds::MAX_BACKFILL_TICKS;
use super::claim::claim;
use super::identity::SYSTEM;
use super::shared::Shared;
use super::slot::Slot;
use crate::error::{Error, Result};
use crate::job::Trigger;
use crate::schedule::Schedule;
use crate::settings::{AuditAction, Backfill, NewAuditEntry};

/// The ticks of `schedule` within `[from, to]`, oldest first, at most `most`.
pub(super) fn ticks(
    schedule: &Schedule,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    most: usize,
) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    // `next_after` is strictly after: start a second early so that `from` itself counts.
    let mut at = from - chrono::Duration::seconds(1);
    while out.len() < most {
        match schedule.next_after(at) {
            Some(tick) if tick <= to => {
                out.push(tick);
                at = tick;
            }
            _ => break,
        }
    }
    out
}

/// Refuse a backfill of `slot` over `[from, to]` that cannot run as asked (by `now`): an
/// empty or future range, no tick in it, more than [`MAX_BACKFILL_TICKS`], or a paused job.
/// Returns the ticks otherwise.
pub(super) fn validate(
    slot: &Slot,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>> {
    let refuse = |key: &str, reason: String| {
        Err(Error::InvalidSetting {
            key: key.to_owned(),
            reason,
        })
    };
    if from > to {
        return refuse(
            "from",
            format!("{} is after `to` ({})", from.to_rfc3339(), to.to_rfc3339()),
        );
    }
    if to > now {
        return refuse(
            "to",
            format!(
                "{} is in the future: a backfill runs past ticks",
                to.to_rfc3339()
            ),
        );
    }
    if slot.is_paused() {
        return refuse("backfill", "the job is paused: resume it first".to_owned());
    }
    let settings = slot.settings();
    let ticks = ticks(&settings.schedule, from, to, MAX_BACKFILL_TICKS + 1);
    if ticks.is_empty() {
        return refuse(
            "backfill",
            format!(
                "no tick of the schedule {:?} falls within the range",
                settings.schedule.expression()
            ),
        );
    }
    if ticks.len() > MAX_BACKFILL_TICKS {
        return refuse(
            "to",
            format!(
                "the range holds more than {MAX_BACKFILL_TICKS} ticks of {:?}, the most one backfill runs",
                settings.schedule.expression()
            ),
        );
    }
    Ok(ticks)
}

/// Go on with `slot`'s backfill, if one is in progress, in a task of the scheduler's.
/// Called when a backfill is asked for, when any run of the job ends, and by the look-out
/// for waiting work; cheap when there is none.
pub(super) fn advance(shared: &Arc<Shared>, slot: &Arc<Slot>) {
    if !slot.is_backfilling() || shared.stop_firing.is_cancelled() {
        return;
    }
    let (shared2, slot) = (shared.clone(), slot.clone());
    shared.tracker.spawn(async move {
        if let Err(e) = step(&shared2, &slot).await {
            // The look-out for waiting work tries again.
            tracing::warn!(job = %slot.job.name(), error = %e, "backfill not advanced");
        }
    });
}

/// Claim and run the backfill's next tick, or end the backfill when none is left and no run
/// of the job holds its lease.
async fn step(shared: &Arc<Shared>, slot: &Arc<Slot>) -> Result<()> {
    let Some(backfill) = slot.runtime().backfill else {
        return Ok(());
    };
    let name = slot.job.name();
    let (last, held) = match &shared.leases {
        Some(leases) => leases.backfill_state(name).await?,
        None => (slot.backfill_tick(), slot.is_running()),
    };
    let schedule = slot.settings().schedule;
    let from = match last {
        Some(last) => (last + chrono::Duration::seconds(1)).max(backfill.from),
        None => backfill.from,
    };
    let Some(tick) = ticks(&schedule, from, backfill.to, 1).into_iter().next() else {
        if !held && !slot.is_running() {
            finish(shared, slot, &backfill).await?;
        }
        return Ok(());
    };
    match claim(shared, slot, Trigger::Backfill { fire_time: tick }).await {
        Ok(claimed) => {
            if shared.leases.is_none() {
                slot.set_backfill_tick(Some(tick));
            }
            tracing::info!(job = %name, %tick, "running a backfill tick");
            claimed.execute().await;
            Ok(())
        }
        // Another run holds the lease (it advances the backfill when it ends), or another
        // replica took this tick.
        Err(Error::AlreadyRunning(_) | Error::ShutDown) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The backfill's last tick has run: drop the request, unless a newer one replaced it
/// meanwhile; the replica whose write ends it records it.
async fn finish(shared: &Arc<Shared>, slot: &Arc<Slot>, backfill: &Backfill) -> Result<()> {
    let name = slot.job.name();
    let Some(store) = &shared.settings else {
        let mut runtime = slot.runtime();
        runtime.backfill = None;
        shared.apply(slot, runtime);
        return Ok(());
    };
    if !store
        .finish_backfill(name, backfill.from, backfill.to)
        .await?
    {
        return Ok(());
    }
    tracing::info!(job = %name, from = %backfill.from, to = %backfill.to, "backfill done");
    shared
        .audit(NewAuditEntry {
            actor: SYSTEM.to_owned(),
            action: AuditAction::Backfill,
            job_name: name.to_owned(),
            detail: Some(format!(
                "backfill from {} to {} done",
                backfill.from.to_rfc3339(),
                backfill.to.to_rfc3339()
            )),
        })
        .await;
    shared.apply(slot, store.get(name).await?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_ticks_of_a_range_include_both_ends_oldest_first() {
        let hourly = Schedule::parse("0 0 * * * *").unwrap();
        let at = |h| Utc.with_ymd_and_hms(2026, 12, 1, h, 0, 0).unwrap();
        assert_eq!(ticks(&hourly, at(1), at(3), 10), [at(1), at(2), at(3)]);
        assert_eq!(ticks(&hourly, at(1), at(3), 2), [at(1), at(2)]);
        let inside = at(1) + chrono::Duration::minutes(1);
        assert_eq!(ticks(&hourly, inside, at(3), 10), [at(2), at(3)]);
        assert!(ticks(&hourly, inside, inside, 10).is_empty());
    }
}
