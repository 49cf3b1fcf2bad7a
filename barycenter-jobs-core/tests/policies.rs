//! Scheduling policies (issue 25): a pause with a note and an end that resumes by itself,
//! a pause after consecutive failures, jitter the replicas agree on, missed ticks caught up
//! one by one within a window, and retries with backoff across replicas; each on the three
//! backends.

mod common;

use std::time::Duration;

use barycenter_jobs_core::{
    AuditQuery, Error, ExecutionQuery, ExecutionStatus, ExecutionStore, JobConfig, JobError,
    JobOutput, MisfirePolicy, PauseRequest, PolicyRequest, Registry, Schedule, SchedulerConfig,
    Trigger,
};
use barycenter_jobs_test_support::{TestDb, backend_tests, eventually, record_finished_run};
use chrono::{DateTime, Utc};
use common::{RunLog, ScriptedJob, logging_job, start};

backend_tests!(
    pause_until_ends_by_itself_on_the_replica_that_did_not_pause,
    bad_pause_changes_nothing,
    consecutive_failures_pause_the_job_as_system,
    jitter_is_the_same_on_every_replica,
    run_all_catches_up_each_missed_tick_in_order_within_the_window,
    a_failed_tick_is_retried_with_backoff_once_across_two_replicas,
    a_retry_outlives_the_replica_that_left_it,
);

/// Beyond this a test only waits for a hang.
const HANG: Duration = Duration::from_secs(60);
const GRACE: Duration = Duration::from_secs(5);

/// Two replicas' configuration: short lease, settings polled every second.
fn config(instance: &str) -> SchedulerConfig {
    let mut config = SchedulerConfig::default();
    config.coordination.lease_ttl_secs = 3;
    config.coordination.instance = Some(instance.to_owned());
    config.runtime_settings.poll_interval_ms = 1000;
    config
}

fn ticking(log: &RunLog, tag: &str) -> Registry {
    Registry::builder()
        .register(logging_job("tick", "* * * * * *", log, tag, 1))
        .build()
        .unwrap()
}

/// Alice pauses the job on A with a note, until a few seconds from now, and A goes away.
/// B shows the pause as A wrote it, then ends it by itself at its end: one `resume` by
/// `system` in the audit log, and the job runs on schedule again.
async fn pause_until_ends_by_itself_on_the_replica_that_did_not_pause(t: &TestDb) {
    let log = RunLog::default();
    let a = start(t, ticking(&log, "a"), config("a")).await;
    let b = start(t, ticking(&log, "b"), config("b")).await;
    let until = Utc::now() + chrono::Duration::seconds(4);
    let paused = a
        .pause_with(
            "tick",
            PauseRequest::new()
                .note("rotating the signing keys")
                .until(until),
            "alice",
        )
        .await
        .unwrap();
    assert!(paused.paused && !paused.fires_on_schedule);
    a.shutdown(GRACE).await.unwrap();
    eventually(HANG, "B sees the pause", || async {
        b.job("tick").unwrap().paused
    })
    .await;
    let seen = b.job("tick").unwrap().runtime_settings;
    assert_eq!(
        seen.pause_note.as_deref(),
        Some("rotating the signing keys")
    );
    assert_eq!(seen.paused_by.as_deref(), Some("alice"));
    // Stored to the millisecond.
    assert_eq!(
        seen.paused_until.map(|t| t.timestamp_millis()),
        Some(until.timestamp_millis())
    );

    eventually(HANG, "B ends the pause", || async {
        !b.job("tick").unwrap().paused
    })
    .await;
    assert!(Utc::now() >= until, "not before its end");
    let after = b.job("tick").unwrap();
    assert!(after.fires_on_schedule);
    assert!(after.runtime_settings.pause_note.is_none());
    assert!(after.runtime_settings.paused_until.is_none());
    let log_entries = b.audit_log(&AuditQuery::new().job("tick")).await.unwrap();
    let resumes: Vec<_> = log_entries
        .iter()
        .filter(|e| e.action == "resume")
        .collect();
    assert_eq!(resumes.len(), 1, "{log_entries:?}");
    assert_eq!(resumes[0].actor, "system");
    let resumed_at = Utc::now();
    eventually(HANG, "B runs the job on schedule again", || async {
        log.of("tick")
            .iter()
            .any(|s| s.tag == "b" && s.entered > resumed_at)
    })
    .await;
    b.shutdown(GRACE).await.unwrap();
}

/// An end in the past, an end too far away and a note too long are refused with their
/// reason; the job stays as it was, and the refusals are audited.
async fn bad_pause_changes_nothing(t: &TestDb) {
    let log = RunLog::default();
    let h = start(t, ticking(&log, "a"), config("a")).await;
    let past = PauseRequest::new().until(Utc::now() - chrono::Duration::seconds(1));
    let far = PauseRequest::new().until(Utc::now() + chrono::Duration::days(400));
    let long = PauseRequest::new().note("x".repeat(501));
    for (request, key) in [(past, "until"), (far, "until"), (long, "note")] {
        match h.pause_with("tick", request, "alice").await {
            Err(Error::InvalidSetting { key: k, .. }) => assert_eq!(k, key),
            other => panic!("expected a refusal of {key}, got {other:?}"),
        }
    }
    assert!(!h.job("tick").unwrap().paused);
    match h
        .set_policy("tick", PolicyRequest::new().jitter_secs(3601), "alice")
        .await
    {
        Err(Error::OutOfBounds { key, .. }) => assert_eq!(key, "jitter_secs"),
        other => panic!("{other:?}"),
    }
    assert!(h.job("tick").unwrap().policy.jitter.is_zero());
    let entries = h.audit_log(&AuditQuery::new().job("tick")).await.unwrap();
    assert_eq!(entries.len(), 4);
    assert!(entries.iter().all(|e| {
        e.detail
            .as_deref()
            .is_some_and(|d| d.starts_with("refused: "))
    }));
    h.shutdown(GRACE).await.unwrap();
}

/// A job configured to pause after three consecutive failed runs is paused by `system`
/// after its third, with a note naming the failure; nothing runs on schedule after that.
async fn consecutive_failures_pause_the_job_as_system(t: &TestDb) {
    let failing = ScriptedJob::new("flaky", "* * * * * *", |_| async {
        Err::<JobOutput, _>(JobError::Failed("upstream refused".into()))
    });
    let registry = Registry::builder().register(failing).build().unwrap();
    let mut config = config("a");
    config.jobs.insert(
        "flaky".into(),
        JobConfig {
            pause_after_failures: Some(3),
            ..JobConfig::default()
        },
    );
    let h = start(t, registry, config).await;
    assert_eq!(h.job("flaky").unwrap().policy.pause_after_failures, 3);
    eventually(HANG, "the job is paused", || async {
        h.job("flaky").unwrap().paused
    })
    .await;
    let settings = h.job("flaky").unwrap().runtime_settings;
    assert_eq!(settings.paused_by.as_deref(), Some("system"));
    let note = settings.pause_note.unwrap();
    assert!(
        note.contains("after 3 consecutive failed runs") && note.contains("upstream refused"),
        "{note}"
    );
    let entries = h.audit_log(&AuditQuery::new().job("flaky")).await.unwrap();
    let pauses: Vec<_> = entries.iter().filter(|e| e.action == "pause").collect();
    assert_eq!(pauses.len(), 1, "{entries:?}");
    assert_eq!(pauses[0].actor, "system");
    // Nothing starts on schedule once the pause is in force (one tick may have been running
    // when it landed).
    let runs = || async {
        h.store()
            .list(&ExecutionQuery::new().job("flaky"))
            .await
            .unwrap()
    };
    let failed = runs().await;
    assert!(failed.len() >= 3);
    assert!(
        failed
            .iter()
            .take(3)
            .all(|e| e.status == ExecutionStatus::Failed)
    );
    let settled = failed.len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(runs().await.len() <= settled + 1);
    h.shutdown(GRACE).await.unwrap();
}

/// A jitter set at run time reaches the other replica, both preview the same start times
/// (later than the ticks), and every scheduled run starts at its tick plus that offset,
/// once across the fleet.
async fn jitter_is_the_same_on_every_replica(t: &TestDb) {
    let log = RunLog::default();
    let registry = |tag: &str| {
        Registry::builder()
            .register(logging_job("spread", "*/2 * * * * *", &log, tag, 1))
            .build()
            .unwrap()
    };
    let a = start(t, registry("a"), config("a")).await;
    let b = start(t, registry("b"), config("b")).await;
    a.set_policy("spread", PolicyRequest::new().jitter_secs(1), "alice")
        .await
        .unwrap();
    eventually(HANG, "B has the jitter", || async {
        b.job("spread").unwrap().policy.jitter == Duration::from_secs(1)
    })
    .await;
    let from = Utc::now();
    let (ja, jb) = (a.job("spread").unwrap(), b.job("spread").unwrap());
    let (pa, pb) = (ja.upcoming_runs(from, 20), jb.upcoming_runs(from, 20));
    assert_eq!(pa, pb);
    let ticks = ja.schedule.upcoming(from, 20);
    assert!(
        pa.iter()
            .zip(&ticks)
            .all(|(start, tick)| start >= tick && *start < *tick + chrono::Duration::seconds(1))
    );
    assert!(pa.iter().zip(&ticks).any(|(start, tick)| start > tick));

    eventually(HANG, "five jittered runs", || async {
        jittered_runs(&log, from).len() >= 5
    })
    .await;
    let runs = jittered_runs(&log, from);
    for (tick, entered) in &runs {
        let start = ja.start_of(*tick);
        // The job is entered after its jittered start (a few ms of clock noise allowed).
        assert!(
            *entered >= start - chrono::Duration::milliseconds(20),
            "tick {tick}: entered {entered}, start {start}"
        );
    }
    let mut ticks: Vec<_> = runs.iter().map(|(tick, _)| *tick).collect();
    ticks.dedup();
    assert_eq!(ticks.len(), runs.len(), "each tick once across the fleet");
    a.shutdown(GRACE).await.unwrap();
    b.shutdown(GRACE).await.unwrap();
}

/// Scheduled runs of `spread` after `from`: (tick, when the job was entered), by tick.
fn jittered_runs(log: &RunLog, from: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut runs: Vec<_> = log
        .of("spread")
        .into_iter()
        .filter_map(|s| match s.trigger {
            Trigger::Scheduled { fire_time } if fire_time > from => Some((fire_time, s.entered)),
            _ => None,
        })
        .collect();
    runs.sort();
    runs
}

/// Three daily jobs whose last run was four and a half days ago: `run_all` runs the five
/// missed ticks, oldest first, one at a time; with a window that holds the newest three, those
/// three; `run_once` with a window shorter than the age of its newest missed tick,
/// none.
async fn run_all_catches_up_each_missed_tick_in_order_within_the_window(t: &TestDb) {
    let daily = Schedule::parse("0 0 0 * * *").unwrap();
    let now = Utc::now();
    let newest = daily.latest_at_or_before(now).unwrap();
    let last_run = newest - chrono::Duration::hours(4 * 24 + 12);
    let store = ExecutionStore::new(t.db.clone());
    store.migrate().await.unwrap();
    for job in ["all", "windowed", "once_too_old"] {
        record_finished_run(&store, job, last_run, last_run).await;
    }
    let log = RunLog::default();
    let registry = Registry::builder()
        .register(slow_logging_job("all", &log))
        .register(slow_logging_job("windowed", &log))
        .register(slow_logging_job("once_too_old", &log))
        .build()
        .unwrap();
    let job = |misfire, window: Option<u64>| JobConfig {
        misfire: Some(misfire),
        catch_up_window_secs: window,
        ..JobConfig::default()
    };
    let mut config = config("a");
    config
        .jobs
        .insert("all".into(), job(MisfirePolicy::RunAll, None));
    // A window reaching half a day past the third newest tick, measured from now (the age of
    // a tick depends on the time of day the test runs): three ticks in it, the fourth out.
    let window = (now - (newest - chrono::Duration::days(2))).num_seconds() + 43_200;
    config.jobs.insert(
        "windowed".into(),
        job(MisfirePolicy::RunAll, Some(window.try_into().unwrap())),
    );
    config
        .jobs
        .insert("once_too_old".into(), job(MisfirePolicy::RunOnce, Some(1)));
    let h = start(t, registry, config).await;
    let expected = |days: i64| -> Vec<DateTime<Utc>> {
        (0..days)
            .rev()
            .map(|d| newest - chrono::Duration::days(d))
            .collect()
    };
    let caught_up = |job: &'static str| {
        let log = log.clone();
        move || {
            log.of(job)
                .into_iter()
                .filter_map(|s| match s.trigger {
                    Trigger::CatchUp { fire_time } => Some(fire_time),
                    _ => None,
                })
                .collect::<Vec<_>>()
        }
    };
    let all = caught_up("all");
    eventually(HANG, "five catch-up runs", || async { all().len() >= 5 }).await;
    let windowed = caught_up("windowed");
    eventually(HANG, "three catch-up runs", || async {
        windowed().len() >= 3
    })
    .await;
    // In the order they ran: oldest first.
    assert_eq!(all(), expected(5));
    assert_eq!(windowed(), expected(3));
    assert!(caught_up("once_too_old")().is_empty());
    // The history says the same, each run with its tick.
    let rows = h
        .store()
        .list(&ExecutionQuery::new().job("all"))
        .await
        .unwrap();
    let mut scheduled: Vec<_> = rows
        .iter()
        .filter(|e| e.trigger.as_deref() == Some("catch_up"))
        .filter_map(|e| e.scheduled_for)
        .collect();
    scheduled.sort();
    assert_eq!(scheduled, expected(5));
    h.shutdown(GRACE).await.unwrap();
}

/// A job on `0 0 0 * * *` that logs each run and takes 50 ms, so runs that overlapped
/// would show in the log's order.
fn slow_logging_job(name: &str, log: &RunLog) -> ScriptedJob {
    let log = log.clone();
    let job_name = name.to_owned();
    ScriptedJob::new(name, "0 0 0 * * *", move |ctx| {
        log.push(&job_name, &ctx, "a");
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(JobOutput::processed(1))
        }
    })
}

/// A job on `schedule` that fails its first `failing` attempts at a tick and logs each.
fn flaky_job(log: &RunLog, tag: &str, schedule: &str, failing: u32) -> ScriptedJob {
    let log = log.clone();
    let tag = tag.to_owned();
    ScriptedJob::new("flaky", schedule, move |ctx| {
        log.push("flaky", &ctx, &tag);
        let attempt = ctx.attempt();
        async move {
            if attempt <= failing {
                Err(JobError::Failed(format!("attempt {attempt} failed")))
            } else {
                Ok(JobOutput::processed(u64::from(attempt)))
            }
        }
    })
}

fn retrying(instance: &str) -> SchedulerConfig {
    let mut config = config(instance);
    config.jobs.insert(
        "flaky".into(),
        JobConfig {
            retry_attempts: Some(2),
            retry_backoff_secs: Some(1),
            ..JobConfig::default()
        },
    );
    config
}

/// The attempts of the first tick of `flaky` in the history: (attempt, trigger, status,
/// started, completed), oldest first.
async fn attempts_of_first_tick(
    h: &barycenter_jobs_core::SchedulerHandle,
) -> Vec<(
    u32,
    String,
    ExecutionStatus,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
)> {
    let mut rows = h
        .store()
        .list(&ExecutionQuery::new().job("flaky"))
        .await
        .unwrap();
    rows.reverse();
    let Some(tick) = rows.first().and_then(|r| r.scheduled_for) else {
        return Vec::new();
    };
    rows.into_iter()
        .filter(|r| r.scheduled_for == Some(tick))
        .map(|r| {
            (
                r.attempt,
                r.trigger.unwrap_or_default(),
                r.status,
                r.started_at,
                r.completed_at,
            )
        })
        .collect()
}

/// Two replicas, a job that fails its first two attempts at a tick, two retries 1 s then
/// 2 s later: three runs of the tick (attempts 1, 2, 3; `scheduled`, `retry`, `retry`), one
/// after the other, the last succeeding, each seen by the job with its attempt.
async fn a_failed_tick_is_retried_with_backoff_once_across_two_replicas(t: &TestDb) {
    let log = RunLog::default();
    let registry = |tag: &str| {
        Registry::builder()
            .register(flaky_job(&log, tag, "*/20 * * * * *", 2))
            .build()
            .unwrap()
    };
    let a = start(t, registry("a"), retrying("a")).await;
    let b = start(t, registry("b"), retrying("b")).await;
    assert_eq!(a.job("flaky").unwrap().policy.retry_attempts, 2);
    eventually(HANG, "three attempts at the first tick", || async {
        attempts_of_first_tick(&a).await.len() >= 3
            && attempts_of_first_tick(&a).await[2].4.is_some()
    })
    .await;
    let attempts = attempts_of_first_tick(&a).await;
    let summary: Vec<_> = attempts
        .iter()
        .map(|(n, trigger, status, _, _)| (*n, trigger.as_str(), *status))
        .collect();
    assert_eq!(
        summary,
        [
            (1, "scheduled", ExecutionStatus::Failed),
            (2, "retry", ExecutionStatus::Failed),
            (3, "retry", ExecutionStatus::Succeeded),
        ]
    );
    // One at a time: each attempt started once the one before it ended (second precision).
    for pair in attempts.windows(2) {
        assert!(pair[1].3 >= pair[0].4.unwrap(), "{attempts:?}");
    }
    // The job saw each attempt, once across the fleet.
    let seen: Vec<u32> = log
        .of("flaky")
        .iter()
        .filter(|s| s.trigger.fire_time() == log.of("flaky")[0].trigger.fire_time())
        .map(|s| match s.trigger {
            Trigger::Retry { attempt, .. } => attempt,
            _ => 1,
        })
        .collect();
    assert_eq!(seen, [1, 2, 3]);
    a.shutdown(GRACE).await.unwrap();
    b.shutdown(GRACE).await.unwrap();
}

/// A runs the first attempt of a tick, which fails and leaves a retry; A shuts down before
/// it is due. B, started after, takes the retry over: attempt 2 of the same tick runs on B.
async fn a_retry_outlives_the_replica_that_left_it(t: &TestDb) {
    let log = RunLog::default();
    // A tick every 30 s and a retry 8 s after a failure: time for A to go away before the
    // retry is due (also on a loaded machine), and for B's look-out (every 5 s, for a retry
    // 2 s overdue) before the next tick would drop it.
    let registry = |tag: &str| {
        Registry::builder()
            .register(flaky_job(&log, tag, "*/30 * * * * *", 1))
            .build()
            .unwrap()
    };
    let mut config_a = retrying("a");
    config_a.jobs.get_mut("flaky").unwrap().retry_backoff_secs = Some(8);
    let a = start(t, registry("a"), config_a).await;
    eventually(HANG, "the first attempt failed", || async {
        attempts_of_first_tick(&a)
            .await
            .first()
            .is_some_and(|first| first.2 == ExecutionStatus::Failed)
    })
    .await;
    a.shutdown(GRACE).await.unwrap();
    let b = start(t, registry("b"), retrying("b")).await;
    // Waits for the retry's end, not its start row: the row is written before the job's body
    // runs, and the body is what records the run in `log`.
    eventually(HANG, "the retry ran on B", || async {
        attempts_of_first_tick(&b)
            .await
            .get(1)
            .is_some_and(|retry| retry.4.is_some())
    })
    .await;
    let attempts = attempts_of_first_tick(&b).await;
    assert_eq!(attempts[1].0, 2);
    assert_eq!(attempts[1].1, "retry");
    // The retry of the first tick (a later tick may have failed and been retried too by
    // now, on a slow machine: its attempts are not this test's).
    let first_tick = log.of("flaky")[0].trigger.fire_time();
    let on_b: Vec<_> = log
        .of("flaky")
        .into_iter()
        .filter(|s| {
            s.trigger.fire_time() == first_tick
                && matches!(s.trigger, Trigger::Retry { attempt: 2, .. })
        })
        .collect();
    assert_eq!(on_b.len(), 1, "{on_b:?}");
    assert_eq!(on_b[0].tag, "b");
    b.shutdown(GRACE).await.unwrap();
}
