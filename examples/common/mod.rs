//! Bits the examples share: signals and logging.
#![allow(dead_code)]

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Log to stderr; `RUST_LOG` overrides the default level.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
}

/// The address after `--listen` on the command line, or `default`.
pub fn listen_arg(default: &str) -> String {
    std::env::args()
        .skip_while(|a| a != "--listen")
        .nth(1)
        .unwrap_or_else(|| default.into())
}

/// A scheduler of the built-in jobs (and every other inventory plugin) over the database at
/// `url`, with the default configuration: what the mounting examples run.
#[cfg(feature = "builtin")]
pub async fn builtin_scheduler(
    url: &str,
) -> Result<barycenter_jobs::SchedulerHandle, Box<dyn std::error::Error>> {
    let db = barycenter_jobs::Database::connect(url).await?;
    barycenter_jobs::builtin::link();
    Ok(
        barycenter_jobs::Scheduler::builder(barycenter_jobs::Registry::from_inventory()?, db)
            .config(barycenter_jobs::SchedulerConfig::default())
            .start()
            .await?,
    )
}
