//! Overlap policies and backfills (issue 25): a tick that comes due while another replica
//! runs the job is buffered and run once after it (`buffer_one`), or stops that run first
//! (`cancel_running`); a backfill runs each past tick once, oldest first, is refused past
//! its bounds, stops when the job is paused, and goes on when its replica goes away. Each
//! on the three backends.

mod common;

use std::time::Duration;

use barycenter_jobs_core::{
    AuditQuery, Error, Execution, ExecutionQuery, ExecutionStatus, Identifier, JobConfig, JobError,
    JobOutput, LeaseStore, OverlapPolicy, PauseRequest, Registry, SchedulerConfig, SchedulerHandle,
    Trigger,
};
use barycenter_jobs_test_support::{TestDb, backend_tests, eventually};
use chrono::{DateTime, TimeZone, Utc};
use common::{RunLog, ScriptedJob, start};
use tokio::sync::watch;

backend_tests!(
    buffer_one_runs_a_tick_that_came_during_a_long_run_once_after_it,
    cancel_running_stops_the_run_on_the_other_replica_then_runs_the_tick,
    a_backfill_runs_each_tick_once_oldest_first_within_its_bounds,
    a_backfill_stops_when_the_job_is_paused_or_it_is_cancelled,
    a_backfill_goes_on_when_its_replica_goes_away,
);

/// Beyond this a test only waits for a hang.
const HANG: Duration = Duration::from_secs(60);
const GRACE: Duration = Duration::from_secs(5);

/// A replica's configuration: short lease, settings polled every second, and `job` on
/// `schedule` under `overlap`.
fn config(instance: &str, schedule: &str, overlap: OverlapPolicy) -> SchedulerConfig {
    let mut config = SchedulerConfig::default();
    config.coordination.lease_ttl_secs = 3;
    config.coordination.instance = Some(instance.to_owned());
    config.runtime_settings.poll_interval_ms = 1000;
    config.jobs.insert(
        "long".into(),
        JobConfig {
            schedule: Some(schedule.to_owned()),
            overlap: Some(overlap),
            ..JobConfig::default()
        },
    );
    config
}

/// A schedule that never fires during a test: A only runs what it is asked to.
const NEVER: &str = "0 0 0 1 1 *";

/// A job whose manual runs report 5 records and then wait for `gate` (or their
/// cancellation); every other run logs itself and ends at once.
fn gated_job(log: &RunLog, tag: &str, gate: &watch::Receiver<bool>) -> Registry {
    let (log, tag, gate) = (log.clone(), tag.to_owned(), gate.clone());
    let job = ScriptedJob::new("long", NEVER, move |ctx| {
        log.push("long", &ctx, &tag);
        let mut gate = gate.clone();
        async move {
            if ctx.trigger() != Trigger::Manual {
                return Ok(JobOutput::processed(1));
            }
            ctx.report_processed(5);
            tokio::select! {
                _ = gate.wait_for(|open| *open) => Ok(JobOutput::processed(5)),
                _ = ctx.cancellation().cancelled() => Err(JobError::Cancelled),
            }
        }
    });
    Registry::builder().register(job).build().unwrap()
}

fn leases(t: &TestDb) -> LeaseStore {
    LeaseStore::new(t.db.clone(), Identifier::new("job_leases").unwrap())
}

/// The job's runs, oldest first.
async fn runs(h: &SchedulerHandle) -> Vec<Execution> {
    let mut rows = h
        .store()
        .list(&ExecutionQuery::new().job("long"))
        .await
        .unwrap();
    rows.reverse();
    rows
}

/// No two runs overlapped (second precision), and no tick ran twice.
fn one_at_a_time_and_once_per_tick(rows: &[Execution]) {
    for pair in rows.windows(2) {
        let ended = pair[0].completed_at.expect("ended");
        assert!(pair[1].started_at >= ended, "{rows:#?}");
    }
    let mut ticks: Vec<_> = rows.iter().filter_map(|r| r.scheduled_for).collect();
    let all = ticks.len();
    ticks.dedup();
    assert_eq!(ticks.len(), all, "a tick ran twice: {rows:#?}");
}

/// A runs the job by hand and holds it; B's ticks (every 2 s) come due meanwhile and find
/// the lease held. Under `buffer_one` the newest of them is kept on the lease row, and once
/// A's run ends it runs once: a scheduled run whose tick came due during A's run, started
/// after it. The ticks before it are dropped.
async fn buffer_one_runs_a_tick_that_came_during_a_long_run_once_after_it(t: &TestDb) {
    let log = RunLog::default();
    let (open, gate) = watch::channel(false);
    let a = start(
        t,
        gated_job(&log, "a", &gate),
        config("a", NEVER, OverlapPolicy::BufferOne),
    )
    .await;
    let b = start(
        t,
        gated_job(&log, "b", &gate),
        config("b", "*/2 * * * * *", OverlapPolicy::BufferOne),
    )
    .await;
    assert_eq!(
        b.job("long").unwrap().policy.overlap,
        OverlapPolicy::BufferOne
    );
    let manual = a.trigger("long").await.unwrap();
    let leases = leases(t);
    // Two of B's ticks buffered in turn: the second replaced the first.
    let first = std::sync::Mutex::new(None);
    eventually(HANG, "a second tick buffered over the first", || async {
        let now = leases.buffered_tick("long").await.unwrap();
        let mut first = first.lock().unwrap();
        match (*first, now) {
            (None, Some(tick)) => *first = Some(tick),
            (Some(earlier), Some(tick)) if tick > earlier => return true,
            _ => {}
        }
        false
    })
    .await;
    let first = first.into_inner().unwrap();
    open.send_replace(true);
    let manual = manual.wait().await.unwrap();
    assert_eq!(manual.status, ExecutionStatus::Succeeded);
    let ended = manual.completed_at.unwrap();
    eventually(HANG, "the buffered tick ran", || async {
        runs(&a).await.len() >= 2 && runs(&a).await[1].completed_at.is_some()
    })
    .await;
    let rows = runs(&a).await;
    let buffered = &rows[1];
    assert_eq!(buffered.trigger.as_deref(), Some("scheduled"), "{rows:#?}");
    let tick = buffered.scheduled_for.unwrap();
    assert!(tick > first.unwrap() && tick <= ended, "{rows:#?}");
    // Of the ticks that came due during A's run, exactly that one ran.
    let during: Vec<_> = rows
        .iter()
        .filter_map(|r| r.scheduled_for)
        .filter(|t| *t >= manual.started_at && *t <= ended)
        .collect();
    assert_eq!(during, [tick], "{rows:#?}");
    one_at_a_time_and_once_per_tick(&rows);
    a.shutdown(GRACE).await.unwrap();
    b.shutdown(GRACE).await.unwrap();
}

/// A runs the job by hand and holds it; B's tick comes due under `cancel_running`. B cannot
/// reach A's run but through the database: A's run stops within about a second of the
/// tick, recorded `cancelled` with the 5 records it reported and the reason, and the tick
/// then runs once.
async fn cancel_running_stops_the_run_on_the_other_replica_then_runs_the_tick(t: &TestDb) {
    let log = RunLog::default();
    let (_open, gate) = watch::channel(false);
    let a = start(
        t,
        gated_job(&log, "a", &gate),
        config("a", NEVER, OverlapPolicy::CancelRunning),
    )
    .await;
    let b = start(
        t,
        gated_job(&log, "b", &gate),
        config("b", "*/3 * * * * *", OverlapPolicy::CancelRunning),
    )
    .await;
    let manual = a.trigger("long").await.unwrap().wait().await.unwrap();
    assert_eq!(manual.status, ExecutionStatus::Cancelled);
    assert_eq!(manual.records_processed, Some(5));
    let message = manual.error_message.clone().unwrap_or_default();
    assert!(message.contains("overlap = cancel_running"), "{message}");
    eventually(HANG, "the tick ran after the cancelled run", || async {
        runs(&a).await.len() >= 2 && runs(&a).await[1].completed_at.is_some()
    })
    .await;
    let rows = runs(&a).await;
    let tick = rows[1].scheduled_for.expect("a scheduled run");
    assert_eq!(rows[1].status, ExecutionStatus::Succeeded);
    // The tick that cancelled the run is the one that ran: due before the run ended, and
    // the run stopped within the poll (1 s, whole seconds in the history) and its grace.
    let ended = manual.completed_at.unwrap();
    assert!(tick <= ended, "{rows:#?}");
    assert!(ended - tick <= chrono::Duration::seconds(3), "{rows:#?}");
    one_at_a_time_and_once_per_tick(&rows);
    // The job saw that tick once.
    let seen: Vec<_> = log
        .of("long")
        .into_iter()
        .filter(|s| s.trigger.fire_time() == Some(tick))
        .collect();
    assert_eq!(seen.len(), 1, "{seen:?}");
    a.shutdown(GRACE).await.unwrap();
    b.shutdown(GRACE).await.unwrap();
}

/// An hourly job that logs each run, on one replica.
fn hourly(log: &RunLog, tag: &str, pause_ms: u64) -> Registry {
    let (log, tag) = (log.clone(), tag.to_owned());
    let job = ScriptedJob::new("long", "0 0 * * * *", move |ctx| {
        log.push("long", &ctx, &tag);
        async move {
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
            Ok(JobOutput::processed(1))
        }
    });
    Registry::builder().register(job).build().unwrap()
}

fn plain(instance: &str) -> SchedulerConfig {
    let mut config = SchedulerConfig::default();
    config.coordination.lease_ttl_secs = 3;
    config.coordination.instance = Some(instance.to_owned());
    config.runtime_settings.poll_interval_ms = 1000;
    config
}

/// Hour `h` of 2026-12-01 (UTC).
fn hour(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, h, 0, 0).unwrap()
}

/// Backfill runs, oldest first: (tick, status, attempt).
async fn backfilled(h: &SchedulerHandle) -> Vec<(DateTime<Utc>, ExecutionStatus, u32)> {
    runs(h)
        .await
        .into_iter()
        .filter(|r| r.trigger.as_deref() == Some("backfill"))
        .map(|r| (r.scheduled_for.unwrap(), r.status, r.attempt))
        .collect()
}

/// A backfill of 01:00 to 03:30 runs 01:00, 02:00 and 03:00 once each, oldest first, one
/// at a time, each seeing its tick, then ends by itself (audited as `system`). A range in
/// the future, one with no tick or more than 1,000, and a paused job are refused with their
/// reason, and nothing runs.
async fn a_backfill_runs_each_tick_once_oldest_first_within_its_bounds(t: &TestDb) {
    let log = RunLog::default();
    let h = start(t, hourly(&log, "a", 20), plain("a")).await;
    let preview = h
        .backfill_ticks("long", hour(1), hour(3) + chrono::Duration::minutes(30))
        .unwrap();
    assert_eq!(preview, [hour(1), hour(2), hour(3)]);
    let ticks = h
        .backfill(
            "long",
            hour(1),
            hour(3) + chrono::Duration::minutes(30),
            "alice",
        )
        .await
        .unwrap();
    assert_eq!(ticks, 3);
    eventually(HANG, "the backfill done", || async {
        h.job("long").unwrap().runtime_settings.backfill.is_none()
            && backfilled(&h).await.len() == 3
    })
    .await;
    let ok = ExecutionStatus::Succeeded;
    assert_eq!(
        backfilled(&h).await,
        [(hour(1), ok, 1), (hour(2), ok, 1), (hour(3), ok, 1)]
    );
    one_at_a_time_and_once_per_tick(&runs(&h).await);
    // The backfill's runs (the job's own hourly tick may come due while the test runs).
    let seen: Vec<_> = log
        .of("long")
        .into_iter()
        .map(|s| s.trigger)
        .filter(|t| matches!(t, Trigger::Backfill { .. }))
        .collect();
    assert_eq!(
        seen,
        [1, 2, 3].map(|n| Trigger::Backfill { fire_time: hour(n) })
    );
    let audit = h.audit_log(&AuditQuery::new().job("long")).await.unwrap();
    let actions: Vec<_> = audit
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str()))
        .collect();
    assert_eq!(actions, [("system", "backfill"), ("alice", "backfill")]);
    assert!(audit[0].detail.as_deref().unwrap().ends_with("done"));

    // Refused, with the reason, and nothing runs.
    let refused = |r: barycenter_jobs_core::Result<usize>| match r {
        Err(Error::InvalidSetting { reason, .. }) => reason,
        other => panic!("not refused: {other:?}"),
    };
    let future = Utc::now() + chrono::Duration::hours(2);
    assert!(refused(h.backfill("long", hour(1), future, "alice").await).contains("future"));
    let empty = hour(1) + chrono::Duration::minutes(1);
    assert!(refused(h.backfill("long", empty, empty, "alice").await).contains("no tick"),);
    let far = hour(1) - chrono::Duration::days(50);
    assert!(refused(h.backfill("long", far, hour(1), "alice").await).contains("1000"));
    assert!(refused(h.backfill("long", hour(2), hour(1), "alice").await).contains("after"));
    h.pause("long", "alice").await.unwrap();
    assert!(refused(h.backfill("long", hour(1), hour(2), "alice").await).contains("paused"));
    assert!(matches!(
        h.backfill("nope", hour(1), hour(2), "alice").await,
        Err(Error::UnknownJob(_))
    ));
    assert_eq!(backfilled(&h).await.len(), 3);
    h.shutdown(GRACE).await.unwrap();
}

/// A backfill of twelve ticks of a job whose runs take a while: a pause drops it (the run
/// in progress finishes, no further tick starts), and so does a cancel.
async fn a_backfill_stops_when_the_job_is_paused_or_it_is_cancelled(t: &TestDb) {
    let log = RunLog::default();
    let h = start(t, hourly(&log, "a", 400), plain("a")).await;
    for stop in ["pause", "cancel"] {
        let before = backfilled(&h).await.len();
        h.backfill("long", hour(0), hour(11), "alice")
            .await
            .unwrap();
        eventually(HANG, "the backfill under way", || async {
            backfilled(&h).await.len() > before
        })
        .await;
        match stop {
            "pause" => {
                let info = h
                    .pause_with("long", PauseRequest::new().note("enough"), "bob")
                    .await
                    .unwrap();
                assert!(info.runtime_settings.backfill.is_none());
            }
            _ => {
                let info = h.cancel_backfill("long", "bob").await.unwrap();
                assert!(info.runtime_settings.backfill.is_none());
            }
        }
        // The run in progress (if any) ends; then nothing else starts.
        eventually(HANG, "the last run over", || async {
            runs(&h).await.iter().all(|r| r.completed_at.is_some())
        })
        .await;
        let stopped_at = backfilled(&h).await.len();
        assert!(stopped_at - before < 12, "{stopped_at} runs");
        // Past the look-out for waiting work (every 5 s), nothing more started.
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(backfilled(&h).await.len(), stopped_at);
        if stop == "pause" {
            h.resume("long", "bob").await.unwrap();
        }
    }
    assert!(matches!(
        h.cancel_backfill("long", "bob").await,
        Err(Error::InvalidSetting { .. })
    ));
    h.shutdown(GRACE).await.unwrap();
}

/// A backfill of five ticks asked of A; A runs the first two and goes away while the
/// second runs. B, which never heard of it but through the database, goes on with the
/// third, fourth and fifth, and ends it: each tick ran once.
async fn a_backfill_goes_on_when_its_replica_goes_away(t: &TestDb) {
    let log = RunLog::default();
    let (_open, gate) = watch::channel(false);
    // On A the second tick waits until A shuts down (its cancellation).
    let on_a = {
        let (log, gate) = (log.clone(), gate.clone());
        ScriptedJob::new("long", "0 0 * * * *", move |ctx| {
            log.push("long", &ctx, "a");
            let mut gate = gate.clone();
            async move {
                if ctx.trigger().fire_time() == Some(hour(2)) {
                    tokio::select! {
                        _ = gate.wait_for(|open| *open) => {}
                        _ = ctx.cancellation().cancelled() => return Err(JobError::Cancelled),
                    }
                }
                Ok(JobOutput::processed(1))
            }
        })
    };
    let a = start(
        t,
        Registry::builder().register(on_a).build().unwrap(),
        plain("a"),
    )
    .await;
    let b = start(t, hourly(&log, "b", 10), plain("b")).await;
    assert_eq!(
        a.backfill("long", hour(1), hour(5), "alice").await.unwrap(),
        5
    );
    eventually(HANG, "A runs the second tick", || async {
        log.of("long")
            .iter()
            .any(|s| s.trigger.fire_time() == Some(hour(2)))
    })
    .await;
    a.shutdown(Duration::from_millis(200)).await.unwrap();
    eventually(HANG, "B ends the backfill", || async {
        b.job("long").unwrap().runtime_settings.backfill.is_none()
            && backfilled(&b).await.len() == 5
    })
    .await;
    let rows = backfilled(&b).await;
    let ticks: Vec<_> = rows.iter().map(|r| r.0).collect();
    assert_eq!(ticks, [1, 2, 3, 4, 5].map(hour));
    assert_eq!(rows[1].1, ExecutionStatus::Cancelled, "{rows:?}");
    let by_tick = |h: u32| -> Vec<String> {
        log.of("long")
            .into_iter()
            .filter(|s| s.trigger.fire_time() == Some(hour(h)))
            .map(|s| s.tag)
            .collect()
    };
    assert_eq!(by_tick(1), ["a"]);
    assert_eq!(by_tick(2), ["a"]);
    for h in 3..=5 {
        assert_eq!(by_tick(h), ["b"], "tick {h}");
    }
    b.shutdown(GRACE).await.unwrap();
}
