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

use std::fmt::{self, Write as _};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tracing::dispatcher::{self, Dispatch};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

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

/// `s`, cut to at most `max` bytes at a character boundary, with a mark when cut.
fn cut(mut s: String, max: usize) -> String {
    const MARK: &str = " [cut]";
    if s.len() <= max {
        return s;
    }
    let mut at = max - MARK.len();
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    s.truncate(at);
    s.push_str(MARK);
    s
}

/// The event's `message`, then ` key=value` for each other field (values as `Debug`, as
/// `tracing-subscriber`'s formatter writes them).
fn format_event(event: &Event<'_>) -> String {
    // One allocation in the usual case: the message first (`tracing`'s macros record it
    // first), the other fields after it in the same string.
    let mut visitor = Fields {
        message: String::with_capacity(128),
        rest: String::new(),
    };
    event.record(&mut visitor);
    let mut out = visitor.message;
    if out.is_empty() {
        out = visitor.rest.trim_start().to_owned();
    } else {
        out.push_str(&visitor.rest);
    }
    out
}

struct Fields {
    message: String,
    /// Fields recorded before the message (rare): kept apart so the message leads.
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        // A plain word as it is, unquoted: escaping every value (`Debug`) would cost each
        // kept line more than the rest of its formatting. Anything a reader could misparse
        // (spaces, `=`, quotes, control characters, nothing at all) is quoted as `Debug` does.
        let plain = !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'=' && b != b'"' && b != b'\\');
        match field.name() {
            "message" => self.message.push_str(value),
            name if name.starts_with("log.") => {}
            _ if !plain => self.record_debug(field, &value),
            name => {
                let out = if self.message.is_empty() {
                    &mut self.rest
                } else {
                    &mut self.message
                };
                out.push(' ');
                out.push_str(name);
                out.push('=');
                out.push_str(value);
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `log` records bridged by `tracing-log` carry their origin as fields: noise here.
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            name if name.starts_with("log.") => {}
            // After the message, straight into its string; before it, set apart.
            name if !self.message.is_empty() => {
                let _ = write!(self.message, " {name}={value:?}");
            }
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }
}

/// Whether events of `meta` are copied into the run's log.
fn captured(meta: &Metadata<'_>) -> bool {
    meta.is_event() && *meta.level() <= Level::INFO
}

/// The dispatcher in force while a run's future is polled: the one that was in force before
/// (`inner`), plus the copy of `info` events into `log`.
struct Forward {
    inner: Dispatch,
    log: Arc<RunLog>,
}

impl Subscriber for Forward {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        let inner = self.inner.register_callsite(meta);
        if captured(meta) && !inner.is_always() {
            // Asked each time, whatever the host filters: the log wants it.
            Interest::sometimes()
        } else {
            inner
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // Only what the log needs: `tracing`'s global maximum is taken over every live
        // dispatcher, the inner one included, so whatever the host wants stays enabled.
        Some(LevelFilter::INFO)
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        // For a captured event the inner is asked in `event`, once, as it expects before
        // each of its events (per-layer filters keep state between the two calls).
        captured(meta) || self.inner.enabled(meta)
    }

    fn event(&self, event: &Event<'_>) {
        if captured(event.metadata()) {
            self.log.keep(event);
            if self.inner.enabled(event.metadata()) {
                self.inner.event(event);
            }
        } else {
            self.inner.event(event);
        }
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.inner.new_span(span)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        self.inner.record(span, values);
    }

    fn record_follows_from(&self, span: &Id, follows: &Id) {
        self.inner.record_follows_from(span, follows);
    }

    fn enter(&self, span: &Id) {
        self.inner.enter(span);
    }

    fn exit(&self, span: &Id) {
        self.inner.exit(span);
    }

    fn clone_span(&self, id: &Id) -> Id {
        self.inner.clone_span(id)
    }

    fn try_close(&self, id: Id) -> bool {
        self.inner.try_close(id)
    }

    fn current_span(&self) -> tracing_core::span::Current {
        self.inner.current_span()
    }
}

/// A job's future, polled with the run's capture as the default dispatcher.
pub(crate) struct Captured<F> {
    run: F,
    /// `None`: polled as it is (capture off).
    dispatch: Option<Dispatch>,
}

/// Wrap `run` so that what it logs at `info` and above also goes to `log`.
pub(crate) fn capture<F>(run: F, log: Option<&Arc<RunLog>>) -> Captured<F> {
    let dispatch = log.map(|log| {
        let current = dispatcher::get_default(Dispatch::clone);
        // A capture inside a capture forwards to the host's dispatcher, not to the outer
        // capture (whose events would land in the outer run's log as well).
        let inner = match current.downcast_ref::<Forward>() {
            Some(outer) => outer.inner.clone(),
            None => current,
        };
        Dispatch::new(Forward {
            inner,
            log: log.clone(),
        })
    });
    Captured { run, dispatch }
}

impl<F: Future + Unpin> Future for Captured<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        match &this.dispatch {
            Some(dispatch) => {
                dispatcher::with_default(dispatch, || Pin::new(&mut this.run).poll(cx))
            }
            None => Pin::new(&mut this.run).poll(cx),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::{TimeZone, Utc};
    use std::sync::atomic::AtomicUsize;

    fn clock() -> SharedClock {
        Arc::new(ManualClock::new(
            Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        ))
    }

    /// A host subscriber that counts the events it is given, and says which spans exist.
    #[derive(Default)]
    struct Host {
        events: AtomicUsize,
        debug_enabled: bool,
    }

    impl Subscriber for Host {
        fn enabled(&self, meta: &Metadata<'_>) -> bool {
            self.debug_enabled || *meta.level() <= Level::INFO
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(42)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {
            self.events.fetch_add(1, Ordering::Relaxed);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    /// Poll `run` to its end under `host`, with capture into `log`.
    fn run_under<F: Future<Output = ()> + Unpin>(host: &Dispatch, log: &Arc<RunLog>, run: F) {
        dispatcher::with_default(host, || {
            let mut captured = capture(run, Some(log));
            let waker = futures_util::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            assert!(Pin::new(&mut captured).poll(&mut cx).is_ready());
        });
    }

    #[test]
    fn info_and_above_are_kept_with_their_fields_and_everything_reaches_the_host() {
        let host = Dispatch::new(Host::default());
        let log = RunLog::new(clock());
        run_under(
            &host,
            &log,
            Box::pin(async {
                let span = tracing::info_span!("phase");
                // Span ids are the host's.
                assert_eq!(span.id(), Some(Id::from_u64(42)));
                let _entered = span.enter();
                tracing::info!(table = "sessions", rows = 3, "deleted a batch");
                tracing::debug!("not kept");
                tracing::warn!(name = "x y", "odd");
                tracing::error!("failed");
                tracing::info!(answer = 42);
            }),
        );
        let lines = log.take();
        let got: Vec<(&str, &str)> = lines
            .iter()
            .map(|l| (l.level.as_str(), l.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("INFO", "deleted a batch table=sessions rows=3"),
                ("WARN", "odd name=\"x y\""),
                ("ERROR", "failed"),
                ("INFO", "answer=42"),
            ]
        );
        assert_eq!(lines[0].at, Utc.timestamp_opt(1_700_000_000, 0).unwrap());
        // The host saw its four events (the debug one it does not want).
        assert_eq!(
            host.downcast_ref::<Host>()
                .unwrap()
                .events
                .load(Ordering::Relaxed),
            4
        );
    }

    #[test]
    fn debug_reaches_a_host_that_wants_it_but_not_the_log() {
        let host = Dispatch::new(Host {
            debug_enabled: true,
            ..Host::default()
        });
        let log = RunLog::new(clock());
        run_under(
            &host,
            &log,
            Box::pin(async {
                tracing::debug!("host only");
            }),
        );
        assert!(log.take().is_empty());
        assert_eq!(
            host.downcast_ref::<Host>()
                .unwrap()
                .events
                .load(Ordering::Relaxed),
            1
        );
    }

    #[test]
    fn past_its_lines_the_log_counts_what_it_drops() {
        let host = Dispatch::new(Host::default());
        let log = RunLog::new(clock());
        run_under(
            &host,
            &log,
            Box::pin(async {
                for i in 0..1000 {
                    tracing::info!(i, "line");
                }
            }),
        );
        let lines = log.take();
        assert_eq!(lines.len(), MAX_LINES + 1);
        assert_eq!(lines[MAX_LINES - 1].message, "line i=199");
        assert_eq!(lines[MAX_LINES].level, "WARN");
        assert!(
            lines[MAX_LINES]
                .message
                .starts_with("800 more line(s) dropped"),
            "{}",
            lines[MAX_LINES].message
        );
        // All of them reached the host.
        assert_eq!(
            host.downcast_ref::<Host>()
                .unwrap()
                .events
                .load(Ordering::Relaxed),
            1000
        );
    }

    #[test]
    fn past_its_bytes_the_log_stops_and_long_lines_are_cut() {
        let host = Dispatch::new(Host::default());
        let log = RunLog::new(clock());
        let big = "é".repeat(10_000);
        run_under(
            &host,
            &log,
            Box::pin(async move {
                for _ in 0..20 {
                    tracing::info!("{big}");
                }
                tracing::info!("short, but after the log is full");
            }),
        );
        let lines = log.take();
        let kept = &lines[..lines.len() - 1];
        assert!(
            kept.iter()
                .all(|l| l.message.len() <= MAX_LINE_BYTES && l.message.ends_with(" [cut]"))
        );
        assert_eq!(kept.len(), MAX_BYTES / kept[0].message.len());
        assert!(kept.iter().map(|l| l.message.len()).sum::<usize>() <= MAX_BYTES);
        let note = &lines[lines.len() - 1].message;
        assert!(
            note.starts_with(&format!("{} more line(s) dropped", 21 - kept.len())),
            "{note}"
        );
    }

    #[test]
    fn without_a_log_the_future_is_polled_as_it_is() {
        let host = Dispatch::new(Host::default());
        dispatcher::with_default(&host, || {
            let mut run = capture(Box::pin(async { tracing::info!("x") }), None);
            let waker = futures_util::task::noop_waker();
            assert!(
                Pin::new(&mut run)
                    .poll(&mut Context::from_waker(&waker))
                    .is_ready()
            );
        });
        assert_eq!(
            host.downcast_ref::<Host>()
                .unwrap()
                .events
                .load(Ordering::Relaxed),
            1
        );
    }

    #[test]
    fn cut_keeps_char_boundaries() {
        assert_eq!(cut("abc".into(), 10), "abc");
        let s = cut("é".repeat(10), 11);
        assert!(s.ends_with(" [cut]") && s.len() <= 11, "{s}");
    }
}
