//! Commit: the last stage for one file. Under the move lock ([`Custody`]) the agent checks
//! that the path still names the bytes it hashed and that nobody settled the file meanwhile,
//! records the item and its custody events, and for case material journals the move, runs it
//! and records how it ended. [`Agent::apply_outcome`] is the one place that turns a move's
//! ending (seen by the move itself, by the recovery right after a move failed midway, or by
//! the recovery at start) into the item's state and its custody event.
//!
//! A file whose move did not happen (the store was full, say) is tried again with the same
//! item: at most one item per file and decision, however many tries the move takes. The first
//! failed try is recorded (`move_aborted`); later tries that fail are counted, and the count
//! goes into the item's ending (`quarantined` with `tries`). A staged file whose move failed
//! because the store could not take it stays in staging, out of every uploader's sight, under
//! its open stash row: the next try moves it from there (see [`super::stash`]).

use tracing::{debug, error, info, warn};

use crate::classify::Assessment;
use crate::fault;
use crate::ledger::{Direction, Event, ForgetReason, Item, ItemState, LedgerError, MoveIntent, Tx};
use crate::policy::{Action, Verdict};
use crate::quarantine::fsops;
use crate::quarantine::{MoveError, Moved, Recovered};

use super::intake::{Earlier, Facts, Known};
use super::record::{record, stashed};
use super::{Agent, Custody, Error, OutcomeKind, RetryCause};

/// An officer's manual tag carried into the pipeline.
#[derive(Debug, Clone)]
pub(super) struct Tag<'a> {
    pub case: &'a str,
    pub officer: Option<&'a str>,
    pub note: Option<&'a str>,
}

/// What the commit stage did with one file.
#[derive(Debug)]
pub(super) enum Committed {
    /// Someone else decided it meanwhile (or the path no longer names the bytes hashed): the
    /// earlier decision on this file version, if any, is the one to report.
    Earlier(Earlier),
    /// Decided and recorded now.
    Decided(Decided),
}

/// A decision recorded now: the item (none for the officer's own photo, which gets a keyed
/// record only), what happened to the file, and why if it is not plain.
#[derive(Debug)]
pub(super) struct Decided {
    pub item: Option<i64>,
    pub kind: OutcomeKind,
    pub detail: Option<String>,
    /// Why a [`OutcomeKind::Retry`] is left for later.
    pub retry: Option<RetryCause>,
    /// Back in the camera folder here after it was judged in staging.
    pub returned: Option<std::path::PathBuf>,
}

impl Decided {
    fn done(item: i64, kind: OutcomeKind, detail: Option<String>) -> Decided {
        Decided { item: Some(item), kind, detail, retry: None, returned: None }
    }
}

/// Who saw a journaled move end; it decides how the custody event of the ending reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seen {
    /// `Store::execute` returned: the move finished, or was undone cleanly.
    Executed,
    /// The recovery right after `Store::execute` failed midway, lock still held.
    Midway,
    /// The recovery at start of a move a process that died left journaled.
    AtStart,
}

/// What the custody event of a move's ending says besides the ending itself.
#[derive(Debug, Default)]
pub(super) struct Note<'a> {
    /// Why it ended so: a rollback's problem, why an original was kept, an officer's reason
    /// for a release.
    pub reason: Option<&'a str>,
    /// Milliseconds the photo was where a sync client could see it.
    pub exposure_ms: Option<i64>,
    /// The officer of a release.
    pub officer: Option<&'a str>,
    /// A later try of a move that did not happen, with the same decision: a failed ending is
    /// not recorded again (the first one is in the log).
    pub quiet: bool,
    /// How many tries the move took, when more than one.
    pub tries: Option<u32>,
}

impl Agent {
    /// Record how the journaled move `m` ended, in the caller's transaction: the item's state,
    /// one custody event, and the journal row closed. Every path that sees a move end (the
    /// move itself, in both directions, the recovery right after a move failed midway, and the
    /// recovery at start) calls this, so each ending is written one way.
    pub(super) fn apply_outcome(
        &self,
        tx: &mut Tx<'_>,
        m: &MoveIntent,
        end: Recovered,
        seen: Seen,
        note: &Note<'_>,
    ) -> Result<(), LedgerError> {
        use Recovered::{Completed, RolledBack, SourceKept, Vanished};
        let name = self.store_name_of(&m.dst);
        let sha256 = m.sha256.clone();
        let reason = note.reason.map(str::to_string);
        let finished = matches!(end, Completed | SourceKept);
        // A recovered ending says so; a midway rollback has always said why instead.
        let recovered = seen == Seen::AtStart || (seen == Seen::Midway && finished);
        let path = m.dst.to_string_lossy().into_owned();
        let tries = note.tries;
        if note.quiet && m.direction == Direction::In && end == RolledBack {
            // Tried again and failed again: counted on the item, not recorded again.
            tx.set_state(m.item_id, crate::ledger::ItemState::Aborted, None)?;
            return tx.finish_move(m.id);
        }
        let (store_name, event) = match (m.direction, end) {
            (Direction::Copy, Completed | SourceKept) => (
                Some(name.as_str()),
                Event::Quarantined { sha256, store_name: name.clone(), exposure_ms: None, recovered, tries },
            ),
            (Direction::In, Completed) => (
                Some(name.as_str()),
                Event::Quarantined {
                    sha256,
                    store_name: name.clone(),
                    exposure_ms: note.exposure_ms,
                    recovered,
                    tries,
                },
            ),
            (Direction::In, SourceKept) => (
                Some(name.as_str()),
                Event::OriginalKept {
                    sha256,
                    store_name: name.clone(),
                    reason: reason.unwrap_or_default(),
                    exposure_ms: note.exposure_ms,
                    recovered,
                    tries,
                },
            ),
            // Right after a failed move, a file gone from both places is a rollback too.
            (Direction::In | Direction::Copy, RolledBack | Vanished) if seen == Seen::Midway => {
                (None, Event::MoveRolledBack { reason, recovered })
            }
            (Direction::In | Direction::Copy, RolledBack) if seen == Seen::Executed => {
                (None, Event::MoveAborted { reason: reason.unwrap_or_default() })
            }
            (Direction::In | Direction::Copy, RolledBack) => (None, Event::MoveRolledBack { reason, recovered }),
            (Direction::Out, Completed | SourceKept) => {
                let (reason, officer) = match seen {
                    Seen::Executed => (reason, note.officer.map(str::to_string)),
                    _ => (None, None),
                };
                let store_file_kept = end == SourceKept && seen != Seen::Executed;
                (None, Event::Released { path, reason, officer, recovered, store_file_kept })
            }
            (Direction::Out, RolledBack) if seen == Seen::Executed => {
                (None, Event::ReleaseFailed { reason: reason.unwrap_or_default(), recovered })
            }
            (Direction::Out, RolledBack) => (None, Event::ReleaseRolledBack { recovered }),
            (Direction::In | Direction::Out | Direction::Copy, Vanished) => (None, Event::Vanished { recovered }),
            // A stash row ends through `Agent::give_back` (or with the move into the store that
            // took its file), never here: closed without an event of its own.
            (Direction::Stash, _) => return tx.finish_move(m.id),
        };
        let state = event.state().expect("every ending moves its item to a state");
        tx.set_state(m.item_id, state, store_name)?;
        tx.record(Some(m.item_id), &event)?;
        tx.finish_move(m.id)
    }

    /// Record the decision on one file and, for case material, move it into the store.
    /// `known` is what intake loaded from the ledger; it is loaded again only if the ledger
    /// changed since.
    pub(super) fn commit(
        &self,
        f: &Facts<'_>,
        verdict: &Verdict,
        assessment: Option<&Assessment>,
        tag: Option<&Tag<'_>>,
        known: Known,
    ) -> Result<Committed, Error> {
        fault::point("before_lock");
        // Under the move lock (across processes) nobody else is deciding or moving: if the
        // path no longer names the file we hashed, or another handler (the watcher and the
        // Android MediaStore observer can both see one file) settled it meanwhile, step back.
        let mut custody = self.custody()?;
        let mut known = known.current(&custody.ledger, f.path, &f.id, self.held())?;
        let unended = known.latest.as_ref().is_some_and(|i| i.state == ItemState::Moving) || known.aborted.is_some();
        // A move of this very file still journaled, while nobody is moving (the lock is ours):
        // its ending was never recorded (the ledger failed just then, or a process died).
        // Finish it now, as recovery at start would, before deciding anew.
        if unended && self.finish_journaled(&mut custody, f)? {
            known = Known::load(&custody.ledger, f.path, &f.id, self.held())?;
        }
        let still_there = fsops::lstat_id(f.at).is_ok_and(|now| now.same_content_as(&f.id));
        if !still_there || (tag.is_none() && known.settled) {
            return Ok(Committed::Earlier(known.earlier()));
        }
        // The same file again after its move did not happen: the same item goes on. With the
        // same decision nothing new is recorded until the move ends.
        let again = known.aborted.filter(|i| i.sha256 == f.sha256 && i.size == f.id.size);
        let quiet = tag.is_none()
            && !self.held()
            && again.as_ref().is_some_and(|i| {
                verdict.action == Action::Quarantine
                    && i.action == Action::Quarantine.as_str()
                    && i.source == verdict.source.as_str()
                    && i.case_id == verdict.case_id
            });
        // An officer tagging a photo the agent kept (decided before schema 2): the same item is
        // decided again, so its custody log runs from its first intake and it is counted once.
        // Likewise a file held while media-location access was off, decided now on the bytes as
        // they are.
        let redecided = known.latest.filter(|i| {
            i.size == f.id.size
                && match i.state {
                    ItemState::Kept => tag.is_some() && i.sha256 == f.sha256,
                    ItemState::Held => true,
                    _ => false,
                }
        });
        // A retry of a move that did not happen goes on with its item: with the same decision
        // nothing is recorded now, with another one the item is decided again.
        let earlier = redecided.or(again);
        let held = self.held();
        if verdict.action == Action::Keep && tag.is_none() {
            // The officer's own photo now: a keyed record and no item, also when an earlier
            // decision left one (held, or a move into the store that did not happen).
            return self.keep_personal(&mut custody, f, verdict, earlier.as_ref());
        }
        let mut tx = custody.ledger.write()?;
        // Case material: the full record, from now on. A keyed personal record of this file
        // version (a photo the agent had kept, tagged by an officer now) gives way to it.
        if known.personal.is_some() {
            tx.drop_personal(f.path, f.id.size, f.id.mtime_ns)?;
        }
        let state = if held { ItemState::Held } else { ItemState::Moving };
        let item = match &earlier {
            Some(i) if quiet => {
                // Nothing new about the decision; a fresh stash (the file came back to its name
                // at a restart and went out of sight again) is recorded all the same.
                stashed(&mut tx, f, i.id)?;
                i.id
            }
            _ => record(&mut tx, f, verdict, assessment, tag, state, earlier.as_ref(), None)?,
        };
        if held {
            let reason = "media_location_access is off: the filesystem may have altered the bytes read (GPS \
                          redaction), so nothing is stored or deleted on their strength; decided again once access is back";
            tx.record(Some(item), &Event::Held { would: verdict.action, reason: reason.into() })?;
            tx.commit()?;
            info!(item, would = verdict.action.as_str(), "held: no media-location access; original left untouched");
            debug!(item, path = %f.path.display(), "held file");
            let detail = Some(format!("held, not moved: {reason}"));
            return Ok(Committed::Decided(Decided::done(item, OutcomeKind::Kept, detail)));
        }
        fault::point("before_journal");
        let (mut intent, _) = self.store.plan_in(item, f.at, &f.sha256, f.id.size);
        intent.id = tx.journal_move(&intent)?;
        tx.commit()?;
        // The intent is durable before any byte moves: a power cut that kept the moved bytes
        // but lost the intent would leave recovery nothing to finish the move from.
        if let Err(e) = custody.ledger.sync_log() {
            // No byte moved: close the journal row now, so a failing disk leaves no move
            // behind, and try the file again later.
            let reason = format!("the move's intent could not be made durable: {e}");
            let mut tx = custody.ledger.write()?;
            let note = Note { reason: Some(&reason), quiet, ..Note::default() };
            self.apply_outcome(&mut tx, &intent, Recovered::RolledBack, Seen::Executed, &note)?;
            tx.commit()?;
            // A staged file waits in staging for the next try, out of sight.
            let retry = Some(RetryCause::Store);
            return Ok(Committed::Decided(Decided { retry, ..Decided::done(item, OutcomeKind::Retry, Some(reason)) }));
        }
        fault::point("after_journal");
        self.move_in(&mut custody, f, &intent, Try { quiet, exposed: true })
    }

    /// The officer's own photo (decided `keep`): a keyed record and nothing else, no item, no
    /// custody event, no path, time beyond the day, GPS or embedding (`ledger::privacy`). An
    /// item of this file decided `keep` now (held until access came back, or one whose move
    /// into the store did not happen, tried again under another decision) leaves the items
    /// table the same way: its events are pruned (its `stashed` and `returned` ones too) and a
    /// `forgotten` event says so. A file judged in staging is back at its name first, durably;
    /// its stash row closes in the transaction that records the keyed record, and no event
    /// names its stash or return (the write-ahead log that held the row is scrubbed at the
    /// next prune).
    fn keep_personal(
        &self,
        custody: &mut Custody<'_>,
        f: &Facts<'_>,
        verdict: &Verdict,
        earlier: Option<&Item>,
    ) -> Result<Committed, Error> {
        let state = if self.held() { ItemState::Held } else { ItemState::Kept };
        let returned = match f.staged {
            Some(s) => self.put_back(s, false)?,
            None => None,
        };
        let mut tx = custody.ledger.write()?;
        if let Some(s) = f.staged {
            tx.finish_move(s.row)?;
            *self.scrub_due.lock().unwrap_or_else(|p| p.into_inner()) = true;
        }
        if let Some(item) = earlier {
            if tx.forget_item(item.id, ForgetReason::DecidedPersonal)?.is_none() {
                // Its events do not verify: it stays an item, for `verify` to report.
                warn!(item = item.id, "custody events do not verify; the item keeps its full record");
                let tags = item.tags.clone();
                let (action, source) = (verdict.action.as_str(), verdict.source.as_str());
                tx.redecide_item(item.id, state, action, source, &verdict.rule, None, None, &tags)?;
                if let Some(to) = returned.as_ref().filter(|p| p.as_path() != f.path) {
                    tx.set_original_path(item.id, to)?;
                }
                tx.commit()?;
                return Ok(Committed::Decided(Decided { returned, ..Decided::done(item.id, OutcomeKind::Kept, None) }));
            }
        }
        // The record is of the file version where it is now (under another name if its own was
        // taken while it was staged), so reconcile recognises it there.
        let at = returned.as_deref().unwrap_or(f.path);
        let keep = self.config.privacy.keep_personal_decisions;
        tx.keep_personal(at, f.id.size, f.id.mtime_ns, state, verdict.source.into(), keep)?;
        tx.commit()?;
        let detail = match &returned {
            _ if state == ItemState::Held => {
                Some("held, not moved: media_location_access is off; decided again once access is back".to_string())
            }
            Some(p) if p.as_path() != f.path => {
                Some("its name was taken meanwhile; returned under another".to_string())
            }
            _ => None,
        };
        Ok(Committed::Decided(Decided { item: None, kind: OutcomeKind::Kept, detail, retry: None, returned }))
    }

    /// Finish the journaled moves of `f`'s path into the store (see [`Agent::commit`]); true
    /// if there were any.
    fn finish_journaled(&self, custody: &mut Custody<'_>, f: &Facts<'_>) -> Result<bool, Error> {
        let ledger = &mut *custody.ledger;
        let mut any = false;
        for m in ledger.pending_moves()?.into_iter().filter(|m| m.direction == Direction::In && m.src == f.at) {
            any = true;
            let end = self.store.recover(&m).map_err(Error::io("recovering an unrecorded move", f.path))?;
            warn!(item = m.item_id, end = ?end, "finished a move whose ending was not recorded");
            debug!(item = m.item_id, path = %f.path.display(), "file of the unrecorded move");
            let mut tx = ledger.write()?;
            self.apply_outcome(&mut tx, &m, end, Seen::AtStart, &Note::default())?;
            tx.commit()?;
        }
        Ok(any)
    }

    /// Run the journaled move of `f` into the store and record how it ended.
    pub(super) fn move_in(
        &self,
        custody: &mut Custody<'_>,
        f: &Facts<'_>,
        intent: &MoveIntent,
        how: Try,
    ) -> Result<Committed, Error> {
        use crate::quarantine::MoveProblem;
        let item = intent.item_id;
        let moved = self.store.execute(intent, &f.file, &f.id, &mut self.barrier().dirty);
        fault::point("before_commit");
        let exposure = |tx: &Tx<'_>| tx.now() - (f.id.mtime_ns / 1_000_000).min(f.first_seen);
        let (end, kind, retry, reason) = match moved {
            Ok(Moved::SourceKept(e)) => {
                error!(item, error = %e, "verified in the store, but the original cannot be deleted; it stays where it is (sync can still see it) and reconcile retries");
                debug!(item, path = %f.path.display(), "original kept");
                let reason = format!("original could not be deleted: {e}");
                (Recovered::SourceKept, OutcomeKind::Quarantined, None, Some(reason))
            }
            Ok(Moved::Done) => (Recovered::Completed, OutcomeKind::Quarantined, None, None),
            Err(e) if e.rolled_back => {
                // Gone (deleted or moved by someone else): nothing to retry. Changed: look
                // again once it settles. The store failed: said once, tried again later.
                let (kind, retry) = match e.what {
                    MoveProblem::Vanished => (OutcomeKind::Skipped, None),
                    MoveProblem::Changed(_) => (OutcomeKind::Retry, Some(RetryCause::Busy)),
                    MoveProblem::Io { .. } | MoveProblem::Occupied => (OutcomeKind::Retry, Some(RetryCause::Store)),
                };
                if retry != Some(RetryCause::Store) {
                    warn!(item, error = %e, "move did not happen; the file stays where it is");
                    debug!(item, path = %f.path.display(), "file not moved");
                }
                (Recovered::RolledBack, kind, retry, Some(e.what.to_string()))
            }
            Err(e) => return self.recover_midway(custody, f, intent, &e, how.quiet),
        };
        let mut tx = custody.ledger.write()?;
        let exposure_ms = (how.exposed && end != Recovered::RolledBack).then(|| exposure(&tx));
        let tries = self.tries_with(item, how.quiet);
        let quiet = how.quiet && kind == OutcomeKind::Retry;
        let note = Note { reason: reason.as_deref(), exposure_ms, quiet, tries, ..Note::default() };
        self.apply_outcome(&mut tx, intent, end, Seen::Executed, &note)?;
        left_staging(&mut tx, f, end)?;
        tx.commit()?;
        let returned = self.back_from_staging(custody, f, item, end, retry, reason.as_deref())?;
        fault::point("after_commit");
        if end != Recovered::RolledBack {
            self.store_took_a_file();
        }
        let detail = match end {
            Recovered::SourceKept => reason.map(|r| format!("copied to the store; {r}")),
            _ => reason,
        };
        Ok(Committed::Decided(Decided { item: Some(item), kind, detail, retry, returned }))
    }

    /// A staged file the move did not take into the store goes back to its name (its staged
    /// copy could not be deleted, it changed), except when the store could not take it: then
    /// it waits in staging, out of sight, under its open stash row, and the next try moves it
    /// from there (recovery at a restart returns it).
    fn back_from_staging(
        &self,
        custody: &mut Custody<'_>,
        f: &Facts<'_>,
        item: i64,
        end: Recovered,
        retry: Option<RetryCause>,
        reason: Option<&str>,
    ) -> Result<Option<std::path::PathBuf>, Error> {
        match f.staged {
            Some(_) if end == Recovered::RolledBack && retry == Some(RetryCause::Store) => {
                debug!(item, path = %f.path.display(), "waits in staging for the store");
                Ok(None)
            }
            Some(s) if end != Recovered::Completed => {
                let why = reason.unwrap_or("not moved into the store");
                self.give_back(&mut custody.ledger, s, Some(item), Some(why), false)
            }
            _ => Ok(None),
        }
    }

    /// The tries a move of `item` took, this one included, when it is a later try (`again`):
    /// at least two, more if this agent counted more failures.
    fn tries_with(&self, item: i64, again: bool) -> Option<u32> {
        again.then(|| self.failed_tries(item).max(1) + 1)
    }

    /// A move that failed midway and could not undo itself cleanly: the journal row stays
    /// and recovery decides now, under the same lock.
    fn recover_midway(
        &self,
        custody: &mut Custody<'_>,
        f: &Facts<'_>,
        intent: &MoveIntent,
        e: &MoveError,
        quiet: bool,
    ) -> Result<Committed, Error> {
        if !quiet {
            error!(item = intent.item_id, error = %e, "move failed midway; recovering");
            debug!(item = intent.item_id, path = %f.path.display(), "file of the failed move");
        }
        let end = self.store.recover_beside(intent, f.path).map_err(Error::io("recovering a failed move", f.path))?;
        let reason = e.to_string();
        let (kind, retry) = match end {
            Recovered::SourceKept | Recovered::Completed => (OutcomeKind::Quarantined, None),
            Recovered::RolledBack | Recovered::Vanished => (OutcomeKind::Retry, Some(RetryCause::Store)),
        };
        // A completed move's event has no reason to give; the others say what went wrong.
        let note = Note {
            reason: (end != Recovered::Completed).then_some(reason.as_str()),
            quiet,
            tries: self.tries_with(intent.item_id, quiet),
            ..Note::default()
        };
        let mut tx = custody.ledger.write()?;
        self.apply_outcome(&mut tx, intent, end, Seen::Midway, &note)?;
        left_staging(&mut tx, f, end)?;
        tx.commit()?;
        let returned = self.back_from_staging(custody, f, intent.item_id, end, retry, Some(&reason))?;
        if kind == OutcomeKind::Quarantined {
            self.store_took_a_file();
        }
        let item = Some(intent.item_id);
        Ok(Committed::Decided(Decided { item, kind, detail: Some(reason), retry, returned }))
    }
}

/// How a move into the store is tried.
#[derive(Debug, Clone, Copy)]
pub(super) struct Try {
    /// A later try with the same decision: a failure is counted, not recorded again.
    pub quiet: bool,
    /// The file was where a sync client could see it (a camera folder), so its exposure is
    /// recorded.
    pub exposed: bool,
}

/// A staged file that reached the store leaves staging in the transaction that records it:
/// its stash row closes with the move's own.
fn left_staging(tx: &mut Tx<'_>, f: &Facts<'_>, end: Recovered) -> Result<(), LedgerError> {
    match f.staged {
        Some(s) if end == Recovered::Completed => tx.finish_move(s.row),
        _ => Ok(()),
    }
}
