//! Configuration of an [`AdminService`].

use std::fmt;
use std::sync::Arc;

use async_graphql::http::GraphiQLSource;
use barycenter_jobs_core::SchedulerHandle;
use http::request::Parts;

use super::auth::Authorization;
use super::service::{AdminService, Inner};

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
    auth: Authorization,
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
            .field("auth", &self.auth)
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
            auth: Authorization::default(),
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
    /// `/admin/jobs/playground`).
    pub fn playground_path(mut self, path: &str) -> Self {
        self.playground_path = Some(normalize(path)).filter(|p| !p.is_empty());
        self
    }

    /// Serve no GraphiQL page (its path then answers 404).
    pub fn disable_playground(mut self) -> Self {
        self.playground_path = None;
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

    /// Largest query complexity, one point per selected field (default 500); `None` removes
    /// the limit.
    pub fn limit_complexity(mut self, complexity: Option<usize>) -> Self {
        self.complexity_limit = complexity;
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

    /// Require `Authorization: Bearer <token>`; the token is compared in constant time.
    pub fn bearer_token(mut self, token: impl AsRef<str>) -> Self {
        self.auth.set_token(token.as_ref());
        self
    }

    /// Require `check(&parts)` to return true (a session cookie, a client certificate
    /// identity put in the extensions by an outer layer, ...). With a bearer token too, both
    /// must pass.
    pub fn authorize<F>(mut self, check: F) -> Self
    where
        F: Fn(&Parts) -> bool + Send + Sync + 'static,
    {
        self.auth.set_check(Arc::new(check));
        self
    }

    /// Build the schema and the service.
    pub fn build(self) -> AdminService {
        let mut schema = crate::schema::builder(self.handle);
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
        let playground_html = self.playground_path.as_ref().map(|_| {
            GraphiQLSource::build()
                .endpoint(endpoint)
                .title("barycenter-jobs admin")
                .finish()
        });
        AdminService::from_inner(Inner {
            schema: schema.finish(),
            mount_path: self.mount_path,
            playground_path: self.playground_path,
            playground_html: playground_html.map(Into::into),
            body_limit: self.body_limit,
            max_batch: self.max_batch,
            auth: self.auth,
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
