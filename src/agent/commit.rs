//! Commit: the last stage for one file. Under the move lock ([`Custody`]) the agent checks
//! that the path still names the bytes it hashed and that nobody settled the file meanwhile,
//! records the item and its custody events, and for case material journals the move, runs it
//! and records how it ended. [`Agent::apply_outcome`] is the one place that turns a move's
//! ending (seen by the move itself, by the recovery right after a move failed midway, or by
//! the recovery at start) into the item's state and its custody event.

use tracing::{error, info, warn};

use crate::classify::Assessment;
use crate::fault;
use crate::ledger::{Direction, Event, Item, ItemState, LedgerError, MoveIntent, Tx};
use crate::policy::{Action, Verdict};
use crate::quarantine::fsops;
use crate::quarantine::{MoveError, Moved, Recovered};

use super::intake::{Facts, Known};
use super::{Agent, Custody, Error, OutcomeKind};

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
    /// newest item for this file version, if any, is the decision to report.
    Earlier(Option<Box<Item>>),
    /// Decided and recorded now.
    Decided(Decided),
}

/// A decision recorded now: the item, what happened to the file, and why if it is not plain.
#[derive(Debug)]
pub(super) struct Decided {
    pub item: i64,
    pub kind: OutcomeKind,
    pub detail: Option<String>,
    /// Back in the camera folder here after it was judged in staging.
    pub returned: Option<std::path::PathBuf>,
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
        let (store_name, event) = match (m.direction, end) {
            (Direction::Copy, Completed | SourceKept) => (
                Some(name.as_str()),
                Event::Quarantined { sha256, store_name: name.clone(), exposure_ms: None, recovered },
            ),
            (Direction::In, Completed) => (
                Some(name.as_str()),
                Event::Quarantined { sha256, store_name: name.clone(), exposure_ms: note.exposure_ms, recovered },
            ),
            (Direction::In, SourceKept) => (
                Some(name.as_str()),
                Event::OriginalKept {
                    sha256,
                    store_name: name.clone(),
                    reason: reason.unwrap_or_default(),
                    exposure_ms: note.exposure_ms,
                    recovered,
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
        let known = known.current(&custody.ledger, f.path, &f.id, self.held())?;
        let still_there = fsops::lstat_id(f.at).is_ok_and(|now| now.same_content_as(&f.id));
        if !still_there || (tag.is_none() && known.settled) {
            return Ok(Committed::Earlier(known.latest.map(Box::new)));
        }
        // An officer tagging a photo the agent kept: the same item is decided again, so its
        // custody log runs from its first intake and it is counted once. Likewise a file held
        // while media-location access was off, decided now on the bytes as they are.
        let earlier = known.latest.filter(|i| {
            i.size == f.id.size
                && match i.state {
                    ItemState::Kept => tag.is_some() && i.sha256 == f.sha256,
                    ItemState::Held => true,
                    _ => false,
                }
        });
        let held = self.held();
        let state = if held {
            ItemState::Held
        } else if verdict.action == Action::Quarantine {
            ItemState::Moving
        } else {
            ItemState::Kept
        };
        let mut tx = custody.ledger.write()?;
        let item = super::record::record(&mut tx, f, verdict, assessment, tag, state, earlier.as_ref(), None)?;
        if held {
            let reason = "media_location_access is off: the filesystem may have altered the bytes read (GPS \
                          redaction), so nothing is stored or deleted on their strength; decided again once access is back";
            tx.record(Some(item), &Event::Held { would: verdict.action, reason: reason.into() })?;
            tx.commit()?;
            info!(path = %f.path.display(), item, would = verdict.action.as_str(), "held: no media-location access; original left untouched");
            let detail = Some(format!("held, not moved: {reason}"));
            return Ok(Committed::Decided(Decided { item, kind: OutcomeKind::Kept, detail, returned: None }));
        }
        if state != ItemState::Moving {
            tx.commit()?;
            // Judged personal in staging: back to its name.
            let returned = match f.staged {
                Some(s) => self.give_back(&mut custody.ledger, s, Some(item), Some("kept"), false)?,
                None => None,
            };
            let detail = returned
                .as_ref()
                .filter(|p| p.as_path() != f.path)
                .map(|p| format!("its name was taken meanwhile; returned as {}", p.display()));
            return Ok(Committed::Decided(Decided { item, kind: OutcomeKind::Kept, detail, returned }));
        }
        fault::point("before_journal");
        let (mut intent, _) = self.store.plan_in(item, f.at, &f.sha256, f.id.size);
        intent.id = tx.journal_move(&intent)?;
        tx.commit()?;
        // The intent is durable before any byte moves: a power cut that kept the moved bytes
        // but lost the intent would leave recovery nothing to finish the move from.
        custody.ledger.sync_log()?;
        fault::point("after_journal");
        self.move_in(&mut custody, f, &intent, true)
    }

    /// Run the journaled move of `f` into the store and record how it ended. `exposed`: the file
    /// was where a sync client could see it (a camera folder), so its exposure is recorded.
    pub(super) fn move_in(
        &self,
        custody: &mut Custody<'_>,
        f: &Facts<'_>,
        intent: &MoveIntent,
        exposed: bool,
    ) -> Result<Committed, Error> {
        let item = intent.item_id;
        let moved = self.store.execute(intent, &f.file, &f.id, &mut self.barrier().dirty);
        fault::point("before_commit");
        let exposure = |tx: &Tx<'_>| tx.now() - (f.id.mtime_ns / 1_000_000).min(f.first_seen);
        let (end, seen, kind, reason) = match moved {
            Ok(Moved::SourceKept(e)) => {
                error!(path = %f.path.display(), item, error = %e, "verified in the store, but the original cannot be deleted; it stays where it is (sync can still see it) and reconcile retries");
                let reason = format!("original could not be deleted: {e}");
                (Recovered::SourceKept, Seen::Executed, OutcomeKind::Quarantined, Some(reason))
            }
            Ok(Moved::Done) => (Recovered::Completed, Seen::Executed, OutcomeKind::Quarantined, None),
            Err(e) if e.rolled_back => {
                warn!(path = %f.path.display(), item, error = %e, "move did not happen; the file stays where it is");
                // Gone (deleted or moved by someone else): nothing to retry. Changed: look again.
                let kind = match e.what {
                    crate::quarantine::MoveProblem::Vanished => OutcomeKind::Skipped,
                    _ => OutcomeKind::Retry,
                };
                (Recovered::RolledBack, Seen::Executed, kind, Some(e.what.to_string()))
            }
            Err(e) => return self.recover_midway(custody, f, intent, &e),
        };
        let mut tx = custody.ledger.write()?;
        let exposure_ms = (exposed && end != Recovered::RolledBack).then(|| exposure(&tx));
        let note = Note { reason: reason.as_deref(), exposure_ms, officer: None };
        self.apply_outcome(&mut tx, intent, end, seen, &note)?;
        left_staging(&mut tx, f, end)?;
        tx.commit()?;
        let returned = self.back_from_staging(custody, f, item, end, reason.as_deref())?;
        fault::point("after_commit");
        let detail = match end {
            Recovered::SourceKept => reason.map(|r| format!("copied to the store; {r}")),
            _ => reason,
        };
        Ok(Committed::Decided(Decided { item, kind, detail, returned }))
    }

    /// A staged file the move did not take into the store (it was undone, or its staged copy
    /// could not be deleted) goes back to its name.
    fn back_from_staging(
        &self,
        custody: &mut Custody<'_>,
        f: &Facts<'_>,
        item: i64,
        end: Recovered,
        reason: Option<&str>,
    ) -> Result<Option<std::path::PathBuf>, Error> {
        match f.staged {
            Some(s) if end != Recovered::Completed => {
                let why = reason.unwrap_or("not moved into the store");
                self.give_back(&mut custody.ledger, s, Some(item), Some(why), false)
            }
            _ => Ok(None),
        }
    }

    /// A move that failed midway and could not undo itself cleanly: the journal row stays
    /// and recovery decides now, under the same lock.
    fn recover_midway(
        &self,
        custody: &mut Custody<'_>,
        f: &Facts<'_>,
        intent: &MoveIntent,
        e: &MoveError,
    ) -> Result<Committed, Error> {
        error!(path = %f.path.display(), item = intent.item_id, error = %e, "move failed midway; recovering");
        let end = self.store.recover_beside(intent, f.path).map_err(Error::io("recovering a failed move", f.path))?;
        let reason = e.to_string();
        // A completed move's event has no reason to give; the others say what went wrong.
        let note = Note { reason: (end != Recovered::Completed).then_some(reason.as_str()), ..Note::default() };
        let mut tx = custody.ledger.write()?;
        self.apply_outcome(&mut tx, intent, end, Seen::Midway, &note)?;
        left_staging(&mut tx, f, end)?;
        tx.commit()?;
        let returned = self.back_from_staging(custody, f, intent.item_id, end, Some(&reason))?;
        let kind = match end {
            Recovered::SourceKept | Recovered::Completed => OutcomeKind::Quarantined,
            Recovered::RolledBack | Recovered::Vanished => OutcomeKind::Retry,
        };
        Ok(Committed::Decided(Decided { item: intent.item_id, kind, detail: Some(reason), returned }))
    }
}

/// A staged file that reached the store leaves staging in the transaction that records it:
/// its stash row closes with the move's own.
fn left_staging(tx: &mut Tx<'_>, f: &Facts<'_>, end: Recovered) -> Result<(), LedgerError> {
    match f.staged {
        Some(s) if end == Recovered::Completed => tx.finish_move(s.row),
        _ => Ok(()),
    }
}
