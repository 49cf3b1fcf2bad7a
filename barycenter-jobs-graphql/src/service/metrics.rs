//! `GET {base}/metrics`: the scheduler's [`Metrics`] in the OpenMetrics text format, for
//! Prometheus scrapes. A store that cannot be read gives `503` (the scrape fails and
//! Prometheus's `up` says so) rather than gauges that silently went stale.

use barycenter_jobs_core::SchedulerHandle;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;

use crate::metrics::{CONTENT_TYPE as OPENMETRICS, Metrics};
use crate::schema::INTERNAL_ERROR;

/// The metrics answer for `handle`.
pub(crate) async fn respond(metrics: &Metrics, handle: &SchedulerHandle) -> Response<Full<Bytes>> {
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
