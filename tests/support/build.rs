//! Decides, at build time, whether the PostgreSQL / MariaDB cases of `backend_tests!` run or
//! are marked `#[ignore]` (libtest's only "skipped" state).
//!
//! The decision is made here, once, and carried to the test crates by the macros this crate
//! exports (see `__bjt_gate_postgres!` / `__bjt_gate_mysql!` in `src/lib.rs`), so the crates
//! under test need no build script of their own and their libraries are not rebuilt when the
//! variables change: only this crate and the test binaries that depend on it are.
//!
//! A server's cases run when its variable is set (non-empty), and always under `CI=true` (or
//! `CI=1`), where a missing server must fail them rather than skip them.

use std::env;

/// (environment variable, cfg emitted when its cases should run)
const SERVERS: [(&str, &str); 2] = [
    (
        "BARYCENTER_JOBS_TEST_POSTGRES",
        "barycenter_jobs_test_postgres",
    ),
    ("BARYCENTER_JOBS_TEST_MYSQL", "barycenter_jobs_test_mysql"),
];

fn is_set(var: &str) -> bool {
    env::var_os(var).is_some_and(|v| !v.is_empty())
}

fn main() {
    // Same rule as `in_ci()` in src/lib.rs.
    let ci = env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    println!("cargo::rerun-if-env-changed=CI");
    // Without this, declaring env dependencies would stop the default "rerun on any change".
    println!("cargo::rerun-if-changed=build.rs");
    for (var, cfg) in SERVERS {
        println!("cargo::rerun-if-env-changed={var}");
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if ci || is_set(var) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
