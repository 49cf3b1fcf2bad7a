//! The embedded server (interim): opens `barycenter-jobs.db` in the current directory,
//! migrates it and lists the registered jobs.

use barycenter_jobs::{Database, ExecutionStore, Registry};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = Database::connect("sqlite://barycenter-jobs.db").await?;
    let store = ExecutionStore::new(db);
    let applied = store.migrate().await?;
    println!("migrated barycenter-jobs.db (applied {applied:?})");
    barycenter_jobs::builtin::link();
    let registry = Registry::from_inventory()?;
    for job in registry.iter() {
        println!(
            "{:<34} {:<16} {:<16} {}",
            job.name(),
            job.default_schedule().expression(),
            job.default_schedule().describe(),
            job.description()
        );
    }
    Ok(())
}
