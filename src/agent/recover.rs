//! Recovery: what a process that died (or lost power) left behind. Journaled moves are
//! completed or rolled back from what is on disk, store files whose ledger rows were lost
//! are verified and adopted, partial copies are swept, and the deletes of originals that
//! could not be removed are retried.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Serialize;
use tracing::{debug, error, info, warn};

use crate::ledger::{Direction, Event, Item, ItemState, Ledger, MoveIntent, NewItem};
use crate::quarantine::fsops::{self, OpenError};
use crate::quarantine::{Recovered, Store};

use super::commit::{Note, Seen};
use super::{Agent, Error};

/// What recovery did at start.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RecoveryReport {
    /// Moves that could not be recovered now (left journaled for the next start).
    pub failed: usize,
    pub adopted: usize,
    pub completed: usize,
    pub rolled_back: usize,
    pub vanished: usize,
    pub temp_files_removed: usize,
    /// Store files of purged items that an interrupted purge left, wiped now.
    pub purges_finished: usize,
    /// Files found in staging (a stash a dead process left) and put back at their names.
    pub returned: usize,
}

impl Agent {
    /// Complete or roll back moves left by a process that died, and sweep partial copies.
    pub fn recover(&self) -> Result<RecoveryReport, Error> {
        let mut custody = self.custody()?;
        let ledger = &mut *custody.ledger;
        let mut report = RecoveryReport::default();
        let pending = ledger.pending_moves()?;
        // A staged file's original name, by its name in staging.
        let staged: std::collections::HashMap<PathBuf, PathBuf> = pending
            .iter()
            .filter(|m| m.direction == Direction::Stash)
            .map(|m| (m.dst.clone(), m.src.clone()))
            .collect();
        for m in pending.into_iter().filter(|m| m.direction != Direction::Stash) {
            let home = staged.get(&m.src).cloned().unwrap_or_else(|| m.src.clone());
            // A move out of staging whose stash rename a power cut took back (the staged name is
            // gone, or only the empty claim of it is left): the file is at its original name
            // again, and that is the source to finish (or undo) the move from.
            let lost_stash = home != m.src && !holds_bytes(&m.src) && present(&home);
            let m = if lost_stash { MoveIntent { src: home.clone(), ..m } } else { m };
            let end = match self.store.recover_beside(&m, &home) {
                Ok(o) => o,
                Err(e) => {
                    // One file must not stop the agent: the journal row stays for the next start.
                    error!(item = m.item_id, error = %e, "could not recover this move now; will retry at the next start");
                    debug!(item = m.item_id, path = %m.src.display(), "source of the move");
                    report.failed += 1;
                    continue;
                }
            };
            let mut reason = None;
            match (m.direction, end) {
                (Direction::In, Recovered::SourceKept) => {
                    error!(item = m.item_id, "verified in the store but the original cannot be deleted; it stays where it is and reconcile retries");
                    debug!(item = m.item_id, path = %m.src.display(), "original kept");
                    reason = Some("original could not be deleted");
                    report.completed += 1;
                }
                (Direction::Out | Direction::Stash | Direction::Copy, Recovered::SourceKept) => {
                    warn!(item = m.item_id, "released, but its store file could not be removed");
                    debug!(item = m.item_id, path = %m.src.display(), "store file left");
                    report.completed += 1;
                }
                (_, Recovered::Completed) => report.completed += 1,
                (_, Recovered::RolledBack) => report.rolled_back += 1,
                (_, Recovered::Vanished) => {
                    error!(item = m.item_id, "file was deleted by someone else before its move began");
                    debug!(item = m.item_id, path = %m.src.display(), "file that was gone");
                    report.vanished += 1;
                }
            }
            let mut tx = ledger.write()?;
            self.apply_outcome(&mut tx, &m, end, Seen::AtStart, &Note { reason, ..Note::default() })?;
            tx.commit()?;
        }
        // After the moves: an `In` move rolled back leaves its file in staging, to go home now.
        self.recover_stashes(ledger, &mut report)?;
        for (item, wiped) in self.wipe_purged_files(ledger)? {
            match wiped {
                Ok(bytes) => {
                    info!(item, bytes, "removed the file of an item an interrupted purge had marked");
                    report.purges_finished += 1;
                }
                Err((path, e)) => {
                    error!(item, error = %e, "purged item's file could not be removed; the next start or purge retries");
                    debug!(item, path = %path.display(), "purged item's file");
                }
            }
        }
        report.adopted = self.adopt_orphans(ledger)?;
        report.temp_files_removed =
            self.store.sweep_tmp().map_err(Error::io("sweeping partial copies", self.store.root().join("tmp")))?;
        Ok(report)
    }

    /// Store files no ledger row accounts for: a power loss kept the rename but lost the
    /// ledger's last rows. The name carries the SHA-256, so each is verified and adopted as
    /// a quarantined item whose original path is unknown; one that does not verify is left
    /// for `verify` to report.
    fn adopt_orphans(&self, ledger: &mut Ledger) -> Result<usize, Error> {
        let known = ledger.known_store_names()?;
        let pending: HashSet<String> = ledger.pending_moves()?.iter().map(|m| self.store_name_of(&m.dst)).collect();
        let on_disk =
            self.store.objects().map_err(Error::io("listing the store", self.store.root().join("objects")))?;
        let mut adopted = 0;
        for (name, size) in on_disk {
            if known.contains(&name) || pending.contains(&name) {
                continue;
            }
            let Some((sha, _)) = Store::parse_object_name(&name) else { continue };
            match fsops::hash_path(&self.store.path_of(&name)) {
                Ok(h) if h == sha => {}
                _ => continue,
            }
            let unknown = PathBuf::from("(unknown: ledger rows lost in a power failure)");
            let mut tx = ledger.write()?;
            let now = tx.now();
            let item = tx.insert_item(&NewItem {
                sha256: &sha,
                size,
                original_path: &unknown,
                kind: "unknown",
                capture_time: None,
                gps: None,
                file_mtime_ns: None,
                first_seen_ms: now,
                state: ItemState::Moving,
                action: "quarantine",
                source: "recovered",
                rule: "store file adopted at recovery",
                score: None,
                case_id: None,
                officer: None,
                tags: &[],
                embedding: None,
            })?;
            tx.set_state(item, ItemState::Quarantined, Some(&name))?;
            tx.record(Some(item), &Event::Adopted { sha256: sha.clone(), store_name: name.clone(), size })?;
            tx.commit()?;
            warn!(store_name = %name, item, "adopted a verified store file the ledger had lost");
            adopted += 1;
        }
        Ok(adopted)
    }

    /// Retry deleting the originals of `copied_original_kept` items. The original is deleted
    /// only while its path still holds the very bytes that are verified in the store. Each item
    /// that leaves the state gets an `original_removed` event; failures stay quiet (debug) until
    /// the next pass, since the state itself is what officers and admins are shown.
    pub fn retry_kept_originals(&self) -> usize {
        if self.held() {
            // The bytes read may be redacted: they could not be compared with the stored copy.
            return 0;
        }
        let items = match self.ledger().items(None) {
            Ok(v) => v.into_iter().filter(|i| i.state == ItemState::OriginalKept).collect::<Vec<_>>(),
            Err(e) => {
                warn!(error = %e, "cannot list items whose original was kept");
                return 0;
            }
        };
        let mut done = 0;
        for item in items {
            match self.retry_kept_original(&item) {
                Ok(Some(how)) => {
                    info!(item = item.id, how, "original of a stored item is gone now; item is quarantined");
                    done += 1;
                }
                Ok(None) => {}
                Err(e) => debug!(item = item.id, error = %e, "retrying the delete of a kept original failed"),
            }
        }
        done
    }

    /// One item of [`Agent::retry_kept_originals`]: how its original went, or `None` while it
    /// still cannot be deleted.
    fn retry_kept_original(&self, item: &Item) -> Result<Option<&'static str>, Error> {
        let mut custody = self.custody()?;
        let path = &item.original_path;
        let how = match fsops::open_regular(path) {
            Err(OpenError::Vanished) => "deleted by someone else",
            Err(e) => return Err(Error::Open { path: path.clone(), source: e }),
            Ok((file, id)) => {
                let (sha, _, _) = fsops::hash_fd(&file, None).map_err(Error::io("hashing a kept original", path))?;
                let still = fsops::lstat_id(path).is_ok_and(|now| now.same_content_as(&id));
                if sha != item.sha256 || !still {
                    // Another file has the name now: ours is only in the store; theirs stays.
                    "replaced by another file"
                } else {
                    match std::fs::remove_file(path) {
                        Ok(()) => {
                            let _ = fsops::fsync_parent(path);
                            "deleted on retry"
                        }
                        Err(e) => {
                            debug!(item = item.id, path = %path.display(), error = %e, "original still cannot be deleted");
                            return Ok(None);
                        }
                    }
                }
            }
        };
        let mut tx = custody.ledger.write()?;
        tx.set_state(item.id, ItemState::Quarantined, None)?;
        tx.record(Some(item.id), &Event::OriginalRemoved { how: how.into() })?;
        tx.commit()?;
        Ok(Some(how))
    }
}

/// Is there anything at `p` (not following a symlink)?
fn present(p: &std::path::Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// Is there a file with bytes at `p`? An empty one is the claim of a name whose rename did not
/// happen (`fsops::rename_claiming`).
fn holds_bytes(p: &std::path::Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| !m.is_file() || m.len() > 0)
}
