//! Out of sight first: the first thing the agent does with a new camera file is one rename
//! into the camera filesystem's staging folder ([`crate::quarantine::staging`]), journaled
//! and made durable in the ledger before it happens. The file is hashed, sniffed and judged
//! there; case material goes from staging into the store (the move's `src` is the staged
//! name), a photo judged personal goes back to its name ([`Agent::give_back`]).
//!
//! The nothing-lost invariant grows by one place: at every instant a photo is at its original
//! path, in staging under a name an open `stash` journal row names, or verified in the store.
//! The stash row stays open for as long as the file is staged; it is closed in the same
//! transaction that records the file's arrival in the store, or after the file's return to the
//! camera folder is durable. Each row names its agent's life token (`super::life`). Recovery
//! ([`Agent::recover_stashes`]) runs after the moves into and out of the store are recovered
//! and returns every file a dead agent left staged, so after recovery nothing of a dead agent
//! is in staging; a live agent's staged files (another process's `watch` beside an officer's
//! `tag`, say) are its own to finish. A long-running agent recovers dead agents' rows at its
//! reconcile passes ([`Agent::recover_dead_owners`]).
//!
//! A file decided "quarantine" whose move the store could not take (full, failing, busy) waits
//! in staging for the next try, under its open stash row (linked to its item): the watcher
//! tries its camera name again, and [`Agent::resume_staged`] finds it there. A photo judged
//! personal goes back to its name with no event naming it (issue 29: the officer's own photo
//! leaves a keyed record only), and neither does a return before the file was recorded: such a
//! file has no custody record yet, and may be the officer's own.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tracing::{debug, error, info, warn};

use crate::config::{SiteAction, UnjudgedAction};
use crate::fault;
use crate::ledger::{self, Direction, Event, Ledger, MoveIntent};
use crate::quarantine::fsops::{self, FileId};
use crate::quarantine::staging;

use super::commit::Tag;
use super::intake::{Earlier, Known, Step};
use super::life;
use super::recover::RecoveryReport;
use super::{Agent, Error, Model, Outcome, OutcomeKind, RetryCause};

/// How long `on_media` and `tag` wait for another handler's decision on a file it has in
/// staging.
const OTHER_HANDLER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A file taken out of sight: its journal row, where it came from and where it is now.
#[derive(Debug, Clone)]
pub(super) struct Staged {
    pub row: i64,
    pub original: PathBuf,
    pub at: PathBuf,
    pub at_ms: i64,
    pub size: u64,
    /// The item its row is linked to (its `stashed` event is recorded): `None` for a fresh
    /// stash.
    pub item: Option<i64>,
}

/// What the stash did.
pub(super) enum Stash {
    /// Out of sight, in staging; what the ledger knew (the commit stage reloads it if needed).
    Out(Box<(Staged, Known)>),
    /// Not stashed (the rename was refused): judged where it lies.
    InPlace,
}

impl Agent {
    /// The staging folder for a new file at `path`, when it should go out of sight before it is
    /// judged: `None` when the stash is off, the file is held (nothing is moved then), the
    /// camera folder has no staging folder, or nothing but "keep" can come out of the decision
    /// whatever the bytes say (no classifier, no work site or duty rule that quarantines, no
    /// case session around the file's time): then it stays where it is and no uploader or
    /// gallery sees it go and come back.
    pub(super) fn staging_for(&self, path: &Path, id: &FileId) -> Option<PathBuf> {
        if !self.config.stash || self.held() {
            return None;
        }
        if !self.could_quarantine(id) {
            debug!(path = %path.display(), "only `keep` can come out: judged where it lies, not stashed");
            return None;
        }
        self.staging.dir_for(path.parent()?).ok()
    }

    /// Could any rule quarantine a file with this identity? Only what needs no read of the file
    /// counts: the classifier (any image may score), work sites that quarantine (any photo may
    /// carry their GPS), duty hours that quarantine what cannot be scored (its EXIF time may
    /// fall in a shift), a case session open at the file's mtime or now, and a case-camera
    /// capture a gallery copy may repeat.
    fn could_quarantine(&self, id: &FileId) -> bool {
        let c = &self.config;
        if matches!(self.model, Model::Ready(_))
            || (!c.work_sites.is_empty() && c.policy.work_site_action == SiteAction::Quarantine)
            || (!c.duty.shifts.is_empty() && c.policy.unjudged_on_duty == UnjudgedAction::Quarantine)
        {
            return true;
        }
        let now = ledger::now_ms();
        let shot = (id.mtime_ns / 1_000_000).min(now);
        let ledger = self.ledger();
        let sessions = ledger.sessions_overlapping(shot, now).map(|s| !s.is_empty()).unwrap_or(true);
        sessions || ledger.has_captures().unwrap_or(true)
    }

    /// Take the file at `path` (opened as `id`) out of sight: journal the stash, make the row
    /// durable, rename the file into `dir`. Under the move lock, so the MediaStore observer and
    /// the watcher never both take one file: a file another handler settled or moved meanwhile
    /// is reported as theirs.
    pub(super) fn stash(&self, path: &Path, id: &FileId, dir: &Path, known: Known, started: Instant) -> Step<Stash> {
        let fail = |e: Error| self.failed(path, e, started);
        let mut custody = self.custody().map_err(fail)?;
        let ledger = &mut *custody.ledger;
        let known = known.current(ledger, path, id, self.held()).map_err(|e| fail(e.into()))?;
        if known.settled {
            return Err(Box::new(self.earlier_outcome(path, known.earlier(), started)));
        }
        match fsops::lstat_id(path) {
            Ok(now) if now.same_content_as(id) => {}
            Ok(_) => return Err(Box::new(Outcome::later(path, RetryCause::Busy, "still being written", started))),
            Err(_) => {
                let earlier = known.earlier();
                drop(custody);
                if let Some(theirs) = self.decided_by_other(path, started) {
                    return Err(Box::new(theirs));
                }
                return Err(Box::new(self.earlier_outcome(path, earlier, started)));
            }
        }
        let Some(name) = path.file_name() else { return Ok(Stash::InPlace) };
        let at = dir.join(staging::staged_name(id.ino, name));
        let intent = MoveIntent {
            id: 0,
            item_id: 0,
            direction: Direction::Stash,
            src: path.to_path_buf(),
            dst: at.clone(),
            tmp: at.clone(),
            sha256: String::new(),
            size: id.size,
        };
        let journaled = ledger.write().and_then(|mut tx| {
            let row = tx.journal_stash(&intent, self.life.token())?;
            tx.commit()?;
            Ok(row)
        });
        let row = journaled.map_err(|e| fail(e.into()))?;
        // The row is durable before the rename: a power cut can never leave a staged file that
        // no journal row names.
        ledger.sync_log().map_err(|e| fail(e.into()))?;
        fault::point("after_stash_journal");
        if let Err(e) = fsops::rename_into_own(path, &at) {
            let closed = ledger.write().and_then(|mut tx| {
                tx.finish_move(row)?;
                tx.commit()
            });
            closed.map_err(|e| fail(e.into()))?;
            if e.kind() == io::ErrorKind::NotFound {
                return Err(Box::new(Outcome::simple(path, OutcomeKind::Skipped, "no longer there", started)));
            }
            warn!(path = %path.display(), staging = %at.display(), error = %e, "could not stash; judged where it lies");
            return Ok(Stash::InPlace);
        }
        let staged =
            Staged { row, original: path.to_path_buf(), at, at_ms: ledger::now_ms(), size: id.size, item: None };
        self.barrier().dirty.extend([dir.to_path_buf(), path.parent().unwrap_or(Path::new("/")).to_path_buf()]);
        fault::point("after_stash");
        // A rename moves whatever the name held: it must be the file that was opened.
        if !fsops::lstat_id(&staged.at).is_ok_and(|now| now.same_content_as(id)) {
            let back = self.give_back(ledger, &staged, None, Some("replaced while it was stashed"), false);
            back.map_err(fail)?;
            return Err(Box::new(Outcome::later(path, RetryCause::Busy, "replaced while it was stashed", started)));
        }
        debug!(path = %path.display(), staging = %staged.at.display(), "out of sight");
        Ok(Stash::Out(Box::new((staged, known))))
    }

    /// Put a staged file back at its name (or, if the name was taken meanwhile, at
    /// `NAME-returned-ROW.ext`), make that durable, then record the return on `item` and close
    /// the stash row. Without an item (the file was not recorded: it has no custody record yet,
    /// and may be the officer's own) no event names it. Runs under the move lock. `Ok(None)`:
    /// the file was no longer in staging (the row is closed). An error leaves the row open:
    /// recovery returns the file at the next start.
    pub(super) fn give_back(
        &self,
        ledger: &mut Ledger,
        s: &Staged,
        item: Option<i64>,
        reason: Option<&str>,
        recovered: bool,
    ) -> Result<Option<PathBuf>, Error> {
        let Some(to) = self.put_back(s, recovered)? else {
            error!(path = %s.original.display(), staging = %s.at.display(), "a staged file is no longer in staging");
            let mut tx = ledger.write()?;
            tx.finish_move(s.row)?;
            tx.commit()?;
            return Ok(None);
        };
        fault::point("after_return");
        let name_taken = to != s.original;
        let mut tx = ledger.write()?;
        if let Some(item) = item {
            let event = Event::Returned {
                path: to.to_string_lossy().into_owned(),
                staging: s.at.to_string_lossy().into_owned(),
                reason: reason.map(str::to_string),
                name_taken,
                recovered,
            };
            tx.record(Some(item), &event)?;
            if name_taken {
                tx.set_original_path(item, &to)?;
            }
        } else {
            // The row named the file: its bytes leave the write-ahead log at the next prune.
            *self.scrub_due.lock().unwrap_or_else(|p| p.into_inner()) = true;
        }
        tx.finish_move(s.row)?;
        tx.commit()?;
        Ok(Some(to))
    }

    /// The rename of [`Agent::give_back`], made durable, with nothing recorded: where the file
    /// is now, or `None` when it was no longer in staging. The caller closes the row.
    pub(super) fn put_back(&self, s: &Staged, recovered: bool) -> Result<Option<PathBuf>, Error> {
        fault::point("before_return");
        if !staged_still_there(s, recovered)? {
            return Ok(None);
        }
        let to = match fsops::rename_noreplace(&s.at, &s.original) {
            Ok(()) => s.original.clone(),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let other = staging::fallback_name(&s.original, s.row);
                fsops::rename_noreplace(&s.at, &other).map_err(Error::io("returning a staged file", &s.at))?;
                warn!("a staged file's name was taken meanwhile; returned under another");
                debug!(path = %s.original.display(), returned_as = %other.display(), "returned under another name");
                other
            }
            Err(e) => return Err(Error::io("returning a staged file", &s.at)(e)),
        };
        // Durable before the row closes: a cut that lost this rename behind a closed row would
        // leave the photo in staging with no journal row naming it.
        fsops::fsync_parent(&to).map_err(Error::io("syncing the camera folder", &to))?;
        staging::returned(&to);
        Ok(Some(to))
    }

    /// The open stash rows of camera name `path`, newest first.
    fn open_stashes(&self, path: &Path) -> Result<Vec<ledger::MoveIntent>, ledger::LedgerError> {
        let rows = self.ledger().pending_moves()?;
        Ok(rows.into_iter().rev().filter(|m| m.direction == Direction::Stash && m.src == path).collect())
    }

    /// A file decided "quarantine" that waits in staging for the store (see the module docs):
    /// the open stash row of camera name `path`, linked to its item, whose file is still in
    /// staging. A file the watcher tries again by its camera name is taken from there.
    pub(super) fn resume_staged(&self, path: &Path) -> Option<Staged> {
        let m = self.open_stashes(path).ok()?.into_iter().find(|m| m.item_id != 0)?;
        std::fs::symlink_metadata(&m.dst).ok().filter(|meta| meta.is_file())?;
        Some(Staged { row: m.id, original: m.src, at: m.dst, at_ms: 0, size: m.size, item: Some(m.item_id) })
    }

    /// The decision of another handler that has the camera name `path` in staging now (the
    /// core's watcher beside the MediaStore observer, or another process of ours): waited for,
    /// up to [`OTHER_HANDLER_WAIT`], so that `on_media` answers the same whoever got there
    /// first. `None` when no handler has it (or its decision did not come in time).
    pub(super) fn decided_by_other(&self, path: &Path, started: Instant) -> Option<Outcome> {
        let deadline = Instant::now() + OTHER_HANDLER_WAIT;
        let (mut staged_id, mut item) = (None, None);
        while let Some(m) = self.open_stashes(path).ok()?.into_iter().next() {
            staged_id = staged_id.or_else(|| fsops::lstat_id(&m.dst).ok());
            item = (m.item_id != 0).then_some(m.item_id).or(item);
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if let Some(id) = item {
            // Case material: in the store now, or (a stuck store) still waiting in staging.
            let item = self.ledger().item(id).ok()?;
            return Some(Outcome::of_item(&item, "decided by another handler", started));
        }
        // Its row closed before an item: the file went back to its name (the officer's own).
        let known = self.known(path, &staged_id?).ok()?;
        match known.earlier() {
            Earlier::Unknown => None,
            earlier => Some(self.earlier_outcome(path, earlier, started)),
        }
    }

    /// Where the file of camera name `path` is now when it is not there: in staging, waiting
    /// for the store (the watcher keeps such a file on its schedule).
    pub fn waiting_in_staging(&self, path: &Path) -> Option<PathBuf> {
        self.resume_staged(path).map(|s| s.at)
    }

    /// Recovery of stash rows a dead process left, after the moves into and out of the store
    /// are recovered: a file still staged goes back to its name (an `In` move that was rolled
    /// back left it there too); a row whose file is gone from staging (it reached the store,
    /// or the stash rename was lost in a power cut) is closed. A row whose owner lives (another
    /// agent, in this process or another, is judging the file or keeps it for a stuck store) is
    /// left alone, and so is its file; the lock files of dead owners are removed.
    pub(super) fn recover_stashes(&self, ledger: &mut Ledger, report: &mut RecoveryReport) -> Result<(), Error> {
        for m in self.dead_stashes(ledger)? {
            let item = (m.item_id != 0).then_some(m.item_id);
            let s = Staged { row: m.id, original: m.src.clone(), at: m.dst.clone(), at_ms: 0, size: m.size, item };
            let reason = item.is_none().then_some("the agent stopped before the file was judged");
            match self.give_back(ledger, &s, item, reason, true) {
                Ok(Some(to)) => {
                    info!(path = %to.display(), item = ?item, "returned a staged file to the camera folder");
                    report.returned += 1;
                }
                Ok(None) => {}
                Err(e) => {
                    error!(path = %m.src.display(), staging = %m.dst.display(), error = %e, "could not return a staged file now; the next start retries");
                    report.failed += 1;
                }
            }
        }
        let swept = life::sweep(self.store.root());
        if swept > 0 {
            debug!(swept, "removed the life locks of agents that are gone");
        }
        Ok(())
    }

    /// The open stash rows whose owner is not alive: its life lock can be taken or is gone, or
    /// the row names none (a row of an older version). Never blocks on a live owner's lock.
    pub(super) fn dead_stashes(&self, ledger: &Ledger) -> Result<Vec<ledger::MoveIntent>, Error> {
        let owners = ledger.move_owners()?;
        let mut alive = std::collections::HashMap::new();
        let mut dead = Vec::new();
        for m in ledger.pending_moves()?.into_iter().filter(|m| m.direction == Direction::Stash) {
            let live = owners.get(&m.id).is_some_and(|token| {
                *alive.entry(token.clone()).or_insert_with(|| life::alive(self.store.root(), token))
            });
            if live {
                debug!(row = m.id, staging = %m.dst.display(), "a live agent's staged file: left alone");
            } else {
                dead.push(m);
            }
        }
        Ok(dead)
    }

    /// `tag PATH` for a camera file that is not at its name: out of sight in staging under an
    /// open stash row. A row still being judged (by a live agent, this process's or another's)
    /// is waited for a moment; then a file back at its name is tagged there (`None`: the caller
    /// goes on as for any camera file), one that waits in staging for the store is decided
    /// again from there with the tag (its item keeps its number and gets the case), and one
    /// that reached the store meanwhile has its item tagged. `None` when no row names `path`.
    pub(super) fn tag_staged(&self, path: &Path, tag: Tag<'_>) -> Result<Option<Outcome>, Error> {
        let open_row = |linked: Option<bool>| -> Result<bool, Error> {
            Ok(self.open_stashes(path)?.iter().any(|m| linked.is_none_or(|l| l == (m.item_id != 0))))
        };
        if !open_row(None)? {
            return Ok(None);
        }
        let deadline = Instant::now() + OTHER_HANDLER_WAIT;
        while open_row(Some(false))? && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if std::fs::symlink_metadata(path).is_ok() {
            return Ok(None);
        }
        if open_row(Some(false))? {
            return Err(Error::TagFailed {
                path: path.to_path_buf(),
                kind: OutcomeKind::Retry,
                detail: "a running agent is still judging it, out of sight in staging; try again".into(),
            });
        }
        if let Some(s) = self.resume_staged(path) {
            let item = s.item.unwrap_or_default();
            info!(item, "tagging a photo that waits in staging; it was decided quarantine already and gets this case");
            debug!(item, path = %path.display(), staging = %s.at.display(), "tagged in staging");
            let outcome = self.intake(path, Some(tag.clone()), None);
            let ours = outcome.case_id.as_deref() == Some(tag.case);
            match outcome.kind {
                OutcomeKind::Quarantined | OutcomeKind::Retry if ours && outcome.item.is_some() => {
                    return Ok(Some(outcome))
                }
                // The agent that stashed it was moving it into the store just then: its item
                // is tagged below.
                _ if outcome.kind == OutcomeKind::Quarantined || std::fs::symlink_metadata(&s.at).is_err() => {}
                kind => {
                    return Err(Error::TagFailed {
                        path: path.to_path_buf(),
                        kind,
                        detail: outcome.detail.unwrap_or_else(|| "could not be quarantined from staging".into()),
                    })
                }
            }
        }
        // Decided meanwhile by the agent that stashed it: its item, once its move has ended.
        while open_row(None)? && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let latest = self.ledger().latest_item_for_path(path, None)?;
        match latest.filter(|i| i.state == crate::ledger::ItemState::Quarantined) {
            Some(item) => self.tag_item(item, tag.case, tag.officer, tag.note).map(Some),
            None => Ok(None),
        }
    }

    /// For a reconcile pass of a long-running agent: recover what agents that died meanwhile
    /// left in staging (the full recovery, as at the next start, so a move of theirs out of
    /// staging is finished first). Nothing is done while no dead owner's stash row is open.
    pub(super) fn recover_dead_owners(&self) -> Result<(), Error> {
        let dead = self.dead_stashes(&self.ledger())?;
        if dead.is_empty() {
            return Ok(());
        }
        let report = self.recover()?;
        info!(returned = report.returned, failed = report.failed, "returned what agents that are gone left in staging");
        Ok(())
    }
}

/// Is the staged file still in staging? An empty file there (or, in recovery, at the original
/// name) is a name claimed by `rename_claiming` of a process that died before its rename: no
/// bytes to lose, it is removed (durably) first.
fn staged_still_there(s: &Staged, recovered: bool) -> Result<bool, Error> {
    let claim = |p: &Path| s.size > 0 && std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file() && m.len() == 0);
    let remove = |p: &Path| {
        std::fs::remove_file(p).and_then(|_| fsops::fsync_parent(p)).map_err(Error::io("removing an empty claim", p))
    };
    if claim(&s.at) {
        remove(&s.at)?;
    }
    if recovered && claim(&s.original) && std::fs::symlink_metadata(&s.at).is_ok() {
        remove(&s.original)?;
    }
    match std::fs::symlink_metadata(&s.at) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("looking at a staged file", &s.at)(e)),
    }
}
