//! The request body limit: a body larger than the limit is never read past it.
//!
//! [`RequestBodyLimitLayer`] wraps the request body in a [`LimitedBody`], which fails with
//! [`BodyTooLarge`] as soon as more than the limit arrives, or at its first read when the
//! request's `Content-Length` already declares more. The service that reads the body turns
//! that error into its 413 (the GraphQL core answers
//! `{"errors":[{"message":"request body larger than N bytes"}]}`).
//!
//! The shape is tower-http's `limit`, but the refusal is left to the reader rather than
//! answered here, because only the reader knows whether a body matters: a `GET`, a request
//! refused with 405 or 415, or a page that ignores its body is answered as it would be
//! without the limit, whatever its `Content-Length` says.

use std::error::Error;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Request;
use http::header::CONTENT_LENGTH;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{LengthLimitError, Limited};
use pin_project_lite::pin_project;
use tower::Layer;
use tower_service::Service;

use crate::service::BoxError;

/// Puts [`RequestBodyLimit`] in front of a service.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestBodyLimitLayer {
    limit: usize,
}

impl RequestBodyLimitLayer {
    /// Bodies of at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for RequestBodyLimitLayer {
    type Service = RequestBodyLimit<S>;

    fn layer(&self, inner: S) -> RequestBodyLimit<S> {
        RequestBodyLimit {
            inner,
            limit: self.limit,
        }
    }
}

/// Hands the inner service the request with its body wrapped in a [`LimitedBody`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestBodyLimit<S> {
    inner: S,
    limit: usize,
}

impl<S, B> Service<Request<B>> for RequestBodyLimit<S>
where
    S: Service<Request<LimitedBody<B>>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let declared_too_large = declared.is_some_and(|n| n > self.limit as u64);
        let limit = self.limit;
        self.inner.call(req.map(|body| LimitedBody {
            inner: Limited::new(body, limit),
            limit,
            declared_too_large,
        }))
    }
}

pin_project! {
    /// A request body that fails with [`BodyTooLarge`] past the limit.
    pub(crate) struct LimitedBody<B> {
        #[pin]
        inner: Limited<B>,
        limit: usize,
        // `Content-Length` declared more than the limit: fail before reading anything.
        declared_too_large: bool,
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let too_large = BodyTooLarge { limit: *this.limit };
        if *this.declared_too_large {
            return Poll::Ready(Some(Err(too_large.into())));
        }
        this.inner.poll_frame(cx).map_err(|e| {
            if e.is::<LengthLimitError>() {
                too_large.into()
            } else {
                e
            }
        })
    }

    fn is_end_stream(&self) -> bool {
        !self.declared_too_large && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The request body is larger than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyTooLarge {
    /// The limit, in bytes.
    pub(crate) limit: usize,
}

impl fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request body larger than {} bytes", self.limit)
    }
}

impl Error for BodyTooLarge {}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full, StreamBody};
    use tower::{ServiceExt, service_fn};

    use super::*;

    /// Reads the body through the limit of 8 bytes: its bytes, or the error's message.
    async fn read(req: Request<Full<Bytes>>) -> Result<Bytes, String> {
        let svc = RequestBodyLimitLayer::new(8).layer(service_fn(
            |req: Request<LimitedBody<Full<Bytes>>>| async move {
                let read = match req.into_body().collect().await {
                    Ok(c) => Ok(c.to_bytes()),
                    Err(e) => Err(e
                        .downcast::<BodyTooLarge>()
                        .map_or_else(|e| format!("other: {e}"), |too_large| too_large.to_string())),
                };
                Ok::<_, Infallible>(read)
            },
        ));
        svc.oneshot(req).await.unwrap()
    }

    fn post() -> http::request::Builder {
        Request::post("/")
    }

    #[tokio::test]
    async fn passes_bodies_up_to_the_limit() {
        let req = post().body(Full::new(Bytes::from_static(b"12345678")));
        assert_eq!(read(req.unwrap()).await.unwrap(), "12345678");
    }

    #[tokio::test]
    async fn fails_past_the_limit() {
        let req = post().body(Full::new(Bytes::from_static(b"123456789")));
        assert_eq!(
            read(req.unwrap()).await.unwrap_err(),
            "request body larger than 8 bytes"
        );
    }

    #[tokio::test]
    async fn fails_at_once_on_a_declared_length_over_the_limit() {
        // Short body, long `Content-Length`: refused without reading.
        let req = post()
            .header(CONTENT_LENGTH, "9")
            .body(Full::new(Bytes::from_static(b"1")));
        assert_eq!(
            read(req.unwrap()).await.unwrap_err(),
            "request body larger than 8 bytes"
        );
        // An unreadable `Content-Length` is left to the count of what arrives.
        let req = post()
            .header(CONTENT_LENGTH, "lots")
            .body(Full::new(Bytes::from_static(b"1")));
        assert_eq!(read(req.unwrap()).await.unwrap(), "1");
    }

    #[tokio::test]
    async fn passes_other_body_errors_through() {
        let stream = futures_util::stream::iter([
            Ok(Frame::data(Bytes::from_static(b"12"))),
            Err(std::io::Error::other("connection reset")),
        ]);
        let body = LimitedBody {
            inner: Limited::new(StreamBody::new(stream), 8),
            limit: 8,
            declared_too_large: false,
        };
        let err = body.collect().await.unwrap_err();
        assert!(!err.is::<BodyTooLarge>());
        assert_eq!(err.to_string(), "connection reset");
    }
}
