//! A quick side-by-side measurement on SQLite (WAL): the batched sessions cleanup against one
//! plain `DELETE FROM sessions WHERE expires_at < ?`, half of the rows expired, an index on
//! `expires_at`. Not a benchmark (see `benches/`), a sanity check of the design:
//!
//! ```sh
//! BARYCENTER_SPEED_ROWS=400000 cargo test --release -p barycenter-jobs-builtin \
//!     --test sqlite_speed -- --ignored --nocapture
//! ```

mod common;

use std::time::Instant;

use barycenter_jobs_builtin::{BatchedDelete, Batching};
use barycenter_jobs_core::sea_query::{Cond, Expr, ExprTrait, Query};
use barycenter_jobs_core::{Database, Identifier};
use common::*;

async fn fill(db: &Database, rows: u64, correlated: bool, sequential_keys: bool) {
    // Expiry either random with respect to insertion order, or growing with it (sessions
    // created in time order with one lifetime); half of the rows are expired either way.
    let expires = if correlated {
        format!("{} + x - {}", NOW, rows / 2)
    } else {
        format!("{} + (abs(random()) % {rows}) - {}", NOW, rows / 2)
    };
    let key = if sequential_keys {
        "printf('s%012d', x)"
    } else {
        "lower(hex(randomblob(16)))"
    };
    raw(
        db,
        &format!(
            "CREATE TABLE sessions (session_id TEXT PRIMARY KEY, subject TEXT NOT NULL,
                created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
             CREATE INDEX idx_sessions_expires ON sessions(expires_at);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows})
             INSERT INTO sessions SELECT {key}, 'user-' || (x % 1000),
                 {NOW} - 3600, {expires} FROM c;
             PRAGMA wal_checkpoint(TRUNCATE);"
        ),
    )
    .await;
}

async fn open(dir: &std::path::Path, name: &str) -> Database {
    Database::connect(&format!("sqlite://{}", dir.join(name).display()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --ignored --nocapture, preferably --release"]
async fn batched_cleanup_vs_plain_delete() {
    let rows: u64 = std::env::var("BARYCENTER_SPEED_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400_000);
    let mut batching = Batching::default();
    if let Some(ms) = std::env::var("BARYCENTER_SPEED_TARGET_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        batching.target_statement_ms = Some(ms);
    }
    for (correlated, sequential_keys) in [(false, false), (true, false), (true, true)] {
        let dir = tempfile::tempdir().unwrap();
        let seed = open(dir.path(), "seed.db").await;
        fill(&seed, rows, correlated, sequential_keys).await;
        seed.close().await;
        for copy in ["plain.db", "batched.db"] {
            std::fs::copy(dir.path().join("seed.db"), dir.path().join(copy)).unwrap();
        }

        let plain_db = open(dir.path(), "plain.db").await;
        let table = Identifier::new("sessions").unwrap();
        let col = Identifier::new("expires_at").unwrap();
        let plain = Query::delete()
            .from_table(table.clone())
            .cond_where(Cond::all().add(Expr::col(col.clone()).lt(NOW)))
            .to_owned();
        let started = Instant::now();
        let plain_deleted = plain_db.execute(&plain).await.unwrap();
        let plain_time = started.elapsed();

        let batched_db = open(dir.path(), "batched.db").await;
        let delete = BatchedDelete::new(
            table.clone(),
            Identifier::new("session_id").unwrap(),
            col.clone(),
            Cond::all().add(Expr::col((table.clone(), col.clone())).lt(NOW)),
        )
        .with_batching(&batching);
        let started = Instant::now();
        let report = delete.run(&ctx(&batched_db)).await.unwrap();
        let batched_time = started.elapsed();

        assert_eq!(report.deleted, plain_deleted);
        println!(
            "rows={rows} expired={plain_deleted} expiry={} keys={} target_statement_ms={:?}: plain DELETE \
             {:.3}s, batched {:.3}s (ratio {:.2}), {} statements, longest {:.1} ms",
            if correlated {
                "insertion-order"
            } else {
                "random"
            },
            if sequential_keys {
                "sequential"
            } else {
                "random"
            },
            batching.target_statement_ms,
            plain_time.as_secs_f64(),
            batched_time.as_secs_f64(),
            batched_time.as_secs_f64() / plain_time.as_secs_f64(),
            report.statements,
            report.longest_statement.as_secs_f64() * 1e3,
        );
    }
}
