//! What the store-backed fields of one request read, read once, and the share of the pool
//! the admin reads run under.
//!
//! A GraphQL request may name a store-backed field (`lastSuccessAt`, `overdue`,
//! `lastExecution`, `health`, ...) once per job per alias, and a batch repeats that per
//! operation: read naively, one request of 16 operations with 70 aliases each cost about
//! 15,000 statements. [`Loads`] lives in the data of one request (one [`Loads`] is shared by
//! every operation of a batch): the fleet's health is read with one statement the first time
//! a field needs it, and the newest run of a job with one statement per job named, so a
//! request costs a bounded number of statements whatever its aliases. A failed read is
//! remembered too (and logged once), so a broken store is not asked again per alias.
//!
//! A mutation changes what those reads saw, so each one calls [`Loads::invalidate`]: fields
//! resolved after it (its own `job { ... }` selection, the next mutation's) read again.
//!
//! [`ReadShare`] bounds how many admin statements are in flight at once, so that admin
//! traffic can never take every connection of the pool the scheduler renews its leases with.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_graphql::Context;
use barycenter_jobs_core::{Execution, FleetHealth, LogLine, Replica};
use tokio::sync::{OnceCell, Semaphore};

use super::{INTERNAL_ERROR, JobsContext};

/// A read that failed; the cause was logged when it happened.
#[derive(Debug, Clone, Copy)]
struct Failed;

type Cell<T> = Arc<OnceCell<Result<T, Failed>>>;

/// What one generation of reads saw: from the request's start, or from its last mutation.
#[derive(Default)]
struct Generation {
    health: Cell<Arc<FleetHealth>>,
    latest: Mutex<HashMap<String, Cell<Option<Arc<Execution>>>>>,
    fleet: Cell<Arc<Vec<Replica>>>,
    logs: Mutex<HashMap<i64, Cell<Arc<Vec<LogLine>>>>>,
}

/// Read `cell` once with `read`; a failure is logged once (as `what`) and remembered.
async fn once<T: Clone, E: std::fmt::Display>(
    cell: Cell<T>,
    state: &JobsContext,
    what: &'static str,
    read: impl Future<Output = Result<T, E>>,
) -> async_graphql::Result<T> {
    cell.get_or_init(|| async {
        state.reads.run(read).await.map_err(|e| {
            tracing::error!(error = %e, "admin GraphQL request could not read {what}");
            Failed
        })
    })
    .await
    .clone()
    .map_err(internal)
}

/// The store reads of one request (a batch included), each made at most once. Cheap to
/// clone; clones share the reads.
#[derive(Clone, Default)]
pub(crate) struct Loads {
    current: Arc<Mutex<Arc<Generation>>>,
}

fn internal(_: Failed) -> async_graphql::Error {
    async_graphql::Error::new(INTERNAL_ERROR)
}

/// The lock's value even if a thread panicked while holding it: the maps stay consistent
/// (every write is a single insert), so a poisoned lock is safe to go on with.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Loads {
    /// The request's loads; a fresh, unshared set when the request has none (the
    /// [`JobsExtension`](super::JobsExtension) gives every request one, so this is a
    /// fallback only).
    pub(crate) fn of(ctx: &Context<'_>) -> Self {
        ctx.data_opt::<Loads>().cloned().unwrap_or_default()
    }

    fn generation(&self) -> Arc<Generation> {
        Arc::clone(&lock(&self.current))
    }

    /// Forget everything read so far: called after a mutation changed what it saw.
    pub(crate) fn invalidate(&self) {
        *lock(&self.current) = Arc::new(Generation::default());
    }

    /// The fleet's health, read once (one statement for every job).
    pub(crate) async fn health(
        &self,
        state: &JobsContext,
    ) -> async_graphql::Result<Arc<FleetHealth>> {
        let cell = Arc::clone(&self.generation().health);
        once(cell, state, "the fleet's health", async {
            state.handle.health().await.map(Arc::new)
        })
        .await
    }

    /// The fleet's schedulers, read once (one statement).
    pub(crate) async fn fleet(
        &self,
        state: &JobsContext,
    ) -> async_graphql::Result<Arc<Vec<Replica>>> {
        let cell = Arc::clone(&self.generation().fleet);
        once(cell, state, "the fleet", async {
            state.handle.fleet().await.map(Arc::new)
        })
        .await
    }

    /// The log of run `id`, read once per run (one indexed read).
    pub(crate) async fn run_log(
        &self,
        state: &JobsContext,
        id: i64,
    ) -> async_graphql::Result<Arc<Vec<LogLine>>> {
        let generation = self.generation();
        let cell = Arc::clone(lock(&generation.logs).entry(id).or_default());
        once(cell, state, "a run's log", async {
            state.handle.store().run_log(id).await.map(Arc::new)
        })
        .await
    }

    /// The newest recorded run of `job`, read once per job (one indexed probe).
    pub(crate) async fn latest(
        &self,
        state: &JobsContext,
        job: &str,
    ) -> async_graphql::Result<Option<Arc<Execution>>> {
        let generation = self.generation();
        let cell = Arc::clone(lock(&generation.latest).entry(job.to_owned()).or_default());
        once(cell, state, "the last execution", async {
            state
                .handle
                .store()
                .latest(job)
                .await
                .map(|e| e.map(Arc::new))
        })
        .await
    }
}

/// The share of the pool admin reads run under: at most this many admin statements are in
/// flight at once, however many requests arrive; the others wait for a turn here rather than
/// in the pool's queue, where the scheduler's lease renewals would wait behind them.
#[derive(Clone, Debug)]
pub(crate) struct ReadShare {
    permits: Arc<Semaphore>,
    size: usize,
}

impl ReadShare {
    /// At most `size` (at least 1) reads at once.
    pub(crate) fn new(size: usize) -> Self {
        let size = size.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// A quarter of a pool of `max_connections` (at least one connection).
    pub(crate) fn for_pool(max_connections: u32) -> Self {
        Self::new(usize::try_from(max_connections / 4).unwrap_or(1))
    }

    /// How many reads run at once at most.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Run `read` once a turn is free.
    pub(crate) async fn run<F: Future>(&self, read: F) -> F::Output {
        // The semaphore is never closed; were it, the read would run without a turn rather
        // than fail.
        let _turn = self.permits.acquire().await.ok();
        read.await
    }
}
