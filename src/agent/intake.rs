//! Intake: the first stage for one file. Open it without following symlinks, load what the
//! ledger knows about this file version once ([`Known`]), then hash it, sniff its type and
//! read its EXIF facts, all from the one descriptor, before anything reads the bytes for a
//! decision. Bad input (a symlink, a FIFO, an empty or oversized or unreadable file) is
//! rejected here: one log line and one ledger event per file version.

use std::fs::File;
use std::path::Path;
use std::time::Instant;

use tracing::{debug, error, info, warn};

use crate::ledger::{self, Event, Item, ItemState, Ledger, LedgerError, PersonalRecord};
use crate::media::{self, ExifFacts, InspectError, MediaKind};
use crate::policy::Verdict;
use crate::quarantine::fsops::{self, FileId, OpenError};

use super::commit::{Committed, Decided, Tag};
use super::stash::{Staged, Stash};
use super::{Agent, Error, Outcome, OutcomeKind, RetryCause};

/// A stage's way out: `Err` carries the outcome that settles the file already (skipped,
/// rejected, to be retried, decided earlier), so the later stages do not run.
pub(super) type Step<T> = Result<T, Box<Outcome>>;

/// One file as intake read it: the descriptor it was hashed through and what was learnt
/// from those very bytes.
pub(super) struct Facts<'a> {
    /// Its name in the camera folder (what the ledger records).
    pub path: &'a Path,
    /// Where it is now: `path`, or its name in staging.
    pub at: &'a Path,
    /// Its stash, when it is out of sight in staging.
    pub staged: Option<&'a Staged>,
    pub file: File,
    pub id: FileId,
    pub sha256: String,
    pub kind: MediaKind,
    pub exif: ExifFacts,
    /// When the agent first saw it (milliseconds since the epoch).
    pub first_seen: i64,
}

/// A file's name in the camera folder, where it is now, and its stash if it is staged.
#[derive(Clone, Copy)]
pub(super) struct Where<'a> {
    pub path: &'a Path,
    pub at: &'a Path,
    pub staged: Option<&'a Staged>,
}

/// What the ledger knows about one file version (its path, size and mtime), loaded in one go
/// before the file is hashed. The commit stage takes it under the move lock and loads it
/// again only if the ledger changed in between ([`Known::current`]).
#[derive(Debug)]
pub(super) struct Known {
    /// Decided earlier and left where it is (kept, released, copied with its original kept;
    /// held too while media-location access is off): intake reports the earlier decision.
    pub settled: bool,
    /// The newest item with this path and mtime: the earlier decision to report, or the item
    /// an officer's tag (or regained media-location access) decides again.
    pub latest: Option<Item>,
    /// The keyed record of this file version if it was decided as the officer's own (or only
    /// its marker, once the decision was forgotten).
    pub personal: Option<PersonalRecord>,
    /// The newest item with this path and mtime, if its move did not happen (`aborted`): a
    /// try of the same file again goes on with that item instead of recording a new one.
    pub aborted: Option<Item>,
    stamp: Option<Stamp>,
}

/// An earlier decision on a file, to report instead of deciding it again.
#[derive(Debug)]
pub(super) enum Earlier {
    Item(Box<Item>),
    Personal(PersonalRecord),
    /// Settled elsewhere meanwhile, with nothing here to show for it.
    Unknown,
}

/// A point in the ledger's history: a commit since, by this agent's connection or another
/// (another process), changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    data_version: i64,
    total_changes: u64,
}

impl Stamp {
    /// `None` when SQLite cannot say; such a stamp never matches, so the facts are reloaded.
    pub(super) fn of(ledger: &Ledger) -> Option<Stamp> {
        let data_version = ledger.conn().query_row("PRAGMA data_version", [], |r| r.get(0)).ok()?;
        Some(Stamp { data_version, total_changes: ledger.conn().total_changes() })
    }
}

impl Known {
    pub(super) fn load(ledger: &Ledger, path: &Path, id: &FileId, include_held: bool) -> Result<Known, LedgerError> {
        let stamp = Stamp::of(ledger);
        Ok(Known {
            settled: ledger.is_settled_with(path, id.size, id.mtime_ns, include_held)?,
            latest: ledger.latest_item_for_path(path, Some(id.mtime_ns))?,
            personal: ledger.personal(path, id.size, id.mtime_ns)?,
            aborted: ledger.aborted_item_for(path, id.mtime_ns)?,
            stamp,
        })
    }

    /// The earlier decision these facts show: the personal record when the file was decided
    /// as the officer's own (and is not waiting to be decided again), else the newest item.
    pub(super) fn earlier(self) -> Earlier {
        match (self.personal, self.latest) {
            (Some(p), _) if p.state != Some(ItemState::Held) || self.settled => Earlier::Personal(p),
            (_, Some(item)) => Earlier::Item(Box::new(item)),
            _ => Earlier::Unknown,
        }
    }

    /// These facts if nobody committed to the ledger since they were loaded, else fresh ones.
    pub(super) fn current(
        self,
        ledger: &Ledger,
        path: &Path,
        id: &FileId,
        include_held: bool,
    ) -> Result<Known, LedgerError> {
        match (self.stamp, Stamp::of(ledger)) {
            (Some(then), Some(now)) if then == now => Ok(self),
            _ => Known::load(ledger, path, id, include_held),
        }
    }
}

impl Agent {
    /// Handle one new file in a camera folder: the whole pipeline.
    pub fn on_media(&self, path: &Path) -> Outcome {
        self.intake(path, None, None)
    }

    /// Like [`Agent::on_media`] for a video whose keyframe (JPEG bytes, extracted by the
    /// Android shell) the classifier may judge when context does not decide.
    pub fn on_media_with_keyframe(&self, path: &Path, keyframe: &[u8]) -> Outcome {
        self.intake(path, None, Some(keyframe))
    }

    /// The pipeline for one file: intake, decide, commit.
    pub(super) fn intake(&self, path: &Path, tag: Option<Tag<'_>>, keyframe: Option<&[u8]>) -> Outcome {
        let started = Instant::now();
        let outcome = match self.take_in(path, tag.as_ref(), keyframe, started) {
            Ok(outcome) => outcome,
            Err(settled) => *settled,
        };
        self.note_outcome(path, &outcome);
        outcome
    }

    fn take_in(&self, path: &Path, tag: Option<&Tag<'_>>, keyframe: Option<&[u8]>, started: Instant) -> Step<Outcome> {
        let now = ledger::now_ms();
        if !path.file_name().is_some_and(media::is_candidate_name) {
            return Err(Box::new(Outcome::simple(path, OutcomeKind::Skipped, "not a media file name", started)));
        }
        // 1. Out of sight first: one rename into the staging folder, before the file is even
        // opened (an open can cost more than the rename: FUSE drops a fresh video's cached pages
        // on open). An officer's tag has decided already: its move goes straight into the store.
        if tag.is_none() {
            if let Some((s, known, id)) = self.stash_first(path, started)? {
                let at = s.at.as_path();
                let judged = self.open_staged(&s, &id, started).and_then(|file| {
                    let w = Where { path, at, staged: Some(&s) };
                    self.judge_at(w, file, id, known, now, None, keyframe, started)
                });
                return self.settle_staged(&s, judged, started);
            }
        }
        // Judged where it lies: open without following symlinks; identity from the descriptor.
        let (file, id) = self.open_candidate(path, started)?;
        let known = self.known(path, &id).map_err(|e| self.failed(path, e.into(), started))?;
        if tag.is_none() && known.settled {
            return Ok(self.earlier_outcome(path, known.earlier(), started));
        }
        self.precheck(path, &file, &id, started)?;
        let w = Where { path, at: path, staged: None };
        self.judge_at(w, file, id, known, now, tag, keyframe, started)
    }

    /// The stash, when the file should go out of sight before it is judged: what `lstat` says
    /// of the name (a regular file, neither empty nor oversized: anything else is left to the
    /// path that judges in place, which rejects it), what the ledger knows of that version (a
    /// settled one is reported as decided), then [`Agent::stash`]. `None`: judge it in place.
    fn stash_first(&self, path: &Path, started: Instant) -> Step<Option<(Staged, Known, FileId)>> {
        let Ok(meta) = std::fs::symlink_metadata(path) else { return self.resume(path, started) };
        let id = FileId::of(&meta);
        if !meta.is_file() || id.size == 0 || id.size > self.config.max_file_bytes {
            return Ok(None);
        }
        let Some(dir) = self.staging_for(path, &id) else { return Ok(None) };
        let known = self.known(path, &id).map_err(|e| self.failed(path, e.into(), started))?;
        if known.settled {
            return Err(Box::new(self.earlier_outcome(path, known.earlier(), started)));
        }
        match self.stash(path, &id, &dir, known, started)? {
            Stash::Out(out) => {
                let (s, known) = *out;
                Ok(Some((s, known, id)))
            }
            Stash::InPlace => Ok(None),
        }
    }

    /// A file decided "quarantine" that waits in staging for the store, tried again by its
    /// camera name: judged again from staging ([`Agent::resume_staged`]). `None`: nothing of
    /// that name is waiting.
    fn resume(&self, path: &Path, started: Instant) -> Step<Option<(Staged, Known, FileId)>> {
        let Some(s) = self.resume_staged(path) else { return Ok(None) };
        let Ok(id) = fsops::lstat_id(&s.at) else { return Ok(None) };
        let known = self.known(path, &id).map_err(|e| self.failed(path, e.into(), started))?;
        debug!(path = %path.display(), staging = %s.at.display(), "tried again from staging");
        Ok(Some((s, known, id)))
    }

    /// Open the staged file without following a symlink: it must be the very file `lstat`
    /// described before the stash, and no writer may have it open (else it goes back, to be
    /// looked at again).
    fn open_staged(&self, s: &Staged, id: &FileId, started: Instant) -> Step<File> {
        let path = s.original.as_path();
        let (file, now) = match fsops::open_regular(&s.at) {
            Ok(x) => x,
            Err(e) => return Err(self.reject(path, &e.to_string(), started)),
        };
        if !now.same_content_as(id) {
            return Err(Box::new(Outcome::later(path, RetryCause::Busy, "changed while it was stashed", started)));
        }
        if fsops::open_for_writing(&file) == Some(true) {
            debug!(path = %path.display(), "still open for writing; back to its name, will look again");
            return Err(Box::new(Outcome::later(path, RetryCause::Busy, "still open for writing", started)));
        }
        Ok(file)
    }

    /// Steps 3 to 6 for a file at `w.at`: hash, type, EXIF; context, classifier, policy;
    /// record and move. `Err` when it was not decided now (rejected, to be retried, decided by
    /// another handler): a staged file then goes back to its name.
    #[allow(clippy::too_many_arguments)]
    fn judge_at(
        &self,
        w: Where<'_>,
        file: File,
        id: FileId,
        known: Known,
        now: i64,
        tag: Option<&Tag<'_>>,
        keyframe: Option<&[u8]>,
        started: Instant,
    ) -> Step<Outcome> {
        let path = w.path;
        // A file whose move did not happen was first seen then, not now: its exposure and
        // its session rule count from that first sight.
        let first_seen = known.aborted.as_ref().map_or(now, |i| i.first_seen_ms.min(now));
        // 3. Hash, type, EXIF.
        let (facts, bytes) = self.read(w, file, id, first_seen, started)?;
        // 4–5. Context, classifier, policy.
        let (verdict, assessment) =
            self.decide(&facts, bytes, tag, keyframe).map_err(|e| self.failed(path, e, started))?;
        // 6. Record and move.
        let committed = self
            .commit(&facts, &verdict, assessment.as_ref(), tag, known)
            .map_err(|e| self.failed(path, e, started))?;
        let d = match committed {
            Committed::Earlier(earlier) => return Err(Box::new(self.earlier_outcome(path, earlier, started))),
            Committed::Decided(d) => d,
        };
        let item = d.item;
        let outcome = decided(&facts, &verdict, assessment.as_ref().map(|a| a.case_score), d, started);
        let (source, ms, returned) = (verdict.source.as_str(), outcome.handle_ms, outcome.returned_to.is_some());
        if outcome.kind == OutcomeKind::Retry {
            // Tried again later; a failing store is said once, not once per try.
            debug!(path = %path.display(), item, source, rule = %verdict.rule, ms, detail = ?outcome.detail, "decided; to be tried again");
        } else {
            info!(item, outcome = ?outcome.kind, source, ms, returned, "decided");
            debug!(item, path = %path.display(), rule = %verdict.rule, "file of the item");
        }
        Ok(outcome)
    }

    /// A staged file whose judging ended without deciding it (rejected, to be retried, decided
    /// by another handler, a failure): back to its name, and the outcome says so. A decided
    /// file was settled by the commit stage (into the store, back to its name, or left in
    /// staging for the store), and so is a recorded one the failing store (or ledger) stopped:
    /// it waits in staging, out of sight, for the next try.
    fn settle_staged(&self, s: &Staged, judged: Step<Outcome>, started: Instant) -> Step<Outcome> {
        let mut outcome = match judged {
            Ok(o) => return Ok(o),
            Err(o) => *o,
        };
        if outcome.retry == Some(RetryCause::Store) && self.resume_staged(&s.original).is_some_and(|r| r.row == s.row) {
            debug!(path = %s.original.display(), "waits in staging for the store");
            return Err(Box::new(outcome));
        }
        let back = self.custody().and_then(|mut custody| {
            if !custody.ledger.move_open(s.row)? {
                return Ok(None);
            }
            let reason = outcome.detail.clone().unwrap_or_else(|| "not decided now".into());
            self.give_back(&mut custody.ledger, s, None, Some(&reason), false)
        });
        match back {
            Ok(to) => outcome.returned_to = to.map(|p| p.to_string_lossy().into_owned()),
            Err(e) => {
                error!(path = %s.original.display(), staging = %s.at.display(), error = %e, "could not return a staged file; recovery returns it at the next start");
                return Err(self.failed(&s.original, e, started));
            }
        }
        Err(Box::new(outcome))
    }

    /// Open `path` as a regular file without following a symlink. A file that is gone may
    /// have just been moved by another handler (the watcher, the MediaStore observer).
    pub(super) fn open_candidate(&self, path: &Path, started: Instant) -> Step<(File, FileId)> {
        match fsops::open_regular(path) {
            Ok(x) => Ok(x),
            Err(OpenError::Vanished) => {
                let recent = self.ledger().latest_item_for_path(path, None).ok().flatten().filter(|i| {
                    i.state == ItemState::Quarantined
                        && i.quarantined_at_ms.is_some_and(|q| ledger::now_ms() - q < 10 * 60 * 1000)
                });
                if let Some(item) = recent {
                    return Err(Box::new(Outcome::of_item(&item, "already quarantined by another handler", started)));
                }
                debug!(path = %path.display(), "gone before it could be read");
                Err(Box::new(Outcome::simple(path, OutcomeKind::Skipped, "no longer there", started)))
            }
            Err(e) => Err(self.reject(path, &e.to_string(), started)),
        }
    }

    /// What the ledger knows about this file version.
    pub(super) fn known(&self, path: &Path, id: &FileId) -> Result<Known, LedgerError> {
        Known::load(&self.ledger(), path, id, self.held())
    }

    /// The checks on the open file that need no read of it: a writer still has it open, it is
    /// empty, it is over `max_file_bytes`. They come before the stash, so such a file never
    /// leaves its folder.
    fn precheck(&self, path: &Path, file: &File, id: &FileId, started: Instant) -> Step<()> {
        if fsops::open_for_writing(file) == Some(true) {
            debug!(path = %path.display(), "still open for writing; will look again");
            return Err(Box::new(Outcome::later(path, RetryCause::Busy, "still open for writing", started)));
        }
        if id.size == 0 {
            return Err(self.reject_id(path, "empty file (0 bytes)", id, started));
        }
        if id.size > self.config.max_file_bytes {
            let why = format!("{} bytes is over max_file_bytes ({})", id.size, self.config.max_file_bytes);
            return Err(self.reject_id(path, &why, id, started));
        }
        Ok(())
    }

    /// The file's hash, type and EXIF facts from its open descriptor. The bytes of an image up
    /// to `max_image_bytes` are kept (and returned) so that the classifier sees exactly what
    /// was hashed.
    fn read<'p>(
        &self,
        w: Where<'p>,
        file: File,
        id: FileId,
        first_seen: i64,
        started: Instant,
    ) -> Step<(Facts<'p>, Option<Vec<u8>>)> {
        let path = w.path;
        // The one read of the file before anything decides on it: hash, sniff, EXIF, shared
        // with `fotovakt classify` (media::inspect).
        let media::Inspected { sha256, bytes, kind, exif, .. } =
            match media::inspect_open(&file, &id, self.config.max_image_bytes) {
                Ok(x) => x,
                Err(InspectError::Changed) => {
                    info!("a file changed while it was hashed; will look again");
                    debug!(path = %path.display(), "changed while hashed");
                    return Err(Box::new(Outcome::later(path, RetryCause::Busy, "still being written", started)));
                }
                Err(e) => return Err(self.reject_id(path, &e.to_string(), &id, started)),
            };
        let facts = Facts { path, at: w.at, staged: w.staged, file, id, sha256, kind, exif, first_seen };
        Ok((facts, bytes))
    }

    /// The outcome of a file another handler (or an earlier pass) already decided, so that
    /// `on_media` answers the same whoever got there first.
    pub(super) fn earlier_outcome(&self, path: &Path, earlier: Earlier, started: Instant) -> Outcome {
        match earlier {
            Earlier::Item(item) => Outcome::of_item(&item, "already decided", started),
            Earlier::Personal(p) => Outcome::of_personal(path, &p, "already decided", started),
            Earlier::Unknown => Outcome::simple(path, OutcomeKind::Skipped, "handled elsewhere meanwhile", started),
        }
    }

    pub(super) fn reject(&self, path: &Path, reason: &str, started: Instant) -> Box<Outcome> {
        let key = std::fs::symlink_metadata(path).map(|m| FileId::of(&m).mtime_ns).unwrap_or(0);
        self.reject_key(path, reason, key, started)
    }

    pub(super) fn reject_id(&self, path: &Path, reason: &str, id: &FileId, started: Instant) -> Box<Outcome> {
        self.reject_key(path, reason, id.mtime_ns ^ id.size as i64, started)
    }

    /// Bad input: one log line and one ledger event per file version; the agent goes on.
    fn reject_key(&self, path: &Path, reason: &str, key: i64, started: Instant) -> Box<Outcome> {
        let fresh = self.rejected.lock().unwrap_or_else(|p| p.into_inner()).insert((path.to_path_buf(), key));
        if fresh {
            warn!(reason, "a file was rejected; left where it is");
            debug!(path = %path.display(), "rejected file");
            let mut ledger = self.ledger();
            // One event per file version across restarts too (a later scan sees the same file).
            let shown = path.to_string_lossy().into_owned();
            if !ledger.rejection_recorded(&shown, key).unwrap_or(false) {
                let event = Event::Rejected { path: shown, reason: reason.to_string(), key };
                let recorded = ledger.write().and_then(|mut tx| {
                    tx.record(None, &event)?;
                    tx.commit()
                });
                if let Err(e) = recorded {
                    error!(error = %e, "could not record the rejection");
                }
            }
        }
        Box::new(Outcome::simple(path, OutcomeKind::Rejected, reason, started))
    }

    /// A file that could not be handled stays where it is and is tried again. A failing store
    /// is said once for all files ([`Agent::note_outcome`]); anything else, per file.
    pub(super) fn failed(&self, path: &Path, e: Error, started: Instant) -> Box<Outcome> {
        let cause = if e.is_storage_failure() {
            RetryCause::Store
        } else {
            error!(error = %e, "could not handle a file; it stays where it is");
            debug!(path = %path.display(), "file not handled");
            RetryCause::Failed
        };
        Box::new(Outcome::later(path, cause, e.to_string(), started))
    }
}

/// The outcome of a decision recorded now.
pub(super) fn decided(f: &Facts<'_>, verdict: &Verdict, score: Option<f32>, d: Decided, started: Instant) -> Outcome {
    Outcome {
        path: f.path.to_string_lossy().into_owned(),
        kind: d.kind,
        item: d.item,
        sha256: Some(f.sha256.clone()),
        source: Some(verdict.source),
        case_id: verdict.case_id.clone(),
        rule: Some(verdict.rule.clone()),
        score,
        handle_ms: started.elapsed().as_secs_f64() * 1e3,
        detail: d.detail,
        returned_to: d.returned.map(|p| p.to_string_lossy().into_owned()),
        retry: d.retry,
    }
}
