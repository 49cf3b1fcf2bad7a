//! Configuration of an [`AdminService`]: its paths, limits, authorization and endpoints.
//! [`build`](AdminServiceBuilder::build) makes the schema and the endpoints and has
//! the [stack module](crate::service::stack) compose them with the layers.

mod auth;

use std::fmt;
use std::sync::Arc;

use barycenter_jobs_core::SchedulerHandle;

use crate::metrics::Metrics;
use crate::schema::ReadShare;
use crate::service::admin::{AdminService, Inner};
use crate::service::graphql::GraphQl;
use crate::service::layer::auth::Authorization;
use crate::service::route::dashboard::Dashboard;
use crate::service::route::health::Health;
use crate::service::route::metrics::MetricsEndpoint;
use crate::service::route::normalize;
use crate::service::route::playground::{GraphiQl, Playground};
use crate::service::stack::{self, Endpoints, Policy};

/// Default public path of the service.
pub const DEFAULT_MOUNT_PATH: &str = "/admin/jobs";
/// Default path of the GraphiQL page, relative to the mount path.
pub const DEFAULT_PLAYGROUND_PATH: &str = "/playground";
/// Default largest request body: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// Default query depth limit (the introspection query GraphiQL sends needs 14).
pub const DEFAULT_DEPTH_LIMIT: usize = 16;
/// Default query complexity limit (one point per field selected).
pub const DEFAULT_COMPLEXITY_LIMIT: usize = 500;
/// Default largest number of operations in one batch.
pub const DEFAULT_MAX_BATCH: usize = 16;
/// Default largest number of mutations one request runs, counted over a whole batch.
pub const DEFAULT_MAX_MUTATIONS: usize = 10;

/// Builds an [`AdminService`]; start with [`AdminService::builder`].
#[must_use]
pub struct AdminServiceBuilder {
    handle: SchedulerHandle,
    mount_path: String,
    playground_path: Option<String>,
    body_limit: usize,
    depth_limit: Option<usize>,
    complexity_limit: Option<usize>,
    introspection: bool,
    max_batch: usize,
    max_mutations: usize,
    auth: Authorization,
    metrics: Option<Metrics>,
    open_health: bool,
    open_metrics: bool,
    graphiql: GraphiQl,
    dashboard: bool,
    max_store_reads: Option<usize>,
}

impl fmt::Debug for AdminServiceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminServiceBuilder")
            .field("mount_path", &self.mount_path)
            .field("playground_path", &self.playground_path)
            .field("body_limit", &self.body_limit)
            .field("depth_limit", &self.depth_limit)
            .field("complexity_limit", &self.complexity_limit)
            .field("introspection", &self.introspection)
            .field("max_batch", &self.max_batch)
            .field("max_mutations", &self.max_mutations)
            .field("auth", &self.auth)
            .field("metrics", &self.metrics.is_some())
            .field("open_health", &self.open_health)
            .field("open_metrics", &self.open_metrics)
            .field("graphiql", &self.graphiql)
            .field("dashboard", &self.dashboard)
            .field("max_store_reads", &self.max_store_reads)
            .finish()
    }
}

impl AdminServiceBuilder {
    pub(crate) fn new(handle: SchedulerHandle) -> Self {
        Self {
            handle,
            mount_path: DEFAULT_MOUNT_PATH.to_owned(),
            playground_path: Some(DEFAULT_PLAYGROUND_PATH.to_owned()),
            body_limit: DEFAULT_BODY_LIMIT,
            depth_limit: Some(DEFAULT_DEPTH_LIMIT),
            complexity_limit: Some(DEFAULT_COMPLEXITY_LIMIT),
            introspection: true,
            max_batch: DEFAULT_MAX_BATCH,
            max_mutations: DEFAULT_MAX_MUTATIONS,
            auth: Authorization::default(),
            metrics: None,
            open_health: false,
            open_metrics: false,
            graphiql: GraphiQl::Off,
            dashboard: true,
            max_store_reads: None,
        }
    }

    /// The public path clients reach the service at (default `/admin/jobs`; `/` for the root).
    ///
    /// The GraphiQL page posts its queries there. A request whose path starts with it has it
    /// removed before routing, so the service works both served directly (it sees
    /// `/admin/jobs/playground`) and nested under a router that strips the prefix (axum's
    /// `nest_service("/admin/jobs", ..)` hands it `/playground`).
    pub fn mount_path(mut self, path: &str) -> Self {
        self.mount_path = normalize(path);
        self
    }

    /// Path of the GraphiQL page relative to the mount path (default `/playground`, that is
    /// `/admin/jobs/playground`). The page is served only once enabled with
    /// [`graphiql_from_cdn`](Self::graphiql_from_cdn) or
    /// [`graphiql_assets`](Self::graphiql_assets).
    pub fn playground_path(mut self, path: &str) -> Self {
        self.playground_path = Some(normalize(path)).filter(|p| !p.is_empty());
        self
    }

    /// Serve no GraphiQL page (its path then answers 404). This is the default; the call
    /// undoes [`graphiql_from_cdn`](Self::graphiql_from_cdn) or
    /// [`graphiql_assets`](Self::graphiql_assets).
    pub fn disable_playground(mut self) -> Self {
        self.graphiql = GraphiQl::Off;
        self
    }

    /// Serve the GraphiQL page on the playground path, loading React and GraphiQL from
    /// `unpkg.com` (and its icon from `graphql.org`) in the operator's browser. Off by
    /// default: a page that runs a CDN's scripts next to the admin token is the host's
    /// decision. The dashboard links to the page when it is served.
    pub fn graphiql_from_cdn(mut self) -> Self {
        self.graphiql = GraphiQl::Cdn;
        self
    }

    /// Serve the GraphiQL page on the playground path, loading its scripts and stylesheet
    /// from the host's own copies under `base_url` (a path such as `/static/graphiql` or a
    /// URL), laid out as on unpkg: `{base_url}/react@18/umd/react.development.js`,
    /// `{base_url}/react-dom@18/umd/react-dom.development.js`,
    /// `{base_url}/graphiql@4/graphiql.min.css` and `{base_url}/graphiql@4/graphiql.min.js`.
    pub fn graphiql_assets(mut self, base_url: &str) -> Self {
        self.graphiql = GraphiQl::Assets(base_url.trim_end_matches('/').to_owned());
        self
    }

    /// Serve no dashboard: `{base}/ui` then answers 404. It is served by default; see
    /// [the dashboard docs](crate::service#dashboard).
    pub fn disable_dashboard(mut self) -> Self {
        self.dashboard = false;
        self
    }

    /// Largest request body in bytes (default 1 MiB); larger bodies get 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Largest query depth (default 16); `None` removes the limit.
    pub fn limit_depth(mut self, depth: Option<usize>) -> Self {
        self.depth_limit = depth;
        self
    }

    /// Largest query complexity (default 500); `None` removes the limit. Each selected field
    /// counts one point, and a list with a row `limit` (`jobLogs`, `auditLog`) counts its
    /// fields plus one point per 10 rows of its limit, so 50 aliases of
    /// `jobLogs(limit: 1000)` (5,000 points and more) are refused while one passes.
    /// `availableJobs` counts its fields ten times
    /// ([`JOBS_COMPLEXITY_FACTOR`](crate::schema::JOBS_COMPLEXITY_FACTOR)), as a list of ten
    /// jobs would.
    pub fn limit_complexity(mut self, complexity: Option<usize>) -> Self {
        self.complexity_limit = complexity;
        self
    }

    /// Most store statements the service runs at once for its readers (GraphQL queries,
    /// `/health`, `/metrics`), however many requests arrive; the others wait for a turn in
    /// the service. Default: a quarter of the scheduler's pool
    /// ([`Database::max_connections`](barycenter_jobs_core::Database::max_connections)),
    /// at least one. Admin reads share the pool with the scheduler's lease renewals: without
    /// a bound, a flood of reads (or a few slow ones) can hold every connection, a running
    /// job's lease cannot be renewed, and the run is cancelled before its lease expires.
    /// Values below 1 count as 1; mutations are not counted (at most
    /// [`max_mutations`](Self::max_mutations) per request, operate role only).
    pub fn max_store_reads(mut self, reads: usize) -> Self {
        self.max_store_reads = Some(reads);
        self
    }

    /// Refuse introspection queries (and drop "did you mean" suggestions, which would reveal
    /// field names too).
    pub fn disable_introspection(mut self) -> Self {
        self.introspection = false;
        self
    }

    /// Largest number of operations in one batch (default 16); a larger batch gets 400.
    pub fn max_batch_size(mut self, operations: usize) -> Self {
        self.max_batch = operations.max(1);
        self
    }

    /// Largest number of mutations one request runs, counted over every operation of a
    /// batch and every alias (default 10). A request over it is refused with 400 before
    /// anything runs.
    pub fn max_mutations(mut self, mutations: usize) -> Self {
        self.max_mutations = mutations;
        self
    }

    /// The [`Metrics`] served on `{base}/metrics`. Optional: without it the service makes
    /// its own. Either way, [`build`](Self::build) attaches them to the scheduler as a run
    /// observer unless they are attached already, so the run and tick counters count with
    /// no second wiring. (Pass metrics you attached with
    /// [`SchedulerBuilder::observer`](barycenter_jobs_core::SchedulerBuilder::observer) to
    /// count from the scheduler's very first run, before the service is built.)
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Serve `{base}/health` without authorization, for load balancers and Kubernetes
    /// probes that carry no credentials. It reveals job names and their overdue state only.
    pub fn open_health(mut self) -> Self {
        self.open_health = true;
        self
    }

    /// Serve `{base}/metrics` without authorization, for Prometheus scrapes without
    /// credentials (prefer a `bearer_token`/`authorization` in the scrape config).
    pub fn open_metrics(mut self) -> Self {
        self.open_metrics = true;
        self
    }

    /// Build the schema and the service: its endpoints behind their layers, as the
    /// [architecture](crate::service#architecture) shows.
    pub fn build(self) -> AdminService {
        let handle = self.handle.clone();
        let reads = match self.max_store_reads {
            Some(n) => ReadShare::new(n),
            None => ReadShare::for_pool(handle.store().db().max_connections()),
        };
        let context = crate::schema::JobsContext {
            handle: self.handle,
            reads: reads.clone(),
        };
        let mut schema = crate::schema::builder_with(
            context,
            crate::schema::JobsExtension::max_mutations(self.max_mutations),
        );
        if let Some(depth) = self.depth_limit {
            schema = schema.limit_depth(depth);
        }
        if let Some(complexity) = self.complexity_limit {
            schema = schema.limit_complexity(complexity);
        }
        if !self.introspection {
            schema = schema.disable_introspection().disable_suggestions();
        }
        let schema = schema.finish();
        let metrics = self.metrics.unwrap_or_default();
        if !metrics.is_attached() {
            handle.attach_observer(metrics.clone());
        }

        let endpoint = if self.mount_path.is_empty() {
            "/"
        } else {
            self.mount_path.as_str()
        };
        let playground = self
            .playground_path
            .and_then(|path| Some((path, Playground::new(endpoint, &self.graphiql)?)));
        let playground_path = playground.as_ref().map(|(path, _)| path.clone());
        let dashboard = self
            .dashboard
            .then(|| Dashboard::new(&self.mount_path, playground_path.as_deref()));

        let auth = Arc::new(self.auth);
        let endpoints = Endpoints {
            graphql: GraphQl::new(schema.clone(), self.max_batch, self.max_mutations),
            playground,
            dashboard,
            health: Health::new(handle.clone(), reads.clone()),
            metrics: MetricsEndpoint::new(metrics.clone(), handle, reads.clone()),
        };
        let policy = Policy {
            auth: Arc::clone(&auth),
            body_limit: self.body_limit,
            open_health: self.open_health,
            open_metrics: self.open_metrics,
        };
        let stack = stack::compose(&self.mount_path, endpoints, policy);
        AdminService::from_inner(Inner {
            stack,
            schema,
            metrics,
            mount_path: self.mount_path,
            playground_path,
            body_limit: self.body_limit,
            max_batch: self.max_batch,
            auth,
            reads,
        })
    }
}

/// The entry points of the service, here beside the builder they lead to (the service
/// itself knows nothing of how it is configured).
impl AdminService {
    /// Start configuring a service over a started scheduler.
    pub fn builder(handle: SchedulerHandle) -> AdminServiceBuilder {
        AdminServiceBuilder::new(handle)
    }

    /// A service with every default: mounted at `/admin/jobs`, GraphiQL on
    /// `/admin/jobs/playground`, limits on, and **no authorization configured, so it refuses
    /// every GraphQL request** (403) until built with [`builder`](Self::builder) and a
    /// token, a check or [`allow_unauthenticated`](AdminServiceBuilder::allow_unauthenticated).
    pub fn new(handle: SchedulerHandle) -> Self {
        Self::builder(handle).build()
    }
}
