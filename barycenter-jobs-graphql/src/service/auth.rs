//! Authorization of admin requests: who is asking ([`Principal`]) and what they may do
//! ([`Role`]), from bearer tokens per role or a host-supplied check; closed by default.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{AUTHORIZATION, HOST};
use http::request::Parts;

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Queries only; every mutation is refused (and audited).
    Read,
    /// Queries and mutations.
    Operate,
}

impl Role {
    /// `read` or `operate`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Operate => "operate",
        }
    }

    /// Whether this role may run mutations.
    pub fn may_operate(&self) -> bool {
        matches!(self, Role::Operate)
    }
}

/// Who is asking, as the authorization established it: the name goes into the audit log
/// and the runtime settings' `changed_by`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// A name for the audit log (a user, a client id, a token's label).
    pub name: String,
    /// What it may do.
    pub role: Role,
}

impl Principal {
    /// A principal called `name` with `role`.
    pub fn new(name: impl Into<String>, role: Role) -> Self {
        Self {
            name: name.into(),
            role,
        }
    }
}

/// Why a host check refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denied {
    /// No valid credentials: 401 with `WWW-Authenticate: Bearer`.
    Unauthenticated,
    /// Valid credentials that are not admitted at all (say, no admin scope): 403.
    Forbidden,
}

/// A host-supplied check run on every request before its body is read: verify the host's
/// own credentials (an OAuth access token and its scopes, a session, a client certificate
/// identity an outer layer put in the extensions) and name the principal.
pub type AuthorizeFn = Arc<dyn Fn(&Parts) -> Result<Principal, Denied> + Send + Sync + 'static>;

/// The address of the client at the other end of the connection, as the host accepted it.
///
/// [`allow_unauthenticated`](super::AdminServiceBuilder::allow_unauthenticated) serves a
/// request without credentials only when this is in the request's extensions and is a
/// loopback address: the `Host` header is written by the client and proves nothing about
/// where it is. The service cannot see the connection itself, so the host inserts this when
/// it accepts one (other hosts' types, such as axum's `ConnectInfo`, are not read; the crate
/// does not depend on a web framework).
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

/// Why a request was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No or wrong credentials (401).
    Unauthenticated,
    /// Credentials not admitted (403).
    Forbidden,
    /// No authorization configured and `allow_unauthenticated` not called (403).
    NotConfigured,
    /// Unauthenticated use, from a `Host` that is neither loopback nor allowed, or from
    /// several or unreadable `Host` headers (403).
    ForeignHost,
    /// Unauthenticated use, with neither `Host` nor `:authority` (403).
    MissingHost,
    /// Unauthenticated use, from a peer address that is not loopback (403).
    ForeignPeer,
    /// Unauthenticated use, and the host attached no [`PeerAddr`] (403).
    UnknownPeer,
    /// Unauthenticated use, through a proxy that says so (`Forwarded`, `X-Forwarded-For`,
    /// `X-Real-IP`): the loopback peer is the proxy, not the client (403).
    Forwarded,
}

/// Headers a reverse proxy adds to say whose request it forwards.
const FORWARDING_HEADERS: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

/// How requests are authorized.
#[derive(Clone, Default)]
pub(crate) struct Authorization {
    tokens: Vec<(Arc<[u8]>, Principal)>,
    check: Option<AuthorizeFn>,
    unauthenticated: bool,
    allowed_hosts: Vec<String>,
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tokens: Vec<_> = self
            .tokens
            .iter()
            .map(|(_, p)| format!("<redacted> as {} ({})", p.name, p.role.as_str()))
            .collect();
        f.debug_struct("Authorization")
            .field("tokens", &tokens)
            .field("check", &self.check.as_ref().map(|_| "<fn>"))
            .field("unauthenticated", &self.unauthenticated)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish()
    }
}

impl Authorization {
    pub(crate) fn add_token(&mut self, token: &str, principal: Principal) {
        self.tokens.push((Arc::from(token.as_bytes()), principal));
    }

    pub(crate) fn set_check(&mut self, check: AuthorizeFn) {
        self.check = Some(check);
    }

    pub(crate) fn allow_unauthenticated(&mut self) {
        self.unauthenticated = true;
    }

    pub(crate) fn allow_host(&mut self, host: &str) {
        self.allowed_hosts
            .push(strip_port(host).to_ascii_lowercase());
    }

    /// The gate of unauthenticated use, run on every path (the static pages included)
    /// before routing: once `allow_unauthenticated` is set, a request is served only if
    ///
    /// 1. the host attached a [`PeerAddr`] and it is a loopback address (the `Host` header
    ///    is the client's to write, so only the connection says where it comes from; with no
    ///    address known the door stays shut);
    /// 2. it carries no forwarding header (a proxy on this machine is a loopback peer that
    ///    relays anyone's requests);
    /// 3. it names exactly one `Host` (or, in HTTP/2, an `:authority`) that is a loopback
    ///    name or an allowed host: a web page that rebinds its own name to 127.0.0.1 still
    ///    sends its own name.
    pub(crate) fn gate(&self, parts: &Parts) -> Result<(), Refusal> {
        if !self.unauthenticated {
            return Ok(());
        }
        match parts.extensions.get::<PeerAddr>() {
            None => return Err(Refusal::UnknownPeer),
            Some(PeerAddr(peer)) if !peer.ip().to_canonical().is_loopback() => {
                return Err(Refusal::ForeignPeer);
            }
            Some(_) => {}
        }
        if FORWARDING_HEADERS
            .iter()
            .any(|h| parts.headers.contains_key(*h))
        {
            return Err(Refusal::Forwarded);
        }
        let name = match request_host(parts) {
            Host::Missing => return Err(Refusal::MissingHost),
            Host::Unreadable => return Err(Refusal::ForeignHost),
            Host::Name(host) => strip_port(host.trim()).to_ascii_lowercase(),
        };
        if is_loopback(&name) || self.allowed_hosts.contains(&name) {
            Ok(())
        } else {
            Err(Refusal::ForeignHost)
        }
    }

    /// The principal of `parts`, or why it is refused.
    ///
    /// A bearer token that matches a configured one names its principal; otherwise the
    /// host check decides. With neither configured, a request is refused unless
    /// unauthenticated use was allowed, and then only past [`gate`](Self::gate) (which the
    /// service has already run; it is run again so this never answers `anonymous` alone).
    pub(crate) fn authenticate(&self, parts: &Parts) -> Result<Principal, Refusal> {
        self.gate(parts)?;
        let given = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| bearer_token(v.as_bytes()));
        if let Some(given) = given {
            // Every token is compared, so the time taken does not tell which one matched.
            let mut found = None;
            for (expected, principal) in &self.tokens {
                if constant_time_eq(expected, given) && found.is_none() {
                    found = Some(principal);
                }
            }
            if let Some(principal) = found {
                return Ok(principal.clone());
            }
        }
        if let Some(check) = &self.check {
            return check(parts).map_err(|d| match d {
                Denied::Unauthenticated => Refusal::Unauthenticated,
                Denied::Forbidden => Refusal::Forbidden,
            });
        }
        if !self.tokens.is_empty() {
            return Err(Refusal::Unauthenticated);
        }
        if self.unauthenticated {
            return Ok(Principal::new("anonymous", Role::Operate));
        }
        Err(Refusal::NotConfigured)
    }
}

/// The host a request names.
pub(crate) enum Host<'a> {
    /// No `Host` header and no authority in the URI.
    Missing,
    /// Several `Host` headers, or one that is not visible ASCII.
    Unreadable,
    /// The one `Host` header, or else the URI's authority (HTTP/2 `:authority`).
    Name(&'a str),
}

/// The host `parts` names: its `Host` header, else (HTTP/2) the URI's authority.
pub(crate) fn request_host(parts: &Parts) -> Host<'_> {
    let mut hosts = parts.headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Host::Unreadable,
        (Some(value), None) => value.to_str().map_or(Host::Unreadable, Host::Name),
        (None, _) => parts
            .uri
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

/// The credentials of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let start = rest.iter().position(|b| *b != b' ')?;
    let token = &rest[start..];
    let end = token.iter().rposition(|b| *b != b' ')? + 1;
    Some(&token[..end])
}

/// Compare a secret with a candidate in time that depends only on the secret's length.
fn constant_time_eq(secret: &[u8], candidate: &[u8]) -> bool {
    let mut diff = u8::from(secret.len() != candidate.len());
    for (i, s) in secret.iter().enumerate() {
        // Past the candidate's end, compare against a byte that cannot equal every secret byte
        // (the length mismatch above already fails the comparison).
        let c = candidate.get(i).copied().unwrap_or(!*s);
        diff |= s ^ c;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(auth: Option<&str>, host: Option<&str>) -> Parts {
        let mut b = http::Request::builder().uri("/");
        if let Some(a) = auth {
            b = b.header(AUTHORIZATION, a);
        }
        if let Some(h) = host {
            b = b.header(HOST, h);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn compares_secrets() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3cres"));
        assert!(!constant_time_eq(b"s3cret", b"s3cre"));
        assert!(!constant_time_eq(b"s3cret", b"s3cret!"));
        assert!(!constant_time_eq(b"s3cret", b""));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn parses_bearer_headers() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer "), None);
        assert_eq!(bearer_token(b"Bear"), None);
    }

    /// `parts(None, host)` from the loopback peer 127.0.0.1:50000.
    fn from_loopback(host: Option<&str>) -> Parts {
        from_peer("127.0.0.1:50000", host)
    }

    fn from_peer(peer: &str, host: Option<&str>) -> Parts {
        let mut p = parts(None, host);
        p.extensions.insert(PeerAddr(peer.parse().unwrap()));
        p
    }

    fn open() -> Authorization {
        let mut open = Authorization::default();
        open.allow_unauthenticated();
        open.allow_host("jobs.internal:8081");
        open
    }

    #[test]
    fn closed_unless_configured() {
        let closed = Authorization::default();
        assert_eq!(
            closed.authenticate(&from_loopback(Some("localhost"))),
            Err(Refusal::NotConfigured)
        );
        let open = open();
        for host in [
            "localhost",
            "localhost:8081",
            "LOCALHOST",
            "app.localhost",
            "127.0.0.1:8081",
            "127.1.2.3",
            "[::1]:8081",
            "jobs.internal",
        ] {
            let p = open.authenticate(&from_loopback(Some(host))).unwrap();
            assert_eq!(p, Principal::new("anonymous", Role::Operate), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8081",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "[::2]",
        ] {
            assert_eq!(
                open.authenticate(&from_loopback(Some(host))),
                Err(Refusal::ForeignHost),
                "{host}"
            );
        }
    }

    #[test]
    fn unauthenticated_use_needs_a_loopback_peer() {
        let open = open();
        // Every loopback form of the peer passes, IPv4-mapped IPv6 included (a dual-stack
        // listener on `[::]` reports 127.0.0.1 that way).
        for peer in [
            "127.0.0.1:1",
            "127.9.9.9:1",
            "[::1]:1",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(
                open.authenticate(&from_peer(peer, Some("localhost")))
                    .is_ok(),
                "{peer}"
            );
        }
        // Any other peer is refused whatever `Host` says.
        for peer in [
            "192.0.2.2:40000",
            "10.0.0.1:1",
            "0.0.0.0:1",
            "[::ffff:192.0.2.2]:1",
            "[fd00::2]:1",
            "[::]:1",
        ] {
            for host in ["localhost", "127.0.0.1:8081", "jobs.internal"] {
                assert_eq!(
                    open.gate(&from_peer(peer, Some(host))),
                    Err(Refusal::ForeignPeer),
                    "{peer} {host}"
                );
                assert_eq!(
                    open.authenticate(&from_peer(peer, Some(host))),
                    Err(Refusal::ForeignPeer),
                    "{peer} {host}"
                );
            }
        }
        // The host attached no peer address: the door stays shut.
        assert_eq!(
            open.authenticate(&parts(None, Some("localhost"))),
            Err(Refusal::UnknownPeer)
        );
    }

    #[test]
    fn unauthenticated_use_needs_one_loopback_host() {
        let open = open();
        assert_eq!(
            open.authenticate(&from_loopback(None)),
            Err(Refusal::MissingHost)
        );
        // HTTP/2 names the host in `:authority`, which lands in the URI.
        let mut h2 = from_loopback(None);
        h2.uri = "http://localhost:8081/admin/jobs".parse().unwrap();
        assert!(open.authenticate(&h2).is_ok());
        h2.uri = "http://evil.example/admin/jobs".parse().unwrap();
        assert_eq!(open.authenticate(&h2), Err(Refusal::ForeignHost));
        // Two `Host` headers: which one a proxy or a framework reads is anyone's guess.
        let mut two = from_loopback(Some("localhost"));
        two.headers
            .append(HOST, http::HeaderValue::from_static("evil.example"));
        assert_eq!(open.authenticate(&two), Err(Refusal::ForeignHost));
        // A `Host` that is not visible ASCII is unreadable, not skipped.
        let mut odd = from_loopback(None);
        odd.headers.insert(
            HOST,
            http::HeaderValue::from_bytes(b"local\xffhost").unwrap(),
        );
        assert_eq!(open.authenticate(&odd), Err(Refusal::ForeignHost));
    }

    #[test]
    fn unauthenticated_use_refuses_forwarded_requests() {
        let open = open();
        for header in FORWARDING_HEADERS {
            let mut p = from_loopback(Some("localhost"));
            p.headers
                .insert(header, http::HeaderValue::from_static("for=192.0.2.9"));
            assert_eq!(open.authenticate(&p), Err(Refusal::Forwarded), "{header}");
        }
    }

    #[test]
    fn the_gate_is_off_without_allow_unauthenticated() {
        let mut tokens = Authorization::default();
        tokens.add_token("op-token", Principal::new("ops", Role::Operate));
        // A token holder on another machine, through a proxy, with no `Host`: served.
        let mut p = parts(Some("Bearer op-token"), None);
        p.extensions
            .insert(PeerAddr("192.0.2.9:1".parse().unwrap()));
        p.headers.insert(
            "x-forwarded-for",
            http::HeaderValue::from_static("192.0.2.10"),
        );
        assert_eq!(tokens.gate(&p), Ok(()));
        assert_eq!(tokens.authenticate(&p).unwrap().name, "ops");
    }

    #[test]
    fn tokens_per_role_and_host_check() {
        let mut auth = Authorization::default();
        auth.add_token("op-token", Principal::new("ops", Role::Operate));
        auth.add_token("ro-token", Principal::new("viewer", Role::Read));
        let who = |a| auth.authenticate(&parts(Some(a), None));
        assert_eq!(who("Bearer op-token").unwrap().role, Role::Operate);
        assert_eq!(who("Bearer ro-token").unwrap().name, "viewer");
        assert_eq!(who("Bearer ro-tokeN"), Err(Refusal::Unauthenticated));
        assert_eq!(
            auth.authenticate(&parts(None, None)),
            Err(Refusal::Unauthenticated)
        );

        let mut check = auth.clone();
        check.set_check(Arc::new(|p: &Parts| {
            match p.headers.get("x-scope").and_then(|v| v.to_str().ok()) {
                Some("jobs:write") => Ok(Principal::new("client-1", Role::Operate)),
                Some("jobs:read") => Ok(Principal::new("client-2", Role::Read)),
                Some(_) => Err(Denied::Forbidden),
                None => Err(Denied::Unauthenticated),
            }
        }));
        let mut p = parts(Some("Bearer not-a-token"), None);
        p.headers
            .insert("x-scope", http::HeaderValue::from_static("jobs:read"));
        assert_eq!(check.authenticate(&p).unwrap().name, "client-2");
        p.headers
            .insert("x-scope", http::HeaderValue::from_static("other"));
        assert_eq!(check.authenticate(&p), Err(Refusal::Forbidden));
        // A configured token still works beside the check.
        assert_eq!(
            check
                .authenticate(&parts(Some("Bearer op-token"), None))
                .unwrap()
                .name,
            "ops"
        );
    }
}
