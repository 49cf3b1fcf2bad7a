//! The run log's tests: what is kept, what reaches the host, and the bounds.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Context;

use tracing::dispatcher::{self, Dispatch};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use super::line::cut;
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

/// The events `host` (a [`Host`]) was given.
fn events_seen(host: &Dispatch) -> usize {
    host.downcast_ref::<Host>()
        .unwrap()
        .events
        .load(Ordering::Relaxed)
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
    assert_eq!(events_seen(&host), 4);
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
    assert_eq!(events_seen(&host), 1);
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
    assert_eq!(events_seen(&host), 1000);
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
    assert_eq!(events_seen(&host), 1);
}

#[test]
fn cut_keeps_char_boundaries() {
    assert_eq!(cut("abc".into(), 10), "abc");
    let s = cut("é".repeat(10), 11);
    assert!(s.ends_with(" [cut]") && s.len() <= 11, "{s}");
}
