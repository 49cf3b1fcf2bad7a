//! The [`AdminService`] itself: routing, body handling and GraphQL over HTTP.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, BatchResponse, Request};
use barycenter_jobs_core::SchedulerHandle;
use bytes::Bytes;
use http::header::{
    ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE,
};
use http::request::Parts;
use http::{Method, Request as HttpRequest, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use tower_service::Service;

use super::auth::{Authorization, Host, PeerAddr, Principal, Refusal, request_host};
use super::builder::AdminServiceBuilder;
use super::future::ResponseFuture;
use crate::metrics::Metrics;
use crate::schema::{AdminSchema, INTERNAL_ERROR, Loads, ReadShare};

/// Boxed error type bodies may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

const JSON: &str = "application/json";
/// Path of the health answer, relative to the mount path.
pub const HEALTH_PATH: &str = "/health";
/// Path of the Prometheus metrics, relative to the mount path.
pub const METRICS_PATH: &str = "/metrics";
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// The admin API as a `tower` service: GraphQL over HTTP on the mount path, a GraphiQL page
/// on the playground path. See the [module docs](crate::service) for the HTTP behaviour.
#[derive(Clone)]
pub struct AdminService {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) schema: AdminSchema,
    pub(crate) mount_path: String,
    pub(crate) playground_path: Option<String>,
    pub(crate) playground_html: Option<Bytes>,
    /// The dashboard on `{base}/ui`, unless disabled.
    pub(crate) dashboard: Option<super::dashboard::Dashboard>,
    pub(crate) body_limit: usize,
    pub(crate) max_batch: usize,
    pub(crate) max_mutations: usize,
    pub(crate) auth: Authorization,
    /// What `/health` and `/metrics` read.
    pub(crate) handle: SchedulerHandle,
    pub(crate) metrics: Metrics,
    /// The share of the pool `/health`, `/metrics` and the GraphQL queries read under.
    pub(crate) reads: ReadShare,
    /// `/health` served without authorization (for probes).
    pub(crate) open_health: bool,
    /// `/metrics` served without authorization (for scrapers).
    pub(crate) open_metrics: bool,
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
    /// Start configuring a service over a started scheduler.
    pub fn builder(handle: SchedulerHandle) -> AdminServiceBuilder {
        AdminServiceBuilder::new(handle)
    }

    /// A service with every default: mounted at `/admin/jobs`, GraphiQL on
    /// `/admin/jobs/playground`, limits on, and **no authorization configured, so it refuses
    /// every GraphQL request** (403) until built with [`builder`](Self::builder) and a
    /// token, a check or [`allow_unauthenticated`](AdminServiceBuilder::allow_unauthenticated).
    pub fn new(handle: SchedulerHandle) -> Self {
        Self::builder(handle).build()
    }

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

impl<B> Service<HttpRequest<B>> for AdminService
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

    fn call(&mut self, req: HttpRequest<B>) -> Self::Future {
        let inner = Arc::clone(&self.inner);
        ResponseFuture {
            inner: Box::pin(async move { inner.handle(req).await }),
        }
    }
}

enum Route<'a> {
    GraphQl,
    Playground,
    /// The dashboard; the path after `/ui`.
    Dashboard(&'a str),
    Health,
    Metrics,
    NotFound,
}

impl Inner {
    fn route<'a>(&self, path: &'a str) -> Route<'a> {
        let relative = match path.strip_prefix(self.mount_path.as_str()) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
            _ => path,
        };
        let relative = relative.trim_end_matches('/');
        if relative.is_empty() {
            Route::GraphQl
        } else if self.playground_path.as_deref() == Some(relative) {
            Route::Playground
        } else if relative == HEALTH_PATH {
            Route::Health
        } else if relative == METRICS_PATH {
            Route::Metrics
        } else if let Some(rest) = relative
            .strip_prefix(super::dashboard::DASHBOARD_PATH)
            .filter(|rest| self.dashboard.is_some() && (rest.is_empty() || rest.starts_with('/')))
        {
            Route::Dashboard(rest)
        } else {
            Route::NotFound
        }
    }

    async fn handle<B>(&self, req: HttpRequest<B>) -> Response<Full<Bytes>>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = req.into_parts();
        // Before routing: with unauthenticated use allowed, a client that is not on this
        // machine, or a page that rebinds its own name to this host, is refused whatever it
        // asks for.
        if let Err(refusal) = self.auth.gate(&parts) {
            return refused_at_gate(&parts, refusal);
        }
        match self.route(parts.uri.path()) {
            Route::NotFound => error_response(StatusCode::NOT_FOUND, "not found"),
            // Static, holding no data: served without credentials (its script sends the
            // token with each API call); the foreign-Host check above still applied.
            Route::Dashboard(rest) => match &self.dashboard {
                Some(dashboard) => dashboard.respond(&parts, rest),
                None => error_response(StatusCode::NOT_FOUND, "not found"),
            },
            Route::Playground => match (&parts.method, &self.playground_html) {
                (&Method::GET, Some(html)) => Response::builder()
                    .header(CONTENT_TYPE, "text/html; charset=utf-8")
                    .body(Full::new(html.clone()))
                    .unwrap_or_else(|_| internal()),
                _ => method_not_allowed("GET"),
            },
            // Behind the same authorization as queries (any role reads them) unless opened
            // for probes / scrapers.
            route @ (Route::Health | Route::Metrics) => {
                let open = match route {
                    Route::Health => self.open_health,
                    _ => self.open_metrics,
                };
                if !open && let Err(refusal) = self.auth.authenticate(&parts) {
                    return refused(refusal);
                }
                // HEAD answers as GET without the body (probes and uptime checkers use it).
                let head = parts.method == Method::HEAD;
                if parts.method != Method::GET && !head {
                    return method_not_allowed("GET, HEAD");
                }
                // Store reads, under the admin reads' share of the pool.
                let mut res = match route {
                    Route::Health => self.reads.run(super::health::respond(&self.handle)).await,
                    _ => {
                        let answer = super::metrics::respond(&self.metrics, &self.handle);
                        self.reads.run(answer).await
                    }
                };
                if head {
                    *res.body_mut() = Full::default();
                }
                res
            }
            Route::GraphQl => {
                let principal = match self.auth.authenticate(&parts) {
                    Ok(principal) => principal,
                    Err(refusal) => return refused(refusal),
                };
                match parts.method {
                    Method::GET => self.get(&parts, principal).await,
                    Method::POST => self.post(&parts, body, principal).await,
                    _ => method_not_allowed("GET, POST"),
                }
            }
        }
    }

    /// A query in the query string (`?query=...&variables=...&operationName=...`).
    async fn get(&self, parts: &Parts, principal: Principal) -> Response<Full<Bytes>> {
        let mut request =
            match async_graphql::http::parse_query_string(parts.uri.query().unwrap_or_default()) {
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
            request.operation_name =
                query_param(parts.uri.query().unwrap_or_default(), "operationName");
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
        let response = self.schema.execute(request.data(principal)).await;
        graphql_response(parts, &BatchResponse::Single(response))
    }

    /// A JSON body: one request object or a batch array.
    async fn post<B>(&self, parts: &Parts, body: B, principal: Principal) -> Response<Full<Bytes>>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        if !is_json(parts) {
            return error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported content type: send the request as application/json",
            );
        }
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.body_limit as u64) {
            return too_large(self.body_limit);
        }
        let bytes = match Limited::new(body, self.body_limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return too_large(self.body_limit);
            }
            Err(e) => {
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
        let mut batch = match batch {
            BatchRequest::Single(r) => BatchRequest::Single(r.data(principal).data(loads)),
            BatchRequest::Batch(rs) => BatchRequest::Batch(
                rs.into_iter()
                    .map(|r| r.data(principal.clone()).data(loads.clone()))
                    .collect(),
            ),
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

/// The decoded value of `name` in an `application/x-www-form-urlencoded` query string.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key).as_deref() == Some(name))
            .then(|| percent_decode(value))
            .flatten()
    })
}

/// `+` is a space, `%XX` a byte; `None` when the result is not UTF-8 or an escape is broken.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
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

/// `{"errors":[{"message": message}]}` with `status`.
fn error_response(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "errors": [{ "message": message }] }).to_string();
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The answer to a request the authorization refused.
fn refused(refusal: Refusal) -> Response<Full<Bytes>> {
    match refusal {
        Refusal::Unauthenticated => unauthorized(),
        Refusal::Forbidden => error_response(StatusCode::FORBIDDEN, "forbidden"),
        Refusal::NotConfigured => error_response(
            StatusCode::FORBIDDEN,
            "no authorization configured: give the admin service a bearer token or a check, or allow unauthenticated loopback use",
        ),
        Refusal::ForeignHost => error_response(
            StatusCode::FORBIDDEN,
            "host not allowed: unauthenticated use answers loopback hosts only",
        ),
        Refusal::MissingHost => error_response(
            StatusCode::FORBIDDEN,
            "host not allowed: unauthenticated use needs a Host header naming a loopback host",
        ),
        Refusal::ForeignPeer => error_response(
            StatusCode::FORBIDDEN,
            "client not allowed: unauthenticated use answers clients on this machine only; configure a bearer token to serve others",
        ),
        Refusal::UnknownPeer => error_response(
            StatusCode::FORBIDDEN,
            "client not allowed: unauthenticated use needs the client's address, which the server did not attach",
        ),
        Refusal::Forwarded => error_response(
            StatusCode::FORBIDDEN,
            "client not allowed: unauthenticated use answers direct clients on this machine only, not requests forwarded by a proxy",
        ),
    }
}

/// A request the unauthenticated-use gate refused: logged (who asked, under which name;
/// never a credential), then answered as [`refused`] does.
fn refused_at_gate(parts: &Parts, refusal: Refusal) -> Response<Full<Bytes>> {
    let peer = parts.extensions.get::<PeerAddr>().map(|p| p.0);
    // The client writes `Host`: logged with Debug (escaped) and cut short.
    let host = match request_host(parts) {
        Host::Name(name) => Some(name.chars().take(128).collect::<String>()),
        Host::Missing | Host::Unreadable => None,
    };
    if refusal == Refusal::UnknownPeer {
        tracing::warn!(
            ?host,
            path = %parts.uri.path(),
            "admin request refused: unauthenticated use is allowed but the server attached no \
             PeerAddr to the request, so its client cannot be told apart from a remote one"
        );
    } else {
        tracing::warn!(
            ?peer,
            ?host,
            reason = ?refusal,
            path = %parts.uri.path(),
            "unauthenticated admin request refused"
        );
    }
    refused(refusal)
}

fn unauthorized() -> Response<Full<Bytes>> {
    let mut res = error_response(StatusCode::UNAUTHORIZED, "unauthorized");
    res.headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    res
}

fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    method_not_allowed_with(allow, "method not allowed")
}

fn method_not_allowed_with(allow: &'static str, message: &str) -> Response<Full<Bytes>> {
    let mut res = error_response(StatusCode::METHOD_NOT_ALLOWED, message);
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    res
}

fn too_large(limit: usize) -> Response<Full<Bytes>> {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("request body larger than {limit} bytes"),
    )
}

fn internal() -> Response<Full<Bytes>> {
    error_response(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR)
}

#[cfg(test)]
mod tests {
    use super::{percent_decode, query_param};

    #[test]
    fn decodes_query_parameters() {
        assert_eq!(percent_decode("a+b%20c%7B").as_deref(), Some("a b c{"));
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%FF"), None);
        let q = "query=%7B+x+%7D&operationName=One&flag";
        assert_eq!(query_param(q, "operationName").as_deref(), Some("One"));
        assert_eq!(query_param(q, "query").as_deref(), Some("{ x }"));
        assert_eq!(query_param(q, "flag").as_deref(), Some(""));
        assert_eq!(query_param(q, "missing"), None);
    }
}
