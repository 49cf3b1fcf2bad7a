//! Authorization of admin requests: who is asking ([`Principal`]) and what they may do
//! ([`Role`]), from bearer tokens per role or a host-supplied check; closed by default.

use std::fmt;
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

/// Why a request was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No or wrong credentials (401).
    Unauthenticated,
    /// Credentials not admitted (403).
    Forbidden,
    /// No authorization configured and `allow_unauthenticated` not called (403).
    NotConfigured,
    /// Unauthenticated use, from a `Host` that is neither loopback nor allowed (403).
    ForeignHost,
}

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

    /// Unauthenticated use is allowed and this request's `Host` is not among the admitted
    /// ones: refused on every path, the GraphiQL page included.
    pub(crate) fn foreign_host(&self, parts: &Parts) -> bool {
        self.unauthenticated && !self.host_allowed(parts)
    }

    /// The principal of `parts`, or why it is refused.
    ///
    /// A bearer token that matches a configured one names its principal; otherwise the
    /// host check decides. With neither configured, a request is refused unless
    /// unauthenticated use was allowed, and then only from a loopback or allowed `Host`.
    pub(crate) fn authenticate(&self, parts: &Parts) -> Result<Principal, Refusal> {
        if self.unauthenticated && !self.host_allowed(parts) {
            return Err(Refusal::ForeignHost);
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

    /// Whether the request's `Host` (or, in HTTP/2, its `:authority`) is a loopback name or
    /// one of the allowed hosts: a web page that rebinds its own name to 127.0.0.1 still
    /// sends its own name, and is refused. A request with no host at all did not come from
    /// a browser (HTTP/1.1 requires one) and passes.
    fn host_allowed(&self, parts: &Parts) -> bool {
        let host = parts
            .headers
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()));
        let Some(host) = host else {
            return true;
        };
        let name = strip_port(host.trim()).to_ascii_lowercase();
        is_loopback(&name) || self.allowed_hosts.contains(&name)
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

    #[test]
    fn closed_unless_configured() {
        let closed = Authorization::default();
        assert_eq!(
            closed.authenticate(&parts(None, Some("localhost"))),
            Err(Refusal::NotConfigured)
        );
        let mut open = Authorization::default();
        open.allow_unauthenticated();
        open.allow_host("jobs.internal:8081");
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
            let p = open.authenticate(&parts(None, Some(host))).unwrap();
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
                open.authenticate(&parts(None, Some(host))),
                Err(Refusal::ForeignHost),
                "{host}"
            );
        }
        assert!(open.authenticate(&parts(None, None)).is_ok());
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
