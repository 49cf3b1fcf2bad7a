//! Delivery of recorded alerts: a due row is claimed by one replica, POSTed, and settled as
//! delivered, retried with backoff, or given up (each audited).

use std::time::Duration;

use super::{Alerting, POLL};
use crate::alert::store::Due;
use crate::scheduler::identity::SYSTEM;
use crate::scheduler::shared::Shared;
use crate::settings::{AuditAction, NewAuditEntry};

/// How long a claim of one attempt lasts: past the request's timeout, so a live claimant
/// always settles its attempt before anyone else may take it.
const CLAIM_MS: i64 = 30_000;
/// Delivery is given up this long after the event.
const GIVE_UP_AFTER_MS: i64 = 10 * 60 * 1000;
/// The longest pause between two attempts.
const MAX_BACKOFF_MS: i64 = 60_000;

/// Deliver every due row this replica can claim; returns when to look again.
pub(super) async fn deliver_due(shared: &Shared, a: &Alerting) -> Duration {
    let mut soonest = POLL;
    let due = match a.store.due(20).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the alerts due");
            return POLL;
        }
    };
    for row in due {
        match a.store.claim(&row.key, &shared.holder, CLAIM_MS).await {
            Ok(true) => {
                if let Some(retry) = attempt(shared, a, &row).await {
                    soonest = soonest.min(retry);
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, key = %row.key, "could not claim an alert"),
        }
    }
    soonest
}

/// POST one claimed row and settle it; returns the delay of its next attempt, if any.
async fn attempt(shared: &Shared, a: &Alerting, row: &Due) -> Option<Duration> {
    let attempts = row.attempts + 1;
    let sent = a
        .client
        .post(&a.webhook, "application/json", row.payload.clone())
        .await;
    let host = a.webhook.host();
    let (settled, audit, retry) = match sent {
        Ok(()) => {
            tracing::info!(key = %row.key, webhook_host = %host, attempts, "alert delivered");
            (
                a.store.delivered(&row.key, &shared.holder).await,
                Some(format!(
                    "delivered {} ({}) to {host} after {attempts} attempt(s)",
                    row.event, row.key
                )),
                None,
            )
        }
        Err(why) => {
            let delay = backoff_ms(attempts);
            let elapsed = row.now_ms.saturating_sub(row.created_ms);
            if elapsed.saturating_add(delay) > GIVE_UP_AFTER_MS {
                tracing::error!(key = %row.key, webhook_host = %host, attempts, error = %why, "alert given up");
                (
                    a.store.give_up(&row.key, &shared.holder, &why).await,
                    Some(format!(
                        "failed: {} ({}) to {host} after {attempts} attempt(s): {why}",
                        row.event, row.key
                    )),
                    None,
                )
            } else {
                tracing::warn!(key = %row.key, webhook_host = %host, attempts, error = %why, retry_in_ms = delay, "alert not delivered; retrying");
                let delay_std = Duration::from_millis(u64::try_from(delay).unwrap_or(0));
                (
                    a.store.retry(&row.key, &shared.holder, delay, &why).await,
                    None,
                    Some(delay_std),
                )
            }
        }
    };
    if let Err(e) = settled {
        tracing::warn!(key = %row.key, error = %e, "could not settle an alert; it is tried again once its claim lapses");
    }
    if let Some(detail) = audit {
        shared
            .audit(NewAuditEntry {
                actor: SYSTEM.to_owned(),
                action: AuditAction::Alert,
                job_name: row.job_name.clone(),
                detail: Some(detail),
            })
            .await;
    }
    retry
}

/// 1 s, 2 s, 4 s ... after the `attempts`-th attempt, at most a minute.
fn backoff_ms(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    1000i64.saturating_mul(1 << doublings).min(MAX_BACKOFF_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_second_up_to_a_minute() {
        assert_eq!(
            (1..=8).map(backoff_ms).collect::<Vec<_>>(),
            [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]
        );
        assert_eq!(backoff_ms(i64::MAX), 60000);
    }
}
