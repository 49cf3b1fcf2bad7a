//! Runs' logs (`job_execution_logs` by default): the lines a run logged at `info` and above,
//! kept by the scheduler's capture (see `scheduler/run_log/`), written in one statement
//! at the run's end and purged with the history.

use chrono::{DateTime, Utc};
use sea_query::{Expr, ExprTrait, Order, Query};

use super::ExecutionStore;
use super::schema::ExecLog;
use crate::db::from_millis;
use crate::error::Result;

/// One line of a run's log (see [`ExecutionStore::run_log`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogLine {
    /// When it was logged (the scheduler's clock, to the millisecond).
    pub at: DateTime<Utc>,
    /// `ERROR`, `WARN` or `INFO`.
    pub level: String,
    /// The message, then ` key=value` for each of the event's other fields.
    pub message: String,
}

impl LogLine {
    /// A line logged `at`, at `level`.
    pub fn new(at: DateTime<Utc>, level: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            at,
            level: level.into(),
            message: message.into(),
        }
    }
}

impl ExecutionStore {
    /// The log of run `execution_id`, in the order it was logged: at most 200 lines, then
    /// one saying how many more were dropped. Empty for a run that logged nothing, a run
    /// still running (its log is written at its end) and a run purged or unknown.
    pub async fn run_log(&self, execution_id: i64) -> Result<Vec<LogLine>> {
        let q = Query::select()
            // Qualified, as the history's reads are.
            .columns(
                [ExecLog::AtMs, ExecLog::Level, ExecLog::Message]
                    .map(|col| (self.tables.logs.clone(), col)),
            )
            .from(self.tables.logs.clone())
            .and_where(Expr::col(ExecLog::ExecutionId).eq(execution_id))
            .order_by(ExecLog::Seq, Order::Asc)
            .to_owned();
        self.db
            .fetch_all(&q)
            .await?
            .iter()
            .map(|row| {
                Ok(LogLine {
                    at: from_millis(row.i64("at_ms")?),
                    level: row.opt_string("level")?.unwrap_or_default(),
                    message: row.opt_string("message")?.unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Write `lines` as run `execution_id`'s log, in one multi-row INSERT (a run keeps at
    /// most 201 lines: 1,005 bound values, within every backend's limit).
    pub(crate) async fn write_run_log(&self, execution_id: i64, lines: &[LogLine]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut insert = Query::insert()
            .into_table(self.tables.logs.clone())
            .columns([
                ExecLog::ExecutionId,
                ExecLog::Seq,
                ExecLog::AtMs,
                ExecLog::Level,
                ExecLog::Message,
            ])
            .to_owned();
        for (seq, line) in lines.iter().enumerate() {
            insert.values_panic([
                execution_id.into(),
                i64::try_from(seq).unwrap_or(i64::MAX).into(),
                line.at.timestamp_millis().into(),
                line.level.clone().into(),
                line.message.clone().into(),
            ]);
        }
        self.db.execute(&insert).await?;
        Ok(())
    }
}
