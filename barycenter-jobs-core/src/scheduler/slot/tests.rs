use super::*;
use crate::job::{JobContext, JobError, JobOutput};

struct Hourly;
#[async_trait::async_trait]
impl Job for Hourly {
    fn name(&self) -> &str {
        "hourly"
    }
    fn description(&self) -> &str {
        "test"
    }
    fn schedule(&self) -> &str {
        "0 0 * * * *"
    }
    async fn run(&self, _ctx: JobContext) -> std::result::Result<JobOutput, JobError> {
        Ok(JobOutput::processed(0))
    }
}

pub(in crate::scheduler) fn slot(enabled: bool) -> Arc<Slot> {
    let base = Base {
        default_schedule: Schedule::parse("0 0 * * * *").unwrap(),
        expression: "0 0 * * * *".into(),
        time_zone: None,
        enabled,
        timeout: Duration::from_secs(60),
        policy: Default::default(),
    };
    Arc::new(Slot::new(Arc::new(Hourly), base, None).unwrap())
}

#[test]
fn regroup_reports_each_move_once() {
    let s = slot(true);
    let registry = Mutex::new(());
    let held = RegistryHeld(lock(&registry));
    let now = Utc::now();
    let first = s.regroup(&held, now);
    assert!(first.left.is_none());
    let (key, _) = first.joined.expect("a job that fires joins a group");
    assert!(s.info(true).next_run_at.is_some());
    let again = s.regroup(&held, now);
    assert!(again.left.is_none() && again.joined.is_none());
    // Disabled by configuration and not paused: in no group, no next fire time.
    s.apply(RuntimeSettings::default());
    let s2 = slot(false);
    let out = s2.regroup(&held, now);
    assert!(out.left.is_none() && out.joined.is_none());
    s.apply(RuntimeSettings {
        schedule: Some("*/5 * * * * *".into()),
        ..Default::default()
    });
    let moved = s.regroup(&held, now);
    assert_eq!(moved.left, Some(key));
    assert_eq!(moved.joined.unwrap().0.0, "*/5 * * * * *");
}

#[test]
fn one_run_at_a_time() {
    let s = slot(true);
    let running = s.start_running().expect("idle");
    assert!(s.is_running() && s.start_running().is_none());
    drop(running);
    assert!(!s.is_running() && s.start_running().is_some());
}

#[test]
fn a_newer_tick_replaces_one_not_taken() {
    let s = slot(true);
    let at = |secs| DateTime::from_timestamp(secs, 0).unwrap();
    s.hand(Due {
        tick: at(1),
        retry_until: None,
    });
    s.hand(Due {
        tick: at(2),
        retry_until: None,
    });
    assert_eq!(s.take_due().map(|d| d.tick), Some(at(2)));
    assert!(s.take_due().is_none());
    assert!(s.mark_runner_started() && !s.mark_runner_started());
}
