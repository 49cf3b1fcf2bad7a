//! The pings' task: Healthchecks-style pings of a job's `ping_url`, sent in order, off the run
//! path.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::alert::{HttpClient, Ping};
use crate::scheduler::shared::Shared;

/// The pings' task: send each ping once, in order, until shutdown.
pub(in crate::scheduler) async fn ping_loop(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Ping>,
    client: HttpClient,
) {
    loop {
        let ping = tokio::select! {
            _ = shared.stop_firing.cancelled() => return,
            ping = rx.recv() => match ping {
                Some(ping) => ping,
                None => return,
            },
        };
        let sent = tokio::select! {
            _ = shared.stop_firing.cancelled() => return,
            sent = client.post(&ping.target, "text/plain; charset=utf-8", ping.body) => sent,
        };
        if let Err(why) = sent {
            tracing::warn!(ping_host = %ping.target.host(), error = %why, "ping not delivered");
        }
    }
}
