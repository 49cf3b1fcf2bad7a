//! Scheduler semantics, on SQLite, PostgreSQL and MariaDB.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use barycenter_jobs_core::{
    Error, ExecutionQuery, ExecutionStatus, ExecutionStore, JobConfig, JobError, JobOutput,
    MisfirePolicy, NewExecution, Outcome, Registry, RunEnd, Scheduler, SchedulerConfig, Trigger,
};
use barycenter_jobs_test_support::{TestDb, backend_tests, open_rows, record_finished_run};
use chrono::{Duration as ChronoDuration, Timelike, Utc};
use common::{RunLog, ScriptedJob, logging_job};

const GRACE: Duration = Duration::from_secs(10);

use common::start;

/// A slow job does not delay another job's fires, and fires land on the second.
///
/// Checked by order, not by lateness: ticks of the fast job that came due while the slow
/// job's first run was going entered while it was still going. A scheduler that made the fast
/// job wait behind the slow one would start them only after the slow run ended.
async fn slow_job_does_not_delay_others(t: &TestDb) {
    let log = RunLog::default();
    let slow_log = log.clone();
    let registry = Registry::builder()
        .register(logging_job("fast", "* * * * * *", &log, "", 1))
        .register(ScriptedJob::new("slow", "* * * * * *", move |ctx| {
            let slow_log = slow_log.clone();
            slow_log.push("slow", &ctx, "start");
            async move {
                tokio::time::sleep(Duration::from_secs(3)).await;
                slow_log.push("slow", &ctx, "end");
                Ok(JobOutput::processed(0))
            }
        }))
        .build()
        .unwrap();
    let handle = start(t, registry, SchedulerConfig::default()).await;
    // Until the slow job's first run ended and the fast job ran three times; the ceiling
    // only catches a hang (the first run ends ~3 s after its tick).
    barycenter_jobs_test_support::eventually(
        Duration::from_secs(60),
        "the slow run ended and the fast job ran three times",
        || {
            let log = log.clone();
            async move {
                log.of("slow").iter().any(|s| s.tag == "end") && log.of("fast").len() >= 3
            }
        },
    )
    .await;
    handle.shutdown(GRACE).await.unwrap();

    let fast = log.of("fast");
    let slow = log.of("slow");
    let mut fast_ticks = Vec::new();
    for s in &fast {
        let Trigger::Scheduled { fire_time } = s.trigger else {
            panic!("unexpected trigger {:?}", s.trigger);
        };
        assert_eq!(fire_time.nanosecond(), 0, "ticks are whole seconds");
        // Never early: a semantic bound, which a slower machine only moves further away.
        assert!(
            s.entered >= fire_time,
            "ran before its tick: {fire_time} entered at {}",
            s.entered
        );
        fast_ticks.push(fire_time);
    }
    let before = fast_ticks.len();
    fast_ticks.dedup();
    assert_eq!(fast_ticks.len(), before, "a tick ran twice: {fast:?}");
    // The slow job's first run, from its start to its end.
    let first_start = slow.iter().find(|s| s.tag == "start").unwrap();
    let first_end = slow
        .iter()
        .find(|s| s.tag == "end" && s.execution_id == first_start.execution_id)
        .expect("the first slow run ended");
    let during: Vec<_> = fast
        .iter()
        .filter(|s| {
            s.trigger
                .fire_time()
                .is_some_and(|tick| tick > first_start.entered && tick < first_end.entered)
                && s.entered < first_end.entered
        })
        .collect();
    // The slow run spans at least two ticks of the fast job; the first of them has about
    // two seconds to get in before the slow run ends, which a loaded machine still gives.
    assert!(
        !during.is_empty(),
        "no fast run entered while the slow run ({} to {}) was going: {fast:?}",
        first_start.entered,
        first_end.entered
    );
    // No overlap: each slow run started after the previous one ended.
    let mut open: Option<i64> = None;
    for s in &slow {
        match s.tag.as_str() {
            "start" => {
                assert_eq!(
                    open, None,
                    "a slow run started while another was going: {slow:?}"
                );
                open = Some(s.execution_id);
            }
            _ => {
                assert_eq!(open, Some(s.execution_id), "{slow:?}");
                open = None;
            }
        }
    }
    assert_eq!(open_rows(handle.store()).await, 0);
}

/// A job still running is not started again; a manual trigger says so.
async fn no_overlap_and_already_running(t: &TestDb) {
    let concurrent = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let (c, m) = (concurrent.clone(), max_seen.clone());
    let registry = Registry::builder()
        .register(ScriptedJob::new("busy", "0 0 0 1 1 *", move |_ctx| {
            let (c, m) = (c.clone(), m.clone());
            async move {
                let now = c.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(800)).await;
                c.fetch_sub(1, Ordering::SeqCst);
                Ok(JobOutput::processed(1))
            }
        }))
        .build()
        .unwrap();
    let handle = start(t, registry, SchedulerConfig::default()).await;
    let first = handle.trigger("busy").await.unwrap();
    assert!(handle.job("busy").unwrap().running);
    match handle.trigger("busy").await {
        Err(Error::AlreadyRunning(name)) => assert_eq!(name, "busy"),
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    let row = first.wait().await.unwrap();
    assert_eq!(row.status, ExecutionStatus::Succeeded);
    assert_eq!(row.trigger.as_deref(), Some("manual"));
    assert!(!handle.job("busy").unwrap().running);
    // Free again once finished.
    handle.trigger("busy").await.unwrap().wait().await.unwrap();
    assert_eq!(max_seen.load(Ordering::SeqCst), 1);
    assert!(matches!(handle.trigger("nope").await, Err(Error::UnknownJob(n)) if n == "nope"));
    handle.shutdown(GRACE).await.unwrap();
}

/// A tick that comes due while the job's run is still going is skipped: it is not run late
/// once the run is over; the next run is the next tick's, on time.
async fn tick_during_a_run_is_skipped_not_delayed(t: &TestDb) {
    // (tick, entered, ended) of each run.
    type Seen = (
        chrono::DateTime<Utc>,
        chrono::DateTime<Utc>,
        chrono::DateTime<Utc>,
    );
    let runs: Arc<std::sync::Mutex<Vec<Seen>>> = Arc::default();
    let seen = runs.clone();
    let registry = Registry::builder()
        .register(ScriptedJob::new("long_first", "* * * * * *", move |ctx| {
            let seen = seen.clone();
            async move {
                let entered = Utc::now();
                let first = seen.lock().unwrap().is_empty();
                if first {
                    // Spans at least one more tick.
                    tokio::time::sleep(Duration::from_millis(1600)).await;
                }
                let tick = ctx.trigger().fire_time().expect("a scheduled run");
                seen.lock().unwrap().push((tick, entered, Utc::now()));
                Ok(JobOutput::processed(0))
            }
        }))
        .build()
        .unwrap();
    let config = SchedulerConfig::default().job(
        "long_first",
        JobConfig::default().with_misfire(MisfirePolicy::Skip),
    );
    let handle = start(t, registry, config).await;
    // The ceiling only catches a hang: three runs take about four seconds.
    barycenter_jobs_test_support::eventually(Duration::from_secs(60), "three runs", || {
        let runs = runs.clone();
        async move { runs.lock().unwrap().len() >= 3 }
    })
    .await;
    handle.shutdown(GRACE).await.unwrap();
    let runs = runs.lock().unwrap().clone();
    for pair in runs.windows(2) {
        let ((_, _, ended), (tick, _, _)) = (pair[0], pair[1]);
        // Skipped, not delayed: a tick due during the run is never run after it.
        assert!(
            tick > ended,
            "a run for tick {tick}, which came due before the previous run ended at {ended}: {runs:?}"
        );
        // And nothing more is skipped: the next run is for one of the first ticks after
        // the end. Ticks are a second apart, so the first one after `ended` is within 1 s
        // of it; one more tick allows for the end's bookkeeping (the run counts as going
        // until its end is handled, a little after `ended`) on a loaded machine. A scheduler
        // that skipped idle ticks too would be 3 s or more away. When the run entered is not
        // checked: that is speed, not this behaviour.
        assert!(
            tick - ended <= ChronoDuration::seconds(2),
            "tick {tick} was not among the first after the previous run ended at {ended}: {runs:?}"
        );
    }
}

/// Over its timeout a run is cancelled and recorded as failed.
async fn timeout_is_recorded_as_failure(t: &TestDb) {
    let registry = Registry::builder()
        .register(ScriptedJob::new("stuck", "0 0 0 1 1 *", |ctx| async move {
            ctx.cancellation().cancelled().await;
            Err(JobError::Cancelled)
        }))
        .build()
        .unwrap();
    let config = SchedulerConfig::default().job(
        "stuck",
        JobConfig::default().with_timeout(Duration::from_secs(1)),
    );
    let handle = start(t, registry, config).await;
    let row = handle.trigger("stuck").await.unwrap().wait().await.unwrap();
    assert_eq!(row.status, ExecutionStatus::Failed);
    assert_eq!(row.success, Some(false));
    assert!(
        row.error_message
            .as_deref()
            .unwrap()
            .contains("timed out after 1s"),
        "{row:?}"
    );
    assert!(row.duration_ms.unwrap() >= 1000);
    handle.shutdown(GRACE).await.unwrap();
}

/// A panic is caught and recorded; the scheduler and other jobs carry on.
async fn panic_is_caught(t: &TestDb) {
    let log = RunLog::default();
    let registry = Registry::builder()
        .register(ScriptedJob::new(
            "explodes",
            "0 0 0 1 1 *",
            |_ctx| async move {
                if true {
                    panic!("boom at row 42");
                }
                Ok(JobOutput::default())
            },
        ))
        .register(logging_job("steady", "* * * * * *", &log, "", 0))
        .build()
        .unwrap();
    let handle = start(t, registry, SchedulerConfig::default()).await;
    let row = handle
        .trigger("explodes")
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(row.status, ExecutionStatus::Failed);
    assert_eq!(
        row.error_message.as_deref(),
        Some("panicked: boom at row 42")
    );
    // Still usable: trigger again, and the other job keeps firing.
    let again = handle
        .trigger("explodes")
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(again.status, ExecutionStatus::Failed);
    // Waits for the runs instead of counting them after a fixed sleep; the ceiling only
    // catches a scheduler that stopped firing.
    barycenter_jobs_test_support::eventually(
        Duration::from_secs(30),
        "the other job keeps firing",
        || {
            let log = log.clone();
            async move { log.of("steady").len() >= 2 }
        },
    )
    .await;
    handle.shutdown(GRACE).await.unwrap();
}

/// A tick missed while down is run once at start-up; a job that never ran is not.
async fn misfire_runs_once_at_startup(t: &TestDb) {
    let store = ExecutionStore::new(t.db.clone());
    store.migrate().await.unwrap();
    let three_hours_ago = Utc::now() - ChronoDuration::hours(3);
    for job in ["hourly_missed", "hourly_skip"] {
        record_finished_run(&store, job, three_hours_ago, three_hours_ago).await;
    }
    let log = RunLog::default();
    let registry = Registry::builder()
        .register(logging_job("hourly_missed", "0 0 * * * *", &log, "", 0))
        .register(logging_job("hourly_skip", "0 0 * * * *", &log, "", 0))
        .register(logging_job("hourly_never_ran", "0 0 * * * *", &log, "", 0))
        .build()
        .unwrap();
    let config = SchedulerConfig::default().job(
        "hourly_skip",
        JobConfig::default().with_misfire(MisfirePolicy::Skip),
    );
    let handle = start(t, registry, config).await;
    // Until the catch-up run has been recorded (not a fixed 500 ms, which a loaded machine
    // can overrun); the ceiling only catches a catch-up that never comes.
    let store_for_wait = store.clone();
    barycenter_jobs_test_support::eventually(
        Duration::from_secs(30),
        "the catch-up run is recorded",
        || {
            let store = store_for_wait.clone();
            async move {
                barycenter_jobs_test_support::has_execution(&store, "hourly_missed", |e| {
                    e.trigger.as_deref() == Some("catch_up") && e.completed_at.is_some()
                })
                .await
            }
        },
    )
    .await;
    handle.shutdown(GRACE).await.unwrap();

    let caught = log.of("hourly_missed");
    assert_eq!(caught.len(), 1, "three missed ticks, one catch-up run");
    let Trigger::CatchUp { fire_time } = caught[0].trigger else {
        panic!("expected a catch-up trigger, got {:?}", caught[0].trigger);
    };
    assert_eq!((fire_time.minute(), fire_time.second()), (0, 0));
    assert!(Utc::now() - fire_time <= ChronoDuration::hours(1));
    assert!(log.of("hourly_skip").is_empty());
    assert!(log.of("hourly_never_ran").is_empty());
    let row = store.latest("hourly_missed").await.unwrap().unwrap();
    assert_eq!(row.trigger.as_deref(), Some("catch_up"));
    assert_eq!(row.scheduled_for, Some(fire_time));

    // Restarting right away catches up nothing more.
    let log2 = RunLog::default();
    let registry = Registry::builder()
        .register(logging_job("hourly_missed", "0 0 * * * *", &log2, "", 0))
        .build()
        .unwrap();
    let handle = start(t, registry, SchedulerConfig::default()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    handle.shutdown(GRACE).await.unwrap();
    assert!(log2.all().is_empty());
}

/// Runs left open by a crashed process are closed as abandoned at start-up.
async fn stale_runs_are_closed(t: &TestDb) {
    let store = ExecutionStore::new(t.db.clone());
    store.migrate().await.unwrap();
    let crashed = store
        .start(&NewExecution::manual(
            "sweeper",
            Utc::now() - ChronoDuration::minutes(10),
        ))
        .await
        .unwrap();
    let registry = Registry::builder()
        .register(logging_job(
            "sweeper",
            "0 0 0 1 1 *",
            &RunLog::default(),
            "",
            0,
        ))
        .build()
        .unwrap();
    let handle = start(t, registry, SchedulerConfig::default()).await;
    let row = store.get(crashed).await.unwrap().unwrap();
    assert_eq!(row.status, ExecutionStatus::Abandoned);
    assert!(row.error_message.unwrap().starts_with("abandoned"));
    handle.shutdown(GRACE).await.unwrap();
}

/// Shutdown lets short runs finish and cancels long ones; no row stays open.
async fn graceful_shutdown(t: &TestDb) {
    // The grace is the semantics: a run shorter than it finishes, one longer than it is
    // cancelled. 300 ms against 3 s leaves the short run 2.7 s of scheduling slack on a
    // loaded machine; the long one (60 s) is 20 times the grace.
    let grace = Duration::from_secs(3);
    let registry = Registry::builder()
        .register(ScriptedJob::new(
            "short",
            "0 0 0 1 1 *",
            |_ctx| async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(JobOutput::processed(5))
            },
        ))
        .register(ScriptedJob::new("long", "0 0 0 1 1 *", |ctx| async move {
            tokio::select! {
                _ = ctx.cancellation().cancelled() => Err(JobError::Cancelled),
                _ = tokio::time::sleep(Duration::from_secs(60)) => Ok(JobOutput::processed(1)),
            }
        }))
        .build()
        .unwrap();
    let handle = start(t, registry, SchedulerConfig::default()).await;
    let short = handle.trigger("short").await.unwrap().execution_id;
    let long = handle.trigger("long").await.unwrap().execution_id;
    handle.shutdown(grace).await.unwrap();
    let store = handle.store();
    let short = store.get(short).await.unwrap().unwrap();
    assert_eq!(short.status, ExecutionStatus::Succeeded);
    assert_eq!(short.records_processed, Some(5));
    let long = store.get(long).await.unwrap().unwrap();
    assert_eq!(long.status, ExecutionStatus::Cancelled, "{long:?}");
    assert_eq!(open_rows(store).await, 0);
    assert!(matches!(
        handle.trigger("short").await,
        Err(Error::ShutDown)
    ));
    assert!(handle.jobs().iter().all(|j| j.next_run_at.is_none()));
}

/// Host overrides: schedule, enabled, timeout; typos are errors.
async fn config_overrides(t: &TestDb) {
    let log = RunLog::default();
    let registry = || {
        Registry::builder()
            .register(logging_job("every_sec", "0 0 0 1 1 *", &log, "", 0))
            .register(logging_job("disabled", "* * * * * *", &log, "", 0))
            .build()
            .unwrap()
    };
    let config = SchedulerConfig::default()
        .job(
            "every_sec",
            JobConfig::schedule("* * * * * *").with_timeout(Duration::from_secs(7)),
        )
        .job("disabled", JobConfig::default().with_enabled(false));
    let handle = start(t, registry(), config).await;
    let info = handle.job("every_sec").unwrap();
    assert_eq!(info.schedule.expression(), "* * * * * *");
    assert_eq!(info.timeout, Duration::from_secs(7));
    assert!(info.next_run_at.is_some());
    let disabled = handle.job("disabled").unwrap();
    assert!(!disabled.fires_on_schedule);
    // The old name stays, deprecated, with the same value.
    #[allow(deprecated)]
    let old_name = disabled.enabled;
    assert_eq!(old_name, disabled.fires_on_schedule);
    assert_eq!(disabled.next_run_at, None);
    // Until the overridden schedule fired twice; `disabled` (every second by its own
    // schedule) would have fired by then too. The ceiling only catches a hang.
    barycenter_jobs_test_support::eventually(
        Duration::from_secs(30),
        "the overridden schedule fires",
        || {
            let log = log.clone();
            async move { log.of("every_sec").len() >= 2 }
        },
    )
    .await;
    assert!(log.of("disabled").is_empty(), "disabled jobs are not fired");
    // ...but can be triggered by hand.
    handle
        .trigger("disabled")
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(log.of("disabled").len(), 1);
    handle.shutdown(GRACE).await.unwrap();

    let typo = SchedulerConfig::default().job("evry_sec", JobConfig::default());
    let err = Scheduler::builder(registry(), t.db.clone())
        .config(typo)
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownJob(n) if n == "evry_sec"));
    let bad_cron = SchedulerConfig::default().job("every_sec", JobConfig::schedule("every minute"));
    let err = Scheduler::builder(registry(), t.db.clone())
        .config(bad_cron)
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCron { .. }));
}

/// The configuration deserialises from TOML-like input with every section.
#[test]
fn config_deserialises() {
    let cfg: SchedulerConfig = serde_json::from_str(
        r#"{"jobs": {"a": {"schedule": "0 * * * * *", "enabled": false, "timeout_secs": 5, "misfire": "skip", "time_zone": "Europe/Paris"}},
            "default_timeout_secs": 60,
            "coordination": {"enabled": false, "lease_ttl_secs": 10, "instance": "me"},
            "retention": {"keep_days": null, "interval_secs": 60, "batch_size": 10},
            "tables": {"executions": "hist", "leases": "locks"}}"#,
    )
    .unwrap();
    assert_eq!(cfg.jobs["a"].misfire, Some(MisfirePolicy::Skip));
    assert_eq!(cfg.retention.keep_days, None);
    assert!(!cfg.coordination.enabled);
    assert!(
        serde_json::from_str::<SchedulerConfig>(r#"{"tables": {"executions": "a;b"}}"#).is_err()
    );
    assert!(serde_json::from_str::<SchedulerConfig>(r#"{"jbos": {}}"#).is_err());
}

/// Old history is purged at start-up and later, in batches; recent rows stay.
async fn retention_purges_old_history(t: &TestDb) {
    let store = ExecutionStore::new(t.db.clone());
    store.migrate().await.unwrap();
    let old = Utc::now() - ChronoDuration::days(40);
    for _ in 0..25 {
        let id = store.start(&NewExecution::manual("x", old)).await.unwrap();
        store
            .record_end(RunEnd::new(
                id,
                Outcome::Succeeded {
                    records_processed: 0,
                },
                old,
            ))
            .await
            .unwrap();
    }
    let recent = store
        .start(&NewExecution::manual(
            "x",
            Utc::now() - ChronoDuration::days(2),
        ))
        .await
        .unwrap();
    store
        .record_end(RunEnd::new(
            recent,
            Outcome::Succeeded {
                records_processed: 0,
            },
            Utc::now(),
        ))
        .await
        .unwrap();
    let registry = Registry::builder()
        .register(logging_job("x", "0 0 0 1 1 *", &RunLog::default(), "", 0))
        .build()
        .unwrap();
    let mut config = SchedulerConfig::default();
    config.retention.batch_size = 10;
    config.jobs.insert(
        "x".into(),
        JobConfig::default().with_misfire(MisfirePolicy::Skip),
    );
    let started = std::time::Instant::now();
    let handle = start(t, registry.clone(), config.clone()).await;
    // Until only the recent row is left (the start-up purge, in three batches); the ceiling
    // only catches a purge that never happens.
    barycenter_jobs_test_support::eventually(
        Duration::from_secs(30),
        "the old rows are purged",
        || {
            let store = store.clone();
            async move {
                store
                    .list(&ExecutionQuery::new())
                    .await
                    .is_ok_and(|left| left.len() == 1)
            }
        },
    )
    .await;
    let purge_took = started.elapsed();
    handle.shutdown(GRACE).await.unwrap();
    let left = store.list(&ExecutionQuery::new()).await.unwrap();
    assert_eq!(left.iter().map(|e| e.id).collect::<Vec<_>>(), vec![recent]);

    // `keep_days = 0` (how a configuration file says "keep everything") purges nothing, in
    // the same time the default took to purge all the old rows (at least 800 ms).
    let old_again = store.start(&NewExecution::manual("x", old)).await.unwrap();
    store
        .record_end(RunEnd::new(
            old_again,
            Outcome::Succeeded {
                records_processed: 0,
            },
            old,
        ))
        .await
        .unwrap();
    config.retention.keep_days = Some(0);
    let handle = start(t, registry, config).await;
    tokio::time::sleep(purge_took.max(Duration::from_millis(800))).await;
    handle.shutdown(GRACE).await.unwrap();
    assert!(
        store.get(old_again).await.unwrap().is_some(),
        "keep_days = 0 keeps everything"
    );
}

/// With coordination off no lease rows are written, and everything else still works.
async fn coordination_off_writes_no_leases(t: &TestDb) {
    let log = RunLog::default();
    let registry = Registry::builder()
        .register(logging_job("solo", "* * * * * *", &log, "", 3))
        .build()
        .unwrap();
    let handle = start(
        t,
        registry,
        SchedulerConfig::default().without_coordination(),
    )
    .await;
    // Until it fired twice; the ceiling only catches a hang.
    barycenter_jobs_test_support::eventually(Duration::from_secs(30), "two fires", || {
        let log = log.clone();
        async move { log.of("solo").len() >= 2 }
    })
    .await;
    let row = handle.trigger("solo").await;
    handle.shutdown(GRACE).await.unwrap();
    assert!(log.of("solo").len() >= 2);
    if let Ok(run) = row {
        assert_eq!(run.wait().await.unwrap().records_processed, Some(3));
    }
    let leases = barycenter_jobs_core::LeaseStore::new(
        t.db.clone(),
        barycenter_jobs_core::Identifier::new("job_leases").unwrap(),
    );
    // The table exists (migrations), but holds no row for the job.
    assert!(!leases.is_held("solo").await.unwrap());
    let claimed = leases
        .claim(
            "solo",
            "probe",
            barycenter_jobs_core::ClaimKind::Now,
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert!(claimed.is_none(), "no lease row was created");
}

/// Many runs starting and ending at once (their history writes are grouped on SQLite): each
/// run gets its own row, with its own job, outcome, count and duration.
async fn simultaneous_runs_each_get_their_own_row(t: &TestDb) {
    let mut builder = Registry::builder();
    for i in 0..40u64 {
        builder = builder.register(ScriptedJob::new(
            &format!("many_{i:02}"),
            "0 0 0 1 1 *",
            move |_ctx| async move {
                if i % 7 == 3 {
                    Err(JobError::Failed(format!("job {i} failed")))
                } else {
                    Ok(JobOutput::processed(i * 10))
                }
            },
        ));
    }
    let handle = start(t, builder.build().unwrap(), SchedulerConfig::default()).await;
    let triggers = (0..40u64).map(|i| {
        let handle = handle.clone();
        async move { (i, handle.trigger(&format!("many_{i:02}")).await.unwrap()) }
    });
    let runs = futures_util::future::join_all(triggers).await;
    let mut ids = std::collections::BTreeSet::new();
    for (i, run) in runs {
        assert!(ids.insert(run.execution_id), "ids are distinct");
        let id = run.execution_id;
        let waited = run.wait().await.unwrap();
        let row = handle.store().get(id).await.unwrap().unwrap();
        assert_eq!(waited.status, row.status);
        assert_eq!(row.job_name, format!("many_{i:02}"));
        assert!(
            row.completed_at.is_some() && row.duration_ms.is_some(),
            "{row:?}"
        );
        if i % 7 == 3 {
            assert_eq!(row.status, ExecutionStatus::Failed);
            assert_eq!(
                row.error_message.as_deref(),
                Some(format!("job {i} failed").as_str())
            );
            assert_eq!(row.records_processed, None);
        } else {
            assert_eq!(row.status, ExecutionStatus::Succeeded);
            assert_eq!(row.records_processed, Some(i * 10));
            assert_eq!(row.error_message, None);
        }
    }
    assert_eq!(open_rows(handle.store()).await, 0);
    handle.shutdown(GRACE).await.unwrap();
}

backend_tests!(
    simultaneous_runs_each_get_their_own_row,
    slow_job_does_not_delay_others,
    no_overlap_and_already_running,
    tick_during_a_run_is_skipped_not_delayed,
    timeout_is_recorded_as_failure,
    panic_is_caught,
    misfire_runs_once_at_startup,
    stale_runs_are_closed,
    graceful_shutdown,
    config_overrides,
    retention_purges_old_history,
    coordination_off_writes_no_leases,
);

/// PostgreSQL goes away for a few seconds (connections killed, new ones refused): the
/// scheduler keeps going, and records runs again once the database is back.
async fn survives_database_outage_postgres() {
    use sqlx::{AssertSqlSafe, Connection};
    let t = barycenter_jobs_test_support::postgres().await;
    let admin_url = std::env::var(barycenter_jobs_test_support::POSTGRES_ENV).unwrap();
    let dbname = t.url.rsplit('/').next().unwrap().to_owned();
    let log = RunLog::default();
    let registry = Registry::builder()
        .register(logging_job("heartbeat", "* * * * * *", &log, "", 1))
        .build()
        .unwrap();
    let handle = start(&t, registry, SchedulerConfig::default()).await;
    // Until a run was recorded before the outage (instead of a fixed 1.5 s, which a loaded
    // machine can spend starting up); the ceiling only catches a hang.
    barycenter_jobs_test_support::eventually(
        Duration::from_secs(30),
        "a run recorded before the outage",
        || {
            let store = handle.store().clone();
            async move {
                barycenter_jobs_test_support::has_execution(&store, "heartbeat", |e| {
                    e.completed_at.is_some()
                })
                .await
            }
        },
    )
    .await;

    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    let exec = |sql: String| sqlx::raw_sql(AssertSqlSafe(sql));
    exec(format!(
        "ALTER DATABASE \"{dbname}\" ALLOW_CONNECTIONS false"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    exec(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{dbname}' AND pid <> pg_backend_pid()"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let down_at = Utc::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    exec(format!(
        "ALTER DATABASE \"{dbname}\" ALLOW_CONNECTIONS true"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let up_at = Utc::now();

    // Still alive and firing: once the pool noticed its connections died and reconnected,
    // runs are recorded again. Polled for up to 60 s, a ceiling that only catches a scheduler
    // that never recovers (it takes a few seconds).
    assert!(!handle.is_shut_down());
    let mut rows = Vec::new();
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rows = match handle
            .store()
            .list(&ExecutionQuery::new().job("heartbeat").limit(100))
            .await
        {
            Ok(rows) => rows,
            Err(_) => continue,
        };
        if rows
            .iter()
            .filter(|r| r.started_at > up_at && r.status == ExecutionStatus::Succeeded)
            .count()
            >= 2
        {
            break;
        }
    }
    assert!(
        rows.iter()
            .filter(|r| r.started_at > up_at && r.status == ExecutionStatus::Succeeded)
            .count()
            >= 2,
        "recording resumed after the outage: {rows:?}"
    );
    assert!(
        rows.iter().any(|r| r.started_at < down_at),
        "recorded before the outage"
    );
    handle.shutdown(GRACE).await.unwrap();
    assert_eq!(open_rows(handle.store()).await, 0);
}
barycenter_jobs_test_support::server_test!(postgres, survives_database_outage_postgres);

/// Without history nothing is written: runs still happen, ids are process-local, and
/// waiting for a run answers with its end as the runner saw it (issue 14: a `TriggeredRun`
/// gets its outcome through its channel, so it works without history).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_history_writes_nothing() {
    let t = barycenter_jobs_test_support::sqlite().await;
    let log = RunLog::default();
    let registry = Registry::builder()
        .register(logging_job("mem", "0 0 0 1 1 *", &log, "", 0))
        .build()
        .unwrap();
    let handle = Scheduler::builder(registry, t.db.clone())
        .config(SchedulerConfig::default().without_coordination())
        .without_history()
        .start()
        .await
        .unwrap();
    let first = handle.trigger("mem").await.unwrap();
    let id = first.execution_id;
    let ended = first.wait().await.unwrap();
    assert_eq!((ended.id, ended.status), (id, ExecutionStatus::Succeeded));
    let second = handle.trigger("mem").await.unwrap();
    assert_eq!(second.execution_id, id + 1);
    handle.shutdown(GRACE).await.unwrap();
    assert_eq!(log.of("mem").len(), 2);
    // Not even the tables were created.
    assert!(
        ExecutionStore::new(t.db.clone())
            .list(&ExecutionQuery::new())
            .await
            .is_err()
    );
}

/// A job that ignores its cancellation token is dropped after the grace period and still
/// recorded as timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_of_a_job_that_ignores_cancellation() {
    let t = barycenter_jobs_test_support::sqlite().await;
    let dropped = Arc::new(AtomicUsize::new(0));
    struct Guard(Arc<AtomicUsize>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let d = dropped.clone();
    let registry = Registry::builder()
        .register(ScriptedJob::new("deaf", "0 0 0 1 1 *", move |_ctx| {
            let guard = Guard(d.clone());
            async move {
                let _guard = guard;
                tokio::time::sleep(Duration::from_secs(600)).await;
                Ok(JobOutput::processed(1))
            }
        }))
        .build()
        .unwrap();
    let config = SchedulerConfig::default().job(
        "deaf",
        JobConfig::default().with_timeout(Duration::from_secs(1)),
    );
    let handle = start(&t, registry, config).await;
    let row = handle.trigger("deaf").await.unwrap().wait().await.unwrap();
    assert_eq!(row.status, ExecutionStatus::Failed);
    assert_eq!(row.error_message.as_deref(), Some("timed out after 1s"));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the run's future was dropped"
    );
    assert!(!handle.job("deaf").unwrap().running);
    handle.shutdown(GRACE).await.unwrap();
}
