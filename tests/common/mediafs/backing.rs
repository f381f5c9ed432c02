//! The one layer through which the test filesystem changes its backing directory.
//!
//! Every mutation the FUSE handlers make (create, write, truncate, set times, mkdir, rmdir,
//! unlink, rename) and every durability request (fsync of a file, fsync of a directory) is a
//! method here; the handlers in `mod.rs` never call `std::fs` to change anything. Today each
//! method applies its change to the backing directory at once (what MediaProvider does: it
//! passes through to the lower filesystem).
//!
//! Power-cut mode, later (LazyFS-like, the house issue): this is where it goes without touching
//! the handlers. Each method would first append an undo record to an in-memory journal (the
//! old bytes of a written range, the old size, the name before a rename, the content of an
//! unlinked file), `fsync`/`fsync_dir` would drop the records they make durable (a file's data
//! and size; a directory's entries), and `cut()` would apply the remaining undo records
//! newest first and then refuse every further request until remount. That is exactly "what
//! was not fsynced is lost at a power cut", with the same FUSE traits on top.

use std::fs::File;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::Path;

/// Applies changes to the backing directory (pass-through; see the module doc for the
/// power-cut mode this is shaped for).
#[derive(Debug, Default)]
pub struct Backing;

impl Backing {
    /// Create (or open for writing) a regular file. MediaProvider's `pf_create` forces mode
    /// 0664 whatever the caller asked, so do we.
    pub fn create(&self, path: &Path, flags: i32) -> io::Result<File> {
        let pass = flags & !(libc::O_ACCMODE | libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_APPEND);
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .create_new(flags & libc::O_EXCL != 0)
            .truncate(flags & libc::O_TRUNC != 0)
            .mode(0o664)
            .custom_flags(pass & !libc::O_DIRECT)
            .open(path)
    }

    /// Open an existing file for writing (`O_TRUNC` is a mutation too).
    pub fn open_for_write(&self, path: &Path, flags: i32) -> io::Result<File> {
        let pass = flags & !(libc::O_ACCMODE | libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_APPEND);
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .truncate(flags & libc::O_TRUNC != 0)
            .custom_flags(pass & !libc::O_DIRECT)
            .open(path)
    }

    pub fn write(&self, file: &File, offset: u64, data: &[u8]) -> io::Result<usize> {
        file.write_all_at(data, offset)?;
        Ok(data.len())
    }

    pub fn truncate(&self, path: &Path, file: Option<&File>, size: u64) -> io::Result<()> {
        match file {
            Some(f) => f.set_len(size),
            None => std::fs::OpenOptions::new().write(true).open(path)?.set_len(size),
        }
    }

    /// Set access/modification times (`None` leaves one as it is).
    pub fn set_times(
        &self,
        path: &Path,
        atime: Option<libc::timespec>,
        mtime: Option<libc::timespec>,
    ) -> io::Result<()> {
        let omit = libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT };
        let times = [atime.unwrap_or(omit), mtime.unwrap_or(omit)];
        let c = cstr(path)?;
        // SAFETY: valid NUL-terminated path and a two-element timespec array.
        if unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// MediaProvider's `pf_mkdir` forces 0775.
    pub fn mkdir(&self, path: &Path) -> io::Result<()> {
        std::fs::DirBuilder::new().mode(0o775).create(path)
    }

    pub fn mknod(&self, path: &Path, mode: u32, rdev: u32) -> io::Result<()> {
        let c = cstr(path)?;
        // SAFETY: valid NUL-terminated path.
        if unsafe { libc::mknod(c.as_ptr(), (mode & !0o777) | 0o664, rdev as libc::dev_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn rmdir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }

    pub fn unlink(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    /// A plain `rename(2)`: it replaces an existing destination, as MediaProvider's
    /// `renameForFuse` (`Os.rename`) does. Flags never reach here (refused above).
    pub fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    pub fn fsync(&self, file: &File, datasync: bool) -> io::Result<()> {
        if datasync {
            file.sync_data()
        } else {
            file.sync_all()
        }
    }

    pub fn fsync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

fn cstr(p: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}
