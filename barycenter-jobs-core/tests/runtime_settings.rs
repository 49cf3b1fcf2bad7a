//! Runtime settings (pause, resume, reschedule, reset), their audit log and dry runs, on one
//! scheduler and across two replicas sharing a database.

mod common;

use std::time::{Duration, Instant};

use barycenter_jobs_core::settings::SettingsStore;
use barycenter_jobs_core::{
    AuditQuery, Database, DryRunOutput, Error, ExecutionQuery, Job, JobConfig, JobContext,
    JobError, JobInfo, JobOutput, Registry, RescheduleRequest, Scheduler, SchedulerConfig,
    SchedulerHandle, TableNames, Trigger, async_trait,
};
use barycenter_jobs_test_support::{TestDb, backend_tests};
use chrono::{DateTime, Utc};
use common::{RunLog, logging_job};

/// The IANA name of the zone `job`'s schedule is evaluated in, if it has one of its own.
fn zone(job: &JobInfo) -> Option<&str> {
    job.schedule.time_zone().map(|z| z.name())
}

/// A job that counts what it would do.
struct Countable;

#[async_trait]
impl Job for Countable {
    fn name(&self) -> &str {
        "countable"
    }
    fn description(&self) -> &str {
        "has a dry run"
    }
    fn schedule(&self) -> &str {
        "0 0 0 1 1 *"
    }
    async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
        Ok(JobOutput::processed(7))
    }
    async fn dry_run(&self, _ctx: JobContext) -> Result<DryRunOutput, JobError> {
        Ok(DryRunOutput::would_process(7))
    }
}

fn registry(log: &RunLog, tag: &str) -> Registry {
    Registry::builder()
        .register(logging_job("a", "0 0 * * * *", log, tag, 1))
        .register(logging_job("b", "0 0 * * * *", log, tag, 1))
        .register(logging_job("c", "0 0 * * * *", log, tag, 1))
        .register(logging_job("tick", "* * * * * *", log, tag, 1))
        .register(logging_job("off", "0 0 * * * *", log, tag, 1))
        .register(Countable)
        .build()
        .unwrap()
}

fn config(instance: &str) -> SchedulerConfig {
    let mut config = SchedulerConfig::default()
        .job("c", JobConfig::schedule("0 30 * * * *"))
        .job("off", JobConfig::default().with_enabled(false));
    config.coordination.lease_ttl_secs = 3;
    config.coordination.instance = Some(instance.to_owned());
    config
}

async fn start(db: &Database, log: &RunLog, tag: &str) -> SchedulerHandle {
    Scheduler::builder(registry(log, tag), db.clone())
        .config(config(tag))
        .start()
        .await
        .unwrap()
}

fn scheduled_after(log: &RunLog, job: &str, after: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    log.of(job)
        .into_iter()
        .filter_map(|s| match s.trigger {
            Trigger::Scheduled { fire_time } if fire_time > after => Some(fire_time),
            _ => None,
        })
        .collect()
}

/// How long a wait for something that takes a second or two may last before it counts as
/// never happening: a ceiling that only catches a hang, not a speed requirement.
const HANG: Duration = Duration::from_secs(30);

/// Poll `cond` every 50 ms until it holds or `within` is over; returns how long it took.
async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if cond() {
            return Some(start.elapsed());
        }
        if start.elapsed() > within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn settings_precedence_validation_and_audit(t: &TestDb) {
    let log = RunLog::default();
    let h = start(&t.db, &log, "one").await;
    // a and b share a schedule, c has the host's, tick and countable their own; `off` is
    // not scheduled.
    assert_eq!(h.timer_groups(), 4);

    // Precedence: host configuration over the job's default...
    let c = h.job("c").unwrap();
    assert_eq!(c.schedule.expression(), "0 30 * * * *");
    assert_eq!(c.default_schedule.expression(), "0 0 * * * *");
    // ...and a runtime setting over both.
    let c = h
        .reschedule(
            "c",
            RescheduleRequest::new()
                .schedule("0 */5 * * * *")
                .time_zone("Europe/Berlin")
                .timeout_secs(42),
            "alice",
        )
        .await
        .unwrap();
    assert_eq!(c.schedule.expression(), "0 */5 * * * *");
    assert_eq!(zone(&c), Some("Europe/Berlin"));
    assert_eq!(c.timeout, Duration::from_secs(42));
    assert_eq!(c.runtime_settings.changed_by.as_deref(), Some("alice"));
    assert!(c.runtime_settings.changed_at.is_some());
    // A null field keeps the setting: only the timeout changes.
    let c = h
        .reschedule("c", RescheduleRequest::new().timeout_secs(60), "bob")
        .await
        .unwrap();
    assert_eq!(c.schedule.expression(), "0 */5 * * * *");
    assert_eq!(zone(&c), Some("Europe/Berlin"));
    assert_eq!(c.timeout, Duration::from_secs(60));

    // Invalid input is refused and changes nothing.
    let before = h.job("c").unwrap();
    match h
        .reschedule(
            "c",
            RescheduleRequest::new().schedule("61 * * * * *"),
            "bob",
        )
        .await
    {
        Err(Error::InvalidCron { expression, .. }) => assert_eq!(expression, "61 * * * * *"),
        other => panic!("expected InvalidCron, got {other:?}"),
    }
    match h
        .reschedule(
            "c",
            RescheduleRequest::new()
                .schedule("0 0 * * * *")
                .time_zone("Mars/Olympus"),
            "bob",
        )
        .await
    {
        Err(Error::UnknownTimeZone(zone)) => assert_eq!(zone, "Mars/Olympus"),
        other => panic!("expected UnknownTimeZone, got {other:?}"),
    }
    assert_eq!(h.job("c").unwrap(), before);
    assert!(matches!(
        h.pause("nope", "bob").await,
        Err(Error::UnknownJob(n)) if n == "nope"
    ));

    // Rescheduling one of a shared schedule gives it a timer of its own; reset takes it back.
    assert_eq!(h.timer_groups(), 4);
    h.reschedule(
        "a",
        RescheduleRequest::new().schedule("0 15 * * * *"),
        "carol",
    )
    .await
    .unwrap();
    assert_eq!(h.timer_groups(), 5);
    h.reset("a", "carol").await.unwrap();
    assert_eq!(h.timer_groups(), 4);

    // Paused: no next run; resumed: fires again. Resume outranks the host's enabled = false.
    let b = h.pause("b", "dave").await.unwrap();
    assert!(b.paused && !b.fires_on_schedule && b.next_run_at.is_none());
    let b = h.resume("b", "dave").await.unwrap();
    assert!(!b.paused && b.fires_on_schedule && b.next_run_at.is_some());
    assert!(!h.job("off").unwrap().fires_on_schedule);
    let off = h.resume("off", "dave").await.unwrap();
    assert!(off.fires_on_schedule && off.next_run_at.is_some());
    assert_eq!(h.timer_groups(), 4, "joins the group of a and b");
    let off = h.reset("off", "dave").await.unwrap();
    assert!(!off.fires_on_schedule && off.next_run_at.is_none());
    assert!(off.runtime_settings.is_empty());

    // One audit entry per call, newest first, with the actor; refusals too.
    let log_c = h.audit_log(&AuditQuery::new().job("c")).await.unwrap();
    let summary: Vec<(&str, &str)> = log_c
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("reschedule", "bob"),
            ("reschedule", "bob"),
            ("reschedule", "bob"),
            ("reschedule", "alice")
        ]
    );
    assert!(
        log_c[0]
            .detail
            .as_deref()
            .unwrap()
            .starts_with("refused: unknown time zone"),
        "{log_c:?}"
    );
    assert!(
        log_c[1]
            .detail
            .as_deref()
            .unwrap()
            .starts_with("refused: invalid cron")
    );
    assert_eq!(log_c[2].detail.as_deref(), Some("timeout_secs=60"));
    let all = h.audit_log(&AuditQuery::new().limit(3)).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(all[0].action, "reset");
    assert_eq!(all[0].job_name, "off");
    let unknown = h.audit_log(&AuditQuery::new().job("nope")).await.unwrap();
    assert_eq!(unknown.len(), 1);
    assert!(
        unknown[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("Unknown job: nope")
    );

    // Settings survive a restart.
    h.pause("tick", "erin").await.unwrap();
    h.shutdown(Duration::from_secs(5)).await.unwrap();
    let h = start(&t.another_pool().await, &log, "two").await;
    let c = h.job("c").unwrap();
    assert_eq!(c.schedule.expression(), "0 */5 * * * *");
    assert_eq!(c.timeout, Duration::from_secs(60));
    assert!(h.job("tick").unwrap().paused);
    assert!(!h.job("a").unwrap().paused);
    h.shutdown(Duration::from_secs(5)).await.unwrap();
}

async fn paused_job_is_not_fired_but_runs_by_hand(t: &TestDb) {
    let log = RunLog::default();
    let h = start(&t.db, &log, "one").await;
    let first = eventually(HANG, || !log.of("tick").is_empty()).await;
    assert!(first.is_some(), "the every-second job fires");
    h.pause("tick", "alice").await.unwrap();
    let paused_at = Utc::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // A tick due at the moment of the pause may have been under way; none after.
    let late = scheduled_after(
        &log,
        "tick",
        paused_at + chrono::Duration::milliseconds(1000),
    );
    assert!(late.is_empty(), "fired while paused: {late:?}");
    // A manual trigger still runs.
    let run = h.trigger("tick").await.unwrap();
    assert!(run.wait().await.unwrap().success.unwrap());
    h.resume("tick", "alice").await.unwrap();
    let resumed_at = Utc::now();
    let again = eventually(HANG, || {
        !scheduled_after(&log, "tick", resumed_at).is_empty()
    })
    .await;
    assert!(again.is_some(), "fires again once resumed");
    h.shutdown(Duration::from_secs(5)).await.unwrap();
}

async fn dry_runs(t: &TestDb) {
    let log = RunLog::default();
    let h = start(&t.db, &log, "one").await;
    let dry = h.dry_run("countable").await.unwrap();
    assert_eq!(dry.would_process, 7);
    // Not recorded as a run.
    let rows = h
        .store()
        .list(&ExecutionQuery::new().job("countable"))
        .await
        .unwrap();
    assert!(rows.is_empty());
    assert!(matches!(
        h.dry_run("a").await,
        Err(Error::DryRunNotSupported(name)) if name == "a"
    ));
    assert!(log.of("a").is_empty(), "a dry run never runs the job");
    assert!(matches!(h.dry_run("nope").await, Err(Error::UnknownJob(_))));
    h.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// One replica: its own runtime (as its own process would have), pool and scheduler.
struct Replica {
    rt: tokio::runtime::Runtime,
    handle: SchedulerHandle,
}

impl Replica {
    fn start(url: &str, tag: &str, log: &RunLog) -> Replica {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (url, tag, log) = (url.to_owned(), tag.to_owned(), log.clone());
        let handle = rt.block_on(async move {
            let db = Database::connect_with_max(&url, 4).await.unwrap();
            start(&db, &log, &tag).await
        });
        Replica { rt, handle }
    }

    async fn start_async(url: &str, tag: &str, log: &RunLog) -> Replica {
        let (url, tag, log) = (url.to_owned(), tag.to_owned(), log.clone());
        tokio::task::spawn_blocking(move || Replica::start(&url, &tag, &log))
            .await
            .unwrap()
    }

    /// Run `f` on this replica's runtime.
    async fn on<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce(SchedulerHandle) -> Fut,
        Fut: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.rt.spawn(f(self.handle.clone())).await.unwrap()
    }

    async fn stop(self) {
        self.on(|h| async move { h.shutdown(Duration::from_secs(10)).await })
            .await
            .unwrap();
        self.rt.shutdown_background();
    }
}

/// The promise: a change is in force on every replica within 2 s of being written.
const PROPAGATION: Duration = Duration::from_secs(2);
/// Slack for a loaded test machine on top of the promise. The bound is kept because it is
/// the product's promise (settings.rs, "Propagation": the version row is polled every second),
/// with a margin a loaded 2-core machine gives; 5 s in all still fails a replica that only
/// picks changes up at the one-minute full reload, or polls less often than every 5 s.
const SLACK: Duration = Duration::from_secs(3);

async fn two_replicas_follow_each_other(t: &TestDb) {
    let log = RunLog::default();
    let a = Replica::start_async(&t.url, "replica-a", &log).await;
    let b = Replica::start_async(&t.url, "replica-b", &log).await;
    assert!(
        eventually(HANG, || !log.of("tick").is_empty())
            .await
            .is_some()
    );

    // Pause on A: B stops within 2 s, and no replica fires it afterwards.
    a.on(|h| async move { h.pause("tick", "alice").await })
        .await
        .unwrap();
    let paused_at = Utc::now();
    let took = eventually(PROPAGATION + SLACK, || b.handle.job("tick").unwrap().paused).await;
    let took = took.expect("B sees the pause");
    eprintln!("pause reached the other replica in {} ms", took.as_millis());
    assert!(b.handle.job("tick").unwrap().next_run_at.is_none());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let late = scheduled_after(
        &log,
        "tick",
        paused_at + chrono::Duration::from_std(took).unwrap() + chrono::Duration::seconds(1),
    );
    assert!(late.is_empty(), "fired while paused: {late:?}");

    // Resume on B: A fires it again.
    b.on(|h| async move { h.resume("tick", "bob").await })
        .await
        .unwrap();
    let took = eventually(PROPAGATION + SLACK, || {
        !a.handle.job("tick").unwrap().paused
    })
    .await;
    assert!(took.is_some(), "A sees the resume");
    let resumed_at = Utc::now();
    assert!(
        eventually(HANG, || !scheduled_after(&log, "tick", resumed_at)
            .is_empty())
        .await
        .is_some(),
        "fired again after the resume"
    );

    // Reschedule on A: both apply it.
    a.on(|h| async move {
        h.reschedule(
            "a",
            RescheduleRequest::new()
                .schedule("0 10 * * * *")
                .time_zone("America/New_York"),
            "alice",
        )
        .await
    })
    .await
    .unwrap();
    let took = eventually(PROPAGATION + SLACK, || {
        let job = b.handle.job("a").unwrap();
        job.schedule.expression() == "0 10 * * * *"
            && job.schedule.time_zone().map(|z| z.name()) == Some("America/New_York")
    })
    .await;
    assert!(took.is_some(), "B applies the reschedule");
    assert_eq!(
        a.handle.job("a").unwrap().schedule.expression(),
        "0 10 * * * *"
    );
    assert_eq!(b.handle.timer_groups(), a.handle.timer_groups());
    a.on(|h| async move { h.pause("b", "alice").await })
        .await
        .unwrap();

    // Settings survive a restart of both.
    a.stop().await;
    b.stop().await;
    let a = Replica::start_async(&t.url, "replica-a2", &log).await;
    let b = Replica::start_async(&t.url, "replica-b2", &log).await;
    for r in [&a, &b] {
        let job = r.handle.job("a").unwrap();
        assert_eq!(job.schedule.expression(), "0 10 * * * *");
        assert!(r.handle.job("b").unwrap().paused);
        assert!(!r.handle.job("tick").unwrap().paused);
    }
    // The audit log names each actor, on whichever replica it is read.
    let entries = b
        .on(|h| async move { h.audit_log(&AuditQuery::new()).await })
        .await
        .unwrap();
    let summary: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| (e.action.clone(), e.job_name.clone(), e.actor.clone()))
        .collect();
    let own = |a: &str, j: &str, w: &str| (a.to_owned(), j.to_owned(), w.to_owned());
    assert_eq!(
        summary,
        [
            own("pause", "b", "alice"),
            own("reschedule", "a", "alice"),
            own("resume", "tick", "bob"),
            own("pause", "tick", "alice"),
        ]
    );
    a.stop().await;
    b.stop().await;
}

/// Audit retention deletes the entries older than its cut-off, oldest first and at most a
/// batch at a time, and keeps the rest.
async fn audit_purge_takes_old_entries_oldest_first(t: &TestDb) {
    let log = RunLog::default();
    let h = start(&t.db, &log, "purge").await;
    for job in ["a", "b", "c", "a", "b"] {
        h.pause(job, "me").await.unwrap();
    }
    let store = SettingsStore::new(t.db.clone(), &TableNames::default());
    let ids = |entries: Vec<barycenter_jobs_core::AuditEntry>| {
        let mut ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids
    };
    let all = ids(h.audit_log(&AuditQuery::new()).await.unwrap());
    assert_eq!(all.len(), 5);

    // Nothing is older than an hour ago.
    let an_hour = chrono::Duration::hours(1);
    assert_eq!(
        store
            .purge_audit_batch(Utc::now() - an_hour, 2)
            .await
            .unwrap(),
        0
    );
    assert_eq!(ids(h.audit_log(&AuditQuery::new()).await.unwrap()), all);

    // Everything is older than an hour from now: two at a time, the lowest ids first.
    let later = Utc::now() + an_hour;
    assert_eq!(store.purge_audit_batch(later, 2).await.unwrap(), 2);
    assert_eq!(
        ids(h.audit_log(&AuditQuery::new()).await.unwrap()),
        all[2..]
    );
    assert_eq!(store.purge_audit_batch(later, 2).await.unwrap(), 2);
    assert_eq!(store.purge_audit_batch(later, 2).await.unwrap(), 1);
    assert_eq!(store.purge_audit_batch(later, 2).await.unwrap(), 0);
    assert!(h.audit_log(&AuditQuery::new()).await.unwrap().is_empty());
    h.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// Without tables (no history, no coordination) settings hold in this process only.
#[tokio::test]
async fn in_memory_scheduler_applies_settings_locally() {
    let t = barycenter_jobs_test_support::sqlite().await;
    let log = RunLog::default();
    let h = Scheduler::builder(registry(&log, "mem"), t.db.clone())
        .config(SchedulerConfig::default().without_coordination())
        .without_history()
        .start()
        .await
        .unwrap();
    assert!(h.pause("a", "me").await.unwrap().paused);
    assert!(h.audit_log(&AuditQuery::new()).await.unwrap().is_empty());
    h.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// Table names changed in the configuration after the first start: the next start creates
/// the renamed settings, audit, registry and lease tables (migrations are recorded per
/// table), and everything that lives in them works: a pause, its audit entry, health's
/// first-seen dates, a coordinated run.
async fn renamed_tables_are_created_on_next_start(t: &TestDb) {
    let log = RunLog::default();
    let first = Scheduler::builder(registry(&log, "first"), t.db.clone())
        .config(config("first"))
        .start()
        .await
        .unwrap();
    first.shutdown(Duration::from_secs(5)).await.unwrap();

    let mut renamed = config("second");
    let name = |s: &str| barycenter_jobs_core::Identifier::new(s).unwrap();
    renamed.tables.settings = name("ops_job_settings");
    renamed.tables.audit = name("ops_job_audit");
    renamed.tables.registry = name("ops_job_registry");
    renamed.tables.leases = name("ops_job_leases");
    let h = Scheduler::builder(registry(&log, "second"), t.db.clone())
        .config(renamed)
        .start()
        .await
        .expect("starts with renamed tables");
    let paused = h.pause("a", "erin").await.unwrap();
    assert!(paused.paused);
    let audit = h
        .audit_log(&AuditQuery {
            job_name: Some("a".into()),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].actor, "erin");
    let health = h.health().await.unwrap();
    assert!(health.job("a").unwrap().first_seen_at.is_some());
    let run = h.trigger("countable").await.unwrap().wait().await.unwrap();
    assert_eq!(run.records_processed, Some(7));
    for table in [
        "ops_job_settings",
        "ops_job_audit",
        "ops_job_registry",
        "ops_job_leases",
    ] {
        barycenter_jobs_test_support::raw(&t.db, &format!("SELECT COUNT(*) FROM {table}")).await;
    }
    h.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// A valid cron expression too long for the settings column is refused with its reason
/// (it used to fail against `VARCHAR(255)` as a database error), and nothing changes.
async fn overlong_cron_is_refused_with_its_reason(t: &TestDb) {
    let log = RunLog::default();
    let h = start(&t.db, &log, "x").await;
    let every: Vec<String> = (0..60).map(|n| n.to_string()).collect();
    let list = every.join(",");
    let long = format!("{list} {list} * * * *");
    assert!(long.len() > 255);
    barycenter_jobs_core::Schedule::parse(&long).expect("a valid expression");
    let err = h
        .reschedule("a", RescheduleRequest::new().schedule(long.clone()), "ops")
        .await
        .unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
    assert!(
        err.to_string().contains("longer than 255 characters"),
        "{err}"
    );
    assert_eq!(h.job("a").unwrap().schedule.expression(), "0 0 * * * *");
    h.shutdown(Duration::from_secs(5)).await.unwrap();
}

backend_tests!(
    overlong_cron_is_refused_with_its_reason,
    renamed_tables_are_created_on_next_start,
    settings_precedence_validation_and_audit,
    paused_job_is_not_fired_but_runs_by_hand,
    dry_runs,
    two_replicas_follow_each_other,
    audit_purge_takes_old_entries_oldest_first,
);
