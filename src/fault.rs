//! Fault points for crash campaigns: `FOTOVAKT_FAULT=NAME` (or `NAME:N` for the N-th hit)
//! makes the process kill itself with SIGKILL when it reaches that point, exactly as a
//! `kill -9` or a phone losing power would. `FOTOVAKT_PAUSE=NAME:MS` instead sleeps there for
//! MS milliseconds (announcing it on stderr), so a test can change the file under the agent's
//! feet at exactly that moment. Compiled in debug builds (the tests' binary) and with the
//! `fault-injection` feature; a release build has no fault points at all.

/// The fault points of a move, in the order a move reaches them: the stash (the journal row
/// durable, then the rename into staging), the move into the store, and the return of a file
/// judged personal (before its rename back, and after it, before the row closes).
pub const POINTS: &[&str] = &[
    "after_stash_journal",
    "after_stash",
    "before_lock",
    "before_journal",
    "after_journal",
    "mid_copy",
    "after_copy_fsync",
    "after_rename",
    "before_unlink",
    "before_commit",
    "after_commit",
    "before_return",
    "after_return",
];

/// The fault points of the stash and the return alone.
pub const STASH_POINTS: &[&str] = &["after_stash_journal", "after_stash", "before_return", "after_return"];

/// Die here if `FOTOVAKT_FAULT` names this point; pause here if `FOTOVAKT_PAUSE` does.
#[inline]
pub fn point(name: &'static str) {
    #[cfg(any(debug_assertions, feature = "fault-injection"))]
    imp::point(name);
    #[cfg(not(any(debug_assertions, feature = "fault-injection")))]
    let _ = name;
}

#[cfg(any(debug_assertions, feature = "fault-injection"))]
mod imp {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    static PAUSE: OnceLock<Option<(String, u64)>> = OnceLock::new();

    pub fn point(name: &'static str) {
        let pause = PAUSE.get_or_init(|| {
            let spec = std::env::var("FOTOVAKT_PAUSE").ok()?;
            let (n, ms) = spec.split_once(':')?;
            Some((n.to_string(), ms.parse().ok()?))
        });
        if let Some((target, ms)) = pause {
            if target == name {
                eprintln!("fotovakt: fault point {name}: pausing {ms} ms (FOTOVAKT_PAUSE)");
                std::thread::sleep(std::time::Duration::from_millis(*ms));
            }
        }
        let target = TARGET.get_or_init(|| {
            let spec = std::env::var("FOTOVAKT_FAULT").ok()?;
            let (n, count) = match spec.split_once(':') {
                Some((n, c)) => (n.to_string(), c.parse().unwrap_or(1)),
                None => (spec, 1),
            };
            Some((n, count))
        });
        if let Some((target, nth)) = target {
            if target == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
                eprintln!("fotovakt: fault point {name}: killing myself (FOTOVAKT_FAULT)");
                // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
                unsafe {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                }
            }
        }
    }
}
