//! Figure 1b: cleanup of refresh tokens, expired and rotated, against the plain statements.
//!
//! A `refresh_tokens` table in Barycenter's layout (`token` text primary key, `client_id`,
//! `subject`, `scope`, `created_at`, `expires_at`, `revoked` default 0, `parent_token` NULL;
//! an index on `expires_at`, none on `parent_token`), `--rows` tokens (default 1,000,000) in
//! random order, 10% of them in rotation chains of four (`t0 <- t1 <- t2 <- t3`: each
//! successor's `parent_token` names the one it replaced, which is revoked). A quarter of the
//! chains rotated days ago (t0..t2 are rotated past the grace period), a quarter last
//! rotated 10 minutes ago (t0 and t1 past grace, t2 inside it), a quarter rotated entirely
//! inside the grace period (none past it), a quarter expired as a whole. Of the other tokens
//! 30% are expired and 2% of the live ones revoked without a successor (kept until they
//! expire). The table is built once per size and database into a template; every row below
//! starts from a fresh copy (`barycenter_jobs_test_support::copy_of`). No host workload runs:
//! this figure is about the work of the passes.
//!
//! For each size (`--sizes`, fractions of `--rows`, default 0.25, 0.5, 1) and database:
//!
//! - (a) the plain statements a hand-written cleanup runs: `DELETE FROM refresh_tokens WHERE
//!   expires_at < ?`, then `DELETE FROM refresh_tokens WHERE revoked <> 0 AND token IN
//!   (SELECT parent_token FROM refresh_tokens WHERE parent_token IS NOT NULL AND created_at <
//!   ?)`;
//! - (b) our job's passes (`RefreshTokens::passes`, default batching, the grace period of
//!   30 minutes), run one after the other as `Job::run` runs them, each timed;
//! - at the largest size also (c) the job through `Job::run` (one total).
//!
//! Every run uses the same cut-off (the instant the data was generated at, through a
//! `ManualClock`), so all rows delete the same tokens; the bench asserts that the tokens left
//! are the same set for (a), (b) and (c) and the number the generator expects. *rotated
//! work* is what the rotated pass costs the database: its statements' lock time, its SQLite
//! checkpoints and its candidate read (for (a), the one statement's time); *per token* is that
//! over the table's rows, flat across sizes when the pass is linear in the table (the pass's
//! elapsed time also holds the pauses that leave the host the lock on SQLite). `--old-sizes` (default 100,000 and 200,000 rows; `0` for none) runs the rotated pass as
//! it was before `BatchedDelete::keys_first` (the self-join inside every batch, or every heap
//! range on PostgreSQL) for comparison, cut off after `--old-timeout-s` (default 60 s).
//! `--plan` prints the query plans (`EXPLAIN QUERY PLAN` / `EXPLAIN`) of the statements.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash as _, Hasher as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use barycenter_jobs_benches::barycenter::{self, RefreshTokens as R};
use barycenter_jobs_benches::{Args, Table, f, ms};
use barycenter_jobs_builtin::{
    BatchedDelete, Batching, CleanupKind, DeleteReport, RefreshTokens, RefreshTokensCleanup,
    RefreshTokensConfig,
};
use barycenter_jobs_core::sea_query::{
    Alias, Asterisk, Cond, Condition, DeleteStatement, Expr, ExprTrait as _, Func, Order,
    PostgresQueryBuilder, Query, SelectStatement, SqliteQueryBuilder,
};
use barycenter_jobs_core::{
    Backend, CancellationToken, Database, Identifier, Job, JobContext, JobError, ManualClock,
    SharedClock, TimeSource, Trigger,
};
use barycenter_jobs_test_support::{TestDb, copy_of, postgres_on, raw, sqlite};
use chrono::{DateTime, TimeZone as _, Utc};
use rand::Rng as _;
use rand::seq::SliceRandom as _;

const USAGE: &str = "\
cargo bench -p barycenter-jobs-benches --bench refresh_tokens -- [options]
  --quick             200,000 tokens instead of 1,000,000
  --rows N            tokens at the largest size (10% in rotation chains)
  --sizes A,B,C       fractions of --rows to run at (default 0.25,0.5,1)
  --db sqlite|postgres|all
  --old-sizes A,B     table sizes for the rotated pass as it was (default 100000,200000; 0: none)
  --old-timeout-s N   cut the old pass off after N s (default 60)
  --plan              print the query plans of the statements";

/// Grace period of the rotated pass (the default).
const GRACE: i64 = 1800;
/// Rows per INSERT while a template is filled (8 values each, within SQLite's 32,766).
const FILL_CHUNK: usize = 3_000;

fn main() {
    let Some(args) = Args::from_env_unless_help(USAGE) else {
        return;
    };
    let rows: usize = args.parsed("--rows", if args.quick() { 200_000 } else { 1_000_000 });
    let sizes: Vec<usize> = args
        .list::<f64>("--sizes", "0.25,0.5,1")
        .into_iter()
        .map(|x| (rows as f64 * x) as usize)
        .filter(|n| *n >= 400)
        .collect();
    let old_sizes: Vec<usize> = args
        .list("--old-sizes", "100000,200000")
        .into_iter()
        .filter(|n| *n >= 400)
        .collect();
    let old_timeout = Duration::from_secs(args.parsed("--old-timeout-s", 60));
    let plan = args.flag("--plan");
    let backends = barycenter_jobs_benches::backends(&args);
    let rt = barycenter_jobs_benches::runtime();
    println!(
        "# refresh-token cleanup: {}",
        barycenter_jobs_benches::machine_line()
    );
    println!(
        "10% of the tokens in rotation chains of 4, 30% of the rest expired; grace period {GRACE} s; no host workload\n"
    );
    for backend in backends {
        rt.block_on(bench_db(backend, &sizes, &old_sizes, old_timeout, plan));
    }
}

/// What the generator expects a cleanup to delete.
#[derive(Debug, Clone, Copy, Default)]
struct Expected {
    expired: u64,
    rotated: u64,
    left: u64,
}

/// The figures of one row.
#[derive(Debug, Clone, Default)]
struct Run {
    total: Duration,
    expiry: Duration,
    rotated: Duration,
    expiry_deleted: u64,
    rotated_deleted: u64,
    report: DeleteReport,
    /// The rotated pass's own figures.
    rotated_report: DeleteReport,
    left: u64,
    left_hash: u64,
    /// The old pass was cut off before it finished.
    cut: bool,
}

async fn bench_db(
    backend: Backend,
    sizes: &[usize],
    old_sizes: &[usize],
    old_timeout: Duration,
    plan: bool,
) {
    let now = Utc::now().timestamp();
    let mut t = Table::new(&[
        "cleanup",
        "tokens",
        "total s",
        "expiry pass s",
        "rotated pass s",
        "rotated µs per token in table",
        "rotated work s",
        "rotated work µs per token",
        "rotated stmts",
        "deleted",
        "of which expired",
        "of which rotated",
        "stmts",
        "longest stmt ms",
        "lock held s",
        "of which checkpoints s",
        "select (read) s",
        "tokens left",
        "same rows left",
    ]);
    let mut per_row: Vec<(usize, f64, f64)> = Vec::new(); // (size, plain, ours) µs per token
    let mut goals = Table::new(&["goal", "measured", "met?"]);
    let largest = sizes.iter().copied().max().unwrap_or(0);
    for &n in sizes {
        let started = Instant::now();
        let (template, expected) = build_template(backend, n, now).await;
        println!(
            "{}: {n} tokens built in {:.1} s; expected: {} expired, {} rotated, {} left",
            barycenter_jobs_benches::wal_label(backend),
            started.elapsed().as_secs_f64(),
            expected.expired,
            expected.rotated,
            expected.left
        );
        if plan && n == largest {
            print_plans(&template, now).await;
        }
        let plain = run_plain(&template, now).await;
        let ours = run_passes(&template, now, None).await;
        let mut rows = vec![
            ("(a) plain statements", plain.clone()),
            ("(b) our job's passes", ours.clone()),
        ];
        if n == largest {
            rows.push(("(c) our job, Job::run", run_job(&template, now).await));
        }
        for (name, r) in &rows {
            println!(
                "  {n} {name}: {:.2} s (rotated pass {:.3} s), left {}",
                r.total.as_secs_f64(),
                r.rotated.as_secs_f64(),
                r.left
            );
            assert_eq!(r.left, expected.left, "{name}: tokens left");
            assert_eq!(r.left_hash, plain.left_hash, "{name}: the same tokens left");
            t.row(&row_cells(name, n, r, r.left_hash == plain.left_hash));
        }
        assert_eq!(ours.expiry_deleted, expected.expired);
        assert_eq!(ours.rotated_deleted, expected.rotated);
        per_row.push((n, us_per(work(&plain), n), us_per(work(&ours), n)));
        if n == largest {
            let p = plain.total.as_secs_f64();
            let o = ours.total.as_secs_f64();
            goals.row(&[
                format!("same rows deleted and left as the plain statements ({n} tokens)"),
                format!(
                    "{} expired + {} rotated deleted, {} left, same set",
                    ours.expiry_deleted, ours.rotated_deleted, ours.left
                ),
                "met".to_owned(),
            ]);
            let longest = ms(ours.report.longest_statement);
            goals.row(&[
                "no statement of ours over 50 ms".to_owned(),
                format!("longest {longest:.1} ms"),
                verdict(longest <= 50.0).to_owned(),
            ]);
            goals.row(&[
                "elapsed vs the plain statements (for reference)".to_owned(),
                format!("{:.2}x ({o:.2} s / {p:.2} s)", o / p),
                "-".to_owned(),
            ]);
        }
        drop(template);
    }
    for &n in old_sizes {
        let (template, expected) = build_template(backend, n, now).await;
        let old = run_passes(&template, now, Some(old_timeout)).await;
        let name = if old.cut {
            format!(
                "(d) rotated pass as before (cut at {} s)",
                old_timeout.as_secs()
            )
        } else {
            "(d) rotated pass as before".to_owned()
        };
        if !old.cut {
            assert_eq!(old.expiry_deleted, expected.expired);
        }
        t.row(&row_cells(
            &name,
            n,
            &old,
            !old.cut && old.left == expected.left,
        ));
        drop(template);
    }
    println!("\n## {}\n", barycenter_jobs_benches::wal_label(backend));
    t.print();

    // Linearity: time per token of the rotated pass, smallest to largest size.
    if let (Some(first), Some(last)) = (per_row.first(), per_row.last())
        && per_row.len() > 1
    {
        let growth = last.2 / first.2;
        goals.row(&[
            format!(
                "rotated pass linear in the table: work µs per token at {} vs {} tokens ≤ 1.5x",
                last.0, first.0
            ),
            format!(
                "{:.2} vs {:.2} µs ({growth:.2}x; plain {:.2} vs {:.2} µs)",
                last.2, first.2, last.1, first.1
            ),
            verdict(growth <= 1.5).to_owned(),
        ]);
    }
    println!(
        "### Goals, {}\n",
        barycenter_jobs_benches::wal_label(backend)
    );
    goals.print();
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "missed" }
}

/// The work of the rotated pass: its statements' lock time, its checkpoints and its read.
fn work(r: &Run) -> Duration {
    let p = &r.rotated_report;
    p.lock_held + p.checkpoints + p.selecting
}

fn us_per(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

fn row_cells(name: &str, n: usize, r: &Run, same: bool) -> Vec<String> {
    // The Job::run row has one total only.
    let passes = r.expiry > Duration::ZERO;
    let or_blank = |s: String| if passes { s } else { String::new() };
    vec![
        name.to_owned(),
        n.to_string(),
        f(r.total.as_secs_f64(), 2),
        or_blank(f(r.expiry.as_secs_f64(), 2)),
        or_blank(f(r.rotated.as_secs_f64(), 3)),
        or_blank(f(us_per(r.rotated, n), 2)),
        or_blank(f(work(r).as_secs_f64(), 3)),
        or_blank(f(us_per(work(r), n), 2)),
        or_blank(r.rotated_report.statements.to_string()),
        r.report.deleted.to_string(),
        or_blank(r.expiry_deleted.to_string()),
        or_blank(r.rotated_deleted.to_string()),
        r.report.statements.to_string(),
        f(ms(r.report.longest_statement), 1),
        f(r.report.lock_held.as_secs_f64(), 2),
        f(r.report.checkpoints.as_secs_f64(), 2),
        f(r.report.selecting.as_secs_f64(), 3),
        r.left.to_string(),
        if same { "yes" } else { "no" }.to_owned(),
    ]
}

/// A random 32-hex-digit token.
fn token(rng: &mut impl rand::Rng) -> String {
    format!("{:032x}", rng.random::<u128>())
}

/// One generated row: token, created, expires, revoked, parent.
type Gen = (String, i64, i64, i64, Option<String>);

/// The tokens of a table of `n`, and what a cleanup at `now` deletes.
fn generate(n: usize, now: i64) -> (Vec<Gen>, Expected) {
    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(42);
    let mut out: Vec<Gen> = Vec::with_capacity(n);
    let mut e = Expected::default();
    let chains = n / 10 / 4;
    let day = 86_400;
    for c in 0..chains {
        let ids: Vec<String> = (0..4).map(|_| token(&mut rng)).collect();
        // Creation times of t0..t3, and the expiry of all four.
        let (created, expires, deleted_rotated, expired) = match c % 4 {
            // Rotated days ago: t0, t1, t2 past the grace period.
            0 => (
                [now - 3 * day, now - 2 * day, now - day, now - day / 2],
                now + 30 * day,
                3,
                false,
            ),
            // Last rotation 10 minutes ago: t2's successor is inside the grace period.
            1 => (
                [now - 7200, now - 5400, now - 3600, now - 600],
                now + 30 * day,
                2,
                false,
            ),
            // All inside the grace period.
            2 => (
                [now - 1500, now - 1200, now - 900, now - 600],
                now + 30 * day,
                0,
                false,
            ),
            // Expired as a whole.
            _ => (
                [
                    now - 40 * day,
                    now - 39 * day,
                    now - 38 * day,
                    now - 37 * day,
                ],
                now - day,
                0,
                true,
            ),
        };
        for k in 0..4 {
            let parent = (k > 0).then(|| ids[k - 1].clone());
            let revoked = i64::from(k < 3);
            out.push((ids[k].clone(), created[k], expires, revoked, parent));
        }
        if expired {
            e.expired += 4;
        }
        e.rotated += deleted_rotated;
    }
    while out.len() < n {
        let created = now - 7200 - rng.random_range(0..30 * day);
        let (expires, revoked) = if rng.random_range(0..100) < 30 {
            e.expired += 1;
            (now - 1 - rng.random_range(0..30 * day), 0)
        } else {
            (
                now + 3600 + rng.random_range(0..30 * day),
                i64::from(rng.random_range(0..100) < 2),
            )
        };
        out.push((token(&mut rng), created, expires, revoked, None));
    }
    e.left = n as u64 - e.expired - e.rotated;
    out.shuffle(&mut rng);
    (out, e)
}

async fn build_template(backend: Backend, n: usize, now: i64) -> (TestDb, Expected) {
    let template = match backend {
        Backend::Sqlite => sqlite().await,
        _ => postgres_on(&barycenter_jobs_benches::postgres_url()).await,
    };
    let db = &template.db;
    db.execute_schema(&barycenter::refresh_tokens())
        .await
        .expect("create table");
    let (rows, expected) = generate(n, now);
    let columns = [
        R::Token,
        R::ClientId,
        R::Subject,
        R::Scope,
        R::CreatedAt,
        R::ExpiresAt,
        R::Revoked,
        R::ParentToken,
    ];
    // `i` counts within a chunk, as the subjects always have: they repeat every chunk.
    let tokens = rows.chunks(FILL_CHUNK).flat_map(|chunk| {
        chunk
            .iter()
            .enumerate()
            .map(|(i, (tok, created, expires, revoked, parent))| {
                [
                    tok.clone().into(),
                    "client-app".into(),
                    format!("user-{}", i % 5_000).into(),
                    "openid profile offline_access".into(),
                    (*created).into(),
                    (*expires).into(),
                    (*revoked).into(),
                    parent.clone().into(),
                ]
            })
    });
    barycenter::fill(db, R::Table, columns, tokens, FILL_CHUNK).await;
    barycenter::finish_template(db, R::Table, "idx_refresh_tokens_expires", R::ExpiresAt).await;
    (template, expected)
}

/// A fresh copy of the template, checkpointed, and a pool on it.
async fn fresh(template: &TestDb) -> (TestDb, Database) {
    let copy = copy_of(template).await;
    if copy.backend() == Backend::Postgres {
        raw(&copy.db, "CHECKPOINT").await;
        // Statistics travel with the template; warm the cache alike for every row.
    }
    let _ = count(&copy.db).await;
    copy.db.close().await;
    let db = Database::connect(&copy.url).await.expect("connect");
    (copy, db)
}

async fn count(db: &Database) -> u64 {
    let q = Query::select()
        .expr(Func::count(Expr::col(Asterisk)))
        .from(R::Table)
        .to_owned();
    barycenter_jobs_benches::scalar(db, &q, "count").await as u64
}

/// The tokens left, and a hash of their sorted list.
async fn left(db: &Database) -> (u64, u64) {
    let q = Query::select()
        .column(R::Token)
        .from(R::Table)
        .order_by(R::Token, Order::Asc)
        .to_owned();
    let rows = db.fetch_all(&q).await.expect("tokens left");
    let mut h = DefaultHasher::new();
    for r in &rows {
        r.opt_string("token").expect("token").hash(&mut h);
    }
    (rows.len() as u64, h.finish())
}

/// `revoked <> 0 AND token IN (SELECT parent_token FROM refresh_tokens AS successor WHERE
/// parent_token IS NOT NULL AND created_at < now - grace)`: the rotated tokens.
fn rotated_filter(now: i64) -> Condition {
    let s = Alias::new("successor");
    let successors = Query::select()
        .column((s.clone(), R::ParentToken))
        .from_as(R::Table, s.clone())
        .and_where(Expr::col((s.clone(), R::ParentToken)).is_not_null())
        .and_where(Expr::col((s.clone(), R::CreatedAt)).lt(now - GRACE))
        .to_owned();
    Cond::all()
        .add(Expr::col((R::Table, R::Revoked)).ne(0))
        .add(Expr::col((R::Table, R::Token)).in_subquery(successors))
}

fn expired_delete(now: i64) -> DeleteStatement {
    Query::delete()
        .from_table(R::Table)
        .and_where(Expr::col((R::Table, R::ExpiresAt)).lt(now))
        .to_owned()
}

fn rotated_delete(now: i64) -> DeleteStatement {
    Query::delete()
        .from_table(R::Table)
        .cond_where(rotated_filter(now))
        .to_owned()
}

/// The candidate read of our rotated pass (`BatchedDelete::keys_first`).
fn rotated_select(now: i64) -> SelectStatement {
    Query::select()
        .column((R::Table, R::Token))
        .from(R::Table)
        .cond_where(rotated_filter(now))
        .order_by((R::Table, R::Token), Order::Asc)
        .to_owned()
}

/// One plain statement, timed, on `db` (a pool of one connection); on SQLite inside `BEGIN
/// IMMEDIATE`, so the time is the write lock's, as the cleanup bench times its (a) row.
async fn timed(db: &Database, stmt: &DeleteStatement) -> (u64, Duration) {
    let sqlite = db.backend() == Backend::Sqlite;
    if sqlite {
        raw(db, "BEGIN IMMEDIATE").await;
    }
    let t = Instant::now();
    let n = db.execute(stmt).await.expect("DELETE");
    if sqlite {
        raw(db, "COMMIT").await;
    }
    (n, t.elapsed())
}

fn one(deleted: u64, held: Duration) -> DeleteReport {
    let mut r = DeleteReport::default();
    r.deleted = deleted;
    r.statements = 1;
    r.longest_statement = held;
    r.lock_held = held;
    r
}

async fn run_plain(template: &TestDb, now: i64) -> Run {
    let (copy, pool) = fresh(template).await;
    pool.close().await;
    let db = Database::connect_with_max(&copy.url, 1)
        .await
        .expect("connect");
    let t0 = Instant::now();
    let (expired, held1) = timed(&db, &expired_delete(now)).await;
    let t1 = Instant::now();
    let (rotated, held2) = timed(&db, &rotated_delete(now)).await;
    let t2 = Instant::now();
    let (n_left, hash) = left(&db).await;
    db.close().await;
    drop(copy);
    Run {
        total: t2 - t0,
        expiry: t1 - t0,
        rotated: t2 - t1,
        expiry_deleted: expired,
        rotated_deleted: rotated,
        report: one(expired, held1).merge(one(rotated, held2)),
        rotated_report: one(rotated, held2),
        left: n_left,
        left_hash: hash,
        cut: false,
    }
}

fn context(db: &Database, now: i64, cancel: CancellationToken) -> JobContext {
    let clock = ManualClock::new(Utc.timestamp_opt(now, 0).single().expect("now"));
    JobContext::new(
        db.clone(),
        Trigger::Manual,
        0,
        Arc::new(clock) as SharedClock,
        cancel,
    )
    .with_time_source(TimeSource::App)
}

/// The job's passes one after the other, as `Job::run` runs them; with `old_timeout`, the
/// rotated pass as it was before `keys_first` (the self-join in every batch), cut off then.
async fn run_passes(template: &TestDb, now: i64, old_timeout: Option<Duration>) -> Run {
    let (copy, db) = fresh(template).await;
    let kind = RefreshTokens::from_config(&RefreshTokensConfig::default()).expect("config");
    let cutoff: DateTime<Utc> = Utc.timestamp_opt(now, 0).single().expect("now");
    let mut passes = kind.passes(db.backend(), cutoff);
    assert_eq!(passes.len(), 2, "expiry and rotated passes");
    if old_timeout.is_some() {
        let t = Identifier::new("refresh_tokens").expect("name");
        let key = Identifier::new("token").expect("name");
        passes[1] = BatchedDelete::new(t, key.clone(), key, rotated_filter(now)).reads_own_table();
    }
    let mut run = Run::default();
    let t0 = Instant::now();
    for (i, pass) in passes.into_iter().enumerate() {
        let cancel = CancellationToken::new();
        let ctx = context(&db, now, cancel.clone());
        let began = Instant::now();
        let pass = pass.with_batching(&Batching::default());
        let result = match old_timeout.filter(|_| i == 1) {
            Some(limit) => {
                let timer = tokio::spawn(async move {
                    tokio::time::sleep(limit).await;
                    cancel.cancel();
                });
                let r = pass.run(&ctx).await;
                timer.abort();
                r
            }
            None => pass.run(&ctx).await,
        };
        let report = match result {
            Ok(report) => report,
            Err(JobError::Cancelled) => {
                run.cut = true;
                let mut r = DeleteReport::default();
                r.deleted = ctx.processed_so_far().unwrap_or(0);
                r
            }
            Err(e) => panic!("pass {i}: {e}"),
        };
        if i == 0 {
            run.expiry = began.elapsed();
            run.expiry_deleted = report.deleted;
        } else {
            run.rotated = began.elapsed();
            run.rotated_deleted = report.deleted;
            run.rotated_report = report;
        }
        run.report = run.report.merge(report);
    }
    run.total = t0.elapsed();
    (run.left, run.left_hash) = left(&db).await;
    db.close().await;
    drop(copy);
    run
}

async fn run_job(template: &TestDb, now: i64) -> Run {
    let (copy, db) = fresh(template).await;
    let job = RefreshTokensCleanup::default();
    let t0 = Instant::now();
    let out = job
        .run(context(&db, now, CancellationToken::new()))
        .await
        .expect("job");
    let total = t0.elapsed();
    let report = job.last_report().expect("report");
    assert_eq!(report.deleted, out.records_processed);
    let (n_left, hash) = left(&db).await;
    db.close().await;
    drop(copy);
    Run {
        total,
        report,
        left: n_left,
        left_hash: hash,
        ..Run::default()
    }
}

/// The query plans of the rotated statements on a copy of the template.
async fn print_plans(template: &TestDb, now: i64) {
    let (copy, db) = fresh(template).await;
    let keys = Query::delete()
        .from_table(R::Table)
        .and_where(Expr::col((R::Table, R::Token)).is_in(["a", "b", "c"]))
        .and_where(Expr::col((R::Table, R::Revoked)).ne(0))
        .to_owned();
    // The old library's batch as it sent it, kept as literal text on purpose: it reproduces
    // what the version before `BatchedDelete::keys_first` rendered (a `rowid` / `ctid` range
    // the statements of today no longer build), so its plan can be compared with ours. Only
    // the shared filter is rendered by sea-query.
    let old_batch = match db.backend() {
        Backend::Sqlite => format!(
            "DELETE FROM refresh_tokens WHERE rowid IN (SELECT rowid FROM refresh_tokens WHERE {} ORDER BY token LIMIT 1000)",
            cond_sql(&db, now)
        ),
        _ => format!(
            "DELETE FROM refresh_tokens WHERE ctid >= '(0,0)'::tid AND ctid < '(64,0)'::tid AND {}",
            cond_sql(&db, now)
        ),
    };
    let statements = [
        ("plain rotated DELETE", sql_of(&db, &rotated_delete(now))),
        (
            "ours: the candidate read (once per run)",
            select_sql(&db, &rotated_select(now)),
        ),
        ("ours: one by-key batch", sql_of(&db, &keys)),
        ("before: one batch (the self-join inside)", old_batch),
    ];
    println!(
        "\n### Query plans, {}\n",
        barycenter_jobs_benches::wal_label(db.backend())
    );
    for (name, sql) in statements {
        println!("{name}:\n    {sql}");
        for line in explain(&db, &sql).await {
            println!("    | {line}");
        }
        println!();
    }
    db.close().await;
    drop(copy);
}

fn cond_sql(db: &Database, now: i64) -> String {
    let sql = select_sql(
        db,
        &Query::select()
            .expr(Expr::val(1))
            .from(R::Table)
            .cond_where(rotated_filter(now))
            .to_owned(),
    );
    sql.split_once(" WHERE ")
        .map(|(_, w)| w.to_owned())
        .unwrap_or_default()
}

fn sql_of(db: &Database, stmt: &DeleteStatement) -> String {
    match db.backend() {
        Backend::Sqlite => stmt.to_string(SqliteQueryBuilder),
        _ => stmt.to_string(PostgresQueryBuilder),
    }
}

fn select_sql(db: &Database, stmt: &SelectStatement) -> String {
    match db.backend() {
        Backend::Sqlite => stmt.to_string(SqliteQueryBuilder),
        _ => stmt.to_string(PostgresQueryBuilder),
    }
}

/// The plan of `sql` (rendered text, so the old batch above can be explained too). The
/// `EXPLAIN` prefix is text: sea-query builds no EXPLAIN statement.
async fn explain(db: &Database, sql: &str) -> Vec<String> {
    use sqlx::Row as _;
    match db {
        Database::Sqlite(p) => {
            sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .fetch_all(p)
                .await
                .expect("explain")
                .iter()
                .map(|r| {
                    let id: i64 = r.get(0);
                    let parent: i64 = r.get(1);
                    let detail: String = r.get(3);
                    format!("{id} (parent {parent}) {detail}")
                })
                .collect()
        }
        Database::Postgres(p) => sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
            .fetch_all(p)
            .await
            .expect("explain")
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect(),
        _ => Vec::new(),
    }
}
