//! The authorization settings of an [`AdminServiceBuilder`]: bearer tokens per role, a host
//! check, and unauthenticated use on this machine. They configure the
//! [authorization](crate::service::layer::auth) and [peer check](crate::service::layer::peer)
//! layers.

use std::sync::Arc;

use http::request::Parts;

use super::AdminServiceBuilder;
use crate::service::{Denied, Principal, Role};

impl AdminServiceBuilder {
    /// Accept `Authorization: Bearer <token>` as the principal `admin-token` with the
    /// [`Role::Operate`] role (queries and mutations). The token is compared in constant
    /// time; call it again to accept several.
    pub fn bearer_token(self, token: impl AsRef<str>) -> Self {
        self.bearer_token_for(token, Principal::new("admin-token", Role::Operate))
    }

    /// Accept `Authorization: Bearer <token>` as the principal `readonly-token` with the
    /// [`Role::Read`] role (queries only).
    pub fn read_only_token(self, token: impl AsRef<str>) -> Self {
        self.bearer_token_for(token, Principal::new("readonly-token", Role::Read))
    }

    /// Accept `Authorization: Bearer <token>` as `principal` (its name goes into the audit
    /// log).
    pub fn bearer_token_for(mut self, token: impl AsRef<str>, principal: Principal) -> Self {
        self.auth.add_token(token.as_ref(), principal);
        self
    }

    /// Authorize with the host's own check, for hosts that verify their own credentials
    /// (an OAuth access token and its scopes, a session, a client-certificate identity put
    /// in the extensions by an outer layer). It runs on the request head when no configured
    /// bearer token matched, and names the principal and its role, or refuses
    /// ([`Denied::Unauthenticated`]: 401, [`Denied::Forbidden`]: 403).
    ///
    /// ```
    /// use barycenter_jobs_graphql::{AdminServiceBuilder, Denied, Principal, Role};
    ///
    /// fn with_scopes(builder: AdminServiceBuilder) -> AdminServiceBuilder {
    ///     builder.authorize(|parts| {
    ///         // Stand-in for the host's own token introspection.
    ///         let scope = parts.headers.get("x-verified-scope").and_then(|v| v.to_str().ok());
    ///         match scope {
    ///             Some("jobs:operate") => Ok(Principal::new("client-42", Role::Operate)),
    ///             Some("jobs:read") => Ok(Principal::new("client-42", Role::Read)),
    ///             Some(_) => Err(Denied::Forbidden),
    ///             None => Err(Denied::Unauthenticated),
    ///         }
    ///     })
    /// }
    /// ```
    pub fn authorize<F>(mut self, check: F) -> Self
    where
        F: Fn(&Parts) -> Result<Principal, Denied> + Send + Sync + 'static,
    {
        self.auth.set_check(Arc::new(check));
        self
    }

    /// Serve requests without credentials, as the principal `anonymous` with the operate
    /// role, to clients on this machine only. For development and single-machine setups;
    /// anything reachable from a network wants a token or a check.
    ///
    /// What it trusts, exactly: the **connection's peer address**, which the host attaches
    /// as a [`PeerAddr`](crate::service::PeerAddr) extension when it accepts the connection (see its
    /// docs for hyper and axum), and nothing the client writes. Every request, on every path
    /// (the dashboard and GraphiQL pages included), is refused with 403, a JSON error body
    /// and a `tracing` warning naming the peer and the `Host`, unless
    ///
    /// 1. it carries a [`PeerAddr`](crate::service::PeerAddr) that is a loopback address
    ///    (`127.0.0.0/8`, `::1`, or `::ffff:127.x.x.x` from a dual-stack socket). A request
    ///    from any other address is refused **whatever its `Host` says**; a request without
    ///    a [`PeerAddr`](crate::service::PeerAddr) (a host that does not attach it, an in-process
    ///    call) is refused too, since its origin is unknown;
    /// 2. it has no `Forwarded`, `X-Forwarded-For` or `X-Real-IP` header: behind a reverse
    ///    proxy on this machine every client looks like a loopback peer, and a proxy that
    ///    says so is refused. A proxy that forwards silently cannot be told apart from a
    ///    local client: **do not put a proxy that faces a network in front of unauthenticated
    ///    use**;
    /// 3. it names exactly one `Host` (or, in HTTP/2, an `:authority`) that is a loopback
    ///    name (`localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`, any port) or one given
    ///    to [`allow_host`](Self::allow_host). A request with no `Host` is refused. This check
    ///    is not about where the client is (the peer check is): it stops a web page in a
    ///    local browser from reaching the service by rebinding its own DNS name to 127.0.0.1,
    ///    since the browser still sends the page's name.
    ///
    /// Without this call and without any authorization, the service refuses every request
    /// (closed by default). With bearer tokens or a check configured as well, requests
    /// without credentials are refused regardless, and these rules still apply to every
    /// request, so a token does not get through them either.
    pub fn allow_unauthenticated(mut self) -> Self {
        self.auth.allow_unauthenticated();
        self
    }

    /// A host name (port optional and ignored) that unauthenticated use also answers, beside
    /// the loopback names; see [`allow_unauthenticated`](Self::allow_unauthenticated). It
    /// widens the `Host` check only: the peer must still be a loopback address.
    pub fn allow_host(mut self, host: &str) -> Self {
        self.auth.allow_host(host);
        self
    }
}
