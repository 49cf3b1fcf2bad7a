//! Who a scheduler is: its instance label (history, logs, metrics) and its lease holder
//! (every lease decision).

use std::sync::atomic::Ordering;

/// The actor of the changes the scheduler makes by itself (a pause's end, a pause after
/// failures, a backfill's end).
pub(super) const SYSTEM: &str = "system";

/// This host's name, as it appears in default instance ids (`HOST:PID`).
pub(super) fn this_host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The lease holder of a scheduler labelled `instance`: the label, `#`, and 64 random bits
/// drawn now. The label is operator-chosen and may be shared (one configuration file
/// shipped to every replica, containers that share a hostname and run as PID 1); a lease
/// decision that compared labels would let one such replica re-take another's claim. The
/// random part comes from the standard library's per-process hash keys (seeded by the
/// operating system), mixed with the time and a per-process counter, so schedulers of one
/// process differ too.
pub(super) fn lease_holder(instance: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    static DRAWN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(DRAWN.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    // The lease table's holder column holds 255 characters: keep the label's start.
    let label: String = instance.chars().take(200).collect();
    format!("{label}#{:016x}", hasher.finish())
}

/// `HOST:PID` for the first scheduler of a process, `HOST:PID/2`, `HOST:PID/3` ... for the
/// next ones: every scheduler needs an identity of its own, since a lease names its holder and
/// a holder may re-take a claim of its own whose answer was lost.
pub(super) fn default_instance() -> String {
    static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = STARTED.fetch_add(1, Ordering::Relaxed) + 1;
    let base = format!("{}:{}", this_host(), std::process::id());
    if n == 1 { base } else { format!("{base}/{n}") }
}
