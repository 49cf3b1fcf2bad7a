//! Whether a run (or a catch-up) of the slot's job is in progress in this process, and how to
//! stop it: the marks are set by the methods below and cleared by the guards they return,
//! however the run ends.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Slot, lock};
use crate::scheduler::stop::StopSignal;

/// Clears the slot's catching-up flag when the catch-up is over, however it ends.
pub(in crate::scheduler) struct CatchingUp(Arc<Slot>);

impl Drop for CatchingUp {
    fn drop(&mut self) {
        self.0.catching_up.store(false, Ordering::Release);
    }
}

/// Clears the slot's running flag however the run ends; holds the run's stop signal.
pub(in crate::scheduler) struct Running(Arc<Slot>, Arc<StopSignal>);

impl Running {
    /// How to stop this run from outside.
    pub(in crate::scheduler) fn stop_signal(&self) -> &Arc<StopSignal> {
        &self.1
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        *lock(&self.0.current) = None;
        self.0.running.store(false, Ordering::Release);
    }
}

impl Slot {
    /// Mark missed ticks as being caught up until the guard is dropped.
    pub(in crate::scheduler) fn start_catching_up(self: &Arc<Self>) -> CatchingUp {
        self.catching_up.store(true, Ordering::Release);
        CatchingUp(self.clone())
    }

    /// Mark a run in progress, unless one is already: the guard clears the mark when the
    /// run is over, however it ends.
    pub(in crate::scheduler) fn start_running(self: &Arc<Self>) -> Option<Running> {
        if self
            .running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return None;
        }
        let stop = Arc::new(StopSignal::default());
        *lock(&self.current) = Some(stop.clone());
        Some(Running(self.clone(), stop))
    }

    /// Stop the run in progress here, if any, for `reason`; whether there was one.
    pub(in crate::scheduler) fn stop_running(&self, reason: &str) -> bool {
        match lock(&self.current).as_ref() {
            Some(stop) => {
                stop.stop(reason);
                true
            }
            None => false,
        }
    }

    /// Stop the run in progress here if it is `execution_id`, for `reason`; whether it was.
    pub(in crate::scheduler) fn stop_execution(&self, execution_id: i64, reason: &str) -> bool {
        match lock(&self.current).as_ref() {
            Some(stop) if stop.execution_id() == execution_id => {
                stop.stop(reason);
                true
            }
            _ => false,
        }
    }
}
