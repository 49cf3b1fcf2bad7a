//! The peer check of unauthenticated use: a request is served only from this machine.
//!
//! [`allow_unauthenticated`](crate::service::AdminServiceBuilder::allow_unauthenticated)
//! serves requests without credentials, so it must know the client is local. The `Host`
//! header is the client's to write; the connection's peer address is not. So the check
//! ([`LoopbackOnly`]) admits a request only when
//!
//! 1. the host attached a [`PeerAddr`] and it is a loopback address (with no address known
//!    the door stays shut);
//! 2. it carries no forwarding header (`Forwarded`, `X-Forwarded-For`, `X-Real-IP`): a proxy
//!    on this machine is a loopback peer that relays anyone's requests;
//! 3. it names exactly one `Host` (or, in HTTP/2, an `:authority`) that is a loopback name or
//!    an allowed host: a web page that rebinds its own name to 127.0.0.1 still sends its own
//!    name.
//!
//! Anything else gets 403 with a JSON error body saying which rule refused it, and a
//! `tracing` warning naming the peer and the `Host` (never a credential). The check runs on
//! every path, before routing, as tower-http's
//! [`ValidateRequestHeader`](tower_http::validate_request::ValidateRequestHeader) with
//! [`LoopbackOnly`] as its validator: the refusal is our own response, so the status and
//! body are exactly ours. The authorization layer runs the same check again before it
//! answers `anonymous`, so it never serves unauthenticated use on its own.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::HOST;
use http::request::Parts;
use http::{Extensions, HeaderMap, Request, Response, StatusCode, Uri};
use http_body_util::Full;
use tower_http::validate_request::{ValidateRequest, ValidateRequestHeaderLayer};

use crate::service::response::error_response;

/// The address of the client at the other end of the connection, as the host accepted it.
///
/// [`allow_unauthenticated`](crate::service::AdminServiceBuilder::allow_unauthenticated)
/// serves a request without credentials only when this is in the request's extensions and
/// is a loopback address: the `Host` header is written by the client and proves nothing
/// about where it is. The service cannot see the connection itself, so the host inserts
/// this when it accepts one (other hosts' types, such as axum's `ConnectInfo`, are not
/// read; the crate does not depend on a web framework).
///
/// With hyper, from the address `accept` returns:
///
/// ```
/// use std::net::SocketAddr;
/// use barycenter_jobs_graphql::{AdminService, PeerAddr};
/// use tower::ServiceExt;
///
/// /// The service for one connection accepted from `peer`.
/// fn for_connection(
///     admin: AdminService,
///     peer: SocketAddr,
/// ) -> impl hyper::service::Service<
///     http::Request<hyper::body::Incoming>,
///     Response = http::Response<http_body_util::Full<bytes::Bytes>>,
///     Error = std::convert::Infallible,
/// > {
///     hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
///         req.extensions_mut().insert(PeerAddr(peer));
///         admin.clone().oneshot(req)
///     })
/// }
/// ```
///
/// With axum, serve with `into_make_service_with_connect_info::<SocketAddr>()` and copy
/// axum's `ConnectInfo` into this in a layer before the service:
///
/// ```
/// use std::net::SocketAddr;
/// use axum::extract::{ConnectInfo, Request};
/// use barycenter_jobs_graphql::{AdminService, PeerAddr};
///
/// fn mount(admin: AdminService) -> axum::Router {
///     let admin = tower::ServiceBuilder::new()
///         .map_request(|mut req: Request| {
///             if let Some(ConnectInfo(peer)) =
///                 req.extensions().get::<ConnectInfo<SocketAddr>>().copied()
///             {
///                 req.extensions_mut().insert(PeerAddr(peer));
///             }
///             req
///         })
///         .service(admin);
///     axum::Router::new().nest_service("/admin/jobs", admin)
///     // then: axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

/// Why the peer check refused a request (each is a 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerRefusal {
    /// A `Host` that is neither loopback nor allowed, or several or unreadable `Host`
    /// headers.
    ForeignHost,
    /// Neither `Host` nor `:authority`.
    MissingHost,
    /// A peer address that is not loopback.
    ForeignPeer,
    /// The host attached no [`PeerAddr`].
    UnknownPeer,
    /// Through a proxy that says so (`Forwarded`, `X-Forwarded-For`, `X-Real-IP`): the
    /// loopback peer is the proxy, not the client.
    Forwarded,
}

/// Headers a reverse proxy adds to say whose request it forwards.
pub(crate) const FORWARDING_HEADERS: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

/// The rules of unauthenticated use (see the [module docs](self)): a loopback peer, no
/// forwarding header, one loopback or allowed `Host`. A tower-http validator, so
/// [`layer`] makes it a layer.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoopbackOnly {
    /// Lower-case host names without a port, beside the loopback ones.
    allowed_hosts: Arc<[String]>,
}

impl LoopbackOnly {
    /// Answer `host` (port ignored) too, beside the loopback names and the hosts already
    /// allowed.
    pub(crate) fn allow_host(&mut self, host: &str) {
        let mut hosts = self.allowed_hosts.to_vec();
        hosts.push(strip_port(host).to_ascii_lowercase());
        self.allowed_hosts = hosts.into();
    }

    /// The allowed host names beside the loopback ones, as configured.
    pub(crate) fn allowed_hosts(&self) -> &[String] {
        &self.allowed_hosts
    }

    /// Whether the request head `parts` passes.
    pub(crate) fn check(&self, parts: &Parts) -> Result<(), PeerRefusal> {
        self.check_head(&parts.uri, &parts.headers, &parts.extensions)
    }

    fn check_head(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Result<(), PeerRefusal> {
        match extensions.get::<PeerAddr>() {
            None => return Err(PeerRefusal::UnknownPeer),
            Some(PeerAddr(peer)) if !peer.ip().to_canonical().is_loopback() => {
                return Err(PeerRefusal::ForeignPeer);
            }
            Some(_) => {}
        }
        if FORWARDING_HEADERS.iter().any(|h| headers.contains_key(*h)) {
            return Err(PeerRefusal::Forwarded);
        }
        let name = match request_host(uri, headers) {
            Host::Missing => return Err(PeerRefusal::MissingHost),
            Host::Unreadable => return Err(PeerRefusal::ForeignHost),
            Host::Name(host) => strip_port(host.trim()).to_ascii_lowercase(),
        };
        if is_loopback(&name) || self.allowed_hosts.contains(&name) {
            Ok(())
        } else {
            Err(PeerRefusal::ForeignHost)
        }
    }
}

impl<B> ValidateRequest<B> for LoopbackOnly {
    type ResponseBody = Full<Bytes>;

    fn validate(&mut self, req: &mut Request<B>) -> Result<(), Response<Full<Bytes>>> {
        let refusal = match self.check_head(req.uri(), req.headers(), req.extensions()) {
            Ok(()) => return Ok(()),
            Err(refusal) => refusal,
        };
        let peer = req.extensions().get::<PeerAddr>().map(|p| p.0);
        // The client writes `Host`: logged with Debug (escaped) and cut short.
        let host = match request_host(req.uri(), req.headers()) {
            Host::Name(name) => Some(name.chars().take(128).collect::<String>()),
            Host::Missing | Host::Unreadable => None,
        };
        let path = req.uri().path();
        if refusal == PeerRefusal::UnknownPeer {
            tracing::warn!(
                ?host,
                %path,
                "admin request refused: unauthenticated use is allowed but the server attached \
                 no PeerAddr to the request, so its client cannot be told apart from a remote one"
            );
        } else {
            tracing::warn!(?peer, ?host, reason = ?refusal, %path, "unauthenticated admin request refused");
        }
        Err(refused(refusal))
    }
}

/// The layer refusing every request that [`LoopbackOnly`] does not pass, with a warning.
pub(crate) fn layer(rules: LoopbackOnly) -> ValidateRequestHeaderLayer<LoopbackOnly> {
    ValidateRequestHeaderLayer::custom(rules)
}

/// The 403 answering `refusal`, saying which rule refused the request.
pub(crate) fn refused(refusal: PeerRefusal) -> Response<Full<Bytes>> {
    let message = match refusal {
        PeerRefusal::ForeignHost => {
            "host not allowed: unauthenticated use answers loopback hosts only"
        }
        PeerRefusal::MissingHost => {
            "host not allowed: unauthenticated use needs a Host header naming a loopback host"
        }
        PeerRefusal::ForeignPeer => {
            "client not allowed: unauthenticated use answers clients on this machine only; configure a bearer token to serve others"
        }
        PeerRefusal::UnknownPeer => {
            "client not allowed: unauthenticated use needs the client's address, which the server did not attach"
        }
        PeerRefusal::Forwarded => {
            "client not allowed: unauthenticated use answers direct clients on this machine only, not requests forwarded by a proxy"
        }
    };
    error_response(StatusCode::FORBIDDEN, message)
}

/// The host a request names.
enum Host<'a> {
    /// No `Host` header and no authority in the URI.
    Missing,
    /// Several `Host` headers, or one that is not visible ASCII.
    Unreadable,
    /// The one `Host` header, or else the URI's authority (HTTP/2 `:authority`).
    Name(&'a str),
}

/// The host a request names: its `Host` header, else (HTTP/2) the URI's authority.
fn request_host<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Host<'a> {
    let mut hosts = headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Host::Unreadable,
        (Some(value), None) => value.to_str().map_or(Host::Unreadable, Host::Name),
        (None, _) => uri
            .authority()
            .map_or(Host::Missing, |a| Host::Name(a.as_str())),
    }
}

/// `example.com:8080` → `example.com`, `[::1]:80` → `::1`.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// `localhost`, `*.localhost` (RFC 6761), `127.0.0.0/8`, `::1`.
fn is_loopback(name: &str) -> bool {
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

#[cfg(test)]
pub(in crate::service::layer) mod cases;
#[cfg(test)]
mod tests;
