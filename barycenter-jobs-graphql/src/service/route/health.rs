//! `GET {base}/health`: the fleet's health as JSON, `200` when no job is overdue and `503`
//! when one is (or when the store cannot be read), for load balancers, Kubernetes probes and
//! uptime checks.
//!
//! ```json
//! {"status":"overdue","checkedAt":"2026-01-01T02:00:01Z","clockSkewSecs":0.004,
//!  "overdueJobs":[{"name":"cleanup_expired_sessions","overdueSince":"2026-01-01T02:00:00Z","missedTick":"2026-01-01T01:00:00Z"}],
//!  "jobs":[{"name":"cleanup_expired_sessions","overdue":true,"overdueSince":"2026-01-01T02:00:00Z",
//!           "lastSuccessAt":null,"lastFailureAt":"2026-01-01T01:00:03Z","firstSeenAt":"2026-01-01T00:00:10Z"}]}
//! ```
//!
//! The answer is computed from the store (see
//! [`SchedulerHandle::health`](barycenter_jobs_core::SchedulerHandle::health)), so every
//! replica gives the same one: a `503` here means "a job of the fleet is overdue", not "this
//! replica is broken". A store that cannot be read gives `503` with
//! `{"status":"unavailable","message":"internal error"}` (the cause is logged). `HEAD` answers
//! as `GET` without the body; other methods get 405.

use std::convert::Infallible;
use std::task::{Context, Poll};

use barycenter_jobs_core::{FleetHealth, JobHealth, SchedulerHandle};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use tower_service::Service;

use crate::schema::{INTERNAL_ERROR, ReadShare, iso};

/// The `/health` endpoint of a scheduler's fleet.
#[derive(Clone)]
pub(crate) struct Health {
    handle: SchedulerHandle,
    reads: ReadShare,
}

impl Health {
    /// Reads `handle`'s store under `reads`.
    pub(crate) fn new(handle: SchedulerHandle, reads: ReadShare) -> Self {
        Self { handle, reads }
    }
}

impl<B> Service<Request<B>> for Health {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let handle = self.handle.clone();
        super::read_only(
            req.method(),
            &self.reads,
            async move { respond(&handle).await },
        )
    }
}

/// The health answer for `handle`.
async fn respond(handle: &SchedulerHandle) -> Response<Full<Bytes>> {
    match handle.health().await {
        Ok(health) => {
            let status = if health.overdue_jobs().next().is_some() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            json_response(status, &to_json(&health))
        }
        Err(e) => {
            tracing::error!(error = %e, "health check could not read the store");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({ "status": "unavailable", "message": INTERNAL_ERROR }),
            )
        }
    }
}

/// The JSON body of a health answer.
fn to_json(health: &FleetHealth) -> Value {
    let overdue: Vec<Value> = health
        .overdue_jobs()
        .map(|j| {
            json!({
                "name": j.name,
                "overdueSince": j.overdue_since.map(iso),
                "missedTick": j.missed_tick.map(iso),
            })
        })
        .collect();
    json!({
        "status": health.status.as_str(),
        "checkedAt": iso(health.checked_at),
        "clockSkewSecs": health.clock_skew.map(|s| s.num_milliseconds() as f64 / 1000.0),
        "overdueJobs": overdue,
        "jobs": health.jobs.iter().map(job_json).collect::<Vec<_>>(),
    })
}

fn job_json(j: &JobHealth) -> Value {
    json!({
        "name": j.name,
        "overdue": j.is_overdue(),
        "overdueSince": j.overdue_since.map(iso),
        "lastSuccessAt": j.last_success_at.map(iso),
        "lastFailureAt": j.last_failure_at.map(iso),
        "firstSeenAt": j.first_seen_at.map(iso),
    })
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
