//! The answers every part of the service refuses a request with: a status and a GraphQL
//! error body, `{"errors":[{"message":"..."}]}`, never a stack trace or a database message.
//!
//! Shared by the layers (peer check, authorization), the router and the GraphQL core, so a
//! client reads one error format whichever of them turned it away.

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;

use crate::schema::INTERNAL_ERROR;

/// The media type of JSON bodies.
pub(crate) const JSON: &str = "application/json";

/// `{"errors":[{"message": message}]}` with `status`, as `application/json`, never cached.
pub(crate) fn error_response(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "errors": [{ "message": message }] }).to_string();
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// 404 `not found`.
pub(crate) fn not_found() -> Response<Full<Bytes>> {
    error_response(StatusCode::NOT_FOUND, "not found")
}

/// 405 `method not allowed`, naming the methods that are in `Allow`.
pub(crate) fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    method_not_allowed_with(allow, "method not allowed")
}

/// 405 with `message`, naming the methods that are in `Allow`.
pub(crate) fn method_not_allowed_with(allow: &'static str, message: &str) -> Response<Full<Bytes>> {
    let mut res = error_response(StatusCode::METHOD_NOT_ALLOWED, message);
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    res
}

/// 500 `internal error`: the cause is logged where it happened, never sent.
pub(crate) fn internal() -> Response<Full<Bytes>> {
    error_response(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR)
}
