//! The quarantine store and the crash-safe move.
//!
//! Layout (directories 0700, files 0600):
//! ```text
//! STORE/.nomedia                   keeps MediaStore and galleries out
//! STORE/ledger.sqlite (+ -wal)     the chain-of-custody ledger
//! STORE/ledger.head                newest event seq + hash (truncation anchor)
//! STORE/move.lock                  flock held by whoever moves or recovers
//! STORE/objects/ab/<sha256>-<item>.<ext>   the originals, byte for byte
//! STORE/tmp/                       cross-filesystem copies before they are verified
//! ```
//!
//! The invariant: at every instant a photo is at its original path, in a staging folder
//! ([`staging`]) under a name a journal row names, or verified (SHA-256) in the store. A move
//! is journaled in the ledger first; then
//! * same filesystem: `rename` (never replacing), `fsync` of both directories;
//! * other filesystem: copy into `tmp/`, `fsync`, verify the hash, rename into place,
//!   then unlink the original.
//!
//! A process that dies anywhere leaves a journal row; [`Store::recover`] completes the move
//! if the destination verifies, else rolls it back, so after recovery the photo is in
//! exactly one of the two places.

pub mod fsops;
pub mod placement;
pub mod staging;

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::fault;
use crate::ledger::{Direction, MoveIntent};
use fsops::FileId;
pub use placement::PlacementError;

/// Errors opening or checking the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Placement(#[from] PlacementError),
    #[error("store {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "store {path}: mode {mode:o} lets others read it; run `chmod 700 {path}` (or `chmod 600` for files) and retry"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("store {path}: read-only filesystem or no write permission")]
    ReadOnly { path: PathBuf },
}

/// Why a move did not happen. After any of these the photo is still at its source path
/// unless `rolled_back` is false, in which case the journal row is kept for recovery.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}")]
pub struct MoveError {
    pub path: PathBuf,
    pub what: MoveProblem,
    pub rolled_back: bool,
}

/// The kinds of failed moves.
#[derive(Debug, thiserror::Error)]
pub enum MoveProblem {
    #[error("changed while it was being moved ({0}); left in place, will retry")]
    Changed(&'static str),
    #[error("vanished before it could be moved")]
    Vanished,
    #[error("destination already exists")]
    Occupied,
    #[error("{op} failed: {source}")]
    Io { op: &'static str, source: io::Error },
}

/// A move that happened. The destination holds the verified bytes either way.
#[derive(Debug)]
pub enum Moved {
    /// The source path no longer refers to the bytes (renamed away, or unlinked after the copy).
    Done,
    /// Copied and verified, but the source could not be unlinked (a read-only bind mount; on
    /// a phone, all-files access missing or revoked): both copies exist. A final, audited
    /// state; reconcile retries the unlink.
    SourceKept(io::Error),
}

/// What recovery did with one unfinished move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovered {
    /// The destination verified; the source (if still there) was removed.
    Completed,
    /// The source is at its path; partial copies were removed.
    RolledBack,
    /// Neither place has the file: it was deleted by someone else before the move began.
    Vanished,
    /// The destination verified but the source could not be removed (see [`Moved::SourceKept`]).
    SourceKept,
}

/// An exclusive lock on moving files in this store (held across processes with `flock`).
pub struct MoveLock {
    _file: File,
}

/// The move lock taken shared ([`Store::try_lock_shared`]): nobody moves while it lives.
pub struct SharedMoveLock {
    _file: Option<File>,
}

/// The quarantine store.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    objects: PathBuf,
    tmp: PathBuf,
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> StoreError + '_ {
    move |source| {
        if matches!(source.raw_os_error(), Some(libc::EROFS) | Some(libc::EACCES) | Some(libc::EPERM)) {
            StoreError::ReadOnly { path: path.to_path_buf() }
        } else {
            StoreError::Io { path: path.to_path_buf(), source }
        }
    }
}

impl Store {
    /// Check the placement, create the layout with private permissions and refuse a store
    /// that others can read.
    pub fn open(root: &Path, cameras: &[PathBuf], sync_roots: &[PathBuf]) -> Result<Store, StoreError> {
        let root = placement::check(root, cameras, sync_roots)?;
        let objects = root.join("objects");
        let tmp = root.join("tmp");
        for dir in [&root, &objects, &tmp] {
            if !dir.exists() {
                std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err(dir))?;
            }
            let meta = std::fs::metadata(dir).map_err(io_err(dir))?;
            if meta.mode() & 0o077 != 0 {
                return Err(StoreError::Permissions { path: dir.clone(), mode: meta.mode() & 0o777 });
            }
        }
        let nomedia = root.join(".nomedia");
        if !nomedia.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&nomedia)
                .map_err(io_err(&nomedia))?;
        }
        // Probe writability now, so a read-only store is refused at start and not mid-move.
        // The name is this process's own: two processes opening the store at once (the
        // watcher and an officer's command) must not remove each other's probe, and one left
        // by a dead process is swept with the rest of `tmp`.
        let probe = tmp.join(format!(".write-probe-{}", std::process::id()));
        let gone = |r: io::Result<()>| match r {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
        match fsops::create_exclusive(&probe) {
            Ok(_) => gone(std::fs::remove_file(&probe)).map_err(io_err(&probe))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                gone(std::fs::remove_file(&probe)).map_err(io_err(&probe))?;
            }
            Err(e) => return Err(io_err(&tmp)(e)),
        }
        Ok(Store { root, objects, tmp })
    }

    /// Open an existing store to read it: the placement check, and the refusal of a store that
    /// others can read, but nothing created, probed or swept (see `agent::StoreReader`).
    pub fn open_existing(root: &Path, cameras: &[PathBuf], sync_roots: &[PathBuf]) -> Result<Store, StoreError> {
        let root = placement::check(root, cameras, sync_roots)?;
        let objects = root.join("objects");
        let tmp = root.join("tmp");
        for dir in [&root, &objects] {
            match std::fs::metadata(dir) {
                Ok(meta) if meta.mode() & 0o077 != 0 => {
                    return Err(StoreError::Permissions { path: dir.clone(), mode: meta.mode() & 0o777 })
                }
                Ok(_) => {}
                // A store whose first photo has not come yet may have no `objects/`.
                Err(e) if e.kind() == io::ErrorKind::NotFound && dir != &root => {}
                Err(e) => return Err(StoreError::Io { path: dir.clone(), source: e }),
            }
        }
        Ok(Store { root, objects, tmp })
    }

    /// The store's root directory (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of the ledger database.
    pub fn ledger_path(&self) -> PathBuf {
        self.root.join("ledger.sqlite")
    }

    /// Take the move lock shared, without waiting: `Ok(None)` when another process holds it
    /// (a move, a recovery or a purge is under way). While the shared lock lives none can
    /// start. Creates nothing: a store that never had a move has no lock file, and then nobody
    /// holds it.
    pub fn try_lock_shared(&self) -> Result<Option<SharedMoveLock>, StoreError> {
        let path = self.root.join("move.lock");
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(SharedMoveLock { _file: None })),
            Err(e) => return Err(io_err(&path)(e)),
        };
        // SAFETY: the fd is valid for the duration of the call.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
            return Ok(Some(SharedMoveLock { _file: Some(file) }));
        }
        match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(None),
            e => Err(io_err(&path)(e)),
        }
    }

    /// Take the move lock (blocks while another process is moving a file).
    pub fn lock_moves(&self) -> Result<MoveLock, StoreError> {
        let path = self.root.join("move.lock");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(&path))?;
        // SAFETY: the fd is valid for the duration of the call.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io_err(&path)(io::Error::last_os_error()));
        }
        Ok(MoveLock { _file: file })
    }

    /// The store-relative name of an item's file: derived from the content hash, unique per item.
    pub fn object_name(sha256: &str, item_id: i64, ext: &str) -> String {
        let ext: String =
            ext.chars().filter(|c| c.is_ascii_alphanumeric()).take(8).collect::<String>().to_ascii_lowercase();
        let ext = if ext.is_empty() { "bin".to_string() } else { ext };
        format!("objects/{}/{}-{}.{}", sha256.get(..2).unwrap_or("00"), sha256, item_id, ext)
    }

    /// Absolute path of a store-relative name.
    pub fn path_of(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Plan a move into the store for a journal row.
    pub fn plan_in(&self, item_id: i64, src: &Path, sha256: &str, size: u64) -> (MoveIntent, String) {
        let ext = src.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
        let name = Store::object_name(sha256, item_id, &ext);
        let intent = MoveIntent {
            id: 0,
            item_id,
            direction: Direction::In,
            src: src.to_path_buf(),
            dst: self.path_of(&name),
            tmp: self.tmp.join(format!("{sha256}-{item_id}.part")),
            sha256: sha256.to_string(),
            size,
        };
        (intent, name)
    }

    /// Plan a move back out (release) to `dst`, staging a cross-filesystem copy beside it
    /// under an Android `.pending-` name that MediaStore and sync clients skip.
    pub fn plan_out(&self, item_id: i64, stored: &str, dst: &Path, sha256: &str, size: u64) -> MoveIntent {
        let name = dst.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let expiry = crate::ledger::now_ms() / 1000 + 7 * 86400;
        MoveIntent {
            id: 0,
            item_id,
            direction: Direction::Out,
            src: self.path_of(stored),
            dst: dst.to_path_buf(),
            tmp: dst.with_file_name(format!(".pending-{expiry}-fotovakt-{item_id}-{name}")),
            sha256: sha256.to_string(),
            size,
        }
    }

    fn ensure_parent(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(p) if !p.exists() => std::fs::DirBuilder::new().recursive(true).mode(0o700).create(p),
            _ => Ok(()),
        }
    }

    /// Carry out a journaled move of the file open as `src_file` (identity `id`, as hashed).
    ///
    /// On success the destination holds the verified bytes and the source path no longer
    /// refers to them. On failure with `rolled_back == true` the source is untouched and no
    /// partial file is left; with `rolled_back == false` recovery must run.
    ///
    /// Every directory entry the move changed is fsynced before this returns, so the outcome
    /// the caller records next can never reach the disk ahead of the move itself: a rename
    /// or unlink lost to a power cut behind a durable "quarantined" row would bring the
    /// original back beside its store copy, or leave an item whose store file is missing
    /// (both found by the power-cut campaign). A cross-filesystem copy is fsynced (data and
    /// store directory) before the original is unlinked. A directory whose fsync fails is
    /// added to `dirty`, so the next durability barrier retries it and reports the error.
    pub fn execute(
        &self,
        m: &MoveIntent,
        src_file: &File,
        id: &FileId,
        dirty: &mut Vec<PathBuf>,
    ) -> Result<Moved, MoveError> {
        let fail = |what, rolled_back| MoveError { path: m.src.clone(), what, rolled_back };
        let io_fail = |op, source, rolled_back| fail(MoveProblem::Io { op, source }, rolled_back);
        if m.direction == Direction::Copy {
            // A copy reads the open descriptor and leaves the source as it is.
            if let Err(e) = self.ensure_parent(&m.dst) {
                return Err(io_fail("create store directory", e, true));
            }
            return self.copy_across(m, src_file, id, dirty);
        }
        // The path must still be the file we hashed, and the file unchanged since.
        match fsops::lstat_id(&m.src) {
            Ok(now) if now.same_content_as(id) => {}
            Ok(_) => return Err(fail(MoveProblem::Changed("replaced or rewritten"), true)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(fail(MoveProblem::Vanished, true)),
            Err(e) => return Err(io_fail("stat", e, true)),
        }
        if let Err(e) = self.ensure_parent(&m.dst) {
            return Err(io_fail("create store directory", e, true));
        }
        let final_mode = match m.direction {
            Direction::In | Direction::Copy => 0o600,
            // A stash is not run through here; a staged file keeps its mode.
            Direction::Out | Direction::Stash => 0o644,
        };
        match fsops::rename_noreplace(&m.src, &m.dst) {
            Ok(()) => {
                fault::point("after_rename");
                let _ = fsops::set_mode(src_file, final_mode);
                let after = src_file.metadata().map(|m| FileId::of(&m));
                let dst_now = fsops::lstat_id(&m.dst);
                let unchanged =
                    matches!((&after, &dst_now), (Ok(a), Ok(d)) if a.same_content_as(id) && d.same_content_as(id));
                if unchanged {
                    durable_entries(&[&m.dst, &m.src], dirty);
                    return Ok(Moved::Done);
                }
                // Something wrote to the file during the move: put it back.
                let back = fsops::rename_noreplace(&m.dst, &m.src).and_then(|_| fsops::fsync_parent(&m.src));
                let _ = fsops::set_mode(src_file, id.mode);
                Err(fail(MoveProblem::Changed("written to during the move"), back.is_ok()))
            }
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => self.copy_across(m, src_file, id, dirty),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(fail(MoveProblem::Vanished, true)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(fail(MoveProblem::Occupied, true)),
            Err(e) => Err(io_fail("rename", e, true)),
        }
    }

    /// The other-filesystem path: copy to tmp, fsync, verify, rename into place (never
    /// replacing: `RENAME_NOREPLACE`, else `link`, else an `O_EXCL` claim of the name; see
    /// [`fsops::rename_noreplace`]), fsync the directory, unlink the source.
    fn copy_across(
        &self,
        m: &MoveIntent,
        src_file: &File,
        id: &FileId,
        dirty: &mut Vec<PathBuf>,
    ) -> Result<Moved, MoveError> {
        let fail = |what, rolled_back| MoveError { path: m.src.clone(), what, rolled_back };
        let cleanup = |what: MoveProblem| {
            let removed = match std::fs::remove_file(&m.tmp) {
                Ok(()) => true,
                Err(e) => e.kind() == io::ErrorKind::NotFound,
            };
            fail(what, removed)
        };
        if let Err(e) = self.ensure_parent(&m.tmp) {
            return Err(fail(MoveProblem::Io { op: "create staging directory", source: e }, true));
        }
        let mut tmp = match fsops::create_exclusive(&m.tmp) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // A stale partial copy of this very move: recovery's leftovers. Start over.
                let _ = std::fs::remove_file(&m.tmp);
                fsops::create_exclusive(&m.tmp)
                    .map_err(|e| fail(MoveProblem::Io { op: "create copy", source: e }, true))?
            }
            Err(e) => return Err(fail(MoveProblem::Io { op: "create copy", source: e }, true)),
        };
        let copied = fsops::copy_hashing(src_file, &mut tmp, || fault::point("mid_copy"));
        let hash = match copied {
            Ok(h) => h,
            Err(e) => return Err(cleanup(MoveProblem::Io { op: "copy", source: e })),
        };
        let _ = fsops::set_mtime(&tmp, id.mtime_ns);
        if m.direction == Direction::Out {
            let _ = fsops::set_mode(&tmp, 0o644);
        }
        if let Err(e) = tmp.sync_all() {
            return Err(cleanup(MoveProblem::Io { op: "fsync copy", source: e }));
        }
        drop(tmp);
        fault::point("after_copy_fsync");
        let after = src_file.metadata().map(|m| FileId::of(&m));
        if hash != m.sha256 || !matches!(&after, Ok(a) if a.same_content_as(id)) {
            return Err(cleanup(MoveProblem::Changed("bytes differ from the hash taken at intake")));
        }
        if let Err(e) = fsops::rename_noreplace(&m.tmp, &m.dst) {
            let what = if e.kind() == io::ErrorKind::AlreadyExists {
                MoveProblem::Occupied
            } else {
                MoveProblem::Io { op: "rename copy into place", source: e }
            };
            return Err(cleanup(what));
        }
        fault::point("after_rename");
        if let Err(e) = fsops::fsync_parent(&m.dst) {
            return Err(fail(MoveProblem::Io { op: "fsync store directory", source: e }, false));
        }
        if m.direction == Direction::Copy {
            return Ok(Moved::Done);
        }
        // Unlink the original only if the path still names the file we copied.
        match fsops::lstat_id(&m.src) {
            Ok(now) if now.same_content_as(id) => {
                fault::point("before_unlink");
                if let Err(e) = std::fs::remove_file(&m.src) {
                    // The verified copy is durable: a final state, not a failure to undo.
                    return Ok(Moved::SourceKept(e));
                }
                durable_entries(&[&m.src], dirty);
            }
            // Replaced by another file meanwhile: ours is safe in the store, theirs stays.
            _ => {}
        }
        Ok(Moved::Done)
    }

    /// Finish or undo a move left by a process that died. Must run under the move lock.
    pub fn recover(&self, m: &MoveIntent) -> io::Result<Recovered> {
        self.recover_beside(m, &m.src)
    }

    /// [`Store::recover`], keeping an unverified file found at the destination beside `home`
    /// (the original's path; for a move out of staging, where the file came from).
    pub fn recover_beside(&self, m: &MoveIntent, home: &Path) -> io::Result<Recovered> {
        if m.direction == Direction::Copy {
            return self.recover_copy(m);
        }
        let verified = |p: &Path| -> io::Result<Option<bool>> {
            match fsops::hash_path(p) {
                Ok(h) => Ok(Some(h == m.sha256)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        };
        // A removal here is made durable (folder fsync) before the caller records the move's
        // end: a staging copy or claim that a power cut brought back after its journal row was
        // gone would be left for ever (the power-cut campaign found a release's staging copy so).
        let remove_if_present = |p: &Path| match std::fs::remove_file(p) {
            Ok(()) => fsops::fsync_parent(p),
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            Err(_) => Ok(()),
        };
        // An empty file at the destination is a name claimed by `rename_claiming` of a process
        // that died before its rename: no bytes to lose, remove it.
        if m.size > 0 && std::fs::symlink_metadata(&m.dst).is_ok_and(|d| d.is_file() && d.len() == 0) {
            remove_if_present(&m.dst)?;
        }
        let dst = verified(&m.dst)?;
        let src = verified(&m.src)?;
        let result = match (dst, src) {
            (Some(true), Some(true)) => {
                // Died between rename and unlink: the store copy is verified, drop the original.
                match std::fs::remove_file(&m.src) {
                    Ok(()) => {
                        fsops::fsync_parent(&m.src)?;
                        Recovered::Completed
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Recovered::Completed,
                    Err(_) => Recovered::SourceKept,
                }
            }
            (Some(true), _) => Recovered::Completed,
            (Some(false), None) => {
                // A same-filesystem rename of a file that then changed: it is the original, put it back.
                fsops::rename_noreplace(&m.dst, &m.src)?;
                fsops::fsync_parent(&m.src)?;
                Recovered::RolledBack
            }
            (Some(false), Some(_)) => {
                // Never lose bytes: keep the odd file beside the original under a visible name.
                let aside = home.with_file_name(format!(
                    "{}.fotovakt-recovered-{}",
                    home.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                    m.item_id
                ));
                if let Err(e) = fsops::rename_noreplace(&m.dst, &aside) {
                    // Not ours to delete, and it cannot be moved aside: leave it where it is.
                    tracing::warn!(path = %m.dst.display(), error = %e, "an unverified file at a move's destination is left in place");
                }
                Recovered::RolledBack
            }
            (None, Some(_)) => Recovered::RolledBack,
            (None, None) => match verified(&m.tmp)? {
                Some(true) => {
                    self.ensure_parent(&m.dst)?;
                    fsops::rename_noreplace(&m.tmp, &m.dst)?;
                    fsops::fsync_parent(&m.dst)?;
                    Recovered::Completed
                }
                _ => Recovered::Vanished,
            },
        };
        if let Err(e) = remove_if_present(&m.tmp) {
            // A staging file that cannot be removed (an undeletable camera folder) holds a
            // copy, never the only one: say so and go on.
            tracing::warn!(path = %m.tmp.display(), error = %e, "staging file of a finished move could not be removed");
        }
        Ok(result)
    }

    /// Recovery of a copy that leaves its source alone: complete if the destination verifies
    /// (or a verified staging copy can be put in place), else rolled back; the source is never
    /// touched.
    fn recover_copy(&self, m: &MoveIntent) -> io::Result<Recovered> {
        let verifies = |p: &Path| fsops::hash_path(p).is_ok_and(|h| h == m.sha256);
        let result = if verifies(&m.dst) {
            Recovered::Completed
        } else if std::fs::symlink_metadata(&m.dst).is_err() && verifies(&m.tmp) {
            self.ensure_parent(&m.dst)?;
            fsops::rename_noreplace(&m.tmp, &m.dst)?;
            fsops::fsync_parent(&m.dst)?;
            Recovered::Completed
        } else {
            Recovered::RolledBack
        };
        match std::fs::remove_file(&m.tmp) {
            Ok(()) => fsops::fsync_parent(&m.tmp)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(result)
    }

    /// Remove staging files no journal row refers to (partial copies of dead processes). Runs
    /// under the move lock, but another process's write probe (made at its open, without the
    /// lock) may come and go meanwhile: a file already gone is not an error.
    pub fn sweep_tmp(&self) -> io::Result<usize> {
        let mut n = 0;
        for entry in std::fs::read_dir(&self.tmp)? {
            let entry = entry?;
            let removed = match entry.file_type() {
                Ok(t) if t.is_file() => std::fs::remove_file(entry.path()),
                Ok(_) => continue,
                Err(e) => Err(e),
            };
            match removed {
                Ok(()) => n += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Parse a store-relative object name (`objects/ab/<sha256>-<item>.<ext>`) into (sha256, item).
    pub fn parse_object_name(name: &str) -> Option<(String, i64)> {
        let file = name.rsplit('/').next()?;
        let stem = file.split('.').next()?;
        let (sha, id) = stem.split_once('-')?;
        let ok = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then_some(())?;
        Some((sha.to_string(), id.parse().ok()?))
    }

    /// Every file under `objects/` with its store-relative name and size. A file (or shard)
    /// removed while the listing runs (a release, a purge in another process) is not in it;
    /// a store with no `objects/` yet has none.
    pub fn objects(&self) -> io::Result<Vec<(String, u64)>> {
        let gone = |e: &io::Error| e.kind() == io::ErrorKind::NotFound;
        let mut out = Vec::new();
        let shards = match std::fs::read_dir(&self.objects) {
            Ok(s) => s,
            Err(e) if gone(&e) => return Ok(out),
            Err(e) => return Err(e),
        };
        for shard in shards {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            let files = match std::fs::read_dir(shard.path()) {
                Ok(f) => f,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e),
            };
            for f in files {
                let f = f?;
                let meta = match f.metadata() {
                    Ok(m) => m,
                    Err(e) if gone(&e) => continue,
                    Err(e) => return Err(e),
                };
                let name =
                    format!("objects/{}/{}", shard.file_name().to_string_lossy(), f.file_name().to_string_lossy());
                out.push((name, meta.len()));
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Make the directory entries of `paths` durable now (fsync each parent folder); a folder
/// whose fsync fails is left to the next durability barrier, which reports it.
fn durable_entries(paths: &[&Path], dirty: &mut Vec<PathBuf>) {
    for p in paths {
        if let Err(e) = fsops::fsync_parent(p) {
            tracing::warn!(path = %p.display(), error = %e, "fsync of a moved file's folder failed; the barrier retries it");
            dirty.extend(p.parent().map(Path::to_path_buf));
        }
    }
}
