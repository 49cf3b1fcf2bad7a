//! The execution history the `history` and `health` benches query: `rows` finished runs of
//! [`JOBS`] jobs (`job_00` ..), one a second up to now, about 2% failed, in a table our
//! migrations created.
//!
//! The database writes the rows itself (nothing but the statements travels over the
//! connection), from statements built with sea-query: a table of the numbers 0..999 is
//! cross-joined with itself into the run numbers, each run's failure is drawn once into a
//! work table (so the columns that depend on it agree), and one `INSERT .. SELECT` joins the
//! runs with the job names. The work tables are dropped again.

use barycenter_jobs_core::sea_query::{
    Alias, Asterisk, ColumnDef, Expr, ExprTrait as _, Func, Iden, IntoIden, Order, Query, Table,
    TableRef,
};
use barycenter_jobs_core::{Backend, Database};

/// Jobs the runs are spread over, in turn.
pub const JOBS: i64 = 20;

/// The columns a history row is written with (all but `id`), as our migrations name them
/// (the core's column enum is private to it).
const COLUMNS: &str = "job_name, started_at, completed_at, success, error_message, records_processed, status, trigger_kind, instance, duration_ms, scheduled_for";

fn columns() -> impl Iterator<Item = Alias> {
    COLUMNS.split(", ").map(Alias::new)
}

/// Work table: the numbers 0..999.
#[derive(Iden, Clone, Copy)]
#[iden = "bench_digits"]
enum Digits {
    Table,
    D,
}

/// Work table: job number and name.
#[derive(Iden, Clone, Copy)]
#[iden = "bench_jobs"]
enum Jobs {
    Table,
    N,
    Name,
}

/// Work table: run number and whether that run failed (1) or not (0).
#[derive(Iden, Clone, Copy)]
#[iden = "bench_runs"]
enum Runs {
    Table,
    I,
    Failed,
}

/// The name of the `i`-th job.
pub fn job_name(i: i64) -> String {
    format!("job_{:02}", i.rem_euclid(JOBS))
}

/// Fill `table` (a history table our migrations created) with `rows` runs.
///
/// # Panics
///
/// When a statement fails.
pub async fn fill(db: &Database, table: &str, rows: i64) {
    let base_ts = chrono::Utc::now().timestamp() - rows;
    work_tables(db, rows).await;
    let i = || Expr::col((Runs::Table, Runs::I));
    let failed = || Expr::col((Runs::Table, Runs::Failed)).eq(1);
    let select = Query::select()
        .expr(Expr::col((Jobs::Table, Jobs::Name)))
        .expr(i().add(base_ts))
        .expr(i().add(base_ts + 1))
        .expr(Expr::case(failed(), 0).finally(1))
        .expr(Expr::case(failed(), "boom").finally(Option::<String>::None))
        .expr(Expr::case(failed(), Option::<i64>::None).finally(i().modulo(100)))
        .expr(Expr::case(failed(), "failed").finally("succeeded"))
        .expr(Expr::val("scheduled"))
        .expr(Expr::val("bench"))
        .expr(Expr::val(5))
        .expr(i().add(base_ts))
        .from(Runs::Table)
        .inner_join(
            Jobs::Table,
            Expr::col((Jobs::Table, Jobs::N)).eq(i().modulo(JOBS)),
        )
        .order_by((Runs::Table, Runs::I), Order::Asc)
        .to_owned();
    let insert = Query::insert()
        .into_table(Alias::new(table))
        .columns(columns())
        .select_from(select)
        .expect("as many values as columns")
        .to_owned();
    db.execute(&insert).await.expect("fill the history");
    for work in [
        Runs::Table.to_string(),
        Jobs::Table.to_string(),
        Digits::Table.to_string(),
    ] {
        db.execute_schema(Table::drop().table(Alias::new(work)))
            .await
            .expect("drop a work table");
    }
}

/// Copy every row of history table `from` into `to`, in id order (the same runs under the
/// same ids).
///
/// # Panics
///
/// When the statement fails.
pub async fn copy(db: &Database, from: &str, to: &str) {
    let select = Query::select()
        .columns(columns())
        .from(Alias::new(from))
        .order_by(Alias::new("id"), Order::Asc)
        .to_owned();
    let insert = Query::insert()
        .into_table(Alias::new(to))
        .columns(columns())
        .select_from(select)
        .expect("as many values as columns")
        .to_owned();
    db.execute(&insert).await.expect("copy the history");
}

/// How many runs of history table `table` failed.
///
/// # Panics
///
/// When the query fails.
pub async fn failures(db: &Database, table: &str) -> i64 {
    let count = Query::select()
        .expr_as(Expr::col(Asterisk).count(), Alias::new("n"))
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new("success")).eq(0))
        .to_owned();
    db.fetch_optional(&count)
        .await
        .expect("count failures")
        .expect("one row")
        .i64("n")
        .expect("a count")
}

/// The work tables: digits, job names, and the `rows` runs with their failure drawn.
async fn work_tables(db: &Database, rows: i64) {
    db.execute_schema(
        Table::create()
            .table(Digits::Table)
            .col(int(Digits::D).primary_key()),
    )
    .await
    .expect("digits table");
    let mut digits = Query::insert();
    digits.into_table(Digits::Table).columns([Digits::D]);
    for d in 0..1000_i64 {
        digits.values_panic([d.into()]);
    }
    db.execute(&digits).await.expect("digits");

    db.execute_schema(
        Table::create()
            .table(Jobs::Table)
            .col(int(Jobs::N).primary_key())
            .col(ColumnDef::new(Jobs::Name).text().not_null()),
    )
    .await
    .expect("jobs table");
    let mut jobs = Query::insert();
    jobs.into_table(Jobs::Table).columns([Jobs::N, Jobs::Name]);
    for n in 0..JOBS {
        jobs.values_panic([n.into(), job_name(n).into()]);
    }
    db.execute(&jobs).await.expect("jobs");

    db.execute_schema(
        Table::create()
            .table(Runs::Table)
            .col(int(Runs::I).primary_key())
            .col(int(Runs::Failed)),
    )
    .await
    .expect("runs table");
    // Run number i = d0 + 1000 d1 + 1000² d2 ..., over as many copies of the digits as
    // `rows` needs.
    let mut select = Query::select();
    let mut number: Option<Expr> = None;
    let mut scale = 1_i64;
    let mut copy = 0;
    while copy == 0 || scale < rows {
        let alias = Alias::new(format!("d{copy}"));
        if copy == 0 {
            select.from_as(Digits::Table, alias.clone());
        } else {
            select.cross_join(TableRef::from(Digits::Table).alias(alias.clone()));
        }
        let digit = Expr::col((alias, Digits::D)).mul(scale);
        number = Some(match number {
            None => digit,
            Some(n) => n.add(digit),
        });
        scale = scale.saturating_mul(1000);
        copy += 1;
    }
    let number = number.expect("at least one copy");
    select
        .expr(number.clone())
        .expr(failure(db.backend()))
        .and_where(number.lt(rows));
    let mut runs = Query::insert();
    runs.into_table(Runs::Table)
        .columns([Runs::I, Runs::Failed])
        .select_from(select)
        .expect("two values, two columns");
    db.execute(&runs).await.expect("runs");
}

/// A `BIGINT NOT NULL` column.
fn int(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}

/// 1 for about one run in 50, drawn at random, else 0.
fn failure(backend: Backend) -> Expr {
    match backend {
        // random() is a signed 64-bit integer.
        Backend::Sqlite => Expr::case(Func::abs(Func::random()).modulo(50).eq(0), 1)
            .finally(0)
            .into(),
        // random() is a float in [0, 1).
        _ => Expr::case(Expr::expr(Func::random()).lt(0.02), 1)
            .finally(0)
            .into(),
    }
}
