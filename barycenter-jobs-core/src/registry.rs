//! The set of known jobs: those submitted with [`register_job!`](crate::register_job) anywhere
//! in the binary, plus those registered explicitly.
//!
//! # One job per name, and how a host configures it
//!
//! A [`Registry`] holds one job instance per name. [`RegistryBuilder::build`] gathers them by
//! one rule, the same for every job, built-in or plugin:
//!
//! 1. **Registrations** say which jobs exist: every [`register_job!`](crate::register_job)
//!    in the binary (with [`RegistryBuilder::with_inventory`]), each with its default
//!    settings, and the jobs the host adds with [`RegistryBuilder::register`]. A name
//!    registered twice, by either means, is [`Error::DuplicateJob`]: a host job never
//!    shadows a plugin's by accident.
//! 2. **Replacements** say which instance of an existing job runs:
//!    [`RegistryBuilder::replace`] puts an instance the host configured (other tables, other
//!    settings) in place of the registered one of the same name. The name must be
//!    registered ([`Error::UnknownJob`] otherwise, so a typo never adds a second job), and
//!    replaced at most once ([`Error::DuplicateJob`]: never a silent overwrite).
//!
//! A job crate that has settings applies them this way: it offers a function that builds
//! its configured instances and hands each to `replace` (the builtin crate's `configure`
//! does this for its four cleanups). When a job runs (cron, time zone, enabled, timeout) is
//! not the registry's business but the scheduler configuration's, keyed by the same name.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::job::Job;
use crate::schedule::Schedule;

/// A job submitted to the global registry with `inventory::submit!`.
///
/// It is a const value (inventory requires one), so it holds a constructor rather than a
/// live job. Use the [`register_job!`](crate::register_job) macro rather than building one.
pub struct JobRegistration {
    make: fn() -> Box<dyn Job>,
}

impl JobRegistration {
    /// A registration that builds its job with `make`.
    pub const fn new(make: fn() -> Box<dyn Job>) -> Self {
        Self { make }
    }

    /// Build the job.
    pub fn build(&self) -> Box<dyn Job> {
        (self.make)()
    }
}

impl fmt::Debug for JobRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobRegistration").finish_non_exhaustive()
    }
}

inventory::collect!(JobRegistration);

/// Register a job type globally: it will be in every [`Registry`] built with
/// [`RegistryBuilder::with_inventory`] (or [`Registry::from_inventory`]).
///
/// The argument is an expression that builds the job; it is evaluated each time a registry is
/// built. Registration happens at link time, so the crate that contains this line must be
/// linked into the final binary: reference something from it (see the builtin crate's
/// `link()` for the pattern).
///
/// ```
/// use barycenter_jobs_core::{async_trait, register_job, Job, JobContext, JobError, JobOutput, Registry};
///
/// struct Nightly;
///
/// #[async_trait]
/// impl Job for Nightly {
///     fn name(&self) -> &str { "doc_nightly" }
///     fn description(&self) -> &str { "Run at night" }
///     fn schedule(&self) -> &str { "0 0 3 * * *" }
///     async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
///         Ok(JobOutput::processed(0))
///     }
/// }
///
/// register_job!(Nightly);
///
/// let registry = Registry::from_inventory().unwrap();
/// assert!(registry.get("doc_nightly").is_some());
/// ```
#[macro_export]
macro_rules! register_job {
    ($make:expr) => {
        $crate::inventory::submit! {
            $crate::JobRegistration::new(|| ::std::boxed::Box::new($make))
        }
    };
}

/// A job in a [`Registry`], with its default schedule parsed.
#[derive(Clone)]
pub struct RegisteredJob {
    job: Arc<dyn Job>,
    schedule: Schedule,
}

impl RegisteredJob {
    /// The job.
    pub fn job(&self) -> &Arc<dyn Job> {
        &self.job
    }

    /// Its name.
    pub fn name(&self) -> &str {
        self.job.name()
    }

    /// Its description.
    pub fn description(&self) -> &str {
        self.job.description()
    }

    /// Its default schedule, as declared by the job (before host overrides).
    pub fn default_schedule(&self) -> &Schedule {
        &self.schedule
    }
}

impl fmt::Debug for RegisteredJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredJob")
            .field("name", &self.name())
            .field("schedule", &self.schedule)
            .finish()
    }
}

/// An immutable, validated set of jobs, ordered by name.
///
/// ```
/// use barycenter_jobs_core::{async_trait, Error, Job, JobContext, JobError, JobOutput, Registry};
///
/// struct Every(&'static str, &'static str);
///
/// #[async_trait]
/// impl Job for Every {
///     fn name(&self) -> &str { self.0 }
///     fn description(&self) -> &str { "test" }
///     fn schedule(&self) -> &str { self.1 }
///     async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
///         Ok(JobOutput::default())
///     }
/// }
///
/// let registry = Registry::builder()
///     .register(Every("b", "0 * * * * *"))
///     .register(Every("a", "*/5 * * * *"))
///     .build()
///     .unwrap();
/// assert_eq!(registry.names().collect::<Vec<_>>(), ["a", "b"]);
///
/// let dup = Registry::builder().register(Every("a", "* * * * * *")).register(Every("a", "* * * * * *")).build();
/// assert!(matches!(dup, Err(Error::DuplicateJob(name)) if name == "a"));
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    jobs: BTreeMap<String, RegisteredJob>,
}

impl Registry {
    /// Start building a registry.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// A registry of every job submitted with [`register_job!`](crate::register_job).
    pub fn from_inventory() -> Result<Self> {
        Self::builder().with_inventory().build()
    }

    /// The job called `name`.
    pub fn get(&self, name: &str) -> Option<&RegisteredJob> {
        self.jobs.get(name)
    }

    /// All jobs, by name.
    pub fn iter(&self) -> impl Iterator<Item = &RegisteredJob> {
        self.jobs.values()
    }

    /// All names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.jobs.keys().map(String::as_str)
    }

    /// How many jobs.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// True when there are no jobs.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.jobs.values()).finish()
    }
}

/// Collects jobs, then validates them all at once in [`build`](RegistryBuilder::build).
#[derive(Default)]
pub struct RegistryBuilder {
    jobs: Vec<Arc<dyn Job>>,
    replacements: Vec<Arc<dyn Job>>,
    inventory: bool,
}

impl RegistryBuilder {
    /// Include every job submitted with [`register_job!`](crate::register_job).
    pub fn with_inventory(mut self) -> Self {
        self.inventory = true;
        self
    }

    /// Add one job.
    pub fn register(mut self, job: impl Job) -> Self {
        self.jobs.push(Arc::new(job));
        self
    }

    /// Add one job that is already shared.
    pub fn register_arc(mut self, job: Arc<dyn Job>) -> Self {
        self.jobs.push(job);
        self
    }

    /// Run `job` in place of the registered job of the same name: the host's configured
    /// instance of a job that [`register_job!`](crate::register_job) (or
    /// [`register`](Self::register)) registered with its defaults: registrations decide
    /// which jobs exist, `replace` swaps in a configured instance of one of them.
    ///
    /// Unlike [`register`](Self::register) it requires the name to exist, and
    /// [`build`](Self::build) fails with [`Error::UnknownJob`] otherwise, so a typo is not
    /// silently registered as a second job; replacing one name twice is
    /// [`Error::DuplicateJob`].
    ///
    /// ```
    /// use barycenter_jobs_core::{async_trait, Error, Job, JobContext, JobError, JobOutput, Registry};
    ///
    /// /// A job with one setting: its schedule.
    /// struct Report(&'static str);
    ///
    /// #[async_trait]
    /// impl Job for Report {
    ///     fn name(&self) -> &str { "report" }
    ///     fn description(&self) -> &str { "Send the report" }
    ///     fn schedule(&self) -> &str { self.0 }
    ///     async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
    ///         Ok(JobOutput::default())
    ///     }
    /// }
    ///
    /// let registry = Registry::builder()
    ///     .register(Report("0 0 * * * *"))
    ///     .replace(Report("0 30 * * * *"))
    ///     .build()?;
    /// assert_eq!(registry.get("report").unwrap().default_schedule().expression(), "0 30 * * * *");
    ///
    /// let twice = Registry::builder()
    ///     .register(Report("0 0 * * * *"))
    ///     .replace(Report("0 30 * * * *"))
    ///     .replace(Report("0 45 * * * *"))
    ///     .build();
    /// assert!(matches!(twice, Err(Error::DuplicateJob(name)) if name == "report"));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn replace(mut self, job: impl Job) -> Self {
        self.replacements.push(Arc::new(job));
        self
    }

    /// Validate and build: fails on a duplicate name, an invalid name or an invalid cron
    /// expression, naming the offender.
    pub fn build(self) -> Result<Registry> {
        let mut all: Vec<Arc<dyn Job>> = Vec::new();
        if self.inventory {
            all.extend(
                inventory::iter::<JobRegistration>
                    .into_iter()
                    .map(|r| Arc::<dyn Job>::from(r.build())),
            );
        }
        all.extend(self.jobs);
        let mut jobs = BTreeMap::new();
        for job in all {
            let name = job.name().to_owned();
            validate_name(&name)?;
            let schedule = Schedule::parse(job.schedule())?;
            if jobs.contains_key(&name) {
                return Err(Error::DuplicateJob(name));
            }
            jobs.insert(name, RegisteredJob { job, schedule });
        }
        let mut replaced = BTreeSet::new();
        for job in self.replacements {
            let name = job.name().to_owned();
            let schedule = Schedule::parse(job.schedule())?;
            let Some(slot) = jobs.get_mut(&name) else {
                return Err(Error::UnknownJob(name));
            };
            if !replaced.insert(name.clone()) {
                return Err(Error::DuplicateJob(name));
            }
            *slot = RegisteredJob { job, schedule };
        }
        Ok(Registry { jobs })
    }
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidJobName(name.to_owned()))
    }
}
