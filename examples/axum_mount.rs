//! Mount the admin API in an existing axum application, next to its own routes, behind a
//! standard tower layer.
//!
//! ```text
//! cargo run --example axum_mount [-- --listen 127.0.0.1:8082]
//! ```
//!
//! The history goes to `axum-mount.db` in the current directory.

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use barycenter_jobs::graphql::{AdminService, PeerAddr};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_tracing();
    let listen = common::listen_arg("127.0.0.1:8082");
    let scheduler = common::builtin_scheduler("sqlite://axum-mount.db").await?;

    // The host's own routes...
    let app = Router::new()
        .route("/", get(|| async { "my auth server" }))
        .route("/healthz", get(|| async { "ok" }))
        // ...and the admin API under /admin/jobs, behind an ordinary tower layer (here one
        // that logs who calls it; an auth or rate-limit layer composes the same way).
        .nest_service(
            "/admin/jobs",
            tower::ServiceBuilder::new()
                .map_request(|mut req: axum::extract::Request| {
                    tracing::info!(method = %req.method(), "admin API request");
                    // The client's address, from axum's ConnectInfo (see `serve` below), in
                    // the type the admin service reads: unauthenticated use checks it.
                    if let Some(ConnectInfo(peer)) =
                        req.extensions().get::<ConnectInfo<SocketAddr>>().copied()
                    {
                        req.extensions_mut().insert(PeerAddr(peer));
                    }
                    req
                })
                // Open to clients on this machine only; a real host adds a token or its own
                // check.
                .service(
                    AdminService::builder(scheduler.clone())
                        .allow_unauthenticated()
                        .build(),
                ),
        );

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("admin API:  http://{}/admin/jobs", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(common::shutdown_signal())
    .await?;
    scheduler.shutdown(Duration::from_secs(30)).await?;
    Ok(())
}
