//! Column names of the tables this crate owns, and the reserved key of the settings table's
//! version row: the identifiers the migrations create and the stores read and write.

use sea_query::Iden;

/// Columns of the execution history table (`job_executions` by default). The first seven are
/// Barycenter's; the rest were added by our migrations as nullable columns.
#[derive(Iden, Clone, Copy, Debug)]
pub(crate) enum Exec {
    Id,
    JobName,
    StartedAt,
    CompletedAt,
    Success,
    ErrorMessage,
    RecordsProcessed,
    Status,
    TriggerKind,
    Instance,
    DurationMs,
    ScheduledFor,
    // Which attempt at its tick a run is (migration 12).
    Attempt,
}

/// Columns of the lease table (`job_leases` by default).
#[derive(Iden, Clone, Copy, Debug)]
pub(crate) enum Lease {
    JobName,
    Holder,
    Token,
    ExpiresAtMs,
    LastTick,
    ExecutionId,
    // A retry waiting for its time (migration 11): the tick, the attempt, when it is due.
    RetryTick,
    RetryAttempt,
    RetryDueMs,
    // Run controls (migration 14): the latest start of the waiting retry; a tick buffered
    // while the job ran (`overlap = buffer_one`); the newest backfill tick claimed; a cancel
    // asked of the run holding the lease (its token, and who asked).
    RetryUntilMs,
    BufferedTick,
    BackfillTick,
    CancelToken,
    CancelBy,
}

/// Columns of the migration bookkeeping table.
#[derive(Iden, Clone, Copy, Debug)]
pub(crate) enum Migrations {
    Scope,
    Version,
    Name,
    AppliedAt,
}

/// Columns of the runtime-settings table (`job_settings` by default): one row per job with
/// an operator's overrides, plus the version row (see [`crate::settings`]).
#[derive(Iden, Clone, Copy, Debug)]
pub(crate) enum Settings {
    JobName,
    Paused,
    Schedule,
    TimeZone,
    TimeoutSecs,
    ChangedBy,
    ChangedAtMs,
    Revision,
    // Scheduling policies and the pause's note and end (migration 9).
    Misfire,
    CatchUpWindowSecs,
    JitterSecs,
    PauseAfterFailures,
    PauseNote,
    PausedUntilMs,
    PausedBy,
    // Retries (migration 10).
    RetryAttempts,
    RetryBackoffSecs,
    // The overlap policy and a backfill in progress (migration 13): its range in epoch
    // seconds, and who asked.
    Overlap,
    BackfillFrom,
    BackfillTo,
    BackfillBy,
}

/// Columns of the fleet table (`job_fleet` by default): one row per running scheduler,
/// refreshed while it runs, removed at a clean shutdown.
#[derive(Iden, Clone, Copy, Debug)]
pub(crate) enum Fleet {
    Holder,
    Instance,
    Host,
    Pid,
    Version,
    StartedAtMs,
    LastSeenMs,
    ClockSkewMs,
    Running,
}

/// The job name of the settings table's version row; not a valid job name, so it never
/// meets a job's row.
pub(crate) const VERSION_ROW: &str = "*";

/// Columns of the audit table (`job_audit` by default).
#[derive(Iden, Clone, Copy, Debug)]
pub(crate) enum Audit {
    Id,
    AtMs,
    Actor,
    Action,
    JobName,
    Detail,
}

/// Columns of the job registry (`job_registry` by default): when each job was first seen
/// by this database (epoch seconds), so that ticks before it never make the job overdue.
#[derive(Iden, Clone, Copy, Debug)]
pub(crate) enum JobRegistry {
    JobName,
    FirstSeenAt,
}

/// Columns of the runs' logs (`job_execution_logs` by default, migration 16): one row per
/// line, `seq` its place in its run's log, `at_ms` when it was logged (epoch milliseconds).
#[derive(Iden, Clone, Copy, Debug)]
pub(crate) enum ExecLog {
    Id,
    ExecutionId,
    Seq,
    AtMs,
    Level,
    Message,
}

/// Columns of the alert deliveries table (`job_alerts` by default; migration 17): one row per
/// alert event, keyed by a key every replica computes alike, so the fleet delivers it once
/// (see [`crate::alert`]).
#[derive(Iden, Clone, Copy, Debug)]
pub(crate) enum Alerts {
    AlertKey,
    Event,
    JobName,
    Payload,
    State,
    Attempts,
    CreatedMs,
    NextAttemptMs,
    ClaimedBy,
    ClaimedUntilMs,
    DeliveredAtMs,
    LastError,
}
