//! Routing: which of the service's endpoints answers a path.
//!
//! The [`Router`] knows the public mount path and strips it from the request path when
//! present (so the service works served directly and nested under a router that strips the
//! prefix), then hands the request to one route:
//!
//! | path after the mount path | route                                               |
//! |---------------------------|-----------------------------------------------------|
//! | `` or `/`                 | GraphQL over HTTP (the [core](super::graphql))      |
//! | the playground path       | the GraphiQL page ([`playground`]), once enabled     |
//! | `/health`                 | fleet health ([`health`])                           |
//! | `/metrics`                | Prometheus metrics ([`metrics`])                    |
//! | `/ui` and below           | the dashboard ([`dashboard`]), unless disabled      |
//! | anything else             | 404, JSON error body                                |
//!
//! A route is any service answering `Response<Full<Bytes>>` for the service's erased body
//! ([`AdminBody`]), each with its own layers around it (authorization in front of GraphQL,
//! `/health` and `/metrics`, security headers on the dashboard): the router only picks.
//! A route served under a prefix (the dashboard) finds the rest of the path in the
//! [`SubPath`] extension.

pub(crate) mod dashboard;
pub(crate) mod health;
pub(crate) mod metrics;
pub(crate) mod playground;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::{BoxFuture, Either, Ready, ready};
use http::{Method, Request, Response};
use http_body_util::Full;
use http_body_util::combinators::UnsyncBoxBody;
use tower::ServiceExt;
use tower::util::{BoxCloneSyncService, Oneshot};
use tower_service::Service;

use super::BoxError;
use super::response::{method_not_allowed, not_found};
use crate::schema::ReadShare;

/// The request body every route sees: the host's body, boxed, its chunks as [`Bytes`].
pub(crate) type AdminBody = UnsyncBoxBody<Bytes, BoxError>;

/// One endpoint, with its layers.
pub(crate) type Route = BoxCloneSyncService<Request<AdminBody>, Response<Full<Bytes>>, Infallible>;

/// Path of the health answer, relative to the mount path.
pub const HEALTH_PATH: &str = "/health";
/// Path of the Prometheus metrics, relative to the mount path.
pub const METRICS_PATH: &str = "/metrics";
/// Path of the dashboard, relative to the mount path.
pub const DASHBOARD_PATH: &str = "/ui";

/// The rest of the path after the prefix a route is served under (`` for the prefix
/// itself), for routes that serve more than one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubPath(pub(crate) String);

/// The endpoints of the service.
pub(crate) struct Routes {
    /// GraphQL over HTTP.
    pub(crate) graphql: Route,
    /// The GraphiQL page and its path relative to the mount path, once enabled.
    pub(crate) playground: Option<(String, Route)>,
    /// `/ui` and below, unless disabled.
    pub(crate) dashboard: Option<Route>,
    /// `/health`.
    pub(crate) health: Route,
    /// `/metrics`.
    pub(crate) metrics: Route,
}

/// Picks the route of a request's path.
#[derive(Clone)]
pub(crate) struct Router {
    mount_path: Arc<str>,
    routes: Arc<Routes>,
}

impl Router {
    /// Routes under `mount_path` (normalised: `` for the root, else `/a/b`).
    pub(crate) fn new(mount_path: &str, routes: Routes) -> Self {
        Self {
            mount_path: mount_path.into(),
            routes: Arc::new(routes),
        }
    }

    /// The route of `path` and, for the dashboard, the rest of the path after `/ui`.
    fn route<'a>(&self, path: &'a str) -> Option<(&Route, Option<&'a str>)> {
        let relative = match path.strip_prefix(&*self.mount_path) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
            _ => path,
        };
        let relative = relative.trim_end_matches('/');
        let routes = &*self.routes;
        if relative.is_empty() {
            return Some((&routes.graphql, None));
        }
        if let Some((_, page)) = routes.playground.as_ref().filter(|(p, _)| p == relative) {
            return Some((page, None));
        }
        match relative {
            HEALTH_PATH => return Some((&routes.health, None)),
            METRICS_PATH => return Some((&routes.metrics, None)),
            _ => {}
        }
        let rest = relative
            .strip_prefix(DASHBOARD_PATH)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))?;
        Some((routes.dashboard.as_ref()?, Some(rest)))
    }
}

/// The future of [`Router`]: the 404 at once, or the route's answer.
pub(crate) type RouteFuture =
    Either<Ready<Result<Response<Full<Bytes>>, Infallible>>, Oneshot<Route, Request<AdminBody>>>;

impl Service<Request<AdminBody>> for Router {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = RouteFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<AdminBody>) -> RouteFuture {
        match self.route(req.uri().path()) {
            None => Either::Left(ready(Ok(not_found()))),
            Some((route, rest)) => {
                if let Some(rest) = rest {
                    let rest = SubPath(rest.to_owned());
                    req.extensions_mut().insert(rest);
                }
                Either::Right(route.clone().oneshot(req))
            }
        }
    }
}

/// `/a/b/` and `a/b` become `/a/b`; `/` and `` become `` (the root): the form of the mount
/// and playground paths the router compares with.
pub(crate) fn normalize(path: &str) -> String {
    let trimmed = path.trim().trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

/// An answer read from the store, for `GET` and `HEAD` (which answers as `GET` without the
/// body, for probes and uptime checkers); other methods get 405. The reading runs under the
/// admin reads' share of the pool.
pub(crate) fn read_only<F>(
    method: &Method,
    reads: &ReadShare,
    answer: F,
) -> BoxFuture<'static, Result<Response<Full<Bytes>>, Infallible>>
where
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let head = method == Method::HEAD;
    if method != Method::GET && !head {
        return Box::pin(ready(Ok(method_not_allowed("GET, HEAD"))));
    }
    let reads = reads.clone();
    Box::pin(async move {
        let mut res = reads.run(answer).await;
        if head {
            *res.body_mut() = Full::default();
        }
        Ok(res)
    })
}

#[cfg(test)]
mod tests;
