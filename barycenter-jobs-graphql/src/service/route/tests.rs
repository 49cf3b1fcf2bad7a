//! Unit tests of the router, with stand-in routes that answer their own name.

use std::convert::Infallible;

use http_body_util::BodyExt;
use tower::service_fn;

use super::*;

/// A route answering `name`, and the rest of the path when the router gave one.
fn named(name: &'static str) -> Route {
    Route::new(service_fn(move |req: Request<AdminBody>| async move {
        let rest = req.extensions().get::<SubPath>().map(|p| p.0.clone());
        let body = match rest {
            Some(rest) => format!("{name} {rest:?}"),
            None => name.to_owned(),
        };
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
    }))
}

fn router(mount_path: &str, dashboard: bool) -> Router {
    Router::new(
        mount_path,
        Routes {
            graphql: named("graphql"),
            playground: Some(("/playground".to_owned(), named("playground"))),
            dashboard: dashboard.then(|| named("dashboard")),
            health: named("health"),
            metrics: named("metrics"),
        },
    )
}

/// What answers `path`: the route's name, or the status and body of the router's own answer.
async fn who(router: &Router, path: &str) -> String {
    let req = Request::get(path).body(AdminBody::default()).unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    if status == http::StatusCode::OK {
        body
    } else {
        format!("{} {body}", status.as_u16())
    }
}

#[tokio::test]
async fn routes_under_the_mount_path_or_without_it() {
    let r = router("/admin/jobs", true);
    for (path, expected) in [
        ("/admin/jobs", "graphql"),
        ("/admin/jobs/", "graphql"),
        ("/", "graphql"),
        ("/admin/jobs/playground", "playground"),
        ("/playground/", "playground"),
        ("/admin/jobs/health", "health"),
        ("/metrics", "metrics"),
        ("/admin/jobs/ui", r#"dashboard """#),
        ("/admin/jobs/ui/", r#"dashboard """#),
        ("/ui/app.js", r#"dashboard "/app.js""#),
        // Not under the mount path, so routed as it is: an unknown path.
        (
            "/admin/jobsx/health",
            r#"404 {"errors":[{"message":"not found"}]}"#,
        ),
        (
            "/admin/jobs/uix",
            r#"404 {"errors":[{"message":"not found"}]}"#,
        ),
        (
            "/admin/jobs/graphql",
            r#"404 {"errors":[{"message":"not found"}]}"#,
        ),
    ] {
        assert_eq!(who(&r, path).await, expected, "{path}");
    }
}

#[tokio::test]
async fn a_disabled_dashboard_is_not_found() {
    let r = router("/admin/jobs", false);
    assert_eq!(
        who(&r, "/admin/jobs/ui").await,
        r#"404 {"errors":[{"message":"not found"}]}"#
    );
}

#[tokio::test]
async fn mounted_at_the_root() {
    let r = router("", true);
    assert_eq!(who(&r, "/").await, "graphql");
    assert_eq!(who(&r, "/health").await, "health");
    assert_eq!(who(&r, "/ui/icon.svg").await, r#"dashboard "/icon.svg""#);
}

#[test]
fn normalizes_paths() {
    assert_eq!(normalize("/admin/jobs/"), "/admin/jobs");
    assert_eq!(normalize("admin"), "/admin");
    assert_eq!(normalize("/"), "");
    assert_eq!(normalize(""), "");
}
