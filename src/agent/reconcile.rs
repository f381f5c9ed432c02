//! Reconcile: the ledger, not the event stream, is the source of truth. A pass lists what in
//! the camera folders the ledger has not settled and runs each through the pipeline; the
//! first-run backlog records what was there before the agent was installed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tracing::{info, warn};

use crate::ledger::{self, Direction, Ledger};
use crate::media::{self, ExifFacts, MediaKind};
use crate::policy::{self, Action, Verdict};
use crate::quarantine::fsops::{self, FileId};

use super::commit::Committed;
use super::intake::{decided, Facts, Step};
use super::{Agent, Error, Outcome, OutcomeKind, RetryCause, StoreReader};

impl Agent {
    /// Files in the camera folders that the ledger has not settled, older than `min_age`.
    ///
    /// Every caller is a reconcile pass (`scan`, the watcher's start, rescan and timer, the
    /// Android tick), so what agents that died meanwhile left in staging is returned, and the
    /// deletes of `copied_original_kept` originals are retried, here first.
    pub fn pending_files(&self, min_age: Duration) -> Result<Vec<PathBuf>, Error> {
        // What an agent that died meanwhile left in staging goes back to its name first, so
        // this pass sees it (and judges it) there.
        if let Err(e) = self.recover_dead_owners() {
            warn!(error = %e, "could not return what a stopped agent left in staging; the next pass retries");
        }
        self.retry_kept_originals();
        self.unsettled_files(min_age)
    }

    /// The files [`Agent::pending_files`] lists, without retrying anything: reads only.
    pub fn unsettled_files(&self, min_age: Duration) -> Result<Vec<PathBuf>, Error> {
        let rejected = |path: &Path, mtime_ns| {
            self.rejected.lock().unwrap_or_else(|p| p.into_inner()).contains(&(path.to_path_buf(), mtime_ns))
        };
        unsettled(&self.cameras, || Ok(self.ledger()), self.held(), min_age, rejected)
    }

    /// One reconcile pass (the Android shell's tick): the privacy pruning ([`Agent::prune`]),
    /// then every unsettled file in the camera folders is handled; then a signed checkpoint if
    /// none was made for `checkpoint_interval`.
    pub fn reconcile(&self, min_age: Duration) -> Result<Vec<Outcome>, Error> {
        self.prune_logged();
        let files = self.pending_files(min_age)?;
        if !files.is_empty() {
            info!(files = files.len(), "reconcile: files not yet decided");
        }
        let outcomes = files.iter().map(|p| self.on_media(p)).collect();
        self.checkpoint_if_due();
        Ok(outcomes)
    }

    /// The first-run pass over what was in the camera folders before the agent was installed
    /// (the Android shell calls it once, at the first start). `backlog = "record"` (default):
    /// each file is hashed and recorded as kept, rule `backlog`, and nothing is moved;
    /// `backlog = "quarantine"`: each is decided like a new photo. Files already settled in
    /// the ledger are skipped either way, so a pass cut short is simply run again.
    pub fn record_backlog(&self) -> Result<Vec<Outcome>, Error> {
        let files = self.pending_files(Duration::ZERO)?;
        info!(files = files.len(), policy = ?self.config.backlog, "first-run backlog");
        if self.config.backlog == crate::config::Backlog::Quarantine {
            return Ok(files.iter().map(|p| self.on_media(p)).collect());
        }
        Ok(files.iter().map(|p| self.record_kept(p)).collect())
    }

    /// Hash `path` and record it as kept (the backlog), without classifying or moving it.
    fn record_kept(&self, path: &Path) -> Outcome {
        let started = Instant::now();
        match self.keep_backlog(path, started) {
            Ok(outcome) => outcome,
            Err(settled) => *settled,
        }
    }

    fn keep_backlog(&self, path: &Path, started: Instant) -> Step<Outcome> {
        let (file, id) = self.open_backlog(path, started)?;
        if id.size == 0 {
            return Err(self.reject_id(path, "empty file (0 bytes)", &id, started));
        }
        let sha256 = match fsops::hash_fd(&file, None) {
            Ok((sha, read, _)) if read == id.size => sha,
            Ok(_) => return Err(Box::new(Outcome::later(path, RetryCause::Busy, "still being written", started))),
            Err(e) => return Err(self.reject_id(path, &format!("unreadable: {e}"), &id, started)),
        };
        let kind = MediaKind::sniff(&fsops::read_head(&file, 64).unwrap_or_default());
        let verdict = Verdict {
            action: Action::Keep,
            source: policy::Source::Default,
            case_id: None,
            rule: "backlog: in the camera folder before the agent was installed (backlog = record)".into(),
        };
        let known = self.known(path, &id).map_err(|e| self.failed(path, e.into(), started))?;
        let facts = Facts {
            path,
            at: path,
            staged: None,
            file,
            id,
            sha256,
            kind,
            exif: ExifFacts::default(),
            first_seen: ledger::now_ms(),
        };
        match self.commit(&facts, &verdict, None, None, known).map_err(|e| self.failed(path, e, started))? {
            Committed::Decided(d) => Ok(decided(&facts, &verdict, None, d, started)),
            Committed::Earlier(earlier) => Ok(self.earlier_outcome(path, earlier, started)),
        }
    }

    /// Open a backlog file: one that is gone is simply skipped.
    fn open_backlog(&self, path: &Path, started: Instant) -> Step<(std::fs::File, FileId)> {
        match fsops::open_regular(path) {
            Ok(x) => Ok(x),
            Err(fsops::OpenError::Vanished) => {
                Err(Box::new(Outcome::simple(path, OutcomeKind::Skipped, "no longer there", started)))
            }
            Err(e) => Err(self.reject(path, &e.to_string(), started)),
        }
    }
}

impl StoreReader {
    /// The files in the camera folders the ledger has not settled: what the next `scan` would
    /// handle (`fotovakt pending`). Read-only: matching a file to the keyed record of an
    /// officer's own photo takes the device secret, which the reader reads and never makes.
    pub fn unsettled(&self) -> Result<Vec<PathBuf>, Error> {
        let held = !self.config.media_location_access;
        unsettled(&self.cameras, || self.read(), held, Duration::ZERO, |_, _| false)
    }
}

/// Files in `cameras` that the ledger (`lock()`, held for one folder at a time) has not
/// settled, older than `min_age`; one that is not a regular file counts unless `rejected` says
/// it was rejected already (path, mtime).
fn unsettled<L: std::ops::Deref<Target: AsRef<Ledger>>>(
    cameras: &[PathBuf],
    lock: impl Fn() -> Result<L, Error>,
    held: bool,
    min_age: Duration,
    rejected: impl Fn(&Path, i64) -> bool,
) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    let now = SystemTime::now();
    for cam in cameras {
        let entries = match std::fs::read_dir(cam) {
            Ok(e) => e,
            Err(e) => {
                warn!(folder = %cam.display(), error = %e, "cannot read camera folder");
                continue;
            }
        };
        let guard = lock()?;
        let ledger: &Ledger = (*guard).as_ref();
        for entry in entries.flatten() {
            if !media::is_candidate_name(&entry.file_name()) {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            let id = FileId::of(&meta);
            if meta.is_file() {
                let age = meta.modified().ok().and_then(|m| now.duration_since(m).ok()).unwrap_or_default();
                if age < min_age || ledger.is_settled_with(&path, id.size, id.mtime_ns, held)? {
                    continue;
                }
            } else if rejected(&path, id.mtime_ns) {
                continue;
            }
            out.push(path);
        }
    }
    // A file decided "quarantine" that waits in staging for the store is unsettled too, by its
    // camera name (trying that name takes it from staging).
    let guard = lock()?;
    let ledger: &Ledger = (*guard).as_ref();
    for m in ledger.pending_moves()? {
        let waiting = m.direction == Direction::Stash && m.item_id != 0 && m.dst.is_file();
        if waiting && cameras.iter().any(|c| m.src.parent() == Some(c.as_path())) && !out.contains(&m.src) {
            out.push(m.src);
        }
    }
    out.sort();
    Ok(out)
}
