//! Run controls (issue 26): a run cancelled from a replica that does not run it, its
//! progress visible while it runs, and the fleet's rows; each on the three backends.

mod common;

use std::time::Duration;

use barycenter_jobs_core::{
    AuditQuery, Error, ExecutionStatus, Identifier, JobConfig, JobError, JobOutput, LeaseStore,
    Registry, SchedulerConfig,
};
use barycenter_jobs_test_support::{TestDb, backend_tests, eventually};
use chrono::Utc;
use common::{ScriptedJob, start};
use tokio::sync::watch;

backend_tests!(
    a_cancel_from_another_replica_stops_the_run_with_its_records,
    progress_is_visible_while_the_run_goes_on,
    the_fleet_lists_its_replicas_and_forgets_one_that_stopped,
);

/// Beyond this a test only waits for a hang.
const HANG: Duration = Duration::from_secs(60);
const GRACE: Duration = Duration::from_secs(5);

/// A schedule that never fires during a test: runs start by hand.
const NEVER: &str = "0 0 0 1 1 *";

/// A replica's configuration: the default lease (30 s, renewed every 10 s).
fn config(instance: &str) -> SchedulerConfig {
    let mut config = SchedulerConfig::default();
    config.coordination.instance = Some(instance.to_owned());
    config
        .jobs
        .insert("held".into(), JobConfig::schedule(NEVER));
    config
}

/// A job that reports 7 records, then waits for `gate` (reporting 4 more once it opens) or
/// for its cancellation.
fn held(gate: &watch::Receiver<bool>) -> Registry {
    let gate = gate.clone();
    let job = ScriptedJob::new("held", NEVER, move |ctx| {
        let mut gate = gate.clone();
        async move {
            ctx.report_processed(7);
            tokio::select! {
                _ = gate.wait_for(|open| *open) => {
                    ctx.report_processed(4);
                    Ok(JobOutput::processed(11))
                }
                _ = ctx.cancellation().cancelled() => Err(JobError::Cancelled),
            }
        }
    });
    Registry::builder().register(job).build().unwrap()
}

/// A runs the job; alice cancels it on B, which does not run it. The run stops, recorded
/// `cancelled` with the 7 records it reported and "cancelled by alice"; the lease is free
/// again; the cancel is audited. A finished run and an unknown id are refused.
async fn a_cancel_from_another_replica_stops_the_run_with_its_records(t: &TestDb) {
    let (_open, gate) = watch::channel(false);
    let a = start(t, held(&gate), config("a")).await;
    let b = start(t, held(&gate), config("b")).await;
    let run = a.trigger("held").await.unwrap();
    let id = run.execution_id;
    // The trigger returns once the run's start is recorded and noted on its lease.
    assert_eq!(b.cancel_run(id, "alice").await.unwrap(), "held");
    let asked = Utc::now();
    let row = run.wait().await.unwrap();
    let stopped = Utc::now() - asked;
    assert_eq!(row.status, ExecutionStatus::Cancelled);
    assert_eq!(row.records_processed, Some(7));
    assert_eq!(row.error_message.as_deref(), Some("cancelled by alice"));
    // The job waits for ever otherwise: the cancel stopped it. How soon is printed (the
    // watch reads once a second), not asserted.
    eprintln!("cancel to end: {} ms", stopped.num_milliseconds());
    let leases = LeaseStore::new(t.db.clone(), Identifier::new("job_leases").unwrap());
    assert!(!leases.is_held("held").await.unwrap());
    let audit = b.audit_log(&AuditQuery::new().job("held")).await.unwrap();
    assert_eq!(audit[0].actor, "alice");
    assert_eq!(audit[0].action, "cancel");

    // Refused with the reason, and audited too.
    let refusals = || async {
        b.audit_log(&AuditQuery::new())
            .await
            .unwrap()
            .into_iter()
            .filter(|e| {
                e.action == "cancel" && e.detail.as_deref().unwrap_or("").starts_with("refused")
            })
            .count()
    };
    let before = refusals().await;
    assert!(matches!(
        b.cancel_run(id, "alice").await,
        Err(Error::RunNotRunning { .. })
    ));
    assert!(matches!(
        b.cancel_run(id + 1000, "alice").await,
        Err(Error::ExecutionNotFound(_))
    ));
    assert_eq!(refusals().await - before, 2);
    a.shutdown(GRACE).await.unwrap();
    b.shutdown(GRACE).await.unwrap();
}

/// While the run waits, its row shows the 7 records it reported, still open; once it goes
/// on and ends, the 11 it returned.
async fn progress_is_visible_while_the_run_goes_on(t: &TestDb) {
    let (open, gate) = watch::channel(false);
    let h = start(t, held(&gate), config("a")).await;
    let run = h.trigger("held").await.unwrap();
    let id = run.execution_id;
    eventually(HANG, "the open row shows the progress", || async {
        let row = h.store().get(id).await.unwrap().unwrap();
        row.completed_at.is_none() && row.records_processed == Some(7)
    })
    .await;
    open.send_replace(true);
    let row = run.wait().await.unwrap();
    assert_eq!(row.status, ExecutionStatus::Succeeded);
    assert_eq!(row.records_processed, Some(11));
    h.shutdown(GRACE).await.unwrap();
}

/// Two schedulers each keep a row: both are listed by either, with their host, process and
/// version; one that shuts down cleanly is gone at once.
async fn the_fleet_lists_its_replicas_and_forgets_one_that_stopped(t: &TestDb) {
    let (_open, gate) = watch::channel(false);
    let a = start(t, held(&gate), config("a")).await;
    let b = start(t, held(&gate), config("b")).await;
    eventually(HANG, "both listed", || async {
        b.fleet().await.unwrap().len() == 2
    })
    .await;
    let fleet = a.fleet().await.unwrap();
    let names: Vec<_> = fleet.iter().map(|r| r.instance.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    for replica in &fleet {
        assert_eq!(replica.pid, std::process::id());
        assert_eq!(replica.version, env!("CARGO_PKG_VERSION"));
        assert!(!replica.host.is_empty());
        assert!(replica.last_seen_at >= replica.started_at - chrono::Duration::seconds(1));
        assert_eq!(replica.running, 0);
    }
    a.shutdown(GRACE).await.unwrap();
    let names: Vec<_> = b
        .fleet()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.instance)
        .collect();
    assert_eq!(names, ["b"]);
    b.shutdown(GRACE).await.unwrap();
}
