//! `GET /admin/jobs/health` and `GET /admin/jobs/metrics` latency with 1,000,000 history rows.
//!
//! `job_executions` holds `--rows` runs (default 1,000,000) of 20 jobs, about 2% failed, as in
//! the `history` bench; a scheduler with those 20 jobs runs on the database (it records their
//! first-seen dates), and the admin service answers the two endpoints through
//! `tower::Service::call`, alternating, on SQLite and PostgreSQL. Each answer reads the store
//! once: the first-seen dates plus, per job, its newest success and newest failure by the
//! `(job_name, success, id)` index.
//!
//! ```text
//! cargo bench -p barycenter-jobs-benches --bench health -- [--quick] [--rows N] [--iters N] [--db sqlite|postgres|all]
//! ```

use std::time::{Duration, Instant};

use barycenter_jobs_benches::history::{self, JOBS, job_name};
use barycenter_jobs_benches::{Args, Summary, Table, f, ms};
use barycenter_jobs_core::{
    Backend, Database, ExecutionStore, Job, JobContext, JobError, JobOutput, Registry, Scheduler,
    async_trait,
};
use barycenter_jobs_graphql::{AdminService, Metrics};
use barycenter_jobs_test_support::raw;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tower_service::Service;

const TOKEN: &str = "bench";

struct Noop(String);

#[async_trait]
impl Job for Noop {
    fn name(&self) -> &str {
        &self.0
    }
    fn description(&self) -> &str {
        "no-op"
    }
    fn schedule(&self) -> &str {
        "0 0 * * * *"
    }
    async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
        Ok(JobOutput::processed(0))
    }
}

fn main() {
    let args = Args::from_env();
    let rows: i64 = args.parsed("--rows", if args.quick() { 100_000 } else { 1_000_000 });
    let iters: usize = args.parsed("--iters", if args.quick() { 50 } else { 300 });
    let rt = barycenter_jobs_benches::runtime();
    println!(
        "# health and metrics at scale: {}",
        barycenter_jobs_benches::machine_line()
    );
    println!(
        "{rows} runs of {JOBS} jobs, ~2% failed; {iters} requests per cell through AdminService\n"
    );
    let mut t = Table::new(&[
        "database", "endpoint", "status", "bytes", "p50 ms", "p99 ms", "max ms",
    ]);
    for backend in barycenter_jobs_benches::backends(&args) {
        rt.block_on(bench_db(backend, rows, iters, &mut t));
    }
    t.print();
}

async fn bench_db(backend: Backend, rows: i64, iters: usize, t: &mut Table) {
    let fresh = barycenter_jobs_benches::fresh_database(backend).await;
    fresh.db.close().await;
    let db = Database::connect_with_max(&fresh.url, 4)
        .await
        .expect("connect");
    ExecutionStore::new(db.clone())
        .migrate()
        .await
        .expect("migrate");
    let started = Instant::now();
    history::fill(&db, "job_executions", rows).await;
    raw(&db, "ANALYZE").await;
    let label = barycenter_jobs_benches::label(backend);
    println!(
        "{label}: {rows} rows filled in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut registry = Registry::builder();
    for i in 0..JOBS {
        registry = registry.register(Noop(job_name(i)));
    }
    let metrics = Metrics::new();
    let handle = Scheduler::builder(registry.build().expect("registry"), db.clone())
        .observer(metrics.clone())
        .start()
        .await
        .expect("scheduler");
    let mut svc = AdminService::builder(handle.clone())
        .bearer_token(TOKEN)
        .metrics(metrics)
        .build();
    let paths = ["/admin/jobs/health", "/admin/jobs/metrics"];
    let mut lat: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut last = [(0u16, 0usize); 2];
    for i in 0..iters + 5 {
        for (k, path) in paths.iter().enumerate() {
            let req = http::Request::get(*path)
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Full::<Bytes>::default())
                .expect("request");
            let t0 = Instant::now();
            let res = svc.call(req).await.expect("infallible");
            let status = res.status().as_u16();
            let body = res.into_body().collect().await.expect("body").to_bytes();
            let took = ms(t0.elapsed());
            if i >= 5 {
                lat[k].push(took);
                last[k] = (status, body.len());
            }
        }
    }
    for (k, path) in paths.iter().enumerate() {
        let s = Summary::of(&mut lat[k]);
        t.row(&[
            label.to_owned(),
            format!("GET {path}"),
            last[k].0.to_string(),
            last[k].1.to_string(),
            f(s.p50, 3),
            f(s.p99, 3),
            f(s.max, 3),
        ]);
    }
    handle
        .shutdown(Duration::from_secs(5))
        .await
        .expect("shutdown");
    db.close().await;
    drop(fresh);
}
