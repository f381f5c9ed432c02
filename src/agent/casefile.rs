//! The case file: what leaves the store and what is kept about it. Export a case as a
//! package, record the receiver's acknowledgement, purge what retention says is due, and the
//! statistics and the admin report. Export, ack and purge end with the durability barrier
//! before they return.
//!
//! The statistics and the report are [`StoreReader`]'s: they read the ledger read-only. So
//! are export's reads: the case's items and custody log come from one read snapshot and
//! its files are copied and hashed without any lock; only the `export` events are written
//! under the move lock, after a check that the items are still as read.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tracing::{debug, error, info, warn};

use crate::export::Recipients;
use crate::ledger::{self, Event, Item, ItemState, Ledger, RawEvent};
use crate::{export, retention, stats};

use super::{Agent, Error, Output, Refusal, StoreReader};

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
    /// What the privacy pruning that every `purge` runs let go of (nothing on a dry run).
    pub personal: super::PruneReport,
}

impl StoreReader {
    /// Statistics, with retention counted against the configured `[retention]` settings, and
    /// the store's health as any process can read it (free space, mounted read-only).
    pub fn stats(&self, by_case: bool) -> Result<stats::Stats, Error> {
        let mut s = stats::collect_configured(&*self.read()?, &self.store, by_case, &self.config.retention)?;
        s.storage.media_location_access = self.config.media_location_access;
        Ok(s)
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

    /// Write the admin report (`report::html` of [`StoreReader::stats`]) to `out`, never into a
    /// camera folder, a synced or media-indexed place, or the store. Replaces an earlier
    /// report there in one step ([`crate::output`]: written beside it, fsynced, renamed).
    pub fn write_report(&self, out: &Path) -> Result<(), Error> {
        self.check_private_place(out, Output::Report)?;
        if out.file_name().is_none() {
            return Err(Refusal::NotAFileName { path: out.to_path_buf() }.into());
        }
        let html = crate::report::html(&self.stats(false)?);
        crate::output::write_file(out, crate::output::Replace::File, |f| std::io::Write::write_all(f, html.as_bytes()))
            .map_err(Error::from)
    }

    /// What an export reads, in one snapshot: the case's items in the store, oldest first, and
    /// every event of theirs. Refused when the case is unknown or has nothing in the store.
    fn read_case(&self, case: &str) -> Result<CaseRead, Error> {
        let (all, events) = self.read()?.snapshot(|l| {
            let all = l.items(Some(case))?;
            let ids: Vec<i64> = all.iter().filter(|i| i.state == ItemState::Quarantined).map(|i| i.id).collect();
            let events = l.raw_events_of(&ids)?;
            Ok((all, events))
        })?;
        if all.is_empty() {
            return Err(Refusal::UnknownCase { case: case.to_string() }.into());
        }
        let mut items: Vec<Item> = all.iter().filter(|i| i.state == ItemState::Quarantined).cloned().collect();
        if items.is_empty() {
            return Err(Refusal::NothingInStore { case: case.to_string(), items: all.len() }.into());
        }
        items.sort_by_key(|i| i.id);
        if let Some(i) = items.iter().find(|i| i.store_name.is_none()) {
            return Err(Refusal::NoStoreFile { item: i.id }.into());
        }
        Ok(CaseRead { items, events })
    }
}

impl Agent {
    /// [`StoreReader::stats`], with the store's health as this agent sees it: whether its own
    /// last try to store a file failed, and the files that wait for another.
    pub fn stats(&self, by_case: bool) -> Result<stats::Stats, Error> {
        let mut s = StoreReader::stats(self, by_case)?;
        s.health = self.health();
        // The key this agent signs with now (the reader's is the one the ledger recorded last).
        s.device_key = self.device_key_stats();
        Ok(s)
    }

    /// Statistics as JSON text (the shape documented in the README); a failure is an error,
    /// never an empty text.
    pub fn stats_json(&self) -> Result<String, Error> {
        json_text("statistics", &self.stats(false)?)
    }
}

/// How many times export makes a package: again when the case changed while its files were
/// copied (an item released, purged or tagged), the last time under the move lock.
const EXPORT_TRIES: usize = 3;

/// What every try of one export signs and encrypts the package with.
struct Seal<'a> {
    signer: &'a dyn crate::signing::Signer,
    recipients: &'a Recipients,
}

/// A case as export read it.
struct CaseRead {
    items: Vec<Item>,
    events: Vec<RawEvent>,
}

impl CaseRead {
    fn ids(&self) -> Vec<i64> {
        self.items.iter().map(|i| i.id).collect()
    }

    /// Does `l` still say what was read: every item in the store under the same file, and
    /// not one custody event more or different?
    fn still_holds(&self, l: &Ledger) -> Result<bool, Error> {
        for read in &self.items {
            let now = l.item(read.id)?;
            if now.state != ItemState::Quarantined || now.store_name != read.store_name {
                return Ok(false);
            }
        }
        Ok(l.raw_events_of(&self.ids())? == self.events)
    }
}

impl Agent {
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

    /// Export a case: its quarantined items' originals, a manifest (JSON and CSV) and their
    /// custody log, as a directory or a `.zip` (by `out`'s extension). Audited: each exported
    /// item gets an `export` event carrying the package digest.
    ///
    /// The case is read from one read-only snapshot and its files copied without a lock, so a
    /// move in progress (a large video) does not hold the export up; the `export` events are
    /// then written under the move lock, only if the case is still as read. If it changed (an
    /// item released, purged or tagged meanwhile) the package is made again; the last of
    /// [`EXPORT_TRIES`] holds the move lock throughout, so an export always ends.
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
        let seal = Seal { signer: self.signer()?, recipients };
        self.check_export_target(out)?;
        for _ in 1..EXPORT_TRIES {
            let read = self.read_case(case)?;
            let staged = match self.stage_case(case, out, officer, &read, &seal) {
                Ok(staged) => staged,
                // A store file released or purged while it was copied: the case changed.
                Err(e) if !read.still_holds(&*self.read()?)? => {
                    warn!(error = %e, "the case changed while it was exported; exporting it again");
                    debug!(case, "case exported again");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut custody = self.custody()?;
            if read.still_holds(&custody.ledger)? {
                return self.record_export(&mut custody.ledger, case, out, officer, &read, staged);
            }
            staged.discard();
            warn!("the case changed while it was exported; exporting it again");
            debug!(case, "case exported again");
        }
        // The case keeps changing: this try holds the move lock throughout.
        let mut custody = self.custody()?;
        let read = self.read_case(case)?;
        let staged = self.stage_case(case, out, officer, &read, &seal)?;
        self.record_export(&mut custody.ledger, case, out, officer, &read, staged)
    }

    /// Write the package of `read` under a temporary name beside `out`.
    fn stage_case(
        &self,
        case: &str,
        out: &Path,
        officer: Option<&str>,
        read: &CaseRead,
        seal: &Seal<'_>,
    ) -> Result<export::Staged, Error> {
        let items = read.items.iter().map(|i| (i, self.store.path_of(i.store_name.as_deref().unwrap_or_default())));
        let input = export::PackageInput {
            case_id: case,
            officer,
            items: items.collect(),
            events: &read.events,
            now_ms: ledger::now_ms(),
            signer: Some(seal.signer),
            recipients: seal.recipients,
        };
        Ok(export::stage(out, &input)?)
    }

    /// The export's one write, under the move lock (the caller's `ledger`): its `export`
    /// events, in one transaction that commits only once the package is in place.
    fn record_export(
        &self,
        ledger: &mut Ledger,
        case: &str,
        out: &Path,
        officer: Option<&str>,
        read: &CaseRead,
        staged: export::Staged,
    ) -> Result<ExportReport, Error> {
        let ids = read.ids();
        let (format, digest, bytes) = (staged.format, staged.digest.clone(), staged.bytes);
        let (signer, recipients, sealed_sha256) =
            (staged.signer.clone(), staged.recipients.clone(), staged.sealed_sha256.clone());
        let package = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // The `export` events are written in one transaction that commits only once the
        // package is in place (renamed, its folder fsynced): a package that could not be
        // placed leaves no event, and one whose events could not be committed is removed.
        let mut tx = ledger.write()?;
        let exported = Event::Exported {
            case_id: case.into(),
            package_sha256: digest.clone(),
            package,
            format,
            items: ids.len(),
            officer: officer.map(str::to_string),
            signer: signer.clone(),
            recipients: recipients.clone(),
            sealed_sha256: sealed_sha256.clone(),
        };
        for id in &ids {
            tx.record(Some(*id), &exported)?;
        }
        if let Err(e) = staged.publish() {
            error!(error = %e, "the package could not be put in place; export not recorded");
            debug!(path = %out.display(), "export target");
            return Err(e.into());
        }
        if let Err(e) = tx.commit() {
            error!(error = %e, "the export could not be recorded; removing the package");
            remove_placed(out, format);
            return Err(e.into());
        }
        info!(items = ids.len(), bytes, package_sha256 = %digest, "exported");
        debug!(case, path = %out.display(), "exported case");
        Ok(ExportReport {
            case_id: case.to_string(),
            path: out.to_path_buf(),
            format,
            package_sha256: digest,
            items: ids,
            bytes,
            signer,
            recipients,
            sealed_sha256,
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
        info!(items = targets.len(), "export acknowledged by the receiver");
        debug!(case, "acknowledged case");
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
    /// (recovery) or the next `purge`. Then the privacy pruning runs ([`Agent::prune`]).
    pub fn purge_at(&self, now_ms: i64, dry_run: bool, officer: Option<&str>) -> Result<PurgeReport, Error> {
        let purged = self.purge_now(now_ms, dry_run, officer).and_then(|mut report| {
            if !dry_run {
                report.personal = self.prune()?;
            }
            Ok(report)
        });
        self.durable(purged)
    }

    fn purge_now(&self, now_ms: i64, dry_run: bool, officer: Option<&str>) -> Result<PurgeReport, Error> {
        let mut custody = self.custody()?;
        let ledger = &mut *custody.ledger;
        let due = retention::due(ledger, &self.config.retention, now_ms)?;
        let mut report = PurgeReport {
            dry_run,
            now_ms,
            items: due.purge,
            bytes: 0,
            finished_earlier: 0,
            failures: Vec::new(),
            personal: super::PruneReport::default(),
        };
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
                    error!(item, error = %e, "purged in the ledger but the file could not be removed; the next purge retries");
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

/// Remove a package that was put in place but whose export could not be recorded: the phone
/// attests every package that left it, so none may stay without its `export` events.
fn remove_placed(out: &Path, format: export::PackageFormat) {
    let removed = match format {
        export::PackageFormat::Dir => std::fs::remove_dir_all(out),
        export::PackageFormat::Zip | export::PackageFormat::Age => std::fs::remove_file(out),
    };
    match removed.and_then(|()| crate::quarantine::fsops::fsync_dir(crate::output::folder_of(out))) {
        Ok(()) => {}
        Err(e) => {
            error!(error = %e, "could not remove the unrecorded package");
            debug!(path = %out.display(), "unrecorded package");
        }
    }
}

/// Bytes wiped, or the file that could not be and why.
pub(super) type WipeResult = Result<u64, (PathBuf, std::io::Error)>;

/// `value` as pretty JSON, or a typed error naming `what`.
pub(super) fn json_text<T: Serialize>(what: &'static str, value: &T) -> Result<String, Error> {
    serde_json::to_string_pretty(value).map_err(|source| Error::Json { what, source })
}
