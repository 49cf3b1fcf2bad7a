//! Nothing to link: this package exists for its tests (`tests/`), which show that a SeaORM 2
//! host can hand the sqlx pool of its `DatabaseConnection` to `barycenter_jobs::Database::from`
//! and keep its tables, its `job_executions` history and its `seaql_migrations` as they are.
//!
//! It is a workspace member of its own so that `cargo test --workspace` builds and runs those
//! tests while no host's build of `barycenter-jobs` ever compiles SeaORM.
