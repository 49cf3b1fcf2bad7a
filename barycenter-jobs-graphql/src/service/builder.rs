//! Configuration of an [`AdminService`].

use std::fmt;
use std::sync::Arc;

use async_graphql::http::GraphiQLSource;
use barycenter_jobs_core::SchedulerHandle;
use http::request::Parts;

use super::auth::{Authorization, Denied, Principal, Role};
use super::dashboard::Dashboard;
use super::service::{AdminService, Inner};
use crate::metrics::Metrics;
use crate::schema::ReadShare;

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

/// Where the GraphiQL page loads React and GraphiQL from, if it is served at all.
#[derive(Debug, Clone, PartialEq, Eq)]
enum GraphiQl {
    /// Not served (the default): nothing is fetched from a CDN unless the host says so.
    Off,
    /// From unpkg.com, as async-graphql's page has it.
    Cdn,
    /// From the host's own copies under this URL prefix (unpkg's layout).
    Assets(String),
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

/// `/a/b/` and `a/b` become `/a/b`; `/` and `` become `` (the root).
fn normalize(path: &str) -> String {
    let trimmed = path.trim().trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
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

    /// Accept `Authorization: Bearer <token>` as the principal `admin-token` with the
    /// [`Role::Operate`] role (queries and mutations). The token is compared in constant
    /// time; call it again to accept several.
    pub fn bearer_token(self, token: impl AsRef<str>) -> Self {
        self.bearer_token_for(token, Principal::new("admin-token", Role::Operate))
    }

    /// Accept `Authorization: Bearer <token>` as the principal `readonly-token` with the
    /// [`Role::Read`] role (queries only).
    pub fn read_only_token(self, token: impl AsRef<str>) -> Self {
        self.bearer_token_for(token, Principal::new("readonly-token", Role::Read))
    }

    /// Accept `Authorization: Bearer <token>` as `principal` (its name goes into the audit
    /// log).
    pub fn bearer_token_for(mut self, token: impl AsRef<str>, principal: Principal) -> Self {
        self.auth.add_token(token.as_ref(), principal);
        self
    }

    /// Authorize with the host's own check, for hosts that verify their own credentials
    /// (an OAuth access token and its scopes, a session, a client-certificate identity put
    /// in the extensions by an outer layer). It runs on the request head when no configured
    /// bearer token matched, and names the principal and its role, or refuses
    /// ([`Denied::Unauthenticated`]: 401, [`Denied::Forbidden`]: 403).
    ///
    /// ```
    /// use barycenter_jobs_graphql::{AdminServiceBuilder, Denied, Principal, Role};
    ///
    /// fn with_scopes(builder: AdminServiceBuilder) -> AdminServiceBuilder {
    ///     builder.authorize(|parts| {
    ///         // Stand-in for the host's own token introspection.
    ///         let scope = parts.headers.get("x-verified-scope").and_then(|v| v.to_str().ok());
    ///         match scope {
    ///             Some("jobs:operate") => Ok(Principal::new("client-42", Role::Operate)),
    ///             Some("jobs:read") => Ok(Principal::new("client-42", Role::Read)),
    ///             Some(_) => Err(Denied::Forbidden),
    ///             None => Err(Denied::Unauthenticated),
    ///         }
    ///     })
    /// }
    /// ```
    pub fn authorize<F>(mut self, check: F) -> Self
    where
        F: Fn(&Parts) -> Result<Principal, Denied> + Send + Sync + 'static,
    {
        self.auth.set_check(Arc::new(check));
        self
    }

    /// Serve requests without credentials, as the principal `anonymous` with the operate
    /// role, to clients on this machine only. For development and single-machine setups;
    /// anything reachable from a network wants a token or a check.
    ///
    /// What it trusts, exactly: the **connection's peer address**, which the host attaches
    /// as a [`PeerAddr`](super::PeerAddr) extension when it accepts the connection (see its
    /// docs for hyper and axum), and nothing the client writes. Every request, on every path
    /// (the dashboard and GraphiQL pages included), is refused with 403, a JSON error body
    /// and a `tracing` warning naming the peer and the `Host`, unless
    ///
    /// 1. it carries a [`PeerAddr`](super::PeerAddr) that is a loopback address
    ///    (`127.0.0.0/8`, `::1`, or `::ffff:127.x.x.x` from a dual-stack socket). A request
    ///    from any other address is refused **whatever its `Host` says**; a request without
    ///    a [`PeerAddr`](super::PeerAddr) (a host that does not attach it, an in-process
    ///    call) is refused too, since its origin is unknown;
    /// 2. it has no `Forwarded`, `X-Forwarded-For` or `X-Real-IP` header: behind a reverse
    ///    proxy on this machine every client looks like a loopback peer, and a proxy that
    ///    says so is refused. A proxy that forwards silently cannot be told apart from a
    ///    local client: **do not put a proxy that faces a network in front of unauthenticated
    ///    use**;
    /// 3. it names exactly one `Host` (or, in HTTP/2, an `:authority`) that is a loopback
    ///    name (`localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`, any port) or one given
    ///    to [`allow_host`](Self::allow_host). A request with no `Host` is refused. This check
    ///    is not about where the client is (the peer check is): it stops a web page in a
    ///    local browser from reaching the service by rebinding its own DNS name to 127.0.0.1,
    ///    since the browser still sends the page's name.
    ///
    /// Without this call and without any authorization, the service refuses every request
    /// (closed by default). With bearer tokens or a check configured as well, requests
    /// without credentials are refused regardless, and these rules still apply to every
    /// request, so a token does not get through them either.
    pub fn allow_unauthenticated(mut self) -> Self {
        self.auth.allow_unauthenticated();
        self
    }

    /// A host name (port optional and ignored) that unauthenticated use also answers, beside
    /// the loopback names; see [`allow_unauthenticated`](Self::allow_unauthenticated). It
    /// widens the `Host` check only: the peer must still be a loopback address.
    pub fn allow_host(mut self, host: &str) -> Self {
        self.auth.allow_host(host);
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

    /// Build the schema and the service.
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
        let endpoint = if self.mount_path.is_empty() {
            "/"
        } else {
            self.mount_path.as_str()
        };
        let playground_path = self
            .playground_path
            .filter(|_| self.graphiql != GraphiQl::Off);
        let playground_html = playground_path.as_ref().map(|_| {
            let page = GraphiQLSource::build()
                .endpoint(endpoint)
                .title("barycenter-jobs admin")
                .finish();
            match &self.graphiql {
                GraphiQl::Assets(base) => page
                    .replace("https://unpkg.com", base)
                    .lines()
                    .filter(|line| !line.contains("https://graphql.org/favicon.ico"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => page,
            }
        });
        let dashboard = self
            .dashboard
            .then(|| Dashboard::new(&self.mount_path, playground_path.as_deref()));
        let metrics = self.metrics.unwrap_or_default();
        if !metrics.is_attached() {
            handle.attach_observer(metrics.clone());
        }
        AdminService::from_inner(Inner {
            schema: schema.finish(),
            mount_path: self.mount_path,
            playground_path,
            dashboard,
            playground_html: playground_html.map(Into::into),
            body_limit: self.body_limit,
            max_batch: self.max_batch,
            max_mutations: self.max_mutations,
            auth: self.auth,
            handle,
            metrics,
            open_health: self.open_health,
            open_metrics: self.open_metrics,
            reads,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn normalizes_paths() {
        assert_eq!(super::normalize("/admin/jobs/"), "/admin/jobs");
        assert_eq!(super::normalize("admin"), "/admin");
        assert_eq!(super::normalize("/"), "");
        assert_eq!(super::normalize(""), "");
    }
}
