//! Dry runs of the four cleanups: they count what a run would delete with the same filters
//! and delete nothing; on SQLite, PostgreSQL and MariaDB, directly and through a scheduler.

mod common;

use std::time::Duration;

use barycenter_jobs_builtin::{
    ChallengesCleanup, DeviceCodesCleanup, RefreshTokensCleanup, SessionsCleanup,
};
use barycenter_jobs_core::{CutoffClock, Job, Registry, Scheduler, SchedulerConfig};
use barycenter_jobs_test_support::{TestDb, backend_tests};
use common::*;

const TABLES: [(&str, &str); 4] = [
    ("sessions", "session_id"),
    ("device_codes", "device_code"),
    ("refresh_tokens", "token"),
    ("webauthn_challenges", "challenge"),
];

async fn seed(t: &TestDb) {
    create_barycenter_tables(t).await;
    for (id, expires) in [
        ("gone1", NOW - 100),
        ("gone2", NOW - 1),
        ("live", NOW + 100),
    ] {
        let row = |k: &'static str| {
            vec![
                (k, s(id)),
                ("created_at", i(NOW - 1000)),
                ("expires_at", i(expires)),
            ]
        };
        let mut session = row("session_id");
        session.push(("subject", s("alice")));
        insert(&t.db, "sessions", session).await;
        insert(&t.db, "device_codes", row("device_code")).await;
    }
    // Refresh tokens: one expired, one rotated (its successor is past the grace), two live.
    let later = NOW + 86_400;
    for (id, created, expires, revoked, parent) in [
        ("t_expired", NOW - 90_000, NOW - 5, 0, None),
        ("t_rotated", NOW - 90_000, later, 1, None),
        ("t_child", NOW - 7200, later, 0, Some("t_rotated")),
        ("t_live", NOW - 10, later, 0, None),
    ] {
        insert(
            &t.db,
            "refresh_tokens",
            vec![
                ("token", s(id)),
                ("created_at", i(created)),
                ("expires_at", i(expires)),
                ("revoked", i(revoked)),
                ("parent_token", parent.map(s).unwrap_or_else(null_str)),
            ],
        )
        .await;
    }
    // Challenges: one expired, one older than 5 minutes, one live.
    for (id, created, expires) in [
        ("c_expired", NOW - 10, NOW - 1),
        ("c_old", NOW - 301, later),
        ("c_live", NOW - 10, later),
    ] {
        insert(
            &t.db,
            "webauthn_challenges",
            vec![
                ("challenge", s(id)),
                ("created_at", i(created)),
                ("expires_at", i(expires)),
            ],
        )
        .await;
    }
}

async fn row_counts(t: &TestDb) -> Vec<usize> {
    let mut out = Vec::new();
    for (table, key) in TABLES {
        out.push(keys(&t.db, table, key).await.len());
    }
    out
}

async fn dry_runs_count_and_delete_nothing(t: &TestDb) {
    seed(t).await;
    let before = row_counts(t).await;
    assert_eq!(before, [3, 3, 4, 3]);
    let jobs: [Box<dyn Job>; 4] = [
        Box::new(SessionsCleanup::default()),
        Box::new(DeviceCodesCleanup::default()),
        Box::new(RefreshTokensCleanup::default()),
        Box::new(ChallengesCleanup::default()),
    ];
    let mut counted = Vec::new();
    for job in &jobs {
        counted.push(job.dry_run(ctx(&t.db)).await.unwrap().would_process);
    }
    assert_eq!(counted, [2, 2, 2, 2]);
    assert_eq!(row_counts(t).await, before, "a dry run deletes nothing");
    // The real runs delete exactly what was counted.
    for (job, expected) in jobs.iter().zip(&counted) {
        assert_eq!(
            job.run(ctx(&t.db)).await.unwrap().records_processed,
            *expected,
            "{}",
            job.name()
        );
    }
    assert_eq!(row_counts(t).await, [1, 1, 2, 1]);
    for job in &jobs {
        assert_eq!(job.dry_run(ctx(&t.db)).await.unwrap().would_process, 0);
    }
}

/// Through a scheduler (what `triggerJob(dryRun: true)` calls), with the scheduler's clock
/// stopped at `NOW` for the cut-offs.
async fn scheduler_dry_run(t: &TestDb) {
    seed(t).await;
    barycenter_jobs_builtin::link();
    let mut config = SchedulerConfig::default();
    config.clock.cutoffs = CutoffClock::App;
    let handle = Scheduler::builder(Registry::from_inventory().unwrap(), t.db.clone())
        .config(config)
        .clock(std::sync::Arc::new(barycenter_jobs_core::ManualClock::new(
            now(),
        )))
        .start()
        .await
        .unwrap();
    let dry = handle.dry_run(SessionsCleanup::NAME).await.unwrap();
    assert_eq!(dry.would_process, 2);
    assert_eq!(row_counts(t).await, [3, 3, 4, 3]);
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
}

backend_tests!(dry_runs_count_and_delete_nothing, scheduler_dry_run);
