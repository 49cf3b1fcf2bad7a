//! `GET {base}/metrics`: the scheduler's [`Metrics`] in the OpenMetrics text format, for
//! Prometheus scrapes. A store that cannot be read gives `503` (the scrape fails and
//! Prometheus's `up` says so) rather than gauges that silently went stale. `HEAD` answers as
//! `GET` without the body; other methods get 405.

use std::convert::Infallible;
use std::task::{Context, Poll};

use barycenter_jobs_core::SchedulerHandle;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower_service::Service;

use crate::metrics::{CONTENT_TYPE as OPENMETRICS, Metrics};
use crate::schema::{INTERNAL_ERROR, ReadShare};

/// The `/metrics` endpoint: `metrics` rendered with the gauges of `handle`'s store.
#[derive(Clone)]
pub(crate) struct MetricsEndpoint {
    metrics: Metrics,
    handle: SchedulerHandle,
    reads: ReadShare,
}

impl MetricsEndpoint {
    /// Renders `metrics`, reading `handle`'s store under `reads`.
    pub(crate) fn new(metrics: Metrics, handle: SchedulerHandle, reads: ReadShare) -> Self {
        Self {
            metrics,
            handle,
            reads,
        }
    }
}

impl<B> Service<Request<B>> for MetricsEndpoint {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (metrics, handle) = (self.metrics.clone(), self.handle.clone());
        super::read_only(req.method(), &self.reads, async move {
            respond(&metrics, &handle).await
        })
    }
}

/// The metrics answer for `handle`.
async fn respond(metrics: &Metrics, handle: &SchedulerHandle) -> Response<Full<Bytes>> {
    match metrics.render(handle).await {
        Ok(text) => {
            let mut res = Response::new(Full::new(Bytes::from(text)));
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
            res.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics could not read the store");
            let mut res = Response::new(Full::new(Bytes::from_static(INTERNAL_ERROR.as_bytes())));
            *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            res.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            res
        }
    }
}
