//! How the service is put together: which layers wrap which endpoint, in the order a
//! request meets them.
//!
//! ```text
//! request ─▶ peer check (once unauthenticated use is allowed: loopback peer, no proxy, loopback Host)
//!            └▶ router (mount path stripped)
//!                ├─ ``          ─▶ authorization ─▶ body limit ─▶ GraphQL core
//!                ├─ /health     ─▶ authorization (unless open_health)  ─▶ health
//!                ├─ /metrics    ─▶ authorization (unless open_metrics) ─▶ metrics
//!                ├─ /ui/...     ─▶ security headers ─▶ dashboard
//!                ├─ playground  ─▶ GraphiQL page
//!                └─ else        ─▶ 404
//! ```
//!
//! The peer check runs before routing so that no path, the static pages included, answers
//! a client that unauthenticated use must not serve. Authorization runs on the request head,
//! before the body limit, so an unauthorized client never has its body read. Each piece is a
//! module of its own ([`layer`](super::layer), [`route`](super::route),
//! [`graphql`](super::graphql)); this one only composes them.

use std::sync::Arc;

use tower::util::Either;
use tower::{Layer, ServiceBuilder};
use tower_http::validate_request::ValidateRequestHeader;

use super::graphql::GraphQl;
use super::layer::auth::{Authorization, AuthorizeLayer};
use super::layer::limit::RequestBodyLimitLayer;
use super::layer::peer::LoopbackOnly;
use super::layer::{headers, peer};
use super::route::dashboard::Dashboard;
use super::route::health::Health;
use super::route::metrics::MetricsEndpoint;
use super::route::playground::Playground;
use super::route::{Route, Router, Routes};

/// The whole service: the router, behind the peer check when unauthenticated use is allowed.
pub(crate) type Stack = Either<ValidateRequestHeader<Router, LoopbackOnly>, Router>;

/// The endpoints, bare.
pub(crate) struct Endpoints {
    /// GraphQL over HTTP.
    pub(crate) graphql: GraphQl,
    /// The GraphiQL page and its path relative to the mount path, once enabled.
    pub(crate) playground: Option<(String, Playground)>,
    /// The dashboard, unless disabled.
    pub(crate) dashboard: Option<Dashboard>,
    /// `/health`.
    pub(crate) health: Health,
    /// `/metrics`.
    pub(crate) metrics: MetricsEndpoint,
}

/// What the layers enforce.
pub(crate) struct Policy {
    /// Who may call, and whether unauthenticated use is allowed.
    pub(crate) auth: Arc<Authorization>,
    /// Largest request body, in bytes.
    pub(crate) body_limit: usize,
    /// `/health` served without authorization.
    pub(crate) open_health: bool,
    /// `/metrics` served without authorization.
    pub(crate) open_metrics: bool,
}

/// `endpoints` under `mount_path` (normalised), each behind the layers `policy` asks for.
pub(crate) fn compose(mount_path: &str, endpoints: Endpoints, policy: Policy) -> Stack {
    let authorize = AuthorizeLayer::new(Arc::clone(&policy.auth));
    let guarded = |open: bool, route: Route| {
        if open {
            route
        } else {
            Route::new(authorize.layer(route))
        }
    };
    let graphql = ServiceBuilder::new()
        .layer(authorize.clone())
        .layer(RequestBodyLimitLayer::new(policy.body_limit))
        .service(endpoints.graphql);
    let routes = Routes {
        graphql: Route::new(graphql),
        playground: endpoints
            .playground
            .map(|(path, page)| (path, Route::new(page))),
        dashboard: endpoints
            .dashboard
            .map(|page| Route::new(headers::layer().layer(page))),
        health: guarded(policy.open_health, Route::new(endpoints.health)),
        metrics: guarded(policy.open_metrics, Route::new(endpoints.metrics)),
    };
    let router = Router::new(mount_path, routes);
    match policy.auth.gate() {
        Some(rules) => Either::Left(peer::layer(rules).layer(router)),
        None => Either::Right(router),
    }
}
