//! Figure 2: scheduler precision and cost, against tokio-cron-scheduler in the same run.
//!
//! 1, 1,000 and 10,000 jobs on `* * * * * *` for `--secs` seconds (default 20). Each scenario
//! runs in a child process of this binary (the binary re-executes itself with `--child`), so
//! CPU time and peak RSS are per scenario. Scenarios:
//!
//! - `ours`: our `Scheduler`, coordination off, history off (`without_history()`): pure
//!   in-memory scheduling, like for like with tokio-cron-scheduler, which has no history;
//! - `tokio-cron-scheduler`: `JobScheduler::new()` (its in-memory stores), `Job::new_async`;
//! - `floor`: hand-written, one tokio task per job, each sleeping until the next second and
//!   then entering the job body (the least a tokio program can do per fire);
//! - `ours + history (SQLite)`: coordination off, every run recorded in a SQLite file
//!   (extra row; by default only up to 1,000 jobs, see `--history-max-jobs`).
//!
//! Lateness is the wall-clock time at job entry minus the second boundary of the tick: for our
//! scheduler the tick is the fire time the run is given; tokio-cron-scheduler passes none, so
//! its tick is the second the job entered in (which is exact as long as it is less than 1 s
//! late). A (job, second) of the measured window with no run is a missed fire, with two or
//! more a duplicate. CPU time is user + system of the child process over the measured window
//! (`/proc/self/stat`, 10 ms ticks); peak RSS is the child's `VmHWM`.
//!
//! Then the idle figure: CPU used over 60 s (20 s with `--quick`) by a scheduler with the four
//! built-in jobs on a SQLite file (default config: coordination and history on; the four
//! tables exist, empty).
//!
//! The goals of issue 18 are printed met/missed after the tables: p99 lateness ≤ 1.2x the
//! floor's at 1,000 and 10,000 jobs, peak RSS at 10,000 jobs ≤ tokio-cron-scheduler's, p99
//! ≤ 50 ms with history on SQLite at 1,000 jobs, no missed or duplicate fire, CPU below
//! tokio-cron-scheduler's, idle CPU < 0.1% of a core.
//!
//! ```text
//! cargo bench -p barycenter-jobs-benches --bench scheduler -- [--quick] [--secs N] [--sizes 1,1000,10000] [--history-max-jobs N] [--idle-secs N (0: none)] [--only ours,floor,tokio-cron-scheduler,ours+history]
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use barycenter_jobs_benches::{Args, Summary, Table, f};
use barycenter_jobs_core::{
    Database, Job, JobContext, JobError, JobOutput, Registry, Scheduler, SchedulerConfig,
    async_trait,
};
use chrono::Utc;

fn main() {
    let args = Args::from_env();
    match args.value("--child") {
        Some("sched") => child_sched(&args),
        Some("idle") => child_idle(&args),
        _ => parent(&args),
    }
}

const IMPLS: [&str; 4] = ["ours", "floor", "tokio-cron-scheduler", "ours+history"];

fn label(imp: &str) -> &'static str {
    match imp {
        "ours" => "ours (no history)",
        "floor" => "floor: one task per job",
        "tokio-cron-scheduler" => "tokio-cron-scheduler 0.15",
        _ => "ours + history (SQLite)",
    }
}

fn parent(args: &Args) {
    let quick = args.quick();
    let secs: u64 = args.parsed("--secs", if quick { 5 } else { 20 });
    let sizes: Vec<u64> = args
        .value("--sizes")
        .map(|s| s.split(',').filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_else(|| {
            if quick {
                vec![1, 100, 1_000]
            } else {
                vec![1, 1_000, 10_000]
            }
        });
    let history_max: u64 = args.parsed("--history-max-jobs", 1_000);
    let idle_secs: u64 = args.parsed("--idle-secs", if quick { 20 } else { 60 });
    // `--only ours,floor`: a subset of the scenarios, for profiling one of them.
    let only: Vec<&str> = args
        .value("--only")
        .map(|s| s.split(',').collect())
        .unwrap_or_else(|| IMPLS.to_vec());
    let exe = std::env::current_exe().expect("current exe");

    println!(
        "# scheduler precision and cost: {}",
        barycenter_jobs_benches::machine_line()
    );
    println!(
        "every job on `* * * * * *`, {secs} s measured per scenario, one child process per scenario\n"
    );
    let mut t = Table::new(&[
        "jobs",
        "scheduler",
        "fires expected",
        "fires seen",
        "missed",
        "duplicate",
        "lateness p50 ms",
        "p99 ms",
        "max ms",
        "p99 vs floor",
        "CPU s",
        "CPU % of a core",
        "CPU vs tokio-cron-scheduler",
        "peak RSS MiB",
    ]);
    let mut goals = Table::new(&["goal", "jobs", "measured", "met?"]);
    for &n in &sizes {
        let mut rows: Vec<(String, serde_json::Value)> = Vec::new();
        for imp in IMPLS {
            if (imp == "ours+history" && n > history_max) || !only.contains(&imp) {
                continue;
            }
            let out = std::process::Command::new(&exe)
                .args([
                    "--child",
                    "sched",
                    "--impl",
                    imp,
                    "--jobs",
                    &n.to_string(),
                    "--secs",
                    &secs.to_string(),
                ])
                .output()
                .expect("run child");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let Some(json) = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")) else {
                eprintln!(
                    "{imp} with {n} jobs failed: {}\n{}",
                    stdout,
                    String::from_utf8_lossy(&out.stderr)
                );
                continue;
            };
            let v: serde_json::Value = serde_json::from_str(json).expect("child json");
            eprintln!("  {n} jobs, {imp}: {json}");
            rows.push((imp.to_owned(), v));
        }
        let tcs_cpu = rows
            .iter()
            .find(|(i, _)| i == "tokio-cron-scheduler")
            .map(|(_, v)| v["cpu_s"].as_f64().unwrap_or(0.0));
        let get = |imp: &str, k: &str| {
            rows.iter()
                .find(|(i, _)| i == imp)
                .and_then(|(_, v)| v[k].as_f64())
        };
        let floor_p99 = get("floor", "p99_ms");
        for (imp, v) in &rows {
            let g = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            let cpu = g("cpu_s");
            t.row(&[
                n.to_string(),
                label(imp).to_owned(),
                f(g("expected"), 0),
                f(g("seen"), 0),
                f(g("missed"), 0),
                f(g("duplicate"), 0),
                f(g("p50_ms"), 3),
                f(g("p99_ms"), 3),
                f(g("max_ms"), 3),
                match floor_p99 {
                    Some(p) if p > 0.0 => f(g("p99_ms") / p, 2),
                    _ => "-".to_owned(),
                },
                f(cpu, 2),
                f(100.0 * cpu / secs as f64, 2),
                match tcs_cpu {
                    Some(c) if c > 0.0 => f(cpu / c, 2),
                    _ => "-".to_owned(),
                },
                f(g("peak_rss_mib"), 1),
            ]);
        }
        size_goals(&mut goals, n, &get);
    }
    t.print();

    // `--idle-secs 0` leaves the idle figure out.
    if idle_secs > 0 {
        idle_figure(&exe, idle_secs, &mut goals);
    }
    println!("goals (issue 18):\n");
    goals.print();
}

/// The idle figure: CPU of the four built-ins over `idle_secs`, in a child process.
fn idle_figure(exe: &std::path::Path, idle_secs: u64, goals: &mut Table) {
    let out = std::process::Command::new(exe)
        .args(["--child", "idle", "--secs", &idle_secs.to_string()])
        .output()
        .expect("run idle child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().find_map(|l| l.strip_prefix("RESULT ")) {
        Some(json) => {
            let v: serde_json::Value = serde_json::from_str(json).expect("child json");
            let g = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            let mut t = Table::new(&[
                "idle scheduler",
                "window s",
                "CPU s",
                "CPU % of a core",
                "runs in window",
                "RSS MiB",
            ]);
            let idle_pct = 100.0 * g("cpu_s") / g("secs");
            goals.row(&[
                "idle CPU, four built-ins < 0.1% of a core".to_owned(),
                "4".to_owned(),
                format!("{} %", f(idle_pct, 3)),
                met(idle_pct < 0.1).to_owned(),
            ]);
            t.row(&[
                "four built-ins, SQLite file, default config".to_owned(),
                f(g("secs"), 0),
                f(g("cpu_s"), 3),
                f(100.0 * g("cpu_s") / g("secs"), 3),
                f(g("runs"), 0),
                f(g("rss_mib"), 1),
            ]);
            t.print();
        }
        None => eprintln!(
            "idle child failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// The goals that one size of the run can answer, from its rows (`get(impl, key)`).
fn size_goals(goals: &mut Table, n: u64, get: &dyn Fn(&str, &str) -> Option<f64>) {
    let mut row = |goal: &str, measured: String, ok: bool| {
        goals.row(&[goal.to_owned(), n.to_string(), measured, met(ok).to_owned()]);
    };
    for imp in ["ours", "ours+history"] {
        if let (Some(m), Some(d)) = (get(imp, "missed"), get(imp, "duplicate")) {
            row(
                &format!("{}: no missed or duplicate fire", label(imp)),
                format!("{m} missed, {d} duplicate"),
                m == 0.0 && d == 0.0,
            );
        }
    }
    if n >= 1_000
        && let (Some(o), Some(fl)) = (get("ours", "p99_ms"), get("floor", "p99_ms"))
    {
        row(
            "p99 lateness ≤ 1.2x the floor's",
            format!("{} ms vs {} ms: {}x", f(o, 3), f(fl, 3), f(o / fl, 2)),
            o <= 1.2 * fl,
        );
    }
    if n >= 1_000
        && let (Some(o), Some(c)) = (get("ours", "cpu_s"), get("tokio-cron-scheduler", "cpu_s"))
    {
        row(
            "CPU below tokio-cron-scheduler's",
            format!("{} s vs {} s", f(o, 2), f(c, 2)),
            o < c,
        );
    }
    if n == 10_000
        && let (Some(o), Some(c)) = (
            get("ours", "peak_rss_mib"),
            get("tokio-cron-scheduler", "peak_rss_mib"),
        )
    {
        row(
            "peak RSS ≤ tokio-cron-scheduler's",
            format!("{} MiB vs {} MiB", f(o, 1), f(c, 1)),
            o <= c,
        );
    }
    if n == 1_000
        && let Some(h) = get("ours+history", "p99_ms")
    {
        row(
            "with history on SQLite: p99 lateness ≤ 50 ms",
            format!("{} ms", f(h, 3)),
            h <= 50.0,
        );
    }
}

/// What the jobs saw: (job index, tick second, lateness in microseconds).
#[derive(Default)]
struct Recorder {
    hits: Mutex<Vec<(u32, i64, i64)>>,
}

impl Recorder {
    fn hit(&self, job: u32, tick: chrono::DateTime<Utc>) {
        let now = Utc::now();
        let late = (now - tick).num_microseconds().unwrap_or(i64::MAX);
        self.hits
            .lock()
            .unwrap()
            .push((job, tick.timestamp(), late));
    }
}

struct Tick {
    name: String,
    idx: u32,
    rec: Arc<Recorder>,
}

#[async_trait]
impl Job for Tick {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        "bench tick"
    }
    fn schedule(&self) -> &str {
        "* * * * * *"
    }
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        let tick = ctx.trigger().fire_time().unwrap_or_else(|| {
            let now = Utc::now();
            now - chrono::Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos()))
        });
        self.rec.hit(self.idx, tick);
        Ok(JobOutput::processed(0))
    }
}

fn child_sched(args: &Args) {
    let imp = args.value("--impl").unwrap_or("ours").to_owned();
    let n: u32 = args.parsed("--jobs", 1);
    let secs: i64 = args.parsed("--secs", 20);
    let ticks = barycenter_jobs_benches::clock_ticks_per_sec();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let rec = Arc::new(Recorder::default());
        let dir =
            std::env::temp_dir().join(format!("barycenter-bench-sched-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let url = format!("sqlite://{}", dir.join("jobs.db").display());
        let setup = Instant::now();
        let mut ours = None;
        let mut tcs = None;
        let mut floor = Vec::new();
        match imp.as_str() {
            "floor" => {
                for i in 0..n {
                    let rec = rec.clone();
                    floor.push(tokio::spawn(async move {
                        loop {
                            let now = Utc::now();
                            let next = now.timestamp() + 1;
                            sleep_until_second(next).await;
                            let tick =
                                chrono::DateTime::<Utc>::from_timestamp(next, 0).expect("time");
                            rec.hit(i, tick);
                        }
                    }));
                }
            }
            "tokio-cron-scheduler" => {
                use tokio_cron_scheduler::{Job as TcsJob, JobScheduler};
                let sched = JobScheduler::new().await.expect("tcs");
                for i in 0..n {
                    let rec = rec.clone();
                    let job = TcsJob::new_async("* * * * * *", move |_id, _l| {
                        let rec = rec.clone();
                        Box::pin(async move {
                            let now = Utc::now();
                            let tick = now
                                - chrono::Duration::nanoseconds(i64::from(
                                    now.timestamp_subsec_nanos(),
                                ));
                            rec.hit(i, tick);
                        })
                    })
                    .expect("tcs job");
                    sched.add(job).await.expect("tcs add");
                }
                sched.start().await.expect("tcs start");
                tcs = Some(sched);
            }
            _ => {
                let mut b = Registry::builder();
                for i in 0..n {
                    b = b.register(Tick {
                        name: format!("tick_{i:05}"),
                        idx: i,
                        rec: rec.clone(),
                    });
                }
                let registry = b.build().expect("registry");
                let db = Database::connect(&url).await.expect("db");
                let builder = Scheduler::builder(registry, db)
                    .config(SchedulerConfig::default().without_coordination());
                let builder = if imp == "ours" {
                    builder.without_history()
                } else {
                    builder
                };
                ours = Some(builder.start().await.expect("start"));
            }
        }
        let setup_s = setup.elapsed().as_secs_f64();
        // Measure whole seconds, starting one second after setup.
        let now = Utc::now();
        let w_start = now.timestamp() + 2;
        let w_end = w_start + secs;
        sleep_until_second(w_start).await;
        let cpu0 = barycenter_jobs_benches::cpu_time(ticks);
        sleep_until_second(w_end).await;
        let cpu1 = barycenter_jobs_benches::cpu_time(ticks);
        // Give late fires of the last second time to land.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let peak = barycenter_jobs_benches::peak_rss_mib();
        if let Some(h) = ours {
            h.shutdown(Duration::from_secs(5)).await.expect("shutdown");
        }
        if let Some(mut s) = tcs {
            let _ = s.shutdown().await;
        }
        for task in floor {
            task.abort();
        }
        let hits = rec.hits.lock().unwrap().clone();
        let mut counts = vec![0u32; n as usize * secs as usize];
        let mut late = Vec::new();
        // The latest entry of each second of the window: a tick that was late as a whole
        // (a checkpoint, a stall) shows here, where p99 only says that one was.
        let mut worst_of_second = vec![0.0f64; secs as usize];
        for (job, sec, us) in hits {
            if sec >= w_start && sec < w_end {
                let i = (sec - w_start) as usize;
                counts[job as usize * secs as usize + i] += 1;
                late.push(us as f64 / 1e3);
                worst_of_second[i] = worst_of_second[i].max(us as f64 / 1e3);
            }
        }
        let missed = counts.iter().filter(|c| **c == 0).count();
        let duplicate = counts
            .iter()
            .map(|c| c.saturating_sub(1) as usize)
            .sum::<usize>();
        let s = Summary::of(&mut late);
        let _ = std::fs::remove_dir_all(&dir);
        println!(
            "RESULT {}",
            serde_json::json!({
                "impl": imp, "jobs": n, "secs": secs, "setup_s": setup_s,
                "expected": counts.len(), "seen": s.count, "missed": missed, "duplicate": duplicate,
                "p50_ms": s.p50, "p99_ms": s.p99, "max_ms": s.max,
                "cpu_s": (cpu1 - cpu0).as_secs_f64(), "peak_rss_mib": peak,
                "worst_of_second_ms": worst_of_second.iter().map(|v| (v * 10.0).round() / 10.0).collect::<Vec<_>>(),
            })
        );
    });
}

async fn sleep_until_second(sec: i64) {
    let now = Utc::now();
    let target = chrono::DateTime::<Utc>::from_timestamp(sec, 0).expect("time");
    if let Ok(d) = (target - now).to_std() {
        tokio::time::sleep(d).await;
    }
}

fn child_idle(args: &Args) {
    let secs: u64 = args.parsed("--secs", 60);
    let ticks = barycenter_jobs_benches::clock_ticks_per_sec();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir =
            std::env::temp_dir().join(format!("barycenter-bench-idle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let url = format!("sqlite://{}", dir.join("auth.db").display());
        let db = Database::connect(&url).await.expect("db");
        // The four Barycenter tables the built-ins clean, empty.
        for table in barycenter_jobs_benches::barycenter::all() {
            db.execute_schema(&table).await.expect("create table");
        }
        barycenter_jobs_builtin::link();
        let registry = Registry::from_inventory().expect("registry");
        let handle = Scheduler::builder(registry, db)
            .start()
            .await
            .expect("start");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = handle
            .store()
            .list(&barycenter_jobs_core::ExecutionQuery::new().limit(1000))
            .await
            .map(|v| v.len())
            .unwrap_or(0);
        let cpu0 = barycenter_jobs_benches::cpu_time(ticks);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let cpu1 = barycenter_jobs_benches::cpu_time(ticks);
        let after = handle
            .store()
            .list(&barycenter_jobs_core::ExecutionQuery::new().limit(1000))
            .await
            .map(|v| v.len())
            .unwrap_or(0);
        let rss = barycenter_jobs_benches::rss_mib();
        handle
            .shutdown(Duration::from_secs(5))
            .await
            .expect("shutdown");
        let _ = std::fs::remove_dir_all(&dir);
        println!(
            "RESULT {}",
            serde_json::json!({
                "secs": secs, "cpu_s": (cpu1 - cpu0).as_secs_f64(),
                "runs": after.saturating_sub(before), "rss_mib": rss,
                "jobs": handle.jobs().len(),
            })
        );
    });
}
