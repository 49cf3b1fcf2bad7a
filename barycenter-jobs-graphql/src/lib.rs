//! The GraphQL admin API of barycenter-jobs, as a `tower::Service` any host can mount.
//!
//! - [`schema`]: an `async-graphql` schema over a running scheduler and its execution
//!   history (`availableJobs`, `jobLogs`, `jobExecution`, `triggerJob`), compatible with
//!   Barycenter's documented `/admin/jobs` API.
//! - [`service`]: [`AdminService`], GraphQL over HTTP for any `http_body::Body`, with a
//!   GraphiQL page, body / depth / complexity limits and built-in authorization, plus
//!   `GET {base}/health` (200 / 503 JSON) and `GET {base}/metrics` (Prometheus).
//! - [`metrics`]: [`Metrics`], a run observer and Prometheus registry (`prometheus-client`).
//!
//! # Choice of crates
//! - `async-graphql` for the schema and the framework-agnostic GraphQL-over-HTTP parsing
//!   (`parse_query_string`, `BatchRequest`), and its GraphiQL page;
//! - `tower-service`, `http`, `http-body`, `http-body-util` for the service contract, so no
//!   web framework is imposed on the host; `http_body_util::Limited` bounds the body.
//!
//! # Examples
//!
//! Start a scheduler, build the service and ask it for the jobs:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use barycenter_jobs_core::{async_trait, Database, Job, JobContext, JobError, JobOutput,
//!     Registry, Scheduler};
//! use barycenter_jobs_graphql::AdminService;
//! use http_body_util::{BodyExt, Full};
//! use tower::ServiceExt;
//!
//! struct Heartbeat;
//!
//! #[async_trait]
//! impl Job for Heartbeat {
//!     fn name(&self) -> &str { "heartbeat" }
//!     fn description(&self) -> &str { "Log that the scheduler is alive" }
//!     fn schedule(&self) -> &str { "0 0 * * * *" }
//!     async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
//!         Ok(JobOutput::processed(0))
//!     }
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let db = Database::connect(&format!("sqlite://{}", dir.path().join("jobs.db").display())).await?;
//! let registry = Registry::builder().register(Heartbeat).build()?;
//! let handle = Scheduler::builder(registry, db).start().await?;
//!
//! let admin = AdminService::builder(handle.clone())
//!     .bearer_token("s3cret")
//!     .build();
//!
//! let request = http::Request::post("/admin/jobs")
//!     .header("content-type", "application/json")
//!     .header("authorization", "Bearer s3cret")
//!     .body(Full::new(bytes::Bytes::from(
//!         r#"{"query": "{ availableJobs { name description schedule } }"}"#,
//!     )))?;
//! let response = admin.oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//! let body = response.into_body().collect().await?.to_bytes();
//! assert_eq!(
//!     std::str::from_utf8(&body)?,
//!     r#"{"data":{"availableJobs":[{"name":"heartbeat","description":"Log that the scheduler is alive","schedule":"0 0 * * * *"}]}}"#
//! );
//!
//! handle.shutdown(std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```
//!
//! Mount it in axum next to other routes with
//! `Router::new().nest_service("/admin/jobs", admin)`, or serve it with hyper through
//! `hyper::service::service_fn`; see the [`service`] docs for paths and HTTP behaviour.

#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod metrics;
pub mod schema;
pub mod service;

pub use metrics::Metrics;
pub use schema::AdminSchema;
pub use service::{AdminService, AdminServiceBuilder, Denied, PeerAddr, Principal, Role};
