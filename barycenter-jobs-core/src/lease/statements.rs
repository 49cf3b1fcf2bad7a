//! The two statements that move a lease row: the claim (a conditional `UPDATE` that only
//! one replica's can match) and its inverse, the release.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::*;

impl LeaseStore {
    /// The claim statement of `job_name` for `holder`.
    pub(super) fn claim_statement(
        &self,
        job_name: &str,
        holder: &str,
        kind: ClaimKind,
        ttl: Duration,
    ) -> UpdateStatement {
        // `execution_id` first: MySQL evaluates the assignments in order, each seeing the
        // ones before it, and this one must see the previous holder. A lease released
        // cleanly has neither holder nor execution; anything else was left by a holder that
        // may have left a run open (see `Claimed::previous_unreleased`). The claim notes no
        // execution of its own: that is `set_execution`, once the run started.
        let unreleased = Cond::any()
            .add(Expr::col(Col::Holder).is_not_null())
            .add(Expr::col(Col::ExecutionId).is_not_null());
        let mut stmt = Query::update()
            .table(self.table.clone())
            .value(
                Col::ExecutionId,
                Expr::case(unreleased, UNRELEASED).finally(Expr::val(Option::<i64>::None)),
            )
            .value(Col::Holder, holder)
            .value(Col::Token, Expr::col(Col::Token).add(1))
            .value(Col::ExpiresAtMs, self.now_ms().add(ttl_ms(ttl)))
            .and_where(Expr::col(Col::JobName).eq(job_name))
            .to_owned();
        let free = Expr::col(Col::ExpiresAtMs).lte(self.now_ms());
        let no_retry = |stmt: &mut UpdateStatement| {
            stmt.value(Col::RetryTick, Expr::val(Option::<i64>::None))
                .value(Col::RetryAttempt, Expr::val(Option::<i64>::None))
                .value(Col::RetryDueMs, Expr::val(Option::<i64>::None))
                .value(Col::RetryUntilMs, Expr::val(Option::<i64>::None));
        };
        if let ClaimKind::Backfill(tick) = kind {
            stmt.value(Col::BackfillTick, tick.timestamp())
                .and_where(free)
                .cond_where(
                    Cond::any()
                        .add(Expr::col(Col::BackfillTick).is_null())
                        .add(Expr::col(Col::BackfillTick).lt(tick.timestamp())),
                );
            return stmt;
        }
        if let ClaimKind::Retry { tick, attempt } = kind {
            // That very retry, still waiting: taken once, then gone from the row.
            no_retry(&mut stmt);
            stmt.and_where(free)
                .and_where(Expr::col(Col::RetryTick).eq(tick.timestamp()))
                .and_where(Expr::col(Col::RetryAttempt).eq(i64::from(attempt)));
            return stmt;
        }
        match kind.tick() {
            None => {
                stmt.and_where(free);
            }
            Some(tick) => {
                // A newer tick wins over a retry of an older one still waiting.
                no_retry(&mut stmt);
                let fresh = Cond::all()
                    .add(free)
                    .add(Expr::col(Col::LastTick).lt(tick.timestamp()))
                    // Not before the database's clock says the tick is due: a replica whose
                    // clock runs ahead cannot take (and so run early) a tick of the future.
                    .add(
                        Expr::val(tick.timestamp_millis())
                            .lte(self.now_ms().add(TICK_TOLERANCE_MS)),
                    );
                // Our own claim of this very tick whose answer was lost (the connection
                // broke after the commit) and whose run never started: take it again
                // rather than lose the tick until the lease lapses.
                let ours = Cond::all()
                    .add(Expr::col(Col::Holder).eq(holder))
                    .add(Expr::col(Col::LastTick).eq(tick.timestamp()))
                    .add(
                        Cond::any()
                            .add(Expr::col(Col::ExecutionId).is_null())
                            .add(Expr::col(Col::ExecutionId).eq(UNRELEASED)),
                    );
                stmt.value(Col::LastTick, tick.timestamp())
                    .cond_where(Cond::any().add(fresh).add(ours));
            }
        }
        stmt
    }

    /// Release the lease and, when `tick` is given, make that tick claimable again (the
    /// run of a claimed tick could not start).
    ///
    /// `clean`: the run this lease was taken for left no open row (its end is recorded, or
    /// it never wrote a start), so the next holder need not look for one. Otherwise the row
    /// keeps its execution (or [`UNRELEASED`]) and the next claim reports
    /// `previous_unreleased`.
    pub(super) fn unclaim_statement(
        &self,
        job_name: &str,
        holder: &str,
        token: Option<i64>,
        tick: Option<DateTime<Utc>>,
        clean: bool,
    ) -> UpdateStatement {
        let execution: Expr = if clean {
            Expr::val(Option::<i64>::None)
        } else {
            Expr::col(Col::ExecutionId).if_null(UNRELEASED)
        };
        let mut stmt = Query::update()
            .table(self.table.clone())
            .value(Col::ExecutionId, execution)
            .value(Col::ExpiresAtMs, 0i64)
            .value(Col::Holder, Option::<String>::None)
            // A cancel asked of this run is moot once it is over.
            .value(Col::CancelToken, Expr::val(Option::<i64>::None))
            .value(Col::CancelBy, Expr::val(Option::<String>::None))
            .and_where(Expr::col(Col::JobName).eq(job_name))
            .and_where(Expr::col(Col::Holder).eq(holder))
            .to_owned();
        if let Some(token) = token {
            stmt.and_where(Expr::col(Col::Token).eq(token));
        }
        if let Some(tick) = tick {
            // One second before the tick: this tick is claimable again, earlier ones are not.
            stmt.value(Col::LastTick, tick.timestamp() - 1)
                .and_where(Expr::col(Col::LastTick).eq(tick.timestamp()));
        }
        stmt
    }
}
