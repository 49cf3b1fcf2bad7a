//! [`AdminService`] itself: the composed stack of layers and routes behind one cloneable,
//! framework-free `tower::Service`.
//!
//! It takes a request with any body, boxes the body into the one type the routes read
//! ([`AdminBody`]), and hands it to the [stack](super::stack) the
//! [builder](super::AdminServiceBuilder) composed: the peer check (once unauthenticated use is
//! allowed), then the router and the route's own layers. Its future never fails; every problem is a response.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::FutureExt;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::auth::Authorization;
use super::route::AdminBody;
use super::stack::Stack;
use crate::metrics::Metrics;
use crate::schema::{AdminSchema, ReadShare};

/// Boxed error type bodies may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The admin API as a `tower` service: GraphQL over HTTP on the mount path, a GraphiQL page
/// on the playground path. See the [module docs](crate::service) for the HTTP behaviour.
#[derive(Clone)]
pub struct AdminService {
    inner: Arc<Inner>,
}

/// What a built service holds: the stack it serves with, and what it tells about itself.
pub(crate) struct Inner {
    pub(crate) stack: Stack,
    pub(crate) schema: AdminSchema,
    pub(crate) metrics: Metrics,
    pub(crate) mount_path: String,
    pub(crate) playground_path: Option<String>,
    pub(crate) body_limit: usize,
    pub(crate) max_batch: usize,
    pub(crate) auth: Arc<Authorization>,
    pub(crate) reads: ReadShare,
}

impl fmt::Debug for AdminService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminService")
            .field("mount_path", &self.inner.mount_path)
            .field("playground_path", &self.inner.playground_path)
            .field("body_limit", &self.inner.body_limit)
            .field("max_batch", &self.inner.max_batch)
            .field("auth", &self.inner.auth)
            .field("max_store_reads", &self.inner.reads.size())
            .finish_non_exhaustive()
    }
}

impl AdminService {
    pub(crate) fn from_inner(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The metrics this service serves on `{base}/metrics`, attached to its scheduler.
    pub fn metrics(&self) -> &crate::Metrics {
        &self.inner.metrics
    }

    /// The schema the service executes (with its limits), for hosts that also want to run
    /// queries in-process.
    pub fn schema(&self) -> &AdminSchema {
        &self.inner.schema
    }
}

impl<B> Service<Request<B>> for AdminService
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let answer = self.inner.stack.clone().oneshot(req.map(erase));
        ResponseFuture {
            inner: Box::pin(answer.map(|res| match res {
                Ok(res) => res,
                Err(never) => match never {},
            })),
        }
    }
}

/// `body` as the one body type the routes read: its chunks as [`Bytes`] (no copy when they
/// are already), its error boxed.
fn erase<B>(body: B) -> AdminBody
where
    B: Body + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_frame(|frame| frame.map_data(|mut data| data.copy_to_bytes(data.remaining())))
        .map_err(Into::into)
        .boxed_unsync()
}
