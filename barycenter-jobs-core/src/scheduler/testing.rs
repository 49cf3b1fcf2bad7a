//! What the run path's unit tests share: a job whose run is a closure, and a started
//! scheduler over a fresh SQLite file whose jobs never fire on their own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::config::{JobConfig, SchedulerConfig};
use super::handle::SchedulerHandle;
use super::shared::Shared;
use super::slot::Slot;
use super::{Scheduler, builder::SchedulerBuilder};
use crate::db::Database;
use crate::job::{Job, JobContext, JobError, JobOutput};
use crate::registry::Registry;

type Body = dyn Fn(JobContext) -> Pin<Box<dyn Future<Output = Result<JobOutput, JobError>> + Send>>
    + Send
    + Sync;

/// A job named `name` whose run is `body`.
pub(super) struct Script {
    name: String,
    body: Box<Body>,
}

impl Script {
    pub(super) fn new<F, Fut>(name: &str, body: F) -> Self
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<JobOutput, JobError>> + Send + 'static,
    {
        Self {
            name: name.to_owned(),
            body: Box::new(move |ctx| Box::pin(body(ctx))),
        }
    }
}

#[async_trait::async_trait]
impl Job for Script {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        "a run-path test job"
    }
    fn schedule(&self) -> &str {
        "0 0 0 1 1 *"
    }
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        (self.body)(ctx).await
    }
}

/// A scheduler (coordination on, history on) for `job`, with `timeout`, a cancel grace of
/// `grace` and the job disabled by configuration, so runs happen only when a test claims
/// one. The directory holds the database: keep it alive.
pub(super) async fn started(
    job: Script,
    timeout: Duration,
    grace: Duration,
) -> (SchedulerHandle, tempfile::TempDir) {
    let name = job.name.clone();
    let dir = tempfile::tempdir().unwrap();
    let db = Database::connect(&format!(
        "sqlite://{}",
        dir.path().join("jobs.db").display()
    ))
    .await
    .unwrap();
    let mut config = SchedulerConfig::default().job(
        &name,
        JobConfig::default()
            .with_enabled(false)
            .with_timeout(timeout),
    );
    config.cancel_grace_secs = grace.as_secs();
    let registry = Registry::builder().register(job).build().unwrap();
    let builder: SchedulerBuilder = Scheduler::builder(registry, db).config(config);
    (builder.start().await.unwrap(), dir)
}

/// The scheduler's shared state and its one slot.
pub(super) fn parts(handle: &SchedulerHandle) -> (Arc<Shared>, Arc<Slot>) {
    let shared = handle.shared.clone();
    let slot = shared.slots.values().next().unwrap().clone();
    (shared, slot)
}
