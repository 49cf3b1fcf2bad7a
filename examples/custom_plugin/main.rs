//! Write your own job: `audit_log.rs` beside this file defines `purge_old_audit_log` and
//! registers it with one `register_job!` (an `inventory::submit!`). This program never names
//! the job, yet the registry finds it, runs it beside the built-ins, and records it.
//!
//! ```text
//! cargo run --example custom_plugin
//! ```

mod audit_log;
#[path = "../common/mod.rs"]
mod common;

use std::time::Duration;

use barycenter_jobs::{Database, Registry, Scheduler, SchedulerConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_tracing();
    let dir = std::env::temp_dir().join(format!("custom-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = Database::connect(&format!("sqlite://{}", dir.join("plugin.db").display())).await?;
    audit_log::create_demo_table(&db).await?;

    barycenter_jobs::builtin::link();
    let registry = Registry::from_inventory()?;
    for job in registry.iter() {
        println!(
            "registered: {:<30} {}",
            job.name(),
            job.default_schedule().describe()
        );
    }
    let scheduler = Scheduler::builder(registry, db)
        .config(SchedulerConfig::default())
        .start()
        .await?;

    // Run the plugin now rather than waiting for 03:00.
    let run = scheduler.trigger("purge_old_audit_log").await?;
    let row = run.wait().await?;
    println!(
        "purge_old_audit_log: {:?}, {} rows deleted",
        row.status,
        row.records_processed.unwrap_or(0)
    );
    scheduler.shutdown(Duration::from_secs(5)).await?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
