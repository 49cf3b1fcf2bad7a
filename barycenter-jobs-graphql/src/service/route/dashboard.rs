//! The operators' dashboard on `GET {base}/ui`: one HTML page, its script, its stylesheet
//! and its icon, embedded in the crate (`assets/dashboard/`), so it works where the network
//! is closed and no third-party script ever runs next to the admin token.
//!
//! The page holds no data: its script asks the GraphQL endpoint, with the bearer token the
//! operator typed (kept in `sessionStorage`), over `POST` and JSON. So the page and its assets
//! are served **without** authorization, like the GraphiQL page; the loopback peer and
//! `Host` checks of
//! [`allow_unauthenticated`](crate::service::AdminServiceBuilder::allow_unauthenticated)
//! still apply to them, as to every path. The [security headers
//! layer](crate::service::layer::headers) gives every answer a strict
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
//! current `v` an asset is served with `no-cache`. `If-None-Match` gets 304. The router
//! hands the path after `/ui` in the [`SubPath`] extension (none: the page).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::{Ready, ready};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderValue, IF_NONE_MATCH};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use tower_service::Service;

use super::SubPath;

const INDEX: &str = include_str!("../../../assets/dashboard/index.html");
const APP_JS: &[u8] = include_bytes!("../../../assets/dashboard/app.js");
const APP_CSS: &[u8] = include_bytes!("../../../assets/dashboard/app.css");
const ICON: &[u8] = include_bytes!("../../../assets/dashboard/icon.svg");

/// The dashboard's files: the rendered page and the version of the assets.
#[derive(Clone)]
pub(crate) struct Dashboard {
    index: Bytes,
    index_etag: Arc<str>,
    version: Arc<str>,
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
            index_etag: index_etag.into(),
            version: version.into(),
        }
    }

    /// The answer to a request for `rest`, the path after `{base}/ui` (`` for the page).
    fn respond<B>(&self, req: &Request<B>, rest: &str) -> Response<Full<Bytes>> {
        let (body, content_type, etag) = match rest {
            "" => (
                self.index.clone(),
                "text/html; charset=utf-8",
                self.index_etag.to_string(),
            ),
            "/app.js" => (
                Bytes::from_static(APP_JS),
                "text/javascript; charset=utf-8",
                format!("\"{}\"", &*self.version),
            ),
            "/app.css" => (
                Bytes::from_static(APP_CSS),
                "text/css; charset=utf-8",
                format!("\"{}\"", &*self.version),
            ),
            "/icon.svg" => (
                Bytes::from_static(ICON),
                "image/svg+xml",
                format!("\"{}\"", &*self.version),
            ),
            _ => return plain(StatusCode::NOT_FOUND, "not found"),
        };
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut res = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            res.headers_mut()
                .insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return res;
        }
        let versioned = !rest.is_empty()
            && req
                .uri()
                .query()
                .unwrap_or_default()
                .split('&')
                .any(|pair| pair == format!("v={}", self.version));
        let cache = if versioned {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        let fresh = req
            .headers()
            .get_all(IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|tag| tag.trim() == etag || tag.trim() == "*");
        let (status, body) = if fresh {
            (StatusCode::NOT_MODIFIED, Bytes::new())
        } else if req.method() == Method::HEAD {
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
        res
    }
}

impl<B> Service<Request<B>> for Dashboard {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let rest = req
            .extensions()
            .get::<SubPath>()
            .map_or("", |p| p.0.as_str());
        ready(Ok(self.respond(&req, rest)))
    }
}

fn plain(status: StatusCode, message: &'static str) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from_static(message.as_bytes())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

#[cfg(test)]
mod tests {
    use tower::ServiceExt;

    use super::*;

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

    #[tokio::test]
    async fn serves_the_file_the_router_names() {
        let d = Dashboard::new("/admin/jobs", None);
        let get = |rest: Option<&str>, method: Method| {
            let mut req = Request::builder()
                .method(method)
                .uri("/admin/jobs/ui")
                .body(())
                .unwrap();
            if let Some(rest) = rest {
                req.extensions_mut().insert(SubPath(rest.to_owned()));
            }
            d.clone().oneshot(req)
        };
        let page = get(None, Method::GET).await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        let script = get(Some("/app.js"), Method::GET).await.unwrap();
        assert_eq!(
            script.headers()[CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(script.headers()[CACHE_CONTROL], "no-cache");
        let missing = get(Some("/nope"), Method::GET).await.unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let post = get(None, Method::POST).await.unwrap();
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[http::header::ALLOW], "GET, HEAD");
    }
}
