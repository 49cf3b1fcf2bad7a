//! The fault-injection suite, in process: the network to the database is cut or stalled
//! (a TCP proxy between the scheduler and PostgreSQL / MariaDB) at fire time, mid-run and
//! during the end-of-run write; a lease row is held locked by another session during a
//! shutdown; and on SQLite a long cleanup runs under the scheduler with a 3 s lease while the
//! host writes every 10 ms (in `tests/sqlite_host_writes.rs`, a binary of its own so no
//! other test competes for the two cores while it times the host's writes). Each test
//! measures what happened and prints one `RELIABILITY` line with the figures (see
//! RELIABILITY.md).
//!
//! Process-level faults (kill -9 of a replica, SIGTERM mid-run) are in `tests/faults.rs`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use barycenter_jobs::{
    Database, ExecutionStatus, ExecutionStore, Job, JobContext, JobError, JobOutput, Registry,
    Scheduler, SchedulerConfig, SchedulerHandle, async_trait,
    observe::{RunObserver, TickObserved, TickOutcome},
};
use barycenter_jobs_test_support::proxy::FaultProxy;
use barycenter_jobs_test_support::{TestDb, backend_tests, eventually, has_execution, open_rows};
use chrono::{DateTime, Utc};

/// What one run did, seen from inside the job (real time).
#[derive(Debug, Clone)]
struct Span {
    replica: String,
    tick: Option<DateTime<Utc>>,
    started: Instant,
    ended: Option<Instant>,
}

/// The runs the jobs saw, and the ticks the scheduler reported.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Span>>>, Ticks);

/// Every tick an observer of the scheduler saw, with what became of it.
#[derive(Clone, Default)]
struct Ticks(Arc<Mutex<Vec<TickSeen>>>);

/// One tick's fire time and what became of it.
type TickSeen = (DateTime<Utc>, TickOutcome);

impl RunObserver for Ticks {
    fn on_tick(&self, tick: &TickObserved<'_>) {
        self.0.lock().unwrap().push((tick.tick, tick.outcome));
    }
}

impl Ticks {
    /// What the scheduler reported for `tick`, in order.
    fn of(&self, tick: DateTime<Utc>) -> Vec<TickOutcome> {
        let seen = self.0.lock().unwrap();
        seen.iter()
            .filter(|(t, _)| *t == tick)
            .map(|(_, o)| *o)
            .collect()
    }
}

/// Marks the end of a run when dropped: a run whose future is dropped ends then too.
struct EndOnDrop(Spans, usize);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.0.0.lock().unwrap()[self.1].ended = Some(Instant::now());
    }
}

/// A job that works for `work` (reporting a unit every 50 ms), stopping when cancelled.
struct Worker {
    name: &'static str,
    schedule: &'static str,
    replica: String,
    work: Duration,
    spans: Spans,
}

#[async_trait]
impl Job for Worker {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "fault-injection worker"
    }
    fn schedule(&self) -> &str {
        self.schedule
    }
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        let index = {
            let mut spans = self.spans.0.lock().unwrap();
            spans.push(Span {
                replica: self.replica.clone(),
                tick: ctx.trigger().fire_time(),
                started: Instant::now(),
                ended: None,
            });
            spans.len() - 1
        };
        let _end = EndOnDrop(self.spans.clone(), index);
        let until = tokio::time::Instant::now() + self.work;
        let mut done = 0;
        while tokio::time::Instant::now() < until {
            tokio::select! {
                _ = ctx.cancellation().cancelled() => return Err(JobError::Cancelled),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    done += 1;
                    ctx.report_processed(1);
                }
            }
        }
        Ok(JobOutput::processed(done))
    }
}

async fn scheduler(
    db: Database,
    replica: &str,
    job: (&'static str, &'static str, Duration),
    spans: &Spans,
) -> SchedulerHandle {
    let registry = Registry::builder()
        .register(Worker {
            name: job.0,
            schedule: job.1,
            replica: replica.into(),
            work: job.2,
            spans: spans.clone(),
        })
        .build()
        .unwrap();
    let mut config = SchedulerConfig::default();
    config.coordination.lease_ttl_secs = 3;
    config.coordination.instance = Some(replica.into());
    config.cancel_grace_secs = 1;
    Scheduler::builder(registry, db)
        .config(config)
        .observer(spans.1.clone())
        .start()
        .await
        .unwrap()
}

/// A proxy in front of `t`'s server and a pool of 4 through it: what the proxy cuts, this
/// pool loses.
async fn behind_proxy(t: &TestDb) -> (FaultProxy, Database) {
    let proxy = FaultProxy::in_front_of(&t.url).await;
    let db = Database::connect_with_max(&proxy.url_through(&t.url), 4)
        .await
        .unwrap();
    (proxy, db)
}

/// One replica `replica` running `job` through a proxy in front of `t`'s server.
async fn scheduler_behind_proxy(
    t: &TestDb,
    replica: &str,
    job: (&'static str, &'static str, Duration),
    spans: &Spans,
) -> (FaultProxy, SchedulerHandle) {
    let (proxy, db) = behind_proxy(t).await;
    (proxy, scheduler(db, replica, job, spans).await)
}

/// Pairs of runs of one job that were going at the same moment.
fn overlaps(spans: &[Span]) -> usize {
    let mut n = 0;
    for (i, a) in spans.iter().enumerate() {
        for b in &spans[i + 1..] {
            let a_end = a.ended.unwrap_or_else(Instant::now);
            let b_end = b.ended.unwrap_or_else(Instant::now);
            if a.started < b_end && b.started < a_end {
                n += 1;
            }
        }
    }
    n
}

/// The network is cut just before a tick and restored 700 ms later: the tick is retried and
/// run once, and nothing stays open.
async fn outage_at_fire_time(t: &TestDb) {
    let spans = Spans::default();
    let (proxy, handle) = scheduler_behind_proxy(
        t,
        "cut-at-fire",
        ("every5", "*/5 * * * * *", Duration::from_millis(200)),
        &spans,
    )
    .await;
    // Cut 300 ms before the next tick.
    let next = handle.job("every5").unwrap().next_run_at.unwrap();
    let before = (next - Utc::now() - chrono::Duration::milliseconds(300))
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(before).await;
    proxy.cut().await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    proxy.restore();
    let store = ExecutionStore::new(t.db.clone());
    // A tick that is lost never runs, so the ceiling only catches that (the retried tick
    // runs about when the network is back).
    eventually(
        Duration::from_secs(30),
        "the tick cut at fire time ran",
        || {
            let store = store.clone();
            async move {
                has_execution(&store, "every5", |e| {
                    e.scheduled_for == Some(next) && e.status == ExecutionStatus::Succeeded
                })
                .await
            }
        },
    )
    .await;
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
    let ran = spans
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.tick == Some(next))
        .count();
    let open = open_rows(&store).await;
    eprintln!(
        "RELIABILITY scenario=cut_at_fire_time backend={:?} runs_of_cut_tick={ran} lost_ticks={} open_rows={open}",
        t.backend(),
        usize::from(ran == 0)
    );
    assert_eq!(ran, 1, "the tick cut at fire time runs exactly once");
    assert_eq!(open, 0);
}

/// The network is cut 300 ms before a tick of an every-2-s job and stays cut until 700 ms
/// after the next one: the first tick is retried until the next is due, then given up and
/// reported `error`, with no run and no row; the next tick, retried past the restore, runs,
/// and nothing stays open.
async fn outage_longer_than_a_tick(t: &TestDb) {
    let spans = Spans::default();
    let (proxy, handle) = scheduler_behind_proxy(
        t,
        "cut-past-a-tick",
        ("every2", "*/2 * * * * *", Duration::from_millis(100)),
        &spans,
    )
    .await;
    let first = handle.job("every2").unwrap().next_run_at.unwrap();
    let second = first + chrono::Duration::seconds(2);
    let before = (first - Utc::now() - chrono::Duration::milliseconds(300))
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(before).await;
    proxy.cut().await;
    let restore_at = (second + chrono::Duration::milliseconds(700) - Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(restore_at).await;
    proxy.restore();
    let store = ExecutionStore::new(t.db.clone());
    // The ceiling only catches a scheduler that never runs a tick again.
    eventually(
        Duration::from_secs(30),
        "a tick after the outage ran",
        || {
            let store = store.clone();
            async move {
                has_execution(&store, "every2", |e| {
                    e.scheduled_for.is_some_and(|at| at >= second)
                        && e.status == ExecutionStatus::Succeeded
                })
                .await
            }
        },
    )
    .await;
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
    let ran_first = spans
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.tick == Some(first))
        .count();
    let recorded_first = has_execution(&store, "every2", |e| e.scheduled_for == Some(first)).await;
    let open = open_rows(&store).await;
    eprintln!(
        "RELIABILITY scenario=cut_past_a_tick backend={:?} first_tick={:?} second_tick={:?} runs_of_first={ran_first} open_rows={open}",
        t.backend(),
        spans.1.of(first),
        spans.1.of(second),
    );
    assert_eq!(
        spans.1.of(first),
        [TickOutcome::Error],
        "the tick the outage outlasted is reported once, as an error"
    );
    assert_eq!(ran_first, 0, "the given-up tick did not run");
    assert!(!recorded_first, "the given-up tick has no execution row");
    assert_eq!(open, 0);
}

/// Replica A loses its network for 5 s (longer than the 3 s lease) in the middle of a run;
/// replica B, connected directly, fires the same every-second job. A's run stops before its
/// lease can expire, B takes over only after that, two runs never overlap, and A's row is
/// closed once its network is back.
async fn outage_mid_run(t: &TestDb) {
    let (proxy, db_a) = behind_proxy(t).await;
    let spans = Spans::default();
    let job = ("shared", "0 0 0 1 1 *", Duration::from_secs(8));
    let a = scheduler(db_a, "replica-a", job, &spans).await;
    let b = scheduler(t.another_pool().await, "replica-b", job, &spans).await;
    let run_a = a.trigger("shared").await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let cut_at = Instant::now();
    proxy.cut().await;
    // B keeps asking; it can only get the job once A's lease expired in the database.
    let taken_over = loop {
        match b.trigger("shared").await {
            Ok(run) => break run,
            Err(barycenter_jobs::Error::AlreadyRunning(_)) => {
                // A's lease lapses at most a TTL (3 s) after the cut; 10 s is that plus 7 s
                // for a loaded machine, and still fails a lease that never lapses or lasts
                // the default 30 s.
                assert!(
                    cut_at.elapsed() < Duration::from_secs(10),
                    "B never took over"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    let b_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(cut_at.elapsed())).await;
    proxy.restore();
    let row_a = tokio::time::timeout(Duration::from_secs(20), run_a.wait())
        .await
        .expect("A records its end once its network is back")
        .unwrap();
    b.shutdown(Duration::from_millis(100)).await.unwrap();
    let row_b = taken_over.wait().await.unwrap();
    a.shutdown(Duration::from_secs(5)).await.unwrap();

    let spans = spans.0.lock().unwrap().clone();
    let a_end = spans
        .iter()
        .find(|s| s.replica == "replica-a")
        .and_then(|s| s.ended)
        .expect("A's run ended");
    let store = ExecutionStore::new(t.db.clone());
    let open = open_rows(&store).await;
    let overlap = overlaps(&spans);
    eprintln!(
        "RELIABILITY scenario=cut_mid_run backend={:?} a_row={} duplicate_runs={overlap} a_stopped_after_cut_ms={} b_started_after_cut_ms={} gap_ms={} open_rows={open} a_records={:?}",
        t.backend(),
        row_a.status.as_str(),
        (a_end - cut_at).as_millis(),
        (b_started - cut_at).as_millis(),
        b_started.saturating_duration_since(a_end).as_millis(),
        row_a.records_processed
    );
    assert_eq!(overlap, 0, "two runs at once: {spans:?}");
    assert!(a_end < b_started);
    // Either A wrote its own end once its network was back (failed: lease), or B, which
    // holds the lease since, had already closed A's open row as abandoned: never left open.
    match row_a.status {
        ExecutionStatus::Failed => {
            assert!(
                row_a
                    .error_message
                    .as_deref()
                    .is_some_and(|m| m.contains("lease"))
            );
            assert!(row_a.records_processed.is_some_and(|n| n > 0));
        }
        ExecutionStatus::Abandoned => {
            // B closed it without knowing what A did; A filled in its count once back.
            assert!(
                row_a.records_processed.is_some_and(|n| n > 0),
                "an abandoned run's rows are filled in by its runner: {row_a:?}"
            );
        }
        other => panic!("A's run ended {other:?}: {row_a:?}"),
    }
    assert_eq!(row_b.instance.as_deref(), Some("replica-b"));
    assert_eq!(open, 0);
}

/// The job finishes while the network is cut: the end of the run is retried and written
/// once the network is back, with the job's own outcome.
async fn outage_during_end_of_run_write(t: &TestDb) {
    let spans = Spans::default();
    let (proxy, handle) = scheduler_behind_proxy(
        t,
        "cut-at-end",
        // 1.2 s of work, cut 300 ms in: the run ends (and its end must be written) while
        // the network is cut, with 900 ms to spare for a loaded machine (600 ms left 300 ms),
        // and still 1.2 s before the fence (4/5 of the 3 s TTL after the claim, the last
        // confirmation of its lease) would cancel it.
        ("short", "0 0 0 1 1 *", Duration::from_millis(1200)),
        &spans,
    )
    .await;
    let run = handle.trigger("short").await.unwrap();
    let id = run.execution_id;
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut().await;
    assert!(
        spans.0.lock().unwrap().iter().all(|s| s.ended.is_none()),
        "the network was cut before the job returned"
    );
    // The ceiling only catches a job that never returns.
    eventually(Duration::from_secs(30), "the job returned", || {
        let spans = spans.clone();
        async move { spans.0.lock().unwrap().iter().all(|s| s.ended.is_some()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.restore();
    let row = tokio::time::timeout(Duration::from_secs(20), run.wait())
        .await
        .expect("the end is written after the outage")
        .unwrap();
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
    let store = ExecutionStore::new(t.db.clone());
    let stored = store.get(id).await.unwrap().unwrap();
    let open = open_rows(&store).await;
    eprintln!(
        "RELIABILITY scenario=cut_at_end_write backend={:?} status={} records={:?} open_rows={open}",
        t.backend(),
        stored.status.as_str(),
        stored.records_processed
    );
    assert_eq!(stored.status, ExecutionStatus::Succeeded, "{stored:?}");
    assert_eq!(row.status, ExecutionStatus::Succeeded);
    assert!(stored.records_processed.is_some_and(|n| n > 0));
    assert_eq!(open, 0);
}

/// Another session holds the lease row locked while a run is going and a shutdown begins:
/// the shutdown still completes within its bound (grace + cancel grace + bounded final
/// writes), and the run's row is closed.
async fn locked_lease_row_does_not_hold_up_shutdown(t: &TestDb) {
    let spans = Spans::default();
    let handle = scheduler(
        t.db.clone(),
        "locked",
        ("held", "0 0 0 1 1 *", Duration::from_secs(60)),
        &spans,
    )
    .await;
    let run = handle.trigger("held").await.unwrap();
    let id = run.execution_id;
    let mut locker = match t.backend() {
        barycenter_jobs::Backend::Postgres => Locker::Postgres(
            <sqlx::PgConnection as sqlx::Connection>::connect(&t.url)
                .await
                .unwrap(),
        ),
        _ => Locker::MySql(
            <sqlx::MySqlConnection as sqlx::Connection>::connect(&t.url)
                .await
                .unwrap(),
        ),
    };
    locker
        .run("BEGIN; SELECT token FROM job_leases WHERE job_name = 'held' FOR UPDATE")
        .await;
    let grace = Duration::from_secs(1);
    let began = Instant::now();
    handle.shutdown(grace).await.unwrap();
    let took = began.elapsed();
    // The bound is the promise under test: shutdown is bounded even when a lease statement
    // cannot get through. grace (1 s) + cancel grace (1 s) + lease release tries
    // (2 x 0.5 s) = 3 s, doubled for a loaded machine; a shutdown that waited for the lock
    // would wait until the ROLLBACK below, i.e. forever.
    let bound = Duration::from_secs(6);
    let row = ExecutionStore::new(t.db.clone())
        .get(id)
        .await
        .unwrap()
        .unwrap();
    eprintln!(
        "RELIABILITY scenario=locked_lease_row_shutdown backend={:?} shutdown_ms={} bound_ms={} status={}",
        t.backend(),
        took.as_millis(),
        bound.as_millis(),
        row.status.as_str()
    );
    locker.run("ROLLBACK").await;
    assert!(took < bound, "shutdown took {took:?}");
    assert!(row.completed_at.is_some(), "{row:?}");
    drop(run);
}

enum Locker {
    Postgres(sqlx::PgConnection),
    MySql(sqlx::MySqlConnection),
}

impl Locker {
    async fn run(&mut self, sql: &'static str) {
        match self {
            Locker::Postgres(c) => sqlx::raw_sql(sql).execute(c).await.map(drop),
            Locker::MySql(c) => sqlx::raw_sql(sql).execute(c).await.map(drop),
        }
        .unwrap();
    }
}

backend_tests!(
    [postgres, mysql] outage_at_fire_time,
    outage_longer_than_a_tick,
    outage_mid_run,
    outage_during_end_of_run_write,
    locked_lease_row_does_not_hold_up_shutdown,
);
