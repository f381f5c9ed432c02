//! The app's hand-off folder (`Android/data/no.fotovakt.app/files/handoff`): where a case
//! package waits for the agency's bench to copy it over USB. It is shared storage: on
//! Android 10 an app with legacy storage can read it, and it is not credential-encrypted
//! app storage. So a package stays there only while it is needed:
//!
//! * **Re-export replaces.** A package is written under the case's one name
//!   ([`package_name`]; `NAME.zip.age` when it is encrypted to the managed
//!   `handoff_recipients`, issue 26) in `handoff/.staging/`, and only once the export is
//!   recorded and complete it is renamed over the older package of that case (`rename(2)`
//!   replaces it in one step: a reader sees the old package or the new one, never neither or
//!   half of one). An older package of the other kind (plain after encrypted, or the other way)
//!   is removed right after. An export that fails leaves the older package as it was.
//! * **[`sweep`]** removes every file (plain or encrypted) that is not the newest, not yet
//!   acknowledged package of a
//!   case whose exported items are all still in the store, within `quarantined_days` (the
//!   managed `retention_days`) of its export: so a package leaves on `ack`, when an item of it
//!   is purged or released, and when its retention runs out. The shell sweeps after every
//!   export, acknowledgement and purge, at every start and on every reconcile tick, so a
//!   package never outlives its items' retention even if the app died in between.
//! * Removal overwrites the file with zeros before unlinking it, as a purge does.
//!
//! Folder operations are serialised within the process (one mutex), so a sweep never removes
//! a package an export is still writing.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{BridgeError, BridgeResult, Code};
use crate::agent::{Agent, ExportReport};
use crate::export::Recipients;
use crate::ledger::{Event, ItemState, PackageFormat};
use crate::quarantine::fsops;
use crate::retention::{self, DAY_MS};

/// Where packages are written before they are renamed into place.
pub const STAGING: &str = ".staging";
/// Left alone by the sweep (keeps media scanners out of the folder).
const NOMEDIA: &str = ".nomedia";

static FOLDER: Mutex<()> = Mutex::new(());

/// The one file name of `case`'s package: the case ID itself where it is a plain upper-case
/// file name (`INT-9.zip`), else its safe characters plus 12 hex digits of the SHA-256 of
/// the whole ID, so that two case IDs never share a name, not even on shared storage, which
/// is case-insensitive on Android (`int-9` and `INT-9` are different cases).
pub fn package_name(case: &str) -> String {
    let case = case.trim();
    let safe: String =
        case.chars().take(64).map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    let plain =
        !case.is_empty() && safe == case && !case.starts_with('.') && !case.chars().any(|c| c.is_ascii_lowercase());
    if plain {
        format!("{case}.zip")
    } else {
        // Never a hidden name (nor the staging folder's).
        let safe = safe.strip_prefix('.').map(|rest| format!("_{rest}")).unwrap_or(safe);
        let hash = hex::encode(Sha256::digest(case.as_bytes()));
        format!("{safe}-{}.zip", &hash[..12])
    }
}

/// The file name of `case`'s package in `format`: [`package_name`], plus `.age` when it is
/// encrypted.
fn file_name(case: &str, format: PackageFormat) -> String {
    match format {
        PackageFormat::Age => format!("{}.age", package_name(case)),
        PackageFormat::Dir | PackageFormat::Zip => package_name(case),
    }
}

/// Export `case` into `dir` (encrypted to `recipients` when there are any), replacing its older
/// package there only once the new one is complete and recorded. The report's `path` is where
/// the package now is.
pub fn export(
    agent: &Agent,
    case: &str,
    dir: &Path,
    officer: Option<&str>,
    recipients: &Recipients,
) -> BridgeResult<ExportReport> {
    let _folder = FOLDER.lock().unwrap_or_else(|e| e.into_inner());
    let staging = dir.join(STAGING);
    clear(&staging)?;
    std::fs::create_dir_all(&staging).map_err(io("making the staging folder", &staging))?;
    let (format, other) = match recipients.is_empty() {
        true => (PackageFormat::Zip, PackageFormat::Age),
        false => (PackageFormat::Age, PackageFormat::Zip),
    };
    let name = file_name(case, format);
    let staged = staging.join(&name);
    let mut report = agent.export_to(case, &staged, officer, recipients)?;
    let dest = dir.join(&name);
    if let Err(e) = std::fs::rename(&staged, &dest).and_then(|_| fsops::fsync_parent(&dest)) {
        let _ = retention::wipe(&staged);
        return Err(BridgeError::new(
            Code::Package,
            format!("the package of case {} was written but could not be put in place: {e}", report.case_id),
        ));
    }
    report.path = dest;
    // The case's package of the other kind is outdated now (the sweep would remove it too).
    let outdated = dir.join(file_name(case, other));
    match remove(&outdated) {
        Ok(()) => {
            let _ = fsops::fsync_dir(dir);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(error = %e, "hand-off folder: an outdated package could not be removed yet"),
    }
    Ok(report)
}

/// What [`sweep`] did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    /// Packages still waiting for the bench (newest first by name).
    pub kept: Vec<String>,
    /// Files removed: acknowledged, outdated, out of retention, or not a package of any case.
    pub removed: Vec<String>,
}

/// Remove from `dir` everything but the live packages at `now_ms` (see the module's
/// documentation). A folder that does not exist is an empty one.
pub fn sweep(agent: &Agent, dir: &Path, now_ms: i64) -> BridgeResult<SweepReport> {
    let _folder = FOLDER.lock().unwrap_or_else(|e| e.into_inner());
    let mut report = SweepReport::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(io("listing the hand-off folder", dir)(e)),
    };
    clear(&dir.join(STAGING))?;
    let live = live_packages(agent, now_ms)?;
    let mut failures = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == NOMEDIA || name == STAGING {
            continue;
        }
        if live.contains(&name) {
            report.kept.push(name);
            continue;
        }
        match remove(&entry.path()) {
            Ok(()) => report.removed.push(name),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    report.kept.sort();
    report.removed.sort();
    if !report.removed.is_empty() {
        let _ = fsops::fsync_dir(dir);
    }
    if failures.is_empty() {
        Ok(report)
    } else {
        Err(BridgeError::new(Code::Io, format!("hand-off folder: could not remove {}", failures.join("; "))))
    }
}

/// The names of the packages that may stay at `now_ms`: per case, its newest export, if no
/// acknowledgement came after it, every item it holds is still in the store, and it is younger
/// than `quarantined_days`.
fn live_packages(agent: &Agent, now_ms: i64) -> BridgeResult<HashSet<String>> {
    let ledger = agent.ledger();
    let ledger_err = |e: crate::ledger::LedgerError| BridgeError::new(Code::Ledger, format!("hand-off folder: {e}"));
    let (exported, acked) = ledger.handoff_times().map_err(ledger_err)?;
    let lifetime = i64::from(agent.config().retention.quarantined_days).saturating_mul(DAY_MS);
    // case -> (newest export time, its items' states, acknowledged since, an item of it)
    let mut cases: BTreeMap<String, (i64, Vec<ItemState>, bool, i64)> = BTreeMap::new();
    for item in ledger.items(None).map_err(ledger_err)? {
        let (Some(case), Some(&at)) = (item.case_id.clone(), exported.get(&item.id)) else { continue };
        let acked_since = acked.get(&item.id).is_some_and(|a| *a >= at);
        let entry = cases.entry(case).or_insert((at, Vec::new(), false, item.id));
        if at > entry.0 {
            *entry = (at, Vec::new(), false, item.id);
        }
        if at == entry.0 {
            entry.1.push(item.state);
            entry.2 |= acked_since;
        }
    }
    let mut live = HashSet::new();
    for (case, (at, states, acknowledged, item)) in cases {
        if acknowledged || states.iter().any(|s| *s != ItemState::Quarantined) || now_ms >= at.saturating_add(lifetime)
        {
            continue;
        }
        // The newest export's own format: a plain package and an encrypted one are told apart.
        let format = ledger
            .events_of(item)
            .map_err(ledger_err)?
            .into_iter()
            .rev()
            .find_map(|l| match l.event {
                Event::Exported { format, .. } => Some(format),
                _ => None,
            })
            .unwrap_or(PackageFormat::Zip);
        live.insert(file_name(&case, format));
    }
    Ok(live)
}

/// Remove everything in the staging folder (what an export that died left there).
fn clear(staging: &Path) -> BridgeResult<()> {
    let entries = match std::fs::read_dir(staging) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("listing the staging folder", staging)(e)),
    };
    for entry in entries.flatten() {
        remove(&entry.path()).map_err(io("removing a partial package", &entry.path()))?;
    }
    Ok(())
}

/// Overwrite and unlink a file; remove a folder (a partial folder package) with its contents.
fn remove(path: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            remove(&entry?.path())?;
        }
        std::fs::remove_dir(path)
    } else if meta.is_file() {
        retention::wipe(path).map(|_| ())
    } else {
        std::fs::remove_file(path)
    }
}

fn io<'a>(about: &'a str, path: &'a Path) -> impl Fn(std::io::Error) -> BridgeError + 'a {
    move |e| {
        let path: PathBuf = path.to_path_buf();
        BridgeError::new(Code::Io, format!("{about} {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_are_one_per_case_even_without_letter_case() {
        assert_eq!(package_name("INT-9"), "INT-9.zip");
        assert_eq!(package_name(" CASE-2024-001 "), "CASE-2024-001.zip");
        let cases = ["int-9", "INT-9", "Int-9", "A/B", "A_B", "A B", "../x", ".staging", "", "Ø-1", &"X".repeat(200)];
        let names: Vec<String> = cases.iter().map(|c| package_name(c)).collect();
        let folded: HashSet<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        assert_eq!(folded.len(), cases.len(), "{names:?}");
        for n in &names {
            assert!(n.ends_with(".zip") && !n.starts_with('.') && !n.contains('/') && n.len() <= 100, "{n}");
        }
        assert_eq!(file_name("INT-9", PackageFormat::Age), "INT-9.zip.age");
        assert_eq!(file_name("INT-9", PackageFormat::Zip), "INT-9.zip");
    }
}
