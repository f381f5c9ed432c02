//! Placing what a command writes for people: a case package (folder or `.zip`), the admin
//! report, a model head. Every such output goes through here, so they all behave alike:
//!
//! 1. a temporary name beside the target, in the folder the target will be in
//!    (`.fotovakt-partial-<pid>-<name>`; a crash leaves only a name that says it is
//!    incomplete, and the next attempt at the same target removes it once that process is
//!    gone);
//! 2. the caller writes its file or folder there;
//! 3. [`Pending::place`] fsyncs what was written (every file and folder of a folder output),
//!    renames it to the target, and fsyncs the folder the target is in.
//!
//! A bare relative name (`pkg`, `report.html`) means the current folder: its "parent" is
//! `""`, which is not a path a folder can be opened at ([`folder_of`]).
//!
//! ```no_run
//! use std::io::Write;
//! use fotovakt::output::{self, Replace};
//!
//! # fn main() -> Result<(), output::OutputError> {
//! let (pending, mut file) = output::begin_file("report.html".as_ref())?;
//! file.write_all(b"<html></html>").map_err(pending.io("writing"))?;
//! pending.place(Replace::File)?;
//! # Ok(())
//! # }
//! ```
//!
//! Dropping a [`Pending`] that was not placed removes the temporary output.

use std::fs::File;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::quarantine::fsops;

/// Prefix of every temporary output name.
pub const PARTIAL_PREFIX: &str = ".fotovakt-partial-";

/// Longest part of the target's name kept in the temporary name (NAME_MAX is 255 bytes).
const NAME_KEPT: usize = 200;

/// What may be at the target when the output is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Nothing, an empty file or an empty folder (a case package: never written over).
    OnlyEmpty,
    /// Nothing, or a file (or an empty folder), replaced in one step (a report, a model head).
    File,
}

/// Why an output could not be written or placed. Both name the target (or its folder) and
/// the reason, for one line of the CLI's; the temporary name is never what a person sees.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// An I/O operation failed; `what` says which.
    #[error("{path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// The target cannot take the output: `about` says why.
    #[error("{path}: {about}")]
    Refused { path: PathBuf, about: &'static str },
}

impl OutputError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            OutputError::Io { path, .. } | OutputError::Refused { path, .. } => path,
        }
    }
}

fn io_at(path: &Path, what: &'static str) -> impl FnOnce(io::Error) -> OutputError {
    let path = path.to_path_buf();
    move |source| OutputError::Io { path, what, source }
}

/// The folder `target` is (or will be) in: its parent, or `.` for a bare name. `/` for `/`.
pub fn folder_of(target: &Path) -> &Path {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        Some(_) => Path::new("."),
        None => target,
    }
}

/// Is the output a file or a folder?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Folder,
}

/// An output written under its temporary name, not yet at its target.
#[derive(Debug)]
pub struct Pending {
    tmp: PathBuf,
    target: PathBuf,
    kind: Kind,
    /// Set once placed (or discarded): nothing left to remove on drop.
    done: bool,
}

/// Start a file output at `target`: the temporary file beside it, created new (mode 0600).
pub fn begin_file(target: &Path) -> Result<(Pending, File), OutputError> {
    let pending = Pending::new(target, Kind::File)?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&pending.tmp)
        .map_err(io_at(&pending.target, "creating a temporary file beside it"))?;
    Ok((pending, file))
}

/// Start a folder output at `target`: the temporary folder beside it, created new (0700).
/// The caller fills [`Pending::temp_path`].
pub fn begin_folder(target: &Path) -> Result<Pending, OutputError> {
    let pending = Pending::new(target, Kind::Folder)?;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&pending.tmp)
        .map_err(io_at(&pending.target, "creating a temporary folder beside it"))?;
    Ok(pending)
}

/// Write a whole file output with `write` and place it: the one-call form.
pub fn write_file(
    target: &Path,
    replace: Replace,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), OutputError> {
    let (pending, mut file) = begin_file(target)?;
    write(&mut file).map_err(pending.io("writing"))?;
    drop(file);
    pending.place(replace)
}

impl Pending {
    fn new(target: &Path, kind: Kind) -> Result<Pending, OutputError> {
        let Some(name) = target.file_name() else {
            return Err(OutputError::Refused { path: target.to_path_buf(), about: "not a file or folder name" });
        };
        let folder = folder_of(target);
        match std::fs::metadata(folder) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(OutputError::Refused { path: folder.to_path_buf(), about: "not a folder" }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OutputError::Refused { path: folder.to_path_buf(), about: "folder does not exist" })
            }
            Err(e) => return Err(io_at(folder, "looking at the folder")(e)),
        }
        let name = name.to_string_lossy();
        let mut cut = name.len().min(NAME_KEPT);
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        let kept = &name[..cut];
        remove_stale(folder, kept);
        let tmp = folder.join(format!("{PARTIAL_PREFIX}{}-{kept}", std::process::id()));
        Ok(Pending { tmp, target: target.to_path_buf(), kind, done: false })
    }

    /// Where the output is being written.
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Where it will be placed.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Map an I/O error while writing the temporary output to an error naming the target.
    pub fn io(&self, what: &'static str) -> impl FnOnce(io::Error) -> OutputError {
        io_at(&self.target, what)
    }

    /// fsync the output, rename it to the target (replacing only what `replace` allows),
    /// fsync the folder it is in. On an error the temporary output is removed and nothing is
    /// at the target that was not there before.
    pub fn place(mut self, replace: Replace) -> Result<(), OutputError> {
        let placed = self.place_now(replace);
        if placed.is_err() {
            self.remove_tmp();
        }
        self.done = true;
        placed
    }

    fn place_now(&self, replace: Replace) -> Result<(), OutputError> {
        sync_tree(&self.tmp, self.kind).map_err(io_at(&self.target, "syncing it to disk"))?;
        crate::fault::point("output_before_rename");
        let target = &self.target;
        let refused = |about| Err(OutputError::Refused { path: target.clone(), about });
        match std::fs::symlink_metadata(target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(target, "looking at the target")(e)),
            Ok(m) if m.is_dir() => {
                if std::fs::read_dir(target).map(|mut d| d.next().is_some()).unwrap_or(true) {
                    return refused("is a folder that is not empty; not replaced");
                }
                std::fs::remove_dir(target).map_err(io_at(target, "removing the empty folder there"))?;
            }
            // rename(2) replaces it in one step below.
            Ok(m) if m.is_file() && replace == Replace::File && self.kind == Kind::File => {}
            Ok(m) if m.is_file() && m.len() == 0 => {
                std::fs::remove_file(target).map_err(io_at(target, "removing the empty file there"))?;
            }
            Ok(m) if m.is_file() => return refused("is a file that is not empty; not replaced"),
            Ok(_) => return refused("is neither a file nor a folder; not replaced"),
        }
        match (self.kind, replace) {
            (Kind::File, Replace::File) => std::fs::rename(&self.tmp, target),
            _ => fsops::rename_noreplace(&self.tmp, target),
        }
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => {
                OutputError::Refused { path: target.clone(), about: "appeared while it was written; not replaced" }
            }
            _ => io_at(target, "renaming into place")(e),
        })?;
        fsops::fsync_dir(folder_of(target)).map_err(io_at(folder_of(target), "syncing the folder"))
    }

    /// Remove the temporary output (after a failure); the same as dropping it.
    pub fn discard(mut self) {
        self.remove_tmp();
        self.done = true;
    }

    fn remove_tmp(&self) {
        let _ = match self.kind {
            Kind::File => std::fs::remove_file(&self.tmp),
            Kind::Folder => std::fs::remove_dir_all(&self.tmp),
        };
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            self.remove_tmp();
        }
    }
}

/// Remove what an earlier attempt at a target named `name` in `folder` left, once the process
/// that wrote it is gone (a crash, a kill, a power cut): its temporary name carries its pid.
fn remove_stale(folder: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(folder) else { return };
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(PARTIAL_PREFIX)) else { continue };
        let Some((pid, rest)) = rest.split_once('-') else { continue };
        let Ok(pid) = pid.parse::<i32>() else { continue };
        if rest != name || pid <= 0 || process_alive(pid) {
            continue;
        }
        let path = e.path();
        let removed = match e.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        match removed {
            Ok(()) => tracing::info!("removed an earlier attempt's partial output"),
            Err(e) => tracing::warn!(error = %e, "could not remove an earlier partial output"),
        }
        tracing::debug!(path = %path.display(), "earlier partial output");
    }
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// fsync a file, or every file and folder of a folder (children before their folder).
fn sync_tree(path: &Path, kind: Kind) -> io::Result<()> {
    if kind == Kind::File {
        return File::open(path)?.sync_all();
    }
    for e in std::fs::read_dir(path)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            sync_tree(&e.path(), Kind::Folder)?;
        } else if t.is_file() {
            File::open(e.path())?.sync_all()?;
        }
    }
    fsops::fsync_dir(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_name_is_in_the_current_folder() {
        assert_eq!(folder_of(Path::new("pkg")), Path::new("."));
        assert_eq!(folder_of(Path::new("./pkg")), Path::new("."));
        assert_eq!(folder_of(Path::new("../pkg")), Path::new(".."));
        assert_eq!(folder_of(Path::new("/tmp/a b/pkg.zip")), Path::new("/tmp/a b"));
    }

    #[test]
    fn files_and_folders_are_placed_and_failures_leave_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("bevis-åäö.html");
        write_file(&target, Replace::File, |f| io::Write::write_all(f, b"one")).expect("placed");
        write_file(&target, Replace::File, |f| io::Write::write_all(f, b"two")).expect("replaced");
        assert_eq!(std::fs::read(&target).expect("read"), b"two");
        // A package never replaces a file with content.
        let err = write_file(&target, Replace::OnlyEmpty, |_| Ok(())).expect_err("refused");
        assert!(matches!(err, OutputError::Refused { .. }), "{err}");
        assert_eq!(std::fs::read(&target).expect("read"), b"two");
        // A failed write leaves no temporary behind.
        let failed = write_file(&dir.path().join("x"), Replace::File, |_| Err(io::Error::other("disk full")));
        assert!(failed.expect_err("failed").to_string().contains("disk full"));
        let pkg = dir.path().join("pkg");
        std::fs::create_dir(&pkg).expect("an empty folder may be replaced");
        let p = begin_folder(&pkg).expect("begin");
        std::fs::create_dir(p.temp_path().join("files")).expect("mkdir");
        std::fs::write(p.temp_path().join("files/a"), b"a").expect("write");
        p.place(Replace::OnlyEmpty).expect("placed");
        assert_eq!(std::fs::read(pkg.join("files/a")).expect("read"), b"a");
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("ls")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(PARTIAL_PREFIX))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let err = begin_file(&dir.path().join("no/such/folder.zip")).expect_err("no folder");
        assert_eq!(err.to_string(), format!("{}: folder does not exist", dir.path().join("no/such").display()));
    }

    #[test]
    fn a_dead_process_s_partial_output_is_removed_by_the_next_attempt() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A pid above the kernel's limit (pid_max is at most 2^22) never runs.
        let stale = dir.path().join(format!("{PARTIAL_PREFIX}99999999-pkg"));
        std::fs::create_dir_all(stale.join("files")).expect("stale");
        let other = dir.path().join(format!("{PARTIAL_PREFIX}99999999-other"));
        std::fs::write(&other, b"x").expect("other");
        let p = begin_folder(&dir.path().join("pkg")).expect("begin");
        assert!(!stale.exists(), "removed");
        assert!(other.exists(), "another target's partial output is not touched");
        drop(p);
    }
}
