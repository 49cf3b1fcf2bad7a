//! The opt-in cleanups (authorization codes, access tokens, federation requests) on
//! Barycenter-shaped tables, RFC 3339 text expiries, and the check that makes a cleanup
//! refuse to run rather than succeed with 0 rows: on SQLite, PostgreSQL and MariaDB.

mod common;

use std::sync::Arc;

use barycenter_jobs_builtin::{
    AccessTokensCleanup, AuthCodesCleanup, BuiltinConfig, ExpiryCleanup, ExpiryKind,
    FederationRequestsCleanup, FederationRequestsConfig, SessionsConfig, TimeFormat, configure,
};
use barycenter_jobs_core::{
    Backend, ExecutionStatus, Job, JobConfig, ManualClock, Registry, SchedulerConfig, SharedClock,
};
use barycenter_jobs_test_support::{TestDb, backend_tests};
use chrono::{Duration, Utc};
use common::*;

/// Barycenter's `auth_codes`, `access_tokens` and `federation_auth_requests` (the last as its
/// raw-SQL migration writes it: TEXT everywhere, `expires_at` RFC 3339 text). VARCHAR keys on
/// MySQL, which cannot index TEXT without a length.
async fn create_tables(t: &TestDb) {
    let (key, time) = match t.backend() {
        Backend::Sqlite => ("TEXT", "INTEGER"),
        Backend::Postgres => ("TEXT", "BIGINT"),
        _ => ("VARCHAR(255)", "BIGINT"),
    };
    raw(
        &t.db,
        &format!(
            "CREATE TABLE auth_codes (
                code {key} PRIMARY KEY,
                client_id TEXT NOT NULL,
                redirect_uri TEXT NOT NULL,
                scope TEXT NOT NULL,
                subject TEXT NOT NULL,
                nonce TEXT,
                code_challenge TEXT NOT NULL,
                code_challenge_method TEXT NOT NULL,
                created_at {time} NOT NULL,
                expires_at {time} NOT NULL,
                consumed {time} NOT NULL DEFAULT 0,
                auth_time {time}
            );
            CREATE TABLE access_tokens (
                token {key} PRIMARY KEY,
                client_id TEXT NOT NULL,
                subject TEXT NOT NULL,
                scope TEXT NOT NULL,
                created_at {time} NOT NULL,
                expires_at {time} NOT NULL,
                revoked {time} NOT NULL DEFAULT 0
            );
            CREATE TABLE federation_auth_requests (
                id {key} PRIMARY KEY,
                peer_id TEXT NOT NULL,
                state {key} NOT NULL UNIQUE,
                nonce TEXT NOT NULL,
                pkce_verifier TEXT NOT NULL,
                original_authorize_params TEXT NOT NULL,
                original_session_id TEXT,
                created_at TEXT NOT NULL,
                expires_at TEXT NOT NULL
            );"
        ),
    )
    .await;
}

async fn auth_code(t: &TestDb, code: &str, expires_at: i64) {
    let mut row = vec![("code", s(code))];
    for c in [
        "client_id",
        "redirect_uri",
        "scope",
        "subject",
        "code_challenge",
        "code_challenge_method",
    ] {
        row.push((c, s("x")));
    }
    row.push(("created_at", i(expires_at - 600)));
    row.push(("expires_at", i(expires_at)));
    insert(&t.db, "auth_codes", row).await;
}

async fn access_token(t: &TestDb, token: &str, expires_at: i64) {
    let mut row = vec![("token", s(token))];
    for c in ["client_id", "subject", "scope"] {
        row.push((c, s("x")));
    }
    row.push(("created_at", i(expires_at - 3600)));
    row.push(("expires_at", i(expires_at)));
    insert(&t.db, "access_tokens", row).await;
}

async fn federation_request(t: &TestDb, id: &str, expires_at: &str) {
    let mut row = vec![("id", s(id)), ("state", s(&format!("state-{id}")))];
    for c in [
        "peer_id",
        "nonce",
        "pkce_verifier",
        "original_authorize_params",
    ] {
        row.push((c, s("x")));
    }
    row.push(("created_at", s("2026-01-01T00:00:00Z")));
    row.push(("expires_at", s(expires_at)));
    insert(&t.db, "federation_auth_requests", row).await;
}

/// `NOW + secs` as Barycenter writes it (`%Y-%m-%dT%H:%M:%SZ`).
fn iso(secs: i64) -> String {
    (now() + Duration::seconds(secs))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The three opt-in sections, enabled from a configuration file (empty sections: Barycenter's
/// schema), count in a dry run and then delete exactly the expired rows.
async fn opt_in_cleanups_delete_exactly_the_expired_rows(t: &TestDb) {
    create_tables(t).await;
    for (id, expires) in [
        ("gone", NOW - 1),
        ("gone_long_ago", NOW - 86_400),
        ("at_now", NOW),
        ("live", NOW + 600),
    ] {
        auth_code(t, &format!("c_{id}"), expires).await;
        access_token(t, &format!("t_{id}"), expires).await;
    }
    for (id, expires) in [
        ("gone", iso(-1)),
        ("gone_long_ago", iso(-86_400)),
        ("at_now", iso(0)),
        ("live", iso(300)),
    ] {
        federation_request(t, &format!("f_{id}"), &expires).await;
    }
    let config: BuiltinConfig =
        toml::from_str("[auth_codes]\n[access_tokens]\n[federation_requests]\n").unwrap();
    let registry = configure(Registry::builder().with_inventory(), &config)
        .unwrap()
        .build()
        .unwrap();
    for (name, table, key, prefix) in [
        (AuthCodesCleanup::NAME, "auth_codes", "code", "c"),
        (AccessTokensCleanup::NAME, "access_tokens", "token", "t"),
        (
            FederationRequestsCleanup::NAME,
            "federation_auth_requests",
            "id",
            "f",
        ),
    ] {
        let job = registry.get(name).expect(name).job().clone();
        let dry = job.dry_run(ctx(&t.db)).await.unwrap();
        assert_eq!(dry.would_process, 2, "{name}");
        assert_eq!(keys(&t.db, table, key).await.len(), 4, "{name}: dry run");
        let out = job.run(ctx(&t.db)).await.unwrap();
        assert_eq!(out.records_processed, 2, "{name}");
        assert_eq!(
            keys(&t.db, table, key).await,
            set(&[&format!("{prefix}_at_now"), &format!("{prefix}_live")]),
            "{name}"
        );
    }
}

/// RFC 3339 text: the UTC forms (`Z`, `+00:00`, with or without a fraction) are compared by
/// their instant; anything else is never deleted, however early it would sort as a string.
async fn iso8601_text_deletes_only_utc_instants_before_now(t: &TestDb) {
    create_tables(t).await;
    let at = |secs: i64, fmt: &str| (now() + Duration::seconds(secs)).format(fmt).to_string();
    let rows = [
        // Expired: deleted.
        ("gone", iso(-1)),
        ("gone_fraction", at(-1, "%Y-%m-%dT%H:%M:%S.500Z")),
        ("gone_plus_zero", at(-60, "%Y-%m-%dT%H:%M:%S+00:00")),
        (
            "gone_millis_plus_zero",
            at(-3600, "%Y-%m-%dT%H:%M:%S.123+00:00"),
        ),
        // Expiring at now or within its second, or later: kept.
        ("at_now", iso(0)),
        ("at_now_plus_zero", at(0, "%Y-%m-%dT%H:%M:%S+00:00")),
        ("at_now_fraction", at(0, "%Y-%m-%dT%H:%M:%S.250Z")),
        ("live", iso(300)),
        // Live, in another zone: as a string it sorts four hours before now.
        (
            "live_minus_five",
            (now() + Duration::hours(1))
                .with_timezone(&chrono::FixedOffset::west_opt(5 * 3600).unwrap())
                .to_rfc3339(),
        ),
        // Not an accepted form, though long past as strings: never deleted.
        ("no_zone", "2020-01-01T00:00:00".into()),
        ("space", "2020-01-01 00:00:00Z".into()),
        ("date_only", "2020-01-01".into()),
        ("month_13", "2020-13-01T00:00:00Z".into()),
        ("zero_month", "0000-00-00T00:00:00Z".into()),
        ("epoch_text", "1790000000".into()),
        ("garbage", "soon".into()),
        ("trailing", "2020-01-01T00:00:00Zjunk".into()),
    ];
    for (id, expires) in &rows {
        federation_request(t, id, expires).await;
    }
    let job = FederationRequestsCleanup::default();
    assert_eq!(job.dry_run(ctx(&t.db)).await.unwrap().would_process, 4);
    assert_eq!(job.run(ctx(&t.db)).await.unwrap().records_processed, 4);
    let left = keys(&t.db, "federation_auth_requests", "id").await;
    let kept: Vec<&str> = rows
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !id.starts_with("gone"))
        .collect();
    assert_eq!(left, set(&kept));

    // A margin moves the cut-off back: the row expired 60 s ago stays with 120 s of it.
    federation_request(t, "margin", &iso(-60)).await;
    let mut config = FederationRequestsConfig::default();
    config.keep_if_younger_secs = 120;
    let out = FederationRequestsCleanup::new(&config)
        .unwrap()
        .run(ctx(&t.db))
        .await
        .unwrap();
    assert_eq!(out.records_processed, 0);
}

/// The guide's old recipe: an `ExpiryKind` for the federation table that does not declare its
/// format, so epoch seconds against RFC 3339 text. It used to "succeed" with 0 rows; now the
/// run and the dry run refuse, name the column, its type and the format to set, and the
/// scheduler records the run as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct GuideFederationRequests;

impl ExpiryKind for GuideFederationRequests {
    const NAME: &'static str = "cleanup_expired_federation_requests";
    const DESCRIPTION: &'static str = "Clean up expired federation requests";
    const SCHEDULE: &'static str = "0 */5 * * * *";
    const TABLE: &'static str = "federation_auth_requests";
    const KEY: &'static str = "id";
}

async fn text_column_with_an_epoch_format_refuses_to_run(t: &TestDb) {
    create_tables(t).await;
    federation_request(t, "gone", &iso(-60)).await;
    let job = ExpiryCleanup::<GuideFederationRequests>::default();

    let err = job.run(ctx(&t.db)).await.unwrap_err().to_string();
    for part in [
        "refusing to run",
        "federation_auth_requests.expires_at",
        "epoch_seconds",
        "time_format = \"iso8601_text\"",
    ] {
        assert!(err.contains(part), "{part:?} not in {err:?}");
    }
    let dry = job.dry_run(ctx(&t.db)).await.unwrap_err().to_string();
    assert_eq!(dry, err);
    assert_eq!(
        keys(&t.db, "federation_auth_requests", "id").await,
        set(&["gone"])
    );

    let execution = run_by_scheduler(
        &t.db,
        job,
        JobConfig::default(),
        SchedulerConfig::default(),
        Arc::new(ManualClock::new(Utc::now())) as SharedClock,
    )
    .await;
    assert_eq!(execution.status, ExecutionStatus::Failed);
    assert_eq!(execution.success, Some(false));
    assert!(
        execution
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("iso8601_text")),
        "{execution:?}"
    );
    assert_eq!(
        keys(&t.db, "federation_auth_requests", "id").await,
        set(&["gone"])
    );

    // The other way round: RFC 3339 text declared for an integer column. On SQLite that
    // would have deleted every row (integers sort before text).
    auth_code(t, "live", NOW + 600).await;
    let config: BuiltinConfig =
        toml::from_str("[auth_codes]\ntime_format = \"iso8601_text\"\n").unwrap();
    let registry = configure(Registry::builder().with_inventory(), &config)
        .unwrap()
        .build()
        .unwrap();
    let job = registry.get(AuthCodesCleanup::NAME).unwrap().job().clone();
    let err = job.run(ctx(&t.db)).await.unwrap_err().to_string();
    assert!(
        err.contains("auth_codes.expires_at") && err.contains("\"epoch_seconds\""),
        "{err}"
    );
    assert_eq!(keys(&t.db, "auth_codes", "code").await, set(&["live"]));
}

/// A missing table is reported as such, and a missing column names the setting to fix.
async fn missing_tables_and_columns_refuse_to_run(t: &TestDb) {
    let err = AccessTokensCleanup::default()
        .run(ctx(&t.db))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("table access_tokens does not exist"), "{err}");
    let err = AccessTokensCleanup::default()
        .dry_run(ctx(&t.db))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not exist"), "{err}");

    create_tables(t).await;
    let mut config = SessionsConfig::default();
    config.table = "access_tokens".into();
    config.key_column = "token".into();
    config.expires_column = "valid_until".into();
    let err = barycenter_jobs_builtin::SessionsCleanup::new(&config)
        .unwrap()
        .run(ctx(&t.db))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("table access_tokens has no column valid_until")
            && err.contains("`expires_column`"),
        "{err}"
    );
    config.expires_column = "expires_at".into();
    config.key_column = "id".into();
    let err = barycenter_jobs_builtin::SessionsCleanup::new(&config)
        .unwrap()
        .run(ctx(&t.db))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("`key_column`"), "{err}");
}

backend_tests!(
    opt_in_cleanups_delete_exactly_the_expired_rows,
    iso8601_text_deletes_only_utc_instants_before_now,
    text_column_with_an_epoch_format_refuses_to_run,
    missing_tables_and_columns_refuse_to_run,
);

/// Opt-in means opt-in: the inventory and a default configuration give the seed's four
/// jobs; each section or builder call adds exactly its own.
#[test]
fn opt_in_cleanups_are_registered_only_when_enabled() {
    barycenter_jobs_builtin::link();
    let four = [
        "cleanup_expired_challenges",
        "cleanup_expired_device_codes",
        "cleanup_expired_refresh_tokens",
        "cleanup_expired_sessions",
    ];
    let names = |r: &Registry| {
        let mut n: Vec<String> = r.names().map(str::to_owned).collect();
        n.sort();
        n
    };
    assert_eq!(names(&Registry::from_inventory().unwrap()), four);
    let default = configure(
        Registry::builder().with_inventory(),
        &BuiltinConfig::default(),
    )
    .unwrap()
    .build()
    .unwrap();
    assert_eq!(names(&default), four);

    let config: BuiltinConfig = toml::from_str("[federation_requests]").unwrap();
    assert_eq!(
        config.federation_requests.as_ref().unwrap().time_format,
        TimeFormat::Iso8601Text
    );
    let one = configure(Registry::builder().with_inventory(), &config)
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(one.len(), 5);
    assert!(one.get(FederationRequestsCleanup::NAME).is_some());
    assert!(one.get(AuthCodesCleanup::NAME).is_none());

    let code = BuiltinConfig::default()
        .with_auth_codes()
        .with_access_tokens();
    let two = configure(Registry::builder().with_inventory(), &code)
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(two.len(), 6);
    let job = two.get(AccessTokensCleanup::NAME).unwrap();
    assert_eq!(job.description(), "Clean up expired access tokens");
    assert_eq!(job.job().schedule(), "0 15 * * * *");
    assert_eq!(
        two.get(AuthCodesCleanup::NAME).unwrap().job().schedule(),
        "0 */15 * * * *"
    );
}
