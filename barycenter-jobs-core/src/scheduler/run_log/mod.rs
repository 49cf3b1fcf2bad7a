//! A run's log: the tracing events at `info` and above that a job emits while it runs, kept
//! with its execution (`job_execution_logs`, read with
//! [`ExecutionStore::run_log`](crate::ExecutionStore::run_log)).
//!
//! A library cannot install the host's global subscriber, so the capture wraps the job's
//! future instead: on every poll a dispatcher of ours is the thread's default. It forwards
//! everything (spans, events, `enabled`, the current span) to the dispatcher that was in
//! force when the run started, so the host's logging is unchanged and span ids stay its
//! subscriber's, and it copies each event at `info` or above into the run's buffer.
//!
//! # Bounds and costs
//! A run keeps at most [`MAX_LINES`] lines and [`MAX_BYTES`] of messages (a line longer than
//! [`MAX_LINE_BYTES`] is cut); past that, events are only counted, and the log ends with one
//! line saying how many were dropped. Capturing never blocks the job: an event is formatted
//! before the buffer's lock is taken, the lock is held for a push only and never across an
//! `.await`, and once the buffer is full an event costs one atomic read and one atomic add.
//!
//! Creating the dispatcher makes `tracing` recompute each callsite's interest, once per run
//! (a walk of the registered callsites): negligible beside a run's two history writes.
//!
//! # Limits
//! Events emitted in tasks the job spawns are not captured: those tasks are polled outside
//! the job's future, under their own default dispatcher. Spans the job opens are reached
//! through our dispatcher, which forwards them; a downcast of their dispatcher to the host's
//! subscriber type (as `tracing-opentelemetry`'s span context does) finds ours instead.

mod capture;
mod line;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::{Event, Level};

pub(crate) use capture::capture;
use line::{cut, format_event};

use super::shared::Shared;
use super::slot::lock;
use crate::clock::SharedClock;
use crate::store::LogLine;

/// Most lines a run keeps (the line about what was dropped comes on top).
pub const MAX_LINES: usize = 200;
/// Most bytes of messages a run keeps.
pub const MAX_BYTES: usize = 64 * 1024;
/// Longest message kept whole; a longer one is cut at a character boundary below this.
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// The lines a run has kept so far, and what it had to drop.
#[derive(Debug)]
pub(crate) struct RunLog {
    clock: SharedClock,
    /// Set once a line did not fit: every later event is only counted, unformatted.
    full: AtomicBool,
    dropped: AtomicU64,
    kept: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    /// (when, level, message): the level stays a static name until the lines are taken,
    /// so keeping a line allocates its message only.
    lines: Vec<(chrono::DateTime<chrono::Utc>, &'static str, String)>,
    bytes: usize,
}

impl RunLog {
    /// A buffer for one run, or `None` when the scheduler captures no logs or keeps no
    /// history to write them to.
    pub(super) fn for_run(shared: &Shared) -> Option<Arc<Self>> {
        (shared.capture_run_logs && shared.record_history).then(|| Self::new(shared.clock.clone()))
    }

    pub(crate) fn new(clock: SharedClock) -> Arc<Self> {
        Arc::new(Self {
            clock,
            full: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            kept: Mutex::new(Kept::default()),
        })
    }

    /// Keep `event` if there is room, else count it.
    fn keep(&self, event: &Event<'_>) {
        if self.full.load(Ordering::Relaxed) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // Formatted and timed before the lock: the lock covers the push only.
        let message = cut(format_event(event), MAX_LINE_BYTES);
        let line = (self.clock.now(), event.metadata().level().as_str(), message);
        let mut kept = lock(&self.kept);
        if kept.lines.len() < MAX_LINES && kept.bytes + line.2.len() <= MAX_BYTES {
            kept.bytes += line.2.len();
            kept.lines.push(line);
        } else {
            // The log stays a prefix of the run's events: once one line is dropped, every
            // later one is too.
            self.full.store(true, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The lines kept, in order, then (if any were dropped) one line saying how many.
    /// Leaves the buffer empty.
    pub(crate) fn take(&self) -> Vec<LogLine> {
        let mut lines: Vec<LogLine> = std::mem::take(&mut lock(&self.kept).lines)
            .into_iter()
            .map(|(at, level, message)| LogLine::new(at, level, message))
            .collect();
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            lines.push(LogLine::new(
                self.clock.now(),
                Level::WARN.as_str(),
                format!(
                    "{dropped} more line(s) dropped: a run keeps at most {MAX_LINES} lines and {} KiB",
                    MAX_BYTES / 1024
                ),
            ));
        }
        lines
    }
}

/// Write the lines `log` kept as run `execution_id`'s, if any. Never fails the run: a write
/// that fails is logged at warn and the lines are lost.
pub(super) async fn write(shared: &Shared, execution_id: i64, log: Option<Arc<RunLog>>) {
    let Some(log) = log else { return };
    let lines = log.take();
    if lines.is_empty() {
        return;
    }
    if let Err(e) = shared.store.write_run_log(execution_id, &lines).await {
        tracing::warn!(execution_id, lines = lines.len(), error = %e, "could not write the run's log");
    }
}
