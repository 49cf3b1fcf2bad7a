//! Every rule of the four cleanups, on Barycenter's schema, on SQLite, PostgreSQL and MariaDB.

mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use barycenter_jobs_builtin::{
    BatchedDelete, Batching, BuiltinConfig, ChallengesCleanup, ChallengesConfig,
    DeviceCodesCleanup, DeviceCodesConfig, RefreshTokensCleanup, RefreshTokensConfig,
    RotatedTokens, SessionsCleanup, SessionsConfig, TimeFormat, configure,
};
use barycenter_jobs_core::sea_query::{Cond, Expr, ExprTrait};
use barycenter_jobs_core::{
    Backend, CancellationToken, CutoffClock, Error, ExecutionStatus, Identifier, Job, JobConfig,
    JobError, ManualClock, Registry, SchedulerConfig,
};
use barycenter_jobs_test_support::{TestDb, backend_tests};
use chrono::Duration;
use common::*;

fn tiny_batches() -> Batching {
    fixed_batches(2, 0)
}

async fn session(t: &TestDb, id: &str, expires_at: i64) {
    insert_session(&t.db, id, expires_at - 3600, expires_at).await;
}

async fn sessions_expire_strictly_before_now(t: &TestDb) {
    create_barycenter_tables(t).await;
    session(t, "long_gone", NOW - 86_400).await;
    session(t, "just_gone", NOW - 1).await;
    session(t, "at_now", NOW).await;
    session(t, "next_second", NOW + 1).await;
    session(t, "far_future", i64::from(i32::MAX) * 4).await;
    let out = SessionsCleanup::default().run(ctx(&t.db)).await.unwrap();
    assert_eq!(out.records_processed, 2);
    assert_eq!(
        keys(&t.db, "sessions", "session_id").await,
        set(&["at_now", "far_future", "next_second"])
    );
    // Idempotent: a second run finds nothing.
    let out = SessionsCleanup::default().run(ctx(&t.db)).await.unwrap();
    assert_eq!(out.records_processed, 0);
}

async fn many_batches_count_exactly(t: &TestDb) {
    create_barycenter_tables(t).await;
    let rows = (0..57)
        .map(|n| {
            let expires = if n % 3 == 0 { NOW + n } else { NOW - n - 1 };
            vec![s(&format!("s{n:03}")), s("bob"), i(0), i(expires)]
        })
        .collect();
    insert_many(
        &t.db,
        "sessions",
        &["session_id", "subject", "created_at", "expires_at"],
        rows,
    )
    .await;
    let expired = (0..57).filter(|n| n % 3 != 0).count() as u64; // 38
    let job = SessionsCleanup::default().with_batching(&tiny_batches());
    let out = job.run(ctx(&t.db)).await.unwrap();
    assert_eq!(out.records_processed, expired);
    assert_eq!(keys(&t.db, "sessions", "session_id").await.len(), 57 - 38);

    // The mechanism itself: 7 rows in batches of 3 take 3 statements with rows and a last
    // empty one.
    let table = Identifier::new("sessions").unwrap();
    let col = Identifier::new("expires_at").unwrap();
    let b = fixed_batches(3, 0);
    let delete = BatchedDelete::new(
        table.clone(),
        Identifier::new("session_id").unwrap(),
        col.clone(),
        Cond::all().add(Expr::col((table, col)).lt(NOW + 19)),
    )
    .with_batching(&b);
    let report = delete.run(&ctx(&t.db)).await.unwrap();
    assert_eq!(report.deleted, 7);
    // PostgreSQL walks the heap instead, here one page in one statement.
    let statements = if t.db.backend() == Backend::Postgres {
        1
    } else {
        4
    };
    assert_eq!(report.statements, statements);
    assert_eq!(keys(&t.db, "sessions", "session_id").await.len(), 12);
}

async fn cancelled_run_stops_before_the_next_batch(t: &TestDb) {
    create_barycenter_tables(t).await;
    session(t, "gone", NOW - 10).await;
    let cancel = CancellationToken::new();
    cancel.cancel();
    let err = SessionsCleanup::default()
        .run(ctx_with(&t.db, cancel))
        .await
        .unwrap_err();
    assert!(matches!(err, JobError::Cancelled), "{err:?}");
    assert_eq!(keys(&t.db, "sessions", "session_id").await, set(&["gone"]));
}

/// Cancelled between two batches, a run has reported exactly the rows that are gone: the
/// scheduler records that figure for a cut-short run.
async fn cancelled_run_reports_exactly_what_it_deleted(t: &TestDb) {
    create_barycenter_tables(t).await;
    // Enough rows that PostgreSQL's heap walk needs more than its first range (32 pages),
    // so on every backend the run is cut short with rows left.
    const ROWS: usize = 6_000;
    insert_expired_sessions(&t.db, ROWS).await;
    // After its first statement the run pauses for a minute, so the cancellation below
    // lands in that pause whatever the machine's speed: the run cannot reach a second
    // statement before it.
    let b = fixed_batches(100, 60_000);
    let cancel = CancellationToken::new();
    let ctx = ctx_with(&t.db, cancel.clone());
    let job = SessionsCleanup::default().with_batching(&b);
    let run = tokio::spawn({
        let ctx = ctx.clone();
        async move { job.run(ctx).await }
    });
    // The context shares its progress with the run's: wait for the first report.
    tokio::time::timeout(StdDuration::from_secs(30), async {
        while ctx.processed_so_far().is_none() {
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
    })
    .await
    .expect("the first statement reports within 30 s");
    cancel.cancel();
    let err = tokio::time::timeout(StdDuration::from_secs(10), run)
        .await
        .expect("a cancelled pause ends at once")
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, JobError::Cancelled), "{err:?}");
    let gone = (ROWS - keys(&t.db, "sessions", "session_id").await.len()) as u64;
    assert_eq!(ctx.processed_so_far(), Some(gone));
    assert!(
        gone > 0 && gone < ROWS as u64,
        "cut short: {gone} of {ROWS}"
    );
    if t.backend() != Backend::Postgres {
        assert_eq!(gone, 100, "one batch of 100");
    }
}

async fn token(
    t: &TestDb,
    id: &str,
    created: i64,
    expires: i64,
    revoked: i64,
    parent: Option<&str>,
) {
    insert_token(&t.db, id, created, expires, revoked, parent).await;
}

async fn refresh_tokens_expired_and_rotated(t: &TestDb) {
    create_barycenter_tables(t).await;
    let grace = 1800;
    let later = NOW + 86_400;
    // Expiry.
    token(t, "expired", NOW - 90_000, NOW - 1, 0, None).await;
    token(t, "expires_now", NOW - 90_000, NOW, 0, None).await;
    token(t, "live", NOW - 10, later, 0, None).await;
    // Rotated, successor older than the grace period: deleted; the successor stays.
    token(t, "rotated_old", NOW - 9_000, later, 1, None).await;
    token(
        t,
        "child_old",
        NOW - grace - 1,
        later,
        0,
        Some("rotated_old"),
    )
    .await;
    // Successor within the grace period, or exactly at its end: kept.
    token(t, "rotated_recent", NOW - 9_000, later, 1, None).await;
    token(
        t,
        "child_recent",
        NOW - grace + 1,
        later,
        0,
        Some("rotated_recent"),
    )
    .await;
    token(t, "rotated_edge", NOW - 9_000, later, 1, None).await;
    token(t, "child_edge", NOW - grace, later, 0, Some("rotated_edge")).await;
    // Revoked but named by nothing: not a rotation, kept until it expires.
    token(t, "revoked_orphan", NOW - 9_000, later, 1, None).await;
    token(
        t,
        "revoked_dangling",
        NOW - 9_000,
        later,
        1,
        Some("no_such_token"),
    )
    .await;
    // Not revoked: kept whatever names it.
    token(t, "active_parent", NOW - 9_000, later, 0, None).await;
    token(
        t,
        "child_active",
        NOW - 7_200,
        later,
        0,
        Some("active_parent"),
    )
    .await;
    // A chain a -> b -> c, all successors old: a and b go.
    token(t, "chain_a", NOW - 9_000, later, 1, None).await;
    token(t, "chain_b", NOW - 8_000, later, 1, Some("chain_a")).await;
    token(t, "chain_c", NOW - 7_000, later, 0, Some("chain_b")).await;
    // Any non-zero value counts as revoked.
    token(t, "revoked_two", NOW - 9_000, later, 2, None).await;
    token(t, "child_two", NOW - 7_000, later, 0, Some("revoked_two")).await;

    let out = RefreshTokensCleanup::default()
        .run(ctx(&t.db))
        .await
        .unwrap();
    assert_eq!(out.records_processed, 5);
    assert_eq!(
        keys(&t.db, "refresh_tokens", "token").await,
        set(&[
            "active_parent",
            "chain_c",
            "child_active",
            "child_edge",
            "child_old",
            "child_recent",
            "child_two",
            "expires_now",
            "live",
            "revoked_dangling",
            "revoked_orphan",
            "rotated_edge",
            "rotated_recent",
        ])
    );

    // The grace period is configurable: with 60 s, the recent and edge rotations go too.
    let mut config = RefreshTokensConfig::default();
    config.rotation_grace_period_secs = 60;
    let job = RefreshTokensCleanup::new(&config)
        .unwrap()
        .with_batching(&tiny_batches());
    let out = job.run(ctx(&t.db)).await.unwrap();
    assert_eq!(out.records_processed, 2);
    let left = keys(&t.db, "refresh_tokens", "token").await;
    assert!(!left.contains("rotated_recent") && !left.contains("rotated_edge"));
    assert!(left.contains("revoked_orphan") && left.contains("child_recent"));
}

/// The rotated pass judges the whole table once and then deletes by key: with batches of two
/// rows, a chain whose successors sort before their parents (`r5 <- r4 <- ... <- r0`, each
/// successor old) still loses every rotated token in one run, as one plain DELETE would (a
/// batch that deletes `r4` first cannot take `r5`'s successor away from a later batch), and
/// the pass is one read plus one statement per two tokens, with no final empty statement.
async fn rotated_chain_is_judged_once(t: &TestDb) {
    create_barycenter_tables(t).await;
    let later = NOW + 86_400;
    // r5 is the oldest, r0 the live head: r(k-1).parent = r(k).
    for k in 0..6_i64 {
        let parent = (k < 5).then(|| format!("r{}", k + 1));
        let revoked = i64::from(k > 0);
        token(
            t,
            &format!("r{k}"),
            NOW - 9_000 + (5 - k) * 100,
            later,
            revoked,
            parent.as_deref(),
        )
        .await;
    }
    // A revoked token whose successor is within the grace period: kept.
    token(t, "q1", NOW - 9_000, later, 1, None).await;
    token(t, "q0", NOW - 60, later, 0, Some("q1")).await;
    // A rotated token that has also expired: the expiry pass takes it first.
    token(t, "x1", NOW - 9_000, NOW - 10, 1, None).await;
    token(t, "x0", NOW - 8_000, later, 0, Some("x1")).await;

    let job = RefreshTokensCleanup::default().with_batching(&tiny_batches());
    let out = job.run(ctx(&t.db)).await.unwrap();
    assert_eq!(out.records_processed, 6);
    assert_eq!(
        keys(&t.db, "refresh_tokens", "token").await,
        set(&["q0", "q1", "r0", "x0"])
    );
    let report = job.last_report().unwrap();
    // Expiry pass: 1 row then the empty statement (on PostgreSQL a heap walk of one range);
    // rotated pass: r1..r5 in 2 + 2 + 1.
    let expiry = if t.backend() == Backend::Postgres {
        1
    } else {
        2
    };
    assert_eq!(report.statements, expiry + 3);
    assert!(report.selecting > StdDuration::ZERO);
}

/// Through a real scheduler: a cleanup that overruns its timeout is cancelled between two
/// batches, recorded as failed, and its `records_processed` is the rows it did delete.
async fn timed_out_run_records_what_it_deleted(t: &TestDb) {
    create_barycenter_tables(t).await;
    const ROWS: usize = 6_000;
    insert_expired_sessions(&t.db, ROWS).await;
    // A minute's pause after the first statement: the 1 s timeout always lands in it.
    let b = fixed_batches(100, 60_000);
    let mut config = SchedulerConfig::default();
    // The fixtures' clock, not the database's: their expiry times are relative to NOW.
    config.clock.cutoffs = CutoffClock::App;
    let run = run_by_scheduler(
        &t.db,
        SessionsCleanup::default().with_batching(&b),
        JobConfig {
            timeout_secs: Some(1),
            ..JobConfig::default()
        },
        config,
        Arc::new(ManualClock::new(now())),
    )
    .await;
    assert_eq!(run.status, ExecutionStatus::Failed, "{run:?}");
    let gone = (ROWS - keys(&t.db, "sessions", "session_id").await.len()) as u64;
    assert!(
        gone > 0 && gone < ROWS as u64,
        "cut short: {gone} of {ROWS}"
    );
    assert_eq!(run.records_processed, Some(gone), "{run:?}");
}

/// `rotated = "at_expiry"` keeps rotated tokens, however old their successor, until their own
/// expiry; expired tokens go as usual, rotated or not.
async fn rotated_tokens_kept_until_expiry(t: &TestDb) {
    create_barycenter_tables(t).await;
    let later = NOW + 86_400;
    token(t, "rotated_old", NOW - 90_000, later, 1, None).await;
    token(t, "child_old", NOW - 80_000, later, 0, Some("rotated_old")).await;
    token(t, "rotated_expired", NOW - 90_000, NOW - 1, 1, None).await;
    token(
        t,
        "child_of_expired",
        NOW - 80_000,
        later,
        0,
        Some("rotated_expired"),
    )
    .await;
    token(t, "expired", NOW - 90_000, NOW - 1, 0, None).await;

    let config: RefreshTokensConfig = toml::from_str(r#"rotated = "at_expiry""#).unwrap();
    assert_eq!(config.rotated, RotatedTokens::AtExpiry);
    let job = RefreshTokensCleanup::new(&config).unwrap();
    let out = job.run(ctx(&t.db)).await.unwrap();
    assert_eq!(out.records_processed, 2);
    assert_eq!(
        keys(&t.db, "refresh_tokens", "token").await,
        set(&["child_of_expired", "child_old", "rotated_old"])
    );

    // The same table with the default (`after_grace`): the rotated token goes, which is what
    // makes a later replay of it undetectable.
    let out = RefreshTokensCleanup::default()
        .run(ctx(&t.db))
        .await
        .unwrap();
    assert_eq!(out.records_processed, 1);
    assert_eq!(
        keys(&t.db, "refresh_tokens", "token").await,
        set(&["child_of_expired", "child_old"])
    );
}

/// Run the four cleanups configured by `config` once each; the rows each deleted.
async fn run_all_four(t: &TestDb, config: &BuiltinConfig) -> [u64; 4] {
    let registry = configure(Registry::builder().with_inventory(), config)
        .unwrap()
        .build()
        .unwrap();
    let mut out = [0; 4];
    for (n, name) in [
        SessionsCleanup::NAME,
        DeviceCodesCleanup::NAME,
        RefreshTokensCleanup::NAME,
        ChallengesCleanup::NAME,
    ]
    .into_iter()
    .enumerate()
    {
        let job = registry.get(name).unwrap().job().clone();
        out[n] = job.run(ctx(&t.db)).await.unwrap().records_processed;
    }
    out
}

/// `keep_if_younger_secs` moves "now" back for every pass of every cleanup: a row that
/// expired less than the margin ago (or, for the age rules, is less than the margin past
/// them) is kept; a run without the margin then takes it, so the margin is what kept it.
async fn safety_margin_keeps_recently_expired_rows(t: &TestDb) {
    create_barycenter_tables(t).await;
    const M: i64 = 60;
    let later = NOW + 86_400;
    let grace = 1800;
    for (id, expires) in [
        ("s_gone", NOW - M - 1),
        ("s_at_margin", NOW - M),
        ("s_recent", NOW - 1),
    ] {
        session(t, id, expires).await;
        device_code(t, &id.replacen("s_", "d_", 1), expires).await;
    }
    // Expiry pass.
    token(t, "t_gone", NOW - 90_000, NOW - M - 1, 0, None).await;
    token(t, "t_recent", NOW - 90_000, NOW - 1, 0, None).await;
    // Rotation pass: successors past the grace period by more, or less, than the margin.
    token(t, "rot_gone", NOW - 90_000, later, 1, None).await;
    token(t, "c_gone", NOW - grace - M - 1, later, 0, Some("rot_gone")).await;
    token(t, "rot_recent", NOW - 90_000, later, 1, None).await;
    token(t, "c_recent", NOW - grace - 1, later, 0, Some("rot_recent")).await;
    // Expiry pass and age pass of the challenges.
    challenge(t, "ch_expired_gone", NOW - 10, NOW - M - 1).await;
    challenge(t, "ch_expired_recent", NOW - 10, NOW - 1).await;
    challenge(t, "ch_old_gone", NOW - 300 - M - 1, later).await;
    challenge(t, "ch_old_recent", NOW - 301, later).await;

    let toml = format!(
        "[sessions]\nkeep_if_younger_secs = {M}\n[device_codes]\nkeep_if_younger_secs = {M}\n\
         [refresh_tokens]\nkeep_if_younger_secs = {M}\n[challenges]\nkeep_if_younger_secs = {M}\n"
    );
    let with_margin: BuiltinConfig = toml::from_str(&toml).unwrap();
    // Sessions, device codes, refresh tokens, challenges.
    assert_eq!(run_all_four(t, &with_margin).await, [1, 1, 2, 2]);
    assert_eq!(
        keys(&t.db, "sessions", "session_id").await,
        set(&["s_at_margin", "s_recent"])
    );
    assert_eq!(
        keys(&t.db, "device_codes", "device_code").await,
        set(&["d_at_margin", "d_recent"])
    );
    assert_eq!(
        keys(&t.db, "refresh_tokens", "token").await,
        set(&["c_gone", "c_recent", "rot_recent", "t_recent"])
    );
    assert_eq!(
        keys(&t.db, "webauthn_challenges", "challenge").await,
        set(&["ch_expired_recent", "ch_old_recent"])
    );

    assert_eq!(
        run_all_four(t, &BuiltinConfig::default()).await,
        [2, 2, 2, 2]
    );
    assert!(keys(&t.db, "sessions", "session_id").await.is_empty());
    assert!(keys(&t.db, "device_codes", "device_code").await.is_empty());
    assert_eq!(
        keys(&t.db, "refresh_tokens", "token").await,
        set(&["c_gone", "c_recent"])
    );
    assert!(
        keys(&t.db, "webauthn_challenges", "challenge")
            .await
            .is_empty()
    );

    // A margin too large to subtract deletes nothing rather than failing.
    session(t, "s_ancient", 1).await;
    let mut config = SessionsConfig::default();
    config.keep_if_younger_secs = u64::MAX;
    let out = SessionsCleanup::new(&config)
        .unwrap()
        .run(ctx(&t.db))
        .await
        .unwrap();
    assert_eq!(out.records_processed, 0);
    assert_eq!(
        keys(&t.db, "sessions", "session_id").await,
        set(&["s_ancient"])
    );
}

async fn challenge(t: &TestDb, id: &str, created: i64, expires: i64) {
    insert_challenge(&t.db, id, created, expires).await;
}

async fn challenges_older_than_five_minutes_or_expired(t: &TestDb) {
    create_barycenter_tables(t).await;
    challenge(t, "too_old", NOW - 301, NOW + 600).await;
    challenge(t, "exactly_five_minutes", NOW - 300, NOW + 600).await;
    challenge(t, "expired", NOW - 10, NOW - 1).await;
    challenge(t, "expires_now", NOW - 10, NOW).await;
    challenge(t, "fresh", NOW - 10, NOW + 290).await;
    challenge(t, "old_and_expired", NOW - 1_000, NOW - 700).await;
    let out = ChallengesCleanup::default().run(ctx(&t.db)).await.unwrap();
    assert_eq!(out.records_processed, 3);
    assert_eq!(
        keys(&t.db, "webauthn_challenges", "challenge").await,
        set(&["exactly_five_minutes", "expires_now", "fresh"])
    );

    let mut config = ChallengesConfig::default();
    config.max_age_secs = 5;
    let out = ChallengesCleanup::new(&config)
        .unwrap()
        .run(ctx(&t.db))
        .await
        .unwrap();
    assert_eq!(out.records_processed, 3);
}

async fn device_code(t: &TestDb, id: &str, expires: i64) {
    insert_device_code(&t.db, id, expires - 600, expires).await;
}

async fn device_codes_expire_strictly_before_now(t: &TestDb) {
    create_barycenter_tables(t).await;
    device_code(t, "gone", NOW - 1).await;
    device_code(t, "gone_long_ago", NOW - 100_000).await;
    device_code(t, "at_now", NOW).await;
    device_code(t, "pending", NOW + 300).await;
    let out = DeviceCodesCleanup::default().run(ctx(&t.db)).await.unwrap();
    assert_eq!(out.records_processed, 2);
    assert_eq!(
        keys(&t.db, "device_codes", "device_code").await,
        set(&["at_now", "pending"])
    );
}

/// Other table and column names (reserved words among them), native timestamps for sessions
/// and epoch milliseconds for device codes, applied through `configure`.
async fn other_schema_with_native_timestamps(t: &TestDb) {
    let (key, ts, format) = match t.backend() {
        Backend::Sqlite => ("TEXT", "TEXT", TimeFormat::Timestamp),
        Backend::Postgres => ("TEXT", "TIMESTAMPTZ", TimeFormat::TimestampTz),
        _ => ("VARCHAR(64)", "DATETIME(3)", TimeFormat::Timestamp),
    };
    let (q1, q2) = match t.backend() {
        Backend::MySql => ('`', '`'),
        _ => ('"', '"'),
    };
    raw(
        &t.db,
        &format!(
            "CREATE TABLE {q1}user{q2} (id {key} PRIMARY KEY, {q1}end{q2} {ts});
             CREATE INDEX user_end ON {q1}user{q2}({q1}end{q2});
             CREATE TABLE oauth_device (code {key} PRIMARY KEY, exp_ms BIGINT NOT NULL);"
        ),
    )
    .await;
    let config: BuiltinConfig = toml::from_str(&format!(
        r#"
        [batch]
        initial_batch_size = 2
        min_batch_size = 2
        [sessions]
        table = "user"
        key_column = "id"
        expires_column = "end"
        time_format = "{}"
        [device_codes]
        table = "oauth_device"
        key_column = "code"
        expires_column = "exp_ms"
        time_format = "epoch_millis"
        "#,
        match format {
            TimeFormat::TimestampTz => "timestamp_tz",
            _ => "timestamp",
        }
    ))
    .unwrap();
    let at = |ms: i64| format.value(now() + Duration::milliseconds(ms));
    for (id, v) in [
        ("gone_1ms", at(-1)),
        ("gone_1day", at(-86_400_000)),
        ("at_now", at(0)),
        ("in_1ms", at(1)),
        ("in_1year", at(365 * 86_400_000)),
        ("never", format.value(now()).as_null()),
    ] {
        insert(&t.db, "user", vec![("id", s(id)), ("end", v)]).await;
    }
    for (id, ms) in [("d_gone", -1), ("d_now", 0), ("d_later", 1)] {
        insert(
            &t.db,
            "oauth_device",
            vec![("code", s(id)), ("exp_ms", i(NOW * 1000 + ms))],
        )
        .await;
    }
    let registry = configure(Registry::builder().with_inventory(), &config)
        .unwrap()
        .build()
        .unwrap();
    let sessions = registry.get(SessionsCleanup::NAME).unwrap().job().clone();
    let out = sessions.run(ctx(&t.db)).await.unwrap();
    assert_eq!(out.records_processed, 2);
    assert_eq!(
        keys(&t.db, "user", "id").await,
        set(&["at_now", "in_1ms", "in_1year", "never"])
    );
    let devices = registry
        .get(DeviceCodesCleanup::NAME)
        .unwrap()
        .job()
        .clone();
    let out = devices.run(ctx(&t.db)).await.unwrap();
    assert_eq!(out.records_processed, 1);
    assert_eq!(
        keys(&t.db, "oauth_device", "code").await,
        set(&["d_later", "d_now"])
    );
}

backend_tests!(
    sessions_expire_strictly_before_now,
    many_batches_count_exactly,
    cancelled_run_stops_before_the_next_batch,
    cancelled_run_reports_exactly_what_it_deleted,
    timed_out_run_records_what_it_deleted,
    refresh_tokens_expired_and_rotated,
    rotated_tokens_kept_until_expiry,
    rotated_chain_is_judged_once,
    safety_margin_keeps_recently_expired_rows,
    challenges_older_than_five_minutes_or_expired,
    device_codes_expire_strictly_before_now,
    other_schema_with_native_timestamps,
);

/// On PostgreSQL the cleanup walks the heap in page ranges: every page is covered, exactly the
/// expired rows go (including ones behind the walk), and the ranges adapt to the target.
async fn postgres_heap_walk_covers_every_page() {
    let t = barycenter_jobs_test_support::postgres().await;
    create_barycenter_tables(&t).await;
    // 6,000 rows over ~80 heap pages: even ids expired (by 1 s to 100 min), every seventh
    // exactly at the cutoff (stays), the rest in the future.
    barycenter_jobs_test_support::raw(
        &t.db,
        &format!(
            "INSERT INTO sessions (session_id, subject, created_at, expires_at)
             SELECT 's' || i, 'alice', {NOW} - 3600,
                    CASE WHEN i % 7 = 0 THEN {NOW} WHEN i % 2 = 0 THEN {NOW} - i ELSE {NOW} + i END
             FROM generate_series(1, 6000) AS g(i)"
        ),
    )
    .await;
    let expired = (1..=6000).filter(|i| i % 7 != 0 && i % 2 == 0).count() as u64;
    let table = Identifier::new("sessions").unwrap();
    let col = Identifier::new("expires_at").unwrap();
    let mut b = Batching::default();
    // Index batches big enough to take everything in one statement, so more than one
    // statement means heap ranges. A 1 ms target keeps the ranges small.
    b.initial_batch_size = 100_000;
    b.min_batch_size = 100_000;
    b.target_statement_ms = Some(1);
    b.pause_ms = 0;
    let delete = BatchedDelete::new(
        table.clone(),
        Identifier::new("session_id").unwrap(),
        col.clone(),
        Cond::all().add(Expr::col((table, col)).lt(NOW)),
    )
    .with_batching(&b);
    let report = delete.run(&ctx(&t.db)).await.unwrap();
    assert_eq!(report.deleted, expired);
    assert!(report.statements >= 2, "{report:?}");
    assert_eq!(
        keys(&t.db, "sessions", "session_id").await.len() as u64,
        6000 - expired
    );
}
barycenter_jobs_test_support::server_test!(postgres, postgres_heap_walk_covers_every_page);

/// A partitioned table has no heap of its own to walk: the index batches do the work.
async fn postgres_partitioned_sessions_are_cleaned() {
    let t = barycenter_jobs_test_support::postgres().await;
    barycenter_jobs_test_support::raw(
        &t.db,
        &format!(
            "CREATE TABLE sessions (session_id TEXT NOT NULL, subject TEXT NOT NULL,
                 created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)
                 PARTITION BY RANGE (expires_at);
             CREATE TABLE sessions_old PARTITION OF sessions FOR VALUES FROM (MINVALUE) TO ({NOW});
             CREATE TABLE sessions_new PARTITION OF sessions FOR VALUES FROM ({NOW}) TO (MAXVALUE);
             CREATE INDEX ON sessions (expires_at);
             INSERT INTO sessions SELECT 's' || i, 'alice', {NOW} - 3600,
                    CASE WHEN i % 2 = 0 THEN {NOW} - i ELSE {NOW} + i - 1 END
             FROM generate_series(1, 500) AS g(i);"
        ),
    )
    .await;
    let out = SessionsCleanup::default().run(ctx(&t.db)).await.unwrap();
    assert_eq!(out.records_processed, 250);
    assert_eq!(keys(&t.db, "sessions", "session_id").await.len(), 250);
}
barycenter_jobs_test_support::server_test!(postgres, postgres_partitioned_sessions_are_cleaned);

#[test]
fn bad_identifiers_are_a_clear_error() {
    let bad = [
        "",
        "sessions; DROP TABLE users",
        "a b",
        "x\"y",
        "1st",
        "tab`le",
    ];
    for name in bad {
        let is_invalid =
            |r: Result<(), Error>| matches!(r, Err(Error::InvalidIdentifier(n)) if n == name);

        let mut c = SessionsConfig::default();
        c.table = name.into();
        assert!(is_invalid(SessionsCleanup::new(&c).map(drop)), "{name}");
        let mut c = SessionsConfig::default();
        c.expires_column = name.into();
        assert!(is_invalid(SessionsCleanup::new(&c).map(drop)), "{name}");

        let mut c = RefreshTokensConfig::default();
        c.parent_column = name.into();
        assert!(
            is_invalid(RefreshTokensCleanup::new(&c).map(drop)),
            "{name}"
        );
        let mut c = RefreshTokensConfig::default();
        c.revoked_column = name.into();
        assert!(
            is_invalid(RefreshTokensCleanup::new(&c).map(drop)),
            "{name}"
        );

        let mut c = ChallengesConfig::default();
        c.created_column = name.into();
        assert!(is_invalid(ChallengesCleanup::new(&c).map(drop)), "{name}");

        let mut c = DeviceCodesConfig::default();
        c.key_column = name.into();
        assert!(is_invalid(DeviceCodesCleanup::new(&c).map(drop)), "{name}");

        let mut c = BuiltinConfig::default();
        c.challenges.table = name.into();
        assert!(is_invalid(
            configure(Registry::builder().with_inventory(), &c).map(drop)
        ));
    }
    // Through TOML too: deserialising succeeds, configuring names the culprit.
    let config: BuiltinConfig =
        toml::from_str("[refresh_tokens]\ntable = \"tokens--\\\"x\"").unwrap();
    let err = configure(Registry::builder(), &config).err().unwrap();
    assert!(err.is_invalid_input());
    assert!(err.to_string().contains("tokens--"), "{err}");
}

#[test]
fn unknown_config_keys_are_refused() {
    assert!(toml::from_str::<BuiltinConfig>("[sessions]\ntabel = \"x\"").is_err());
    assert!(toml::from_str::<BuiltinConfig>("[sesions]\ntable = \"x\"").is_err());
    let empty: BuiltinConfig = toml::from_str("").unwrap();
    assert_eq!(empty, BuiltinConfig::default());
}
