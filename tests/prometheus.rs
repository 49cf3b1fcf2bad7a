//! The metrics as a real Prometheus reads them, with Debian's `promtool` (package
//! `prometheus`): the alert rules the README documents (`docs/prometheus/alerts.yml`) pass
//! their unit tests on series labelled as a scrape labels them, and a real Prometheus server
//! scrapes a running service and stores its series under our labels. Ignored by `cargo test --workspace` (a
//! machine without promtool reports them ignored, not ok); `.ci/run` installs promtool and
//! runs them.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use barycenter_jobs::graphql::AdminService;
use barycenter_jobs::{JobContext, JobError, JobOutput, Registry, Scheduler, async_trait};

fn promtool(args: &[&str]) -> (bool, String) {
    let child = Command::new("promtool")
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/prometheus"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`) must be installed for this test");
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
#[ignore = "needs promtool (Debian's prometheus package): run with --include-ignored (CI does)"]
fn alert_rules_pass_their_unit_tests() {
    let (ok, out) = promtool(&["test", "rules", "alerts_test.yml"]);
    assert!(ok, "{out}");
}

struct Hello;

#[async_trait]
impl barycenter_jobs::Job for Hello {
    fn name(&self) -> &str {
        "hello"
    }
    fn description(&self) -> &str {
        "Say hello"
    }
    fn schedule(&self) -> &str {
        "0 0 * * * *"
    }
    async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
        Ok(JobOutput::processed(3))
    }
}

/// Stops the Prometheus server however the test ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A GET over plain HTTP/1.0 to this machine; the body.
fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    use std::io::Read as _;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response.split_once("\r\n\r\n")?.1.to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real Prometheus server (2.42, Debian's) scrapes a running admin service: the series
/// arrive with our `job_name` label beside Prometheus' own `job` (the scrape job), not
/// renamed to `exported_job`, and the run is counted with no wiring in the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prometheus (Debian's prometheus package): run with --include-ignored (CI does)"]
async fn a_real_prometheus_scrapes_job_name_labels() {
    let t = barycenter_jobs_test_support::sqlite().await;
    let handle = Scheduler::builder(
        Registry::builder().register(Hello).build().unwrap(),
        t.db.clone(),
    )
    .start()
    .await
    .unwrap();
    let svc = AdminService::builder(handle.clone())
        .bearer_token("scrape")
        .build();
    handle.trigger("hello").await.unwrap().wait().await.unwrap();
    let app = axum::Router::new().nest_service("/admin/jobs", svc);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    let served = tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{ scrape_interval: 1s }}
scrape_configs:
  - job_name: barycenter-jobs
    metrics_path: /admin/jobs/metrics
    authorization: {{ type: Bearer, credentials: scrape }}
    static_configs: [{{ targets: [\"{target}\"] }}]
"
        ),
    )
    .unwrap();
    let web: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let _prometheus = Server(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package `prometheus`) must be installed for this test"),
    );
    // Until the first scrape is in (a hang only past the ceiling).
    let query = "/api/v1/query?query=barycenter_jobs_runs_total%7Bstatus%3D%22succeeded%22%7D";
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let answer = loop {
        let body = tokio::task::spawn_blocking(move || http_get(web, query))
            .await
            .unwrap();
        if let Some(body) = body
            && let Ok(json) = serde_json::from_str::<serde_json::Value>(&body)
            && json["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        {
            break json;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no scrape of {target} by Prometheus on {web}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let series = &answer["data"]["result"][0];
    assert_eq!(series["metric"]["job_name"], "hello", "{answer}");
    assert_eq!(series["metric"]["job"], "barycenter-jobs", "{answer}");
    assert!(series["metric"].get("exported_job").is_none(), "{answer}");
    assert_eq!(series["value"][1], "1", "{answer}");
    served.abort();
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
}
