//! The alerts' parts, built from the configuration when the scheduler is built: the
//! observer on the run path, and the queues and state of the alerts' and pings' tasks.

use std::collections::BTreeMap;

use tokio::sync::mpsc;

use super::{Alerting, QUEUE};
use crate::alert::store::AlertStore;
use crate::alert::{AlertObserver, HttpClient, Ping, Signal, Target};
use crate::db::Database;
use crate::error::{Error, Result};
use crate::scheduler::config::SchedulerConfig;

/// The alerts' parts, built from the configuration before anything starts.
pub(in crate::scheduler) struct AlertParts {
    /// `None` when there is neither a webhook nor a ping URL.
    pub(in crate::scheduler) observer: Option<AlertObserver>,
    pub(in crate::scheduler) events: Option<mpsc::Sender<Signal>>,
    pub(in crate::scheduler) task: Option<(mpsc::Receiver<Signal>, Alerting)>,
    pub(in crate::scheduler) pings: Option<(mpsc::Receiver<Ping>, HttpClient)>,
}

/// Check the alerts' URLs (already validated: parsed again for their targets) and build
/// the observer and the tasks' queues.
pub(in crate::scheduler) fn parts(
    config: &SchedulerConfig,
    record_history: bool,
    db: &Database,
) -> Result<AlertParts> {
    // Built once, and only when something is sent: with `alerts-https` it loads the roots.
    let mut client: Option<HttpClient> = None;
    let mut client = move || client.get_or_insert_with(HttpClient::new).clone();
    let parse = |key: String, url: &str| {
        Target::parse(url).map_err(|reason| Error::InvalidSetting {
            key,
            reason: reason.to_owned(),
        })
    };
    let mut ping_urls = BTreeMap::new();
    let mut after_failures = BTreeMap::new();
    for (name, job) in &config.jobs {
        if let Some(url) = &job.ping_url {
            ping_urls.insert(name.clone(), parse(format!("jobs.{name}.ping_url"), url)?);
        }
        if let Some(n) = job.alert_after_failures {
            after_failures.insert(name.clone(), n);
        }
    }
    let (events, task) = match &config.alerts.webhook_url {
        Some(url) => {
            let webhook = parse("alerts.webhook_url".to_owned(), url)?;
            if !record_history {
                // The deliveries table and the failure counts are the history's.
                return Err(Error::InvalidSetting {
                    key: "alerts.webhook_url".to_owned(),
                    reason: "alerts need the execution history (without_history is set)".to_owned(),
                });
            }
            let (tx, rx) = mpsc::channel(QUEUE);
            let task = Alerting {
                webhook,
                client: client(),
                store: AlertStore::new(db.clone(), config.tables.alerts.clone()),
                after_failures,
                // `keep_days = 0` keeps everything, as for the history.
                keep: config.retention.keep_days.filter(|d| *d > 0).map(|d| {
                    (
                        chrono::Duration::days(i64::from(d)),
                        config.retention.batch_size,
                    )
                }),
            };
            (Some(tx), Some((rx, task)))
        }
        None => (None, None),
    };
    let (ping_tx, pings) = if ping_urls.is_empty() {
        (None, None)
    } else {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Some(tx), Some((rx, client())))
    };
    let observer = (events.is_some() || ping_tx.is_some()).then(|| AlertObserver {
        events: events.clone(),
        pings: ping_tx,
        ping_urls,
    });
    Ok(AlertParts {
        observer,
        events,
        task,
        pings,
    })
}
