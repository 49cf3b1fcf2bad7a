//! The operators' dashboard on `GET {base}/ui`: one HTML page, its script, its stylesheet
//! and its icon, embedded in the crate (`assets/dashboard/`), so it works where the network
//! is closed and no third-party script ever runs next to the admin token.
//!
//! The page holds no data: its script asks the GraphQL endpoint, with the bearer token the
//! operator typed (kept in `sessionStorage`), over `POST` and JSON. So the page and its assets
//! are served **without** authorization, like the GraphiQL page; the loopback peer and
//! `Host` checks of
//! [`allow_unauthenticated`](super::AdminServiceBuilder::allow_unauthenticated) still apply
//! to them, as to every path. Every answer carries a strict
//! `Content-Security-Policy` (only this origin, no inline script or style, no framing),
//! `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.
//!
//! | path after the mount path | served                                   | cache                     |
//! |---------------------------|------------------------------------------|---------------------------|
//! | `/ui`                     | the page, `text/html`                    | `no-cache` + `ETag`       |
//! | `/ui/app.js?v=V`          | the script, `text/javascript`            | a year, `immutable`       |
//! | `/ui/app.css?v=V`         | the stylesheet, `text/css`               | a year, `immutable`       |
//! | `/ui/icon.svg?v=V`        | the icon, `image/svg+xml`                | a year, `immutable`       |
//!
//! `V` is a hash of the embedded assets, so a new release is fetched at once; without the
//! current `v` an asset is served with `no-cache`. `If-None-Match` gets 304.

use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY as CSP, CONTENT_TYPE, ETAG, HeaderName, HeaderValue,
    IF_NONE_MATCH, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use http_body_util::Full;

/// Path of the dashboard, relative to the mount path.
pub const DASHBOARD_PATH: &str = "/ui";

/// The policy of every dashboard answer: this origin only, no inline script or style, no
/// plugins, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const INDEX: &str = include_str!("../../assets/dashboard/index.html");
const APP_JS: &[u8] = include_bytes!("../../assets/dashboard/app.js");
const APP_CSS: &[u8] = include_bytes!("../../assets/dashboard/app.css");
const ICON: &[u8] = include_bytes!("../../assets/dashboard/icon.svg");

/// The rendered page and the version of the assets.
pub(crate) struct Dashboard {
    index: Bytes,
    index_etag: String,
    version: String,
}

/// FNV-1a, 64 bits: enough to tell one release's assets from another's.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// `&`, `<`, `>` and `"` escaped, for an attribute value.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Dashboard {
    /// The page for a service mounted at `mount_path` (`` for the root), linking to the
    /// GraphiQL page at `graphiql` (a path relative to the mount path) when it is served.
    pub(crate) fn new(mount_path: &str, graphiql: Option<&str>) -> Self {
        let version = format!("{:016x}", fnv1a(&[APP_JS, APP_CSS, ICON]));
        let endpoint = if mount_path.is_empty() {
            "/"
        } else {
            mount_path
        };
        let graphiql = graphiql
            .map(|p| format!("{mount_path}{p}"))
            .unwrap_or_default();
        let index = INDEX
            .replace("{{BASE}}", &escape(mount_path))
            .replace("{{ENDPOINT}}", &escape(endpoint))
            .replace("{{GRAPHIQL}}", &escape(&graphiql))
            .replace("{{VERSION}}", &version);
        let index_etag = format!("\"{:016x}\"", fnv1a(&[index.as_bytes()]));
        Self {
            index: Bytes::from(index),
            index_etag,
            version,
        }
    }

    /// The answer to a request for `rest`, the path after `{base}/ui` (`` for the page).
    pub(crate) fn respond(&self, parts: &Parts, rest: &str) -> Response<Full<Bytes>> {
        let (body, content_type, etag) = match rest {
            "" => (
                self.index.clone(),
                "text/html; charset=utf-8",
                self.index_etag.clone(),
            ),
            "/app.js" => (
                Bytes::from_static(APP_JS),
                "text/javascript; charset=utf-8",
                format!("\"{}\"", self.version),
            ),
            "/app.css" => (
                Bytes::from_static(APP_CSS),
                "text/css; charset=utf-8",
                format!("\"{}\"", self.version),
            ),
            "/icon.svg" => (
                Bytes::from_static(ICON),
                "image/svg+xml",
                format!("\"{}\"", self.version),
            ),
            _ => return plain(StatusCode::NOT_FOUND, "not found"),
        };
        if parts.method != Method::GET && parts.method != Method::HEAD {
            let mut res = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            res.headers_mut()
                .insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return res;
        }
        let versioned = !rest.is_empty()
            && parts
                .uri
                .query()
                .unwrap_or_default()
                .split('&')
                .any(|pair| pair == format!("v={}", self.version));
        let cache = if versioned {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        let fresh = parts
            .headers
            .get_all(IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|tag| tag.trim() == etag || tag.trim() == "*");
        let (status, body) = if fresh {
            (StatusCode::NOT_MODIFIED, Bytes::new())
        } else if parts.method == Method::HEAD {
            (StatusCode::OK, Bytes::new())
        } else {
            (StatusCode::OK, body)
        };
        let mut res = Response::new(Full::new(body));
        *res.status_mut() = status;
        let headers = res.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
        if let Ok(etag) = HeaderValue::from_str(&etag) {
            headers.insert(ETAG, etag);
        }
        secure(headers);
        res
    }
}

/// The headers every dashboard answer carries.
fn secure(headers: &mut http::HeaderMap) {
    headers.insert(CSP, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
}

fn plain(status: StatusCode, message: &'static str) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from_static(message.as_bytes())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    secure(res.headers_mut());
    res
}

#[cfg(test)]
mod tests {
    use super::{Dashboard, escape};

    #[test]
    fn renders_the_page_for_its_mount_path() {
        let d = Dashboard::new("/ops/jobs", Some("/playground"));
        let html = std::str::from_utf8(&d.index).unwrap();
        assert!(html.contains(r#"content="/ops/jobs""#));
        assert!(html.contains(r#"content="/ops/jobs/playground""#));
        assert!(html.contains(&format!("/ops/jobs/ui/app.js?v={}", d.version)));
        assert!(!html.contains("{{"));
        let root = Dashboard::new("", None);
        let html = std::str::from_utf8(&root.index).unwrap();
        assert!(html.contains(r#"name="barycenter-jobs-endpoint" content="/""#));
        assert!(html.contains(r#"name="barycenter-jobs-graphiql" content="""#));
        assert_eq!(
            escape(r#"<a href="x">&"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }
}
