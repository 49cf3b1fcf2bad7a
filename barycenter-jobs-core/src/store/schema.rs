//! Column names of the tables this crate owns.

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
}

/// Columns of the migration bookkeeping table.
#[derive(Iden, Clone, Copy, Debug)]
pub(crate) enum Migrations {
    Scope,
    Version,
    Name,
    AppliedAt,
}
