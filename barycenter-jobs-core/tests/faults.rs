//! The run path under faults, on SQLite, PostgreSQL and MariaDB: a lease that cannot be
//! renewed stops its run before it expires, a claimed tick whose run cannot start is given
//! back, `trigger` racing `shutdown` leaves nothing open, a cut-short run records what it
//! did, and with coordination off the start-up sweep never closes a live process's run.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use barycenter_jobs_core::{
    Backend, Database, Error, ExecutionQuery, ExecutionStatus, ExecutionStore, JobConfig, JobError,
    JobOutput, NewExecution, Registry, Scheduler, SchedulerConfig, SchedulerHandle,
};
use barycenter_jobs_test_support::{TestDb, backend_tests, eventually, has_execution, raw};
use common::ScriptedJob;
use sqlx::Connection as _;

async fn start(db: &Database, registry: Registry, config: SchedulerConfig) -> SchedulerHandle {
    Scheduler::builder(registry, db.clone())
        .config(config)
        .start()
        .await
        .expect("scheduler starts")
}

fn with_ttl(ttl_secs: u64, instance: &str) -> SchedulerConfig {
    let mut config = SchedulerConfig::default();
    config.coordination.lease_ttl_secs = ttl_secs;
    config.coordination.instance = Some(instance.into());
    config
}

/// A long job that reports one unit of work every 50 ms and stops when cancelled; it
/// records when it saw the cancellation and when it returned.
fn worker(name: &str, cancelled_at: Arc<std::sync::Mutex<Option<Instant>>>) -> ScriptedJob {
    ScriptedJob::new(name, "0 0 0 1 1 *", move |ctx| {
        let cancelled_at = cancelled_at.clone();
        async move {
            loop {
                tokio::select! {
                    _ = ctx.cancellation().cancelled() => {
                        *cancelled_at.lock().unwrap() = Some(Instant::now());
                        return Err(JobError::Cancelled);
                    }
                    _ = tokio::time::sleep(Duration::from_millis(50)) => ctx.report_processed(1),
                }
            }
        }
    })
}

/// Holds the lease row of `job` locked from another session until dropped (PostgreSQL,
/// MariaDB: `SELECT ... FOR UPDATE` in an open transaction; SQLite: the database's write
/// lock, `BEGIN IMMEDIATE`).
enum RowLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
    MySql(sqlx::MySqlConnection),
}

impl RowLock {
    async fn take(t: &TestDb, job: &str) -> RowLock {
        let select = format!("SELECT token FROM job_leases WHERE job_name = '{job}' FOR UPDATE");
        Self::take_with(t, &select).await
    }

    /// Lock the rows `select` (a `SELECT ... FOR UPDATE`) reads.
    async fn take_with(t: &TestDb, select: &str) -> RowLock {
        match t.backend() {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&t.url).await.unwrap();
                sqlx::raw_sql("BEGIN IMMEDIATE")
                    .execute(&mut c)
                    .await
                    .unwrap();
                RowLock::Sqlite(c)
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&t.url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("BEGIN; {select}")))
                    .execute(&mut c)
                    .await
                    .unwrap();
                RowLock::Postgres(c)
            }
            _ => {
                let mut c = sqlx::MySqlConnection::connect(&t.url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("BEGIN; {select}")))
                    .execute(&mut c)
                    .await
                    .unwrap();
                RowLock::MySql(c)
            }
        }
    }

    async fn release(self) {
        let _ = match self {
            RowLock::Sqlite(mut c) => sqlx::raw_sql("ROLLBACK").execute(&mut c).await.map(drop),
            RowLock::Postgres(mut c) => sqlx::raw_sql("ROLLBACK").execute(&mut c).await.map(drop),
            RowLock::MySql(mut c) => sqlx::raw_sql("ROLLBACK").execute(&mut c).await.map(drop),
        };
    }
}

/// Another session locks the lease row while a run holds the lease: renewals cannot get
/// through, so the run is cancelled (and dropped if need be) before the lease expires, and
/// is recorded as failed with the work it did, once the lock is gone.
async fn unconfirmable_lease_stops_the_run_before_expiry(t: &TestDb) {
    let cancelled_at = Arc::new(std::sync::Mutex::new(None));
    let registry = Registry::builder()
        .register(worker("long", cancelled_at.clone()))
        .build()
        .unwrap();
    // The bound below (the lease's expiry) is the semantics; the scheduler cancels the run a
    // fifth of the TTL before it, so the TTL sets the slack a loaded machine gets to deliver
    // that cancellation: 6 s gives 1.2 s (3 s gave 0.6 s).
    let ttl = Duration::from_secs(6);
    let handle = start(&t.db, registry, with_ttl(6, "locked-out")).await;

    let claimed_before = Instant::now();
    let run = handle.trigger("long").await.unwrap();
    let lock = RowLock::take(t, "long").await;
    let locked_at = Instant::now();
    // The run must give up by itself before its lease expires; nothing here cancels it.
    // The ceiling only catches a run that never gives up.
    eventually(
        Duration::from_secs(60),
        "the run noticed it lost its lease",
        || {
            let c = cancelled_at.clone();
            async move { c.lock().unwrap().is_some() }
        },
    )
    .await;
    let stopped = cancelled_at.lock().unwrap().unwrap();
    // No claim or renewal can get through once the lock is held, so the lease expires at
    // most a TTL after `locked_at` (the database's clock is this machine's). Not `claimed_before
    // + ttl`: on a loaded machine taking the lock can outlast the first renewal, which then
    // rightly extends the lease.
    let lease_end = locked_at + ttl;
    eprintln!(
        "{:?}: lock after {:?}, run cancelled {:?} after the lock, {:?} before the lease could expire",
        t.backend(),
        locked_at - claimed_before,
        stopped - locked_at,
        lease_end.saturating_duration_since(stopped)
    );
    assert!(
        stopped < lease_end,
        "run cancelled {:?} after its lease could expire",
        stopped - lease_end
    );
    lock.release().await;
    let row = tokio::time::timeout(Duration::from_secs(20), run.wait())
        .await
        .expect("the end is recorded once the lock is gone")
        .unwrap();
    assert_eq!(row.status, ExecutionStatus::Failed, "{row:?}");
    assert!(
        row.error_message
            .as_deref()
            .is_some_and(|m| m.contains("lease")),
        "{row:?}"
    );
    assert!(row.records_processed.is_some_and(|n| n > 0), "{row:?}");
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// A job that returns an error, times out or is cancelled by shutdown after reporting
/// progress records that progress in `records_processed`.
async fn cut_short_runs_record_their_progress(t: &TestDb) {
    let reported = Arc::new(AtomicU64::new(0));
    let registry = Registry::builder()
        .register(ScriptedJob::new("fails", "0 0 0 1 1 *", |ctx| async move {
            ctx.report_processed(7);
            ctx.report_processed(5);
            Err(JobError::failed("disk full"))
        }))
        .register({
            // The worker's loop, counting the units it reported, so the recorded progress is
            // compared with what the run did rather than with what a second of 50 ms sleeps
            // should give on a fast machine.
            let reported = reported.clone();
            ScriptedJob::new("slow", "0 0 0 1 1 *", move |ctx| {
                let reported = reported.clone();
                async move {
                    loop {
                        tokio::select! {
                            _ = ctx.cancellation().cancelled() => return Err(JobError::Cancelled),
                            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                                ctx.report_processed(1);
                                reported.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                }
            })
        })
        .build()
        .unwrap();
    let config = SchedulerConfig::default().job(
        "slow",
        JobConfig::default().with_timeout(Duration::from_secs(1)),
    );
    let handle = start(&t.db, registry, config).await;

    let failed = handle.trigger("fails").await.unwrap().wait().await.unwrap();
    assert_eq!(failed.status, ExecutionStatus::Failed);
    assert_eq!(failed.records_processed, Some(12));

    let timed_out = handle.trigger("slow").await.unwrap().wait().await.unwrap();
    assert_eq!(timed_out.status, ExecutionStatus::Failed, "{timed_out:?}");
    assert!(
        timed_out
            .error_message
            .as_deref()
            .is_some_and(|m| m.starts_with("timed out")),
        "{timed_out:?}"
    );
    let n = timed_out.records_processed.expect("progress recorded");
    assert!(n > 0, "it reported progress before its timeout");
    assert_eq!(
        n,
        reported.load(Ordering::SeqCst),
        "the record is exactly what the run reported"
    );
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// `trigger` racing `shutdown`: each trigger either gets `ShutDown` or its run is finished
/// (or cancelled) and recorded by the time `shutdown` returns; no row stays open, no lease
/// stays held.
async fn trigger_racing_shutdown_leaves_nothing_open(t: &TestDb) {
    let store = ExecutionStore::new(t.db.clone());
    for round in 0..10 {
        let registry = Registry::builder()
            .register(ScriptedJob::new(
                "quick",
                "0 0 0 1 1 *",
                |_ctx| async move {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    Ok(JobOutput::processed(1))
                },
            ))
            .build()
            .unwrap();
        let handle = start(&t.db, registry, with_ttl(30, &format!("round-{round}"))).await;
        let (h1, h2) = (handle.clone(), handle.clone());
        let trigger = tokio::spawn(async move { h1.trigger("quick").await });
        // Let the trigger get into its claim before shutdown starts.
        tokio::task::yield_now().await;
        let shutdown = tokio::spawn(async move { h2.shutdown(Duration::from_secs(5)).await });
        shutdown.await.unwrap().unwrap();
        // Shutdown returned: whatever the trigger did is over.
        let open = store
            .list(&ExecutionQuery::new().job("quick").limit(1000))
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.completed_at.is_none())
            .count();
        assert_eq!(open, 0, "round {round}: a run is still open after shutdown");
        let leases = barycenter_jobs_core::LeaseStore::new(
            t.db.clone(),
            barycenter_jobs_core::Identifier::new("job_leases").unwrap(),
        );
        assert!(
            !leases.is_held("quick").await.unwrap(),
            "round {round}: lease held after shutdown"
        );
        match trigger.await.unwrap() {
            Ok(run) => {
                let row = run.wait().await.unwrap();
                assert!(row.completed_at.is_some());
            }
            Err(Error::ShutDown) => {}
            Err(e) => panic!("round {round}: {e}"),
        }
    }
}

/// Coordination off: a starting scheduler closes the runs of dead processes on this host
/// and runs older than the job's longest possible run, never a run another live process may
/// still have, whatever its label, its own label included (several processes may share a
/// configured label).
async fn coordination_off_sweep_spares_live_processes(t: &TestDb) {
    let store = ExecutionStore::new(t.db.clone());
    store.migrate().await.unwrap();
    // This host as the scheduler names it in `HOST:PID` instance ids: asked of a scheduler
    // that keeps no tables and so sweeps nothing.
    let probe = Scheduler::builder(Registry::builder().build().unwrap(), t.db.clone())
        .config(SchedulerConfig::default().without_coordination())
        .without_history()
        .start()
        .await
        .unwrap();
    let host = probe.instance().rsplit_once(':').unwrap().0.to_owned();
    probe.shutdown(Duration::from_secs(1)).await.unwrap();
    let start_row = |instance: String, age: chrono::Duration| {
        let store = store.clone();
        async move {
            let mut new = NewExecution::manual("sweep", chrono::Utc::now() - age);
            new.instance = Some(instance);
            store.start(&new).await.unwrap()
        }
    };
    let now = chrono::Duration::zero();
    let live_other = start_row(format!("{host}:{}", std::process::id()), now).await;
    // Our own label, but it may be a live twin's (one configuration shipped to two
    // processes): only its age tells, and it is younger than the job's timeout (1 h).
    let same_label_young = start_row("restarted".into(), now).await;
    // Older than the timeout plus grace: no process can still be running it.
    let same_label_old = start_row("restarted".into(), chrono::Duration::hours(2)).await;
    let dead = start_row(format!("{host}:{}", u32::MAX - 7), now).await;
    let foreign = start_row("other-host:1".into(), now).await;

    let registry = Registry::builder()
        .register(worker("sweep", Arc::default()))
        .build()
        .unwrap();
    let mut config = SchedulerConfig::default().without_coordination();
    config.coordination.instance = Some("restarted".into());
    let handle = start(&t.db, registry, config).await;
    let status = |id| {
        let store = store.clone();
        async move { store.get(id).await.unwrap().unwrap().status }
    };
    assert_eq!(
        status(live_other).await,
        ExecutionStatus::Running,
        "a live process's run"
    );
    assert_eq!(
        status(foreign).await,
        ExecutionStatus::Running,
        "another host's run"
    );
    assert_eq!(
        status(same_label_young).await,
        ExecutionStatus::Running,
        "a young run under our label may be a live twin's"
    );
    assert_eq!(status(same_label_old).await, ExecutionStatus::Abandoned);
    assert_eq!(status(dead).await, ExecutionStatus::Abandoned);
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// The start row of a claimed tick cannot be written (its table is gone for a moment): the
/// tick is given back, and the same replica runs it once the table is back, before the next
/// tick is due.
async fn claimed_tick_is_not_lost_when_its_run_cannot_start(t: &TestDb) {
    let runs = Arc::new(AtomicU64::new(0));
    let counter = runs.clone();
    let registry = Registry::builder()
        .register(ScriptedJob::new("every5", "*/5 * * * * *", move |_ctx| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { Ok(JobOutput::processed(1)) }
        }))
        .build()
        .unwrap();
    let handle = start(&t.db, registry, with_ttl(30, "giver")).await;
    let rename = |from: &str, to: &str| match t.backend() {
        Backend::MySql => format!("RENAME TABLE {from} TO {to}"),
        _ => format!("ALTER TABLE {from} RENAME TO {to}"),
    };
    raw(&t.db, &rename("job_executions", "job_executions_away")).await;
    // A claimed tick T given back shows as last_tick = T - 1 (T is a multiple of 5).
    // Ticks are 5 s apart; the ceilings only catch a tick never given back, or never run.
    eventually(
        Duration::from_secs(30),
        "a tick was claimed and given back",
        || async {
            sqlx_last_tick(&t.db)
                .await
                .is_some_and(|tick| tick % 5 == 4)
        },
    )
    .await;
    let given_back = sqlx_last_tick(&t.db).await.unwrap() + 1;
    raw(&t.db, &rename("job_executions_away", "job_executions")).await;
    let store = ExecutionStore::new(t.db.clone());
    eventually(Duration::from_secs(30), "the given-back tick ran", || {
        let store = store.clone();
        async move {
            has_execution(&store, "every5", |e| {
                e.scheduled_for.map(|s| s.timestamp()) == Some(given_back)
                    && e.status == ExecutionStatus::Succeeded
            })
            .await
        }
    })
    .await;
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
}

async fn sqlx_last_tick(db: &Database) -> Option<i64> {
    use barycenter_jobs_core::sea_query::{Alias, Expr, ExprTrait, Query};
    let row = db
        .fetch_optional(
            Query::select()
                .column(Alias::new("last_tick"))
                .from(Alias::new("job_leases"))
                .and_where(Expr::col(Alias::new("job_name")).eq("every5")),
        )
        .await
        .ok()??;
    row.opt_i64("last_tick").ok()?
}

/// The lease table owns its schema: renaming it in the configuration of a database whose
/// history was migrated with the old name creates the new one, and runs coordinate through it.
async fn renamed_lease_table_is_created(t: &TestDb) {
    let registry = || {
        Registry::builder()
            .register(ScriptedJob::new("once", "0 0 0 1 1 *", |_ctx| async move {
                Ok(JobOutput::processed(1))
            }))
            .build()
            .unwrap()
    };
    let first = start(&t.db, registry(), with_ttl(30, "before-rename")).await;
    first.trigger("once").await.unwrap().wait().await.unwrap();
    first.shutdown(Duration::from_secs(5)).await.unwrap();

    let mut config = with_ttl(30, "after-rename");
    config.tables.leases = barycenter_jobs_core::Identifier::new("renamed_leases").unwrap();
    let second = start(&t.db, registry(), config).await;
    let row = second.trigger("once").await.unwrap().wait().await.unwrap();
    assert_eq!(row.status, ExecutionStatus::Succeeded);
    let leases = barycenter_jobs_core::LeaseStore::new(
        t.db.clone(),
        barycenter_jobs_core::Identifier::new("renamed_leases").unwrap(),
    );
    let claimed = leases
        .claim(
            "once",
            "probe",
            barycenter_jobs_core::ClaimKind::Now,
            Duration::from_secs(1),
        )
        .await
        .expect("the renamed table exists");
    assert!(claimed.is_some(), "its row for the job was created");
    second.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// Without history but with coordination, runs are still claimed through the lease table,
/// and the database gets no `job_executions` it would never write.
async fn history_off_migrates_no_history(t: &TestDb) {
    let registry = Registry::builder()
        .register(ScriptedJob::new("mem", "0 0 0 1 1 *", |_ctx| async move {
            Ok(JobOutput::processed(2))
        }))
        .build()
        .unwrap();
    let handle = Scheduler::builder(registry, t.db.clone())
        .config(with_ttl(30, "no-history"))
        .without_history()
        .start()
        .await
        .unwrap();
    let ended = handle.trigger("mem").await.unwrap().wait().await.unwrap();
    assert_eq!(ended.records_processed, Some(2));
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
    let leases = barycenter_jobs_core::LeaseStore::new(
        t.db.clone(),
        barycenter_jobs_core::Identifier::new("job_leases").unwrap(),
    );
    assert!(
        !leases.is_held("mem").await.unwrap(),
        "lease table there, lease released"
    );
    assert!(
        ExecutionStore::new(t.db.clone())
            .list(&ExecutionQuery::new())
            .await
            .is_err(),
        "no job_executions table"
    );
}

/// A claim says whether the previous holder gave the lease back cleanly: only then may the
/// scheduler skip looking for runs it left open.
async fn claim_reports_an_unclean_previous_holder(t: &TestDb) {
    let leases = barycenter_jobs_core::LeaseStore::new(
        t.db.clone(),
        barycenter_jobs_core::Identifier::new("job_leases").unwrap(),
    );
    leases.migrate().await.unwrap();
    leases.ensure_rows(&["flag"]).await.unwrap();
    let now = barycenter_jobs_core::ClaimKind::Now;
    let ttl = Duration::from_secs(30);
    let claim = |holder: &'static str, ttl: Duration| {
        let leases = leases.clone();
        async move {
            leases
                .claim("flag", holder, now, ttl)
                .await
                .unwrap()
                .expect("free")
        }
    };
    let first = claim("a", ttl).await;
    assert!(!first.previous_unreleased, "a row never held");
    leases.set_execution(&first.lease, 7).await.unwrap();
    leases.release(&first.lease).await.unwrap();
    let second = claim("b", ttl).await;
    assert!(!second.previous_unreleased, "released cleanly");
    leases.release_unclean(&second.lease).await.unwrap();
    let third = claim("c", ttl).await;
    assert!(
        third.previous_unreleased,
        "released unclean, no execution noted"
    );
    leases.set_execution(&third.lease, 8).await.unwrap();
    leases.release_unclean(&third.lease).await.unwrap();
    let fourth = claim("d", Duration::from_millis(1)).await;
    assert!(
        fourth.previous_unreleased,
        "released unclean with its execution"
    );
    leases.release(&fourth.lease).await.unwrap();
    // A holder that never gives the lease back (it died): its lease lapses.
    let _dead = claim("dead", Duration::from_millis(1)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fifth = claim("e", ttl).await;
    assert!(
        fifth.previous_unreleased,
        "the previous holder never released"
    );
    leases.release(&fifth.lease).await.unwrap();
    let sixth = claim("f", ttl).await;
    assert!(!sixth.previous_unreleased);
    leases.release(&sixth.lease).await.unwrap();
}

/// The open run of a holder that died after its lease was taken is closed as abandoned by
/// the next run of the job, before it starts (not only by a start-up sweep).
async fn dead_holders_run_is_closed_by_the_next_run(t: &TestDb) {
    let registry = Registry::builder()
        .register(worker("taken_over", Arc::default()))
        .build()
        .unwrap();
    let handle = start(&t.db, registry, with_ttl(30, "survivor")).await;
    let leases = barycenter_jobs_core::LeaseStore::new(
        t.db.clone(),
        barycenter_jobs_core::Identifier::new("job_leases").unwrap(),
    );
    let store = handle.store().clone();
    // Another process takes the lease, writes its start row and dies: its lease lapses.
    let dead = leases
        .claim(
            "taken_over",
            "dead-process",
            barycenter_jobs_core::ClaimKind::Now,
            Duration::from_millis(200),
        )
        .await
        .unwrap()
        .expect("free");
    let mut new = NewExecution::manual("taken_over", chrono::Utc::now());
    new.instance = Some("dead-process".into());
    let open = store.start(&new).await.unwrap();
    leases.set_execution(&dead.lease, open).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;

    let run = handle.trigger("taken_over").await.unwrap();
    let row = store.get(open).await.unwrap().unwrap();
    assert_eq!(row.status, ExecutionStatus::Abandoned, "{row:?}");
    drop(run);
    handle.shutdown(Duration::from_millis(200)).await.unwrap();
}

/// A pause whose request is dropped while its write waits on a locked settings row (the
/// client reset the connection, a tower timeout fired): the change still completes once
/// the lock is gone, and its audit entry says so. Before, the audit row was written after
/// the change inside the request's future: the UPDATE already sent went through, the audit
/// row never came, and the job was paused with no entry naming who did it.
async fn dropped_request_leaves_no_unaudited_change(t: &TestDb) {
    let registry = Registry::builder()
        .register(ScriptedJob::new("j", "0 0 0 1 1 *", |_| async {
            Ok(JobOutput::processed(1))
        }))
        .build()
        .unwrap();
    let handle = start(&t.db, registry, SchedulerConfig::default()).await;
    // The job's settings row exists (a first change), so the pause is an UPDATE of it.
    handle
        .reschedule(
            "j",
            barycenter_jobs_core::RescheduleRequest::new().timeout_secs(60),
            "setup",
        )
        .await
        .unwrap();
    let lock = RowLock::take_with(
        t,
        "SELECT paused FROM job_settings WHERE job_name = 'j' FOR UPDATE",
    )
    .await;
    let request = tokio::spawn({
        let handle = handle.clone();
        async move { handle.pause("j", "mallory").await }
    });
    let audited = |detail: &'static str| {
        let handle = handle.clone();
        move || {
            let handle = handle.clone();
            async move {
                handle
                    .audit_log(&barycenter_jobs_core::AuditQuery {
                        job_name: Some("j".into()),
                        limit: 10,
                    })
                    .await
                    .unwrap()
                    .iter()
                    .any(|e| e.actor == "mallory" && e.detail.as_deref() == Some(detail))
            }
        }
    };
    // The pause is under way (its entry is written first), its write blocked by the lock.
    eventually(
        Duration::from_secs(30),
        "the pending audit entry",
        audited("pending: paused"),
    )
    .await;
    request.abort();
    assert!(request.await.unwrap_err().is_cancelled());
    lock.release().await;
    eventually(
        Duration::from_secs(30),
        "the pause completed and audited",
        audited("paused"),
    )
    .await;
    let settings = barycenter_jobs_core::settings::SettingsStore::new(
        t.db.clone(),
        &barycenter_jobs_core::TableNames::default(),
    );
    assert_eq!(settings.get("j").await.unwrap().paused, Some(true));
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
}

backend_tests!([postgres, mysql] dropped_request_leaves_no_unaudited_change);

/// Open history rows of a job the registry does not know (left by the host's old
/// hand-written module, or a removed plugin): closed as abandoned at start-up once older
/// than a day; a younger one (perhaps a live run of another replica's job) stays open.
async fn unknown_jobs_old_open_rows_are_closed(t: &TestDb) {
    let store = ExecutionStore::new(t.db.clone());
    store.migrate().await.unwrap();
    let now = chrono::Utc::now();
    let open = |name: &'static str, age: chrono::Duration| {
        let store = store.clone();
        async move {
            store
                .start(&NewExecution::manual(name, now - age))
                .await
                .unwrap()
        }
    };
    let stale = open("legacy_cleanup", chrono::Duration::days(3)).await;
    let young = open("other_replicas_job", chrono::Duration::hours(2)).await;
    let registry = Registry::builder()
        .register(worker("known", Arc::default()))
        .build()
        .unwrap();
    let handle = start(&t.db, registry, SchedulerConfig::default()).await;
    let status = |id| {
        let store = store.clone();
        async move { store.get(id).await.unwrap().unwrap().status }
    };
    assert_eq!(status(stale).await, ExecutionStatus::Abandoned);
    assert_eq!(status(young).await, ExecutionStatus::Running);
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
}

backend_tests!(unknown_jobs_old_open_rows_are_closed);

backend_tests!(
    claim_reports_an_unclean_previous_holder,
    dead_holders_run_is_closed_by_the_next_run,
    history_off_migrates_no_history,
    renamed_lease_table_is_created,
    unconfirmable_lease_stops_the_run_before_expiry,
    cut_short_runs_record_their_progress,
    trigger_racing_shutdown_leaves_nothing_open,
    coordination_off_sweep_spares_live_processes,
    claimed_tick_is_not_lost_when_its_run_cannot_start,
);
