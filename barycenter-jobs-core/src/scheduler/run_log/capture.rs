//! The capture: a dispatcher of ours, the thread's default while a run's future is polled,
//! that forwards everything to the dispatcher in force before and copies each event at
//! `info` or above into the run's [`RunLog`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tracing::dispatcher::{self, Dispatch};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use super::RunLog;

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
