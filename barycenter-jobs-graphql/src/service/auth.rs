//! Authorization of admin requests: an optional bearer token and an optional host check.

use std::fmt;
use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::request::Parts;

/// A host-supplied check run on every GraphQL request before its body is read.
pub type AuthorizeFn = Arc<dyn Fn(&Parts) -> bool + Send + Sync + 'static>;

/// What a request must show to be served. Every configured check must pass; with none
/// configured every request is served (put the service behind your own auth then).
#[derive(Clone, Default)]
pub(crate) struct Authorization {
    token: Option<Arc<[u8]>>,
    check: Option<AuthorizeFn>,
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorization")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("check", &self.check.as_ref().map(|_| "<fn>"))
            .finish()
    }
}

impl Authorization {
    pub(crate) fn set_token(&mut self, token: &str) {
        self.token = Some(Arc::from(token.as_bytes()));
    }

    pub(crate) fn set_check(&mut self, check: AuthorizeFn) {
        self.check = Some(check);
    }

    /// Whether `parts` passes every configured check.
    pub(crate) fn allows(&self, parts: &Parts) -> bool {
        if let Some(expected) = &self.token {
            let given = parts
                .headers
                .get(AUTHORIZATION)
                .and_then(|v| bearer_token(v.as_bytes()));
            match given {
                Some(given) if constant_time_eq(expected, given) => {}
                _ => return false,
            }
        }
        match &self.check {
            Some(check) => check(parts),
            None => true,
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
mod tests {
    use super::*;

    fn parts(auth: Option<&str>) -> Parts {
        let mut b = http::Request::builder().uri("/");
        if let Some(a) = auth {
            b = b.header(AUTHORIZATION, a);
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
    fn every_configured_check_must_pass() {
        let open = Authorization::default();
        assert!(open.allows(&parts(None)));

        let mut token = Authorization::default();
        token.set_token("t0ken");
        assert!(token.allows(&parts(Some("Bearer t0ken"))));
        assert!(!token.allows(&parts(Some("Bearer t0keN"))));
        assert!(!token.allows(&parts(None)));

        let mut both = token.clone();
        both.set_check(Arc::new(|p: &Parts| p.headers.contains_key("x-admin")));
        assert!(!both.allows(&parts(Some("Bearer t0ken"))));
        let mut p = parts(Some("Bearer t0ken"));
        p.headers
            .insert("x-admin", http::HeaderValue::from_static("1"));
        assert!(both.allows(&p));
    }
}
