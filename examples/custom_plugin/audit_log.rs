//! A plugin job: delete audit-log entries older than 90 days, every night at 03:00 UTC.

use barycenter_jobs::sea_query::{ColumnDef, Expr, ExprTrait, Query, Table};
use barycenter_jobs::{Database, Job, JobContext, JobError, JobOutput, async_trait, register_job};

/// The job. Plugins are plain structs; keep configuration in fields if you need any.
pub struct PurgeOldAuditLog;

#[async_trait]
impl Job for PurgeOldAuditLog {
    fn name(&self) -> &str {
        "purge_old_audit_log"
    }

    fn description(&self) -> &str {
        "Delete audit log entries older than 90 days"
    }

    fn schedule(&self) -> &str {
        "0 0 3 * * *"
    }

    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        // Use the context's clock, not Utc::now(), so tests can move time.
        let cutoff = (ctx.now() - chrono::Duration::days(90)).timestamp();
        let deleted = ctx
            .db()
            .execute(
                Query::delete()
                    .from_table("audit_log")
                    .and_where(Expr::col("created_at").lt(cutoff)),
            )
            .await?;
        Ok(JobOutput::processed(deleted))
    }
}

// One line registers it with every `Registry::from_inventory()` in the binary.
register_job!(PurgeOldAuditLog);

/// The demo's host table, with one old and one recent entry.
pub async fn create_demo_table(db: &Database) -> Result<(), barycenter_jobs::Error> {
    db.execute_schema(
        Table::create()
            .table("audit_log")
            .if_not_exists()
            .col(
                ColumnDef::new("id")
                    .big_integer()
                    .not_null()
                    .auto_increment()
                    .primary_key(),
            )
            .col(ColumnDef::new("event").string_len(255).not_null())
            .col(ColumnDef::new("created_at").big_integer().not_null()),
    )
    .await?;
    let now = chrono::Utc::now().timestamp();
    db.execute(
        Query::insert()
            .into_table("audit_log")
            .columns(["event", "created_at"])
            .values_panic(["login".into(), (now - 200 * 86_400).into()])
            .values_panic(["logout".into(), now.into()]),
    )
    .await?;
    Ok(())
}
