//! Property: a row that has not expired is never deleted, and every row that had expired when
//! the run started is gone — with random data, rows at the cut-off, NULLs, far-future values and
//! rows inserted while the job runs. Several fixed seeds, on every backend.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use barycenter_jobs_builtin::{Batching, SessionsCleanup, SessionsConfig};
use barycenter_jobs_core::{Backend, Database, Job};
use barycenter_jobs_test_support::{TestDb, backend_tests};
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEEDS: [u64; 4] = [1, 7, 42, 2026];

/// An expiry drawn to hit every edge: well past, just past, exactly now, just ahead, far
/// ahead, and NULL.
fn expiry(rng: &mut StdRng) -> Option<i64> {
    match rng.random_range(0..10) {
        0 => None,
        1 => Some(NOW),
        2 => Some(NOW - 1),
        3 => Some(NOW + 1),
        4 => Some(rng.random_range(NOW + 1..253_402_300_799)), // up to year 9999
        5 => Some(rng.random_range(0..NOW)),
        6 | 7 => Some(rng.random_range(NOW - 86_400..NOW)),
        _ => Some(rng.random_range(NOW..NOW + 86_400)),
    }
}

fn expired(e: Option<i64>) -> bool {
    matches!(e, Some(e) if e < NOW)
}

async fn insert_rows(t: &TestDb, table: &str, rows: &[(String, Option<i64>)]) {
    insert_rows_on(&t.db, table, rows).await;
}

async fn insert_rows_on(db: &Database, table: &str, rows: &[(String, Option<i64>)]) {
    let rows = rows
        .iter()
        .map(|(k, e)| vec![s(k), s("subject"), i(0), e.map(i).unwrap_or_else(null_i64)])
        .collect();
    insert_many(
        db,
        table,
        &["session_id", "subject", "created_at", "expires_at"],
        rows,
    )
    .await;
}

async fn only_expired_rows_are_deleted(t: &TestDb) {
    let (key, time) = match t.backend() {
        Backend::Sqlite => ("TEXT", "INTEGER"),
        Backend::Postgres => ("TEXT", "BIGINT"),
        _ => ("VARCHAR(255)", "BIGINT"),
    };
    for seed in SEEDS {
        let table = format!("sessions_{seed}");
        raw(
            &t.db,
            &format!(
                "CREATE TABLE {table} (session_id {key} PRIMARY KEY, subject TEXT NOT NULL,
                 created_at {time} NOT NULL, expires_at {time});
                 CREATE INDEX idx_{table}_expires ON {table}(expires_at);"
            ),
        )
        .await;
        let mut rng = StdRng::seed_from_u64(seed);
        let initial: Vec<(String, Option<i64>)> = (0..rng.random_range(300..900))
            .map(|n| (format!("r{seed}_{n}"), expiry(&mut rng)))
            .collect();
        insert_rows(t, &table, &initial).await;

        // Small batches so the run spans many statements, with writes in between.
        let mut batching = Batching::default();
        batching.initial_batch_size = rng.random_range(1..20);
        batching.min_batch_size = 1;
        batching.max_batch_size = 40;
        batching.pause_ms = 1;
        let mut config = SessionsConfig::default();
        config.table = table.clone();
        let job = SessionsCleanup::new(&config)
            .unwrap()
            .with_batching(&batching);

        let done = Arc::new(AtomicBool::new(false));
        let writer = {
            let done = done.clone();
            let db = t.another_pool().await;
            let table = table.clone();
            let mut rng = StdRng::seed_from_u64(seed ^ 0xdead_beef);
            tokio::spawn(async move {
                let mut written = Vec::new();
                let mut n = 0;
                while !done.load(Ordering::Relaxed) || n < 20 {
                    let row = (format!("w{seed}_{n}"), expiry(&mut rng));
                    insert_rows_on(&db, &table, std::slice::from_ref(&row)).await;
                    written.push(row);
                    n += 1;
                    tokio::task::yield_now().await;
                }
                db.close().await;
                written
            })
        };
        let out = job.run(ctx(&t.db)).await.unwrap();
        done.store(true, Ordering::Relaxed);
        let written = writer.await.unwrap();

        let left = keys(&t.db, &table, "session_id").await;
        let all: BTreeMap<&str, Option<i64>> = initial
            .iter()
            .chain(&written)
            .map(|(k, e)| (k.as_str(), *e))
            .collect();
        // Every row that had not expired is still there.
        for (k, e) in &all {
            if !expired(*e) {
                assert!(left.contains(*k), "seed {seed}: {k} ({e:?}) was deleted");
            }
        }
        // Every row that had expired when the run started is gone.
        for (k, e) in &initial {
            if expired(*e) {
                assert!(!left.contains(k), "seed {seed}: {k} ({e:?}) was kept");
            }
        }
        // Whatever is left and expired was written while the job ran.
        let initial_keys: BTreeSet<&str> = initial.iter().map(|(k, _)| k.as_str()).collect();
        for k in &left {
            if expired(all[k.as_str()]) {
                assert!(!initial_keys.contains(k.as_str()), "seed {seed}: {k}");
            }
        }
        // records_processed is exactly the number of rows that disappeared.
        assert_eq!(
            out.records_processed as usize,
            all.len() - left.len(),
            "seed {seed}"
        );
        assert!(out.records_processed > 0, "seed {seed}");
        assert!(written.len() >= 20, "seed {seed}");
    }
}

backend_tests!(only_expired_rows_are_deleted);
