//! Registry: inventory plus explicit registration, validated when built.

mod common;

use barycenter_jobs_core::{Error, Registry, register_job};
use common::{RunLog, ScriptedJob, logging_job};

struct Submitted;

#[barycenter_jobs_core::async_trait]
impl barycenter_jobs_core::Job for Submitted {
    fn name(&self) -> &str {
        "inventory_submitted_job"
    }
    fn description(&self) -> &str {
        "Submitted with inventory"
    }
    fn schedule(&self) -> &str {
        "0 15 * * * *"
    }
    async fn run(
        &self,
        _ctx: barycenter_jobs_core::JobContext,
    ) -> Result<barycenter_jobs_core::JobOutput, barycenter_jobs_core::JobError> {
        Ok(barycenter_jobs_core::JobOutput::processed(0))
    }
}

register_job!(Submitted);

#[test]
fn inventory_jobs_are_found() {
    let registry = Registry::from_inventory().unwrap();
    let job = registry
        .get("inventory_submitted_job")
        .expect("submitted job registered");
    assert_eq!(job.description(), "Submitted with inventory");
    assert_eq!(job.default_schedule().describe(), "Hourly at :15");
    // Explicit registration alone does not see inventory.
    assert!(Registry::builder().build().unwrap().is_empty());
}

#[test]
fn explicit_and_inventory_jobs_are_sorted_by_name() {
    let log = RunLog::default();
    let registry = Registry::builder()
        .with_inventory()
        .register(logging_job("zz_last", "* * * * * *", &log, "", 0))
        .register(logging_job("aa_first", "*/5 * * * *", &log, "", 0))
        .build()
        .unwrap();
    let names: Vec<_> = registry.names().collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(names.contains(&"inventory_submitted_job"));
}

#[test]
fn duplicate_names_are_an_error_even_against_inventory() {
    let log = RunLog::default();
    let err = Registry::builder()
        .with_inventory()
        .register(logging_job(
            "inventory_submitted_job",
            "* * * * * *",
            &log,
            "",
            0,
        ))
        .build()
        .unwrap_err();
    assert!(matches!(&err, Error::DuplicateJob(n) if n == "inventory_submitted_job"));
    assert_eq!(
        err.to_string(),
        "duplicate job name \"inventory_submitted_job\""
    );
}

#[test]
fn invalid_cron_is_an_error_naming_the_expression() {
    let log = RunLog::default();
    for bad in ["* * *", "0 0 24 * * *", "@every 5s", "0 60 * * * *"] {
        let err = Registry::builder()
            .register(logging_job("bad", bad, &log, "", 0))
            .build()
            .unwrap_err();
        match err {
            Error::InvalidCron { expression, .. } => assert_eq!(expression, bad),
            other => panic!("{bad}: {other:?}"),
        }
    }
    // Five and six fields are both fine.
    Registry::builder()
        .register(logging_job("five", "*/5 * * * *", &log, "", 0))
        .register(logging_job("six", "30 */5 * * * *", &log, "", 0))
        .build()
        .unwrap();
}

#[test]
fn invalid_names_are_an_error() {
    for bad in ["", "has space", "semi;colon", &"x".repeat(129)] {
        let job = ScriptedJob::new(bad, "* * * * * *", |_ctx| async {
            Ok(barycenter_jobs_core::JobOutput::default())
        });
        assert!(matches!(
            Registry::builder().register(job).build(),
            Err(Error::InvalidJobName(_))
        ));
    }
}

#[test]
fn replace_swaps_a_registered_job_and_refuses_unknown_names() {
    let log = RunLog::default();
    let registry = Registry::builder()
        .with_inventory()
        .replace(logging_job(
            "inventory_submitted_job",
            "0 0 * * * *",
            &log,
            "",
            0,
        ))
        .build()
        .unwrap();
    let job = registry.get("inventory_submitted_job").unwrap();
    assert_eq!(job.description(), "scripted test job");
    assert_eq!(job.default_schedule().expression(), "0 0 * * * *");
    let err = Registry::builder()
        .replace(logging_job("not_there", "0 0 * * * *", &log, "", 0))
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::UnknownJob(n) if n == "not_there"));
}
