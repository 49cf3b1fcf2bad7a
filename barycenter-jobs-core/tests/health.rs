//! Fleet health (overdue jobs) and run observers, through real schedulers on SQLite and
//! PostgreSQL. Time is a manual clock for the overdue cases, so every verdict is at a known
//! instant; the tick cases use the system clock and poll with bounded deadlines.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use barycenter_jobs_core::observe::{
    RunEnded, RunObserver, RunStarted, RunStatus, RunsAbandoned, TickObserved, TickOutcome,
};
use barycenter_jobs_core::{
    Database, ExecutionStore, HealthStatus, JobConfig, JobError, JobOutput, ManualClock,
    MisfirePolicy, NewExecution, Registry, Scheduler, SchedulerConfig, SchedulerHandle,
};
use barycenter_jobs_test_support::{TestDb, backend_tests};
use chrono::{DateTime, TimeZone, Utc};
use common::ScriptedJob;
use tokio::sync::Semaphore;

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, h, m, s).unwrap()
}

fn ok_job(name: &str, schedule: &str) -> ScriptedJob {
    ScriptedJob::new(name, schedule, |_ctx| async { Ok(JobOutput::processed(1)) })
}

async fn start(
    db: &Database,
    clock: &ManualClock,
    jobs: Vec<ScriptedJob>,
    config: SchedulerConfig,
) -> SchedulerHandle {
    let mut registry = Registry::builder();
    for job in jobs {
        registry = registry.register(job);
    }
    Scheduler::builder(registry.build().unwrap(), db.clone())
        .config(config)
        .clock(Arc::new(clock.clone()))
        .start()
        .await
        .unwrap()
}

/// Failures never answer a tick; a success does, until the next tick plus the grace.
async fn overdue_by_failures_then_recovery(t: &TestDb) {
    let clock = ManualClock::new(at(0, 0, 10));
    let fail = Arc::new(AtomicBool::new(true));
    let flag = fail.clone();
    let flaky = ScriptedJob::new("flaky", "0 0 * * * *", move |_ctx| {
        let fail = flag.load(Ordering::SeqCst);
        async move {
            if fail {
                Err(JobError::failed("boom"))
            } else {
                Ok(JobOutput::processed(4))
            }
        }
    });
    let handle = start(&t.db, &clock, vec![flaky], SchedulerConfig::default()).await;

    // Fresh install: the first tick after first-seen (01:00) plus the default grace (the
    // hourly interval) is 02:00.
    let h = handle.health().await.unwrap();
    assert_eq!(h.status, HealthStatus::Ok);
    let job = h.job("flaky").unwrap();
    assert_eq!(job.first_seen_at, Some(at(0, 0, 10)));
    assert_eq!(job.overdue_after, Duration::from_secs(3600));
    assert_eq!((job.last_success_at, job.last_failure_at), (None, None));

    clock.set(at(1, 30, 0));
    handle.trigger("flaky").await.unwrap().wait().await.unwrap();
    clock.set(at(2, 0, 0));
    let h = handle.health().await.unwrap();
    assert_eq!(h.status, HealthStatus::Ok, "exactly at the grace: not yet");
    assert_eq!(h.job("flaky").unwrap().last_failure_at, Some(at(1, 30, 0)));

    clock.set(at(2, 0, 1));
    let h = handle.health().await.unwrap();
    assert_eq!(h.status, HealthStatus::Overdue);
    let job = h.job("flaky").unwrap();
    assert_eq!(job.missed_tick, Some(at(1, 0, 0)));
    assert_eq!(job.overdue_since, Some(at(2, 0, 0)));
    assert_eq!(h.overdue_jobs().count(), 1);

    // Another failure changes nothing.
    handle.trigger("flaky").await.unwrap().wait().await.unwrap();
    let job = handle.job_health("flaky").await.unwrap().unwrap();
    assert_eq!(job.overdue_since, Some(at(2, 0, 0)));
    assert_eq!(job.last_failure_at, Some(at(2, 0, 1)));

    // A success clears it until the next tick (03:00) plus the grace.
    fail.store(false, Ordering::SeqCst);
    clock.set(at(2, 10, 0));
    handle.trigger("flaky").await.unwrap().wait().await.unwrap();
    let h = handle.health().await.unwrap();
    assert_eq!(h.status, HealthStatus::Ok);
    assert_eq!(h.job("flaky").unwrap().last_success_at, Some(at(2, 10, 0)));
    clock.set(at(4, 0, 0));
    assert!(
        !handle
            .job_health("flaky")
            .await
            .unwrap()
            .unwrap()
            .is_overdue()
    );
    clock.set(at(4, 0, 1));
    let job = handle.job_health("flaky").await.unwrap().unwrap();
    assert_eq!(job.overdue_since, Some(at(4, 0, 0)));
    assert!(handle.job_health("nope").await.unwrap().is_none());
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// A tick missed while no replica ran makes the job overdue for the next replica; a job new
/// to the database is not; two replicas give the same answer.
async fn missed_tick_while_down_same_answer_everywhere(t: &TestDb) {
    let clock = ManualClock::new(at(0, 0, 10));
    let first = start(
        &t.db,
        &clock,
        vec![ok_job("hourly", "0 0 * * * *")],
        SchedulerConfig::default(),
    )
    .await;
    first.trigger("hourly").await.unwrap().wait().await.unwrap();
    first.shutdown(Duration::from_secs(5)).await.unwrap();

    // Nobody ran from 00:00:10 to 05:00.
    clock.set(at(5, 0, 0));
    // No catch-up run, so the missed ticks stay missed.
    let config = SchedulerConfig::default().job(
        "hourly",
        JobConfig::default().with_misfire(MisfirePolicy::Skip),
    );
    let replicas = [t.another_pool().await, t.another_pool().await];
    let mut handles = Vec::new();
    for db in &replicas {
        let jobs = vec![
            ok_job("hourly", "0 0 * * * *"),
            ok_job("newcomer", "0 0 * * * *"),
        ];
        handles.push(start(db, &clock, jobs, config.clone()).await);
    }
    let a = handles[0].health().await.unwrap();
    let b = handles[1].health().await.unwrap();
    assert_eq!(a.status, HealthStatus::Overdue);
    let hourly = a.job("hourly").unwrap();
    assert_eq!(
        hourly.first_seen_at,
        Some(at(0, 0, 10)),
        "first seen is kept"
    );
    assert_eq!(hourly.last_success_at, Some(at(0, 0, 10)));
    assert_eq!(hourly.missed_tick, Some(at(1, 0, 0)));
    assert_eq!(hourly.overdue_since, Some(at(2, 0, 0)));
    let newcomer = a.job("newcomer").unwrap();
    assert_eq!(newcomer.first_seen_at, Some(at(5, 0, 0)));
    assert!(!newcomer.is_overdue());
    assert_eq!(a.jobs, b.jobs, "both replicas read the same store");
    assert_eq!(a.status, b.status);

    // One replica runs it; both see it recovered.
    handles[1]
        .trigger("hourly")
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    for h in &handles {
        assert_eq!(h.health().await.unwrap().status, HealthStatus::Ok);
    }
    for h in handles {
        h.shutdown(Duration::from_secs(5)).await.unwrap();
    }
}

/// Disabled and paused jobs are never overdue, however long ago their ticks were.
async fn paused_or_disabled_is_never_overdue(t: &TestDb) {
    let clock = ManualClock::new(at(0, 0, 10));
    let config =
        SchedulerConfig::default().job("disabled", JobConfig::default().with_enabled(false));
    let handle = start(
        &t.db,
        &clock,
        vec![
            ok_job("disabled", "0 0 * * * *"),
            ok_job("paused", "0 0 * * * *"),
        ],
        config,
    )
    .await;
    handle.pause("paused", "test").await.unwrap();
    clock.set(at(20, 0, 0));
    let h = handle.health().await.unwrap();
    assert_eq!(h.status, HealthStatus::Ok);
    for name in ["disabled", "paused"] {
        let job = h.job(name).unwrap();
        assert!(!job.active, "{name}");
        assert!(!job.is_overdue(), "{name}");
    }
    // Resumed: the ticks missed while paused never count; the job is judged from the
    // resume on (its `changed_at`, by the database's clock, which is after this manual
    // clock's 2026-01-01), so it is not overdue.
    handle.resume("paused", "test").await.unwrap();
    let job = handle.job_health("paused").await.unwrap().unwrap();
    assert!(job.active);
    assert_eq!(job.overdue_since, None, "{job:?}");
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// An every-second job (grace 3 s) paused long enough for ticks to come due past the grace,
/// then resumed, reset or rescheduled: right after each change the job is not overdue,
/// because it is judged from the change on, not from its last success before the pause.
/// On the real clock, since the change's time is the database's.
async fn operator_changes_restart_the_overdue_clock(t: &TestDb) {
    let config = SchedulerConfig::default().job(
        "every_second",
        JobConfig::default().with_overdue_after(Duration::from_secs(3)),
    );
    let registry = Registry::builder()
        .register(ok_job("every_second", "* * * * * *"))
        .build()
        .unwrap();
    let handle = Scheduler::builder(registry, t.db.clone())
        .config(config)
        .start()
        .await
        .unwrap();
    let store = ExecutionStore::new(t.db.clone());
    // One success first, so the job has a last success to be judged from.
    let first = handle
        .trigger("every_second")
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(first.success, Some(true));
    for change in ["resume", "reset", "reschedule"] {
        handle.pause("every_second", "test").await.unwrap();
        let paused_at = Utc::now();
        // Let ticks come due past the grace while paused: the newest success must be more
        // than a tick plus the 3 s grace ago. Waiting on the history, not on a sleep alone.
        barycenter_jobs_test_support::eventually(
            Duration::from_secs(30),
            "the last success is older than a tick plus the grace",
            || {
                let store = store.clone();
                async move {
                    let latest = store.latest("every_second").await.unwrap().unwrap();
                    Utc::now() - latest.completed_at.unwrap_or(latest.started_at)
                        > chrono::Duration::seconds(5)
                        && Utc::now() - paused_at > chrono::Duration::seconds(5)
                }
            },
        )
        .await;
        let paused = handle.job_health("every_second").await.unwrap().unwrap();
        assert!(!paused.active && !paused.is_overdue(), "{paused:?}");
        match change {
            "resume" => handle.resume("every_second", "test").await.map(drop),
            "reset" => handle.reset("every_second", "test").await.map(drop),
            _ => handle
                .reschedule(
                    "every_second",
                    barycenter_jobs_core::RescheduleRequest::new().schedule("*/1 * * * * *"),
                    "test",
                )
                .await
                .map(drop),
        }
        .unwrap();
        if change == "reschedule" {
            // A reschedule keeps the pause; resume too, judged from the later change.
            handle.resume("every_second", "test").await.unwrap();
        }
        let h = handle.health().await.unwrap();
        let job = h.job("every_second").unwrap();
        assert!(job.active, "{change}: {job:?}");
        assert!(
            !job.is_overdue(),
            "{change}: overdue right after it: {job:?}"
        );
        assert_eq!(h.status, HealthStatus::Ok, "{change}");
    }
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
}

backend_tests!(
    [sqlite, postgres]
    overdue_by_failures_then_recovery,
    missed_tick_while_down_same_answer_everywhere,
    paused_or_disabled_is_never_overdue,
);

backend_tests!(operator_changes_restart_the_overdue_clock);

/// Everything an observer was told, in order.
#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Start(String, i64),
    End {
        job: String,
        id: i64,
        status: RunStatus,
        records: Option<u64>,
        message: Option<String>,
    },
    Abandoned(String, u64),
    Tick(String, TickOutcome),
}

impl RunObserver for Recorder {
    fn on_start(&self, run: &RunStarted<'_>) {
        self.push(Event::Start(run.job.into(), run.execution_id));
    }
    fn on_end(&self, run: &RunEnded<'_>) {
        self.push(Event::End {
            job: run.job.into(),
            id: run.execution_id,
            status: run.status,
            records: run.records_processed,
            message: run.message.map(str::to_owned),
        });
    }
    fn on_abandoned(&self, runs: &RunsAbandoned<'_>) {
        self.push(Event::Abandoned(runs.job.into(), runs.count));
    }
    fn on_tick(&self, tick: &TickObserved<'_>) {
        self.push(Event::Tick(tick.job.into(), tick.outcome));
    }
}

impl Recorder {
    fn push(&self, e: Event) {
        self.0.lock().unwrap().push(e);
    }
    fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
    fn ends(&self) -> Vec<(String, RunStatus, Option<u64>)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::End {
                    job,
                    status,
                    records,
                    ..
                } => Some((job, status, records)),
                _ => None,
            })
            .collect()
    }
    fn ticks(&self, job: &str, outcome: TickOutcome) -> usize {
        self.events()
            .iter()
            .filter(|e| **e == Event::Tick(job.into(), outcome))
            .count()
    }
}

/// A panicking observer must not break runs or starve the others.
struct Panicker;
impl RunObserver for Panicker {
    fn on_end(&self, _run: &RunEnded<'_>) {
        panic!("observer bug");
    }
}

/// Poll `cond` every 20 ms for up to 20 s; `Err` names what did not happen in time.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("timed out waiting: {what}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Every outcome reaches the observers: succeeded, failed, timed out, cancelled by shutdown,
/// and abandoned runs closed at start-up; each end after its start, with its records.
async fn observer_sees_every_outcome(t: &TestDb) {
    // A run left open by a process that died.
    let store = ExecutionStore::new(t.db.clone());
    store.migrate().await.unwrap();
    let mut dead = NewExecution::manual("ok", Utc::now());
    dead.instance = Some("gone-host:1".into());
    store.start(&dead).await.unwrap();

    let release = Arc::new(Semaphore::new(0));
    let gate = release.clone();
    let registry = Registry::builder()
        .register(ScriptedJob::new("ok", "0 0 3 * * *", |_| async {
            Ok(JobOutput::processed(5))
        }))
        .register(ScriptedJob::new(
            "failing",
            "0 0 3 * * *",
            |ctx| async move {
                ctx.report_processed(2);
                Err(JobError::failed("boom"))
            },
        ))
        .register(ScriptedJob::new("slow", "0 0 3 * * *", |ctx| async move {
            ctx.cancellation().cancelled().await;
            Err(JobError::Cancelled)
        }))
        .register(ScriptedJob::new("held", "0 0 3 * * *", move |ctx| {
            let gate = gate.clone();
            async move {
                tokio::select! {
                    _ = gate.acquire() => Ok(JobOutput::processed(1)),
                    _ = ctx.cancellation().cancelled() => Err(JobError::Cancelled),
                }
            }
        }))
        .build()
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    let second = Arc::new(Recorder::default());
    let config = SchedulerConfig::default().job(
        "slow",
        JobConfig::default().with_timeout(Duration::from_secs(1)),
    );
    let handle = Scheduler::builder(registry, t.db.clone())
        .config(config)
        .observer(recorder.clone())
        .observer(Panicker)
        .observer(second.clone())
        .start()
        .await
        .unwrap();
    assert_eq!(recorder.events(), vec![Event::Abandoned("ok".into(), 1)]);

    let ok = handle.trigger("ok").await.unwrap();
    let ok_id = ok.execution_id;
    ok.wait().await.unwrap();
    handle
        .trigger("failing")
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let slow = handle.trigger("slow").await.unwrap().wait().await.unwrap();
    assert!(slow.error_message.unwrap().starts_with("timed out"));
    let held = handle.trigger("held").await.unwrap().execution_id;
    eventually("held started", || {
        recorder
            .events()
            .iter()
            .any(|e| *e == Event::Start("held".into(), held))
    })
    .await
    .unwrap();
    // No grace: the held run is cancelled at once, and recorded before shutdown returns.
    handle.shutdown(Duration::ZERO).await.unwrap();

    assert_eq!(
        recorder.ends(),
        vec![
            ("ok".into(), RunStatus::Succeeded, Some(5)),
            ("failing".into(), RunStatus::Failed, Some(2)),
            ("slow".into(), RunStatus::TimedOut, None),
            ("held".into(), RunStatus::Cancelled, None),
        ]
    );
    let events = recorder.events();
    let start = events
        .iter()
        .position(|e| *e == Event::Start("ok".into(), ok_id));
    let end = events
        .iter()
        .position(|e| matches!(e, Event::End { id, .. } if *id == ok_id));
    assert!(start.unwrap() < end.unwrap(), "{events:?}");
    assert!(events.iter().any(|e| matches!(
        e,
        Event::End { job, message: Some(m), .. } if job == "failing" && m == "boom"
    )));
    // The observer after the panicking one was told everything too.
    assert_eq!(second.ends(), recorder.ends());
}

/// Ticks: claimed, skipped while the job still runs here, skipped while paused, and lost to
/// another replica. Real timers on an every-second schedule.
async fn observer_sees_tick_outcomes(t: &TestDb) {
    let release = Arc::new(Semaphore::new(0));
    let build = |release: Arc<Semaphore>| {
        Registry::builder()
            .register(ok_job("quick", "* * * * * *"))
            .register(ScriptedJob::new("blocking", "* * * * * *", move |_| {
                let release = release.clone();
                async move {
                    let _ = release.acquire().await.map_err(JobError::failed)?;
                    Ok(JobOutput::processed(0))
                }
            }))
            .register(ok_job("paused", "* * * * * *"))
            .build()
            .unwrap()
    };
    // No catch-up runs: every run here starts from a tick.
    let skip = JobConfig::default().with_misfire(MisfirePolicy::Skip);
    let config = SchedulerConfig::default()
        .job("quick", skip.clone())
        .job("blocking", skip.clone())
        .job("paused", skip);
    let one = Arc::new(Recorder::default());
    let two = Arc::new(Recorder::default());
    // Two replicas in one process: distinct identities, as two processes would have.
    let mut config_b = config.clone();
    let mut config = config;
    config.coordination.instance = Some("replica-a".into());
    config_b.coordination.instance = Some("replica-b".into());
    let a = Scheduler::builder(build(release.clone()), t.db.clone())
        .config(config)
        .observer(one.clone())
        .start()
        .await
        .unwrap();
    a.pause("paused", "test").await.unwrap();
    let b = Scheduler::builder(build(release.clone()), t.another_pool().await)
        .config(config_b)
        .observer(two.clone())
        .start()
        .await
        .unwrap();
    let both = |job: &str, outcome| one.ticks(job, outcome) + two.ticks(job, outcome);
    eventually("quick claimed and lost", || {
        both("quick", TickOutcome::Claimed) >= 2 && both("quick", TickOutcome::Lost) >= 1
    })
    .await
    .unwrap_or_else(|what| panic!("{what}: {:?} / {:?}", one.events(), two.events()));
    eventually("blocking skipped while running", || {
        both("blocking", TickOutcome::SkippedRunning) >= 1
    })
    .await
    .unwrap_or_else(|what| panic!("{what}: {:?} / {:?}", one.events(), two.events()));
    // The pause reaches the second replica through the settings table.
    eventually("paused skipped", || {
        one.ticks("paused", TickOutcome::SkippedPaused) >= 1
            && two.ticks("paused", TickOutcome::SkippedPaused) >= 1
    })
    .await
    .unwrap_or_else(|what| panic!("{what}: {:?} / {:?}", one.events(), two.events()));
    release.add_permits(1000);
    a.shutdown(Duration::from_secs(5)).await.unwrap();
    b.shutdown(Duration::from_secs(5)).await.unwrap();
    // Each claimed tick started exactly one run there.
    for r in [&one, &two] {
        let starts = r
            .events()
            .iter()
            .filter(|e| matches!(e, Event::Start(job, _) if job == "quick"))
            .count();
        assert_eq!(starts, r.ticks("quick", TickOutcome::Claimed));
    }
}

backend_tests!(
    [sqlite, postgres]
    observer_sees_every_outcome,
    observer_sees_tick_outcomes,
);
