//! Mounting examples, exercised over real HTTP on 127.0.0.1: the service nested in an axum
//! router next to other routes, and the service served directly by hyper. The seed
//! document's curl command is replayed byte for byte (only the port differs).

mod common;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use barycenter_jobs_graphql::{AdminService, PeerAddr};
use common::*;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// The body `curl -d '{"query": "{ availableJobs { name description schedule } }"}'` sends.
const SEED_CURL_BODY: &str = r#"{"query": "{ availableJobs { name description schedule } }"}"#;

struct HttpAnswer {
    status: u16,
    head: String,
    body: String,
}

impl HttpAnswer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`, so the body runs to EOF).
async fn exchange(addr: SocketAddr, head: &str, body: &[u8]) -> HttpAnswer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = head.replace('\n', "\r\n").into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    HttpAnswer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// What `curl -s -X POST http://HOST/admin/jobs -H "Content-Type: application/json" -d BODY`
/// puts on the wire.
async fn curl_post(addr: SocketAddr, path: &str, body: &str) -> HttpAnswer {
    let head = format!(
        "POST {path} HTTP/1.1\nHost: {addr}\nUser-Agent: curl/8.5.0\nAccept: */*\n\
         Content-Type: application/json\nContent-Length: {}\nConnection: close\n\n",
        body.len()
    );
    exchange(addr, &head, body.as_bytes()).await
}

async fn http_get(addr: SocketAddr, path_and_query: &str) -> HttpAnswer {
    let head =
        format!("GET {path_and_query} HTTP/1.1\nHost: {addr}\nAccept: */*\nConnection: close\n\n");
    exchange(addr, &head, b"").await
}

/// Serve `svc` with hyper directly: `TokioIo` + `http1` + a `service_fn` adapter that
/// attaches the connection's [`PeerAddr`], as the crate documents.
async fn serve_with_hyper(svc: AdminService) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    serve_with_hyper_on("127.0.0.1:0", svc).await
}

/// [`serve_with_hyper`] on `listen`.
async fn serve_with_hyper_on(
    listen: &str,
    svc: AdminService,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind(listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let svc = svc.clone();
            tokio::spawn(async move {
                let hyper_svc =
                    hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                        req.extensions_mut().insert(PeerAddr(peer));
                        svc.clone().oneshot(req)
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hyper_svc)
                    .await;
            });
        }
    });
    (addr, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_by_hyper_answers_the_seed_curl_command() {
    let f = Fixture::new().await;
    let (addr, server) = serve_with_hyper(
        f.builder()
            .bearer_token("hyper-token")
            .body_limit(1024)
            .graphiql_from_cdn()
            .build(),
    )
    .await;

    // Without the token: 401 over the wire too.
    let answer = curl_post(addr, "/admin/jobs", SEED_CURL_BODY).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.header("www-authenticate").as_deref(), Some("Bearer"));
    assert_eq!(
        answer.json(),
        json!({ "errors": [{ "message": "unauthorized" }] })
    );

    // The seed's curl, plus the token.
    let head = format!(
        "POST /admin/jobs HTTP/1.1\nHost: {addr}\nUser-Agent: curl/8.5.0\nAccept: */*\n\
         Authorization: Bearer hyper-token\nContent-Type: application/json\n\
         Content-Length: {}\nConnection: close\n\n",
        SEED_CURL_BODY.len()
    );
    let answer = exchange(addr, &head, SEED_CURL_BODY.as_bytes()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        answer.json(),
        json!({ "data": { "availableJobs": [
            { "name": "cleanup_expired_challenges", "description": "Clean up expired WebAuthn challenges", "schedule": "0 */5 * * * *" },
            { "name": "cleanup_expired_device_codes", "description": "Clean up expired device authorization codes", "schedule": "0 45 * * * *" },
            { "name": "cleanup_expired_refresh_tokens", "description": "Clean up expired refresh tokens", "schedule": "0 30 * * * *" },
            { "name": "cleanup_expired_sessions", "description": "Clean up expired user sessions", "schedule": "0 0 * * * *" },
            { "name": "failing_job", "description": "Always fail", "schedule": "0 0 4 * * *" },
            { "name": "gated_job", "description": "Wait for the test to release it", "schedule": "0 0 3 * * *" },
        ] } })
    );

    // A chunked body over the limit: 413, and the connection is answered, not dropped.
    // (A small limit, so the whole request is in the server's buffer when it answers.)
    let chunk = format!("{:x}\r\n{}\r\n", 600, " ".repeat(600));
    let body = format!("{chunk}{chunk}0\r\n\r\n");
    let head = format!(
        "POST /admin/jobs HTTP/1.1\nHost: {addr}\nAuthorization: Bearer hyper-token\n\
         Content-Type: application/json\nTransfer-Encoding: chunked\nConnection: close\n\n"
    );
    let answer = exchange(addr, &head, body.as_bytes()).await;
    assert_eq!(answer.status, 413);
    assert_eq!(
        answer.json(),
        json!({ "errors": [{ "message": "request body larger than 1024 bytes" }] })
    );

    // The GraphiQL page needs no token.
    let page = http_get(addr, "/admin/jobs/playground").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("createUrl('/admin/jobs')"));

    server.abort();
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_in_an_axum_router() {
    let f = Fixture::seed_only().await;
    // axum's `ConnectInfo` copied into our `PeerAddr`, as the crate documents.
    let admin = tower::ServiceBuilder::new()
        .map_request(|mut req: axum::extract::Request| {
            if let Some(ConnectInfo(peer)) =
                req.extensions().get::<ConnectInfo<SocketAddr>>().copied()
            {
                req.extensions_mut().insert(PeerAddr(peer));
            }
            req
        })
        .service(f.builder().graphiql_from_cdn().build());
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .nest_service("/admin/jobs", admin);

    // In-process, through the router.
    let res = app
        .clone()
        .oneshot(
            http::Request::get("/health")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Over real HTTP with axum::serve.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });

    let answer = curl_post(addr, "/admin/jobs", SEED_CURL_BODY).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.json(),
        json!({ "data": { "availableJobs": seed_available_jobs() } })
    );

    // The seed mutation, as curl would post it.
    let mutation = json!({ "query": "mutation {\n  triggerJob(jobName: \"cleanup_expired_sessions\") {\n    success\n    message\n    jobName\n  }\n}" });
    let answer = curl_post(addr, "/admin/jobs", &mutation.to_string()).await;
    assert_eq!(
        answer.json(),
        json!({ "data": { "triggerJob": {
            "success": true,
            "message": "Job cleanup_expired_sessions triggered",
            "jobName": "cleanup_expired_sessions",
        } } })
    );

    // A query over GET; a mutation over GET is refused.
    let q = urlencode("{ jobLogs(limit: 5) { jobName trigger } }");
    let answer = http_get(addr, &format!("/admin/jobs?query={q}")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json()["data"]["jobLogs"][0],
        json!({ "jobName": "cleanup_expired_sessions", "trigger": "manual" })
    );
    let m =
        urlencode(r#"mutation { triggerJob(jobName: "cleanup_expired_sessions") { success } }"#);
    let answer = http_get(addr, &format!("/admin/jobs?query={m}")).await;
    assert_eq!(answer.status, 405);

    // The GraphiQL page under the prefix; the other route still answers.
    let page = http_get(addr, "/admin/jobs/playground").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("createUrl('/admin/jobs')"));
    assert_eq!(http_get(addr, "/health").await.body, "ok");

    // A form post across sites cannot reach the mutation.
    let form =
        "query=mutation%7BtriggerJob(jobName%3A%22cleanup_expired_sessions%22)%7Bsuccess%7D%7D";
    let head = format!(
        "POST /admin/jobs HTTP/1.1\nHost: {addr}\nContent-Type: application/x-www-form-urlencoded\n\
         Content-Length: {}\nConnection: close\n\n",
        form.len()
    );
    assert_eq!(exchange(addr, &head, form.as_bytes()).await.status, 415);

    server.abort();
    f.shutdown().await;
}

/// The seed document's command, verbatim.
const SEED_CURL_COMMAND: &str = r#"curl -s -X POST http://localhost:8081/admin/jobs \
  -H "Content-Type: application/json" \
  -d '{"query": "{ availableJobs { name description schedule } }"}' | jq ."#;

/// Runs the seed's curl command exactly as written against the service on port 8081, when
/// that port is free and `curl` and `jq` are installed (otherwise it says why it skipped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_curl_command_verbatim() {
    let have = |tool: &str| {
        std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("curl") || !have("jq") {
        eprintln!("skipping: curl or jq is not installed");
        return;
    }
    let Ok(listener) = TcpListener::bind("127.0.0.1:8081").await else {
        eprintln!("skipping: port 8081 is in use");
        return;
    };
    let f = Fixture::seed_only().await;
    let svc = f.service();
    let server = tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let svc = svc.clone();
            tokio::spawn(async move {
                let hyper_svc =
                    hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                        req.extensions_mut().insert(PeerAddr(peer));
                        svc.clone().oneshot(req)
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hyper_svc)
                    .await;
            });
        }
    });
    let output = tokio::task::spawn_blocking(|| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(SEED_CURL_COMMAND)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        printed,
        json!({ "data": { "availableJobs": seed_available_jobs() } })
    );
    server.abort();
    f.shutdown().await;
}

/// The item of issue 22: no token, the service reachable on a network address, and a client
/// on another address of the machine that writes `Host: localhost`. It gets no data and
/// changes nothing; the same request from 127.0.0.1 is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_use_refuses_a_remote_client_whatever_its_host() {
    let Some(ip) = barycenter_jobs_test_support::non_loopback_addr_or_skip(
        "unauthenticated_use_refuses_a_remote_client_whatever_its_host",
    ) else {
        return;
    };
    let f = Fixture::seed_only().await;
    let any = if ip.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let (bound, server) = serve_with_hyper_on(any, f.service()).await;
    let remote = SocketAddr::new(ip, bound.port());
    let local = SocketAddr::new(
        if ip.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        },
        bound.port(),
    );
    let pause =
        r#"{"query": "mutation { pauseJob(jobName: \"cleanup_expired_sessions\") { success } }"}"#;
    let post_as = |to: SocketAddr, host: &'static str, body: &'static str| async move {
        let head = format!(
            "POST /admin/jobs HTTP/1.1\nHost: {host}\nContent-Type: application/json\n\
             Content-Length: {}\nConnection: close\n\n",
            body.len()
        );
        exchange(to, &head, body.as_bytes()).await
    };

    for host in ["localhost", "localhost:8081", "127.0.0.1"] {
        let answer = post_as(remote, host, pause).await;
        assert_eq!(answer.status, 403, "{host}: {}", answer.body);
        let body = answer.json();
        assert!(body.get("data").is_none(), "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("client not allowed"),
            "{body}"
        );
        let answer = post_as(remote, host, SEED_CURL_BODY).await;
        assert_eq!(answer.status, 403, "{host}: {}", answer.body);
        assert!(answer.json().get("data").is_none());
        for path in [
            "/admin/jobs/ui",
            "/admin/jobs/health",
            "/admin/jobs/metrics",
        ] {
            let head = format!("GET {path} HTTP/1.1\nHost: {host}\nConnection: close\n\n");
            assert_eq!(exchange(remote, &head, b"").await.status, 403, "{path}");
        }
    }

    // Nothing changed: the job is not paused, as a local client sees.
    let state = r#"{"query": "{ availableJobs { name paused } }"}"#;
    let answer = post_as(local, "localhost", state).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let jobs = answer.json()["data"]["availableJobs"].clone();
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .all(|j| j["paused"] == json!(false)),
        "{jobs}"
    );
    // The local client may pause it: the refusal above was the peer, not the request.
    let answer = post_as(local, "localhost", pause).await;
    assert_eq!(
        answer.json(),
        json!({ "data": { "pauseJob": { "success": true } } })
    );

    // Locally too: no `Host` at all, or a proxy's forwarding header, is refused.
    let head = "GET /admin/jobs/ui HTTP/1.1\nConnection: close\n\n";
    let answer = exchange(local, head, b"").await;
    assert_eq!(answer.status, 403);
    assert!(
        answer.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("host not allowed")
    );
    let head = "GET /admin/jobs/ui HTTP/1.1\nHost: localhost\nX-Forwarded-For: 192.0.2.77\n\
                Connection: close\n\n";
    assert_eq!(exchange(local, head, b"").await.status, 403);

    server.abort();
    f.shutdown().await;
}

/// A host that attaches no [`PeerAddr`] (here axum without the `ConnectInfo` copy): with
/// unauthenticated use allowed, nothing is served, even to 127.0.0.1 with `Host: localhost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_use_without_a_peer_address_is_refused() {
    let f = Fixture::seed_only().await;
    let app = Router::new().nest_service("/admin/jobs", f.service());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let answer = curl_post(addr, "/admin/jobs", SEED_CURL_BODY).await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(answer.json().get("data").is_none());
    assert!(
        answer.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("did not attach")
    );
    // A token still works: the peer address matters to unauthenticated use only.
    let tokened = f
        .builder_closed()
        .bearer_token("t0ken-of-some-length")
        .build();
    let app = Router::new().nest_service("/admin/jobs", tokened);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr2 = listener.local_addr().unwrap();
    let server2 = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let head = format!(
        "POST /admin/jobs HTTP/1.1\nHost: {addr2}\nAuthorization: Bearer t0ken-of-some-length\n\
         Content-Type: application/json\nContent-Length: {}\nConnection: close\n\n",
        SEED_CURL_BODY.len()
    );
    let answer = exchange(addr2, &head, SEED_CURL_BODY.as_bytes()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    server.abort();
    server2.abort();
    f.shutdown().await;
}
