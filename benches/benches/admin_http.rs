//! Figure 4: overhead of the `AdminService` tower service over HTTP.
//!
//! The same schema served two ways on 127.0.0.1, in one process:
//!
//! - ours: `AdminService` (default limits, no auth) served by hyper 1
//!   (`hyper_util::rt::TokioIo` + `hyper::server::conn::http1` + `service_fn` calling the
//!   tower service);
//! - axum: `AdminService::schema()` behind async-graphql-axum's `GraphQL` service in an axum
//!   `Router`, served by `axum::serve`.
//!
//! The scheduler holds the four built-ins (scheduled runs disabled, so nothing runs during the
//! measurement); the history (SQLite file) holds 1,000 runs (`barycenter_jobs_benches::history`,
//! as the history bench has them). The load generator is our own:
//! `--conns` keep-alive connections (default 8) on tokio `TcpStream`s, each writing HTTP/1.1
//! POSTs and reading responses by `Content-Length`, closed loop, on its own single-threaded
//! runtime; the servers run on a 2-worker runtime. Rounds of `--secs` seconds alternate between
//! the two servers (`--rounds` per server and query, default 3); figures are medians of rounds.
//!
//! ```text
//! cargo bench -p barycenter-jobs-benches --bench admin_http -- [--quick] [--secs N] [--rounds N] [--conns N]
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use barycenter_jobs_benches::{Args, Summary, Table, f, history, median, ms};
use barycenter_jobs_core::{Database, JobConfig, Registry, Scheduler, SchedulerConfig};
use barycenter_jobs_graphql::{AdminService, PeerAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Runs in the history (`jobLogs` reads the newest 10).
const HISTORY_ROWS: i64 = 1_000;

const QUERIES: [(&str, &str); 2] = [
    (
        "{ availableJobs { name schedule } }",
        r#"{"query":"{ availableJobs { name schedule } }"}"#,
    ),
    (
        "{ jobLogs(limit: 10) { id } }",
        r#"{"query":"{ jobLogs(limit: 10) { id } }"}"#,
    ),
];

fn main() {
    let args = Args::from_env();
    let quick = args.quick();
    let secs: f64 = args.parsed("--secs", if quick { 1.0 } else { 3.0 });
    let rounds: usize = args.parsed("--rounds", 3);
    let conns: usize = args.parsed("--conns", 8);

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("barycenter-bench-admin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let url = format!("sqlite://{}", dir.join("jobs.db").display());
    let (ours_addr, axum_addr, handle) = server_rt.block_on(async move {
        let db = Database::connect(&url).await.expect("db");
        barycenter_jobs_builtin::link();
        let registry = Registry::from_inventory().expect("registry");
        let mut config = SchedulerConfig::default();
        for name in registry.names() {
            config = config.job(name, JobConfig::default().with_enabled(false));
        }
        let handle = Scheduler::builder(registry, db.clone())
            .config(config)
            .start()
            .await
            .expect("scheduler");
        // The history `jobLogs` reads, filled as the history bench fills it.
        history::fill(&db, "job_executions", HISTORY_ROWS).await;
        // Loopback clients only (the bench's), no token: closed by default otherwise.
        let admin = AdminService::builder(handle.clone())
            .allow_unauthenticated()
            .build();
        let schema = admin.schema().clone();

        let ours = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let ours_addr = ours.local_addr().expect("addr");
        tokio::spawn(serve_ours(ours, admin));

        let app = axum::Router::new()
            .route_service("/admin/jobs", async_graphql_axum::GraphQL::new(schema));
        let axum_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let axum_addr = axum_listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(axum_listener, app).await });
        (ours_addr, axum_addr, handle)
    });

    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "# admin service over HTTP: {}",
        barycenter_jobs_benches::machine_line()
    );
    println!(
        "{conns} keep-alive connections, closed loop, {secs} s rounds, {rounds} rounds per server and query, alternating; medians of rounds\n"
    );
    let mut t = Table::new(&[
        "query",
        "server",
        "req/s",
        "p50 ms",
        "p99 ms",
        "req/s vs axum",
    ]);
    for (name, body) in QUERIES {
        let mut rps: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut p50: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut p99: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        for round in 0..rounds {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for k in order {
                let addr = if k == 0 { ours_addr } else { axum_addr };
                let (n, mut lat) =
                    client_rt.block_on(load(addr, body, conns, Duration::from_secs_f64(secs)));
                let s = Summary::of(&mut lat);
                rps[k].push(n as f64 / secs);
                p50[k].push(s.p50);
                p99[k].push(s.p99);
                eprintln!(
                    "  {name} round {} {}: {:.0} req/s, p99 {:.2} ms",
                    round + 1,
                    ["ours", "axum"][k],
                    n as f64 / secs,
                    s.p99
                );
            }
        }
        let axum_rps = median(&rps[1]);
        for (k, server) in [
            "ours: AdminService on hyper",
            "async-graphql-axum GraphQL in axum",
        ]
        .into_iter()
        .enumerate()
        {
            t.row(&[
                name.to_owned(),
                server.to_owned(),
                f(median(&rps[k]), 0),
                f(median(&p50[k]), 3),
                f(median(&p99[k]), 3),
                f(median(&rps[k]) / axum_rps, 3),
            ]);
        }
    }
    t.print();
    server_rt.block_on(async move {
        handle
            .shutdown(Duration::from_secs(2))
            .await
            .expect("shutdown");
    });
    drop(server_rt);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn serve_ours(listener: TcpListener, admin: AdminService) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let admin = admin.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = hyper::service::service_fn(move |mut req: http::Request<_>| {
                // Unauthenticated use serves loopback peers only, known by this extension.
                req.extensions_mut().insert(PeerAddr(peer));
                let mut admin = admin.clone();
                async move { tower_service::Service::call(&mut admin, req).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

/// `conns` closed-loop keep-alive connections posting `body` for `dur`; returns the number of
/// responses and their latencies in milliseconds.
async fn load(addr: SocketAddr, body: &str, conns: usize, dur: Duration) -> (usize, Vec<f64>) {
    let request = format!(
        "POST /admin/jobs HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes();
    let deadline = Instant::now() + dur;
    let mut tasks = Vec::new();
    for c in 0..conns {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let mut lat = Vec::new();
            let mut buf = Vec::with_capacity(8192);
            let mut first = c == 0;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                stream.write_all(&request).await.expect("write");
                let body = read_response(&mut stream, &mut buf).await;
                lat.push(ms(t0.elapsed()));
                if first {
                    let text = String::from_utf8_lossy(&body);
                    assert!(
                        text.contains("\"data\"") && !text.contains("\"errors\""),
                        "unexpected response: {text}"
                    );
                    first = false;
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    (all.len(), all)
}

/// Read one HTTP/1.1 response with a `Content-Length`; returns its body.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Vec<u8> {
    buf.clear();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    assert!(
        head.starts_with("http/1.1 200"),
        "unexpected status: {head}"
    );
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("response without content-length");
    while buf.len() < header_end + len {
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
    buf[header_end..header_end + len].to_vec()
}
