//! The dashboard as the service serves it (the browser tests are in the root package's
//! `tests/dashboard.rs`): its page and assets with their types, security and cache headers,
//! served without credentials but behind the foreign-Host check; GraphiQL off by default;
//! the `viewer` and `previewSchedule` fields the page relies on.

mod common;

use barycenter_jobs_graphql::service::CONTENT_SECURITY_POLICY;
use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::json;

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path).body(Full::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_and_assets_with_their_headers() {
    let f = Fixture::seed_only().await;
    // Closed to the API without a token; the page needs none (it holds no data).
    let svc = f.builder().bearer_token("t0ken-of-some-length").build();

    let page = send(svc.clone(), get("/admin/jobs/ui")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").unwrap();
    assert_eq!(csp, CONTENT_SECURITY_POLICY);
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        csp.contains("script-src 'self';"),
        "no inline script: {csp}"
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    let html = page.text();
    assert!(html.contains(r#"<meta name="barycenter-jobs-endpoint" content="/admin/jobs">"#));
    // No GraphiQL by default, so no link to it.
    assert!(html.contains(r#"<meta name="barycenter-jobs-graphiql" content="">"#));
    // Nothing from another origin and no inline script.
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains(" style="), "{html}");
    let script = html
        .split("<script src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap();
    assert!(script.starts_with("/admin/jobs/ui/app.js?v="), "{script}");

    // The trailing slash serves the page too.
    assert_eq!(
        send(svc.clone(), get("/admin/jobs/ui/")).await.status,
        StatusCode::OK
    );

    for (path, kind, needle) in [
        (script, "text/javascript; charset=utf-8", "sessionStorage"),
        (
            &script.replace("app.js", "app.css"),
            "text/css; charset=utf-8",
            "prefers-color-scheme",
        ),
        (
            &script.replace("app.js", "icon.svg"),
            "image/svg+xml",
            "<svg",
        ),
    ] {
        let asset = send(svc.clone(), get(path)).await;
        assert_eq!(asset.status, StatusCode::OK, "{path}");
        assert_eq!(asset.header("content-type"), Some(kind), "{path}");
        assert_eq!(
            asset.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{path}"
        );
        assert_eq!(asset.header("x-content-type-options"), Some("nosniff"));
        assert!(asset.header("content-security-policy").is_some());
        assert!(asset.text().contains(needle), "{path}");
        let asset_text = asset.text();
        assert!(
            !asset_text.contains("https://") || kind == "image/svg+xml",
            "{path} names no other origin"
        );
        // Without the current version: revalidated, not cached for a year.
        let bare = path.split('?').next().unwrap();
        let unversioned = send(svc.clone(), get(bare)).await;
        assert_eq!(unversioned.header("cache-control"), Some("no-cache"));
        // A matching ETag: 304 with no body.
        let etag = unversioned.header("etag").unwrap().to_owned();
        let again = Request::get(bare)
            .header("if-none-match", &etag)
            .body(Full::default())
            .unwrap();
        let again = send(svc.clone(), again).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED);
        assert!(again.body.is_empty());
    }

    // HEAD: headers only; other methods: 405; other names under /ui: 404.
    let head = Request::head("/admin/jobs/ui")
        .body(Full::default())
        .unwrap();
    let head = send(svc.clone(), head).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    let post = send(
        svc.clone(),
        Request::post("/admin/jobs/ui")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    for path in [
        "/admin/jobs/ui/secret",
        "/admin/jobs/uix",
        "/admin/jobs/ui/../x",
    ] {
        assert_eq!(
            send(svc.clone(), get(path)).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    // Nested under a router that strips the prefix.
    assert_eq!(send(svc.clone(), get("/ui")).await.status, StatusCode::OK);

    // GraphiQL is off by default (it would load scripts from a CDN).
    assert_eq!(
        send(svc.clone(), get("/admin/jobs/playground"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_options_and_the_link_to_it() {
    let f = Fixture::seed_only().await;
    let cdn = f.builder().graphiql_from_cdn().build();
    let page = send(cdn.clone(), get("/admin/jobs/playground")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("https://unpkg.com/"));
    let dashboard = send(cdn.clone(), get("/admin/jobs/ui")).await.text();
    assert!(
        dashboard
            .contains(r#"<meta name="barycenter-jobs-graphiql" content="/admin/jobs/playground">"#),
        "{dashboard}"
    );

    let own = f
        .builder()
        .graphiql_assets("/static/graphiql/")
        .playground_path("ide")
        .build();
    let page = send(own.clone(), get("/admin/jobs/ide")).await.text();
    assert!(page.contains(r#"src="/static/graphiql/graphiql@4/graphiql.min.js""#));
    assert!(page.contains(r#"src="/static/graphiql/react@18/umd/react.development.js""#));
    assert!(
        !page.contains("unpkg.com") && !page.contains("graphql.org"),
        "{page}"
    );
    let dashboard = send(own.clone(), get("/admin/jobs/ui")).await.text();
    assert!(dashboard.contains(r#"content="/admin/jobs/ide""#));

    let off = f.builder().graphiql_from_cdn().disable_playground().build();
    assert_eq!(
        send(off.clone(), get("/admin/jobs/playground"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let none = f.builder().disable_dashboard().build();
    assert_eq!(
        send(none, get("/admin/jobs/ui")).await.status,
        StatusCode::NOT_FOUND
    );
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_hosts_are_refused_on_the_dashboard_too() {
    let f = Fixture::seed_only().await;
    let open = f.builder().build(); // allow_unauthenticated()
    for (host, status) in [
        ("localhost:8081", StatusCode::OK),
        ("127.0.0.1:8081", StatusCode::OK),
        ("evil.example", StatusCode::FORBIDDEN),
    ] {
        for path in ["/admin/jobs/ui", "/admin/jobs/ui/app.js"] {
            let req = Request::get(path)
                .header("host", host)
                .body(Full::default())
                .unwrap();
            assert_eq!(
                send(open.clone(), req).await.status,
                status,
                "{host} {path}"
            );
        }
    }
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_and_schedule_preview() {
    let f = Fixture::seed_only().await;
    let svc = f
        .builder()
        .bearer_token("operate-token-0123")
        .read_only_token("read-token-0123")
        .build();
    let ask = |token: &'static str, query: &'static str| {
        let svc = svc.clone();
        async move {
            let mut req = post_query(query);
            req.headers_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
            send(svc, req).await.json()
        }
    };
    assert_eq!(
        ask("operate-token-0123", "{ viewer { name role } }").await,
        json!({ "data": { "viewer": { "name": "admin-token", "role": "operate" } } })
    );
    assert_eq!(
        ask("read-token-0123", "{ viewer { name role } }").await,
        json!({ "data": { "viewer": { "name": "readonly-token", "role": "read" } } })
    );

    // The scheduler's clock is frozen at 2026-01-01T00:00:10Z.
    let ok = ask(
        "read-token-0123",
        r#"{ previewSchedule(schedule: "0 30 9 * * *", timeZone: "Europe/Berlin") { valid message description upcoming } }"#,
    )
    .await;
    let p = &ok["data"]["previewSchedule"];
    assert_eq!(p["valid"], true, "{ok}");
    assert_eq!(p["message"], "ok");
    assert!(p["description"].as_str().unwrap().contains("09:30"), "{p}");
    assert_eq!(
        p["upcoming"],
        json!([
            "2026-01-01T08:30:00Z",
            "2026-01-02T08:30:00Z",
            "2026-01-03T08:30:00Z",
            "2026-01-04T08:30:00Z",
            "2026-01-05T08:30:00Z"
        ])
    );
    let bad = ask(
        "read-token-0123",
        r#"{ previewSchedule(schedule: "61 * * * * *") { valid message description upcoming } }"#,
    )
    .await;
    let p = &bad["data"]["previewSchedule"];
    assert_eq!(p["valid"], false, "{bad}");
    assert!(
        p["message"].as_str().unwrap().contains("61 * * * * *"),
        "{p}"
    );
    assert_eq!(p["upcoming"], json!([]));
    assert!(p["description"].is_null());
    let zone = ask(
        "read-token-0123",
        r#"{ previewSchedule(schedule: "0 0 * * * *", timeZone: "Mars/Olympus") { valid message } }"#,
    )
    .await;
    assert_eq!(zone["data"]["previewSchedule"]["valid"], false, "{zone}");
    assert!(
        zone["data"]["previewSchedule"]["message"]
            .as_str()
            .unwrap()
            .contains("Mars/Olympus")
    );
    let many = ask(
        "read-token-0123",
        r#"{ previewSchedule(schedule: "0 0 * * * *", count: 101) { valid } }"#,
    )
    .await;
    assert!(
        many["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("count must be between 0 and 100"),
        "{many}"
    );
    f.shutdown().await;
}
