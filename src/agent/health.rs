//! The store's health as this agent sees it ([`crate::health`] has the shape `stats` shows):
//! when a file could not be stored because the store or the ledger failed, the agent says so
//! once (and once more when a file goes through again), remembers since when and why, which
//! files wait, and how many tries each item's move took. [`Agent::store_ready`] is the cheap
//! check the watcher runs before it lets the waiting files through.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::MutexGuard;

use tracing::{debug, error, info};

use crate::health::{self, Health};
use crate::ledger;
use crate::quarantine::fsops;

use super::{Agent, Outcome, OutcomeKind, RetryCause};

/// `detail` of a file's failure as the store's reason, without the photo's path: the reason
/// goes into an ERROR line, `stats`, OpenMetrics and the Android health state, none of which
/// names a photo (the path stays in the DEBUG line beside it).
fn without_photo(detail: &str, path: &Path) -> String {
    let shown = path.display().to_string();
    if shown.is_empty() {
        return detail.to_string();
    }
    detail.replace(&shown, "a photo")
}

/// Room a waiting file needs beyond its own size: the ledger's rows and the copy's metadata.
const MARGIN_BYTES: u64 = 1 << 20;

/// What the agent knows about the store's failures (a leaf lock: see the lock order).
#[derive(Debug, Default)]
pub(super) struct Tracker {
    /// Since when and why the store has been failing.
    down: Option<(i64, String)>,
    /// Files that could not be stored and are tried again.
    waiting: HashSet<PathBuf>,
    /// Failed tries per item whose move is tried again.
    tries: HashMap<i64, u32>,
}

impl Agent {
    fn tracker(&self) -> MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The store's health: this agent's failures, the filesystem's free space and flags.
    pub fn health(&self) -> Health {
        let t = self.tracker();
        Health::from_parts(t.down.clone(), health::space(self.store.root()), t.waiting.len() as u64)
    }

    /// Keep count of what one file's handling says about the store. Called once per file
    /// handled, with its outcome.
    pub(super) fn note_outcome(&self, path: &Path, o: &Outcome) {
        let mut t = self.tracker();
        if o.kind == OutcomeKind::Retry && o.retry == Some(RetryCause::Store) {
            t.waiting.insert(path.to_path_buf());
            if let Some(item) = o.item {
                *t.tries.entry(item).or_default() += 1;
            }
            let reason = without_photo(o.detail.as_deref().unwrap_or_default(), path);
            match &mut t.down {
                Some((_, why)) => {
                    debug!(path = %path.display(), reason, "store still failing; the file is tried again later");
                    *why = reason;
                }
                None => {
                    error!(
                        reason,
                        "the store cannot take photos now; they stay where they are and are tried again with \
                         backoff (said once; `fotovakt stats` shows the store's health)"
                    );
                    debug!(path = %path.display(), "the file the store could not take");
                    t.down = Some((ledger::now_ms(), reason));
                }
            }
            return;
        }
        t.waiting.remove(path);
        if let Some(item) = o.item {
            t.tries.remove(&item);
        }
    }

    /// How many tries of `item`'s move failed before this one (as this agent counted them).
    pub(super) fn failed_tries(&self, item: i64) -> u32 {
        self.tracker().tries.get(&item).copied().unwrap_or(0)
    }

    /// A file went into the store: if the store was failing, it takes files again.
    pub(super) fn store_took_a_file(&self) {
        let mut t = self.tracker();
        if let Some((since, _)) = t.down.take() {
            let down_s = (ledger::now_ms() - since) as f64 / 1e3;
            info!(down_s, waiting = t.waiting.len(), "the store takes photos again");
        }
    }

    /// Can the store take these waiting files now, as far as a cheap check can tell: room for
    /// the smallest of them (free space, not read-only) and one small write that reaches the
    /// disk. Nothing is read from the files but their size.
    pub fn store_ready(&self, waiting: &[PathBuf]) -> bool {
        // A file waiting in staging for the store is sized there.
        let size = |p: &PathBuf| {
            std::fs::symlink_metadata(p)
                .or_else(|e| self.waiting_in_staging(p).map_or(Err(e), std::fs::symlink_metadata))
                .ok()
                .map(|m| m.len())
        };
        let smallest = waiting.iter().filter_map(size).min();
        // Every one is gone: trying them is what tells the watcher so.
        let Some(need) = smallest else { return true };
        match health::space(self.store.root()) {
            Ok(s) if s.read_only || s.free < need.saturating_add(MARGIN_BYTES) => return false,
            // Unknown space: the write below decides.
            _ => {}
        }
        match self.write_probe() {
            Ok(()) => true,
            Err(e) => {
                debug!(error = %e, "store probe: a small write failed");
                false
            }
        }
    }

    /// Write, fsync and remove a small file in the store's `tmp/`.
    fn write_probe(&self) -> std::io::Result<()> {
        let probe = self.store.root().join("tmp").join(format!(".ready-probe-{}", std::process::id()));
        let written = fsops::create_exclusive(&probe).and_then(|mut f| {
            f.write_all(&[0u8; 4096])?;
            f.sync_all()
        });
        let removed = match std::fs::remove_file(&probe) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
        written.and(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_reason_names_no_photo() {
        let path = Path::new("/sdcard/DCIM/Camera/IMG_0042.jpg");
        let detail = "/sdcard/DCIM/Camera/IMG_0042.jpg: copy failed: No space left on device (os error 28)";
        let reason = without_photo(detail, path);
        assert_eq!(reason, "a photo: copy failed: No space left on device (os error 28)");
        assert!(!reason.contains("IMG_0042"));
        assert_eq!(without_photo("store /s: read-only", path), "store /s: read-only");
    }
}
