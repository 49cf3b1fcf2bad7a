//! Jobs with scripted behaviour for the scheduler tests.
#![allow(dead_code, missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use barycenter_jobs_core::{Job, JobContext, JobError, JobOutput, Trigger, async_trait};
use chrono::{DateTime, Utc};

type Body = dyn Fn(JobContext) -> Pin<Box<dyn Future<Output = Result<JobOutput, JobError>> + Send>>
    + Send
    + Sync;

/// A job whose run is a closure.
pub struct ScriptedJob {
    pub name: String,
    pub schedule: String,
    pub body: Arc<Body>,
}

impl ScriptedJob {
    pub fn new<F, Fut>(name: &str, schedule: &str, body: F) -> Self
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<JobOutput, JobError>> + Send + 'static,
    {
        Self {
            name: name.into(),
            schedule: schedule.into(),
            body: Arc::new(move |ctx| Box::pin(body(ctx))),
        }
    }
}

#[async_trait]
impl Job for ScriptedJob {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        "scripted test job"
    }
    fn schedule(&self) -> &str {
        &self.schedule
    }
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        (self.body)(ctx).await
    }
}

/// What a run saw when it started.
#[derive(Debug, Clone)]
pub struct Seen {
    pub job: String,
    pub trigger: Trigger,
    pub execution_id: i64,
    pub entered: DateTime<Utc>,
    pub tag: String,
}

/// A shared log of runs.
#[derive(Clone, Default)]
pub struct RunLog(pub Arc<Mutex<Vec<Seen>>>);

impl RunLog {
    pub fn push(&self, job: &str, ctx: &JobContext, tag: &str) {
        self.0.lock().unwrap().push(Seen {
            job: job.into(),
            trigger: ctx.trigger(),
            execution_id: ctx.execution_id(),
            entered: Utc::now(),
            tag: tag.into(),
        });
    }
    pub fn of(&self, job: &str) -> Vec<Seen> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.job == job)
            .cloned()
            .collect()
    }
    pub fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
}

/// A job that logs each run and returns `records`.
pub fn logging_job(
    name: &str,
    schedule: &str,
    log: &RunLog,
    tag: &str,
    records: u64,
) -> ScriptedJob {
    let log = log.clone();
    let job_name = name.to_owned();
    let tag = tag.to_owned();
    ScriptedJob::new(name, schedule, move |ctx| {
        log.push(&job_name, &ctx, &tag);
        async move { Ok(JobOutput::processed(records)) }
    })
}

/// A scheduler over the test's database with `registry` and `config`.
pub async fn start(
    t: &barycenter_jobs_test_support::TestDb,
    registry: barycenter_jobs_core::Registry,
    config: barycenter_jobs_core::SchedulerConfig,
) -> barycenter_jobs_core::SchedulerHandle {
    barycenter_jobs_core::Scheduler::builder(registry, t.db.clone())
        .config(config)
        .start()
        .await
        .expect("scheduler starts")
}
