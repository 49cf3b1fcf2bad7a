//! This scheduler's row in the fleet table: written at start, refreshed every ten seconds
//! (one statement), removed at a clean shutdown. A replica that died keeps its row until it
//! ages out of `fleet` (30 s).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::identity::this_host;
use super::shared::Shared;
use crate::store::ReplicaBeat;

/// How often the row is refreshed.
const EVERY: Duration = Duration::from_secs(10);

/// How recent a row must be for its scheduler to count as alive.
pub(super) const ALIVE_WITHIN: Duration = Duration::from_secs(30);

/// Refresh this scheduler's row until shutdown.
pub(super) async fn heartbeat_loop(shared: Arc<Shared>, started_at: DateTime<Utc>) {
    let mut beat = ReplicaBeat::new(shared.holder.clone(), shared.instance.clone());
    beat.host = this_host();
    beat.pid = std::process::id();
    beat.started_at = started_at;
    loop {
        beat.clock_skew = shared.clock_skew();
        beat.running = u32::try_from(shared.slots.values().filter(|s| s.is_running()).count())
            .unwrap_or(u32::MAX);
        if let Err(e) = shared.store.heartbeat(&beat).await {
            tracing::debug!(error = %e, "could not refresh this scheduler's fleet row");
        }
        tokio::select! {
            _ = shared.stop_firing.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// Remove this scheduler's row (a clean shutdown, once its runs are over).
pub(super) async fn leave(shared: &Shared) {
    if let Err(e) = shared.store.leave(&shared.holder).await {
        tracing::warn!(error = %e, "could not remove this scheduler's fleet row; it ages out in 30 s");
    }
}
