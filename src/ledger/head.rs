//! `ledger.head`: the newest durable event's `seq` and `hash`, beside the database, so rows
//! cut off the end of the chain are noticed.
//!
//! The head may lag the ledger but must never lead it: after a power cut, rows the WAL had not
//! yet made durable are lost (recovery expects that), and a head naming one of them would read
//! as truncation, a false tamper alarm on evidence. So the head is written only at the
//! durability barrier ([`super::Ledger::sync`]), naming a row read *before* the WAL was fsynced,
//! and made durable itself: written to a temporary file, fsynced, renamed over the old head,
//! and the directory fsynced.

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::chain::Head;

/// Read the head file. A missing file is [`Head::Absent`].
pub fn read(path: &Path) -> Head {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            let mut parts = s.split_whitespace();
            match (parts.next().and_then(|n| n.parse().ok()), parts.next()) {
                (Some(seq), Some(hash)) => Head::At { seq, hash: hash.to_string() },
                _ => Head::Unreadable("unreadable".into()),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Head::Absent,
        Err(e) => Head::Unreadable(e.to_string()),
    }
}

/// Where [`write`] stages the new head before renaming it into place.
pub fn temporary(path: &Path) -> std::path::PathBuf {
    path.with_extension("head.tmp")
}

/// Replace the head file durably with `seq hash`. Callers serialise (the ledger's write lock):
/// the temporary file is shared.
pub fn write(path: &Path, seq: i64, hash: &str) -> io::Result<()> {
    let tmp = temporary(path);
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(format!("{seq} {hash}\n").as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_heads_read_back_and_damage_is_told_apart_from_absence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("ledger.head");
        assert_eq!(read(&p), Head::Absent);
        write(&p, 7, "abc").expect("write");
        assert_eq!(read(&p), Head::At { seq: 7, hash: "abc".into() });
        assert!(!dir.path().join("ledger.head.tmp").exists(), "the temporary file is renamed away");
        std::fs::write(&p, "garbage").expect("damage");
        assert!(matches!(read(&p), Head::Unreadable(_)));
    }
}
