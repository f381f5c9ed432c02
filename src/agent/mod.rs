//! The agent: one object that owns the store, the ledger and the classifier, and runs the
//! pipeline for one file: open (no symlinks) → hash → EXIF → classify → policy → journal →
//! move → record. The watcher, `scan`, the CLI's officer commands and the Android bridge all
//! call the same methods here.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::json;
use tracing::{debug, error, info, warn};

use crate::classify::{self, Assessment, Classifier, ClassifyError};
use crate::config::Config;
use crate::ledger::{self, Direction, Item, ItemState, Ledger, MoveIntent, NewItem};
use crate::media::{self, ExifFacts, MediaKind};
use crate::policy::{self, Action, Evidence, Score, Verdict};
use crate::quarantine::fsops::{self, FileId, OpenError};
use crate::quarantine::{MoveProblem, Moved, Recovered, Store};
use crate::{export, fault, retention, stats};

pub mod browse;
mod error;
pub mod scan;
pub use error::{Error, Output, Refusal};

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeKind {
    /// Moved into the store, verified.
    Quarantined,
    /// Decided not case material, left where it is.
    Kept,
    /// Not considered: not a media name, already decided, or gone before it could be read.
    Skipped,
    /// Bad input (symlink, FIFO, empty, too large, unreadable): left alone, logged, recorded.
    Rejected,
    /// Changed or vanished while being handled: left in place; it will be looked at again.
    Retry,
}

/// The result of handling one file, as printed by `demo`/`scan` and returned to Android.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub path: String,
    pub kind: OutcomeKind,
    pub item: Option<i64>,
    pub sha256: Option<String>,
    pub source: Option<policy::Source>,
    pub case_id: Option<String>,
    pub rule: Option<String>,
    pub score: Option<f32>,
    /// Milliseconds from the start of handling to the verified move (or decision).
    pub handle_ms: f64,
    pub detail: Option<String>,
}

impl Outcome {
    /// The outcome an earlier decision on `item` stands for.
    fn of_item(item: &Item, detail: &str, started: Instant) -> Outcome {
        let kind = match item.state {
            ItemState::Quarantined | ItemState::Moving | ItemState::Purged | ItemState::OriginalKept => {
                OutcomeKind::Quarantined
            }
            ItemState::Kept | ItemState::Released | ItemState::Releasing | ItemState::Held => OutcomeKind::Kept,
            ItemState::Aborted => OutcomeKind::Retry,
        };
        let released = matches!(item.state, ItemState::Released | ItemState::Releasing);
        let (source, rule) = if released {
            (Some(policy::Source::Released), "released by an officer".to_string())
        } else {
            (policy::Source::parse(&item.source), item.rule.clone())
        };
        Outcome {
            path: item.original_path.to_string_lossy().into_owned(),
            kind,
            item: Some(item.id),
            sha256: Some(item.sha256.clone()),
            source,
            case_id: item.case_id.clone(),
            rule: Some(rule),
            score: item.score,
            handle_ms: started.elapsed().as_secs_f64() * 1e3,
            detail: Some(detail.to_string()),
        }
    }

    fn simple(path: &Path, kind: OutcomeKind, detail: impl Into<String>, started: Instant) -> Outcome {
        Outcome {
            path: path.to_string_lossy().into_owned(),
            kind,
            item: None,
            sha256: None,
            source: None,
            case_id: None,
            rule: None,
            score: None,
            handle_ms: started.elapsed().as_secs_f64() * 1e3,
            detail: Some(detail.into()),
        }
    }
}

/// An officer's manual tag carried into the pipeline.
#[derive(Debug, Clone)]
struct Tag<'a> {
    case: &'a str,
    officer: Option<&'a str>,
    note: Option<&'a str>,
}

/// The classifier as loaded at start: ready, or why not.
enum Model {
    Ready(Box<Mutex<Classifier>>),
    Unavailable(String),
}

/// The agent.
pub struct Agent {
    config: Config,
    cameras: Vec<PathBuf>,
    store: Store,
    ledger: Mutex<Ledger>,
    model: Model,
    corrections_seen: Mutex<Option<usize>>,
    rejected: Mutex<HashSet<(PathBuf, i64)>>,
    /// Directories renamed into or out of since the last durability barrier.
    dirty: Mutex<Vec<PathBuf>>,
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub events: u64,
    pub files: u64,
    pub problems: Vec<String>,
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

/// What recovery did at start.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RecoveryReport {
    /// Moves that could not be recovered now (left journaled for the next start).
    pub failed: usize,
    pub adopted: usize,
    pub completed: usize,
    pub rolled_back: usize,
    pub vanished: usize,
    pub temp_files_removed: usize,
}

impl Agent {
    /// Open the store (placement and permission checks), the ledger, recover unfinished
    /// moves, and load the classifier if it is enabled and available.
    pub fn open(config: Config) -> Result<Agent, Error> {
        Agent::open_with(config, true)
    }

    /// Like [`Agent::open`], but without loading the classifier (officer and admin commands
    /// that never decide a new photo).
    pub fn open_without_model(config: Config) -> Result<Agent, Error> {
        Agent::open_with(config, false)
    }

    fn open_with(config: Config, load_model: bool) -> Result<Agent, Error> {
        let store_dir = config.store_dir()?;
        let mut cameras: Vec<PathBuf> = Vec::new();
        // A folder named twice (config and `--camera`) is watched and reconciled once.
        for c in config.cameras.iter().map(|c| crate::quarantine::placement::resolve(c)) {
            if !cameras.contains(&c) {
                cameras.push(c);
            }
        }
        let store = Store::open(&store_dir, &cameras, &config.sync_roots)?;
        let ledger = Ledger::open(&store.ledger_path())?;
        let model = if !load_model {
            Model::Unavailable("not loaded for this command".into())
        } else if !config.classifier.enabled {
            Model::Unavailable("classifier disabled in the config".into())
        } else {
            match Classifier::load(&config.classifier) {
                Ok(c) => Model::Ready(Box::new(Mutex::new(c))),
                Err(e) => {
                    warn!(error = %e, "classifier unavailable; deciding by context, sessions and manual tags only");
                    Model::Unavailable(e.to_string())
                }
            }
        };
        let agent = Agent {
            config,
            cameras,
            store,
            ledger: Mutex::new(ledger),
            model,
            corrections_seen: Mutex::new(None),
            rejected: Mutex::new(HashSet::new()),
            dirty: Mutex::new(Vec::new()),
        };
        if !agent.config.media_location_access {
            warn!(
                "media_location_access is off: the filesystem may alter what is read (Android redacts GPS without \
                 ACCESS_MEDIA_LOCATION), so no photo is moved into the store; each is recorded as held and decided \
                 again once access is granted"
            );
        }
        let report = agent.recover()?;
        if report.completed
            + report.rolled_back
            + report.vanished
            + report.temp_files_removed
            + report.adopted
            + report.failed
            > 0
        {
            info!(?report, "recovered unfinished moves");
        }
        Ok(agent)
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The camera folders, resolved.
    pub fn cameras(&self) -> &[PathBuf] {
        &self.cameras
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Is the classifier loaded? `Err` carries why not.
    pub fn model_status(&self) -> Result<(), &str> {
        match &self.model {
            Model::Ready(_) => Ok(()),
            Model::Unavailable(why) => Err(why),
        }
    }

    /// Lock the ledger for reading (statistics, listing).
    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Complete or roll back moves left by a process that died, and sweep partial copies.
    pub fn recover(&self) -> Result<RecoveryReport, Error> {
        // Lock order everywhere: the ledger mutex, then the cross-process move lock.
        let mut ledger = self.ledger();
        let _lock = self.store.lock_moves()?;
        let mut report = RecoveryReport::default();
        for m in ledger.pending_moves()? {
            let outcome = match self.store.recover(&m) {
                Ok(o) => o,
                Err(e) => {
                    // One file must not stop the agent: the journal row stays for the next start.
                    error!(path = %m.src.display(), item = m.item_id, error = %e, "could not recover this move now; will retry at the next start");
                    report.failed += 1;
                    continue;
                }
            };
            let mut tx = ledger.write()?;
            match (m.direction, outcome) {
                (Direction::In, Recovered::SourceKept) => {
                    let name = self.store_name_of(&m.dst);
                    error!(path = %m.src.display(), item = m.item_id, "verified in the store but the original cannot be deleted; it stays where it is and reconcile retries");
                    tx.set_state(m.item_id, ItemState::OriginalKept, Some(&name))?;
                    tx.append(
                        "original_kept",
                        Some(m.item_id),
                        json!({"state": "copied_original_kept", "sha256": m.sha256, "store_name": name,
                               "reason": "original could not be deleted", "recovered": true}),
                    )?;
                    report.completed += 1;
                }
                (Direction::Out, Recovered::SourceKept) => {
                    warn!(item = m.item_id, path = %m.src.display(), "released, but its store file could not be removed");
                    tx.set_state(m.item_id, ItemState::Released, None)?;
                    tx.append(
                        "released",
                        Some(m.item_id),
                        json!({"state": "released", "path": m.dst.to_string_lossy(), "recovered": true, "store_file_kept": true}),
                    )?;
                    report.completed += 1;
                }
                (Direction::In, Recovered::Completed) => {
                    let name = self.store_name_of(&m.dst);
                    tx.set_state(m.item_id, ItemState::Quarantined, Some(&name))?;
                    tx.append(
                        "quarantined",
                        Some(m.item_id),
                        json!({"state": "quarantined", "sha256": m.sha256, "store_name": name, "recovered": true}),
                    )?;
                    report.completed += 1;
                }
                (Direction::Out, Recovered::Completed) => {
                    tx.set_state(m.item_id, ItemState::Released, None)?;
                    tx.append(
                        "released",
                        Some(m.item_id),
                        json!({"state": "released", "path": m.dst.to_string_lossy(), "recovered": true}),
                    )?;
                    report.completed += 1;
                }
                (Direction::In, Recovered::RolledBack) => {
                    tx.set_state(m.item_id, ItemState::Aborted, None)?;
                    tx.append("move_rolled_back", Some(m.item_id), json!({"state": "aborted", "recovered": true}))?;
                    report.rolled_back += 1;
                }
                (Direction::Out, Recovered::RolledBack) => {
                    tx.set_state(m.item_id, ItemState::Quarantined, None)?;
                    tx.append(
                        "release_rolled_back",
                        Some(m.item_id),
                        json!({"state": "quarantined", "recovered": true}),
                    )?;
                    report.rolled_back += 1;
                }
                (_, Recovered::Vanished) => {
                    error!(path = %m.src.display(), item = m.item_id, "file was deleted by someone else before its move began");
                    tx.set_state(m.item_id, ItemState::Aborted, None)?;
                    tx.append("vanished", Some(m.item_id), json!({"state": "aborted", "recovered": true}))?;
                    report.vanished += 1;
                }
            }
            tx.finish_move(m.id)?;
            tx.commit()?;
        }
        report.adopted = self.adopt_orphans(&mut ledger)?;
        report.temp_files_removed =
            self.store.sweep_tmp().map_err(Error::io("sweeping partial copies", self.store.root().join("tmp")))?;
        Ok(report)
    }

    /// Durability barrier: fsync the directories of recent moves and the ledger's WAL, so
    /// everything decided so far survives power loss. The watcher runs it whenever its queue
    /// drains; one-shot commands run it before they exit.
    pub fn flush(&self) -> Result<(), Error> {
        let mut dirs = std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|p| p.into_inner()));
        dirs.sort();
        dirs.dedup();
        for d in &dirs {
            match fsops::fsync_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(Error::Io { about: "syncing a folder", path: d.clone(), source }),
            }
        }
        self.ledger().sync()?;
        Ok(())
    }

    /// Store files no ledger row accounts for: a power loss kept the rename but lost the
    /// ledger's last rows. The name carries the SHA-256, so each is verified and adopted as
    /// a quarantined item whose original path is unknown; one that does not verify is left
    /// for `verify` to report.
    fn adopt_orphans(&self, ledger: &mut Ledger) -> Result<usize, Error> {
        let known = ledger.known_store_names()?;
        let pending: HashSet<String> = ledger.pending_moves()?.iter().map(|m| self.store_name_of(&m.dst)).collect();
        let on_disk =
            self.store.objects().map_err(Error::io("listing the store", self.store.root().join("objects")))?;
        let mut adopted = 0;
        for (name, size) in on_disk {
            if known.contains(&name) || pending.contains(&name) {
                continue;
            }
            let Some((sha, _)) = Store::parse_object_name(&name) else { continue };
            match fsops::hash_path(&self.store.path_of(&name)) {
                Ok(h) if h == sha => {}
                _ => continue,
            }
            let unknown = PathBuf::from("(unknown: ledger rows lost in a power failure)");
            let mut tx = ledger.write()?;
            let now = tx.now();
            let item = tx.insert_item(&NewItem {
                sha256: &sha,
                size,
                original_path: &unknown,
                kind: "unknown",
                capture_time: None,
                gps: None,
                file_mtime_ns: None,
                first_seen_ms: now,
                state: ItemState::Moving,
                action: "quarantine",
                source: "recovered",
                rule: "store file adopted at recovery",
                score: None,
                case_id: None,
                officer: None,
                tags: &[],
                embedding: None,
            })?;
            tx.set_state(item, ItemState::Quarantined, Some(&name))?;
            tx.append(
                "adopted",
                Some(item),
                json!({"state": "quarantined", "sha256": sha, "store_name": name, "size": size}),
            )?;
            tx.commit()?;
            warn!(store_name = %name, item, "adopted a verified store file the ledger had lost");
            adopted += 1;
        }
        Ok(adopted)
    }

    fn store_name_of(&self, dst: &Path) -> String {
        dst.strip_prefix(self.store.root()).unwrap_or(dst).to_string_lossy().into_owned()
    }

    /// Is `path` inside one of the camera folders?
    pub fn in_camera_folder(&self, path: &Path) -> bool {
        let resolved = crate::quarantine::placement::resolve(path.parent().unwrap_or(path));
        self.cameras.iter().any(|c| resolved.starts_with(c))
    }

    /// Handle one new file in a camera folder: the whole pipeline.
    pub fn on_media(&self, path: &Path) -> Outcome {
        self.intake(path, None, None)
    }

    /// Like [`Agent::on_media`] for a video whose keyframe (JPEG bytes, extracted by the
    /// Android shell) the classifier may judge when context does not decide.
    pub fn on_media_with_keyframe(&self, path: &Path, keyframe: &[u8]) -> Outcome {
        self.intake(path, None, Some(keyframe))
    }

    fn intake(&self, path: &Path, tag: Option<Tag<'_>>, keyframe: Option<&[u8]>) -> Outcome {
        let started = Instant::now();
        let first_seen = ledger::now_ms();
        match path.file_name() {
            Some(name) if media::is_candidate_name(name) => {}
            _ => return Outcome::simple(path, OutcomeKind::Skipped, "not a media file name", started),
        }
        // 1. Open without following symlinks; identity from the descriptor.
        let (file, id) = match fsops::open_regular(path) {
            Ok(x) => x,
            Err(OpenError::Vanished) => {
                // Another handler (the watcher, the MediaStore observer) may have just moved it.
                let recent = self.ledger().latest_item_for_path(path, None).ok().flatten().filter(|i| {
                    i.state == ItemState::Quarantined
                        && i.quarantined_at_ms.is_some_and(|q| ledger::now_ms() - q < 10 * 60 * 1000)
                });
                if let Some(item) = recent {
                    return Outcome::of_item(&item, "already quarantined by another handler", started);
                }
                debug!(path = %path.display(), "gone before it could be read");
                return Outcome::simple(path, OutcomeKind::Skipped, "no longer there", started);
            }
            Err(e) => return self.reject(path, &e.to_string(), started),
        };
        if tag.is_none() {
            // Bind first: a guard temporary in the match head would live through the arms.
            let settled = self.ledger().is_settled_with(path, id.size, id.mtime_ns, self.held());
            match settled {
                Ok(true) => return self.earlier_outcome(path, &id, started),
                Ok(false) => {}
                Err(e) => return self.failed(path, e.into(), started),
            }
        }
        if fsops::open_for_writing(&file) == Some(true) {
            debug!(path = %path.display(), "still open for writing; will look again");
            return Outcome::simple(path, OutcomeKind::Retry, "still open for writing", started);
        }
        if id.size == 0 {
            return self.reject_id(path, "empty file (0 bytes)", &id, started);
        }
        if id.size > self.config.max_file_bytes {
            return self.reject_id(
                path,
                &format!("{} bytes is over max_file_bytes ({})", id.size, self.config.max_file_bytes),
                &id,
                started,
            );
        }
        // 2. Hash before anything reads the bytes for a decision; keep image bytes so the
        //    classifier sees exactly what was hashed.
        let (sha256, read, bytes) = match fsops::hash_fd(&file, Some(self.config.max_image_bytes)) {
            Ok(x) => x,
            Err(e) => return self.reject_id(path, &format!("unreadable: {e}"), &id, started),
        };
        let now = file.metadata().map(|m| FileId::of(&m));
        if read != id.size || !matches!(&now, Ok(n) if n.same_content_as(&id)) {
            info!(path = %path.display(), "file changed while it was hashed; will look again");
            return Outcome::simple(path, OutcomeKind::Retry, "still being written", started);
        }
        // 3. What it is, and its EXIF facts.
        let head = match &bytes {
            Some(b) => b[..b.len().min(64)].to_vec(),
            None => fsops::read_head(&file, 64).unwrap_or_default(),
        };
        let kind = MediaKind::sniff(&head);
        let exif = match (&bytes, kind) {
            (Some(b), MediaKind::Jpeg | MediaKind::Tiff | MediaKind::Png | MediaKind::Webp | MediaKind::Heif) => {
                ExifFacts::parse(b)
            }
            _ => ExifFacts::default(),
        };
        // 4. Decide from context first: a tag, a release, a session or a work site settles it
        //    without the model, so the classifier only runs when the verdict depends on it.
        let shot_at = exif.capture_time.or_else(|| local_time(id.mtime_ns));
        let shot_ms = id.mtime_ns / 1_000_000;
        let lookups = {
            let ledger = self.ledger();
            ledger
                .was_released(&sha256)
                .and_then(|r| Ok((r, ledger.sessions_overlapping(shot_ms.min(first_seen), shot_ms.max(first_seen))?)))
        };
        let (released_before, sessions) = match lookups {
            Ok(x) => x,
            Err(e) => return self.failed(path, e.into(), started),
        };
        let session = sessions.iter().find(|s| s.covers(shot_ms) || s.covers(first_seen));
        let context = Evidence {
            manual_case: tag.as_ref().map(|t| t.case),
            released_before,
            session,
            shot_at,
            gps: exif.gps,
            score: None,
            unscored_because: None,
        };
        let ctx = policy::Context {
            policy: &self.config.policy,
            duty: &self.config.duty,
            work_sites: &self.config.work_sites,
        };
        let mut verdict = policy::decide(&context, &ctx);
        // 5. Classify (images, or a video's keyframe from the Android shell).
        // An officer's tag still runs the model: its embedding is what the classifier learns from.
        let (assessment, unscored) = if verdict.source.needs_no_score() && tag.is_none() {
            (None, None)
        } else {
            // Videos and HEIC/HEIF/AVIF: a frame the platform decoded (handed in, or asked
            // for now, after the hash), judged as a JPEG; see `crate::frames`.
            let asked = match keyframe {
                None if crate::frames::needs_platform_frame(kind) && matches!(self.model, Model::Ready(_)) => {
                    crate::frames::fetch(path, kind)
                }
                _ => None,
            };
            match keyframe.or(asked.as_deref()) {
                Some(frame) if crate::frames::needs_platform_frame(kind) => {
                    self.assess(path, MediaKind::Jpeg, Some(frame), None)
                }
                _ => self.assess(path, kind, bytes.as_deref(), Some(&exif)),
            }
        };
        drop(bytes);
        if assessment.is_some() || unscored.is_some() {
            let scored = Evidence {
                score: assessment.as_ref().map(|a| Score { case_score: a.case_score, threshold: a.threshold }),
                unscored_because: unscored.as_deref(),
                ..context
            };
            verdict = policy::decide(&scored, &ctx);
        }
        let facts =
            Facts { path, id: &id, sha256: &sha256, kind, exif: &exif, first_seen, assessment: assessment.as_ref() };
        let mut ledger = self.ledger();
        let result = self.record_and_move(&mut ledger, &facts, &verdict, tag.as_ref(), &file);
        drop(ledger);
        match result {
            Ok(None) => self.earlier_outcome(path, &id, started),
            Ok(Some((item, kind_done, detail))) => {
                let outcome = Outcome {
                    path: path.to_string_lossy().into_owned(),
                    kind: kind_done,
                    item: Some(item),
                    sha256: Some(sha256),
                    source: Some(verdict.source),
                    case_id: verdict.case_id.clone(),
                    rule: Some(verdict.rule.clone()),
                    score: assessment.as_ref().map(|a| a.case_score),
                    handle_ms: started.elapsed().as_secs_f64() * 1e3,
                    detail,
                };
                info!(
                    path = %path.display(),
                    item,
                    outcome = ?outcome.kind,
                    source = verdict.source.as_str(),
                    rule = %verdict.rule,
                    ms = outcome.handle_ms,
                    "decided"
                );
                outcome
            }
            Err(e) => self.failed(path, e, started),
        }
    }

    /// The outcome of a file another handler (or an earlier pass) already decided, so that
    /// `on_media` answers the same whoever got there first.
    fn earlier_outcome(&self, path: &Path, id: &FileId, started: Instant) -> Outcome {
        match self.ledger().latest_item_for_path(path, Some(id.mtime_ns)) {
            Ok(Some(item)) => Outcome::of_item(&item, "already decided", started),
            _ => Outcome::simple(path, OutcomeKind::Skipped, "handled elsewhere meanwhile", started),
        }
    }

    /// `exif`: the facts intake parsed from these very bytes (their thumbnail range is used).
    fn assess(
        &self,
        path: &Path,
        kind: MediaKind,
        bytes: Option<&[u8]>,
        exif: Option<&ExifFacts>,
    ) -> (Option<Assessment>, Option<String>) {
        let classifier = match &self.model {
            Model::Ready(c) => c,
            Model::Unavailable(why) => return (None, Some(format!("no classifier ({why})"))),
        };
        if kind == MediaKind::Video {
            return (None, Some("video: no decoder on this device; decided by context".into()));
        }
        if kind == MediaKind::Heif {
            info!(path = %path.display(), "HEIC/HEIF cannot be decoded here; decided by context");
            return (None, Some("HEIC/HEIF is not decodable here".into()));
        }
        if !kind.is_decodable_image() {
            return (None, Some(format!("content is not a known image format ({})", kind.as_str())));
        }
        let Some(bytes) = bytes else {
            return (None, Some("image larger than max_image_bytes; not decoded".into()));
        };
        let mut c = classifier.lock().unwrap_or_else(|p| p.into_inner());
        self.refresh_corrections(&mut c);
        match c.assess_with(bytes, exif) {
            Ok(a) => (Some(a), None),
            Err(e) => {
                warn!(path = %path.display(), error = %e, "classifier could not judge this file");
                (
                    None,
                    Some(match e {
                        ClassifyError::Decode(m) => format!("corrupt or undecodable image: {m}"),
                        other => other.to_string(),
                    }),
                )
            }
        }
    }

    /// Replay officers' corrections into the classifier when they changed.
    fn refresh_corrections(&self, c: &mut Classifier) {
        // Count first: the embeddings are loaded only when an officer added a correction.
        let mut seen = self.corrections_seen.lock().unwrap_or_else(|p| p.into_inner());
        let count = self.ledger().correction_count();
        match count {
            Ok(n) if *seen == Some(n) => return,
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, "cannot read corrections");
                return;
            }
        }
        let corrections = self.ledger().corrections();
        match corrections {
            Ok(v) => {
                let list: Vec<classify::Correction> =
                    v.into_iter().map(|(embedding, case)| classify::Correction { embedding, case }).collect();
                c.set_corrections(&list);
                *seen = Some(list.len());
            }
            Err(e) => warn!(error = %e, "cannot read corrections"),
        }
    }

    fn record_and_move(
        &self,
        ledger: &mut Ledger,
        f: &Facts<'_>,
        verdict: &Verdict,
        tag: Option<&Tag<'_>>,
        file: &std::fs::File,
    ) -> Result<Option<(i64, OutcomeKind, Option<String>)>, Error> {
        let quarantine = verdict.action == Action::Quarantine;
        fault::point("before_lock");
        // Under the move lock (across processes) nobody else is deciding or moving: if the
        // path no longer names the file we hashed, or another handler (the watcher and the
        // Android MediaStore observer can both see one file) settled it meanwhile, step back.
        let _lock = self.store.lock_moves()?;
        let still_there = fsops::lstat_id(f.path).is_ok_and(|now| now.same_content_as(f.id));
        if !still_there || (tag.is_none() && ledger.is_settled_with(f.path, f.id.size, f.id.mtime_ns, self.held())?) {
            return Ok(None);
        }
        let tags: Vec<String> = tag.and_then(|t| t.note).map(|n| vec![n.to_string()]).unwrap_or_default();
        // Without media-location access the bytes read may be altered: decide nothing final.
        let held = self.held();
        let state = if held {
            ItemState::Held
        } else if quarantine {
            ItemState::Moving
        } else {
            ItemState::Kept
        };
        // An officer tagging a photo the agent kept: the same item is decided again, so its
        // custody log runs from its first intake and it is counted once. Likewise a file held
        // while media-location access was off, decided now on the bytes as they are.
        let earlier = ledger.latest_item_for_path(f.path, Some(f.id.mtime_ns))?.filter(|i| {
            i.size == f.id.size
                && match i.state {
                    ItemState::Kept => tag.is_some() && i.sha256 == f.sha256,
                    ItemState::Held => true,
                    _ => false,
                }
        });
        let mut tx = ledger.write()?;
        let item = if let Some(earlier) = earlier {
            if earlier.sha256 != f.sha256 {
                tx.set_sha256(earlier.id, f.sha256)?;
                tx.append(
                    "rehashed",
                    Some(earlier.id),
                    json!({"sha256": f.sha256, "previous_sha256": earlier.sha256,
                           "reason": "read again with media-location access; the earlier read was altered"}),
                )?;
            }
            tx.redecide_item(
                earlier.id,
                state,
                verdict.action.as_str(),
                verdict.source.as_str(),
                &verdict.rule,
                verdict.case_id.as_deref(),
                tag.and_then(|t| t.officer),
                &tags,
            )?;
            earlier.id
        } else {
            let item = tx.insert_item(&NewItem {
                sha256: f.sha256,
                size: f.id.size,
                original_path: f.path,
                kind: f.kind.as_str(),
                capture_time: f.exif.capture_time.map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string()),
                gps: f.exif.gps,
                file_mtime_ns: Some(f.id.mtime_ns),
                first_seen_ms: f.first_seen,
                state,
                action: verdict.action.as_str(),
                source: verdict.source.as_str(),
                rule: &verdict.rule,
                score: f.assessment.map(|a| a.case_score),
                case_id: verdict.case_id.as_deref(),
                officer: tag.and_then(|t| t.officer),
                tags: &tags,
                embedding: f.assessment.map(|a| a.embedding.as_slice()).filter(|e| !e.is_empty()),
            })?;
            tx.append(
                "intake",
                Some(item),
                json!({"sha256": f.sha256, "size": f.id.size, "kind": f.kind.as_str(), "path": f.path.to_string_lossy(),
                       "mtime_ns": f.id.mtime_ns, "first_seen_ms": f.first_seen}),
            )?;
            item
        };
        tx.append(
            "decided",
            Some(item),
            json!({"state": state.as_str(), "action": verdict.action.as_str(), "source": verdict.source.as_str(),
                   "rule": verdict.rule, "case_id": verdict.case_id, "score": f.assessment.map(|a| a.case_score)}),
        )?;
        if let Some(t) = tag {
            tx.append("tagged", Some(item), json!({"case_id": t.case, "officer": t.officer, "note": t.note}))?;
            if let Some(a) = f.assessment.filter(|a| !a.embedding.is_empty()) {
                tx.add_correction(item, true, &a.embedding)?;
            }
        }
        if held {
            let reason = "media_location_access is off: the filesystem may have altered the bytes read (GPS \
                          redaction), so nothing is stored or deleted on their strength; decided again once access is back";
            tx.append(
                "held",
                Some(item),
                json!({"state": "held", "would": verdict.action.as_str(), "reason": reason}),
            )?;
            tx.commit()?;
            info!(path = %f.path.display(), item, would = verdict.action.as_str(), "held: no media-location access; original left untouched");
            return Ok(Some((item, OutcomeKind::Kept, Some(format!("held, not moved: {reason}")))));
        }
        if !quarantine {
            tx.commit()?;
            return Ok(Some((item, OutcomeKind::Kept, None)));
        }
        fault::point("before_journal");
        let (mut intent, name) = self.store.plan_in(item, f.path, f.sha256, f.id.size);
        intent.id = tx.journal_move(&intent)?;
        tx.commit()?;
        fault::point("after_journal");
        let moved = self.store.execute(&intent, file, f.id, &mut self.dirty.lock().unwrap_or_else(|p| p.into_inner()));
        fault::point("before_commit");
        let mut tx = ledger.write()?;
        let result = match moved {
            Ok(Moved::SourceKept(e)) => {
                let reason = format!("original could not be deleted: {e}");
                error!(path = %f.path.display(), item, error = %e, "verified in the store, but the original cannot be deleted; it stays where it is (sync can still see it) and reconcile retries");
                tx.set_state(item, ItemState::OriginalKept, Some(&name))?;
                let exposure = tx.now() - (f.id.mtime_ns / 1_000_000).min(f.first_seen);
                tx.append(
                    "original_kept",
                    Some(item),
                    json!({"state": "copied_original_kept", "sha256": f.sha256, "store_name": name,
                           "exposure_ms": exposure, "reason": reason}),
                )?;
                Ok(Some((item, OutcomeKind::Quarantined, Some(format!("copied to the store; {reason}")))))
            }
            Ok(Moved::Done) => {
                tx.set_state(item, ItemState::Quarantined, Some(&name))?;
                let exposure = tx.now() - (f.id.mtime_ns / 1_000_000).min(f.first_seen);
                tx.append(
                    "quarantined",
                    Some(item),
                    json!({"state": "quarantined", "sha256": f.sha256, "store_name": name, "exposure_ms": exposure}),
                )?;
                Ok(Some((item, OutcomeKind::Quarantined, None)))
            }
            Err(e) if e.rolled_back => {
                warn!(path = %f.path.display(), item, error = %e, "move did not happen; the file stays where it is");
                tx.set_state(item, ItemState::Aborted, None)?;
                tx.append("move_aborted", Some(item), json!({"state": "aborted", "reason": e.what.to_string()}))?;
                // Gone (deleted or moved by someone else): nothing to retry. Changed: look again.
                let kind = match e.what {
                    MoveProblem::Vanished => OutcomeKind::Skipped,
                    _ => OutcomeKind::Retry,
                };
                Ok(Some((item, kind, Some(e.what.to_string()))))
            }
            Err(e) => {
                // Could not even undo cleanly: leave the journal row and let recovery decide now.
                drop(tx);
                error!(path = %f.path.display(), item, error = %e, "move failed midway; recovering");
                let r = self.store.recover(&intent).map_err(Error::io("recovering a failed move", f.path))?;
                let mut tx = ledger.write()?;
                let outcome = match r {
                    Recovered::SourceKept => {
                        tx.set_state(item, ItemState::OriginalKept, Some(&name))?;
                        tx.append(
                            "original_kept",
                            Some(item),
                            json!({"state": "copied_original_kept", "sha256": f.sha256, "store_name": name,
                                   "reason": e.to_string(), "recovered": true}),
                        )?;
                        (item, OutcomeKind::Quarantined, Some(e.to_string()))
                    }
                    Recovered::Completed => {
                        tx.set_state(item, ItemState::Quarantined, Some(&name))?;
                        tx.append(
                            "quarantined",
                            Some(item),
                            json!({"state": "quarantined", "sha256": f.sha256, "store_name": name, "recovered": true}),
                        )?;
                        (item, OutcomeKind::Quarantined, Some(e.to_string()))
                    }
                    _ => {
                        tx.set_state(item, ItemState::Aborted, None)?;
                        tx.append(
                            "move_rolled_back",
                            Some(item),
                            json!({"state": "aborted", "reason": e.to_string()}),
                        )?;
                        (item, OutcomeKind::Retry, Some(e.to_string()))
                    }
                };
                tx.finish_move(intent.id)?;
                tx.commit()?;
                return Ok(Some(outcome));
            }
        };
        tx.finish_move(intent.id)?;
        tx.commit()?;
        fault::point("after_commit");
        result
    }

    fn reject(&self, path: &Path, reason: &str, started: Instant) -> Outcome {
        let key = std::fs::symlink_metadata(path).map(|m| FileId::of(&m).mtime_ns).unwrap_or(0);
        self.reject_key(path, reason, key, started)
    }

    fn reject_id(&self, path: &Path, reason: &str, id: &FileId, started: Instant) -> Outcome {
        self.reject_key(path, reason, id.mtime_ns ^ id.size as i64, started)
    }

    /// Bad input: one log line and one ledger event per file version; the agent goes on.
    fn reject_key(&self, path: &Path, reason: &str, key: i64, started: Instant) -> Outcome {
        let fresh = self.rejected.lock().unwrap_or_else(|p| p.into_inner()).insert((path.to_path_buf(), key));
        if fresh {
            warn!(path = %path.display(), reason, "rejected; left where it is");
            let mut ledger = self.ledger();
            // One event per file version across restarts too (a later scan sees the same file).
            let data = json!({"path": path.to_string_lossy(), "reason": reason, "key": key});
            let text = data.to_string();
            let seen: rusqlite::Result<bool> = ledger.conn().query_row(
                "SELECT EXISTS(SELECT 1 FROM events WHERE kind = 'rejected' AND item_id IS NULL AND data = ?1)",
                [&text],
                |r| r.get(0),
            );
            if seen.unwrap_or(false) {
                return Outcome::simple(path, OutcomeKind::Rejected, reason, started);
            }
            let recorded = ledger.write().and_then(|mut tx| {
                tx.append("rejected", None, data)?;
                tx.commit()
            });
            if let Err(e) = recorded {
                error!(path = %path.display(), error = %e, "could not record the rejection");
            }
        }
        Outcome::simple(path, OutcomeKind::Rejected, reason, started)
    }

    fn failed(&self, path: &Path, e: Error, started: Instant) -> Outcome {
        error!(path = %path.display(), error = %e, "could not handle file; it stays where it is");
        Outcome::simple(path, OutcomeKind::Retry, e.to_string(), started)
    }

    /// Files in the camera folders that the ledger has not settled, older than `min_age`.
    ///
    /// Every caller is a reconcile pass (`scan`, the watcher's start, rescan and timer, the
    /// Android tick), so the deletes of `copied_original_kept` originals are retried here first.
    pub fn pending_files(&self, min_age: Duration) -> Result<Vec<PathBuf>, Error> {
        self.retry_kept_originals();
        let mut out = Vec::new();
        let now = SystemTime::now();
        for cam in &self.cameras {
            let entries = match std::fs::read_dir(cam) {
                Ok(e) => e,
                Err(e) => {
                    warn!(folder = %cam.display(), error = %e, "cannot read camera folder");
                    continue;
                }
            };
            let ledger = self.ledger();
            for entry in entries.flatten() {
                let name = entry.file_name();
                if !media::is_candidate_name(&name) {
                    continue;
                }
                let path = entry.path();
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_file() {
                    let id = FileId::of(&meta);
                    let age = meta.modified().ok().and_then(|m| now.duration_since(m).ok()).unwrap_or_default();
                    if age < min_age || ledger.is_settled_with(&path, id.size, id.mtime_ns, self.held())? {
                        continue;
                    }
                } else if self
                    .rejected
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(&(path.clone(), FileId::of(&meta).mtime_ns))
                {
                    continue;
                }
                out.push(path);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Is the agent holding every photo (no media-location access, so reads may be altered)?
    fn held(&self) -> bool {
        !self.config.media_location_access
    }

    /// Retry deleting the originals of `copied_original_kept` items. The original is deleted
    /// only while its path still holds the very bytes that are verified in the store. Each item
    /// that leaves the state gets an `original_removed` event; failures stay quiet (debug) until
    /// the next pass, since the state itself is what officers and admins are shown.
    pub fn retry_kept_originals(&self) -> usize {
        if self.held() {
            // The bytes read may be redacted: they could not be compared with the stored copy.
            return 0;
        }
        let items = match self.ledger().items(None) {
            Ok(v) => v.into_iter().filter(|i| i.state == ItemState::OriginalKept).collect::<Vec<_>>(),
            Err(e) => {
                warn!(error = %e, "cannot list items whose original was kept");
                return 0;
            }
        };
        let mut done = 0;
        for item in items {
            let r = (|| -> Result<Option<&'static str>, Error> {
                let mut ledger = self.ledger();
                let _lock = self.store.lock_moves()?;
                let path = &item.original_path;
                let how = match fsops::open_regular(path) {
                    Err(OpenError::Vanished) => "deleted by someone else",
                    Err(e) => return Err(Error::Open { path: path.clone(), source: e }),
                    Ok((file, id)) => {
                        let (sha, _, _) =
                            fsops::hash_fd(&file, None).map_err(Error::io("hashing a kept original", path))?;
                        let still = fsops::lstat_id(path).is_ok_and(|now| now.same_content_as(&id));
                        if sha != item.sha256 || !still {
                            // Another file has the name now: ours is only in the store; theirs stays.
                            "replaced by another file"
                        } else {
                            match std::fs::remove_file(path) {
                                Ok(()) => {
                                    let _ = fsops::fsync_parent(path);
                                    "deleted on retry"
                                }
                                Err(e) => {
                                    debug!(item = item.id, path = %path.display(), error = %e, "original still cannot be deleted");
                                    return Ok(None);
                                }
                            }
                        }
                    }
                };
                let mut tx = ledger.write()?;
                tx.set_state(item.id, ItemState::Quarantined, None)?;
                tx.append("original_removed", Some(item.id), json!({"state": "quarantined", "how": how}))?;
                tx.commit()?;
                Ok(Some(how))
            })();
            match r {
                Ok(Some(how)) => {
                    info!(item = item.id, how, "original of a stored item is gone now; item is quarantined");
                    done += 1;
                }
                Ok(None) => {}
                Err(e) => debug!(item = item.id, error = %e, "retrying the delete of a kept original failed"),
            }
        }
        done
    }

    /// One reconcile pass: handle every unsettled file in the camera folders.
    pub fn reconcile(&self, min_age: Duration) -> Result<Vec<Outcome>, Error> {
        let files = self.pending_files(min_age)?;
        if !files.is_empty() {
            info!(files = files.len(), "reconcile: files not yet decided");
        }
        Ok(files.iter().map(|p| self.on_media(p)).collect())
    }

    /// The first-run pass over what was in the camera folders before the agent was installed
    /// (the Android shell calls it once, at the first start). `backlog = "record"` (default):
    /// each file is hashed and recorded as kept, rule `backlog`, and nothing is moved;
    /// `backlog = "quarantine"`: each is decided like a new photo. Files already settled in
    /// the ledger are skipped either way, so a pass cut short is simply run again.
    pub fn record_backlog(&self) -> Result<Vec<Outcome>, Error> {
        let files = self.pending_files(Duration::ZERO)?;
        info!(files = files.len(), policy = ?self.config.backlog, "first-run backlog");
        if self.config.backlog == crate::config::Backlog::Quarantine {
            return Ok(files.iter().map(|p| self.on_media(p)).collect());
        }
        Ok(files.iter().map(|p| self.record_kept(p)).collect())
    }

    /// Hash `path` and record it as kept (the backlog), without classifying or moving it.
    fn record_kept(&self, path: &Path) -> Outcome {
        let started = Instant::now();
        let (file, id) = match fsops::open_regular(path) {
            Ok(x) => x,
            Err(OpenError::Vanished) => return Outcome::simple(path, OutcomeKind::Skipped, "no longer there", started),
            Err(e) => return self.reject(path, &e.to_string(), started),
        };
        if id.size == 0 {
            return self.reject_id(path, "empty file (0 bytes)", &id, started);
        }
        let sha256 = match fsops::hash_fd(&file, None) {
            Ok((sha, read, _)) if read == id.size => sha,
            Ok(_) => return Outcome::simple(path, OutcomeKind::Retry, "still being written", started),
            Err(e) => return self.reject_id(path, &format!("unreadable: {e}"), &id, started),
        };
        let kind = MediaKind::sniff(&fsops::read_head(&file, 64).unwrap_or_default());
        let exif = ExifFacts::default();
        let verdict = Verdict {
            action: Action::Keep,
            source: policy::Source::Default,
            case_id: None,
            rule: "backlog: in the camera folder before the agent was installed (backlog = record)".into(),
        };
        let facts =
            Facts { path, id: &id, sha256: &sha256, kind, exif: &exif, first_seen: ledger::now_ms(), assessment: None };
        let mut ledger = self.ledger();
        let result = self.record_and_move(&mut ledger, &facts, &verdict, None, &file);
        drop(ledger);
        match result {
            Ok(Some((item, kind_done, detail))) => Outcome {
                path: path.to_string_lossy().into_owned(),
                kind: kind_done,
                item: Some(item),
                sha256: Some(sha256),
                source: Some(verdict.source),
                case_id: None,
                rule: Some(verdict.rule),
                score: None,
                handle_ms: started.elapsed().as_secs_f64() * 1e3,
                detail,
            },
            Ok(None) => self.earlier_outcome(path, &id, started),
            Err(e) => self.failed(path, e, started),
        }
    }

    /// Classify a keyframe of a video (JPEG bytes extracted by the Android shell).
    pub fn classify_keyframe(&self, jpeg: &[u8]) -> Result<Option<Assessment>, Error> {
        match &self.model {
            Model::Ready(c) => {
                let mut c = c.lock().unwrap_or_else(|p| p.into_inner());
                c.assess(jpeg).map(Some).map_err(|source| Error::Keyframe { source })
            }
            Model::Unavailable(_) => Ok(None),
        }
    }

    /// An officer marks a photo as case material: a file in a camera folder (it is
    /// quarantined now) or an item already in the store (its case ID is set).
    pub fn tag(&self, target: &str, case: &str, officer: Option<&str>, note: Option<&str>) -> Result<Outcome, Error> {
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
                _ => Err(Error::TagFailed {
                    path: path.clone(),
                    kind: outcome.kind,
                    detail: outcome.detail.clone().unwrap_or_else(|| "could not be quarantined".into()),
                }),
            };
        }
        let item = self.ledger().find_item(target)?;
        self.tag_item(item, case, officer, note)
    }

    fn find_by_store_name(&self, name: &str) -> Result<Item, Error> {
        let ledger = self.ledger();
        let id: Option<i64> =
            ledger.conn().query_row("SELECT id FROM items WHERE store_name = ?1", [name], |r| r.get(0)).ok();
        match id {
            Some(id) => Ok(ledger.item(id)?),
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
        tx.append("tagged", Some(item.id), json!({"case_id": case, "officer": officer, "note": note}))?;
        if let Some(e) = embedding.filter(|_| item.source == "classifier") {
            tx.add_correction(item.id, true, &e)?;
        }
        tx.commit()?;
        info!(item = item.id, case, "tagged");
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
        })
    }

    /// Put a false positive back where it came from, audited.
    pub fn release(&self, key: &str, reason: &str, officer: Option<&str>) -> Result<Outcome, Error> {
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
        self.check_release_destination(&item)?;
        let parent = item.original_path.parent().unwrap_or(Path::new("/"));
        if !parent.is_dir() {
            return Err(Refusal::OriginalFolderGone { path: parent.to_path_buf() }.into());
        }
        let dst = free_name(&item.original_path, item.id);
        let src_path = self.store.path_of(&stored);
        let mut ledger = self.ledger();
        let lock = self.store.lock_moves()?;
        let (file, id) = fsops::open_regular(&src_path).map_err(Error::open(&src_path))?;
        let mut intent: MoveIntent = self.store.plan_out(item.id, &stored, &dst, &item.sha256, item.size);
        let embedding = ledger.embedding(item.id)?;
        let mut tx = ledger.write()?;
        tx.set_state(item.id, ItemState::Releasing, None)?;
        tx.append(
            "release_requested",
            Some(item.id),
            json!({"state": "releasing", "reason": reason, "officer": officer, "to": dst.to_string_lossy()}),
        )?;
        intent.id = tx.journal_move(&intent)?;
        tx.commit()?;
        fault::point("after_journal");
        let moved = self.store.execute(&intent, &file, &id, &mut self.dirty.lock().unwrap_or_else(|p| p.into_inner()));
        let mut tx = ledger.write()?;
        match moved {
            Ok(done) => {
                if let Moved::SourceKept(e) = &done {
                    warn!(item = item.id, error = %e, "released, but its store file could not be removed");
                }
                tx.set_state(item.id, ItemState::Released, None)?;
                tx.append(
                    "released",
                    Some(item.id),
                    json!({"state": "released", "reason": reason, "officer": officer, "path": dst.to_string_lossy()}),
                )?;
                if let Some(e) = embedding.filter(|_| item.source == "classifier") {
                    tx.add_correction(item.id, false, &e)?;
                }
                tx.finish_move(intent.id)?;
                tx.commit()?;
                info!(item = item.id, path = %dst.display(), reason, "released");
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
                })
            }
            Err(e) if e.rolled_back => {
                error!(item = item.id, path = %dst.display(), error = %e, "release failed; the item stays in the store");
                tx.set_state(item.id, ItemState::Quarantined, None)?;
                tx.append(
                    "release_failed",
                    Some(item.id),
                    json!({"state": "quarantined", "reason": e.what.to_string()}),
                )?;
                tx.finish_move(intent.id)?;
                tx.commit()?;
                Err(e.into())
            }
            Err(e) => {
                drop(tx);
                drop(lock);
                drop(ledger);
                error!(item = item.id, error = %e, "release failed midway; recovering");
                self.recover()?;
                let state = self.ledger().item(item.id).map(|i| i.state);
                if matches!(state, Ok(ItemState::Quarantined)) {
                    let mut ledger = self.ledger();
                    let mut tx = ledger.write()?;
                    tx.append(
                        "release_failed",
                        Some(item.id),
                        json!({"state": "quarantined", "reason": e.what.to_string(), "recovered": true}),
                    )?;
                    tx.commit()?;
                }
                Err(e.into())
            }
        }
    }

    /// A release writes where the item came from. That path must be the one its hash-chained
    /// `intake` event recorded (an edited `items` row cannot redirect a release), must not be
    /// in the store, and must be in a camera folder when the config names any.
    fn check_release_destination(&self, item: &Item) -> Result<(), Error> {
        let events = self.ledger().events_of(item.id)?;
        let recorded =
            events.iter().find(|e| e.kind == "intake").and_then(|e| e.data["path"].as_str().map(PathBuf::from));
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
        Ok(())
    }

    /// Open a case session (closing any open one first).
    pub fn session_start(
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
            tx.append("session_stopped", None, json!({"case_id": s.case_id, "session": s.id, "replaced": true}))?;
        }
        let until = duration.map(|d| tx.now() + d.as_millis() as i64);
        let id = tx.start_session(case, officer, until)?;
        tx.append(
            "session_started",
            None,
            json!({"case_id": case, "session": id, "officer": officer, "until_ms": until}),
        )?;
        tx.commit()?;
        info!(case, session = id, "case session opened");
        Ok(ledger.open_session()?.ok_or(Refusal::SessionEnded)?)
    }

    /// Close the open case session; returns the sessions closed.
    pub fn session_stop(&self) -> Result<Vec<ledger::Session>, Error> {
        let mut ledger = self.ledger();
        let mut tx = ledger.write()?;
        let stopped = tx.stop_sessions()?;
        for s in &stopped {
            tx.append("session_stopped", None, json!({"case_id": s.case_id, "session": s.id}))?;
        }
        tx.commit()?;
        Ok(stopped)
    }

    /// Re-hash every stored file and check the ledger's hash chain and item rows.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        let ledger = self.ledger();
        let (events, mut problems) = ledger.verify_chain()?;
        let mut files = 0u64;
        let mut expected = HashSet::new();
        for item in ledger.items(None)? {
            if !matches!(item.state, ItemState::Quarantined | ItemState::OriginalKept) {
                continue;
            }
            let Some(name) = item.store_name.as_deref() else {
                problems.push(format!("item {}: quarantined but has no store file name", item.id));
                continue;
            };
            expected.insert(name.to_string());
            files += 1;
            match fsops::hash_path(&self.store.path_of(name)) {
                Ok(h) if h == item.sha256 => {}
                Ok(_) => problems.push(format!("item {}: stored file {name} has changed (SHA-256 differs)", item.id)),
                Err(e) => problems.push(format!("item {}: stored file {name}: {e}", item.id)),
            }
        }
        let on_disk =
            self.store.objects().map_err(Error::io("listing the store", self.store.root().join("objects")))?;
        for (name, _) in on_disk {
            if !expected.contains(&name) {
                problems.push(format!("{name}: file in the store that no quarantined item accounts for"));
            }
        }
        Ok(VerifyReport { events, files, problems })
    }

    /// Statistics, with retention counted against the configured `[retention]` settings.
    pub fn stats(&self, by_case: bool) -> Result<stats::Stats, Error> {
        let mut s = stats::collect_configured(&self.ledger(), &self.store, by_case, &self.config.retention)?;
        s.storage.media_location_access = self.config.media_location_access;
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
        let case = case.trim();
        if case.is_empty() {
            return Err(Refusal::CaseIdRequired.into());
        }
        self.check_export_target(out)?;
        // Lock order: the ledger mutex, then the move lock (nothing is released or moved meanwhile).
        let mut ledger = self.ledger();
        let _lock = self.store.lock_moves()?;
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
        };
        let staged = export::stage(out, &input)?;
        let package = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let recorded = ledger.write().and_then(|mut tx| {
            for id in &ids {
                tx.append(
                    "export",
                    Some(*id),
                    json!({"case_id": case, "package_sha256": staged.digest, "package": package,
                           "format": staged.format, "items": ids.len(), "officer": officer}),
                )?;
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
                for id in &ids {
                    tx.append(
                        "export_failed",
                        Some(*id),
                        json!({"package_sha256": staged.digest, "reason": e.to_string()}),
                    )?;
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
        })
    }

    /// Record that the receiving case file has the package: every item of the case whose
    /// newest export is not yet acknowledged gets an `ack` event.
    pub fn ack(&self, case: &str, officer: Option<&str>) -> Result<AckReport, Error> {
        let case = case.trim();
        let mut ledger = self.ledger();
        let all = ledger.items(Some(case))?;
        if case.is_empty() || all.is_empty() {
            return Err(Refusal::UnknownCase { case: case.to_string() }.into());
        }
        let exported = ledger.last_event_times("export")?;
        let acked = ledger.last_event_times("ack")?;
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
            tx.append(
                "ack",
                Some(*id),
                json!({"case_id": case, "officer": officer, "exported_at_ms": exported.get(id)}),
            )?;
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
    /// custody log stay. A run that dies between the two leaves a purged item whose file is
    /// still there: `verify` reports it and the next `purge` removes it.
    pub fn purge_at(&self, now_ms: i64, dry_run: bool, officer: Option<&str>) -> Result<PurgeReport, Error> {
        // Lock order: the ledger mutex, then the move lock.
        let mut ledger = self.ledger();
        let _lock = self.store.lock_moves()?;
        let due = retention::due(&ledger, &self.config.retention, now_ms)?;
        let mut report =
            PurgeReport { dry_run, now_ms, items: due.purge, bytes: 0, finished_earlier: 0, failures: Vec::new() };
        if dry_run {
            report.bytes = report.items.iter().map(|d| d.size).sum();
            return Ok(report);
        }
        let r = &self.config.retention;
        for d in &report.items {
            let mut tx = ledger.write()?;
            tx.set_state(d.item, ItemState::Purged, None)?;
            tx.append(
                "purge",
                Some(d.item),
                json!({"state": "purged", "reason": d.reason.as_str(), "sha256": d.sha256, "store_name": d.store_name,
                       "size": d.size, "due_at_ms": d.due_at_ms, "officer": officer,
                       "retention": {"quarantined_days": r.quarantined_days, "exported_days": r.exported_days,
                                     "purge_unexported": r.purge_unexported}}),
            )?;
            tx.commit()?;
            let Some(name) = d.store_name.as_deref() else { continue };
            let path = self.store.path_of(name);
            match retention::wipe(&path) {
                Ok(n) => {
                    report.bytes += n;
                    info!(item = d.item, reason = d.reason.as_str(), bytes = n, "purged");
                }
                Err(e) => {
                    error!(item = d.item, path = %path.display(), error = %e, "purged in the ledger but the file could not be removed; the next purge retries");
                    report.failures.push(format!("item {}: {}: {e}", d.item, path.display()));
                }
            }
        }
        // Files of items purged by a run that died before removing them.
        for item in ledger.items(None)? {
            if item.state != ItemState::Purged || report.items.iter().any(|d| d.item == item.id) {
                continue;
            }
            let Some(name) = item.store_name.as_deref() else { continue };
            let path = self.store.path_of(name);
            if path.symlink_metadata().is_err() {
                continue;
            }
            match retention::wipe(&path) {
                Ok(n) => {
                    report.bytes += n;
                    report.finished_earlier += 1;
                    info!(item = item.id, "removed the file of an item an interrupted purge had marked");
                }
                Err(e) => report.failures.push(format!("item {}: {}: {e}", item.id, path.display())),
            }
        }
        Ok(report)
    }
}

/// Facts about one file gathered before the decision.
struct Facts<'a> {
    path: &'a Path,
    id: &'a FileId,
    sha256: &'a str,
    kind: MediaKind,
    exif: &'a ExifFacts,
    first_seen: i64,
    assessment: Option<&'a Assessment>,
}

/// `path` if free, else `stem-released-<item>.ext` beside it.
fn free_name(path: &Path, item: i64) -> PathBuf {
    if path.symlink_metadata().is_err() {
        return path.to_path_buf();
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    path.with_file_name(format!("{stem}-released-{item}{ext}"))
}

/// Local wall-clock time of a nanosecond Unix timestamp.
fn local_time(ns: i64) -> Option<chrono::NaiveDateTime> {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_opt(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000) as u32)
        .single()
        .map(|t| t.naive_local())
}

/// A camera-folder path as the ledger keeps it: absolute, its folder canonical, the file's
/// own name as given (a link there is refused by intake, never followed).
fn ledger_path(path: &Path) -> PathBuf {
    use crate::quarantine::placement::resolve;
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if parent.as_os_str().is_empty() => resolve(Path::new(".")).join(name),
        (Some(parent), Some(name)) => resolve(parent).join(name),
        _ => resolve(path),
    }
}
