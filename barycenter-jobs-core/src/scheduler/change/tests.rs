use super::*;

fn reschedule(schedule: &str, tz: &str, secs: u64) -> Change {
    Change::Reschedule(RescheduleRequest {
        schedule: Some(schedule.into()),
        time_zone: Some(tz.into()),
        timeout_secs: Some(secs),
    })
}

#[test]
fn normalized_once_then_stored_applied_and_described_alike() {
    let change = reschedule("  */5 * * * * * ", " UTC ", 30).normalized();
    let mut runtime = RuntimeSettings::default();
    change.apply_to(&mut runtime, "alice");
    assert_eq!(runtime.schedule.as_deref(), Some("*/5 * * * * *"));
    assert_eq!(runtime.time_zone.as_deref(), Some("UTC"));
    assert_eq!(runtime.timeout_secs, Some(30));
    assert_eq!(
        change.describe(),
        r#"schedule="*/5 * * * * *" time_zone="UTC" timeout_secs=30"#
    );
    assert_eq!(change.assignments("alice").len(), 3);
    assert!(!change.is_empty());
    assert!(Change::Reschedule(RescheduleRequest::default()).is_empty());
    assert_eq!(
        Change::Reschedule(RescheduleRequest::default()).describe(),
        "nothing to change"
    );
}

#[test]
fn reset_clears_every_override_and_keeps_the_row() {
    let mut runtime = RuntimeSettings {
        paused: Some(true),
        schedule: Some("* * * * * *".into()),
        ..Default::default()
    };
    Change::Reset.apply_to(&mut runtime, "alice");
    assert_eq!(runtime, RuntimeSettings::default());
    // Every column set to NULL: an UPDATE, not a DELETE.
    assert_eq!(Change::Reset.assignments("alice").len(), 17);
}

#[test]
fn a_pause_says_why_and_until_when_and_a_resume_forgets_it() {
    let now = Utc::now();
    let until = now + chrono::Duration::hours(2);
    let pause =
        Change::Pause(PauseRequest::new().note("  DB migration  ").until(until)).normalized();
    let mut runtime = RuntimeSettings::default();
    pause.apply_to(&mut runtime, "alice");
    assert_eq!(runtime.paused, Some(true));
    assert_eq!(runtime.pause_note.as_deref(), Some("DB migration"));
    assert_eq!(runtime.paused_until, Some(until));
    assert_eq!(runtime.paused_by.as_deref(), Some("alice"));
    assert!(pause.describe().ends_with(": \"DB migration\""));
    Change::Resume.apply_to(&mut runtime, "bob");
    assert_eq!(runtime.paused, Some(false));
    assert!(runtime.pause_note.is_none() && runtime.paused_until.is_none());
    assert!(runtime.paused_by.is_none());
    // An empty note is none.
    let blank = Change::Pause(PauseRequest::new().note("  ")).normalized();
    assert!(matches!(
        blank,
        Change::Pause(PauseRequest { note: None, .. })
    ));
}

#[test]
fn a_pause_ending_in_the_past_or_too_late_or_with_a_long_note_is_refused() {
    let now = Utc::now();
    let refused = |req: PauseRequest| match validate_pause(&req, now) {
        Err(Error::InvalidSetting { key, .. }) => key,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        refused(PauseRequest::new().until(now - chrono::Duration::seconds(1))),
        "until"
    );
    assert_eq!(refused(PauseRequest::new().until(now)), "until");
    assert_eq!(
        refused(PauseRequest::new().until(now + chrono::Duration::days(400))),
        "until"
    );
    assert_eq!(refused(PauseRequest::new().note("x".repeat(501))), "note");
    assert!(validate_pause(&PauseRequest::new().note("x".repeat(500)), now).is_ok());
    assert!(
        validate_pause(
            &PauseRequest::new().until(now + chrono::Duration::seconds(1)),
            now
        )
        .is_ok()
    );
}

#[test]
fn a_policy_change_writes_and_describes_only_what_it_sets() {
    let change = Change::Policy(
        PolicyRequest::new()
            .misfire(crate::scheduler::MisfirePolicy::RunAll)
            .jitter_secs(30),
    );
    assert_eq!(change.describe(), "misfire=run_all jitter_secs=30");
    assert_eq!(change.assignments("alice").len(), 2);
    let mut runtime = RuntimeSettings {
        pause_after_failures: Some(3),
        ..Default::default()
    };
    change.apply_to(&mut runtime, "alice");
    assert_eq!(runtime.jitter_secs, Some(30));
    assert_eq!(runtime.pause_after_failures, Some(3), "kept");
    assert!(Change::Policy(PolicyRequest::new()).is_empty());
}
