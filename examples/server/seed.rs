//! Demo data of the example server: the four host tables in Barycenter's layout, with a few
//! expired and live rows in each, so a fresh server has something to clean up.

use barycenter_jobs::Database;
use barycenter_jobs::sea_query::{
    Alias, ColumnDef, Expr, Index, Query, Table, TableCreateStatement, Value,
};
use chrono::Utc;

/// SQL NULL, for a row's nullable text column.
const NULL: Value = Value::String(None);

/// A [`Row`] from values of any type a column takes.
macro_rules! row {
    ($($value:expr),* $(,)?) => {
        vec![$(Value::from($value)),*]
    };
}

/// Create the four host tables in Barycenter's layout where missing, and put demo rows into
/// the ones created now (never into existing tables).
pub async fn demo_data(db: &Database) -> Result<(), Box<dyn std::error::Error>> {
    for (table, columns, indexed, rows) in tables(Utc::now().timestamp()) {
        let names: Vec<String> = columns.iter().map(ColumnDef::get_column_name).collect();
        let mut create = Table::create();
        create.table(table);
        for mut c in columns {
            create.col(&mut c);
        }
        if !created_now(db, &mut create).await? {
            continue;
        }
        for col in indexed {
            db.execute_schema(
                Index::create()
                    .name(format!("idx_{table}_{col}"))
                    .table(table)
                    .col(col),
            )
            .await?;
        }
        for values in rows {
            db.execute(
                Query::insert()
                    .into_table(table)
                    .columns(names.iter().map(|n| Alias::new(n.as_str())))
                    .values_panic(values.into_iter().map(Expr::val)),
            )
            .await?;
        }
        println!("created demo table {table}");
    }
    Ok(())
}

/// The four tables in Barycenter's layout, with their demo rows around `now` (epoch seconds).
// Kept as a table: one row per line, its values in the order of the columns.
#[rustfmt::skip]
fn tables(now: i64) -> [DemoTable; 4] {
    let (h, d) = (3600, 86_400);
    let key = |name: &'static str| {
        ColumnDef::new(name)
            .string_len(255)
            .not_null()
            .primary_key()
            .to_owned()
    };
    let text = |name: &'static str| ColumnDef::new(name).string_len(255).null().to_owned();
    let time = |name: &'static str| ColumnDef::new(name).big_integer().not_null().to_owned();

    let sessions: DemoTable = (
        "sessions",
        vec![
            key("session_id"),
            text("subject"),
            time("auth_time"),
            time("created_at"),
            time("expires_at"),
        ],
        vec!["expires_at"],
        vec![
            row!["demo-session-expired-1", "alice", now - 2 * d, now - 2 * d, now - d],
            row!["demo-session-expired-2", "bob", now - 3 * h, now - 3 * h, now - h],
            row!["demo-session-live", "alice", now, now, now + d],
        ],
    );
    let refresh_tokens: DemoTable = (
        "refresh_tokens",
        vec![
            key("token"),
            text("client_id"),
            text("subject"),
            time("created_at"),
            time("expires_at"),
            ColumnDef::new("revoked")
                .integer()
                .not_null()
                .default(0)
                .to_owned(),
            text("parent_token"),
        ],
        vec!["expires_at", "parent_token"],
        vec![
            row!["demo-rt-expired", "demo-app", "alice", now - 40 * d, now - 10 * d, 0, NULL],
            row!["demo-rt-rotated", "demo-app", "bob", now - 2 * d, now + 28 * d, 1, NULL],
            row!["demo-rt-current", "demo-app", "bob", now - d, now + 29 * d, 0, "demo-rt-rotated"],
        ],
    );
    let challenges: DemoTable = (
        "webauthn_challenges",
        vec![
            key("challenge"),
            text("user_id"),
            text("challenge_type"),
            time("created_at"),
            time("expires_at"),
        ],
        vec!["created_at", "expires_at"],
        vec![
            row!["demo-challenge-stale", "alice", "authentication", now - h, now - h + 300],
            row!["demo-challenge-fresh", "bob", "registration", now, now + 300],
        ],
    );
    let device_codes: DemoTable = (
        "device_codes",
        vec![
            key("device_code"),
            text("user_code"),
            text("client_id"),
            time("created_at"),
            time("expires_at"),
        ],
        vec!["expires_at"],
        vec![
            row!["demo-device-expired", "WDJB-MJHT", "demo-tv", now - h, now - h + 600],
            row!["demo-device-live", "KXQP-RTNV", "demo-tv", now, now + 600],
        ],
    );
    [sessions, refresh_tokens, challenges, device_codes]
}

/// A demo table: name, columns, indexed columns, rows.
type DemoTable = (&'static str, Vec<ColumnDef>, Vec<&'static str>, Vec<Row>);
/// A demo row: one value per column, in the table's column order.
type Row = Vec<Value>;

/// Run `create`, and say whether it created the table. A plain `CREATE TABLE` succeeds only
/// when the table is new, so that is the test: no separate look-up, and no window between a
/// look-up and the creation in which another process could create the table first. When it
/// fails, the same statement with `IF NOT EXISTS` tells a table that exists (it succeeds)
/// from a real failure (it fails too, and that error is returned).
async fn created_now(
    db: &Database,
    create: &mut TableCreateStatement,
) -> Result<bool, barycenter_jobs::Error> {
    if db.execute_schema(create).await.is_ok() {
        return Ok(true);
    }
    db.execute_schema(create.if_not_exists()).await?;
    Ok(false)
}
