//! Authorization: who is asking ([`Principal`]) and what they may do ([`Role`]), from bearer
//! tokens per role or a host-supplied check ([`AuthorizeFn`]); closed by default.
//!
//! [`AuthorizeLayer`] runs on the request head, before any body is read: a request it admits
//! goes on with its [`Principal`] in the extensions (replacing any the client's side put
//! there), which the GraphQL core hands to the schema; one it refuses gets 401 with
//! `WWW-Authenticate: Bearer` (no or wrong credentials) or 403 (credentials not admitted, or
//! no authorization configured), each with a JSON error body. Its own module because who
//! may call is one question, asked in front of the GraphQL endpoint, `/health` and
//! `/metrics` alike, and answered the same way for each.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::{Either, Ready, ready};
use http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::Layer;
use tower_service::Service;

use super::peer::{self, LoopbackOnly, PeerRefusal};
use crate::service::response::error_response;

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

/// Why a request was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No or wrong credentials (401).
    Unauthenticated,
    /// Credentials not admitted (403).
    Forbidden,
    /// No authorization configured and `allow_unauthenticated` not called (403).
    NotConfigured,
    /// Unauthenticated use allowed, and the peer check refused the request (403).
    Peer(PeerRefusal),
}

/// How requests are authorized.
#[derive(Clone, Default)]
pub(crate) struct Authorization {
    tokens: Vec<(Arc<[u8]>, Principal)>,
    check: Option<AuthorizeFn>,
    unauthenticated: bool,
    /// The rules of unauthenticated use, applied once it is allowed.
    loopback: LoopbackOnly,
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
            .field("allowed_hosts", &self.loopback.allowed_hosts())
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
        self.loopback.allow_host(host);
    }

    /// The peer check every request must pass before routing: the rules of unauthenticated
    /// use once it is allowed, none otherwise.
    pub(crate) fn gate(&self) -> Option<LoopbackOnly> {
        self.unauthenticated.then(|| self.loopback.clone())
    }

    /// The principal of `parts`, or why it is refused.
    ///
    /// A bearer token that matches a configured one names its principal; otherwise the
    /// host check decides. With neither configured, a request is refused unless
    /// unauthenticated use was allowed, and then only past the peer check (which the
    /// service has already run; it is run again so this never answers `anonymous` alone).
    pub(crate) fn authenticate(&self, parts: &Parts) -> Result<Principal, Refusal> {
        if self.unauthenticated {
            self.loopback.check(parts).map_err(Refusal::Peer)?;
        }
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

/// The answer to a request the authorization refused.
pub(crate) fn refused(refusal: Refusal) -> Response<Full<Bytes>> {
    match refusal {
        Refusal::Unauthenticated => {
            let mut res = error_response(StatusCode::UNAUTHORIZED, "unauthorized");
            res.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            res
        }
        Refusal::Forbidden => error_response(StatusCode::FORBIDDEN, "forbidden"),
        Refusal::NotConfigured => error_response(
            StatusCode::FORBIDDEN,
            "no authorization configured: give the admin service a bearer token or a check, or allow unauthenticated loopback use",
        ),
        Refusal::Peer(refusal) => peer::refused(refusal),
    }
}

/// Puts [`Authorize`] in front of a service.
#[derive(Debug, Clone)]
pub(crate) struct AuthorizeLayer {
    auth: Arc<Authorization>,
}

impl AuthorizeLayer {
    /// Authorize requests as `auth` says.
    pub(crate) fn new(auth: Arc<Authorization>) -> Self {
        Self { auth }
    }
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Authorize<S> {
        Authorize {
            inner,
            auth: Arc::clone(&self.auth),
        }
    }
}

/// Serves a request with its [`Principal`] in the extensions, or answers why not.
#[derive(Debug, Clone)]
pub(crate) struct Authorize<S> {
    inner: S,
    auth: Arc<Authorization>,
}

/// The future of [`Authorize`]: the refusal at once, or the inner service's answer.
pub(crate) type ResponseFuture<F, E> = Either<Ready<Result<Response<Full<Bytes>>, E>>, F>;

impl<S, B> Service<Request<B>> for Authorize<S>
where
    S: Service<Request<B>, Response = Response<Full<Bytes>>>,
{
    type Response = Response<Full<Bytes>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        match self.auth.authenticate(&parts) {
            Ok(principal) => {
                parts.extensions.insert(principal);
                Either::Right(self.inner.call(Request::from_parts(parts, body)))
            }
            Err(refusal) => Either::Left(ready(Ok(refused(refusal)))),
        }
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
mod tests;
