//! The dashboard in a real browser: headless Chromium driven through WebDriver
//! (`chromedriver`, `fantoccini`) against the example server on SQLite.
//!
//! The tests are `#[ignore]`d so that `cargo test --workspace` on a machine without a browser
//! reports them as `ignored`, never `ok`; `.ci/run` installs Debian's `chromium` and
//! `chromium-driver` and runs them with `--include-ignored`, where a missing browser fails
//! them. Locally: `cargo test --test dashboard -- --include-ignored`. Screenshots go to
//! `target/dashboard/`.
//!
//! Waits are WebDriver polls with a bounded timeout (`wait_until`), never sleeps.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, get_with_headers, graphql};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the page may take to show something before it counts as never showing it: a
/// ceiling that only catches a page that is stuck. What the page shows is asserted, not how
/// fast a headless browser on a loaded 2-core machine renders it (the page load of the
/// million-row history is measured, and printed, separately).
const UI_HANG: Duration = Duration::from_secs(60);
const SESSIONS: &str = "cleanup_expired_sessions";
const JOBS: [&str; 4] = [
    "cleanup_expired_challenges",
    "cleanup_expired_device_codes",
    "cleanup_expired_refresh_tokens",
    "cleanup_expired_sessions",
];

/// A chromedriver on a free loopback port and a headless Chromium session with a fresh
/// profile; both are gone when this is dropped.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `POST /session/{id}/se/log`: chromedriver's log of the session (`performance` has the
/// DevTools network events, `browser` the console).
#[derive(Debug)]
struct GetLog(&'static str);

impl WebDriverCompatibleCommand for GetLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": self.0 }).to_string()),
        )
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Start chromedriver and a session; panics (never skips) when the browser is missing.
    async fn start() -> Browser {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: `apt-get install -y chromium chromium-driver` (.ci/run does)"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-quic",
                    "--disable-dev-shm-usage", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
            "goog:loggingPrefs": { "performance": "ALL", "browser": "ALL" },
            "timeouts": { "pageLoad": 30000, "script": 30000 },
        });
        let caps = match caps {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let webdriver = format!("http://127.0.0.1:{port}/");
        // chromedriver takes a moment to listen: retry the session for at most 20 s.
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&webdriver)
                .await
            {
                Ok(client) => break client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no WebDriver session on {webdriver}: {e}"),
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Poll `condition` (a JS expression) until it is truthy; panics after `within`.
    async fn wait_until(&self, condition: &str, within: Duration, what: &str) {
        let deadline = Instant::now() + within;
        let script = format!("return !!({condition});");
        loop {
            if self.js(&script).await == Value::Bool(true) {
                return;
            }
            if Instant::now() >= deadline {
                let state = self
                    .js("return document.body ? document.body.innerText.slice(0, 3000) : ''")
                    .await;
                panic!("timed out after {within:?} waiting for {what}; the page says:\n{state}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn log(&self, kind: &'static str) -> Vec<Value> {
        match self.client.issue_cmd(GetLog(kind)).await.unwrap() {
            Value::Array(entries) => entries,
            other => panic!("unexpected log answer {other}"),
        }
    }

    /// Every URL requested since the last call by a document of `origin` (the page itself
    /// included), from DevTools' network events; the browser's own pages (`chrome://`) are
    /// not counted.
    async fn requested_urls(&self, origin: &str) -> Vec<String> {
        self.log("performance")
            .await
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e["message"].as_str()?).ok())
            .filter(|m| m["message"]["method"] == "Network.requestWillBeSent")
            .filter(|m| {
                m["message"]["params"]["documentURL"]
                    .as_str()
                    .is_some_and(|d| d.starts_with(origin))
            })
            .filter_map(|m| {
                m["message"]["params"]["request"]["url"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, self.client.screenshot().await.unwrap()).unwrap();
        path
    }

    /// Open the dashboard at `url` and wait for its four job rows.
    async fn show_jobs(&self, url: &str) {
        self.show_n_jobs(url, 4).await;
    }

    /// Open the dashboard at `url` and wait for `n` job rows.
    async fn show_n_jobs(&self, url: &str, n: usize) {
        self.client.goto(&format!("{url}/ui")).await.unwrap();
        self.wait_until(
            &format!("document.querySelectorAll('#jobs-body tr[data-job]').length === {n}"),
            UI_HANG,
            &format!("{n} job rows"),
        )
        .await;
    }

    /// Open `job`'s detail row (history, forms); its CSS selector.
    async fn open_detail(&self, job: &str) -> String {
        self.click(&format!(r#"{} button[data-action="history"]"#, row(job)))
            .await;
        format!("#job-{job}-detail")
    }

    /// The text of the `data-role` part of `job`'s row once it includes `text`.
    async fn row_part(&self, job: &str, role: &str, text: &str) -> String {
        let part = format!("{} [data-role={role}]", row(job));
        self.wait_until(
            &format!("(document.querySelector('{part}')?.innerText ?? '').includes('{text}')"),
            UI_HANG,
            &format!("{role} of {job} showing {text:?}"),
        )
        .await;
        self.text(&part).await
    }

    /// Set the `datetime-local` input `#input_id` to the instant `at`, written in the
    /// browser's local time as a person would type it (minutes only).
    async fn set_local_time(&self, input_id: &str, at: chrono::DateTime<chrono::Utc>) {
        self.js(&format!(
            "const d = new Date({ms}); const p = (n) => String(n).padStart(2, '0'); \
             document.getElementById('{input_id}').value = \
             `${{d.getFullYear()}}-${{p(d.getMonth() + 1)}}-${{p(d.getDate())}}T${{p(d.getHours())}}:${{p(d.getMinutes())}}`; return true",
            ms = at.timestamp_millis()
        ))
        .await;
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .text()
            .await
            .unwrap()
    }
}

/// An instant of an RFC 3339 string the API gave.
fn instant(iso: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(
        iso.as_str().unwrap_or_else(|| panic!("not a time: {iso}")),
    )
    .unwrap()
    .with_timezone(&chrono::Utc)
}

/// The runs of `job` its backfill started, oldest first.
fn backfill_runs(url: &str, job: &str) -> Vec<Value> {
    let (status, body) = graphql(
        url,
        &format!(
            r#"{{ jobLogs(jobName: "{job}", limit: 1000) {{ id status trigger attempt scheduledFor }} }}"#
        ),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    let mut runs: Vec<Value> = body["data"]["jobLogs"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .filter(|r| r["trigger"] == "backfill")
        .cloned()
        .collect();
    runs.sort_by_key(|r| r["id"].as_str().unwrap().parse::<i64>().unwrap());
    runs
}

/// `job`'s backfill in force (null when none).
fn backfill_in_force(url: &str, job: &str) -> Value {
    let (status, body) = graphql(
        url,
        &format!(r#"{{ job(name: "{job}") {{ backfill {{ from to requestedBy }} }} }}"#),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    body["data"]["job"]["backfill"].clone()
}

fn row(job: &str) -> String {
    format!(r#"tr[data-job="{job}"]"#)
}

/// The example server on a fresh SQLite database in `dir`.
fn server(dir: &Path, env: &[(&str, &str)]) -> (Running, String) {
    let mut server = Running::start("server", dir, &["--listen", "127.0.0.1:0"], env);
    let url = server.admin_url();
    server.wait_for("try:");
    (server, url)
}

fn origin(url: &str) -> String {
    format!("http://{}/", common::host_port(url))
}

fn job_state(url: &str, headers: &[(&str, &str)]) -> Value {
    let (status, body) = graphql(
        url,
        "{ availableJobs { name paused schedule } jobLogs(jobName: \"cleanup_expired_sessions\", limit: 1) { id success recordsProcessed trigger } }",
        headers,
    );
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium + chromedriver: run with --include-ignored (CI does)"]
async fn jobs_run_now_pause_reschedule_and_nothing_leaves_the_origin() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url) = server(dir.path(), &[]);
    let origin = origin(&url);

    // The headers, as the server sends them.
    let (status, headers, html) = get_with_headers(&url, "/admin/jobs/ui");
    assert_eq!(status, 200);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header"))
    };
    let csp = header("content-security-policy");
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert!(html.contains("/admin/jobs/ui/app.js"));

    let b = Browser::start().await;
    b.client.goto("about:blank").await.unwrap();
    b.requested_urls(&origin).await; // start the network log from here
    // The four jobs, one row each.
    b.show_jobs(&url).await;
    let names = b
        .js("return [...document.querySelectorAll('#jobs-body tr[data-job]')].map(r => r.dataset.job)")
        .await;
    assert_eq!(names, json!(JOBS));
    let sessions = b.text(&row(SESSIONS)).await;
    assert!(
        sessions.contains("Clean up expired user sessions") && sessions.contains("0 0 * * * *"),
        "{sessions}"
    );
    assert!(b.text("#fleet-status").await.starts_with("fleet"));
    // GraphiQL is enabled by the example (from the CDN), so the page links to it.
    assert_eq!(
        b.js("return document.getElementById('graphiql-link').getAttribute('href')")
            .await,
        json!("/admin/jobs/playground")
    );

    // Run now: the new run is shown as succeeded (how long it took is printed, not asserted).
    let before = job_state(&url, &[])["jobLogs"][0]["id"].clone();
    b.click(&format!(r#"{} button[data-action="run"]"#, row(SESSIONS)))
        .await;
    let clicked = Instant::now();
    b.wait_until(
        &format!(
            r#"document.querySelector('{} td[data-label="Last run"]').innerText.includes('succeeded')"#,
            row(SESSIONS)
        ),
        UI_HANG,
        "the manual run shown as succeeded",
    )
    .await;
    let shown_after = clicked.elapsed();
    let after = job_state(&url, &[]);
    let run = &after["jobLogs"][0];
    assert_ne!(run["id"], before, "a new run");
    assert_eq!(run["success"], true);
    assert_eq!(run["trigger"], "manual");
    let last = b
        .text(&format!(r#"{} td[data-label="Last run"]"#, row(SESSIONS)))
        .await;
    assert!(
        last.contains("2 records"),
        "the demo data's two expired sessions: {last}"
    );
    eprintln!("run shown as succeeded {shown_after:?} after the click");

    // History: the run with its outcome, a chart, the failures-only filter.
    let detail = b.open_detail(SESSIONS).await;
    b.wait_until(
        &format!("document.querySelectorAll('{detail} tbody tr[data-execution]').length >= 1"),
        UI_HANG,
        "the history table",
    )
    .await;
    let (bars, runs) = serde_json::from_value::<(u64, u64)>(
        b.js(&format!(
            "return [document.querySelectorAll('{detail} figure.chart svg rect.bar').length, document.querySelectorAll('{detail} tbody tr[data-execution]').length]"
        ))
        .await,
    )
    .unwrap();
    assert_eq!(bars, 2 * runs, "one bar per run in each of the two charts");
    b.client.set_window_size(1280, 1500).await.unwrap();
    b.screenshot("jobs-1280.png").await;
    b.client.set_window_size(1280, 1000).await.unwrap();
    b.click(&format!(r#"{detail} input[data-action="only-failures"]"#))
        .await;
    b.wait_until(
        &format!("document.querySelector('{detail} table.history tbody').innerText.includes('No failed runs')"),
        UI_HANG,
        "the failures-only filter",
    )
    .await;

    // Reschedule: an invalid cron is refused before saving; a valid one previews five runs.
    let cron = format!("#job-{SESSIONS}-cron");
    let field = b.client.find(Locator::Css(&cron)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys("61 * * * * *").await.unwrap();
    b.click(&format!(r#"{detail} button[data-action="preview"]"#))
        .await;
    b.wait_until(
        &format!("document.querySelector('{detail} [data-role=preview] .bad')"),
        UI_HANG,
        "the invalid cron refused",
    )
    .await;
    assert_eq!(
        b.js(&format!(
            "return document.querySelector('{detail} button[data-action=save]').disabled"
        ))
        .await,
        json!(true)
    );
    field.clear().await.unwrap();
    field.send_keys("0 */15 * * * *").await.unwrap();
    b.click(&format!(r#"{detail} button[data-action="preview"]"#))
        .await;
    b.wait_until(
        &format!("document.querySelectorAll('{detail} [data-role=preview] li').length === 5 && !document.querySelector('{detail} button[data-action=save]').disabled"),
        UI_HANG,
        "five fire times previewed and Save enabled",
    )
    .await;
    b.click(&format!(r#"{detail} button[data-action="save"]"#))
        .await;
    b.wait_until(
        &format!(
            "document.querySelector('{} code').innerText === '0 */15 * * * *'",
            row(SESSIONS)
        ),
        UI_HANG,
        "the new schedule shown",
    )
    .await;
    let jobs = job_state(&url, &[]);
    let api_job = |jobs: &Value| {
        jobs["availableJobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == SESSIONS)
            .unwrap()
            .clone()
    };
    assert_eq!(api_job(&jobs)["schedule"], "0 */15 * * * *");
    // Only the field that changed was saved: the zone was not pinned as a runtime setting
    // (the form used to send an empty zone as "UTC"), nor the timeout.
    let (status, body) = graphql(
        &url,
        &format!(
            r#"{{ job(name: "{SESSIONS}") {{ timeZone runtimeTimeoutSecs: timeoutSecs }} auditLog(limit: 1) {{ detail }} }}"#
        ),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["job"]["timeZone"], Value::Null, "{body}");
    assert_eq!(
        body["data"]["auditLog"][0]["detail"],
        json!("schedule=\"0 */15 * * * *\""),
        "{body}"
    );

    // Pause: the row shows paused, the button reads "Resume", and the API agrees.
    let pause = format!(r#"{} button[data-action="pause"]"#, row(SESSIONS));
    assert_eq!(b.text(&pause).await, "Pause");
    b.click(&pause).await;
    let resume = format!(r#"{} button[data-action="resume"]"#, row(SESSIONS));
    b.wait_until(
        &format!(
            "document.querySelector('{}')?.innerText === 'Resume' && document.querySelector('{} [data-badge=paused]')",
            resume.replace('\'', "\\'"),
            row(SESSIONS)
        ),
        UI_HANG,
        "paused and a Resume button",
    )
    .await;
    assert_eq!(api_job(&job_state(&url, &[]))["paused"], true);
    b.click(&resume).await;
    b.wait_until(
        &format!(
            "document.querySelector('{}')?.innerText === 'Pause'",
            pause.replace('\'', "\\'")
        ),
        UI_HANG,
        "resumed",
    )
    .await;
    assert_eq!(api_job(&job_state(&url, &[]))["paused"], false);

    // The audit log shows what was done, by whom.
    b.wait_until(
        "document.getElementById('audit-body').innerText.includes('pause') && document.getElementById('audit-body').innerText.includes('anonymous')",
        UI_HANG,
        "the audit log",
    )
    .await;

    // Keyboard: the Run now button is reachable by Tab and labelled with its words.
    let label = b
        .js(&format!(
            r#"const el = document.querySelector('{} button[data-action="run"]'); el.focus(); return [document.activeElement === el, el.innerText, el.getAttribute('aria-label')]"#,
            row(SESSIONS)
        ))
        .await;
    assert_eq!(
        label,
        json!([true, "Run now", format!("Run now: {SESSIONS}")])
    );

    // Nothing left the origin: every request in the network log, and every resource timing
    // entry, is on the server's origin; and the page's own files were among them.
    let urls = b.requested_urls(&origin).await;
    assert!(
        urls.iter()
            .any(|u| u.starts_with(&format!("{origin}admin/jobs/ui/app.js"))),
        "{urls:?}"
    );
    assert!(
        urls.iter()
            .any(|u| u.starts_with(&format!("{origin}admin/jobs/ui/app.css"))),
        "{urls:?}"
    );
    // `data:` URLs are the browser's own (the date picker's icon of a `datetime-local`
    // input): nothing is fetched, so nothing leaves the machine.
    let foreign: Vec<_> = urls
        .iter()
        .filter(|u| !u.starts_with(&origin) && !u.starts_with("data:"))
        .collect();
    assert!(foreign.is_empty(), "requests left the origin: {foreign:?}");
    let entries = b
        .js("return performance.getEntriesByType('resource').map(e => e.name)")
        .await;
    let entries: Vec<String> = serde_json::from_value(entries).unwrap();
    assert!(
        entries.iter().any(|e| e.ends_with("/admin/jobs")),
        "{entries:?}"
    );
    assert!(
        entries.iter().all(|e| e.starts_with(&origin)),
        "{entries:?}"
    );
    // No CSP violation or script error in the console.
    let console = b.log("browser").await;
    let severe: Vec<_> = console
        .iter()
        .filter(|e| {
            e["level"] == "SEVERE" && !e["message"].as_str().unwrap_or("").contains("favicon")
        })
        .collect();
    assert!(severe.is_empty(), "console errors: {severe:?}");

    // Phone width: readable, nothing wider than the screen.
    b.client.set_window_size(390, 900).await.unwrap();
    b.wait_until(
        "document.documentElement.scrollWidth <= window.innerWidth + 1",
        UI_HANG,
        "no horizontal scrolling at 390 px",
    )
    .await;
    b.js("window.scrollTo(0, 0)").await;
    b.screenshot("jobs-phone.png").await;
    b.client.set_window_size(1280, 1000).await.unwrap();

    // The network check sees a foreign request when there is one: GraphiQL (enabled from the
    // CDN by the example) asks unpkg.com.
    b.client.goto(&format!("{url}/playground")).await.unwrap();
    let urls = b.requested_urls(&origin).await;
    assert!(
        urls.iter().any(|u| u.contains("unpkg.com")),
        "the check would miss a CDN request: {urls:?}"
    );

    // The server goes away: the page says so.
    b.show_jobs(&url).await;
    server.kill();
    b.wait_until(
        "!document.getElementById('offline').hidden && document.getElementById('offline').innerText.includes('Cannot reach the server')",
        UI_HANG,
        "the unreachable-server notice",
    )
    .await;
    // The rows stay on screen (no flicker to empty).
    assert_eq!(
        b.js("return document.querySelectorAll('#jobs-body tr[data-job]').length")
            .await,
        json!(4)
    );
    b.screenshot("offline.png").await;
    b.client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium + chromedriver: run with --include-ignored (CI does)"]
async fn pause_with_a_note_and_an_end_and_the_policy_form() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = server(dir.path(), &[]);
    let b = Browser::start().await;
    b.show_jobs(&url).await;
    let detail = b.open_detail(SESSIONS).await;
    // The policy form opens with the policy in force.
    b.wait_until(
        &format!("document.querySelector('#job-{SESSIONS}-misfire').value === 'run_once'"),
        UI_HANG,
        "the policy form filled in",
    )
    .await;
    assert_eq!(
        b.js(&format!(
            "return document.querySelector('#job-{SESSIONS}-jitter').value"
        ))
        .await,
        json!("0")
    );

    // Pause with a note until two hours from now (the input takes the browser's local time).
    let note = b
        .client
        .find(Locator::Css(&format!("#job-{SESSIONS}-pause-note")))
        .await
        .unwrap();
    note.send_keys("rotating the signing keys").await.unwrap();
    b.js(&format!(
        "const d = new Date(Date.now() + 2 * 3600e3); const p = (n) => String(n).padStart(2, '0'); \
         document.getElementById('job-{SESSIONS}-pause-until').value = \
         `${{d.getFullYear()}}-${{p(d.getMonth() + 1)}}-${{p(d.getDate())}}T${{p(d.getHours())}}:${{p(d.getMinutes())}}`; return true"
    ))
    .await;
    b.click(&format!(
        r#"{detail} button[data-action="pause-with-note"]"#
    ))
    .await;
    let shown = b
        .row_part(SESSIONS, "pause-note", "rotating the signing keys")
        .await;
    assert!(
        shown.contains("by anonymous") && shown.contains("until"),
        "{shown}"
    );
    let (status, body) = graphql(
        &url,
        &format!(r#"{{ job(name: "{SESSIONS}") {{ paused pauseNote pausedUntil pausedBy }} }}"#),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    let job = &body["data"]["job"];
    assert_eq!(job["paused"], true);
    assert_eq!(job["pauseNote"], "rotating the signing keys");
    assert_eq!(job["pausedBy"], "anonymous");
    let until = chrono::DateTime::parse_from_rfc3339(job["pausedUntil"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let from_now = until - chrono::Utc::now();
    assert!(
        from_now > chrono::Duration::minutes(115) && from_now <= chrono::Duration::minutes(120),
        "{until}"
    );

    // The policy form: missed ticks run all, a jitter of 30 s, two retries; only what
    // changed is sent.
    b.js(&format!(
        "document.getElementById('job-{SESSIONS}-misfire').value = 'run_all'; return true"
    ))
    .await;
    let jitter = b
        .client
        .find(Locator::Css(&format!("#job-{SESSIONS}-jitter")))
        .await
        .unwrap();
    jitter.clear().await.unwrap();
    jitter.send_keys("30").await.unwrap();
    let retries = b
        .client
        .find(Locator::Css(&format!("#job-{SESSIONS}-retry-attempts")))
        .await
        .unwrap();
    retries.clear().await.unwrap();
    retries.send_keys("2").await.unwrap();
    b.click(&format!(r#"{detail} button[data-action="save-policy"]"#))
        .await;
    let policy = b.row_part(SESSIONS, "policy", "jitter 30 s").await;
    assert!(
        policy.contains("missed ticks: run all") && policy.contains("2 retries from 30 s"),
        "{policy}"
    );
    let (status, body) = graphql(
        &url,
        &format!(
            r#"{{ job(name: "{SESSIONS}") {{ policy {{ misfire catchUpWindowSecs jitterSecs pauseAfterFailures retryAttempts retryBackoffSecs }} }} auditLog(limit: 1) {{ action detail }} }}"#
        ),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["job"]["policy"],
        json!({ "misfire": "run_all", "catchUpWindowSecs": null, "jitterSecs": 30, "pauseAfterFailures": 0, "retryAttempts": 2, "retryBackoffSecs": 30 })
    );
    assert_eq!(
        body["data"]["auditLog"][0],
        json!({ "action": "policy", "detail": "misfire=run_all jitter_secs=30 retry_attempts=2" })
    );
    b.screenshot("policy.png").await;
    b.client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium + chromedriver: run with --include-ignored (CI does)"]
async fn backfill_with_a_preview_and_the_overlap_policy() {
    // The example's schedules: sessions every hour on the hour, challenges every 5 minutes.
    const CHALLENGES: &str = "cleanup_expired_challenges";
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = server(dir.path(), &[]);
    let b = Browser::start().await;
    b.show_jobs(&url).await;
    let detail = b.open_detail(SESSIONS).await;

    // Overlap: the form opens with the policy in force (skip); buffer one is saved, alone.
    b.wait_until(
        &format!("document.querySelector('#job-{SESSIONS}-overlap').value === 'skip'"),
        UI_HANG,
        "the overlap select filled in",
    )
    .await;
    b.js(&format!(
        "document.getElementById('job-{SESSIONS}-overlap').value = 'buffer_one'; return true"
    ))
    .await;
    b.click(&format!(r#"{detail} button[data-action="save-policy"]"#))
        .await;
    let policy = b
        .row_part(SESSIONS, "policy", "overlapping ticks: buffer one")
        .await;
    assert!(
        !policy.contains("missed ticks"),
        "only the overlap: {policy}"
    );
    let (status, body) = graphql(
        &url,
        &format!(
            r#"{{ job(name: "{SESSIONS}") {{ policy {{ overlap misfire jitterSecs retryAttempts }} }} auditLog(limit: 1) {{ action detail }} }}"#
        ),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["job"]["policy"],
        json!({ "overlap": "buffer_one", "misfire": "run_once", "jitterSecs": 0, "retryAttempts": 0 })
    );
    assert_eq!(body["data"]["auditLog"][0]["action"], "policy", "{body}");

    // A range of the past holding three ticks of the hourly job: from half past the hour
    // five hours ago to half past the hour three hours ago (so its ends are no ticks, and
    // whether they are included does not matter).
    let now = chrono::Utc::now();
    let hour =
        chrono::DateTime::from_timestamp(now.timestamp() - now.timestamp().rem_euclid(3600), 0)
            .unwrap();
    let h = chrono::Duration::hours;
    let half = chrono::Duration::minutes(30);
    let ticks = [hour - h(5), hour - h(4), hour - h(3)];
    let (from, to) = (ticks[0] - half, ticks[2] + half);
    let from_id = format!("job-{SESSIONS}-backfill-from");
    let to_id = format!("job-{SESSIONS}-backfill-to");
    let preview = format!("{detail} [data-role=backfill-preview]");
    let start = format!(r#"{detail} button[data-action="backfill"]"#);
    let start_disabled = format!("document.querySelector('{start}').disabled");

    // Reversed, the range is refused in the preview, and Start stays disabled.
    b.set_local_time(&from_id, to).await;
    b.set_local_time(&to_id, from).await;
    b.click(&format!(
        r#"{detail} button[data-action="preview-backfill"]"#
    ))
    .await;
    b.wait_until(
        &format!("document.querySelector('{preview} .bad')"),
        UI_HANG,
        "the reversed range refused",
    )
    .await;
    assert_eq!(b.js(&format!("return {start_disabled}")).await, json!(true));

    // In order: three ticks, the first the oldest, and Start enabled.
    b.set_local_time(&from_id, from).await;
    b.set_local_time(&to_id, to).await;
    b.click(&format!(
        r#"{detail} button[data-action="preview-backfill"]"#
    ))
    .await;
    b.wait_until(
        &format!("document.querySelectorAll('{preview} li').length === 3 && !{start_disabled}"),
        UI_HANG,
        "three ticks previewed and Start enabled",
    )
    .await;
    let shown = b
        .js(&format!(
            "return [document.querySelector('{preview} [data-role=backfill-ticks]').innerText, \
             [...document.querySelectorAll('{preview} li time')].map(t => t.getAttribute('datetime'))]"
        ))
        .await;
    assert_eq!(shown[0], "3 ticks to run:", "{shown}");
    let listed: Vec<_> = shown[1].as_array().unwrap().iter().map(instant).collect();
    assert_eq!(listed, ticks, "{shown}");

    // Start: the outcome is said in the row, and the three ticks run once each, oldest first,
    // each recorded with its tick.
    // (The row's message still says how the policy was saved: cleared first.)
    let msg = format!("{} .msg", row(SESSIONS));
    b.js(&format!(
        "const m = document.querySelector('{msg}'); m.textContent = ''; m.className = 'msg'; return true"
    ))
    .await;
    b.click(&start).await;
    b.wait_until(
        &format!("document.querySelector('{msg}').classList.contains('ok') && document.querySelector('{msg}').innerText !== ''"),
        UI_HANG,
        "the backfill's outcome",
    )
    .await;
    let outcome = b.text(&msg).await;
    assert_eq!(
        outcome,
        format!("Job {SESSIONS}: backfill of 3 ticks started")
    );
    let deadline = Instant::now() + UI_HANG;
    let runs = loop {
        let runs = backfill_runs(&url, SESSIONS);
        if runs.len() >= 3 && runs.iter().all(|r| r["status"] != "running") {
            break runs;
        }
        assert!(
            Instant::now() < deadline,
            "three finished backfill runs: {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(runs.len(), 3, "each tick once: {runs:?}");
    let scheduled: Vec<_> = runs.iter().map(|r| instant(&r["scheduledFor"])).collect();
    assert_eq!(scheduled, ticks, "oldest first: {runs:?}");
    for r in &runs {
        assert_eq!(r["status"], "succeeded", "{r}");
        assert_eq!(r["attempt"], 1, "{r}");
    }
    // Done, the backfill is no longer in force, and the page stops saying so.
    let deadline = Instant::now() + UI_HANG;
    while !backfill_in_force(&url, SESSIONS).is_null() {
        assert!(
            Instant::now() < deadline,
            "the finished backfill still in force"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The history shows the three runs as backfills.
    b.wait_until(
        &format!(
            "[...document.querySelectorAll('{detail} tbody tr[data-trigger=backfill]')].filter(r => r.querySelector('td[data-label=Trigger]').innerText === 'backfill').length === 3 \
             && !document.querySelector('{} [data-role=backfill]')",
            row(SESSIONS)
        ),
        UI_HANG,
        "three backfill runs in the history",
    )
    .await;
    b.screenshot("backfill.png").await;

    // More than 1000 ticks (100 hours of a job every 5 minutes) are refused in the preview.
    let detail = b.open_detail(CHALLENGES).await;
    let from_id = format!("job-{CHALLENGES}-backfill-from");
    let to_id = format!("job-{CHALLENGES}-backfill-to");
    let preview = format!("{detail} [data-role=backfill-preview]");
    let start = format!(r#"{detail} button[data-action="backfill"]"#);
    let start_disabled = format!("document.querySelector('{start}').disabled");
    b.set_local_time(&from_id, hour - h(100) - half).await;
    b.set_local_time(&to_id, hour - h(1) + chrono::Duration::minutes(2))
        .await;
    b.click(&format!(
        r#"{detail} button[data-action="preview-backfill"]"#
    ))
    .await;
    b.wait_until(
        &format!("document.querySelector('{preview} .bad')"),
        UI_HANG,
        "too many ticks refused",
    )
    .await;
    assert_eq!(b.js(&format!("return {start_disabled}")).await, json!(true));

    // A long backfill (from 80 hours ago to 1 hour ago: 949 ticks), cancelled while it runs:
    // the row and the detail say it is in force until the Cancel click, then neither does,
    // nor the API, and not every tick ran.
    const LONG: usize = 79 * 12 + 1;
    b.set_local_time(&from_id, hour - h(80)).await;
    b.set_local_time(&to_id, hour - h(1)).await;
    b.click(&format!(
        r#"{detail} button[data-action="preview-backfill"]"#
    ))
    .await;
    b.wait_until(
        &format!("document.querySelectorAll('{preview} li').length === 5 && !{start_disabled}"),
        UI_HANG,
        "the long range previewed",
    )
    .await;
    assert_eq!(
        b.text(&format!("{preview} [data-role=backfill-ticks]"))
            .await,
        format!("{LONG} ticks to run, the first 5:")
    );
    b.click(&start).await;
    let shown = b.row_part(CHALLENGES, "backfill", "backfilling").await;
    assert!(shown.contains("(by anonymous)"), "{shown}");
    let in_force = backfill_in_force(&url, CHALLENGES);
    assert_eq!(in_force["requestedBy"], "anonymous", "{in_force}");
    assert_eq!(instant(&in_force["from"]), hour - h(80), "{in_force}");
    assert_eq!(instant(&in_force["to"]), hour - h(1), "{in_force}");
    let cancel = format!(r#"{detail} button[data-action="cancel-backfill"]"#);
    b.wait_until(
        &format!("document.querySelector('{cancel}').offsetParent !== null && !document.querySelector('{cancel}').disabled"),
        UI_HANG,
        "the Cancel backfill button",
    )
    .await;
    b.click(&cancel).await;
    b.wait_until(
        &format!(
            "!document.querySelector('{} [data-role=backfill]') && document.querySelector('{detail} [data-role=backfill-running]').hidden",
            row(CHALLENGES)
        ),
        UI_HANG,
        "the backfill no longer shown",
    )
    .await;
    assert_eq!(backfill_in_force(&url, CHALLENGES), Value::Null);
    let ran = backfill_runs(&url, CHALLENGES).len();
    eprintln!("{ran} of {LONG} ticks ran before the cancel");
    assert!(ran < LONG, "cancelled before the end: {ran} runs");
    b.screenshot("backfill-cancelled.png").await;
    b.client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium + chromedriver: run with --include-ignored (CI does)"]
async fn a_read_only_token_disables_the_operate_buttons() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = server(
        dir.path(),
        &[
            ("BARYCENTER_JOBS_ADMIN_TOKEN", "operate-secret-0123"),
            ("BARYCENTER_JOBS_READONLY_TOKEN", "read-secret-0123"),
        ],
    );
    let b = Browser::start().await;
    b.client.goto(&format!("{url}/ui")).await.unwrap();

    // The API answers 401: the page asks for a token, once.
    b.wait_until(
        "document.getElementById('token-dialog').open",
        UI_HANG,
        "the token dialog",
    )
    .await;
    let input = b.client.find(Locator::Id("token-input")).await.unwrap();
    input.send_keys("read-secret-0123").await.unwrap();
    b.click("#token-form button[type=submit]").await;
    b.wait_until(
        "document.querySelectorAll('#jobs-body tr[data-job]').length === 4 && !document.getElementById('token-dialog').open",
        UI_HANG,
        "the jobs after signing in",
    )
    .await;
    assert_eq!(b.text("#viewer").await, "readonly-token (read)");
    let buttons = b
        .js(r#"return [...document.querySelectorAll('#jobs-body button[data-action=run], #jobs-body button[data-action=pause], #jobs-body button[data-action=resume], #jobs-body button[data-action=dry-run]')].map(b => [b.disabled, b.title])"#)
        .await;
    let buttons = buttons.as_array().unwrap();
    assert_eq!(buttons.len(), 12, "three operate buttons per job");
    for b in buttons {
        assert_eq!(b[0], true, "disabled: {b}");
        assert!(
            b[1].as_str().unwrap().contains("operate role"),
            "tooltip: {b}"
        );
    }
    // Cancel (shown while a run is open) is disabled for this viewer too, with the reason.
    let cancels = b
        .js("return [...document.querySelectorAll('#jobs-body button[data-action=cancel-run]')].map(b => [b.disabled, b.title])")
        .await;
    let cancels = cancels.as_array().unwrap();
    assert_eq!(cancels.len(), 4, "one Cancel per job row");
    for c in cancels {
        assert_eq!(c[0], true, "disabled: {c}");
        assert!(
            c[1].as_str().unwrap().contains("operate role"),
            "tooltip: {c}"
        );
    }
    // Reading still works: the history opens.
    b.click(&format!(
        r#"{} button[data-action="history"]"#,
        row(SESSIONS)
    ))
    .await;
    b.wait_until(
        &format!("document.querySelector('#job-{SESSIONS}-detail table.history tbody').innerText.includes('No runs yet')"),
        UI_HANG,
        "the (empty) history",
    )
    .await;
    assert_eq!(
        b.js(&format!(
            "return document.querySelector('#job-{SESSIONS}-detail button[data-action=save]').disabled"
        ))
        .await,
        json!(true)
    );
    // So is a backfill, even once previewed (a query the read role may ask).
    b.set_local_time(
        &format!("job-{SESSIONS}-backfill-from"),
        chrono::Utc::now() - chrono::Duration::hours(3),
    )
    .await;
    b.set_local_time(
        &format!("job-{SESSIONS}-backfill-to"),
        chrono::Utc::now() - chrono::Duration::hours(1),
    )
    .await;
    b.click(&format!(
        r#"#job-{SESSIONS}-detail button[data-action="preview-backfill"]"#
    ))
    .await;
    b.wait_until(
        &format!("document.querySelector('#job-{SESSIONS}-detail [data-role=backfill-preview] [data-role=backfill-ticks]')"),
        UI_HANG,
        "the backfill previewed",
    )
    .await;
    let start = b
        .js(&format!(
            "const b = document.querySelector('#job-{SESSIONS}-detail button[data-action=backfill]'); return [b.disabled, b.title]"
        ))
        .await;
    assert_eq!(start[0], true, "{start}");
    assert!(
        start[1].as_str().unwrap().contains("operate role"),
        "{start}"
    );
    b.screenshot("read-only.png").await;

    // The token is kept for the tab: a reload asks no more.
    assert_eq!(
        b.js("return sessionStorage.getItem('barycenter-jobs-token')")
            .await,
        json!("read-secret-0123")
    );
    b.client.refresh().await.unwrap();
    b.wait_until(
        "document.body.dataset.refreshes >= 1",
        UI_HANG,
        "the page after a reload",
    )
    .await;
    assert_eq!(
        b.js("return document.getElementById('token-dialog').open")
            .await,
        json!(false)
    );
    // The API agrees the token is read-only: a mutation with it is refused.
    let (_, body) = graphql(
        &url,
        r#"mutation { pauseJob(jobName: "cleanup_expired_sessions") { success } }"#,
        &[("Authorization", "Bearer read-secret-0123")],
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("forbidden"),
        "{body}"
    );
    b.client.clone().close().await.unwrap();
}

/// The example's `demo_slow_run` (one record every 100 ms), present with this variable.
const SLOW: &str = "demo_slow_run";
const SLOW_JOB_ENV: (&str, &str) = ("BARYCENTER_JOBS_DEMO_SLOW_JOB", "1");

/// Run `id` as the API has it.
fn execution(url: &str, id: &str) -> Value {
    let (status, body) = graphql(
        url,
        &format!(
            r#"{{ jobExecution(id: "{id}") {{ id jobName status completedAt recordsProcessed errorMessage }} }}"#
        ),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    body["data"]["jobExecution"].clone()
}

/// The `[data-role=live]` of `scope` as `[records, rate]` (null while not shown).
async fn live_count(b: &Browser, scope: &str) -> Option<(u64, f64)> {
    let v = b
        .js(&format!(
            "const l = document.querySelector('{scope} [data-role=live]'); \
             return l && l.dataset.records !== '' && l.dataset.rate !== '' ? [Number(l.dataset.records), Number(l.dataset.rate)] : null"
        ))
        .await;
    serde_json::from_value(v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium + chromedriver: run with --include-ignored (CI does)"]
async fn cancel_a_running_run_and_watch_its_live_count() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url) = server(dir.path(), &[SLOW_JOB_ENV]);
    let b = Browser::start().await;
    b.show_n_jobs(&url, 5).await;
    // Nothing runs yet: no Cancel button is shown.
    let job_cancel = format!(r#"{} button[data-action="cancel-run"]"#, row(SLOW));
    assert_eq!(
        b.js(&format!(
            "return document.querySelector('{job_cancel}').hidden"
        ))
        .await,
        json!(true)
    );

    // Run now, with the history open: the run shows up there and on the job's row.
    let detail = b.open_detail(SLOW).await;
    b.click(&format!(r#"{} button[data-action="run"]"#, row(SLOW)))
        .await;
    b.wait_until(
        &format!("document.querySelector('{job_cancel}').offsetParent !== null && document.querySelector('{job_cancel}').dataset.execution !== ''"),
        UI_HANG,
        "the Cancel button of the running run on the job's row",
    )
    .await;
    let id = b
        .js(&format!(
            "return document.querySelector('{job_cancel}').dataset.execution"
        ))
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(execution(&url, &id)["status"], "running");
    let running_row = format!(r#"{detail} tbody tr[data-execution="{id}"]"#);

    // The count grows while the run goes on, with a rate, in the row and in the history.
    let job_row = row(SLOW);
    b.wait_until(
        &format!(
            "(document.querySelector('{job_row} [data-role=live]')?.dataset.records ?? '') !== ''"
        ),
        UI_HANG,
        "a first count on the job's row",
    )
    .await;
    let deadline = Instant::now() + UI_HANG;
    let (first, _) = loop {
        if let Some(c) = live_count(&b, &job_row).await {
            break c;
        }
        assert!(Instant::now() < deadline, "no rate shown");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let deadline = Instant::now() + UI_HANG;
    let (second, rate) = loop {
        if let Some((n, rate)) = live_count(&b, &job_row).await
            && n > first
        {
            break (n, rate);
        }
        assert!(
            Instant::now() < deadline,
            "the count stuck at {first} for {UI_HANG:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // One record per 100 ms: about 10 a second (generously bounded for a loaded machine;
    // the count lags the clock by up to 2 s, and the start is stored to the second).
    assert!(rate > 1.0 && rate <= 12.0, "rate {rate} records/s");
    let text = b.text(&format!("{job_row} [data-role=live]")).await;
    assert!(
        text.contains("records so far")
            && text.contains("running for")
            && text.contains("records/s"),
        "{text}"
    );
    eprintln!("the page showed {first}, then {second} records ({rate} records/s): {text}");
    b.wait_until(
        &format!("document.querySelector('{running_row} [data-role=live]') && document.querySelector('{running_row} button[data-action=cancel-run]')"),
        UI_HANG,
        "the live count and Cancel in the history",
    )
    .await;
    b.screenshot("live-count.png").await;

    // Cancel from the history: the outcome is said on the job's row.
    let shown_before = live_count(&b, &running_row)
        .await
        .map_or(second, |(n, _)| n.max(second));
    b.click(&format!(
        r#"{running_row} button[data-action="cancel-run"]"#
    ))
    .await;
    let msg = format!("{job_row} .msg");
    b.wait_until(
        &format!("document.querySelector('{msg}').classList.contains('ok') && document.querySelector('{msg}').innerText.includes('cancel asked')"),
        UI_HANG,
        "the cancel's outcome",
    )
    .await;
    assert_eq!(
        b.text(&msg).await,
        format!("Run {id} of {SLOW}: cancel asked")
    );
    // The run stops within about 2 s; its row keeps exactly what the job reported.
    let reported = server.wait_for(&format!("demo_slow_run: run {id} cancelled after"));
    let reported: u64 = reported
        .split_whitespace()
        .nth(5)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {reported:?}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let run = loop {
        let run = execution(&url, &id);
        if run["status"] != "running" {
            break run;
        }
        assert!(Instant::now() < deadline, "still running: {run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(run["status"], "cancelled", "{run}");
    assert_eq!(run["errorMessage"], "cancelled by anonymous", "{run}");
    assert_eq!(run["recordsProcessed"], json!(reported), "{run}");
    assert!(
        reported >= shown_before,
        "the job reported {reported}, fewer than the {shown_before} the page showed"
    );

    // The page follows: the run is shown cancelled, with no live count and no Cancel.
    b.wait_until(
        &format!(
            "document.querySelector('{job_row} td[data-label=\"Last run\"]').innerText.includes('cancelled') \
             && !document.querySelector('{job_row} [data-role=live]') && document.querySelector('{job_cancel}').hidden \
             && document.querySelector('{running_row}')?.dataset.status === 'cancelled' \
             && !document.querySelector('{running_row} button[data-action=cancel-run]') \
             && document.querySelector('{running_row}').innerText.includes('cancelled by anonymous')"
        ),
        UI_HANG,
        "the run shown as cancelled",
    )
    .await;
    let records = b
        .text(&format!(r#"{running_row} td[data-label="Records"]"#))
        .await;
    assert_eq!(records, reported.to_string());
    b.screenshot("cancelled.png").await;
    b.client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium + chromedriver: run with --include-ignored (CI does)"]
async fn the_fleet_panel_lists_the_running_scheduler() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = server(dir.path(), &[]);
    let (status, body) = graphql(&url, "{ fleet { instance host pid version running } }", &[]);
    assert_eq!(status, 200, "{body}");
    let fleet = body["data"]["fleet"].as_array().unwrap();
    assert_eq!(fleet.len(), 1, "{body}");
    let me = &fleet[0];
    assert_eq!(me["version"], env!("CARGO_PKG_VERSION"), "{me}");

    let b = Browser::start().await;
    b.show_jobs(&url).await;
    let panel = "section[data-role=fleet]";
    b.wait_until(
        &format!("document.querySelectorAll('{panel} tr[data-replica]').length === 1"),
        UI_HANG,
        "one scheduler in the fleet panel",
    )
    .await;
    assert_eq!(b.text(&format!("{panel} h2")).await, "Fleet");
    let shown = b
        .js(&format!(
            "const r = document.querySelector('{panel} tr[data-replica]'); \
             const cell = (label) => r.querySelector(`td[data-label=\"${{label}}\"]`).innerText; \
             return {{ replica: r.dataset.replica, instance: cell('Instance'), host: cell('Host'), version: cell('Version'), \
                      started: cell('Started'), seen: cell('Last seen'), skew: cell('Clock skew'), running: cell('Running') }}"
        ))
        .await;
    assert_eq!(shown["replica"], me["instance"], "{shown}");
    assert!(
        shown["instance"]
            .as_str()
            .unwrap()
            .contains(me["instance"].as_str().unwrap()),
        "{shown}"
    );
    assert_eq!(shown["host"], me["host"], "{shown}");
    assert_eq!(shown["version"], me["version"], "{shown}");
    assert_eq!(shown["running"], "0", "{shown}");
    for when in ["started", "seen"] {
        assert_ne!(shown[when], "—", "{when}: {shown}");
    }
    assert!(!shown["skew"].as_str().unwrap().is_empty(), "{shown}");
    assert!(
        b.text(&format!("{panel} #fleet-count"))
            .await
            .contains("1 scheduler seen"),
    );
    b.screenshot("fleet.png").await;
    b.client.clone().close().await.unwrap();
}

/// Page load with 1,000,000 history rows (figures for BENCHMARKS.md): time to first render
/// and bytes transferred, then the history of one job. Not run in CI:
/// `cargo test --release --test dashboard -- --ignored page_load_with_a_million --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: 1,000,000 rows, run by hand (see BENCHMARKS.md)"]
async fn page_load_with_a_million_history_rows() {
    const ROWS: i64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    // First start creates the tables and the demo rows; then fill the history.
    let (server, _) = server(dir.path(), &[]);
    assert!(server.terminate().success());
    let db_url = format!(
        "sqlite://{}",
        dir.path().join("barycenter-jobs.db").display()
    );
    let db = barycenter_jobs::Database::connect(&db_url).await.unwrap();
    let base_ts = chrono::Utc::now().timestamp() - ROWS * 2;
    let fill = format!(
        "INSERT INTO job_executions (job_name, started_at, completed_at, success, error_message, records_processed, status, trigger_kind, instance, duration_ms, scheduled_for)
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last}),
              r(i, failed) AS (SELECT i, abs(random()) % 50 = 0 FROM n)
         SELECT CASE i % 4 WHEN 0 THEN 'cleanup_expired_sessions' WHEN 1 THEN 'cleanup_expired_refresh_tokens'
                           WHEN 2 THEN 'cleanup_expired_challenges' ELSE 'cleanup_expired_device_codes' END,
                {base_ts} + 2 * i, {base_ts} + 2 * i + 1,
                CASE WHEN failed THEN 0 ELSE 1 END, CASE WHEN failed THEN 'database is locked' END,
                CASE WHEN failed THEN NULL ELSE i % 100 END,
                CASE WHEN failed THEN 'failed' ELSE 'succeeded' END, 'scheduled', 'bench', 5 + i % 40, {base_ts} + 2 * i
         FROM r",
        last = ROWS - 1
    );
    let started = Instant::now();
    match &db {
        barycenter_jobs::Database::Sqlite(pool) => {
            sqlx::query(sqlx::AssertSqlSafe(fill))
                .execute(pool)
                .await
                .unwrap();
        }
        _ => unreachable!(),
    }
    db.close().await;
    eprintln!("inserted {ROWS} rows in {:?}", started.elapsed());

    let mut server = Running::start(
        "server",
        dir.path(),
        &["--listen", "127.0.0.1:0", "--no-seed"],
        &[],
    );
    let url = server.admin_url();
    server.wait_for("try:");
    let (_, count) = graphql(&url, "{ jobLogs(limit: 1) { id } }", &[]);
    assert!(
        count["data"]["jobLogs"][0]["id"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            >= ROWS,
        "{count}"
    );

    let b = Browser::start().await;
    let mut loads = Vec::new();
    for round in 0..5 {
        // A fresh page each round; the first round has a cold HTTP cache.
        b.client.goto(&format!("{url}/ui")).await.unwrap();
        b.wait_until(
            "performance.getEntriesByName('barycenter-jobs:first-render').length === 1",
            Duration::from_secs(60),
            "the first render",
        )
        .await;
        let m = b
            .js(r#"
                const nav = performance.getEntriesByType('navigation')[0];
                const render = performance.getEntriesByName('barycenter-jobs:first-render')[0].startTime;
                const res = performance.getEntriesByType('resource').filter(e => e.startTime <= render);
                const sum = (xs, f) => xs.reduce((a, e) => a + f(e), 0);
                const assets = res.filter(e => e.initiatorType !== 'fetch');
                const api = res.filter(e => e.initiatorType === 'fetch');
                return {
                  firstRenderMs: render,
                  domContentLoadedMs: nav.domContentLoadedEventEnd,
                  pageBytes: nav.transferSize + sum(assets, e => e.transferSize),
                  pageBodyBytes: nav.encodedBodySize + sum(assets, e => e.encodedBodySize),
                  apiBytes: sum(api, e => e.transferSize),
                  apiMs: sum(api, e => e.duration),
                  requests: res.length + 1,
                };"#)
            .await;
        eprintln!("round {round}: {m}");
        loads.push(m);
    }
    // One job's history (50 newest runs + 30 for the chart) out of the million.
    b.click(&format!(
        r#"{} button[data-action="history"]"#,
        row(SESSIONS)
    ))
    .await;
    let opened = Instant::now();
    b.wait_until(
        &format!("document.querySelectorAll('#job-{SESSIONS}-detail tbody tr[data-execution]').length === 50"),
        Duration::from_secs(60),
        "the history",
    )
    .await;
    eprintln!(
        "history of one job shown {:?} after the click",
        opened.elapsed()
    );
    let history = b
        .js("const e = performance.getEntriesByType('resource').filter(e => e.initiatorType === 'fetch').pop(); return {ms: e.duration, bytes: e.transferSize}")
        .await;
    eprintln!("history request: {history}");
    b.screenshot("million-rows.png").await;
    b.client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium + chromedriver: run with --include-ignored (CI does)"]
async fn a_runs_log_in_its_detail() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = server(dir.path(), &[]);
    let b = Browser::start().await;
    b.show_jobs(&url).await;
    let detail = b.open_detail(SESSIONS).await;
    // A manual run of the sessions cleanup, which logs its table, its batches and its end.
    b.click(&format!(r#"{} button[data-action="run"]"#, row(SESSIONS)))
        .await;
    b.wait_until(
        &format!(
            r#"[...document.querySelectorAll('{detail} tr[data-execution]')].some(r => r.dataset.trigger === 'manual' && r.dataset.status === 'succeeded')"#
        ),
        UI_HANG,
        "the manual run in the history",
    )
    .await;
    let id = b
        .js(&format!(
            r#"return [...document.querySelectorAll('{detail} tr[data-execution]')].find(r => r.dataset.trigger === 'manual').dataset.execution"#
        ))
        .await;
    let id = id.as_str().unwrap().to_owned();
    b.click(&format!(
        r#"{detail} tr[data-execution="{id}"] button[data-action="show-log"]"#
    ))
    .await;
    b.wait_until(
        &format!(
            r#"document.querySelector('{detail} [data-role="run-log"]').innerText.includes('cleanup done')"#
        ),
        UI_HANG,
        "the run's log shown",
    )
    .await;
    let shown = b.text(&format!(r#"{detail} [data-role="run-log"]"#)).await;
    assert!(shown.contains(&format!("Log of run {id}")), "{shown}");
    assert!(shown.contains("deleting expired rows"), "{shown}");
    // The page shows what the API keeps, line for line.
    let (status, body) = graphql(
        &url,
        &format!(r#"{{ jobExecution(id: "{id}") {{ logs {{ level message }} }} }}"#),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    let lines = body["data"]["jobExecution"]["logs"].as_array().unwrap();
    assert!(!lines.is_empty());
    let shown_lines = b
        .js(&format!(
            r#"return document.querySelectorAll('{detail} [data-role="run-log"] li').length"#
        ))
        .await;
    assert_eq!(shown_lines, json!(lines.len()));
    for line in lines {
        assert!(
            shown.contains(line["message"].as_str().unwrap()),
            "{shown} lacks {line}"
        );
    }
    b.client.clone().close().await.unwrap();
}
