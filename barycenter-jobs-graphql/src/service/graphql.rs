//! The core of the service: GraphQL over HTTP, turning a request into an execution of the
//! [`AdminSchema`] and its result into a response.
//!
//! - `GET ?query=...&variables=...&operationName=...`: a query; a document holding a
//!   mutation is refused with 405 (`Allow: POST`), so a link or an `<img>` never triggers
//!   a job. A missing `query` or a bad query string is a 400.
//! - `POST` with `Content-Type: application/json`: one request object or a batch array (not
//!   empty, at most the batch limit), whose mutations are counted over the whole batch
//!   before anything runs (400 over the limit). Any other content type is a 415: the types
//!   an HTML form can send cross-site without a CORS preflight never reach the schema. A body
//!   over the limit of the [body limit layer](super::layer::limit) is a 413, one that is not
//!   JSON or not a GraphQL request a 400.
//! - Other methods: 405, `Allow: GET, POST`.
//!
//! The caller's [`Principal`], put in the extensions by the
//! [authorization layer](super::layer::auth), goes into each operation's data. Results are
//! 200 with `application/graphql-response+json` when the client's `Accept` names it and
//! `application/json` otherwise, never cached; GraphQL errors (validation, limits) come in
//! that 200, as GraphQL over HTTP has it for `application/json`.
//!
//! Who may call and how large a body may be are the layers' business; this module only
//! speaks the protocol.

use std::convert::Infallible;
use std::task::{Context, Poll};

use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, BatchResponse, Request};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use http::request::Parts;
use http::{Method, Request as HttpRequest, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use tower_service::Service;

use super::BoxError;
use super::layer::auth::Principal;
use super::layer::limit::BodyTooLarge;
use super::response::{
    JSON, error_response, internal, method_not_allowed, method_not_allowed_with,
};
use crate::schema::{AdminSchema, Loads};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// GraphQL over HTTP for one schema, with the batch and mutation limits of its requests.
#[derive(Clone)]
pub(crate) struct GraphQl {
    schema: AdminSchema,
    max_batch: usize,
    max_mutations: usize,
}

impl GraphQl {
    /// Serves `schema`, at most `max_batch` operations and `max_mutations` mutations a
    /// request.
    pub(crate) fn new(schema: AdminSchema, max_batch: usize, max_mutations: usize) -> Self {
        Self {
            schema,
            max_batch,
            max_mutations,
        }
    }
}

impl<B> Service<HttpRequest<B>> for GraphQl
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: HttpRequest<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let principal = parts.extensions.remove::<Principal>();
            Ok(match parts.method {
                Method::GET => this.get(&parts, principal).await,
                Method::POST => this.post(&parts, body, principal).await,
                _ => method_not_allowed("GET, POST"),
            })
        })
    }
}

impl GraphQl {
    /// A query in the query string (`?query=...&variables=...&operationName=...`).
    async fn get(&self, parts: &Parts, principal: Option<Principal>) -> Response<Full<Bytes>> {
        let query = parts.uri.query().unwrap_or_default();
        let mut request = match async_graphql::http::parse_query_string(query) {
            Ok(r) => r,
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("invalid query string: {e}"),
                );
            }
        };
        // `parse_query_string` reads `operation_name`; GraphQL over HTTP names it
        // `operationName`.
        if request.operation_name.is_none() {
            request.operation_name = operation_name(query);
        }
        if request.query.trim().is_empty() {
            return error_response(StatusCode::BAD_REQUEST, "missing `query` parameter");
        }
        // A document that fails to parse is left to `execute`, which reports it as a GraphQL
        // error; one that parses is refused if it holds a mutation, whichever operation is
        // selected, so a link or an <img> can never trigger a job.
        if let Ok(doc) = request.parsed_query()
            && doc
                .operations
                .iter()
                .any(|(_, op)| op.node.ty != OperationType::Query)
        {
            return method_not_allowed_with(
                "POST",
                "mutations are only accepted over POST with a JSON body",
            );
        }
        if let Some(principal) = principal {
            request = request.data(principal);
        }
        let response = self.schema.execute(request).await;
        graphql_response(parts, &BatchResponse::Single(response))
    }

    /// A JSON body: one request object or a batch array.
    async fn post<B>(
        &self,
        parts: &Parts,
        body: B,
        principal: Option<Principal>,
    ) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        if !is_json(parts) {
            return error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported content type: send the request as application/json",
            );
        }
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                let e: BoxError = e.into();
                if let Some(too_large) = e.downcast_ref::<BodyTooLarge>() {
                    return error_response(StatusCode::PAYLOAD_TOO_LARGE, &too_large.to_string());
                }
                tracing::debug!(error = %e, "could not read admin request body");
                return error_response(StatusCode::BAD_REQUEST, "could not read the request body");
            }
        };
        let batch = match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => serde_json::from_slice::<Vec<Request>>(&bytes).map(BatchRequest::Batch),
            _ => serde_json::from_slice::<Request>(&bytes).map(BatchRequest::Single),
        };
        let batch = match batch {
            Ok(BatchRequest::Batch(b)) if b.is_empty() => {
                return error_response(StatusCode::BAD_REQUEST, "empty batch");
            }
            Ok(BatchRequest::Batch(b)) if b.len() > self.max_batch => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "batch of {} operations is larger than the limit of {}",
                        b.len(),
                        self.max_batch
                    ),
                );
            }
            Ok(batch) => batch,
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("invalid GraphQL request body: {e}"),
                );
            }
        };
        // One set of store reads for the whole batch: its operations read the same data, so
        // 16 operations cost what one does.
        let loads = Loads::default();
        let prepare = |r: Request| {
            let r = r.data(loads.clone());
            match &principal {
                Some(p) => r.data(p.clone()),
                None => r,
            }
        };
        let mut batch = match batch {
            BatchRequest::Single(r) => BatchRequest::Single(prepare(r)),
            BatchRequest::Batch(rs) => BatchRequest::Batch(rs.into_iter().map(prepare).collect()),
        };
        // Counted before anything runs, over every operation of the batch.
        let mutations: usize = batch.iter_mut().map(crate::schema::mutations_in).sum();
        if mutations > self.max_mutations {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!(
                    "request runs {mutations} mutations, more than the limit of {}",
                    self.max_mutations
                ),
            );
        }
        let response = self.schema.execute_batch(batch).await;
        graphql_response(parts, &response)
    }
}

/// The decoded `operationName` of an `application/x-www-form-urlencoded` query string.
fn operation_name(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "operationName")
        .map(|(_, value)| value.into_owned())
}

/// `Content-Type: application/json` (parameters such as `charset` allowed). Anything else,
/// including the types an HTML form can send cross-site without a CORS preflight, is refused.
fn is_json(parts: &Parts) -> bool {
    parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .is_some_and(|mime| mime.eq_ignore_ascii_case(JSON))
}

/// The 200 carrying `response`, typed as the client's `Accept` asks.
fn graphql_response(parts: &Parts, response: &BatchResponse) -> Response<Full<Bytes>> {
    let wants_graphql_json = parts
        .headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(GRAPHQL_RESPONSE_JSON));
    let content_type = if wants_graphql_json {
        GRAPHQL_RESPONSE_JSON
    } else {
        JSON
    };
    match serde_json::to_vec(response) {
        Ok(body) => Response::builder()
            .status(StatusCode::OK)
            .header(CONTENT_TYPE, content_type)
            .header(CACHE_CONTROL, "no-store")
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_else(|_| internal()),
        Err(e) => {
            tracing::error!(error = %e, "could not serialise a GraphQL response");
            internal()
        }
    }
}

// Over a scheduler on SQLite, the one backend that needs no server.
#[cfg(all(test, feature = "sqlite"))]
mod tests;
