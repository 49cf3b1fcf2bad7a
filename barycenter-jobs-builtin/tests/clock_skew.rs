//! Cut-offs under a skewed application clock, on SQLite, PostgreSQL and MariaDB: through a
//! real scheduler (its default database clock refuses a run whose host clock is too far off,
//! a wider bound runs it against the database's time, and the app clock deletes live rows),
//! and for each of the four cleanups run by hand with a database-clock context.
//!
//! Fixtures are written with the database's own time (`db.now()`): that is the clock the
//! cleanups are meant to judge by, and the test machine's wall clock is not.

mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use barycenter_jobs_builtin::{
    ChallengesCleanup, DeviceCodesCleanup, RefreshTokensCleanup, SessionsCleanup,
};
use barycenter_jobs_core::{
    CancellationToken, Clock, CutoffClock, Execution, ExecutionStatus, Job, JobConfig, JobContext,
    JobError, ManualClock, SchedulerConfig, TimeSource, Trigger,
};
use barycenter_jobs_test_support::{TestDb, backend_tests};
use chrono::{DateTime, Duration, Utc};
use common::*;

/// The application clock of a host whose time is off by a fixed amount.
#[derive(Debug)]
struct SkewedClock(Duration);

impl Clock for SkewedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.0
    }
}

/// How far ahead the host's clock runs in the scheduler tests.
const AHEAD_SECS: i64 = 120;

/// Barycenter's tables with one expired session (an hour ago) and one live one (90 s left,
/// less than the host's skew), by the database's clock.
async fn expired_and_live_sessions(t: &TestDb) {
    create_barycenter_tables(t).await;
    let db_now = t.db.now().await.unwrap().timestamp();
    for (id, expires_at) in [("expired", db_now - 3600), ("live", db_now + 90)] {
        insert_session(&t.db, id, db_now - 7200, expires_at).await;
    }
}

/// One manual run of `cleanup_expired_sessions` by a scheduler whose clock runs
/// [`AHEAD_SECS`] ahead, configured by `config`; the recorded execution.
async fn run_with_skewed_scheduler(
    t: &TestDb,
    config: impl FnOnce(&mut SchedulerConfig),
) -> Execution {
    let mut cfg = SchedulerConfig::default();
    config(&mut cfg);
    run_by_scheduler(
        &t.db,
        SessionsCleanup::default(),
        JobConfig::default(),
        cfg,
        Arc::new(SkewedClock(Duration::seconds(AHEAD_SECS))),
    )
    .await
}

/// Default `[clock]`: cut-offs from the database, at most 30 s of skew. A host 120 s ahead is
/// refused before anything is deleted, and the history says why.
async fn skewed_host_is_refused_by_default(t: &TestDb) {
    expired_and_live_sessions(t).await;
    let run = run_with_skewed_scheduler(t, |_| {}).await;
    assert_eq!(run.status, ExecutionStatus::Failed, "{run:?}");
    assert_eq!(run.success, Some(false));
    let message = run.error_message.clone().unwrap_or_default();
    assert!(
        message.contains("ahead of the database clock") && message.contains("max_skew_secs"),
        "{message}"
    );
    // Nothing deleted, not even the expired row: the run stopped before its first statement.
    assert!(matches!(run.records_processed, None | Some(0)), "{run:?}");
    assert_eq!(
        keys(&t.db, "sessions", "session_id").await,
        set(&["expired", "live"])
    );
}

/// A bound wider than the skew lets the run go, and it judges by the database's clock: the
/// session with 90 s left stays although the host's clock has it 30 s past its expiry.
async fn wider_bound_runs_on_database_time(t: &TestDb) {
    expired_and_live_sessions(t).await;
    let run = run_with_skewed_scheduler(t, |c| c.clock.max_skew_secs = 300).await;
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{run:?}");
    assert_eq!(run.records_processed, Some(1));
    assert_eq!(keys(&t.db, "sessions", "session_id").await, set(&["live"]));
}

/// `cutoffs = "app"` trusts the host's clock, skew and all: the live session is deleted 90 s
/// early. This is why the database's clock is the default.
async fn app_clock_deletes_live_rows_when_skewed(t: &TestDb) {
    expired_and_live_sessions(t).await;
    let run = run_with_skewed_scheduler(t, |c| c.clock.cutoffs = CutoffClock::App).await;
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{run:?}");
    assert_eq!(run.records_processed, Some(2));
    assert!(keys(&t.db, "sessions", "session_id").await.is_empty());
}

/// A context whose application clock is `ahead` of the database's and whose cut-offs come
/// from the database, as the scheduler hands out by default.
fn database_clock_ctx(t: &TestDb, db_now: DateTime<Utc>, ahead: Duration) -> JobContext {
    JobContext::new(
        t.db.clone(),
        Trigger::Manual,
        0,
        Arc::new(ManualClock::new(db_now + ahead)),
        CancellationToken::new(),
    )
    .with_time_source(TimeSource::Database {
        max_skew: StdDuration::from_secs(30),
    })
}

/// Each of the four cleanups takes "now" from the database, for every pass: with a host 20 s
/// ahead (within the bound), every row that still has 10 s to live by the database's clock is
/// kept, though the host's clock has it past; with a host 120 s ahead each one is refused.
async fn every_cleanup_judges_by_the_database_clock(t: &TestDb) {
    create_barycenter_tables(t).await;
    let db_now = t.db.now().await.unwrap();
    let now = db_now.timestamp();
    let (gone, live) = (now - 100, now + 10);
    let later = now + 86_400;
    for (id, expires) in [("gone", gone), ("live", live)] {
        insert_session(&t.db, id, now - 7200, expires).await;
        insert_device_code(&t.db, id, now - 600, expires).await;
    }
    let grace = 1800;
    for row in [
        token_row("gone", now - 9000, gone, 0, None),
        token_row("live", now - 9000, live, 0, None),
        // Rotated; the successors are past the 30 min grace by the host's clock, one of them
        // not yet by the database's.
        token_row("rotated_gone", now - 9000, later, 1, None),
        token_row(
            "child_gone",
            now - grace - 100,
            later,
            0,
            Some("rotated_gone"),
        ),
        token_row("rotated_live", now - 9000, later, 1, None),
        token_row(
            "child_live",
            now - grace + 10,
            later,
            0,
            Some("rotated_live"),
        ),
    ] {
        insert(&t.db, "refresh_tokens", row).await;
    }
    for (id, created, expires) in [
        ("expired_gone", now - 10, gone),
        ("expired_live", now - 10, live),
        // Five minutes old by the host's clock, not yet by the database's.
        ("old_gone", now - 300 - 100, later),
        ("old_live", now - 300 + 10, later),
    ] {
        insert_challenge(&t.db, id, created, expires).await;
    }
    let jobs: [(Box<dyn Job>, &str, &str); 4] = [
        (
            Box::new(SessionsCleanup::default()),
            "sessions",
            "session_id",
        ),
        (
            Box::new(DeviceCodesCleanup::default()),
            "device_codes",
            "device_code",
        ),
        (
            Box::new(RefreshTokensCleanup::default()),
            "refresh_tokens",
            "token",
        ),
        (
            Box::new(ChallengesCleanup::default()),
            "webauthn_challenges",
            "challenge",
        ),
    ];

    // Too far ahead: refused, nothing deleted.
    for (job, table, key) in &jobs {
        let before = keys(&t.db, table, key).await;
        let ctx = database_clock_ctx(t, db_now, Duration::seconds(AHEAD_SECS));
        let err = job.run(ctx.clone()).await.unwrap_err();
        assert!(
            matches!(err, JobError::ClockSkew { .. }),
            "{}: {err:?}",
            job.name()
        );
        assert_eq!(keys(&t.db, table, key).await, before, "{}", job.name());
        assert_eq!(ctx.processed_so_far(), None, "{}", job.name());
    }

    // Within the bound: the database's time decides.
    let expected = [
        (1, set(&["live"])),
        (1, set(&["live"])),
        (
            2,
            set(&["child_gone", "child_live", "live", "rotated_live"]),
        ),
        (2, set(&["expired_live", "old_live"])),
    ];
    for ((job, table, key), (deleted, left)) in jobs.iter().zip(expected) {
        let ctx = database_clock_ctx(t, db_now, Duration::seconds(20));
        let out = job.run(ctx.clone()).await.unwrap();
        assert_eq!(keys(&t.db, table, key).await, left, "{}", job.name());
        assert_eq!(out.records_processed, deleted, "{}", job.name());
        // Every statement was reported as it committed.
        assert_eq!(ctx.processed_so_far(), Some(deleted), "{}", job.name());
    }
}

backend_tests!(
    skewed_host_is_refused_by_default,
    wider_bound_runs_on_database_time,
    app_clock_deletes_live_rows_when_skewed,
    every_cleanup_judges_by_the_database_clock,
);
