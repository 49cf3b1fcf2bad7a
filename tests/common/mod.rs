//! Running the examples as child processes and talking HTTP to them; shared by
//! `tests/examples.rs` and `tests/faults.rs`.
//!
//! The tests look for the example binaries next to their own (`target/<profile>/examples/`):
//! `cargo test --workspace` builds them first, `cargo build --examples` does too.

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The path of the built example `name`; panics with the command that builds it if missing.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo test --workspace` (it builds the examples) or `cargo build --examples`",
        path.display()
    );
    path
}

/// A running example whose stdout lines are collected. Dropped while the process still runs
/// (a failed assertion), it kills the process, so no test leaves a server behind.
pub struct Running {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    /// Start example `name` in `cwd` with `args` and extra environment `env`; logs at `warn`
    /// go to the test's stderr.
    pub fn start(name: &str, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut cmd = Command::new(example(name));
        cmd.args(args)
            .current_dir(cwd)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// The process id, as the `kill` command takes it.
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Wait for a stdout line containing `needle`; returns it.
    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        panic!(
                            "exited with {status} before printing {needle:?}; printed {:?}",
                            self.seen
                        );
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("never printed {needle:?}; printed {:?}", self.seen);
    }

    /// The `http://ADDR` the example printed on its "admin API:" line.
    pub fn admin_url(&mut self) -> String {
        let line = self.wait_for("admin API:");
        line.split_whitespace().last().unwrap().to_owned()
    }

    /// Send SIGTERM and return at once.
    pub fn send_term(&self) {
        let pid = self.pid();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success(),
            "kill -TERM {pid}"
        );
    }

    /// Wait for the process to exit, for at most `within`: its status, or `None` if it is
    /// still running then.
    pub fn wait_exit_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then the exit status (panics if it does not exit within 60 s).
    pub fn terminate(mut self) -> ExitStatus {
        self.send_term();
        self.wait_exit_within(Duration::from_secs(60))
            .expect("did not exit within 60 s of SIGTERM")
    }

    /// SIGKILL (`kill -9`) and reap it.
    pub fn kill(mut self) -> ExitStatus {
        self.child.kill().unwrap();
        self.child.wait().unwrap()
    }

    /// Wait for the process to exit on its own; its status and every line it printed.
    pub fn wait_exit(mut self) -> (ExitStatus, Vec<String>) {
        let status = self.child.wait().unwrap();
        // The reader thread may still hold the last lines when the child is reaped: read until
        // it sees EOF and drops its sender, rather than taking only what has arrived so far.
        let mut seen = std::mem::take(&mut self.seen);
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("stdout still open after exit"),
            }
        }
        (status, seen)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `HOST:PORT` of an `http://HOST:PORT/...` URL.
pub fn host_port(url: &str) -> &str {
    url.trim_start_matches("http://").split('/').next().unwrap()
}

/// A minimal HTTP/1.1 request; returns (status, body).
pub fn http(
    url: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let addr = host_port(url);
    http_as(addr, addr, method, path, body, headers)
}

/// [`http`] to `addr` (`HOST:PORT`), saying `Host: host`, as any client may.
pub fn http_as(
    addr: &str,
    host: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    if let Some(b) = body {
        req.push_str(b);
    }
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let status = raw.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// POST a GraphQL query to the admin API at `url`; returns (status, JSON body, or the body as
/// a JSON string when it is not JSON).
pub fn graphql(url: &str, query: &str, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let body = serde_json::json!({ "query": query }).to_string();
    let (status, text) = http(url, "POST", "/admin/jobs", Some(&body), headers);
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// `GET path` on the server at `url`; returns (status, headers with lower-case names, body).
pub fn get_with_headers(url: &str, path: &str) -> (u16, Vec<(String, String)>, String) {
    let addr = host_port(url);
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}
