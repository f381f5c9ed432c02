//! Evidence that never passes through a camera folder: one core path, "import a file into a
//! case", for `fotovakt import` (a dedicated camera's card, any folder an officer names) and
//! for the Android case camera (a photo the camera app wrote into the app's own storage).
//!
//! The file is opened without following a symlink and hashed on arrival, from the descriptor;
//! its item is recorded (`intake`, `imported` with where it came from, the camera's EXIF make,
//! model and time, or the camera app that wrote it, and `decided`: quarantine into the case,
//! rule `manual`) with a journaled move into the store that is durable before any byte moves.
//! Without `remove_source` the move is a copy that never touches its source (`copy`: the copy
//! is fsynced and verified against the hash taken on arrival); with it, the source goes only
//! once its copy is verified (or, on the store's filesystem, by the rename itself). The same
//! bytes already in the case are not stored twice.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tracing::info;

use crate::fault;
use crate::ledger::{self, Direction, Event, ImportOrigin, ItemState};
use crate::media::{self, InspectError, MediaKind};
use crate::policy::{Action, Source, Verdict};
use crate::quarantine::fsops::{self, FileId};
use crate::quarantine::placement;

use super::commit::Committed;
use super::intake::Facts;
use super::{Agent, Error, OutcomeKind, Refusal};

/// Where the evidence comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin<'a> {
    /// A dedicated camera's card, or any folder an officer names.
    Card,
    /// The case camera: `package` is the camera app that wrote the file (the caller of the
    /// app's provider), `written_at_ms` when its write ended.
    CaseCamera { package: &'a str, written_at_ms: i64 },
}

/// What to import into which case.
#[derive(Debug, Clone, Copy)]
pub struct ImportRequest<'a> {
    pub case: &'a str,
    pub officer: Option<&'a str>,
    pub origin: Origin<'a>,
    /// Remove the source once its copy in the store is verified.
    pub remove_source: bool,
}

/// One file imported (or found already in the case).
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    pub path: String,
    pub item: i64,
    pub sha256: String,
    pub size: u64,
    pub kind: String,
    /// The same bytes were already in this case: nothing new was stored.
    pub already: bool,
    /// The source is gone (after its copy verified).
    pub source_removed: bool,
    pub make: Option<String>,
    pub model: Option<String>,
    pub capture_time: Option<String>,
}

impl Agent {
    /// Import `paths` into a case, one by one; `each` sees every file's result as it comes (a
    /// bad file is one `Err` and the rest go on). Ends with the durability barrier.
    pub fn import_files(
        &self,
        paths: &[PathBuf],
        req: &ImportRequest<'_>,
        mut each: impl FnMut(&Path, &Result<Imported, Error>),
    ) -> Result<Vec<Result<Imported, Error>>, Error> {
        if req.case.trim().is_empty() {
            return Err(Refusal::CaseIdRequired.into());
        }
        let mut out = Vec::with_capacity(paths.len());
        for p in paths {
            let r = self.import_one(p, req);
            each(p, &r);
            out.push(r);
        }
        self.durable(Ok(out))
    }

    /// Import one file into a case (the case camera's path); ends with the barrier.
    pub fn import_file(&self, path: &Path, req: &ImportRequest<'_>) -> Result<Imported, Error> {
        if req.case.trim().is_empty() {
            return Err(Refusal::CaseIdRequired.into());
        }
        let r = self.import_one(path, req);
        self.durable(r)
    }

    fn import_one(&self, typed: &Path, req: &ImportRequest<'_>) -> Result<Imported, Error> {
        // Recorded as people typed it, made absolute (its folder resolved, its name as given).
        let path = &super::ledger_path(typed);
        let not = |reason: &str| Error::NotEvidence { path: path.to_path_buf(), reason: reason.into() };
        if placement::resolve(path).starts_with(self.store.root()) {
            return Err(not("inside the quarantine store"));
        }
        if self.in_camera_folder(path) {
            return Err(not("in a camera folder: the watcher decides it there; `fotovakt tag` puts it into a case"));
        }
        let (file, id) = match fsops::open_regular(path) {
            Ok(x) => x,
            Err(fsops::OpenError::Vanished) => {
                let gone = std::io::Error::from_raw_os_error(libc::ENOENT);
                return Err(Error::Io { about: "opening a file to import", path: path.to_path_buf(), source: gone });
            }
            Err(e) => return Err(Error::open(path)(e)),
        };
        if id.size == 0 {
            return Err(not("empty file (0 bytes)"));
        }
        if id.size > self.config.max_file_bytes {
            return Err(not(&format!("{} bytes is over max_file_bytes ({})", id.size, self.config.max_file_bytes)));
        }
        // Hashed on arrival, from the descriptor, before anything else reads it.
        let ins = match media::inspect_open(&file, &id, self.config.max_image_bytes) {
            Ok(x) => x,
            Err(InspectError::Changed) => return Err(not("changed while it was read; import it again")),
            Err(e) => return Err(not(&e.to_string())),
        };
        if ins.kind == MediaKind::Unknown {
            return Err(not("not a photo or video: its content matches no known format"));
        }
        let (make, model) = match &ins.bytes {
            Some(b) => media::camera_make_model(b),
            None => {
                media::camera_make_model(&fsops::read_head(&file, 256 << 10).map_err(Error::io("reading EXIF", path))?)
            }
        };
        let facts = Facts {
            path,
            at: path,
            staged: None,
            file,
            id,
            sha256: ins.sha256,
            kind: ins.kind,
            exif: ins.exif,
            first_seen: ledger::now_ms(),
        };
        let mut done = Imported {
            path: path.to_string_lossy().into_owned(),
            item: 0,
            sha256: facts.sha256.clone(),
            size: id.size,
            kind: facts.kind.as_str().into(),
            already: false,
            source_removed: false,
            make,
            model,
            capture_time: facts.exif.capture_time.map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string()),
        };
        self.store_import(&facts, req, &mut done)?;
        info!(path = %path.display(), item = done.item, case = req.case, already = done.already, "imported");
        Ok(done)
    }

    /// Under the move lock: the same bytes already in the case, or a new item and its move.
    fn store_import(&self, f: &Facts<'_>, req: &ImportRequest<'_>, done: &mut Imported) -> Result<(), Error> {
        let mut custody = self.custody()?;
        if let Some(item) = custody.ledger.in_case_with_sha(req.case, &f.sha256)? {
            done.item = item.id;
            done.already = true;
            if req.remove_source {
                done.source_removed = remove_if_unchanged(f.path, &f.id)?;
            }
            return Ok(());
        }
        let verdict = Verdict {
            action: Action::Quarantine,
            source: Source::Manual,
            case_id: Some(req.case.to_string()),
            rule: match req.origin {
                Origin::Card => format!("imported into case {} from a card or folder", req.case),
                Origin::CaseCamera { .. } => format!("taken with the case camera for case {}", req.case),
            },
        };
        let mut tx = custody.ledger.write()?;
        let arrival = imported(f, req, done);
        let item = super::record::record(&mut tx, f, &verdict, None, None, ItemState::Moving, None, Some(&arrival))?;
        fault::point("before_journal");
        let (mut intent, _) = self.store.plan_in(item, f.path, &f.sha256, f.id.size);
        if !req.remove_source {
            intent.direction = Direction::Copy;
        }
        intent.id = tx.journal_move(&intent)?;
        tx.commit()?;
        // Durable before any byte moves, as for every move.
        custody.ledger.sync_log()?;
        fault::point("after_journal");
        let committed = self.move_in(&mut custody, f, &intent, super::commit::Try { quiet: false, exposed: false })?;
        let Committed::Decided(d) = committed else {
            return Err(Error::NotEvidence {
                path: f.path.to_path_buf(),
                reason: "decided elsewhere meanwhile".into(),
            });
        };
        done.item = d.item.unwrap_or(item);
        if d.kind != OutcomeKind::Quarantined {
            let why = d.detail.unwrap_or_else(|| "not stored".into());
            return Err(Error::NotEvidence { path: f.path.to_path_buf(), reason: why });
        }
        done.source_removed = req.remove_source && fsops::lstat_id(f.path).is_err();
        Ok(())
    }
}

/// The `imported` custody event of a file.
fn imported(f: &Facts<'_>, req: &ImportRequest<'_>, done: &Imported) -> Event {
    let (origin, camera_package, written_at_ms) = match req.origin {
        Origin::Card => (ImportOrigin::Card, None, None),
        Origin::CaseCamera { package, written_at_ms } => {
            (ImportOrigin::CaseCamera, Some(package.to_string()), Some(written_at_ms))
        }
    };
    Event::Imported {
        case_id: req.case.to_string(),
        origin,
        source_path: f.path.to_string_lossy().into_owned(),
        camera_package,
        written_at_ms,
        make: done.make.clone(),
        model: done.model.clone(),
        exif_time: done.capture_time.clone(),
        remove_source: req.remove_source,
        officer: req.officer.map(str::to_string),
    }
}

/// Remove a source whose bytes are already verified in the store, only while its path still
/// names the very file that was hashed.
fn remove_if_unchanged(path: &Path, id: &FileId) -> Result<bool, Error> {
    if !fsops::lstat_id(path).is_ok_and(|now| now.same_content_as(id)) {
        return Ok(false);
    }
    std::fs::remove_file(path).map_err(Error::io("removing an imported source", path))?;
    fsops::fsync_parent(path).map_err(Error::io("syncing the source's folder", path))?;
    Ok(true)
}
