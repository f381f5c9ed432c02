//! The case file: what leaves the store and what is kept about it. Export a case as a
//! package, record the receiver's acknowledgement, purge what retention says is due, verify
//! the store and the ledger's chain, and the statistics and the admin report. Export, ack
//! and purge end with the durability barrier before they return.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tracing::{debug, error, info, warn};

use crate::export::Recipients;
use crate::ledger::{self, Event, Item, ItemState, Ledger, Problem, Problems};
use crate::quarantine::fsops;
use crate::signing::Checkpoint;
use crate::{export, retention, stats};

use super::{Agent, Error, Output, Refusal};

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub events: u64,
    pub files: u64,
    /// Checkpoints checked (`verify --checkpoint`).
    pub checkpoints: usize,
    /// What is worth knowing but not wrong: the ledger anchored again by an officer.
    pub notes: Vec<String>,
    /// What is wrong, typed; `Display` of each is the sentence `verify` prints, and the list
    /// serialises as those sentences.
    pub problems: Problems,
}

/// What `export` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    pub case_id: String,
    pub path: PathBuf,
    pub format: crate::export::PackageFormat,
    /// SHA-256 over the manifest and custody log, as recorded in the ledger's `export` events.
    pub package_sha256: String,
    pub items: Vec<i64>,
    pub bytes: u64,
    /// Fingerprint of the device key that signed it.
    pub signer: Option<String>,
    /// The age recipients an encrypted package is for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// SHA-256 of the encrypted file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed_sha256: Option<String>,
}

/// What `ack` recorded.
#[derive(Debug, Clone, Serialize)]
pub struct AckReport {
    pub case_id: String,
    pub items: Vec<i64>,
}

/// What `purge` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct PurgeReport {
    pub dry_run: bool,
    pub now_ms: i64,
    pub items: Vec<retention::DueItem>,
    /// Bytes overwritten and removed.
    pub bytes: u64,
    /// Store files of items purged by an earlier, interrupted run, removed now.
    pub finished_earlier: u64,
    /// Items marked purged whose file could not be removed (the next `purge` retries).
    pub failures: Vec<String>,
}

impl Agent {
    /// Re-hash every stored file and check the ledger's hash chain and item rows.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        self.verify_with(&[])
    }

    /// [`Agent::verify`], and prove that today's ledger still extends each of `checkpoints`
    /// (signed by a device key the ledger recorded, its event still there with its hash).
    pub fn verify_with(&self, checkpoints: &[Checkpoint]) -> Result<VerifyReport, Error> {
        let ledger = self.ledger();
        let chain = ledger.check_chain()?;
        let (events, mut problems) = (chain.events, chain.problems);
        self.check_checkpoints(&ledger, checkpoints, &mut problems)?;
        let notes = self.anchor_notes(&ledger)?;
        let mut files = 0u64;
        let mut expected = HashSet::new();
        for item in ledger.items(None)? {
            if !matches!(item.state, ItemState::Quarantined | ItemState::OriginalKept) {
                continue;
            }
            let Some(name) = item.store_name.as_deref() else {
                problems.push(Problem::NoStoreFileName { item: item.id });
                continue;
            };
            expected.insert(name.to_string());
            files += 1;
            match fsops::hash_path(&self.store.path_of(name)) {
                Ok(h) if h == item.sha256 => {}
                Ok(_) => problems.push(Problem::StoreFileChanged { item: item.id, name: name.into() }),
                Err(e) => problems.push(Problem::StoreFileUnreadable {
                    item: item.id,
                    name: name.into(),
                    reason: e.to_string(),
                }),
            }
        }
        let on_disk =
            self.store.objects().map_err(Error::io("listing the store", self.store.root().join("objects")))?;
        for (name, _) in on_disk {
            if !expected.contains(&name) {
                problems.push(Problem::UnaccountedStoreFile { name });
            }
        }
        Ok(VerifyReport { events, files, checkpoints: checkpoints.len(), notes, problems })
    }

    /// Statistics, with retention counted against the configured `[retention]` settings.
    pub fn stats(&self, by_case: bool) -> Result<stats::Stats, Error> {
        let mut s = stats::collect_configured(&self.ledger(), &self.store, by_case, &self.config.retention)?;
        s.storage.media_location_access = self.config.media_location_access;
        s.device_key = self.device_key_stats();
        Ok(s)
    }

    /// Statistics as JSON text (the shape documented in the README).
    pub fn stats_json(&self) -> Result<String, Error> {
        let s = self.stats(false)?;
        Ok(serde_json::to_string_pretty(&s).unwrap_or_default())
    }

    /// Refuse a package destination that is not empty, lies in a camera folder, a synced or
    /// media-indexed place (the store's placement rules), or inside the store.
    fn check_export_target(&self, out: &Path) -> Result<(), Error> {
        match std::fs::symlink_metadata(out) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Io { about: "looking at the destination", path: out.to_path_buf(), source })
            }
            Ok(m) if m.is_dir() && std::fs::read_dir(out).map(|mut d| d.next().is_none()).unwrap_or(false) => {}
            Ok(m) if m.is_file() && m.len() == 0 => {}
            Ok(_) => return Err(Refusal::TargetNotEmpty { path: out.to_path_buf() }.into()),
        }
        self.check_private_place(out, Output::Package)
    }

    /// `out` is neither in a camera folder, a synced or media-indexed place, nor the store:
    /// what the agent writes for people (packages, reports) never lands where a sync client
    /// or a gallery would take it.
    fn check_private_place(&self, out: &Path, output: Output) -> Result<(), Error> {
        if let Err(e) = crate::quarantine::placement::check(out, &self.cameras, &self.config.sync_roots) {
            return Err(Refusal::OutputInSyncedPlace {
                output,
                path: out.to_path_buf(),
                reason: e.reason,
                marker: e.marker,
            }
            .into());
        }
        if crate::quarantine::placement::resolve(out).starts_with(self.store.root()) {
            return Err(Refusal::OutputInStore { path: out.to_path_buf() }.into());
        }
        Ok(())
    }

    /// Write the admin report (`report::html` of [`Agent::stats`]) to `out`, never into a
    /// camera folder, a synced or media-indexed place, or the store. Replaces an earlier
    /// report there in one step (written beside it, then renamed).
    pub fn write_report(&self, out: &Path) -> Result<(), Error> {
        self.check_private_place(out, Output::Report)?;
        let html = crate::report::html(&self.stats(false)?);
        let name = out.file_name().ok_or_else(|| Refusal::NotAFileName { path: out.to_path_buf() })?;
        let tmp = out.with_file_name(format!(".{}.fotovakt-partial-{}", name.to_string_lossy(), std::process::id()));
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, html.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, out)
        })();
        written.map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            Error::Io { about: "writing the report", path: out.to_path_buf(), source }
        })
    }

    /// Export a case: its quarantined items' originals, a manifest (JSON and CSV) and their
    /// custody log, as a directory or a `.zip` (by `out`'s extension). Audited: each exported
    /// item gets an `export` event carrying the package digest.
    pub fn export(&self, case: &str, out: &Path, officer: Option<&str>) -> Result<ExportReport, Error> {
        self.export_to(case, out, officer, &Recipients::default())
    }

    /// [`Agent::export`], signed with the device key, and encrypted to `recipients` when there
    /// are any (then `out` must end in `.age`: the package is one encrypted zip).
    pub fn export_to(
        &self,
        case: &str,
        out: &Path,
        officer: Option<&str>,
        recipients: &Recipients,
    ) -> Result<ExportReport, Error> {
        self.durable(self.export_now(case, out, officer, recipients))
    }

    fn export_now(
        &self,
        case: &str,
        out: &Path,
        officer: Option<&str>,
        recipients: &Recipients,
    ) -> Result<ExportReport, Error> {
        let case = case.trim();
        if case.is_empty() {
            return Err(Refusal::CaseIdRequired.into());
        }
        let signer = self.signer()?;
        self.check_export_target(out)?;
        // Under the move lock nothing is released or moved meanwhile.
        let mut custody = self.custody()?;
        let ledger = &mut *custody.ledger;
        let all = ledger.items(Some(case))?;
        if all.is_empty() {
            return Err(Refusal::UnknownCase { case: case.to_string() }.into());
        }
        let mut items: Vec<Item> = all.iter().filter(|i| i.state == ItemState::Quarantined).cloned().collect();
        if items.is_empty() {
            return Err(Refusal::NothingInStore { case: case.to_string(), items: all.len() }.into());
        }
        items.sort_by_key(|i| i.id);
        let mut with_paths = Vec::new();
        for i in &items {
            let name = i.store_name.as_deref().ok_or(Refusal::NoStoreFile { item: i.id })?;
            with_paths.push((i, self.store.path_of(name)));
        }
        let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
        let events = ledger.raw_events_of(&ids)?;
        let input = export::PackageInput {
            case_id: case,
            officer,
            items: with_paths,
            events: &events,
            now_ms: ledger::now_ms(),
            signer: Some(signer),
            recipients,
        };
        let staged = export::stage(out, &input)?;
        let package = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let recorded = ledger.write().and_then(|mut tx| {
            let exported = Event::Exported {
                case_id: case.into(),
                package_sha256: staged.digest.clone(),
                package,
                format: staged.format,
                items: ids.len(),
                officer: officer.map(str::to_string),
                signer: staged.signer.clone(),
                recipients: staged.recipients.clone(),
                sealed_sha256: staged.sealed_sha256.clone(),
            };
            for id in &ids {
                tx.record(Some(*id), &exported)?;
            }
            tx.commit()
        });
        if let Err(e) = recorded {
            staged.discard();
            return Err(e.into());
        }
        if let Err(e) = staged.publish() {
            error!(path = %out.display(), error = %e, "export recorded but the package could not be put in place");
            staged.discard();
            let noted = ledger.write().and_then(|mut tx| {
                let failed = Event::ExportFailed { package_sha256: staged.digest.clone(), reason: e.to_string() };
                for id in &ids {
                    tx.record(Some(*id), &failed)?;
                }
                tx.commit()
            });
            if let Err(e2) = noted {
                error!(error = %e2, "could not record the failed export");
            }
            return Err(e.into());
        }
        info!(case, items = ids.len(), bytes = staged.bytes, path = %out.display(), package_sha256 = %staged.digest, "exported");
        Ok(ExportReport {
            case_id: case.to_string(),
            path: out.to_path_buf(),
            format: staged.format,
            package_sha256: staged.digest.clone(),
            items: ids,
            bytes: staged.bytes,
            signer: staged.signer.clone(),
            recipients: staged.recipients.clone(),
            sealed_sha256: staged.sealed_sha256.clone(),
        })
    }

    /// Record that the receiving case file has the package: every item of the case whose
    /// newest export is not yet acknowledged gets an `ack` event.
    pub fn ack(&self, case: &str, officer: Option<&str>) -> Result<AckReport, Error> {
        self.durable(self.ack_now(case, officer))
    }

    fn ack_now(&self, case: &str, officer: Option<&str>) -> Result<AckReport, Error> {
        let case = case.trim();
        let mut ledger = self.ledger();
        let all = ledger.items(Some(case))?;
        if case.is_empty() || all.is_empty() {
            return Err(Refusal::UnknownCase { case: case.to_string() }.into());
        }
        let (exported, acked) = ledger.handoff_times()?;
        let mut targets: Vec<i64> = all
            .iter()
            .filter(|i| i.state == ItemState::Quarantined)
            .filter(|i| exported.get(&i.id).is_some_and(|e| acked.get(&i.id).is_none_or(|a| a < e)))
            .map(|i| i.id)
            .collect();
        targets.sort_unstable();
        if targets.is_empty() {
            let any_exported = all.iter().any(|i| exported.contains_key(&i.id));
            let case = case.to_string();
            return Err(if any_exported {
                Refusal::AlreadyAcknowledged { case }
            } else {
                Refusal::NotExported { case }
            }
            .into());
        }
        let mut tx = ledger.write()?;
        for id in &targets {
            let ack = Event::Acknowledged {
                case_id: case.into(),
                officer: officer.map(str::to_string),
                exported_at_ms: exported.get(id).copied(),
            };
            tx.record(Some(*id), &ack)?;
        }
        tx.commit()?;
        info!(case, items = targets.len(), "export acknowledged by the receiver");
        Ok(AckReport { case_id: case.to_string(), items: targets })
    }

    /// Warn (log) when never-exported items are past `quarantined_days`. Cheap: one pass over
    /// the items and two grouped queries; the watcher runs it at start and on each reconcile tick.
    pub fn warn_overdue(&self) {
        let due = retention::due(&self.ledger(), &self.config.retention, ledger::now_ms());
        match due {
            Ok(d) if !d.overdue.is_empty() || !d.purge.is_empty() => {
                let oldest = d.overdue.iter().map(|o| o.due_at_ms).min();
                let days = oldest.map(|t| (ledger::now_ms() - t) as f64 / retention::DAY_MS as f64);
                warn!(
                    overdue = d.overdue.len(),
                    oldest_overdue_days = days.unwrap_or(0.0),
                    due_for_purge = d.purge.len(),
                    quarantined_days = self.config.retention.quarantined_days,
                    "retention: items are past their time in the store; export and acknowledge them \
                     (`fotovakt export`, `fotovakt ack`), then `fotovakt purge`"
                );
            }
            Ok(_) => debug!("retention: nothing overdue"),
            Err(e) => warn!(error = %e, "retention check failed"),
        }
    }

    /// Purge what is due now.
    pub fn purge(&self, dry_run: bool, officer: Option<&str>) -> Result<PurgeReport, Error> {
        self.purge_at(ledger::now_ms(), dry_run, officer)
    }

    /// Purge what is due at `now_ms` (the CLI passes the clock; tests a future instant):
    /// each item is marked `purged` with a `purge` event first, then its store file is
    /// overwritten with zeros, fsynced and unlinked ([`retention::wipe`]). The ledger row and
    /// custody log stay. The rows are durable before the first wipe; a run that dies between
    /// the two leaves a purged item whose file is still there, removed at the next start
    /// (recovery) or the next `purge`.
    pub fn purge_at(&self, now_ms: i64, dry_run: bool, officer: Option<&str>) -> Result<PurgeReport, Error> {
        self.durable(self.purge_now(now_ms, dry_run, officer))
    }

    fn purge_now(&self, now_ms: i64, dry_run: bool, officer: Option<&str>) -> Result<PurgeReport, Error> {
        let mut custody = self.custody()?;
        let ledger = &mut *custody.ledger;
        let due = retention::due(ledger, &self.config.retention, now_ms)?;
        let mut report =
            PurgeReport { dry_run, now_ms, items: due.purge, bytes: 0, finished_earlier: 0, failures: Vec::new() };
        if dry_run {
            report.bytes = report.items.iter().map(|d| d.size).sum();
            return Ok(report);
        }
        // Every purge is recorded, and durable, before any file is wiped: a power cut that
        // kept a wipe but lost its row would leave a "quarantined" item whose file is gone,
        // a false tamper alarm (the power-cut campaign's purge finding).
        let mut tx = ledger.write()?;
        for d in &report.items {
            let purged = Event::Purged {
                reason: d.reason,
                sha256: d.sha256.clone(),
                store_name: d.store_name.clone(),
                size: d.size,
                due_at_ms: d.due_at_ms,
                officer: officer.map(str::to_string),
                retention: self.config.retention.clone(),
            };
            tx.set_state(d.item, ItemState::Purged, None)?;
            tx.record(Some(d.item), &purged)?;
        }
        tx.commit()?;
        ledger.sync_log()?;
        for (item, wiped) in self.wipe_purged_files(ledger)? {
            let now = report.items.iter().any(|d| d.item == item);
            match wiped {
                Ok(n) => {
                    report.bytes += n;
                    report.finished_earlier += u64::from(!now);
                    info!(item, bytes = n, earlier = !now, "purged");
                }
                Err((path, e)) => {
                    error!(item, path = %path.display(), error = %e, "purged in the ledger but the file could not be removed; the next purge retries");
                    report.failures.push(format!("item {item}: {}: {e}", path.display()));
                }
            }
        }
        Ok(report)
    }

    /// Wipe the store file of every purged item that still has one: those just marked, and
    /// those of a purge that died (or lost power) between its rows and its wipes. Recovery at
    /// start runs it too, so such a file never outlives the next start.
    pub(super) fn wipe_purged_files(&self, ledger: &Ledger) -> Result<Vec<(i64, WipeResult)>, Error> {
        let mut done = Vec::new();
        for item in ledger.items_in_state(ItemState::Purged)? {
            let Some(name) = item.store_name.as_deref() else { continue };
            let path = self.store.path_of(name);
            if path.symlink_metadata().is_err() {
                continue;
            }
            done.push((item.id, retention::wipe(&path).map_err(|e| (path, e))));
        }
        Ok(done)
    }
}

/// Bytes wiped, or the file that could not be and why.
pub(super) type WipeResult = Result<u64, (PathBuf, std::io::Error)>;
