//! The security headers of the pages a browser renders: the dashboard's strict
//! [`CONTENT_SECURITY_POLICY`], `X-Content-Type-Options: nosniff`,
//! `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY` and
//! `Cross-Origin-Resource-Policy: same-origin`, on every answer of the service it wraps
//! (its 304, 404 and 405 included), replacing any value the service set.
//!
//! They are a layer of their own so the page that serves files does not also have to
//! remember to secure each answer. tower-http's `set-header` does exactly this (an
//! overriding insert per header, status and body untouched), so it is used as is.

use bytes::Bytes;
use http::Response;
use http::header::{
    CONTENT_SECURITY_POLICY as CSP, HeaderName, HeaderValue, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http_body_util::Full;
use tower_http::set_header::response::SetMultipleResponseHeadersLayer;

/// The policy of every dashboard answer: this origin only, no inline script or style, no
/// plugins, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The layer setting the security headers on every answer of a service that answers
/// `Response<Full<Bytes>>`.
pub(crate) fn layer() -> SetMultipleResponseHeadersLayer<Response<Full<Bytes>>> {
    let header =
        |name: HeaderName, value: &'static str| (name, HeaderValue::from_static(value)).into();
    SetMultipleResponseHeadersLayer::overriding(vec![
        header(CSP, CONTENT_SECURITY_POLICY),
        header(X_CONTENT_TYPE_OPTIONS, "nosniff"),
        header(REFERRER_POLICY, "no-referrer"),
        header(X_FRAME_OPTIONS, "DENY"),
        header(
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ])
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::{Layer, ServiceExt, service_fn};

    use super::*;

    #[tokio::test]
    async fn sets_every_header_and_keeps_status_and_body() {
        let inner = service_fn(|_: Request<()>| async {
            let mut res = Response::new(Full::new(Bytes::from_static(b"not found")));
            *res.status_mut() = StatusCode::NOT_FOUND;
            res.headers_mut()
                .insert(X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
            Ok::<_, Infallible>(res)
        });
        let res = layer()
            .layer(inner)
            .oneshot(Request::new(()))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let h = res.headers();
        assert_eq!(h[CSP], CONTENT_SECURITY_POLICY);
        assert_eq!(h[X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[REFERRER_POLICY], "no-referrer");
        // Replaced, not appended.
        assert_eq!(h.get_all(X_FRAME_OPTIONS).iter().count(), 1);
        assert_eq!(h[X_FRAME_OPTIONS], "DENY");
        assert_eq!(h["cross-origin-resource-policy"], "same-origin");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "not found");
    }
}
