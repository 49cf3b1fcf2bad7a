//! Prometheus metrics of a scheduler: a [`RunObserver`] that counts runs and ticks, plus
//! gauges read from the store at each scrape, served by the admin service on
//! `GET {base}/metrics`.
//!
//! | metric | type | labels | source |
//! |---|---|---|---|
//! | `barycenter_jobs_runs_total` | counter | `job_name`, `status` (`succeeded`, `failed`, `timed_out`, `cancelled`, `abandoned`) | this replica's runs |
//! | `barycenter_jobs_run_duration_seconds` | histogram | `job_name` | this replica's runs |
//! | `barycenter_jobs_records_processed_total` | counter | `job_name` | this replica's runs |
//! | `barycenter_jobs_ticks_total` | counter | `job_name`, `outcome` (`claimed`, `lost`, `skipped_running`, `skipped_paused`, `error`) | this replica's timers |
//! | `barycenter_jobs_running` | gauge 0/1 | `job_name` | this replica |
//! | `barycenter_jobs_last_success_timestamp_seconds` | gauge | `job_name` | the store: the whole fleet |
//! | `barycenter_jobs_overdue` | gauge 0/1 | `job_name` | the store: the whole fleet |
//! | `barycenter_jobs_clock_skew_seconds` | gauge | | this host's clock minus the database's (NaN before the first measurement) |
//!
//! The job's label is `job_name`, not `job`: Prometheus sets `job` (the scrape job) on every
//! series it scrapes, and would rename ours to `exported_job`.
//!
//! Counters are per replica, as Prometheus expects (sum them across `instance`s); the store
//! gauges are the same on every replica, so alert on them with `max without (instance)`.
//! Every job's series exist from the first scrape on (at 0), so `rate()` and `absent()`
//! behave from the start.
//!
//! # Choice of crate
//! [`prometheus_client`], the Prometheus project's own Rust client: typed metric families with
//! label sets, an owned [`Registry`] rather than a process-wide recorder (a library must not
//! install a global recorder its host may want for itself, as the `metrics` facade's
//! exporter does), the OpenMetrics text encoder, and a small tree (no default features; it adds three crates,
//! itself, its derive macro and `dtoa`: `parking_lot`, `itoa` and `syn` are already in the tree). The core crate has no metrics dependency at all: metrics are one observer among
//! those a host may attach.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use barycenter_jobs_core::{async_trait, Database, Job, JobContext, JobError, JobOutput,
//!     Registry, Scheduler};
//! use barycenter_jobs_graphql::{AdminService, Metrics};
//!
//! struct Hello;
//! #[async_trait]
//! impl Job for Hello {
//!     fn name(&self) -> &str { "hello" }
//!     fn description(&self) -> &str { "Say hello" }
//!     fn schedule(&self) -> &str { "0 0 * * * *" }
//!     async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
//!         Ok(JobOutput::processed(3))
//!     }
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let db = Database::connect(&format!("sqlite://{}", dir.path().join("j.db").display())).await?;
//! let handle = Scheduler::builder(Registry::builder().register(Hello).build()?, db)
//!     .start()
//!     .await?;
//! // The service counts runs and ticks from here on, and serves them on /admin/jobs/metrics;
//! // `metrics()` is the `Metrics` it attached to the scheduler.
//! let admin = AdminService::builder(handle.clone()).build();
//! let metrics = admin.metrics().clone();
//!
//! handle.trigger("hello").await?.wait().await?;
//! let text = metrics.render(&handle).await?;
//! assert!(text.contains(r#"barycenter_jobs_runs_total{job_name="hello",status="succeeded"} 1"#));
//! assert!(text.contains(r#"barycenter_jobs_records_processed_total{job_name="hello"} 3"#));
//! assert!(text.contains(r#"barycenter_jobs_overdue{job_name="hello"} 0"#));
//! handle.shutdown(std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use barycenter_jobs_core::SchedulerHandle;
use barycenter_jobs_core::observe::{
    RunEnded, RunObserver, RunStatus, RunsAbandoned, TickObserved, TickOutcome,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// `Content-Type` of the exposition: OpenMetrics text, which Prometheus negotiates by default.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the run-duration buckets, in seconds: from a 10 ms no-op to an hour-long
/// cleanup.
const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabel {
    job_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    job_name: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TickLabels {
    job_name: String,
    outcome: &'static str,
}

type HistogramFamily = Family<JobLabel, Histogram, fn() -> Histogram>;

struct Inner {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    duration: HistogramFamily,
    records: Family<JobLabel, Counter>,
    ticks: Family<TickLabels, Counter>,
    running: Family<JobLabel, Gauge>,
    last_success: Family<JobLabel, Gauge>,
    overdue: Family<JobLabel, Gauge>,
    clock_skew: Gauge<f64, AtomicU64>,
    /// Attached to a scheduler as an observer (see [`RunObserver::on_attach`]).
    attached: std::sync::atomic::AtomicBool,
}

/// The metrics of one scheduler. Cheap to clone; clones share the counters.
///
/// Nothing to wire: [`AdminServiceBuilder::build`](crate::AdminServiceBuilder::build)
/// attaches the service's metrics to its scheduler as a run observer, unless they are
/// attached already (a host that passed them to
/// [`SchedulerBuilder::observer`](barycenter_jobs_core::SchedulerBuilder::observer) itself, to
/// count from the very first run). See the [module docs](self).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn job(name: &str) -> JobLabel {
    JobLabel {
        job_name: name.to_owned(),
    }
}

impl Metrics {
    /// Fresh metrics, every counter at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("barycenter_jobs");
        let runs = Family::<RunLabels, Counter>::default();
        let duration: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS));
        let records = Family::<JobLabel, Counter>::default();
        let ticks = Family::<TickLabels, Counter>::default();
        let running = Family::<JobLabel, Gauge>::default();
        let last_success = Family::<JobLabel, Gauge>::default();
        let overdue = Family::<JobLabel, Gauge>::default();
        let clock_skew = Gauge::<f64, AtomicU64>::default();
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "runs",
            "Runs of each job that ended here, by status",
            runs.clone(),
        );
        registry.register(
            "run_duration_seconds",
            "Run time of each job's runs that ended here",
            duration.clone(),
        );
        registry.register(
            "records_processed",
            "Records processed by each job's runs that ended here",
            records.clone(),
        );
        registry.register(
            "ticks",
            "Scheduled fire times of each job on this replica, by what became of them",
            ticks.clone(),
        );
        registry.register(
            "running",
            "1 while a run of the job is in progress on this replica",
            running.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "Completion time of the job's newest successful run in the fleet (epoch seconds)",
            last_success.clone(),
        );
        registry.register(
            "overdue",
            "1 when a tick of the job came due more than its grace ago with no success since",
            overdue.clone(),
        );
        registry.register(
            "clock_skew_seconds",
            "This host's clock minus the database's, as last measured",
            clock_skew.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                runs,
                duration,
                records,
                ticks,
                running,
                last_success,
                overdue,
                clock_skew,
                attached: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Read the store gauges for `handle`'s jobs and encode everything in the OpenMetrics
    /// text format ([`CONTENT_TYPE`]). One statement against the store, whatever its size.
    pub async fn render(
        &self,
        handle: &SchedulerHandle,
    ) -> Result<String, barycenter_jobs_core::Error> {
        let health = handle.health().await?;
        let m = &*self.inner;
        for info in handle.jobs() {
            let label = job(&info.name);
            // Every series of every job exists from the first scrape on.
            for status in RunStatus::ALL {
                let _ = m.runs.get_or_create(&RunLabels {
                    job_name: info.name.clone(),
                    status: status.as_str(),
                });
            }
            for outcome in TickOutcome::ALL {
                let _ = m.ticks.get_or_create(&TickLabels {
                    job_name: info.name.clone(),
                    outcome: outcome.as_str(),
                });
            }
            let _ = m.duration.get_or_create(&label);
            let _ = m.records.get_or_create(&label);
            m.running.get_or_create(&label).set(i64::from(info.running));
        }
        for j in &health.jobs {
            let label = job(&j.name);
            m.overdue
                .get_or_create(&label)
                .set(i64::from(j.is_overdue()));
            if let Some(at) = j.last_success_at {
                m.last_success.get_or_create(&label).set(at.timestamp());
            }
        }
        m.clock_skew.set(
            health
                .clock_skew
                .map_or(f64::NAN, |s| s.num_milliseconds() as f64 / 1000.0),
        );
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &m.registry);
        Ok(text)
    }
}

impl Metrics {
    /// Whether these metrics are attached to a scheduler (they count its runs and ticks).
    pub fn is_attached(&self) -> bool {
        self.inner
            .attached
            .load(std::sync::atomic::Ordering::Acquire)
    }
}

impl RunObserver for Metrics {
    fn on_attach(&self) {
        self.inner
            .attached
            .store(true, std::sync::atomic::Ordering::Release);
    }

    fn on_end(&self, run: &RunEnded<'_>) {
        let m = &*self.inner;
        m.runs
            .get_or_create(&RunLabels {
                job_name: run.job.to_owned(),
                status: run.status.as_str(),
            })
            .inc();
        let label = job(run.job);
        m.duration
            .get_or_create(&label)
            .observe(run.duration.as_secs_f64());
        m.records
            .get_or_create(&label)
            .inc_by(run.records_processed.unwrap_or(0));
    }

    fn on_abandoned(&self, runs: &RunsAbandoned<'_>) {
        self.inner
            .runs
            .get_or_create(&RunLabels {
                job_name: runs.job.to_owned(),
                status: RunStatus::Abandoned.as_str(),
            })
            .inc_by(runs.count);
    }

    fn on_tick(&self, tick: &TickObserved<'_>) {
        self.inner
            .ticks
            .get_or_create(&TickLabels {
                job_name: tick.job.to_owned(),
                outcome: tick.outcome.as_str(),
            })
            .inc();
    }
}
