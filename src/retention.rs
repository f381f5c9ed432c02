//! Retention: when a store file's time is up, and removing it.
//!
//! Clocks, all read from the ledger's events (tamper-evident), never from file times:
//!
//! * an item that was **exported and acknowledged** (`export`, then `ack` events) is due for
//!   purge `exported_days` after the acknowledgement;
//! * an item that was **never exported** is *overdue* `quarantined_days` after it arrived in
//!   the store; it is purged only if `purge_unexported = true`;
//! * an item exported but not yet acknowledged is never due: the receiver may still need it.
//!
//! Due-ness is a pure function of the ledger, the settings and `now_ms`, so tests ask about
//! a future instant instead of waiting for days; the CLI passes the real clock.
//!
//! Depends on the ledger only; [`crate::stats`] takes its retention block from here.

use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use serde::Serialize;

use crate::config::RetentionConfig;
use crate::ledger::{ItemState, Ledger, LedgerError};
use crate::quarantine::fsops;

/// Why an item's time is (or will be) up: the reason its `purge` event records.
pub use crate::ledger::PurgeReason as Reason;

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// Retention counts for the statistics. Items in the store except `purged` (all time).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RetentionStats {
    /// Never exported and past `retention.quarantined_days`.
    pub overdue: u64,
    /// Exported at least once (acknowledged or not).
    pub exported: u64,
    /// Exported and acknowledged by the receiver (`fotovakt ack`): purged `exported_days` later.
    pub acknowledged: u64,
    /// Purged since the store was created (rows and custody log kept, file removed).
    pub purged: u64,
    /// How many days the most overdue item is past its `quarantined_days`.
    pub oldest_overdue_days: Option<f64>,
}

/// One quarantined item whose time is up.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DueItem {
    pub item: i64,
    pub case_id: Option<String>,
    pub sha256: String,
    pub size: u64,
    pub store_name: Option<String>,
    pub reason: Reason,
    /// When its time ran out (ms since the Unix epoch).
    pub due_at_ms: i64,
    pub exported_at_ms: Option<i64>,
    pub acknowledged_at_ms: Option<i64>,
}

/// Everything [`due`] found.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Due {
    /// What `purge` removes now: acknowledged items past `exported_days`, plus overdue
    /// never-exported items if `purge_unexported` is set.
    pub purge: Vec<DueItem>,
    /// Never-exported items past `quarantined_days` (whether or not they will be purged).
    pub overdue: Vec<DueItem>,
    /// Quarantined items with an `export` event.
    pub exported: u64,
    /// Quarantined items whose newest export was acknowledged.
    pub acknowledged: u64,
}

/// Which quarantined items are due at `now_ms` under `cfg`.
pub fn due(ledger: &Ledger, cfg: &RetentionConfig, now_ms: i64) -> Result<Due, LedgerError> {
    let (exported, acked) = ledger.handoff_times()?;
    let mut out = Due::default();
    for item in ledger.items(None)?.into_iter().rev() {
        if item.state != ItemState::Quarantined {
            continue;
        }
        let exported_at = exported.get(&item.id).copied();
        // An acknowledgement counts only for the newest export (a later export needs its own ack).
        let acked_at = acked.get(&item.id).copied().filter(|a| exported_at.is_some_and(|e| *a >= e));
        let entry = |reason, due_at_ms| DueItem {
            item: item.id,
            case_id: item.case_id.clone(),
            sha256: item.sha256.clone(),
            size: item.size,
            store_name: item.store_name.clone(),
            reason,
            due_at_ms,
            exported_at_ms: exported_at,
            acknowledged_at_ms: acked_at,
        };
        if exported_at.is_some() {
            out.exported += 1;
        }
        match (exported_at, acked_at) {
            (Some(_), Some(a)) => {
                out.acknowledged += 1;
                let due_at = a.saturating_add(i64::from(cfg.exported_days) * DAY_MS);
                if now_ms >= due_at {
                    out.purge.push(entry(Reason::Acknowledged, due_at));
                }
            }
            (Some(_), None) => {}
            (None, _) => {
                let since = item.quarantined_at_ms.unwrap_or(item.decided_at_ms);
                let due_at = since.saturating_add(i64::from(cfg.quarantined_days) * DAY_MS);
                if now_ms >= due_at {
                    let e = entry(Reason::Unexported, due_at);
                    if cfg.purge_unexported {
                        out.purge.push(e.clone());
                    }
                    out.overdue.push(e);
                }
            }
        }
    }
    Ok(out)
}

/// The retention block of the statistics at `now_ms`.
pub fn stats(ledger: &Ledger, cfg: &RetentionConfig, now_ms: i64) -> Result<RetentionStats, LedgerError> {
    let d = due(ledger, cfg, now_ms)?;
    let purged = ledger.items(None)?.iter().filter(|i| i.state == ItemState::Purged).count() as u64;
    let oldest = d.overdue.iter().map(|o| o.due_at_ms).min();
    Ok(RetentionStats {
        overdue: d.overdue.len() as u64,
        exported: d.exported,
        acknowledged: d.acknowledged,
        purged,
        oldest_overdue_days: oldest.map(|t| (now_ms - t).max(0) as f64 / DAY_MS as f64),
    })
}

/// Remove a store file as securely as a filesystem allows: overwrite its bytes with zeros,
/// `fsync`, unlink, `fsync` the folder. Returns the bytes overwritten; a file already gone
/// is not an error (an interrupted purge is finished this way).
///
/// On flash storage (FTL wear levelling) and log-structured filesystems such as f2fs the
/// overwrite may land in new blocks and leave the old ones readable to a forensic tool: it
/// is best effort. The real guarantee on Android is file-based encryption: the store lives
/// in credential-encrypted app storage, whose keys are evicted with the user's or the app's
/// data.
pub fn wipe(path: &Path) -> io::Result<u64> {
    let f = match std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NOFOLLOW).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file; left alone"));
    }
    let len = meta.len();
    let zeros = vec![0u8; 1 << 20];
    let mut off = 0u64;
    while off < len {
        let n = (len - off).min(zeros.len() as u64) as usize;
        f.write_all_at(&zeros[..n], off)?;
        off += n as u64;
    }
    f.sync_all()?;
    drop(f);
    std::fs::remove_file(path)?;
    fsops::fsync_parent(path)?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wipe_zeroes_then_removes_and_tolerates_a_missing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f.jpg");
        std::fs::write(&p, vec![0xabu8; 3 << 20]).expect("write");
        // A second name for the same inode shows what the overwrite did before the unlink.
        let witness = dir.path().join("witness");
        std::fs::hard_link(&p, &witness).expect("link");
        assert_eq!(wipe(&p).expect("wipe"), 3 << 20);
        assert!(!p.exists());
        let left = std::fs::read(&witness).expect("read");
        assert_eq!(left.len(), 3 << 20);
        assert!(left.iter().all(|b| *b == 0), "content overwritten with zeros");
        assert_eq!(wipe(&p).expect("gone already"), 0);
    }

    #[test]
    fn wipe_does_not_follow_symlinks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep me").expect("write");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        assert!(wipe(&link).is_err());
        assert_eq!(std::fs::read(&target).expect("read"), b"keep me");
    }
}
