//! Stopping one run from outside: an operator's cancel, or a tick that comes due under
//! `overlap = cancel_running`. The run's supervision waits on the signal beside its timeout
//! and its lease (see [`super::supervise`]); the reason becomes the run's message.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio_util::sync::CancellationToken;

/// A request to stop one run, and why.
#[derive(Debug, Default)]
pub(super) struct StopSignal {
    token: CancellationToken,
    reason: Mutex<Option<String>>,
    /// The run's execution id, once its start is recorded (0 before).
    execution_id: AtomicI64,
}

impl StopSignal {
    /// Note the run's execution id (its start is recorded).
    pub(super) fn set_execution(&self, id: i64) {
        self.execution_id.store(id, Ordering::Release);
    }

    /// The run's execution id; 0 before its start is recorded.
    pub(super) fn execution_id(&self) -> i64 {
        self.execution_id.load(Ordering::Acquire)
    }

    /// Ask the run to stop; the first reason given is kept.
    pub(super) fn stop(&self, reason: impl Into<String>) {
        self.reason().get_or_insert_with(|| reason.into());
        self.token.cancel();
    }

    /// Resolves once somebody asked the run to stop.
    pub(super) async fn stopped(&self) {
        self.token.cancelled().await;
    }

    /// Why the run was stopped (the run's message).
    pub(super) fn reason_given(&self) -> String {
        self.reason()
            .clone()
            .unwrap_or_else(|| "cancelled".to_owned())
    }

    /// The reason, locked (a panic elsewhere cannot leave it half-written: it is replaced
    /// whole).
    fn reason(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }
}
