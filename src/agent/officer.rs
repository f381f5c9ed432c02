//! Officer operations: tag a photo as case material, release a false positive back where it
//! came from, open and close case sessions. Each is audited in the custody log and ends with
//! the durability barrier before it returns.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing::{debug, error, info, warn};

use crate::fault;
use crate::ledger::{self, Event, Item, ItemSource, ItemState};
use crate::policy;
use crate::quarantine::fsops;
use crate::quarantine::{MoveError, Moved, Recovered};

use super::commit::{Note, Seen, Tag};
use super::record::tagged;
use super::{ledger_path, Agent, Error, Outcome, OutcomeKind, Refusal};

impl Agent {
    /// An officer marks a photo as case material: a file in a camera folder (it is
    /// quarantined now) or an item already in the store (its case ID is set).
    pub fn tag(&self, target: &str, case: &str, officer: Option<&str>, note: Option<&str>) -> Result<Outcome, Error> {
        self.durable(self.tag_now(target, case, officer, note))
    }

    fn tag_now(&self, target: &str, case: &str, officer: Option<&str>, note: Option<&str>) -> Result<Outcome, Error> {
        let case = case.trim();
        if case.is_empty() {
            return Err(Refusal::CaseIdRequired.into());
        }
        let given = Path::new(target);
        if given.exists() || given.symlink_metadata().is_ok() {
            // The path the custody log records, and the one scan and watch would have used
            // for this file: never relative to wherever the officer's shell happened to be.
            let path = &ledger_path(given);
            let resolved = crate::quarantine::placement::resolve(path);
            if resolved.starts_with(self.store.root()) {
                let name = self.store_name_of(&resolved);
                let item = self.find_by_store_name(&name)?;
                return self.tag_item(item, case, officer, note);
            }
            if !self.in_camera_folder(path) {
                return Err(Refusal::OutsideCameras { path: path.clone() }.into());
            }
            let outcome = self.intake(path, Some(Tag { case, officer, note }), None);
            return match outcome.kind {
                OutcomeKind::Quarantined => Ok(outcome),
                kind => Err(Error::TagFailed {
                    path: path.clone(),
                    kind,
                    detail: outcome.detail.unwrap_or_else(|| "could not be quarantined".into()),
                }),
            };
        }
        if !is_item_key(target) {
            // Not an item number or hash: a path, and nothing is there.
            let source = std::io::Error::from_raw_os_error(libc::ENOENT);
            return Err(Error::Io { about: "tagging", path: given.to_path_buf(), source });
        }
        let item = self.ledger().find_item(target)?;
        self.tag_item(item, case, officer, note)
    }

    fn find_by_store_name(&self, name: &str) -> Result<Item, Error> {
        match self.ledger().item_by_store_name(name)? {
            Some(item) => Ok(item),
            None => Err(Refusal::UnknownStoreFile { name: name.to_string() }.into()),
        }
    }

    fn tag_item(&self, item: Item, case: &str, officer: Option<&str>, note: Option<&str>) -> Result<Outcome, Error> {
        if item.state != ItemState::Quarantined {
            return Err(Refusal::TagNotInStore { item: item.id, state: item.state }.into());
        }
        let mut tags = item.tags.clone();
        if let Some(n) = note {
            tags.push(n.to_string());
        }
        let mut ledger = self.ledger();
        let embedding = ledger.embedding(item.id)?;
        let mut tx = ledger.write()?;
        tx.tag_item(item.id, case, officer, &tags)?;
        tx.record(Some(item.id), &tagged(case, officer, note))?;
        if let Some(e) = embedding.filter(|_| item.source == ItemSource::Classifier) {
            tx.add_correction(item.id, true, &e)?;
        }
        tx.commit()?;
        info!(item = item.id, "tagged");
        debug!(item = item.id, case, "tagged with case");
        Ok(Outcome {
            path: item.original_path.to_string_lossy().into_owned(),
            kind: OutcomeKind::Quarantined,
            item: Some(item.id),
            sha256: Some(item.sha256),
            source: None,
            case_id: Some(case.to_string()),
            rule: Some(format!("tagged as case {case}")),
            score: item.score,
            handle_ms: 0.0,
            detail: None,
            returned_to: None,
            retry: None,
        })
    }

    /// Put a false positive back where it came from, audited.
    pub fn release(&self, key: &str, reason: &str, officer: Option<&str>) -> Result<Outcome, Error> {
        self.durable(self.release_now(key, reason, officer))
    }

    fn release_now(&self, key: &str, reason: &str, officer: Option<&str>) -> Result<Outcome, Error> {
        let started = Instant::now();
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Refusal::ReasonRequired.into());
        }
        let path = Path::new(key);
        let item = if path.is_absolute() || key.contains('/') {
            let resolved = crate::quarantine::placement::resolve(path);
            if !resolved.starts_with(self.store.root()) {
                return Err(Refusal::NotAStorePath { key: key.to_string() }.into());
            }
            self.find_by_store_name(&self.store_name_of(&resolved))?
        } else {
            self.ledger().find_item(key)?
        };
        if item.state != ItemState::Quarantined {
            return Err(Refusal::NotQuarantined { item: item.id, state: item.state }.into());
        }
        let stored = item.store_name.clone().ok_or(Refusal::NoStoreFile { item: item.id })?;
        let to = self.release_destination(&item, &stored)?;
        let parent = to.parent().unwrap_or(Path::new("/"));
        if !parent.is_dir() {
            return Err(Refusal::OriginalFolderGone { path: parent.to_path_buf() }.into());
        }
        let dst = free_name(&to, item.id);
        self.move_out(item, &stored, &dst, reason, officer, started)
    }

    /// Journal and run the move of `item`'s store file `stored` back out to `dst`, and record
    /// how it ended.
    fn move_out(
        &self,
        item: Item,
        stored: &str,
        dst: &Path,
        reason: &str,
        officer: Option<&str>,
        started: Instant,
    ) -> Result<Outcome, Error> {
        let src_path = self.store.path_of(stored);
        let mut custody = self.custody()?;
        let (file, id) = fsops::open_regular(&src_path).map_err(Error::open(&src_path))?;
        let mut intent = self.store.plan_out(item.id, stored, dst, &item.sha256, item.size);
        let embedding = custody.ledger.embedding(item.id)?;
        let mut tx = custody.ledger.write()?;
        tx.set_state(item.id, ItemState::Releasing, None)?;
        let requested = Event::ReleaseRequested {
            reason: reason.into(),
            officer: officer.map(str::to_string),
            to: dst.to_string_lossy().into_owned(),
        };
        tx.record(Some(item.id), &requested)?;
        intent.id = tx.journal_move(&intent)?;
        tx.commit()?;
        // The intent is durable before any byte moves: a power cut that kept the moved bytes
        // but lost the intent would leave recovery nothing to finish the move from.
        custody.ledger.sync_log()?;
        fault::point("after_journal");
        let moved = self.store.execute(&intent, &file, &id, &mut self.barrier().dirty);
        let end = match moved {
            Ok(Moved::SourceKept(e)) => {
                warn!(item = item.id, error = %e, "released, but its store file could not be removed");
                Recovered::SourceKept
            }
            Ok(Moved::Done) => Recovered::Completed,
            Err(e) if e.rolled_back => {
                error!(item = item.id, error = %e, "release failed; the item stays in the store");
                let what = e.what.to_string();
                let mut tx = custody.ledger.write()?;
                let note = Note { reason: Some(&what), ..Note::default() };
                self.apply_outcome(&mut tx, &intent, Recovered::RolledBack, Seen::Executed, &note)?;
                tx.commit()?;
                return Err(e.into());
            }
            Err(e) => {
                drop(custody);
                error!(item = item.id, error = %e, "release failed midway; recovering");
                return Err(self.recover_release(&item, e));
            }
        };
        let mut tx = custody.ledger.write()?;
        let note = Note { reason: Some(reason), officer, ..Note::default() };
        self.apply_outcome(&mut tx, &intent, end, Seen::Executed, &note)?;
        if let Some(e) = embedding.filter(|_| item.source == ItemSource::Classifier) {
            tx.add_correction(item.id, false, &e)?;
        }
        tx.commit()?;
        info!(item = item.id, reason, "released");
        debug!(item = item.id, path = %dst.display(), "released to");
        Ok(Outcome {
            path: dst.to_string_lossy().into_owned(),
            kind: OutcomeKind::Kept,
            item: Some(item.id),
            sha256: Some(item.sha256),
            source: Some(policy::Source::Released),
            case_id: item.case_id,
            rule: Some(format!("released: {reason}")),
            score: item.score,
            handle_ms: started.elapsed().as_secs_f64() * 1e3,
            detail: None,
            returned_to: None,
            retry: None,
        })
    }

    /// A release that failed midway: recovery decides from what is on disk, and an item
    /// that stays in the store says why the release failed. Returns the move's error.
    fn recover_release(&self, item: &Item, e: MoveError) -> Error {
        if let Err(r) = self.recover() {
            return r;
        }
        let state = self.ledger().item(item.id).map(|i| i.state);
        if matches!(state, Ok(ItemState::Quarantined)) {
            let mut ledger = self.ledger();
            let noted = ledger.write().and_then(|mut tx| {
                tx.record(Some(item.id), &Event::ReleaseFailed { reason: e.what.to_string(), recovered: true })?;
                tx.commit()
            });
            if let Err(le) = noted {
                return le.into();
            }
        }
        e.into()
    }

    /// Where a release writes: where the item came from. That path must be the one its
    /// hash-chained `intake` event recorded (an edited `items` row cannot redirect a release),
    /// must not be in the store, and must be in a camera folder when the config names any.
    ///
    /// An item adopted at recovery has no intake event: a power cut lost its rows, and with
    /// them where it came from. Its hash-chained `adopted` event vouches for it instead, and it
    /// goes to the first camera folder as `recovered-<item>.<ext>`, where the watcher keeps it
    /// (an officer released those bytes) and sync may take it, as for any release.
    fn release_destination(&self, item: &Item, stored: &str) -> Result<PathBuf, Error> {
        let events = self.ledger().events_of(item.id)?;
        let recorded = events.iter().find_map(|l| match &l.event {
            Event::Intake { path, .. } => Some(PathBuf::from(path)),
            _ => None,
        });
        let adopted =
            events.iter().any(|l| matches!(&l.event, Event::Adopted { store_name, .. } if store_name == stored));
        if recorded.is_none() && adopted && item.source == ItemSource::Recovered {
            let camera = self.cameras.first().ok_or(Refusal::ReleaseNeedsCamera { item: item.id })?;
            let ext = Path::new(stored).extension().map_or_else(|| "bin".into(), |e| e.to_string_lossy().into_owned());
            return Ok(camera.join(format!("recovered-{}.{ext}", item.id)));
        }
        let dst = &item.original_path;
        // Non-UTF-8 names are recorded lossily in the event; compare what can be compared.
        if recorded.as_deref() != Some(Path::new(dst.to_string_lossy().as_ref())) {
            return Err(Refusal::OriginalPathMismatch { item: item.id }.into());
        }
        let parent = crate::quarantine::placement::resolve(dst.parent().unwrap_or(Path::new("/")));
        if parent.starts_with(self.store.root()) {
            return Err(Refusal::OriginalInStore { item: item.id }.into());
        }
        if !self.cameras.is_empty() && !self.cameras.iter().any(|c| parent.starts_with(c)) {
            return Err(Refusal::OriginalOutsideCameras { item: item.id, path: dst.clone() }.into());
        }
        Ok(dst.clone())
    }

    /// Open a case session (closing any open one first).
    pub fn session_start(
        &self,
        case: &str,
        officer: Option<&str>,
        duration: Option<Duration>,
    ) -> Result<ledger::Session, Error> {
        self.durable(self.session_start_now(case, officer, duration))
    }

    fn session_start_now(
        &self,
        case: &str,
        officer: Option<&str>,
        duration: Option<Duration>,
    ) -> Result<ledger::Session, Error> {
        let case = case.trim();
        if case.is_empty() {
            return Err(Refusal::CaseIdRequired.into());
        }
        let mut ledger = self.ledger();
        let mut tx = ledger.write()?;
        for s in tx.stop_sessions()? {
            tx.record(None, &Event::SessionStopped { case_id: s.case_id, session: s.id, replaced: true })?;
        }
        let until = duration.map(|d| tx.now() + d.as_millis() as i64);
        let id = tx.start_session(case, officer, until)?;
        let started = Event::SessionStarted {
            case_id: case.into(),
            session: id,
            officer: officer.map(str::to_string),
            until_ms: until,
        };
        tx.record(None, &started)?;
        tx.commit()?;
        info!(session = id, "case session opened");
        debug!(session = id, case, "case of the session");
        Ok(ledger.open_session()?.ok_or(Refusal::SessionEnded)?)
    }

    /// Close the open case session; returns the sessions closed.
    pub fn session_stop(&self) -> Result<Vec<ledger::Session>, Error> {
        let stopped = (|| {
            let mut ledger = self.ledger();
            let mut tx = ledger.write()?;
            let stopped = tx.stop_sessions()?;
            for s in &stopped {
                let stopped = Event::SessionStopped { case_id: s.case_id.clone(), session: s.id, replaced: false };
                tx.record(None, &stopped)?;
            }
            tx.commit()?;
            Ok(stopped)
        })();
        self.durable(stopped)
    }
}

/// Could `key` name an item (`42`, `#42`, or at least 6 hex digits of its SHA-256)?
fn is_item_key(key: &str) -> bool {
    let key = key.trim();
    let digits = key.trim_start_matches('#');
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        || (key.len() >= 6 && key.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `path` if free, else `stem-released-<item>.ext` beside it.
fn free_name(path: &Path, item: i64) -> PathBuf {
    if path.symlink_metadata().is_err() {
        return path.to_path_buf();
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|e| e.to_string_lossy().into_owned()).map(|e| format!(".{e}")).unwrap_or_default();
    path.with_file_name(format!("{stem}-released-{item}{ext}"))
}
