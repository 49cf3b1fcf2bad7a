//! Read-only fields: jobs and their history.

use async_graphql::{Context, ID, Object};
use barycenter_jobs_core::ExecutionQuery;

use super::types::{Job, JobExecution};
use super::{AdminState, MAX_LIST_LIMIT, internal_error};

/// The query root. Built by [`builder`](super::builder), which supplies its data.
#[derive(Debug)]
pub struct QueryRoot {
    _private: (),
}

impl QueryRoot {
    pub(crate) fn new() -> Self {
        Self { _private: () }
    }
}

/// Jobs and their execution history.
#[Object]
impl QueryRoot {
    /// Every registered job, sorted by name.
    async fn available_jobs(&self, ctx: &Context<'_>) -> Vec<Job> {
        let state = ctx.data_unchecked::<AdminState>();
        state.handle.jobs().into_iter().map(Job).collect()
    }

    /// One job by name; null when no job has that name.
    async fn job(&self, ctx: &Context<'_>, name: String) -> Option<Job> {
        let state = ctx.data_unchecked::<AdminState>();
        state.handle.job(&name).map(Job)
    }

    /// Recorded runs, newest first: of one job when `jobName` is given, failures only when
    /// `onlyFailures` is true, at most `limit` (1 to 1000) of them.
    async fn job_logs(
        &self,
        ctx: &Context<'_>,
        job_name: Option<String>,
        #[graphql(default = 100)] limit: i32,
        #[graphql(default = false)] only_failures: bool,
    ) -> async_graphql::Result<Vec<JobExecution>> {
        let limit = u32::try_from(limit)
            .ok()
            .filter(|l| (1..=MAX_LIST_LIMIT).contains(l))
            .ok_or_else(|| {
                async_graphql::Error::new(format!(
                    "limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}"
                ))
            })?;
        let mut query = ExecutionQuery::new().limit(limit);
        if let Some(name) = job_name {
            query = query.job(name);
        }
        if only_failures {
            query = query.failures();
        }
        let state = ctx.data_unchecked::<AdminState>();
        let rows = state
            .handle
            .store()
            .list(&query)
            .await
            .map_err(|e| internal_error("jobLogs", e))?;
        Ok(rows.into_iter().map(JobExecution).collect())
    }

    /// One run by id; null when there is no such run.
    async fn job_execution(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<JobExecution>> {
        let Ok(id) = id.parse::<i64>() else {
            return Err(async_graphql::Error::new(format!(
                "invalid execution id {:?}: expected a decimal integer",
                id.as_str()
            )));
        };
        let state = ctx.data_unchecked::<AdminState>();
        state
            .handle
            .store()
            .get(id)
            .await
            .map(|e| e.map(JobExecution))
            .map_err(|e| internal_error("jobExecution", e))
    }
}
