//! A slot as a timer pass sees it (see the lock order in the parent module's docs).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Due, Slot};

/// A slot as a timer pass sees it while it holds its group's member list: no way to the
/// settings lock (see the module docs).
pub(in crate::scheduler) struct Member<'a>(pub(in crate::scheduler) &'a Arc<Slot>);

impl Member<'_> {
    pub(in crate::scheduler) fn fires(&self) -> bool {
        self.0.fires()
    }

    pub(in crate::scheduler) fn is_paused(&self) -> bool {
        self.0.is_paused()
    }

    pub(in crate::scheduler) fn is_busy(&self) -> bool {
        self.0.is_busy()
    }

    pub(in crate::scheduler) fn set_next(&self, next: Option<DateTime<Utc>>) {
        self.0.set_next(next);
    }

    pub(in crate::scheduler) fn hand(&self, due: Due) {
        self.0.hand(due);
    }

    pub(in crate::scheduler) fn name(&self) -> &str {
        self.0.job.name()
    }

    /// The slot itself, for use once the pass is over (the list's lock released).
    pub(in crate::scheduler) fn after_pass(&self) -> Arc<Slot> {
        self.0.clone()
    }
}
