//! [`AdminService`]: the admin schema as a `tower::Service` any host can mount.
//!
//! It takes `http::Request<B>` for any [`http_body::Body`] `B` and answers
//! `http::Response<http_body_util::Full<bytes::Bytes>>`; its error type is
//! [`Infallible`](std::convert::Infallible): every problem is a response. It has no tie to a
//! web framework, so axum, hyper, tonic-web or anything that speaks tower can host it, and any
//! tower layer (timeouts, concurrency limits, tracing, CORS) can wrap it.
//!
//! # Paths
//!
//! The service is a leaf. It knows its public *mount path* (default `/admin/jobs`) and strips
//! it from the request path when present, then routes what is left:
//!
//! | path after the mount path | served                                        |
//! |---------------------------|-----------------------------------------------|
//! | `` or `/`                 | GraphQL over HTTP                             |
//! | `/playground` (settable)  | the GraphiQL page (unless disabled)           |
//! | anything else             | 404                                           |
//!
//! So the same service works served directly by hyper (it sees `/admin/jobs/playground`)
//! and nested in a router that strips the prefix (`axum::Router::nest_service("/admin/jobs",
//! svc)` hands it `/playground`). Mounted elsewhere, set [`mount_path`] to the public path:
//! the GraphiQL page posts its queries there.
//!
//! # HTTP behaviour
//!
//! | request                                                          | status                       |
//! |------------------------------------------------------------------|------------------------------|
//! | `POST` `application/json`, one request or a batch array          | 200, GraphQL response(s)     |
//! | `GET ?query=...` (a query)                                       | 200                          |
//! | `GET` whose document holds a mutation                            | 405, `Allow: POST`           |
//! | `GET` without `query`, or a bad query string                     | 400                          |
//! | `POST` with another content type (form, `text/plain`) or none    | 415                          |
//! | `POST` body that is not JSON or not a GraphQL request; empty or oversized batch | 400  |
//! | body over the limit (default 1 MiB)                              | 413                          |
//! | missing or wrong credentials                                     | 401, `WWW-Authenticate: Bearer` |
//! | other methods on the GraphQL path                                | 405, `Allow: GET, POST`      |
//! | `GET` on the playground path                                     | 200, HTML                    |
//! | other paths                                                      | 404                          |
//!
//! Every non-200 answer has a GraphQL error body, `{"errors":[{"message":"..."}]}`.
//! GraphQL errors (validation, a `limit` out of range, depth or complexity over the limits)
//! come in a 200 response, as GraphQL over HTTP has it for `application/json`. The response
//! type is `application/graphql-response+json` when the client's `Accept` names it,
//! `application/json` otherwise. No message carries SQL, a connection string or a backtrace:
//! database failures read `internal error` and are logged with `tracing`.
//!
//! Refusing non-JSON posts and mutations over `GET` means a cross-site HTML form, link or
//! image cannot trigger a job: a browser sends `application/json` cross-site only after a
//! CORS preflight, which this service does not answer.
//!
//! # Authorization
//!
//! [`bearer_token`] requires `Authorization: Bearer <token>` (compared in constant time);
//! [`authorize`] runs a host check on the request head. Every configured check must pass.
//! They guard the GraphQL path; the GraphiQL page is static HTML that holds no data (its
//! queries go through the GraphQL path, with the headers set in its header editor), so a
//! browser can load it; turn it off with [`disable_playground`] if even that is unwanted.
//! With neither configured the service serves everyone: mount it behind your own auth then.
//!
//! # Limits
//!
//! Query depth 16 and complexity 500 by default, batches of up to 16 operations, bodies up
//! to 1 MiB; introspection stays on unless [`disable_introspection`] is called.
//!
//! # Examples
//!
//! Nested in an axum router next to other routes, behind a standard tower layer:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # use barycenter_jobs_core::{Database, Registry, Scheduler};
//! # let dir = tempfile::tempdir()?;
//! # let db = Database::connect(&format!("sqlite://{}", dir.path().join("j.db").display())).await?;
//! # let handle = Scheduler::builder(Registry::builder().build()?, db).start().await?;
//! use axum::{Router, routing::get};
//! use barycenter_jobs_graphql::AdminService;
//! use tower::ServiceExt;
//!
//! let admin = tower::ServiceBuilder::new()
//!     .map_request(|req: http::Request<axum::body::Body>| {
//!         tracing::debug!(path = %req.uri().path(), "admin request");
//!         req
//!     })
//!     .service(AdminService::builder(handle.clone()).bearer_token("s3cret").build());
//! let app = Router::new()
//!     .route("/health", get(|| async { "ok" }))
//!     .nest_service("/admin/jobs", admin);
//!
//! // The router strips `/admin/jobs`; the service serves GraphiQL on what is left.
//! let page = http::Request::get("/admin/jobs/playground").body(axum::body::Body::empty())?;
//! assert_eq!(app.clone().oneshot(page).await?.status(), 200);
//! let anonymous = http::Request::get("/admin/jobs?query=%7BavailableJobs%7Bname%7D%7D")
//!     .body(axum::body::Body::empty())?;
//! assert_eq!(app.oneshot(anonymous).await?.status(), 401);
//! # handle.shutdown(std::time::Duration::from_secs(1)).await?;
//! # Ok(()) }
//! ```
//!
//! [`mount_path`]: AdminServiceBuilder::mount_path
//! [`bearer_token`]: AdminServiceBuilder::bearer_token
//! [`authorize`]: AdminServiceBuilder::authorize
//! [`disable_playground`]: AdminServiceBuilder::disable_playground
//! [`disable_introspection`]: AdminServiceBuilder::disable_introspection

mod auth;
mod builder;
mod future;
#[allow(clippy::module_inception)]
mod service;

pub use auth::AuthorizeFn;
pub use builder::{
    AdminServiceBuilder, DEFAULT_BODY_LIMIT, DEFAULT_COMPLEXITY_LIMIT, DEFAULT_DEPTH_LIMIT,
    DEFAULT_MAX_BATCH, DEFAULT_MOUNT_PATH, DEFAULT_PLAYGROUND_PATH,
};
pub use future::ResponseFuture;
pub use service::{AdminService, BoxError};
