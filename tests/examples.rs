//! Smoke tests of every example: start it, talk to it, stop it with SIGTERM, expect exit 0.
//!
//! `cargo test --workspace` builds the examples before running this; the child-process and
//! HTTP helpers are in `common/` (shared with `faults.rs`).

mod common;

use std::path::Path;
use std::time::Duration;

use barycenter_jobs::{Database, ExecutionQuery, ExecutionStore};
use common::{Running, graphql, http, http_as};

async fn open_rows(db_path: &Path) -> usize {
    let db = Database::connect(&format!("sqlite://{}", db_path.display()))
        .await
        .unwrap();
    let rows = ExecutionStore::new(db.clone())
        .list(&ExecutionQuery::new().limit(1000))
        .await
        .unwrap();
    db.close().await;
    rows.iter().filter(|r| r.completed_at.is_none()).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_serves_the_seed_queries_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Running::start("server", dir.path(), &["--listen", "127.0.0.1:0"], &[]);
    let url = server.admin_url();
    server.wait_for("try:");

    let (status, body) = graphql(&url, "{ availableJobs { name description schedule } }", &[]);
    assert_eq!(status, 200);
    let jobs = body["data"]["availableJobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 4);
    assert!(jobs.iter().any(|j| j["name"] == "cleanup_expired_sessions"
        && j["description"] == "Clean up expired user sessions"
        && j["schedule"] == "0 0 * * * *"));

    let (_, body) = graphql(
        &url,
        r#"mutation { triggerJob(jobName: "cleanup_expired_sessions") { success message jobName } }"#,
        &[],
    );
    assert_eq!(body["data"]["triggerJob"]["success"], true, "{body}");
    assert_eq!(
        body["data"]["triggerJob"]["jobName"],
        "cleanup_expired_sessions"
    );

    // The demo data has two expired sessions.
    let mut processed = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, body) = graphql(
            &url,
            "{ jobLogs(jobName: \"cleanup_expired_sessions\", limit: 1) { success recordsProcessed completedAt } }",
            &[],
        );
        let log = &body["data"]["jobLogs"][0];
        if !log["completedAt"].is_null() {
            assert_eq!(log["success"], true);
            processed = log["recordsProcessed"].clone();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(processed, 2);

    let (status, body) = graphql(
        &url,
        r#"mutation { triggerJob(jobName: "nope") { success message } }"#,
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(body["data"]["triggerJob"]["message"], "Unknown job: nope");
    let (status, page) = http(&url, "GET", "/admin/jobs/playground", None, &[]);
    assert_eq!(status, 200);
    assert!(page.to_lowercase().contains("graphiql"));

    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    assert_eq!(open_rows(&dir.path().join("barycenter-jobs.db")).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_requires_the_admin_token_when_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Running::start(
        "server",
        dir.path(),
        &["--listen", "127.0.0.1:0", "--no-seed"],
        &[("BARYCENTER_JOBS_ADMIN_TOKEN", "s3cret")],
    );
    let url = server.admin_url();
    let (status, _) = graphql(&url, "{ availableJobs { name } }", &[]);
    assert_eq!(status, 401);
    let (status, _) = graphql(
        &url,
        "{ availableJobs { name } }",
        &[("Authorization", "Bearer wrong")],
    );
    assert_eq!(status, 401);
    let (status, body) = graphql(
        &url,
        "{ availableJobs { name } }",
        &[("Authorization", "Bearer s3cret")],
    );
    assert_eq!(status, 200);
    assert_eq!(body["data"]["availableJobs"].as_array().unwrap().len(), 4);
    assert!(server.terminate().success());
    // --no-seed created no host tables.
    let db = Database::connect(&format!(
        "sqlite://{}",
        dir.path().join("barycenter-jobs.db").display()
    ))
    .await
    .unwrap();
    let sessions = db
        .fetch_all(
            barycenter_jobs::sea_query::Query::select()
                .expr(barycenter_jobs::sea_query::Expr::val(1))
                .from("sessions"),
        )
        .await;
    assert!(sessions.is_err(), "no demo tables with --no-seed");
}

/// Issue 22: with no token and a listen address other machines reach, the server does not
/// run open. A client on another address of this machine that writes `Host: localhost` and
/// no token gets no data and changes nothing; the token the server printed works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_on_a_network_address_without_a_token_requires_a_generated_one() {
    let test = "server_on_a_network_address_without_a_token_requires_a_generated_one";
    let Some(ip) = barycenter_jobs_test_support::non_loopback_addr_or_skip(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let any = if ip.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let mut server = Running::start("server", dir.path(), &["--listen", any], &[]);
    let url = server.admin_url();
    let port = url.rsplit(':').next().unwrap().split('/').next().unwrap();
    let line = server.wait_for("operate token:");
    let token = line.split_whitespace().last().unwrap().to_owned();
    assert_eq!(token.len(), 64, "{line}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
    server.wait_for("try:");

    let remote = std::net::SocketAddr::new(ip, port.parse().unwrap()).to_string();
    let local = format!("127.0.0.1:{port}");
    let body = |query: &str| serde_json::json!({ "query": query }).to_string();
    let pause = body(r#"mutation { pauseJob(jobName: "cleanup_expired_sessions") { success } }"#);
    let list = body("{ availableJobs { name paused } }");
    for (to, host) in [
        (&remote, "localhost"),
        (&remote, "127.0.0.1"),
        (&local, "localhost"),
    ] {
        for query in [&pause, &list] {
            let (status, text) = http_as(to, host, "POST", "/admin/jobs", Some(query), &[]);
            assert_eq!(status, 401, "{to} as {host}: {text}");
            let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert!(answer.get("data").is_none(), "{answer}");
        }
    }
    // The dashboard page still loads (it holds no data) and then asks for the token.
    let (status, _) = http_as(&remote, "localhost", "GET", "/admin/jobs/ui", None, &[]);
    assert_eq!(status, 200);

    // With the printed token: served, and nothing was paused by the refused requests.
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let (status, text) = http_as(&remote, &remote, "POST", "/admin/jobs", Some(&list), &auth);
    assert_eq!(status, 200, "{text}");
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    let jobs = answer["data"]["availableJobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 4, "{answer}");
    assert!(jobs.iter().all(|j| j["paused"] == false), "{answer}");
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_reads_its_config_file_and_rejects_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("jobs.toml"),
        r#"
[jobs.cleanup_expired_sessions]
schedule = "0 */10 * * * *"
timeout_secs = 120

[jobs.cleanup_expired_device_codes]
enabled = false

[retention]
keep_days = 7

[builtin.refresh_tokens]
rotation_grace_period_secs = 600

[shutdown]
http_drain_secs = 2
grace_secs = 10
budget_secs = 20
"#,
    )
    .unwrap();
    let mut server = Running::start(
        "server",
        dir.path(),
        &["--listen", "127.0.0.1:0", "--config", "jobs.toml"],
        &[],
    );
    let url = server.admin_url();
    let (_, body) = graphql(&url, "{ availableJobs { name schedule enabled } }", &[]);
    let jobs = body["data"]["availableJobs"].as_array().unwrap().clone();
    let get = |n: &str| jobs.iter().find(|j| j["name"] == n).unwrap().clone();
    assert_eq!(
        get("cleanup_expired_sessions")["schedule"],
        "0 */10 * * * *"
    );
    assert_eq!(get("cleanup_expired_device_codes")["enabled"], false);
    assert!(server.terminate().success());

    std::fs::write(
        dir.path().join("bad.toml"),
        "[jobs.cleanup_expired_sesions]\nenabled = false\n",
    )
    .unwrap();
    let (status, _) = Running::start(
        "server",
        dir.path(),
        &["--listen", "127.0.0.1:0", "--config", "bad.toml"],
        &[],
    )
    .wait_exit();
    assert_eq!(
        status.code(),
        Some(1),
        "a config naming an unknown job is refused"
    );
    // A misspelt scheduler key (top level), an unknown [shutdown] key, and a shutdown split
    // that leaves no time for the final writes are refused too.
    for (name, text) in [
        ("typo.toml", "defualt_timeout_secs = 60\n"),
        ("shutdown-key.toml", "[shutdown]\ngrace = 10\n"),
        (
            "over-budget.toml",
            "cancel_grace_secs = 5\n[shutdown]\ngrace_secs = 20\nbudget_secs = 25\n",
        ),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
        let (status, _) = Running::start(
            "server",
            dir.path(),
            &["--listen", "127.0.0.1:0", "--config", name],
            &[],
        )
        .wait_exit();
        assert_eq!(status.code(), Some(1), "{name} is refused");
    }
    let (status, _) = Running::start("server", dir.path(), &["--bogus"], &[]).wait_exit();
    assert_eq!(status.code(), Some(2));
}

/// Pointed at an existing Barycenter database, the server touches only the job tables and
/// the rows the jobs delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_on_an_existing_barycenter_database() {
    use sqlx::AssertSqlSafe;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("barycenter.db");
    let db = Database::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let Database::Sqlite(pool) = &db else {
        unreachable!()
    };
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE TABLE sessions (session_id TEXT PRIMARY KEY, subject TEXT NOT NULL, auth_time INTEGER, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, amr TEXT);
         INSERT INTO sessions VALUES ('live', 'alice', {now}, {now}, {live}, 'pwd'), ('dead', 'bob', 1, 1, 2, 'pwd');
         CREATE TABLE refresh_tokens (token TEXT PRIMARY KEY, client_id TEXT NOT NULL, subject TEXT NOT NULL, scope TEXT, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0, parent_token TEXT);
         INSERT INTO refresh_tokens VALUES ('rt', 'app', 'alice', 'openid', {now}, {live}, 0, NULL);
         CREATE TABLE webauthn_challenges (challenge TEXT PRIMARY KEY, user_id TEXT, challenge_type TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
         CREATE TABLE device_codes (device_code TEXT PRIMARY KEY, user_code TEXT NOT NULL, client_id TEXT NOT NULL, scope TEXT, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
         CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT);
         INSERT INTO users VALUES ('alice', 'Alice');
         CREATE TABLE job_executions (id INTEGER PRIMARY KEY AUTOINCREMENT, job_name TEXT NOT NULL, started_at INTEGER NOT NULL, completed_at INTEGER, success INTEGER, error_message TEXT, records_processed INTEGER);
         INSERT INTO job_executions (job_name, started_at, completed_at, success, records_processed) VALUES ('cleanup_expired_sessions', {old}, {old}, 1, 5);",
        live = now + 3600,
        // Barycenter's last run just now: no tick was missed, so no catch-up run at start-up.
        old = now,
    )))
    .execute(pool)
    .await
    .unwrap();
    db.close().await;

    let url_arg = format!("sqlite://{}", path.display());
    let mut server = Running::start(
        "server",
        dir.path(),
        &["--listen", "127.0.0.1:0", "--database-url", &url_arg],
        &[],
    );
    let url = server.admin_url();
    let (_, body) = graphql(
        &url,
        "{ jobLogs(limit: 5) { jobName recordsProcessed success } }",
        &[],
    );
    assert!(
        body["data"]["jobLogs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["recordsProcessed"] == 5 && l["success"] == true),
        "Barycenter's history reads back: {body}"
    );
    for job in [
        "cleanup_expired_sessions",
        "cleanup_expired_refresh_tokens",
        "cleanup_expired_challenges",
        "cleanup_expired_device_codes",
    ] {
        let (_, body) = graphql(
            &url,
            &format!("mutation {{ triggerJob(jobName: \"{job}\") {{ success }} }}"),
            &[],
        );
        assert_eq!(body["data"]["triggerJob"]["success"], true);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.terminate().success());

    let db = Database::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let Database::Sqlite(pool) = &db else {
        unreachable!()
    };
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql).fetch_one(pool);
    assert_eq!(
        count("SELECT count(*) FROM sessions WHERE session_id = 'live'")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM sessions").await.unwrap(),
        1,
        "only the expired session went"
    );
    assert_eq!(
        count("SELECT count(*) FROM refresh_tokens").await.unwrap(),
        1
    );
    assert_eq!(count("SELECT count(*) FROM users").await.unwrap(), 1);
    assert_eq!(
        count("SELECT count(*) FROM sessions WHERE amr = 'pwd'")
            .await
            .unwrap(),
        1,
        "host columns untouched"
    );
    assert_eq!(
        count("SELECT count(*) FROM job_executions").await.unwrap(),
        5
    );
    assert_eq!(
        count("SELECT count(*) FROM job_executions WHERE completed_at IS NULL")
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_mount_serves_host_routes_and_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = Running::start("axum_mount", dir.path(), &["--listen", "127.0.0.1:0"], &[]);
    let url = app.admin_url();
    assert_eq!(
        http(&url, "GET", "/healthz", None, &[]),
        (200, "ok".to_owned())
    );
    let (status, body) = graphql(&url, "{ availableJobs { name } }", &[]);
    assert_eq!(status, 200);
    assert_eq!(body["data"]["availableJobs"].as_array().unwrap().len(), 4);
    assert!(app.terminate().success());
}

/// The jobs API merged into a host's own schema, at the host's path, behind the host's own
/// authorization: the seed's three operations and the host's own fields from one schema;
/// roles, audit and the mutation bound still hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_schema_serves_host_and_jobs_fields_from_one_schema() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = Running::start(
        "merged_schema",
        dir.path(),
        &["--listen", "127.0.0.1:0"],
        &[],
    );
    let url = app.admin_url();
    let ask = |token: &str, query: &str| {
        let body = serde_json::json!({ "query": query }).to_string();
        let auth = format!("Bearer {token}");
        let (status, text) = http(
            &url,
            "POST",
            "/admin/graphql",
            Some(&body),
            &[("authorization", auth.as_str())],
        );
        (
            status,
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        )
    };
    // Queries: the host's field and the seed's two queries in one document.
    let (status, body) = ask(
        "operate-demo",
        "{ hostVersion availableJobs { name description schedule } jobLogs(limit: 10) { id jobName success } }",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["hostVersion"], "demo-auth-server 1.0");
    assert_eq!(body["data"]["availableJobs"].as_array().unwrap().len(), 4);
    // The seed's mutation beside the host's own.
    let (_, body) = ask(
        "operate-demo",
        r#"mutation { triggerJob(jobName: "cleanup_expired_sessions") { success message jobName } removeFederationPeer(peer: "idp.example") }"#,
    );
    assert_eq!(body["data"]["triggerJob"]["success"], true, "{body}");
    assert_eq!(body["data"]["removeFederationPeer"], "removed idp.example");
    let (_, body) = ask(
        "operate-demo",
        r#"mutation { triggerJob(jobName: "nope") { success message } }"#,
    );
    assert_eq!(body["data"]["triggerJob"]["message"], "Unknown job: nope");
    // The host's read role maps onto ours: no mutation, and the refusal is audited.
    let (_, body) = ask(
        "read-demo",
        r#"mutation { pauseJob(jobName: "cleanup_expired_sessions") { success } }"#,
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("read role"),
        "{body}"
    );
    let (_, body) = ask(
        "read-demo",
        "{ auditLog(limit: 10) { actor action detail } }",
    );
    let actors: Vec<&str> = body["data"]["auditLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert!(
        actors.contains(&"ops-admin") && actors.contains(&"ops-viewer"),
        "{body}"
    );
    // The mutation bound holds in the host's schema too.
    let many: String = (0..11)
        .map(|i| format!(r#"p{i}: pauseJob(jobName: "cleanup_expired_sessions") {{ success }} "#))
        .collect();
    let (_, body) = ask("operate-demo", &format!("mutation {{ {many} }}"));
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("more than the limit of 10"),
        "{body}"
    );
    let (_, body) = ask("operate-demo", "{ availableJobs { name paused } }");
    assert!(
        body["data"]["availableJobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["paused"] == false),
        "nothing ran: {body}"
    );
    assert!(app.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_serve_serves_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = Running::start("hyper_serve", dir.path(), &["--listen", "127.0.0.1:0"], &[]);
    let url = app.admin_url();
    let (status, body) = graphql(&url, "{ jobLogs(limit: 10) { id } }", &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["jobLogs"], serde_json::json!([]));
    assert!(app.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_plugin_is_registered_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (status, lines) = Running::start("custom_plugin", dir.path(), &[], &[]).wait_exit();
    assert!(status.success(), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("registered: purge_old_audit_log")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("registered: cleanup_expired_sessions")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "purge_old_audit_log: Succeeded, 1 rows deleted"),
        "{lines:?}"
    );
}

async fn replicas_on_postgres_run_each_tick_once() {
    let t = barycenter_jobs_test_support::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let (status, lines) = Running::start(
        "replicas",
        dir.path(),
        &["--database-url", &t.url, "--seconds", "4"],
        &[],
    )
    .wait_exit();
    assert!(status.success(), "{lines:?}");
    let summary = lines.iter().find(|l| l.starts_with("ticks:")).unwrap();
    assert!(summary.contains("duplicates: 0"), "{summary}");
}
barycenter_jobs_test_support::server_test!(postgres, replicas_on_postgres_run_each_tick_once);
