//! Three replicas on one PostgreSQL database run an every-second job: each tick runs once.
//!
//! ```text
//! cargo run --example replicas -- --database-url postgres://postgres@127.0.0.1:5432/test [--seconds 10]
//! ```
//!
//! Each replica has its own pool and its own tokio runtime, as separate processes would;
//! they coordinate only through the `job_leases` table.

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use barycenter_jobs::{
    Database, Job, JobContext, JobError, JobOutput, Registry, Scheduler, SchedulerConfig, Trigger,
    async_trait,
};
use chrono::{DateTime, Utc};

type Ticks = Arc<Mutex<BTreeMap<DateTime<Utc>, Vec<String>>>>;

struct Heartbeat {
    replica: String,
    ticks: Ticks,
}

#[async_trait]
impl Job for Heartbeat {
    fn name(&self) -> &str {
        "fleet_heartbeat"
    }
    fn description(&self) -> &str {
        "Note which replica ran each second"
    }
    fn schedule(&self) -> &str {
        "* * * * * *"
    }
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        if let Trigger::Scheduled { fire_time } = ctx.trigger() {
            let mut ticks = self.ticks.lock().unwrap_or_else(|e| e.into_inner());
            ticks
                .entry(fire_time)
                .or_default()
                .push(self.replica.clone());
        }
        Ok(JobOutput::processed(1))
    }
}

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_tracing();
    let url = arg("--database-url")
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let seconds: u64 = arg("--seconds")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10);
    let ticks: Ticks = Arc::default();

    let mut replicas = Vec::new();
    for name in ["replica-a", "replica-b", "replica-c"] {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let job = Heartbeat {
            replica: name.into(),
            ticks: ticks.clone(),
        };
        let handle = rt.block_on(async {
            let db = Database::connect_with_max(&url, 4).await?;
            let mut config = SchedulerConfig::default();
            config.coordination.instance = Some(name.into());
            Scheduler::builder(Registry::builder().register(job).build()?, db)
                .config(config)
                .start()
                .await
        })?;
        println!("{name} started");
        replicas.push((rt, handle));
    }

    std::thread::sleep(Duration::from_secs(seconds));
    for (rt, handle) in replicas {
        rt.block_on(handle.shutdown(Duration::from_secs(10)))?;
    }

    let ticks = ticks.lock().unwrap_or_else(|e| e.into_inner());
    let duplicates = ticks.values().filter(|who| who.len() > 1).count();
    let span = match (ticks.keys().next(), ticks.keys().last()) {
        (Some(first), Some(last)) => (*last - *first).num_seconds() + 1,
        _ => 0,
    };
    let missed = span - ticks.len() as i64;
    for (tick, who) in ticks.iter() {
        println!("{} {}", tick.format("%H:%M:%S"), who.join(","));
    }
    println!(
        "ticks: {}, duplicates: {duplicates}, missed: {missed}",
        ticks.len()
    );
    if duplicates > 0 {
        std::process::exit(1);
    }
    Ok(())
}
