//! A job's runner survives whatever panics on its path, and no duration can make it panic:
//! a panic raised by `Job::run` before it returns its future, a panic in host code the
//! runner calls (the job's name), a stored timeout far past what an `Instant` holds, and
//! out-of-bounds durations given through the Rust API (refused with a typed error).

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use barycenter_jobs_core::{
    Error, ExecutionQuery, ExecutionStatus, ExecutionStore, Job, JobConfig, JobContext, JobError,
    JobOutput, Registry, RescheduleRequest, Scheduler, SchedulerConfig,
};
use barycenter_jobs_test_support::{TestDb, backend_tests, eventually, open_rows, raw};

const GRACE: Duration = Duration::from_secs(10);

/// A job written without `#[async_trait]` whose `run` panics before it returns a future.
struct PanicsBeforeItsFuture;

impl Job for PanicsBeforeItsFuture {
    fn name(&self) -> &str {
        "panics_early"
    }
    fn description(&self) -> &str {
        "panics in run() itself"
    }
    fn schedule(&self) -> &str {
        "* * * * * *"
    }
    fn run<'a, 'b>(
        &'a self,
        _ctx: JobContext,
    ) -> Pin<Box<dyn Future<Output = Result<JobOutput, JobError>> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        panic!("bad state before the future")
    }
}

/// An every-second job whose `name()` panics once, when armed (host code the runner calls
/// outside the job's future).
struct NameOnce {
    armed: Arc<AtomicBool>,
    runs: Arc<AtomicU32>,
}

#[barycenter_jobs_core::async_trait]
impl Job for NameOnce {
    fn name(&self) -> &str {
        if self.armed.swap(false, Ordering::AcqRel) {
            panic!("name() panicked");
        }
        "name_once"
    }
    fn description(&self) -> &str {
        "its name panics once"
    }
    fn schedule(&self) -> &str {
        "* * * * * *"
    }
    async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
        self.runs.fetch_add(1, Ordering::AcqRel);
        Ok(JobOutput::processed(1))
    }
}

use common::start;

async fn rows_of(store: &ExecutionStore, job: &str) -> Vec<barycenter_jobs_core::Execution> {
    store
        .list(&ExecutionQuery::new().job(job).limit(100))
        .await
        .unwrap()
}

/// Each scheduled run whose `run()` panics is recorded as failed with the panic's message,
/// and the runner goes on with the next tick (before: the first panic ended the runner for
/// good, its row stayed open, and no later tick ran).
async fn panic_before_the_future_is_a_failed_run(t: &TestDb) {
    let registry = Registry::builder()
        .register(PanicsBeforeItsFuture)
        .build()
        .unwrap();
    let handle = start(t, registry, SchedulerConfig::default()).await;
    let store = handle.store().clone();
    eventually(Duration::from_secs(60), "three failed runs", || {
        let store = store.clone();
        async move {
            rows_of(&store, "panics_early")
                .await
                .iter()
                .filter(|r| r.status == ExecutionStatus::Failed)
                .count()
                >= 3
        }
    })
    .await;
    handle.shutdown(GRACE).await.unwrap();
    let rows = rows_of(&store, "panics_early").await;
    for row in &rows {
        assert_eq!(row.status, ExecutionStatus::Failed, "{row:?}");
        assert_eq!(
            row.error_message.as_deref(),
            Some("panicked: bad state before the future")
        );
    }
    assert_eq!(open_rows(&store).await, 0);
}

/// A panic in host code the runner calls before a run starts loses that one tick, and the
/// runner runs the next ones.
async fn panic_in_the_runner_loses_one_tick_only(t: &TestDb) {
    let armed = Arc::new(AtomicBool::new(false));
    let runs = Arc::new(AtomicU32::new(0));
    let registry = Registry::builder()
        .register(NameOnce {
            armed: armed.clone(),
            runs: runs.clone(),
        })
        .build()
        .unwrap();
    let handle = start(t, registry, SchedulerConfig::default()).await;
    let ran = |n: u32| {
        let runs = runs.clone();
        move || {
            let runs = runs.clone();
            async move { runs.load(Ordering::Acquire) >= n }
        }
    };
    eventually(Duration::from_secs(30), "a first run", ran(1)).await;
    armed.store(true, Ordering::Release);
    // The next call of name() panics: wait until it happened, then for two more runs.
    eventually(Duration::from_secs(30), "the armed panic", || {
        let armed = armed.clone();
        async move { !armed.load(Ordering::Acquire) }
    })
    .await;
    let after_panic = runs.load(Ordering::Acquire);
    eventually(
        Duration::from_secs(30),
        "two runs after the panic",
        ran(after_panic + 2),
    )
    .await;
    handle.shutdown(GRACE).await.unwrap();
    assert_eq!(open_rows(handle.store()).await, 0);
}

/// Durations past their bounds are refused when given, naming the key; a stored timeout
/// past the bound (written by hand, or by another version) is clamped, and the run that
/// uses it does not panic.
async fn no_duration_makes_the_scheduler_panic(t: &TestDb) {
    let registry = || {
        Registry::builder()
            .register(common::ScriptedJob::new("j", "0 0 0 1 1 *", |_| async {
                Ok(JobOutput::processed(1))
            }))
            .build()
            .unwrap()
    };
    // Host configuration.
    let huge = SchedulerConfig::default().job(
        "j",
        JobConfig {
            timeout_secs: Some(u64::MAX),
            ..Default::default()
        },
    );
    let refused = Scheduler::builder(registry(), t.db.clone())
        .config(huge)
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Error::OutOfBounds { key, .. } if key == "jobs.j.timeout_secs"),
        "{refused}"
    );
    let mut zero_batch = SchedulerConfig::default();
    zero_batch.retention.batch_size = 0;
    let refused = Scheduler::builder(registry(), t.db.clone())
        .config(zero_batch)
        .start()
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "invalid retention.batch_size = 0: must be between 1 and 10000"
    );
    assert!(refused.is_invalid_input());

    // The Rust API at run time: refused, nothing changes.
    let handle = start(t, registry(), SchedulerConfig::default()).await;
    let refused = handle
        .reschedule("j", RescheduleRequest::new().timeout_secs(u64::MAX), "test")
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Error::OutOfBounds { key, .. } if key == "timeout_secs"),
        "{refused}"
    );
    assert_eq!(handle.job("j").unwrap().timeout, Duration::from_secs(3600));

    // A stored timeout far past the bound: clamped when read, and the run succeeds.
    handle
        .reschedule("j", RescheduleRequest::new().timeout_secs(60), "test")
        .await
        .unwrap();
    raw(
        &t.db,
        "UPDATE job_settings SET timeout_secs = 9223372036854775807 WHERE job_name = 'j'",
    )
    .await;
    let reread = SchedulerConfig::default();
    handle.shutdown(GRACE).await.unwrap();
    let handle = start(t, registry(), reread).await;
    let row = handle.trigger("j").await.unwrap().wait().await.unwrap();
    assert_eq!(row.status, ExecutionStatus::Succeeded, "{row:?}");
    assert_eq!(
        handle.job("j").unwrap().timeout,
        Duration::from_secs(barycenter_jobs_core::scheduler::bounds::MAX_TIMEOUT_SECS)
    );
    handle.shutdown(GRACE).await.unwrap();
}

backend_tests!(
    panic_before_the_future_is_a_failed_run,
    panic_in_the_runner_loses_one_tick_only,
    no_duration_makes_the_scheduler_panic,
);
