//! The one layer through which the test filesystem changes its backing directory.
//!
//! Every mutation the FUSE handlers make (create, write, truncate, set times, mkdir, rmdir,
//! unlink, rename) and every durability request (fsync of a file, fsync of a directory) is a
//! method here; the handlers in `mod.rs` never call `std::fs` to change anything. Today each
//! method applies its change to the backing directory at once (what MediaProvider does: it
//! passes through to the lower filesystem).
//!
//! With a [`PowerCut`] journal (power-cut mode, [`super::power`]) each method first takes the
//! journal's lock and records how to take its change back (the old bytes of a file before its
//! first change since its last fsync; an undo record for each entry change), `fsync` and
//! `fsync_dir` commit what they make durable, and after a cut every mutation fails with `EIO`.
//! Without one, nothing is recorded: a plain pass-through.

use std::fs::File;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use super::power::{Guard, PowerCut};

/// Applies changes to the backing directory, journalled when `power` is set.
#[derive(Debug, Default)]
pub struct Backing {
    pub power: Option<Arc<PowerCut>>,
    /// MediaProvider's modes (0664 files, 0775 directories, chmod ignored); off: as asked.
    pub phone: bool,
}

impl Backing {
    fn guard(&self) -> io::Result<Option<Guard<'_>>> {
        self.power.as_ref().map(|p| p.begin()).transpose()
    }

    /// Create (or open for writing) a regular file. MediaProvider's `pf_create` forces mode
    /// 0664 whatever the caller asked, so do we (with the phone traits on).
    pub fn create(&self, path: &Path, flags: i32, mode: u32) -> io::Result<File> {
        let mut g = self.guard()?;
        let existed = std::fs::symlink_metadata(path).is_ok();
        if let (Some(g), true) = (g.as_mut(), existed && flags & libc::O_TRUNC != 0) {
            g.before_data(ino_of(path)?, || std::fs::read(path))?;
        }
        let pass = flags & !(libc::O_ACCMODE | libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_APPEND);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .create_new(flags & libc::O_EXCL != 0)
            .truncate(flags & libc::O_TRUNC != 0)
            .mode(if self.phone { 0o664 } else { mode & 0o7777 })
            .custom_flags(pass & !libc::O_DIRECT)
            .open(path)?;
        if let (Some(g), false) = (g.as_mut(), existed) {
            g.created(path)?;
        }
        Ok(f)
    }

    /// Open an existing file for writing (`O_TRUNC` is a mutation too).
    pub fn open_for_write(&self, path: &Path, flags: i32) -> io::Result<File> {
        let mut g = self.guard()?;
        if let (Some(g), true) = (g.as_mut(), flags & libc::O_TRUNC != 0) {
            g.before_data(ino_of(path)?, || std::fs::read(path))?;
        }
        let pass = flags & !(libc::O_ACCMODE | libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_APPEND);
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .truncate(flags & libc::O_TRUNC != 0)
            .custom_flags(pass & !libc::O_DIRECT)
            .open(path)
    }

    pub fn write(&self, file: &File, offset: u64, data: &[u8]) -> io::Result<usize> {
        let mut g = self.guard()?;
        if let Some(g) = g.as_mut() {
            g.before_data_of(file)?;
        }
        file.write_all_at(data, offset)?;
        Ok(data.len())
    }

    pub fn truncate(&self, path: &Path, file: Option<&File>, size: u64) -> io::Result<()> {
        let mut g = self.guard()?;
        let opened;
        let f = match file {
            Some(f) => f,
            None => {
                opened = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
                &opened
            }
        };
        if let Some(g) = g.as_mut() {
            g.before_data_of(f)?;
        }
        f.set_len(size)
    }

    /// Set access/modification times (`None` leaves one as it is). Not journalled.
    pub fn set_times(
        &self,
        path: &Path,
        atime: Option<libc::timespec>,
        mtime: Option<libc::timespec>,
    ) -> io::Result<()> {
        let _g = self.guard()?;
        let omit = libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT };
        let times = [atime.unwrap_or(omit), mtime.unwrap_or(omit)];
        let c = cstr(path)?;
        // SAFETY: valid NUL-terminated path and a two-element timespec array.
        if unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// `chmod` (only where the phone traits are off). Not journalled.
    pub fn chmod(&self, path: &Path, mode: u32) -> io::Result<()> {
        let _g = self.guard()?;
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777))
    }

    /// MediaProvider's `pf_mkdir` forces 0775 (with the phone traits on).
    pub fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        let mut g = self.guard()?;
        std::fs::DirBuilder::new().mode(if self.phone { 0o775 } else { mode & 0o7777 }).create(path)?;
        if let Some(g) = g.as_mut() {
            g.mkdir(path);
        }
        Ok(())
    }

    pub fn mknod(&self, path: &Path, mode: u32, rdev: u32) -> io::Result<()> {
        let mut g = self.guard()?;
        let c = cstr(path)?;
        // SAFETY: valid NUL-terminated path.
        if unsafe { libc::mknod(c.as_ptr(), (mode & !0o777) | 0o664, rdev as libc::dev_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if let Some(g) = g.as_mut() {
            g.created(path)?;
        }
        Ok(())
    }

    pub fn rmdir(&self, path: &Path) -> io::Result<()> {
        let mut g = self.guard()?;
        std::fs::remove_dir(path)?;
        if let Some(g) = g.as_mut() {
            g.rmdir(path);
        }
        Ok(())
    }

    pub fn unlink(&self, path: &Path) -> io::Result<()> {
        let mut g = self.guard()?;
        let Some(g) = g.as_mut() else { return std::fs::remove_file(path) };
        let held = g.hold(path)?;
        if let Err(e) = std::fs::remove_file(path) {
            let _ = std::fs::remove_file(&held);
            return Err(e);
        }
        g.unlinked(path, held);
        Ok(())
    }

    /// A `rename(2)` that replaces an existing destination, as MediaProvider's
    /// `renameForFuse` (`Os.rename`) does. `flags` (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`)
    /// only reach here where the phone traits are off; `RENAME_EXCHANGE` is not supported.
    pub fn rename(&self, from: &Path, to: &Path, flags: u32) -> io::Result<()> {
        if flags & !libc::RENAME_NOREPLACE != 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut g = self.guard()?;
        if flags & libc::RENAME_NOREPLACE != 0 {
            let (f, t) = (cstr(from)?, cstr(to)?);
            // SAFETY: valid NUL-terminated paths for the duration of the call.
            let rc = unsafe {
                libc::syscall(libc::SYS_renameat2, libc::AT_FDCWD, f.as_ptr(), libc::AT_FDCWD, t.as_ptr(), flags)
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            if let Some(g) = g.as_mut() {
                g.renamed(from, to, None, false);
            }
            return Ok(());
        }
        let target = std::fs::symlink_metadata(to).ok();
        let Some(g) = g.as_mut() else { return std::fs::rename(from, to) };
        let replaced_dir = target.as_ref().is_some_and(|m| m.is_dir());
        let same = match (&target, std::fs::symlink_metadata(from)) {
            (Some(t), Ok(f)) => t.ino() == f.ino() && t.dev() == f.dev(),
            _ => false,
        };
        let held = match &target {
            Some(m) if !m.is_dir() && !same => Some(g.hold(to)?),
            _ => None,
        };
        if let Err(e) = std::fs::rename(from, to) {
            if let Some(h) = held {
                let _ = std::fs::remove_file(h);
            }
            return Err(e);
        }
        if !same {
            g.renamed(from, to, held, replaced_dir);
        }
        Ok(())
    }

    /// A hard link (only where the phone traits are off).
    pub fn link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut g = self.guard()?;
        std::fs::hard_link(from, to)?;
        if let Some(g) = g.as_mut() {
            g.linked(to);
        }
        Ok(())
    }

    pub fn fsync(&self, file: &File, datasync: bool) -> io::Result<()> {
        // In power-cut mode the journal decides what is durable; the backing disk need not.
        match self.guard()? {
            Some(mut g) => g.fsync(file.metadata()?.ino()),
            None if datasync => file.sync_data()?,
            None => file.sync_all()?,
        }
        Ok(())
    }

    pub fn fsync_dir(&self, dir: &Path) -> io::Result<()> {
        let dir_file = File::open(dir)?;
        match self.guard()? {
            Some(mut g) => g.fsync_dir(dir),
            None => dir_file.sync_all()?,
        }
        Ok(())
    }
}

fn ino_of(p: &Path) -> io::Result<u64> {
    std::fs::symlink_metadata(p).map(|m| m.ino())
}

fn cstr(p: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}
