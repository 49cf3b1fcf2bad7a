//! Process-level faults against the example server, run as child processes on real
//! databases (SPEC section 10): SIGTERM in the middle of a cleanup, and kill -9 of one of two
//! replicas in the middle of a run.
//!
//! The cleanup is made long on purpose: a big `sessions` table of expired rows, in Barycenter's
//! layout, deleted 100 rows per statement with a 100 ms pause after each (`[builtin.batch]`).
//! Every wait polls the database or the process with a deadline; the only timing assertions
//! are the promised bounds (the shutdown budget, the HTTP drain, the abandoned-run closure).
//!
//! The measured figures are printed to stderr (`--nocapture` shows them) for RELIABILITY.md.

mod common;

use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use barycenter_jobs::Database;
use barycenter_jobs_test_support::{TestDb, backend_tests, raw, server_test};
use common::{Running, graphql, host_port};
use sqlx::AssertSqlSafe;

const JOB: &str = "cleanup_expired_sessions";
const TRIGGER: &str =
    r#"mutation { triggerJob(jobName: "cleanup_expired_sessions") { success message } }"#;
/// Expired rows seeded: at 100 rows per 100 ms the cleanup would need well over a minute, so
/// it is always mid-run when the test strikes.
const EXPIRED: i64 = 100_000;
/// Live rows, which no cleanup may touch.
const LIVE: i64 = 10;

/// `[builtin.batch]` that makes the sessions cleanup slow: small statements, long pauses.
/// On PostgreSQL the cleanup walks the heap in page ranges instead of batches of rows; the
/// 1 ms statement target keeps those ranges to a few pages, so the pauses dominate there too.
const SLOW_BATCHES: &str = "
[builtin.batch]
initial_batch_size = 100
min_batch_size = 100
max_batch_size = 100
target_statement_ms = 1
pause_ms = 100
";

/// Create `sessions` as Barycenter does (BARYCENTER-SCHEMA.md) with [`EXPIRED`] expired and
/// [`LIVE`] live rows.
async fn seed_sessions(db: &Database) {
    raw(
        db,
        "CREATE TABLE sessions (
             session_id varchar NOT NULL PRIMARY KEY, subject varchar NOT NULL,
             auth_time bigint NOT NULL, created_at bigint NOT NULL, expires_at bigint NOT NULL,
             user_agent varchar NULL, ip_address varchar NULL, amr varchar NULL,
             acr varchar NULL, mfa_verified bigint NOT NULL DEFAULT 0);
         CREATE INDEX idx_sessions_expires ON sessions (expires_at);",
    )
    .await;
    let now = chrono::Utc::now().timestamp();
    let (expired, live) = (now - 3600, now + 86_400);
    let numbers = |n: i64| match db.backend() {
        barycenter_jobs::Backend::Postgres => format!("generate_series(1, {n}) AS g(i)"),
        _ => format!(
            "(WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {n}) \
             SELECT i FROM c)"
        ),
    };
    raw(
        db,
        &format!(
            "INSERT INTO sessions (session_id, subject, auth_time, created_at, expires_at, amr)
             SELECT 'expired-' || i, 'user', {expired}, {expired}, {expired}, 'pwd' FROM {};
             INSERT INTO sessions (session_id, subject, auth_time, created_at, expires_at, amr)
             SELECT 'live-' || i, 'user', {now}, {now}, {live}, 'pwd' FROM {};",
            numbers(EXPIRED),
            numbers(LIVE)
        ),
    )
    .await;
}

/// Evaluate `$body` with `$pool` bound to the sqlx pool of either backend the tests use.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Database::Sqlite($pool) => $body,
            Database::Postgres($pool) => $body,
            _ => unreachable!("these tests run on SQLite and PostgreSQL"),
        }
    };
}

/// One `i64` (a count, a cast column).
async fn scalar(db: &Database, sql: &str) -> i64 {
    let sql = AssertSqlSafe(sql.to_owned());
    on_pool!(db, p => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await.unwrap())
}

/// A row of `job_executions`, columns cast so both backends decode them alike.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Execution {
    id: i64,
    status: Option<String>,
    records_processed: Option<i64>,
    instance: Option<String>,
    started_at: i64,
    completed_at: Option<i64>,
    scheduled_for: Option<i64>,
    error_message: Option<String>,
}

/// The sessions cleanup's runs matching `filter` (SQL), oldest first.
async fn executions(db: &Database, filter: &str) -> Vec<Execution> {
    let sql = AssertSqlSafe(format!(
        "SELECT CAST(id AS BIGINT) AS id, status, CAST(records_processed AS BIGINT) AS records_processed,
                instance, CAST(started_at AS BIGINT) AS started_at,
                CAST(completed_at AS BIGINT) AS completed_at,
                CAST(scheduled_for AS BIGINT) AS scheduled_for, error_message
           FROM job_executions WHERE job_name = '{JOB}' AND ({filter}) ORDER BY id"
    ));
    on_pool!(db, p => sqlx::query_as::<_, Execution>(sql).fetch_all(p).await.unwrap())
}

/// The sessions cleanup's lease row: (holder, expires_at_ms).
async fn lease(db: &Database) -> (Option<String>, i64) {
    let sql = AssertSqlSafe(format!(
        "SELECT holder, CAST(expires_at_ms AS BIGINT) FROM job_leases WHERE job_name = '{JOB}'"
    ));
    on_pool!(db, p => sqlx::query_as::<_, (Option<String>, i64)>(sql).fetch_one(p).await.unwrap())
}

/// Poll `check` every 50 ms until it yields a value; panics naming `what` after `within`.
async fn poll<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Write `text` to `name` in `dir`; returns the name, for `--config`.
fn config(dir: &Path, name: &'static str, text: &str) -> &'static str {
    std::fs::write(dir.join(name), text).unwrap();
    name
}

/// Trigger the sessions cleanup over GraphQL; its `message` when it was not started.
fn trigger(admin: &str) -> Result<(), String> {
    let (status, body) = graphql(admin, TRIGGER, &[]);
    assert_eq!(status, 200, "{body}");
    match body["data"]["triggerJob"]["success"].as_bool() {
        Some(true) => Ok(()),
        _ => Err(body["data"]["triggerJob"]["message"].to_string()),
    }
}

/// A request the server is in the middle of and cannot finish: its headers promise a body
/// that never comes. The head carries `Expect: 100-continue`, and the server answers
/// `100 Continue` only once it has parsed the head and started reading the body, so when
/// this returns the request is provably in progress (bytes merely sitting in the socket
/// buffer would count as an idle connection, which a graceful shutdown closes at once). A
/// thread waits for the server to close the connection and reports when that happened, with
/// anything the server sent on it after the `100 Continue`.
fn stalled_request(admin: &str) -> mpsc::Receiver<(Instant, String)> {
    let addr = host_port(admin).to_owned();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    // Each request in one write, without Nagle's delay: a head split over two segments
    // could still be in flight when the signal comes, and then there is no request in
    // progress to drain.
    stream.set_nodelay(true).unwrap();
    let query = r#"{"query": "{ availableJobs { name } }"}"#;
    let head = |length: usize, extra: &str| {
        format!(
            "POST /admin/jobs HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n{extra}\r\n"
        )
    };
    stream
        .write_all(format!("{}{query}", head(query.len(), "")).as_bytes())
        .unwrap();
    read_response(&mut stream);
    stream
        .write_all(head(1000, "Expect: 100-continue\r\n").as_bytes())
        .unwrap();
    let interim = read_head(&mut stream);
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    stream.write_all(b"{\"query\": ").unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Returns when the server drops the connection (end of file or a reset).
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        let _ = tx.send((Instant::now(), String::from_utf8_lossy(&rest).into_owned()));
    });
    rx
}

/// Read one HTTP/1.1 response head (status line and headers) off `stream`, byte by byte so
/// nothing after it is consumed.
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Read one HTTP/1.1 response with a `Content-Length` body off `stream`; panics if it is not
/// a 200.
fn read_response(stream: &mut TcpStream) {
    let head = read_head(stream);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .expect("a Content-Length");
    stream.read_exact(&mut vec![0; length]).unwrap();
}

/// SIGTERM while the sessions cleanup is deleting: the server drains HTTP (dropping a stalled
/// request), cancels the run past its grace, records it and releases its lease, and exits 0
/// within its budget.
async fn sigterm_mid_run(t: &TestDb) {
    let db = &t.db;
    seed_sessions(db).await;
    let dir = tempfile::tempdir().unwrap();
    // The drain ends well before the jobs' grace (3 s apart), so "dropped when the drain ended"
    // and "kept until the process exits" (after the grace) are told apart by order, with room
    // for a loaded machine; the budget leaves 5 s after grace + cancel grace for the final
    // writes.
    let (drain_secs, grace_secs, budget_secs) = (2, 5, 12);
    let cfg = config(
        dir.path(),
        "faults.toml",
        &format!(
            "cancel_grace_secs = 2

[shutdown]
http_drain_secs = {drain_secs}
grace_secs = {grace_secs}
budget_secs = {budget_secs}

# Only the manual trigger runs it: no scheduled tick can take the run first.
[jobs.{JOB}]
enabled = false
{SLOW_BATCHES}"
        ),
    );
    let mut server = Running::start(
        "server",
        dir.path(),
        &[
            "--database-url",
            &t.url,
            "--listen",
            "127.0.0.1:0",
            "--no-seed",
            "--config",
            cfg,
        ],
        &[],
    );
    let admin = server.admin_url();
    trigger(&admin).unwrap();
    let total = EXPIRED + LIVE;
    // Mid-run: the row says running and at least one batch is gone.
    poll(
        "the run is recorded running and deleting",
        Duration::from_secs(30),
        || async {
            let running = !executions(db, "status = 'running' AND completed_at IS NULL")
                .await
                .is_empty();
            (running && scalar(db, "SELECT count(*) FROM sessions").await < total).then_some(())
        },
    )
    .await;

    let stalled = stalled_request(&admin);
    let term_at = Instant::now();
    server.send_term();
    let status = server.wait_exit_within(Duration::from_secs(60));
    let took = term_at.elapsed();
    // Closed how long after SIGTERM (negative: before it), and what the server sent first.
    let (stalled_closed, stalled_got) = match stalled.recv_timeout(Duration::from_secs(5)) {
        Ok((at, got)) => (
            Some(if at >= term_at {
                at.duration_since(term_at).as_secs_f64()
            } else {
                -term_at.duration_since(at).as_secs_f64()
            }),
            got,
        ),
        Err(_) => (None, String::new()),
    };

    let left = scalar(db, "SELECT count(*) FROM sessions").await;
    let deleted = total - left;
    let live_left = scalar(
        db,
        "SELECT count(*) FROM sessions WHERE session_id LIKE 'live-%'",
    )
    .await;
    let open = scalar(
        db,
        "SELECT count(*) FROM job_executions WHERE completed_at IS NULL",
    )
    .await;
    let runs = executions(db, "1 = 1").await;
    let (holder, expires_at_ms) = lease(db).await;
    eprintln!(
        "sigterm_mid_run [{:?}]: shutdown took {:.2} s (budget {budget_secs} s, drain \
         {drain_secs} s, grace {grace_secs} s); stalled request closed after {stalled_closed:?} s (sent {stalled_got:?}); rows \
         deleted {deleted} of {EXPIRED}; runs {runs:?}; lease holder {holder:?} expires_at_ms \
         {expires_at_ms}; open rows {open}",
        t.backend(),
        took.as_secs_f64(),
    );

    // Every promise is checked and every broken one reported, not only the first.
    let mut broken = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            broken.push(what);
        }
    };
    expect(
        status.is_some_and(|s| s.success()),
        format!("exit status 0 after SIGTERM: got {status:?}"),
    );
    // The budget is the promise under test (the server exits at it, with status 1 if its
    // work is not done), not a speed goal: a clean shutdown ends about when the grace does.
    expect(
        took < Duration::from_secs(budget_secs),
        format!("shutdown within the {budget_secs} s budget: took {took:?}"),
    );
    expect(
        // The drain timer starts after the signal, so the connection cannot close sooner;
        // it is dropped when the drain ends, before the jobs' grace is over (a server that
        // kept it until it exits would close it after the grace).
        stalled_closed.is_some_and(|d| d >= drain_secs as f64 && d < grace_secs as f64),
        format!(
            "stalled request kept for http_drain_secs = {drain_secs} s, then dropped before \
             grace_secs = {grace_secs} s ended: closed after {stalled_closed:?} s"
        ),
    );
    expect(
        live_left == LIVE,
        format!("live sessions untouched: {live_left} of {LIVE} left"),
    );
    expect(
        deleted > 0 && deleted < EXPIRED,
        format!("the run was stopped mid-way: {deleted} of {EXPIRED} deleted"),
    );
    expect(open == 0, format!("no open execution row: {open} open"));
    expect(
        holder.is_none() && expires_at_ms == 0,
        format!("lease released: holder {holder:?}, expires_at_ms {expires_at_ms}"),
    );
    match runs.as_slice() {
        [run] => {
            expect(
                run.status.as_deref() == Some("cancelled"),
                format!("the run is recorded cancelled: {:?}", run.status),
            );
            expect(
                run.records_processed == Some(deleted),
                format!(
                    "records_processed equals the rows deleted ({deleted}): {:?}",
                    run.records_processed
                ),
            );
        }
        _ => expect(false, format!("exactly one run: {runs:?}")),
    }
    assert!(
        broken.is_empty(),
        "broken promises:\n  {}",
        broken.join("\n  ")
    );
}

backend_tests!([sqlite, postgres] sigterm_mid_run);

/// The replica config of the kill -9 test: 3 s leases, a tick every 2 s.
fn replica_config(instance: &str, slow: bool) -> String {
    format!(
        "[coordination]
lease_ttl_secs = {LEASE_TTL_SECS}
instance = \"{instance}\"

[jobs.{JOB}]
schedule = \"*/{TICK_SECS} * * * * *\"
{}",
        if slow { SLOW_BATCHES } else { "" }
    )
}

const LEASE_TTL_SECS: u64 = 3;
const TICK_SECS: i64 = 2;
/// Ticks to watch after the takeover (the takeover's own included).
const TICKS_AFTER: usize = 5;

/// kill -9 of the replica running the cleanup: the other replica closes its run as
/// `abandoned` once the lease lapses (within TTL + one tick), takes over, and every tick
/// after that runs exactly once, with a restarted replica competing for them.
async fn kill_9_of_a_replica_mid_run() {
    let t = barycenter_jobs_test_support::postgres().await;
    let db = &t.db;
    seed_sessions(db).await;
    let dir = tempfile::tempdir().unwrap();
    let args = |cfg: &'static str| {
        vec![
            "--database-url".to_owned(),
            t.url.clone(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--no-seed".to_owned(),
            "--config".to_owned(),
            cfg.to_owned(),
        ]
    };
    let start = |cfg: &'static str| {
        let args = args(cfg);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Running::start("server", dir.path(), &args, &[])
    };
    // A deletes slowly so its run is long; B and the restarted A2 delete at full speed, so
    // their runs end well within a tick and every tick can run.
    let cfg_a = config(dir.path(), "a.toml", &replica_config("replica-a", true));
    let cfg_b = config(dir.path(), "b.toml", &replica_config("replica-b", false));
    let cfg_a2 = config(dir.path(), "a2.toml", &replica_config("replica-a2", false));

    let mut a = start(cfg_a);
    let admin_a = a.admin_url();
    // A tick of A's own may have started the run first; either way it is A's long run.
    if let Err(message) = trigger(&admin_a) {
        eprintln!("kill_9: manual trigger on A not started ({message}); A's tick runs it");
    }
    let run_a = poll(
        "A's run is recorded running",
        Duration::from_secs(30),
        || async {
            executions(db, "instance = 'replica-a' AND status = 'running'")
                .await
                .into_iter()
                .next()
        },
    )
    .await;
    // B joins only now, so it cannot run the cleanup (at full speed) before A has it.
    let mut b = start(cfg_b);
    b.admin_url();
    assert!(
        executions(db, &format!("id = {}", run_a.id)).await[0]
            .completed_at
            .is_none(),
        "A's run is still going when B is up"
    );

    let killed_at = Instant::now();
    let killed_epoch = chrono::Utc::now().timestamp();
    assert!(!a.kill().success());
    let closed = poll("A's run is closed", Duration::from_secs(60), || async {
        executions(
            db,
            &format!("id = {} AND completed_at IS NOT NULL", run_a.id),
        )
        .await
        .into_iter()
        .next()
    })
    .await;
    let to_close = killed_at.elapsed();
    let bound = Duration::from_secs(LEASE_TTL_SECS + TICK_SECS as u64 + 2);

    // A second live replica again, competing with B for every tick.
    let mut a2 = start(cfg_a2);
    a2.admin_url();
    let first_after = poll("the takeover run", Duration::from_secs(30), || async {
        executions(db, "instance <> 'replica-a' AND scheduled_for IS NOT NULL")
            .await
            .first()
            .and_then(|r| r.scheduled_for)
    })
    .await;
    poll(
        "ticks after the takeover",
        Duration::from_secs(60),
        || async {
            let ticks = executions(
                db,
                &format!("scheduled_for >= {first_after} AND completed_at IS NOT NULL"),
            )
            .await;
            (ticks.len() > TICKS_AFTER).then_some(())
        },
    )
    .await;
    let status_b = b.terminate();
    let status_a2 = a2.terminate();

    let runs = executions(db, "1 = 1").await;
    let mut per_tick = std::collections::BTreeMap::<i64, Vec<String>>::new();
    for r in &runs {
        if let Some(tick) = r.scheduled_for {
            per_tick
                .entry(tick)
                .or_default()
                .push(r.instance.clone().unwrap_or_default());
        }
    }
    let last_tick = *per_tick.keys().last().unwrap();
    let expected_ticks: Vec<i64> = (first_after..=last_tick)
        .step_by(TICK_SECS as usize)
        .collect();
    let duplicated: Vec<_> = per_tick.iter().filter(|(_, who)| who.len() > 1).collect();
    // The takeover run deletes what A left; a tick that falls while it is still going is
    // not run (no overlap), so only ticks after its end must all be there.
    let takeover_end = runs
        .iter()
        .find(|r| r.scheduled_for == Some(first_after))
        .and_then(|r| r.completed_at)
        .unwrap_or(first_after);
    let missing: Vec<_> = expected_ticks
        .iter()
        .filter(|&&tick| tick > takeover_end && !per_tick.contains_key(&tick))
        .collect();
    let early: Vec<_> = runs
        .iter()
        .filter(|r| r.instance.as_deref() != Some("replica-a") && r.started_at < killed_epoch)
        .collect();
    let open = scalar(
        db,
        "SELECT count(*) FROM job_executions WHERE completed_at IS NULL",
    )
    .await;
    eprintln!(
        "kill_9: A's run {} closed as {:?} after {:.2} s (bound {bound:?}: TTL {LEASE_TTL_SECS} s \
         + tick {TICK_SECS} s + 2 s); message {:?}; records {:?}; ticks {first_after}..={last_tick}: \
         {per_tick:?}",
        run_a.id,
        closed.status,
        to_close.as_secs_f64(),
        closed.error_message,
        closed.records_processed,
    );

    let mut broken = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            broken.push(what);
        }
    };
    expect(
        closed.status.as_deref() == Some("abandoned"),
        format!("A's run closed as abandoned: {:?}", closed.status),
    );
    // The bound is the promise (the next holder closes it at most TTL + one tick after the
    // kill), plus 2 s for a loaded machine; a lease that did not lapse would exceed it by
    // far (the default TTL is 30 s).
    expect(
        to_close <= bound,
        format!("A's run closed within {bound:?} of the kill: {to_close:?}"),
    );
    expect(
        duplicated.is_empty(),
        format!("no tick run twice: {duplicated:?}"),
    );
    expect(
        missing.is_empty(),
        format!("every tick after the takeover run ran: missing {missing:?}"),
    );
    expect(
        early.is_empty(),
        format!("no other replica ran while A held the lease: {early:?}"),
    );
    expect(
        open == 0,
        format!("no open row after B and A2 stopped: {open}"),
    );
    expect(
        status_b.success() && status_a2.success(),
        format!("B and A2 exit 0 on SIGTERM: {status_b}, {status_a2}"),
    );
    assert!(
        broken.is_empty(),
        "broken promises:\n  {}",
        broken.join("\n  ")
    );
}

server_test!(postgres, kill_9_of_a_replica_mid_run);
