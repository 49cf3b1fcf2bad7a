//! Shared helpers of the barycenter-jobs benches (the benches themselves are in `benches/`):
//! command-line flags, the databases a bench runs on and its runtime, percentiles, CPU time
//! and peak RSS of the current process, plain-text tables, (in [`barycenter`]) the Barycenter
//! tables the built-in cleanups clean, and (in [`history`]) the execution history the
//! `history`, `health` and `admin_http` benches query.
//!
//! Every bench is a `harness = false` binary run with
//! `cargo bench -p barycenter-jobs-benches --bench NAME -- [--quick] [...]`; see
//! `BENCHMARKS.md` at the root of the workspace for what each one measures.

use std::time::Duration;

use barycenter_jobs_core::Backend;
use barycenter_jobs_test_support::TestDb;

pub mod barycenter;
pub mod history;

/// Command-line flags of a bench: `--quick`, `--name value` pairs and bare words.
#[derive(Debug, Clone, Default)]
pub struct Args {
    raw: Vec<String>,
}

impl Args {
    /// The process arguments, minus the program name and the `--bench` flag cargo adds.
    pub fn from_env() -> Self {
        Self {
            raw: std::env::args()
                .skip(1)
                .filter(|a| a != "--bench")
                .collect(),
        }
    }

    /// The process arguments, as [`from_env`](Self::from_env); `None`, after printing `usage`,
    /// when `--help` or `-h` was given.
    pub fn from_env_unless_help(usage: &str) -> Option<Self> {
        let args = Self::from_env();
        if args.flag("--help") || args.flag("-h") {
            println!("{usage}");
            return None;
        }
        Some(args)
    }

    /// Whether `--quick` (small sizes) was given.
    pub fn quick(&self) -> bool {
        self.flag("--quick")
    }

    /// Whether a bare flag was given.
    pub fn flag(&self, name: &str) -> bool {
        self.raw.iter().any(|a| a == name)
    }

    /// The value after `--name`, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.raw
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.raw.get(i + 1))
            .map(String::as_str)
    }

    /// The comma-separated list after `--name`, or `default`, each item parsed; an item that
    /// does not parse is left out.
    pub fn list<T: std::str::FromStr>(&self, name: &str, default: &str) -> Vec<T> {
        self.value(name)
            .unwrap_or(default)
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    }

    /// The value after `--name` parsed, or `default`.
    pub fn parsed<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.value(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
}

/// The first column of the one row `query` returns, an integer; panics naming `what` when the
/// query fails or its value is not an integer.
pub async fn scalar(
    db: &barycenter_jobs_core::Database,
    query: &barycenter_jobs_core::sea_query::SelectStatement,
    what: &str,
) -> i64 {
    db.fetch_optional(query)
        .await
        .expect(what)
        .expect("one row")
        .i64_at(0)
        .expect(what)
}

/// The databases a bench runs on: `--db sqlite`, `--db postgres`, or both (`--db all`, the
/// default).
pub fn backends(args: &Args) -> Vec<Backend> {
    match args.value("--db").unwrap_or("all") {
        "sqlite" => vec![Backend::Sqlite],
        "postgres" => vec![Backend::Postgres],
        _ => vec![Backend::Sqlite, Backend::Postgres],
    }
}

/// The backend's name in the headings of the cleanup benches, which run SQLite in WAL mode.
pub fn wal_label(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SQLite (WAL file)",
        other => label(other),
    }
}

/// The backend's name in a bench's headings.
pub fn label(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
        _ => "MariaDB",
    }
}

/// A fresh database for one bench, from test support as the tests have theirs: SQLite in a
/// temporary directory, PostgreSQL on [`postgres_url`]'s server; dropped with the [`TestDb`].
///
/// # Panics
///
/// On MariaDB / MySQL (the benches run on SQLite and PostgreSQL), and when the database cannot
/// be created.
pub async fn fresh_database(backend: Backend) -> TestDb {
    match backend {
        Backend::Sqlite => barycenter_jobs_test_support::sqlite().await,
        Backend::Postgres => barycenter_jobs_test_support::postgres_on(&postgres_url()).await,
        other => panic!("the benches run on SQLite and PostgreSQL, not {other:?}"),
    }
}

/// The runtime a bench runs in: multi-threaded with two workers, as on the two-core machine
/// of BENCHMARKS.md.
///
/// # Panics
///
/// When the runtime cannot be built.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Percentiles of a sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Number of values.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

impl Summary {
    /// Summarise `values` (any order; sorted in place).
    pub fn of(values: &mut [f64]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        Self {
            count: values.len(),
            p50: percentile_sorted(values, 50.0),
            p99: percentile_sorted(values, 99.0),
            max: values[values.len() - 1],
        }
    }
}

/// The `p`th percentile (nearest rank) of an ascending slice; 0 when empty.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of a few values (for the median of rounds).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Milliseconds in a duration, as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Clock ticks per second of `/proc/self/stat` (`getconf CLK_TCK`, 100 when unknown).
pub fn clock_ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// User plus system CPU time of this process so far (all threads, including exited ones),
/// from `/proc/self/stat`, with the resolution of one clock tick (10 ms).
pub fn cpu_time(ticks_per_sec: f64) -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line; 12 and 13 after `) `.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / ticks_per_sec)
}

/// Peak resident set size of this process in MiB (`VmHWM` of `/proc/self/status`).
pub fn peak_rss_mib() -> f64 {
    proc_status_kib("VmHWM:") / 1024.0
}

/// Current resident set size of this process in MiB (`VmRSS` of `/proc/self/status`).
pub fn rss_mib() -> f64 {
    proc_status_kib("VmRSS:") / 1024.0
}

fn proc_status_kib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// A plain-text table, printed with aligned columns (and valid as Markdown).
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<S: ToString>(header: &[S]) -> Self {
        Self {
            header: header.iter().map(ToString::to_string).collect(),
            rows: Vec::new(),
        }
    }

    /// Add one row.
    pub fn row<S: ToString>(&mut self, cells: &[S]) {
        self.rows
            .push(cells.iter().map(ToString::to_string).collect());
    }

    /// Render as a Markdown table with padded columns.
    pub fn render(&self) -> String {
        let n = self.header.len();
        let mut width = vec![3; n];
        for r in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in r.iter().enumerate().take(n) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::from("|");
            for (i, w) in width.iter().enumerate() {
                let c = cells.get(i).map(String::as_str).unwrap_or("");
                s.push_str(&format!(" {c:<w$} |"));
            }
            s.push('\n');
            s
        };
        let mut out = line(&self.header);
        out.push('|');
        for w in &width {
            out.push_str(&format!("{}|", "-".repeat(w + 2)));
        }
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }

    /// Print to stdout.
    pub fn print(&self) {
        println!("{}", self.render());
    }
}

/// Format a float with `digits` decimals.
pub fn f(v: f64, digits: usize) -> String {
    format!("{v:.digits$}")
}

/// The 1, 5 and 15 minute load averages of the machine (`/proc/loadavg`), as printed.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A one-line description of the machine: cores, model, memory, the date and the load average
/// when the bench started.
pub fn machine_line() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|k| k / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    format!(
        "{cores} cores ({model}), {mem_gib:.0} GiB, at {}, load average {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC"),
        load_average()
    )
}

/// PostgreSQL server URL of the benches (`BENCH_POSTGRES`, default the local test server).
/// Each bench creates its databases on that server with `barycenter_jobs_test_support`
/// (`postgres_on`, `copy_of`), which drops them again when they go out of scope.
pub fn postgres_url() -> String {
    std::env::var("BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&mut v);
        assert_eq!((s.p50, s.p99, s.max), (50.0, 99.0, 100.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    }
}
