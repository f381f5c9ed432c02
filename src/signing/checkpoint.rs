//! Signed ledger checkpoints: "this phone's ledger had event `seq` with hash `hash` at
//! `at_ms`", signed by the device key, for keeping *off* the phone.
//!
//! The agent makes one at every durability barrier that advanced the ledger's head and at
//! least every `checkpoint_interval`; the newest is in `STORE/ledger.checkpoint`, in
//! `stats --json` (`checkpoint`) and, on Android, sent to the EMM as a keyed app state, which
//! keeps the history. `fotovakt verify --checkpoint FILE` then proves that today's ledger still
//! holds that very event: since every hash covers the one before it, the whole chain up to it
//! is unchanged. A rollback (the ledger ends before the checkpoint) or a rewrite of anything
//! at or before it (another hash there) is a typed problem.
//!
//! The checkpoint carries its public key, so it can be checked on its own; `verify` also
//! requires that key to be one the ledger recorded (`device_key` events).

use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{PublicKey, SignError, SignatureProblem, Signed, Signer};
use crate::quarantine::fsops;

/// The checkpoint format written and understood here.
pub const FORMAT: &str = "fotovakt-checkpoint-v1";
/// The newest checkpoint, inside the store.
pub const FILE_NAME: &str = "ledger.checkpoint";

/// The text a checkpoint's signature signs.
pub fn message(seq: i64, hash: &str, at_ms: i64, fingerprint: &str) -> Vec<u8> {
    format!("{FORMAT}\n{seq}\n{}\n{at_ms}\n{}\n", hash.to_ascii_lowercase(), fingerprint.to_ascii_lowercase())
        .into_bytes()
}

/// One signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format: String,
    /// The ledger event it names.
    pub seq: i64,
    /// That event's hash.
    pub hash: String,
    /// When it was made (ms since the epoch, the phone's wall clock).
    pub at_ms: i64,
    #[serde(flatten)]
    pub signed: Signed,
}

impl Checkpoint {
    /// Sign a checkpoint of event `seq` (`hash`) at `at_ms`. No attestation chain: a checkpoint
    /// stays small enough for a keyed app state; the key is attested in its packages.
    pub fn make(signer: &dyn Signer, seq: i64, hash: &str, at_ms: i64) -> Result<Checkpoint, SignError> {
        let fingerprint = signer.public_key().fingerprint();
        let mut signed = Signed::make(signer, &message(seq, hash, at_ms, &fingerprint))?;
        signed.attestation.clear();
        Ok(Checkpoint { format: FORMAT.into(), seq, hash: hash.to_ascii_lowercase(), at_ms, signed })
    }

    /// The signer's key, when the signature stands.
    pub fn check(&self) -> Result<PublicKey, SignatureProblem> {
        if self.format != FORMAT {
            return Err(SignatureProblem::Malformed(format!("format {:?}, expected {FORMAT:?}", self.format)));
        }
        self.signed.check(&message(self.seq, &self.hash, self.at_ms, &self.signed.fingerprint))
    }

    /// Checkpoints in `text`: one checkpoint object, a `stats --json` object (its `checkpoint`),
    /// a JSON array of them, or one per line (an EMM's history export).
    pub fn parse_many(text: &str) -> Result<Vec<Checkpoint>, String> {
        let one = |v: serde_json::Value| -> Result<Vec<Checkpoint>, String> {
            let v = match v.get("checkpoint") {
                Some(c) if v.get("format").is_none() => c.clone(),
                _ => v,
            };
            match v {
                serde_json::Value::Array(a) => {
                    a.into_iter().map(|c| serde_json::from_value(c).map_err(|e| e.to_string())).collect()
                }
                serde_json::Value::Null => Err("no checkpoint in it (`checkpoint` is null)".into()),
                v => serde_json::from_value(v).map(|c| vec![c]).map_err(|e| e.to_string()),
            }
        };
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
            return one(v);
        }
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
            out.extend(one(v).map_err(|e| format!("line {}: {e}", n + 1))?);
        }
        if out.is_empty() {
            return Err("no checkpoint in it".into());
        }
        Ok(out)
    }

    /// Read the checkpoint file at `path`; `None` when there is none.
    pub fn read(path: &Path) -> io::Result<Option<Checkpoint>> {
        match std::fs::read_to_string(path) {
            Ok(t) => serde_json::from_str(&t).map(Some).map_err(io::Error::other),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replace the checkpoint file at `path` in one step (temporary file, fsync, rename).
    /// Callers serialise (the ledger's write lock): the temporary file's name is fixed
    /// (`ledger.checkpoint.tmp`), and one left by a dead process is removed first. The folder
    /// is not fsynced: the copy that matters is the one off the phone, and a power cut can only
    /// bring back the previous checkpoint here, whole (the new one was fsynced before its rename).
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let tmp = path.with_extension("checkpoint.tmp");
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let written = (|| -> io::Result<()> {
            let mut f = fsops::create_exclusive(&tmp)?;
            f.write_all(serde_json::to_string_pretty(self).map_err(io::Error::other)?.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::KeyFile;

    #[test]
    fn a_checkpoint_verifies_and_any_changed_field_does_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (key, _) = KeyFile::load_or_create(&dir.path().join("device.key")).expect("key");
        let c = Checkpoint::make(&key, 12, &"ab".repeat(32), 1_700_000_000_000).expect("make");
        assert!(c.check().is_ok());
        for changed in [
            Checkpoint { seq: 13, ..c.clone() },
            Checkpoint { hash: "cd".repeat(32), ..c.clone() },
            Checkpoint { at_ms: c.at_ms - 1, ..c.clone() },
        ] {
            assert_eq!(changed.check(), Err(SignatureProblem::Invalid), "{changed:?}");
        }
        let path = dir.path().join(FILE_NAME);
        c.write(&path).expect("write");
        assert_eq!(Checkpoint::read(&path).expect("read"), Some(c.clone()));
        let text = std::fs::read_to_string(&path).expect("text");
        assert_eq!(Checkpoint::parse_many(&text).expect("one"), vec![c.clone()]);
        let stats = serde_json::json!({"items": {}, "checkpoint": c}).to_string();
        assert_eq!(Checkpoint::parse_many(&stats).expect("stats"), vec![c.clone()]);
        let lines =
            format!("{}\n\n{}\n", serde_json::to_string(&c).expect("json"), serde_json::to_string(&c).expect("json"));
        assert_eq!(Checkpoint::parse_many(&lines).expect("lines").len(), 2);
        assert!(Checkpoint::parse_many("{\"checkpoint\": null}").is_err());
        assert!(Checkpoint::parse_many("not json").is_err());
    }
}
