//! Fresh databases for tests.
//!
//! - SQLite: a file in a temporary directory, always available.
//! - PostgreSQL / MariaDB: a new database created on the server named by
//!   `BARYCENTER_JOBS_TEST_POSTGRES` / `BARYCENTER_JOBS_TEST_MYSQL` (a URL whose database
//!   the test user may connect to, e.g. `postgres://postgres@127.0.0.1:5432/test`), dropped
//!   again when the [`TestDb`] is dropped, even if the test panicked.
//! - For the benches: [`postgres_on`] creates one on a server URL of their own, and
//!   [`copy_of`] copies a template they built once, so every run starts from the same rows.
//!
//! [`backend_tests!`] turns one `async fn(&TestDb)` into a test per backend (or per backend of
//! a list), and [`server_test!`] declares a test that opens its server database itself.
//!
//! # Skipped server tests
//!
//! When a server's variable is unset at build time, the tests those macros generate for it
//! are `#[ignore]`d, so libtest reports them as `ignored` ("set BARYCENTER_JOBS_TEST_POSTGRES
//! to run") instead of `ok`. Under `CI=true` they are never ignored: a missing or unreachable
//! server fails them. The decision is taken by this crate's build script, which cargo reruns
//! whenever `BARYCENTER_JOBS_TEST_POSTGRES`, `BARYCENTER_JOBS_TEST_MYSQL` or `CI` change, so
//! the crates under test need no build script of their own.
//!
//! A server test is declared only through these macros: [`postgres`], [`mysql`] and [`fresh`]
//! panic when the variable is unset at run time, because a test that returns early there
//! would be reported as passed. That also covers `cargo test -- --include-ignored` without a
//! server.
//!
//! [`proxy::FaultProxy`] sits between a pool and a server to cut or stall the connection.
//!
//! The scheduler tests share [`run_now`] (trigger a job and wait for its row), [`eventually`]
//! (poll a condition with a deadline), [`has_execution`] (a history row that matches) and
//! [`open_rows`] (history rows left without an end).
//!
//! [`non_loopback_addr`] finds an address of this machine to connect through as a remote
//! client would.

pub mod proxy;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use barycenter_jobs_core::{
    Backend, Database, Execution, ExecutionQuery, ExecutionStore, NewExecution, Outcome, RunEnd,
    SchedulerHandle,
};
use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Connection};

/// Environment variable with the PostgreSQL server URL.
pub const POSTGRES_ENV: &str = "BARYCENTER_JOBS_TEST_POSTGRES";
/// Environment variable with the MySQL / MariaDB server URL.
pub const MYSQL_ENV: &str = "BARYCENTER_JOBS_TEST_MYSQL";

/// A database that exists for one test.
pub struct TestDb {
    /// A pool on the fresh database.
    pub db: Database,
    /// Its URL, to open more pools (as other replicas would).
    pub url: String,
    drop_on_server: Option<(Backend, String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb").field("url", &self.url).finish()
    }
}

impl TestDb {
    /// The backend.
    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// The names of the indexes of `table` whose first column is `column`, sorted.
    pub async fn indexes_on(&self, table: &str, column: &str) -> Vec<String> {
        let table = barycenter_jobs_core::Identifier::new(table).unwrap();
        let q = self.backend().indexes_leading_with(&table, column);
        let mut names: Vec<String> = self
            .db
            .fetch_all(&q)
            .await
            .unwrap()
            .iter()
            .map(|r| r.opt_string("index_name").unwrap().unwrap())
            .collect();
        names.sort();
        names
    }

    /// Another, independent pool on the same database.
    pub async fn another_pool(&self) -> Database {
        Database::connect(&self.url).await.expect("second pool")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((backend, admin_url, name)) = self.drop_on_server.take() else {
            return;
        };
        // Drop runs inside (or while unwinding out of) an async test: do the blocking clean-up
        // on a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let sql = match backend {
                    Backend::Postgres => format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                    _ => format!("DROP DATABASE IF EXISTS `{name}`"),
                };
                if let Err(e) = on_server(backend, &admin_url, sql).await {
                    eprintln!("warning: could not drop test database {name}: {e}");
                }
            });
        })
        .join();
    }
}

fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "bjt_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// An address of this machine that is not loopback, for tests that must reach a server the
/// way another machine would (the kernel reports the peer as that address, not 127.0.0.1).
///
/// Found without sending anything: a UDP socket `connect`ed to a private address only asks
/// the routing table which local address it would use (UDP's connect sends no packet);
/// without a route, the addresses `ip -o addr` lists. An address counts only if a socket
/// can be bound to it, which proves it is this machine's.
pub fn non_loopback_addr() -> Option<std::net::IpAddr> {
    use std::net::{IpAddr, TcpListener, UdpSocket};
    let usable = |ip: IpAddr| {
        !ip.is_loopback()
            && !ip.is_unspecified()
            // Link-local IPv6 needs a scope id to connect to; skip it.
            && !matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
            && TcpListener::bind((ip, 0)).is_ok()
    };
    let routed = [
        ("0.0.0.0:0", "10.255.255.254:9"),
        ("[::]:0", "[fd00::ffff]:9"),
    ]
    .into_iter()
    .filter_map(|(local, remote)| {
        let socket = UdpSocket::bind(local).ok()?;
        socket.connect(remote).ok()?;
        Some(socket.local_addr().ok()?.ip())
    });
    let listed = std::process::Command::new("ip")
        .args(["-o", "addr"])
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    let listed = listed.lines().filter_map(|line| {
        // `4: eth0    inet 192.0.2.2/24 brd ...`
        let mut words = line.split_whitespace();
        words.find(|w| *w == "inet" || *w == "inet6")?;
        words.next()?.split('/').next()?.parse::<IpAddr>().ok()
    });
    routed.chain(listed).find(|ip| usable(*ip))
}

/// [`non_loopback_addr`], or `None` after saying why the calling test is skipped; under
/// `CI=true` a machine without one fails the test instead, so CI cannot pass it unrun.
pub fn non_loopback_addr_or_skip(test: &str) -> Option<std::net::IpAddr> {
    let found = non_loopback_addr();
    if found.is_none() {
        assert!(
            !in_ci(),
            "{test}: this machine has no non-loopback address, and CI=true requires one"
        );
        eprintln!("skipping {test}: this machine has no non-loopback address to connect through");
    }
    found
}

/// A fresh SQLite database in a temporary directory.
pub async fn sqlite() -> TestDb {
    open_sqlite(tempfile::tempdir().expect("tempdir")).await
}

/// The SQLite database `test.db` in `dir` (created if missing), which lives as long as it.
async fn open_sqlite(dir: tempfile::TempDir) -> TestDb {
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let db = Database::connect(&url).await.expect("open sqlite");
    TestDb {
        db,
        url,
        drop_on_server: None,
        _dir: Some(dir),
    }
}

/// A fresh PostgreSQL database on the server named by [`POSTGRES_ENV`].
///
/// # Panics
///
/// When the variable is unset (declare the test with [`backend_tests!`] or [`server_test!`],
/// which mark it ignored then), or the server cannot be reached.
pub async fn postgres() -> TestDb {
    server(Backend::Postgres, POSTGRES_ENV).await
}

/// A fresh MariaDB / MySQL database on the server named by [`MYSQL_ENV`].
///
/// # Panics
///
/// As [`postgres`], for [`MYSQL_ENV`].
pub async fn mysql() -> TestDb {
    server(Backend::MySql, MYSQL_ENV).await
}

/// A fresh database on `backend`; see [`postgres`] for when it panics.
pub async fn fresh(backend: Backend) -> TestDb {
    match backend {
        Backend::Sqlite => sqlite().await,
        Backend::Postgres => postgres().await,
        _ => mysql().await,
    }
}

/// A fresh PostgreSQL database on the server of `admin_url` (a URL whose database the user
/// may connect to), dropped with the [`TestDb`] like the others. For the benches, which name
/// their server themselves instead of through [`POSTGRES_ENV`].
///
/// # Panics
///
/// When the server cannot be reached or the database cannot be created.
pub async fn postgres_on(admin_url: &str) -> TestDb {
    create_on(Backend::Postgres, admin_url, "postgres_on", None).await
}

/// A fresh database holding a copy of `template`'s tables and rows, dropped with the
/// [`TestDb`] like the others: every run of a bench starts from the same data, built once.
///
/// SQLite: the template's file (and its WAL, if any) copied into a new temporary directory;
/// checkpoint the template first (`PRAGMA wal_checkpoint(TRUNCATE)`) so nothing is in
/// flight. PostgreSQL: `CREATE DATABASE .. TEMPLATE`, which needs the template to have no
/// open connection: close its pool first (`template.db.close().await`).
///
/// # Panics
///
/// On MariaDB / MySQL (no template databases), and when the copy fails.
pub async fn copy_of(template: &TestDb) -> TestDb {
    match (&template.drop_on_server, template.backend()) {
        (None, Backend::Sqlite) => {
            let from = template
                .url
                .strip_prefix("sqlite://")
                .expect("a sqlite:// URL");
            let dir = tempfile::tempdir().expect("tempdir");
            let to = dir.path().join("test.db");
            std::fs::copy(from, &to).expect("copy the template's database file");
            let wal = format!("{from}-wal");
            if std::path::Path::new(&wal).exists() {
                std::fs::copy(&wal, format!("{}-wal", to.display())).expect("copy its WAL");
            }
            open_sqlite(dir).await
        }
        (Some((Backend::Postgres, admin_url, name)), _) => {
            create_on(Backend::Postgres, admin_url, "copy_of", Some(name)).await
        }
        _ => panic!("copy_of: no template databases on {:?}", template.backend()),
    }
}

async fn server(backend: Backend, var: &str) -> TestDb {
    let admin_url = match std::env::var(var) {
        Ok(url) if !url.is_empty() => url,
        _ if in_ci() => panic!("{var} is not set, and CI=true makes {backend:?} tests mandatory"),
        // Reached only by a test that is not ignored without the variable: one declared by
        // hand instead of through the macros, one run with --ignored / --include-ignored, or
        // a binary built with the variable set and run without it. Returning would report a
        // pass for a test that did nothing.
        _ => panic!(
            "{var} is not set: this {backend:?} test cannot run. Declare server tests with \
             backend_tests! or server_test! so they are reported as ignored without a server, \
             and set {var} to run them"
        ),
    };
    create_on(backend, &admin_url, var, None).await
}

/// Create a database on the server of `admin_url` (a copy of database `template` when given;
/// PostgreSQL only) and open a pool on it; `source` names the server in a panic message.
async fn create_on(
    backend: Backend,
    admin_url: &str,
    source: &str,
    template: Option<&str>,
) -> TestDb {
    let name = unique_name();
    let create = match (backend, template) {
        (Backend::Postgres, None) => format!("CREATE DATABASE \"{name}\""),
        (Backend::Postgres, Some(t)) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{t}\""),
        _ => format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"),
    };
    if let Err(e) = on_server(backend, admin_url, create).await {
        panic!("cannot create a {backend:?} test database through {source}: {e}");
    }
    let url = replace_database(admin_url, &name);
    let db = Database::connect_with_max(&url, 6)
        .await
        .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    TestDb {
        db,
        url,
        drop_on_server: Some((backend, admin_url.to_owned(), name)),
        _dir: None,
    }
}

/// Run `sql` (CREATE / DROP DATABASE) on a connection of its own to the server of `admin_url`.
async fn on_server(backend: Backend, admin_url: &str, sql: String) -> Result<(), sqlx::Error> {
    let sql = AssertSqlSafe(sql);
    match backend {
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(admin_url).await?;
            sqlx::query(sql).execute(&mut c).await?;
        }
        _ => {
            let mut c = sqlx::MySqlConnection::connect(admin_url).await?;
            sqlx::query(sql).execute(&mut c).await?;
        }
    }
    Ok(())
}

/// `scheme://auth@host:port/OLD?query` with the database path replaced by `name`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[after_scheme..]
        .find('/')
        .map(|i| i + after_scheme)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..host_end], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Run `sql` (one or more statements) on `db` as it is. For test fixtures only: the host
/// tables "as Barycenter creates them", rows "as Barycenter writes them".
pub async fn raw(db: &Database, sql: &str) {
    let sql = AssertSqlSafe(sql.to_owned());
    let result = match db {
        Database::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await.map(drop),
        Database::Postgres(p) => sqlx::raw_sql(sql).execute(p).await.map(drop),
        Database::MySql(p) => sqlx::raw_sql(sql).execute(p).await.map(drop),
        _ => unreachable!("all backends are compiled into the tests"),
    };
    if let Err(e) = result {
        panic!("fixture SQL failed: {e}");
    }
}

/// Poll `check` every 20 ms until it is true.
///
/// # Panics
///
/// When `within` passed first: "not within {within}: {what}".
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < until, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many of the (at most 1,000) history rows in `store` have no end yet.
pub async fn open_rows(store: &ExecutionStore) -> usize {
    store
        .list(&ExecutionQuery::new().limit(1000))
        .await
        .unwrap()
        .iter()
        .filter(|e| e.completed_at.is_none())
        .count()
}

/// Whether `store` holds a history row of `job` (among its latest 100) for which `which` is
/// true.
pub async fn has_execution(
    store: &ExecutionStore,
    job: &str,
    which: impl Fn(&Execution) -> bool,
) -> bool {
    store
        .list(&ExecutionQuery::new().job(job))
        .await
        .unwrap()
        .iter()
        .any(which)
}

/// Record a manual run of `job` that started at `started` and succeeded at `ended` (a
/// history for catch-up and retention tests); its id.
pub async fn record_finished_run(
    store: &ExecutionStore,
    job: &str,
    started: DateTime<Utc>,
    ended: DateTime<Utc>,
) -> i64 {
    let id = store
        .start(&NewExecution::manual(job, started))
        .await
        .unwrap();
    let done = Outcome::Succeeded {
        records_processed: 0,
    };
    store
        .record_end(RunEnd::new(id, done, ended))
        .await
        .unwrap();
    id
}

/// Trigger job `name` on `handle` and wait for the run's recorded execution.
///
/// # Panics
///
/// When the job is unknown or the run's outcome cannot be had.
pub async fn run_now(handle: &SchedulerHandle, name: &str) -> Execution {
    handle.trigger(name).await.unwrap().wait().await.unwrap()
}

/// One test per backend from one `async fn case(t: &TestDb)`:
///
/// ```ignore
/// async fn migrations_are_idempotent(t: &TestDb) { ... }
/// backend_tests!(migrations_are_idempotent);
/// ```
///
/// expands to a module `migrations_are_idempotent` with tests `sqlite`, `postgres`, `mysql`.
/// A bracketed list first restricts the backends, for cases that only make sense on some:
///
/// ```ignore
/// backend_tests!([postgres] heap_walk_covers_every_page);
/// backend_tests!([postgres, mysql] survives_a_cut_connection, survives_a_stall);
/// ```
///
/// The `postgres` / `mysql` tests are `#[ignore]`d when their server's variable is unset
/// outside CI (see the crate documentation), so they show as `ignored`, not `ok`.
#[macro_export]
macro_rules! backend_tests {
    // One case at a time: macro_rules cannot nest the backends' repetition in the cases'.
    ([$($backend:ident),+ $(,)?] $case:ident $(, $rest:ident)* $(,)?) => {
        mod $case {
            $($crate::backend_tests!(@test $backend $case);)+
        }
        $crate::backend_tests!([$($backend),+] $($rest),*);
    };
    ([$($backend:ident),+ $(,)?]) => {};
    ($($case:ident),+ $(,)?) => {
        $crate::backend_tests!([sqlite, postgres, mysql] $($case),+);
    };
    (@test $backend:ident $case:ident) => {
        $crate::__bjt_gate! { $backend
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $backend() {
                let t = $crate::$backend().await;
                super::$case(&t).await;
            }
        }
    };
}

/// A test on one server for an `async fn case()` that opens its database itself (with
/// [`postgres`] / [`mysql`]), e.g. because a fixture must own the [`TestDb`]:
///
/// ```ignore
/// async fn job_logs_on_postgres() {
///     let f = Fixture::on(barycenter_jobs_test_support::postgres().await).await;
///     ...
/// }
/// server_test!(postgres, job_logs_on_postgres);
/// ```
///
/// expands to a module `job_logs_on_postgres` with one test `postgres`, ignored like the server
/// cases of [`backend_tests!`]. Prefer [`backend_tests!`] with a list when `&TestDb` will do.
#[macro_export]
macro_rules! server_test {
    ($server:ident, $case:ident $(,)?) => {
        mod $case {
            $crate::__bjt_gate! { $server
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $server() {
                    super::$case().await;
                }
            }
        }
    };
}

/// Gates a test on `$backend`'s server: SQLite needs none, so its tests always pass through.
#[doc(hidden)]
#[macro_export]
macro_rules! __bjt_gate {
    (sqlite $($test:tt)*) => { $($test)* };
    (postgres $($test:tt)*) => { $crate::__bjt_gate_postgres! { $($test)* } };
    (mysql $($test:tt)*) => { $crate::__bjt_gate_mysql! { $($test)* } };
}

// The gates: which definition exists is decided by this crate's cfgs (set by build.rs), and
// the expansion carries the decision into the test crate, which has no such cfgs of its own.
// The `#[ignore]` goes after the test attribute, where `#[tokio::test]` passes it through.

/// Defines the gate `$gate!` of one backend, once per side of its cfg `$cfg`: passing the test
/// through where the server is configured (or CI requires it), marking it ignored with
/// `$reason` where not. `$d` is a `$` token, so that the gate's own matchers can be written
/// inside this macro.
macro_rules! gate {
    ($d:tt $gate:ident, $cfg:ident, $server:literal, $reason:literal) => {
        #[doc = concat!("Passes a test through (its ", $server, " server is configured, or CI requires it).")]
        #[cfg($cfg)]
        #[doc(hidden)]
        #[macro_export]
        macro_rules! $gate {
            ($d($d test:tt)*) => { $d($d test)* };
        }

        #[doc = concat!("Marks a test ignored: no ", $server, " server is configured.")]
        #[cfg(not($cfg))]
        #[doc(hidden)]
        #[macro_export]
        macro_rules! $gate {
            (#[$d attr:meta] $d($d rest:tt)*) => {
                #[$d attr]
                #[ignore = $reason]
                $d($d rest)*
            };
        }
    };
}
gate!($ __bjt_gate_postgres, barycenter_jobs_test_postgres, "PostgreSQL",
    "set BARYCENTER_JOBS_TEST_POSTGRES to run");
gate!($ __bjt_gate_mysql, barycenter_jobs_test_mysql, "MariaDB / MySQL",
    "set BARYCENTER_JOBS_TEST_MYSQL to run");

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_database_path() {
        assert_eq!(
            super::replace_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::replace_database("mysql://root@127.0.0.1:3306/test?ssl-mode=disabled", "y"),
            "mysql://root@127.0.0.1:3306/y?ssl-mode=disabled"
        );
    }
}
