//! [`AdminService`]: the admin schema as a `tower::Service` any host can mount.
//!
//! It takes `http::Request<B>` for any [`http_body::Body`] `B` and answers
//! `http::Response<http_body_util::Full<bytes::Bytes>>`; its error type is
//! [`Infallible`](std::convert::Infallible): every problem is a response. It has no tie to a
//! web framework, so axum, hyper, tonic-web or anything that speaks tower can host it, and any
//! tower layer (timeouts, concurrency limits, tracing, CORS) can wrap it.
//!
//! # Architecture
//!
//! The service is a stack of tower layers around a GraphQL-over-HTTP core, each concern a
//! module of its own, composed by [`AdminServiceBuilder::build`]:
//!
//! ```text
//! request ─▶ peer check (once unauthenticated use is allowed)
//!            └▶ router (mount path stripped)
//!                ├─ ``          ─▶ authorization ─▶ body limit ─▶ GraphQL core
//!                ├─ /health     ─▶ authorization (unless open_health)  ─▶ health
//!                ├─ /metrics    ─▶ authorization (unless open_metrics) ─▶ metrics
//!                ├─ /ui/...     ─▶ security headers ─▶ dashboard
//!                ├─ playground  ─▶ GraphiQL page
//!                └─ else        ─▶ 404
//! ```
//!
//! - `layer::peer`: the loopback peer and `Host` check of unauthenticated use (tower-http's
//!   `ValidateRequestHeader` with our rules), before routing, so no path answers a client
//!   that unauthenticated use must not serve;
//! - `layer::auth`: bearer tokens or the host's check on the request head, attaching the
//!   [`Principal`]; an unauthorized client never has its body read;
//! - `layer::limit`: the request body limit;
//! - `layer::headers`: the dashboard's security headers (tower-http's `set-header`);
//! - `route`: the mount path and the endpoints (GraphiQL, dashboard, health, metrics);
//! - `graphql`: GET and POST, batches, content types, mutation counting, error mapping;
//! - `stack`: the composition above; `admin`: [`AdminService`], the stack as one cloneable
//!   service; `builder`: [`AdminServiceBuilder`], its configuration.
//!
//! # Paths
//!
//! The service is a leaf. It knows its public *mount path* (default `/admin/jobs`) and strips
//! it from the request path when present, then routes what is left:
//!
//! | path after the mount path | served                                        |
//! |---------------------------|-----------------------------------------------|
//! | `` or `/`                 | GraphQL over HTTP                             |
//! | `/playground` (settable)  | the GraphiQL page, once enabled               |
//! | `/ui`, `/ui/app.js`, ...  | the dashboard (unless disabled)               |
//! | `/health`                 | fleet health as JSON: 200 ok, 503 overdue      |
//! | `/metrics`                | Prometheus metrics (OpenMetrics text)          |
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
//! | no authorization configured; when unauthenticated: a peer that is not loopback or unknown, a forwarded request, a missing or foreign `Host` | 403 |
//! | more than 10 mutations in the request (batch included)           | 400                          |
//! | other methods on the GraphQL path                                | 405, `Allow: GET, POST`      |
//! | `GET` on the playground path (GraphiQL enabled)                  | 200, HTML                    |
//! | `GET`/`HEAD` on `/ui` and its assets, no credentials needed      | 200 (304 on a matching `If-None-Match`) |
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
//! Every GraphQL request is made by a [`Principal`] (a name, which goes into the audit log)
//! with a [`Role`]: `read` runs queries only, `operate` queries and mutations. A mutation by
//! a `read` principal is a GraphQL error (`forbidden: ...`), has no effect, and is audited.
//!
//! - [`bearer_token`] (operate) and [`read_only_token`] (read), or [`bearer_token_for`] with a
//!   principal of your own: `Authorization: Bearer <token>`, compared in constant time.
//! - [`authorize`]: a host check `|parts| -> Result<Principal, Denied>` for hosts that verify
//!   their own OAuth access tokens and scopes (or sessions, or client certificates); it runs
//!   when no configured token matched.
//! - **Closed by default**: with neither configured, every request is refused with 403.
//!   [`allow_unauthenticated`] serves requests without credentials as `anonymous`
//!   (operate) to clients on this machine only: it trusts the connection's peer address,
//!   which the host attaches as a [`PeerAddr`] extension, and not the `Host` header, which
//!   the client writes. A request is refused with 403 (and a `tracing` warning) on every
//!   path unless its [`PeerAddr`] is loopback, it carries no `Forwarded` /
//!   `X-Forwarded-For` / `X-Real-IP` header, and its one `Host` is a loopback name
//!   (`localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`) or a host given to
//!   [`allow_host`] (against DNS rebinding by a page in a local browser). A request with no
//!   [`PeerAddr`] or no `Host` is refused: a host that does not attach the peer address
//!   gets a closed door, not an open one.
//!
//! Missing or wrong credentials get 401 with `WWW-Authenticate: Bearer`; a check's
//! [`Denied::Forbidden`] gets 403. The GraphiQL page and the dashboard are static files
//! that hold no data (their queries go through the GraphQL path with a bearer token), so a
//! browser loads them without credentials; the checks of unauthenticated use apply to
//! them too.
//!
//! # GraphiQL
//!
//! async-graphql's GraphiQL page loads React and GraphiQL from a CDN, so it is **off by
//! default**: [`graphiql_from_cdn`](AdminServiceBuilder::graphiql_from_cdn) serves it as is,
//! [`graphiql_assets`](AdminServiceBuilder::graphiql_assets) points it at copies the host
//! serves itself, [`disable_playground`] turns it off again.
//!
//! # Dashboard
//!
//! `GET {base}/ui` serves the operators' page: the jobs with their schedule, next run, last
//! run and running / paused / overdue state, fleet health, each job's recent history with a
//! chart of durations and records, the audit log, and Run now / Pause / Resume / Dry run /
//! reschedule (checked and previewed by `previewSchedule` before saving). Its script, style
//! and icon are embedded in the crate and served next to it; it loads nothing from another
//! origin and carries [`CONTENT_SECURITY_POLICY`] (no inline script, no framing),
//! `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`. The page asks for
//! a bearer token when the API answers 401 and keeps it in `sessionStorage`; a `read`
//! principal (`viewer { role }`) sees the operate buttons disabled. Turn it off with
//! [`disable_dashboard`](AdminServiceBuilder::disable_dashboard).
//!
//! # Health and metrics
//!
//! `GET {base}/health` answers `200` with `{"status":"ok",...}` when no job is overdue and
//! `503` with the overdue jobs named in `overdueJobs` otherwise, each with `name`,
//! `overdueSince` and `missedTick`; `jobs` lists every job with `overdue`, `overdueSince`,
//! `lastSuccessAt`, `lastFailureAt` and `firstSeenAt`, and `clockSkewSecs` is this host's
//! clock minus the database's. A store that cannot be read gives `503` with
//! `{"status":"unavailable"}`. `GET {base}/metrics` serves the [`Metrics`](crate::Metrics) given to
//! [`metrics`](AdminServiceBuilder::metrics). Both sit behind the same authorization as
//! queries; [`open_health`](AdminServiceBuilder::open_health) and
//! [`open_metrics`](AdminServiceBuilder::open_metrics) serve them without it, for probes
//! and scrapers that carry no credentials. Both answers are computed from the store, so
//! every replica gives the same one.
//!
//! # Limits
//!
//! Query depth 16 and complexity 500 by default (a field is a point; `jobLogs` and
//! `auditLog` add a point per 10 rows of their `limit`, so 50 aliases of
//! `jobLogs(limit: 1000)` are refused; `availableJobs` counts its fields ten times, once per
//! job of a list of ten, so 70 aliases of `availableJobs { lastSuccessAt overdue }` are
//! refused too), batches of up to 16 operations, at most 10 mutations
//! per request counted over the whole batch (400 before anything runs,
//! [`max_mutations`](AdminServiceBuilder::max_mutations)), bodies up to 1 MiB; introspection stays on unless [`disable_introspection`] is called.
//!
//! Whatever passes them costs a bounded number of statements: the store-backed fields
//! (`lastSuccessAt`, `lastFailureAt`, `overdue`, `overdueSince`, `health`, `lastExecution`)
//! are read once per request, a batch included (one statement for the fleet's health, one
//! per job whose `lastExecution` is asked for), however many aliases and operations name
//! them; a mutation makes the fields after it read again. `/health` and `/metrics` cost one
//! statement each. And the reads of all requests together run at most a quarter of the pool's
//! connections at once ([`max_store_reads`](AdminServiceBuilder::max_store_reads)), so
//! admin traffic never keeps the scheduler from renewing the lease of a running job.
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
//! // The router strips `/admin/jobs`; the service serves its dashboard on what is left.
//! let page = http::Request::get("/admin/jobs/ui").body(axum::body::Body::empty())?;
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
//! [`read_only_token`]: AdminServiceBuilder::read_only_token
//! [`bearer_token_for`]: AdminServiceBuilder::bearer_token_for
//! [`allow_unauthenticated`]: AdminServiceBuilder::allow_unauthenticated
//! [`allow_host`]: AdminServiceBuilder::allow_host
//! [`PeerAddr`]: crate::service::PeerAddr
//! [`disable_playground`]: AdminServiceBuilder::disable_playground
//! [`disable_introspection`]: AdminServiceBuilder::disable_introspection

mod admin;
mod builder;
mod future;
mod graphql;
mod layer;
mod response;
mod route;
mod stack;

pub use admin::{AdminService, BoxError};
pub use builder::{
    AdminServiceBuilder, DEFAULT_BODY_LIMIT, DEFAULT_COMPLEXITY_LIMIT, DEFAULT_DEPTH_LIMIT,
    DEFAULT_MAX_BATCH, DEFAULT_MAX_MUTATIONS, DEFAULT_MOUNT_PATH, DEFAULT_PLAYGROUND_PATH,
};
pub use future::ResponseFuture;
pub use layer::auth::{AuthorizeFn, Denied, Principal, Role};
pub use layer::headers::CONTENT_SECURITY_POLICY;
pub use layer::peer::PeerAddr;
pub use route::{DASHBOARD_PATH, HEALTH_PATH, METRICS_PATH};
