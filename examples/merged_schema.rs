//! A host that already has an admin GraphQL schema (Barycenter's `/admin/jobs` also carries
//! its 2FA and federation-peering operations) merges the jobs API into it: one schema, the
//! host's own path, the host's own authorization mapped onto the jobs API's roles.
//!
//! ```text
//! cargo run --example merged_schema [-- --listen 127.0.0.1:8084]
//! ```
//!
//! Then, with the operate token it prints:
//!
//! ```text
//! curl -s -X POST http://127.0.0.1:8084/admin/graphql -H "Authorization: Bearer TOKEN" \
//!   -H "Content-Type: application/json" \
//!   -d '{"query": "{ hostVersion availableJobs { name schedule } }"}'
//! ```
//!
//! The history goes to `merged-schema.db` in the current directory.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{EmptySubscription, MergedObject, Object, Schema};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use barycenter_jobs::graphql::schema::{JobsContext, JobsExtension, MutationRoot, QueryRoot};
use barycenter_jobs::graphql::{Principal, Role};

/// The host's own queries (here a stand-in for Barycenter's 2FA and peering queries).
#[derive(Default)]
struct HostQuery;

#[Object]
impl HostQuery {
    /// The host's version.
    async fn host_version(&self) -> &str {
        "demo-auth-server 1.0"
    }
}

/// The host's own mutations.
#[derive(Default)]
struct HostMutation;

#[Object]
impl HostMutation {
    /// Forget a federation peer (a stand-in: it only echoes the name).
    async fn remove_federation_peer(&self, peer: String) -> String {
        format!("removed {peer}")
    }
}

/// One query root: the host's fields and the jobs API's, side by side.
#[derive(MergedObject, Default)]
struct Query(HostQuery, QueryRoot);

/// One mutation root, likewise.
#[derive(MergedObject, Default)]
struct Mutation(HostMutation, MutationRoot);

type HostSchema = Schema<Query, Mutation, EmptySubscription>;

/// The host's schema with the jobs API merged in, over `scheduler`.
fn schema(scheduler: barycenter_jobs::SchedulerHandle) -> HostSchema {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        // What the jobs API's resolvers read, and its per-request loads and mutation bound.
        .data(JobsContext::new(scheduler))
        .extension(JobsExtension::default())
        // The host's own limits apply to the whole schema.
        .limit_depth(12)
        .limit_complexity(500)
        .finish()
}

#[derive(Clone)]
struct App {
    schema: HostSchema,
    /// The host's admin credentials: here two bearer tokens.
    operate_token: Arc<str>,
    read_token: Arc<str>,
}

/// The host's authorization, mapped onto the jobs API's roles: its principal goes into the
/// request's data, where the jobs API reads it (mutations need `Role::Operate`, and the
/// audit log names it).
fn principal(app: &App, headers: &HeaderMap) -> Option<Principal> {
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    if token == &*app.operate_token {
        Some(Principal::new("ops-admin", Role::Operate))
    } else if token == &*app.read_token {
        Some(Principal::new("ops-viewer", Role::Read))
    } else {
        None
    }
}

/// GraphQL over HTTP POST, at the host's own path.
async fn graphql(State(app): State<App>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let json = [(header::CONTENT_TYPE, "application/json")];
    let Some(principal) = principal(&app, &headers) else {
        return (
            StatusCode::UNAUTHORIZED,
            json,
            r#"{"errors":[{"message":"unauthorized"}]}"#.to_owned(),
        );
    };
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            let body = serde_json::json!({ "errors": [{ "message": format!("invalid GraphQL request body: {e}") }] });
            return (StatusCode::BAD_REQUEST, json, body.to_string());
        }
    };
    let response = app.schema.execute(request.data(principal)).await;
    let body = serde_json::to_string(&response)
        .unwrap_or_else(|_| r#"{"errors":[{"message":"internal error"}]}"#.to_owned());
    (StatusCode::OK, json, body)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_tracing();
    let listen = common::listen_arg("127.0.0.1:8084");
    let scheduler = common::builtin_scheduler("sqlite://merged-schema.db").await?;

    let token = |var: &str, default: &str| std::env::var(var).unwrap_or_else(|_| default.into());
    let app = App {
        schema: schema(scheduler.clone()),
        operate_token: token("HOST_OPERATE_TOKEN", "operate-demo").into(),
        read_token: token("HOST_READ_TOKEN", "read-demo").into(),
    };
    let router = Router::new()
        .route("/admin/graphql", post(graphql))
        .with_state(app);

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "admin API:  http://{}/admin/graphql",
        listener.local_addr()?
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(common::shutdown_signal())
        .await?;
    scheduler.shutdown(Duration::from_secs(30)).await?;
    Ok(())
}
