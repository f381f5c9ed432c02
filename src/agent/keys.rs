//! The device key and what it signs, on the agent's side: the key found (or made, or
//! replaced) at open and recorded in the ledger, the signed checkpoints made after durability
//! barriers and on the reconcile tick, their check by `verify --checkpoint`, and the officer's
//! `anchor` after a head anchor went missing.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tracing::{error, info, warn};

use crate::ledger::events::kinds;
use crate::ledger::{Event, HeadFound, KeyReason, Ledger, Problem, Problems, Synced};
use crate::quarantine::Store;
use crate::signing::{self, checkpoint, Checkpoint, KeyFile, SignError, Signer};

use super::{Agent, Error, Refusal};

/// The store's signing key as found at open.
pub(super) enum DeviceKey {
    Ready(Arc<dyn Signer>),
    /// Why there is none: exports are refused and no checkpoints are made until it is fixed;
    /// photos are protected as ever.
    Unavailable(String),
}

/// What `anchor` recorded.
#[derive(Debug, Clone, Serialize)]
pub struct AnchorReport {
    /// The `head_anchored` event.
    pub seq: i64,
    pub found: HeadFound,
    /// The newest event when the head was found missing or unreadable.
    pub newest: i64,
}

/// Why the signer changed, seen from the key file.
enum KeyFileCause {
    Made,
    SetAside(std::path::PathBuf),
}

/// The installed signer (Android), else the key file; made if there is none, and a damaged or
/// readable one set aside for a new one.
fn signer_for(store: &Store) -> Result<(Arc<dyn Signer>, Option<KeyFileCause>), SignError> {
    if let Some(s) = signing::installed() {
        return Ok((s, None));
    }
    let path = store.root().join(signing::keyfile::FILE_NAME);
    match KeyFile::load_or_create(&path) {
        Ok((k, made)) => Ok((Arc::new(k), made.then_some(KeyFileCause::Made))),
        Err(e @ (SignError::BadKeyFile { .. } | SignError::Permissions { .. })) => {
            let aside = KeyFile::set_aside(&path, crate::ledger::now_ms())?;
            error!(error = %e, set_aside = %aside.display(), "the device key file cannot be used; a new key is made");
            let (k, _) = KeyFile::load_or_create(&path)?;
            Ok((Arc::new(k), Some(KeyFileCause::SetAside(aside))))
        }
        Err(e) => Err(e),
    }
}

/// Find the store's device key, making one if needed, and record in the ledger every key the
/// store starts signing with (under the ledger's write lock: one process makes the key).
pub(super) fn open_device_key(store: &Store, ledger: &mut Ledger) -> DeviceKey {
    let result = (|| -> Result<Arc<dyn Signer>, Error> {
        let mut tx = ledger.write()?;
        // Temporary files of a process that died writing the key or a checkpoint: both are
        // written only under this lock, so none of these is a live writer's.
        for tmp in [
            store.root().join(signing::keyfile::FILE_NAME).with_extension("key.tmp"),
            store.root().join(checkpoint::FILE_NAME).with_extension("checkpoint.tmp"),
        ] {
            match std::fs::remove_file(&tmp) {
                Ok(()) => info!(path = %tmp.display(), "removed a temporary file left by a process that died"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => warn!(path = %tmp.display(), error = %e, "could not remove a stale temporary file"),
            }
        }
        let (signer, cause) = signer_for(store).map_err(|e| Error::Io {
            about: "the device key",
            path: store.root().join(signing::keyfile::FILE_NAME),
            source: std::io::Error::other(e.to_string()),
        })?;
        let key = signer.public_key();
        let previous = match tx.newest_of_kind(kinds::DEVICE_KEY)? {
            Some(Event::DeviceKey { fingerprint, .. }) => Some(fingerprint),
            _ => None,
        };
        if previous.as_deref() == Some(key.fingerprint().as_str()) {
            tx.commit()?;
            return Ok(signer);
        }
        let reason = match (&previous, &cause) {
            (None, _) if !tx.has_events()? => KeyReason::NewStore,
            (None, _) => KeyReason::Added,
            (Some(_), Some(KeyFileCause::Made)) => KeyReason::KeyFileMissing,
            (Some(_), Some(KeyFileCause::SetAside(_))) => KeyReason::KeyFileUnusable,
            (Some(_), None) => KeyReason::Changed,
        };
        let event = Event::DeviceKey {
            algorithm: key.algorithm().as_str().into(),
            fingerprint: key.fingerprint(),
            public_key: signing::b64(key.spki()),
            provider: signer.provider().as_str().into(),
            reason,
            previous: previous.clone(),
            set_aside: match &cause {
                Some(KeyFileCause::SetAside(p)) => Some(p.to_string_lossy().into_owned()),
                _ => None,
            },
        };
        tx.record(None, &event)?;
        tx.commit()?;
        if previous.is_some() {
            warn!(fingerprint = %key.fingerprint(), ?previous, ?reason, "the store signs with a new device key; register it");
        } else {
            info!(fingerprint = %key.fingerprint(), provider = signer.provider().as_str(), "device key recorded");
        }
        Ok(signer)
    })();
    match result {
        Ok(s) => DeviceKey::Ready(s),
        Err(e) => {
            error!(error = %e, "no device key: case packages cannot be signed and no checkpoints are made");
            DeviceKey::Unavailable(e.to_string())
        }
    }
}

impl Agent {
    /// The device key, or why there is none.
    pub fn signer(&self) -> Result<&dyn Signer, Error> {
        match &self.device_key {
            DeviceKey::Ready(s) => Ok(s.as_ref()),
            DeviceKey::Unavailable(reason) => Err(Refusal::NoDeviceKey { reason: reason.clone() }.into()),
        }
    }

    /// The device key as `stats` and the Android health report show it.
    pub fn device_key_stats(&self) -> Option<crate::stats::DeviceKeyStats> {
        self.signer().ok().map(|k| crate::stats::DeviceKeyStats {
            algorithm: k.public_key().algorithm().as_str().into(),
            fingerprint: k.public_key().fingerprint(),
            provider: k.provider().as_str().into(),
        })
    }

    /// Sign a checkpoint of `seq`/`hash` and make it the store's newest (unless another process
    /// wrote a newer one meanwhile).
    fn checkpoint_of(&self, seq: i64, hash: &str, ledger: &Ledger) -> Result<Checkpoint, Error> {
        let signer = self.signer()?;
        let c = Checkpoint::make(signer, seq, hash, crate::ledger::now_ms()).map_err(|e| Error::Io {
            about: "signing a checkpoint",
            path: self.checkpoint_path(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let path = self.checkpoint_path();
        let written = ledger.locked(|| match Checkpoint::read(&path) {
            Ok(Some(old)) if old.seq > c.seq => Ok(()),
            _ => c.write(&path),
        })?;
        written.map_err(Error::io("writing the checkpoint", &path))?;
        *self.last_checkpoint.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        Ok(c)
    }

    fn checkpoint_path(&self) -> std::path::PathBuf {
        self.store.root().join(checkpoint::FILE_NAME)
    }

    /// After a durability barrier: a checkpoint if it advanced the head. Failures are logged
    /// (the next barrier tries again); they never fail the operation that flushed.
    pub(super) fn after_barrier(&self, synced: Option<Synced>, ledger: &Ledger) {
        let Some(s) = synced.filter(|s| s.advanced) else { return };
        if matches!(self.device_key, DeviceKey::Unavailable(_)) {
            return;
        }
        if let Err(e) = self.checkpoint_of(s.seq, &s.hash, ledger) {
            warn!(error = %e, seq = s.seq, "checkpoint not made; the next barrier tries again");
        }
    }

    /// Make a checkpoint now of the newest durable event (none while the ledger is empty).
    pub fn checkpoint(&self) -> Result<Option<Checkpoint>, Error> {
        self.signer()?;
        let ledger = self.ledger();
        let Some(s) = ledger.sync()? else { return Ok(None) };
        self.checkpoint_of(s.seq, &s.hash, &ledger).map(Some)
    }

    /// A checkpoint if none was made for `checkpoint_interval` (the watcher and the Android
    /// service call this on their reconcile tick), so the EMM hears from an idle phone too.
    pub fn checkpoint_if_due(&self) {
        if matches!(self.device_key, DeviceKey::Unavailable(_)) {
            return;
        }
        let last = *self.last_checkpoint.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < self.config.checkpoint_interval) {
            return;
        }
        if let Err(e) = self.checkpoint() {
            warn!(error = %e, "periodic checkpoint not made; the next tick tries again");
        }
    }

    /// The store's newest checkpoint, if one was made.
    pub fn newest_checkpoint(&self) -> Option<Checkpoint> {
        match Checkpoint::read(&self.checkpoint_path()) {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, path = %self.checkpoint_path().display(), "checkpoint file unreadable");
                None
            }
        }
    }

    /// Anchor the ledger again after its head was found missing or unreadable: an audited
    /// `head_anchored` event with the officer's reason, then a head at that event. Refused
    /// while the head is there and readable (a head that names missing rows is evidence of
    /// truncation, not something to clear).
    pub fn anchor(&self, reason: &str, officer: Option<&str>) -> Result<AnchorReport, Error> {
        self.durable(self.anchor_now(reason, officer))
    }

    fn anchor_now(&self, reason: &str, officer: Option<&str>) -> Result<AnchorReport, Error> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Refusal::ReasonRequired.into());
        }
        let mut custody = self.custody()?;
        let ledger = &mut *custody.ledger;
        let found = match ledger.head() {
            crate::ledger::Head::Absent => HeadFound::Missing,
            crate::ledger::Head::Unreadable(_) => HeadFound::Unreadable,
            crate::ledger::Head::At { .. } => return Err(Refusal::HeadPresent.into()),
        };
        let newest = ledger.newest_event()?.map_or(0, |(seq, _)| seq);
        let mut tx = ledger.write()?;
        let event = Event::HeadAnchored { found, newest, reason: reason.into(), officer: officer.map(str::to_string) };
        let seq = tx.record(None, &event)?;
        tx.commit()?;
        let anchored = ledger.reanchor()?;
        warn!(seq, ?found, newest, reason, officer, "ledger anchored again after its head was lost");
        if let Some((seq, hash)) = anchored {
            if let Err(e) = self.checkpoint_of(seq, &hash, ledger) {
                warn!(error = %e, "checkpoint after anchoring not made");
            }
        }
        Ok(AnchorReport { seq, found, newest })
    }
}

/// Check `checkpoints` against the ledger: each must be signed by a key the ledger
/// recorded, and the ledger must still hold its event with its hash.
/// Read-only: `verify` runs it inside its one snapshot of the ledger ([`super::StoreReader`]). A
/// pruned event keeps its hash, so a checkpoint of it (or past it) still checks.
pub(super) fn check_checkpoints(
    ledger: &Ledger,
    checkpoints: &[Checkpoint],
    problems: &mut Problems,
) -> Result<(), crate::ledger::LedgerError> {
    if checkpoints.is_empty() {
        return Ok(());
    }
    let known: Vec<String> = ledger
        .events_of_kind(kinds::DEVICE_KEY)?
        .into_iter()
        .filter_map(|(_, _, e)| match e {
            Event::DeviceKey { fingerprint, .. } => Some(fingerprint),
            _ => None,
        })
        .collect();
    let newest = ledger.newest_event()?.map_or(0, |(seq, _)| seq);
    for c in checkpoints {
        match c.check() {
            Err(e) => problems.push(Problem::CheckpointUnverified { seq: c.seq, reason: e.to_string() }),
            Ok(key) if !known.contains(&key.fingerprint()) => {
                problems.push(Problem::CheckpointForeignKey { seq: c.seq, fingerprint: key.fingerprint() });
            }
            Ok(_) => {}
        }
        match ledger.hash_of(c.seq)? {
            None => problems.push(Problem::CheckpointRolledBack { seq: c.seq, at_ms: c.at_ms, newest }),
            Some(h) if !h.eq_ignore_ascii_case(&c.hash) => {
                problems.push(Problem::CheckpointRewritten { seq: c.seq, at_ms: c.at_ms });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The re-anchorings an officer recorded, as sentences for `verify` (notes, not problems).
pub(super) fn anchor_notes(ledger: &Ledger) -> Result<Vec<String>, crate::ledger::LedgerError> {
    Ok(ledger
        .events_of_kind(kinds::HEAD_ANCHORED)?
        .into_iter()
        .filter_map(|(seq, at_ms, e)| match e {
            Event::HeadAnchored { found, newest, reason, officer } => Some(format!(
                "event {seq} ({}): the head anchor was found {} with events up to {newest}, and anchored again \
                 by {}: {reason:?}",
                crate::export::utc(at_ms),
                match found {
                    HeadFound::Missing => "missing",
                    HeadFound::Unreadable => "unreadable",
                },
                officer.as_deref().unwrap_or("(no officer named)")
            )),
            _ => None,
        })
        .collect())
}
