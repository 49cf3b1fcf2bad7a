//! Serve the admin API with plain hyper: no web framework at all.
//!
//! ```text
//! cargo run --example hyper_serve [-- --listen 127.0.0.1:8083]
//! ```
//!
//! The history goes to `hyper-serve.db` in the current directory. Set
//! `BARYCENTER_JOBS_ADMIN_TOKEN` to require a bearer token.

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use barycenter_jobs::graphql::{AdminService, PeerAddr};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_tracing();
    let listen = common::listen_arg("127.0.0.1:8083");
    let scheduler = common::builtin_scheduler("sqlite://hyper-serve.db").await?;
    let mut admin = AdminService::builder(scheduler.clone());
    // Closed by default: a token, or unauthenticated use for clients on this machine only.
    match std::env::var("BARYCENTER_JOBS_ADMIN_TOKEN") {
        Ok(token) if !token.is_empty() => admin = admin.bearer_token(token),
        _ => admin = admin.allow_unauthenticated(),
    }
    let admin = admin.build();

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("admin API:  http://{}/admin/jobs", listener.local_addr()?);
    let shutdown = common::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = accepted?;
                // The connection's address, which unauthenticated use checks (hyper does not
                // attach it; nothing the client writes can stand in for it).
                let service = TowerToHyperService::new(
                    tower::ServiceBuilder::new()
                        .map_request(move |mut req: http::Request<hyper::body::Incoming>| {
                            req.extensions_mut().insert(PeerAddr(peer));
                            req
                        })
                        .service(admin.clone()),
                );
                tokio::spawn(async move {
                    if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                        tracing::debug!(error = %e, "connection closed");
                    }
                });
            }
        }
    }
    scheduler.shutdown(Duration::from_secs(30)).await?;
    Ok(())
}
