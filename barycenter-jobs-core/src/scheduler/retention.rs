//! History retention: old runs are purged now and then, in small batches, off the run path.

use std::sync::Arc;
use std::time::Duration;

use super::config::RetentionConfig;
use super::shared::Shared;

/// Purge runs older than `keep_days` every `cfg.interval_secs`, until shutdown.
pub(super) async fn retention_loop(shared: Arc<Shared>, keep_days: u32, cfg: RetentionConfig) {
    let interval = Duration::from_secs(cfg.interval_secs.max(1));
    loop {
        let cutoff = shared.clock.now() - chrono::Duration::days(i64::from(keep_days));
        let mut purged = 0u64;
        loop {
            if shared.stop_firing.is_cancelled() {
                return;
            }
            match shared.store.purge_batch(cutoff, cfg.batch_size).await {
                Ok(n) => {
                    purged += n;
                    if n < u64::from(cfg.batch_size.max(1)) {
                        break;
                    }
                    // Let the host's own writes in between batches.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "history purge failed; will retry next interval");
                    break;
                }
            }
        }
        if purged > 0 {
            tracing::info!(purged, %cutoff, "purged old job history");
        }
        // The audit log is kept as long as the history.
        if let Some(settings) = &shared.settings {
            loop {
                if shared.stop_firing.is_cancelled() {
                    return;
                }
                match settings.purge_audit_batch(cutoff, cfg.batch_size).await {
                    Ok(n) if n < u64::from(cfg.batch_size.max(1)) => break,
                    Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "audit log purge failed; will retry next interval");
                        break;
                    }
                }
            }
        }
        tokio::select! {
            _ = shared.stop_firing.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
