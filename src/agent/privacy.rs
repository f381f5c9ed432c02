//! Storage limitation (issue 29): what the agent lets go of about the officer's own photos,
//! and when, under the `[privacy]` settings. [`Agent::prune`] runs at the start of every
//! `scan`, with every `purge`, at each reconcile of `watch` (at start and on its timer) and of
//! the Android shell; each run is cheap when nothing is due.
//!
//! * Personal decisions older than `keep_personal_decisions` become markers (the ledger's
//!   `privacy` module says what that leaves), so the photo is not decided again.
//! * A marker whose file has left its camera folder goes: only folders that could be listed
//!   now are looked at, so a folder that is missing for a moment costs no photo a second
//!   decision.
//! * Corrections older than `keep_corrections` are deleted, and a released false positive
//!   whose correction ran out loses its path, capture time, GPS, embedding, rule and notes.
//! * Then the write-ahead log is checkpointed and truncated, so the bytes are gone from the
//!   files too.

use std::collections::HashSet;

use serde::Serialize;
use tracing::{info, warn};

use crate::ledger;
use crate::media;
use crate::quarantine::fsops::FileId;

use super::{Agent, Error};

/// What one [`Agent::prune`] let go of.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Personal decisions forgotten (now markers).
    pub personal_forgotten: u64,
    /// Markers removed because their file left its camera folder.
    pub markers_removed: u64,
    /// Corrections deleted.
    pub corrections_expired: u64,
    /// Released false positives whose personal data was removed.
    pub released_forgotten: u64,
    /// Custody events whose contents were pruned.
    pub events_pruned: u64,
}

impl PruneReport {
    fn changed(&self) -> bool {
        *self != PruneReport::default()
    }
}

impl Agent {
    /// Let go of what `[privacy]` says is past its time (see the module docs).
    pub fn prune(&self) -> Result<PruneReport, Error> {
        let privacy = &self.config.privacy;
        let gone = self.markers_gone()?;
        let mut ledger = self.ledger();
        let due = ledger.released_due(ledger::now_ms(), privacy.keep_corrections)?;
        let mut report = PruneReport::default();
        let mut tx = ledger.write()?;
        report.personal_forgotten = tx.forget_personal(privacy.keep_personal_decisions)?;
        report.markers_removed = tx.drop_markers(&gone)?;
        report.corrections_expired = tx.expire_corrections(privacy.keep_corrections)?;
        for item in due {
            match tx.forget_released(item)? {
                Some(n) => {
                    report.released_forgotten += 1;
                    report.events_pruned += n as u64;
                }
                None => warn!(item, "released item: its custody events do not verify, so its personal data is kept for `verify` to show"),
            }
        }
        tx.commit()?;
        // Pruned bytes leave the write-ahead log too; a scrub another process's read held up
        // is done again at the next run.
        let mut scrub = self.scrub_due.lock().unwrap_or_else(|p| p.into_inner());
        if report.changed() || *scrub {
            *scrub = !ledger.scrub_log()?;
            if *scrub {
                warn!("the write-ahead log could not be truncated now (another process reads it); tried again at the next reconcile");
            }
        }
        drop(scrub);
        if report.changed() {
            info!(
                personal_forgotten = report.personal_forgotten,
                markers_removed = report.markers_removed,
                corrections_expired = report.corrections_expired,
                released_forgotten = report.released_forgotten,
                events_pruned = report.events_pruned,
                "privacy: let go of what was past its time"
            );
        }
        Ok(report)
    }

    /// [`Agent::prune`] where a failure must not stop the caller (a scan, the watcher): logged.
    pub fn prune_logged(&self) {
        if let Err(e) = self.prune() {
            warn!(error = %e, "privacy pruning failed; it is tried again at the next reconcile");
        }
    }

    /// The markers whose file is no longer in its camera folder, among folders listed now.
    fn markers_gone(&self) -> Result<Vec<Vec<u8>>, Error> {
        let markers = self.ledger().personal_markers()?;
        if markers.is_empty() {
            return Ok(Vec::new());
        }
        let ledger = self.ledger();
        let secret = ledger.secret()?;
        let (mut listed, mut present) = (HashSet::new(), HashSet::new());
        for cam in &self.cameras {
            let Ok(entries) = std::fs::read_dir(cam) else { continue };
            let mut keys = Vec::new();
            let mut complete = true;
            for entry in entries {
                let Ok(entry) = entry else {
                    complete = false;
                    break;
                };
                if !media::is_candidate_name(&entry.file_name()) {
                    continue;
                }
                match entry.metadata() {
                    Ok(meta) if meta.is_file() => {
                        let id = FileId::of(&meta);
                        keys.push(secret.file_key(&entry.path(), id.size, id.mtime_ns));
                    }
                    Ok(_) => {}
                    Err(_) => complete = false,
                }
            }
            if complete {
                listed.insert(secret.folder_key(cam));
                present.extend(keys);
            }
        }
        Ok(markers.into_iter().filter(|(k, f)| listed.contains(f) && !present.contains(k)).map(|(k, _)| k).collect())
    }
}
