//! Low-level file operations the custody chain relies on: opening without following
//! symlinks, identifying a file by device/inode/size/mtime, hashing from the open
//! descriptor, rename that never overwrites, and directory fsync.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Identity and state of a file at one instant. Two equal `FileId`s mean: same inode, same
/// size, same modification time; the bytes are presumed unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub mode: u32,
}

impl FileId {
    /// The identity in `meta`. An mtime outside what nanoseconds in an `i64` can hold (before
    /// 1678 or after 2262: a camera with a wrong clock, a file touched on purpose) is clamped
    /// to the nearest one, never wrapped: it still identifies the file with its inode and size.
    pub fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: mtime_ns(meta.mtime(), meta.mtime_nsec()),
            mode: meta.mode() & 0o7777,
        }
    }

    /// Same inode, size and mtime (mode may differ: the store tightens it).
    pub fn same_content_as(&self, other: &FileId) -> bool {
        self.dev == other.dev && self.ino == other.ino && self.size == other.size && self.mtime_ns == other.mtime_ns
    }
}

/// Seconds and nanoseconds as nanoseconds since the epoch, clamped to what an `i64` holds.
pub fn mtime_ns(secs: i64, nsec: i64) -> i64 {
    let ns = i128::from(secs) * 1_000_000_000 + i128::from(nsec);
    i64::try_from(ns).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX })
}

/// Why a path could not be opened as a regular file.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("is a symbolic link; not followed")]
    Symlink,
    #[error("is not a regular file ({0})")]
    NotRegular(&'static str),
    #[error("vanished before it could be read")]
    Vanished,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Open `path` read-only without following a symlink and without blocking on a FIFO;
/// return the descriptor and the file's identity taken from that descriptor.
pub fn open_regular(path: &Path) -> Result<(File, FileId), OpenError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => OpenError::Symlink,
            Some(libc::ENOENT) => OpenError::Vanished,
            Some(libc::ENXIO) => OpenError::NotRegular("socket or device"),
            _ => OpenError::Io(e),
        })?;
    let meta = file.metadata()?;
    let ft = meta.file_type();
    if !ft.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "a device"
        };
        return Err(OpenError::NotRegular(what));
    }
    Ok((file, FileId::of(&meta)))
}

/// Current identity of whatever is at `path` now, without following symlinks.
pub fn lstat_id(path: &Path) -> io::Result<FileId> {
    std::fs::symlink_metadata(path).map(|m| FileId::of(&m))
}

/// SHA-256 of a whole file read through its descriptor (from offset 0). When `keep` is
/// `Some(limit)` and the file is no larger than `limit`, the bytes are returned too, so the
/// classifier reads exactly the bytes that were hashed.
pub fn hash_fd(file: &File, keep: Option<u64>) -> io::Result<(String, u64, Option<Vec<u8>>)> {
    let mut hasher = Sha256::new();
    let size_hint = file.metadata().map(|m| m.len()).unwrap_or(0);
    let keep_bytes = keep.is_some_and(|limit| size_hint <= limit);
    let mut kept = if keep_bytes { Vec::with_capacity(size_hint as usize) } else { Vec::new() };
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = file.read_at(&mut buf, offset)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if keep_bytes {
            kept.extend_from_slice(&buf[..n]);
        }
        offset += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), offset, keep_bytes.then_some(kept)))
}

/// SHA-256 of the file at `path` (not following symlinks).
pub fn hash_path(path: &Path) -> io::Result<String> {
    let (file, _) = open_regular(path).map_err(|e| match e {
        OpenError::Io(e) => e,
        OpenError::Vanished => io::Error::from(io::ErrorKind::NotFound),
        other => io::Error::other(other.to_string()),
    })?;
    hash_fd(&file, None).map(|(h, _, _)| h)
}

/// Read the start of a file for sniffing.
pub fn read_head(file: &File, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let k = file.read_at(&mut buf[got..], got as u64)?;
        if k == 0 {
            break;
        }
        got += k;
    }
    buf.truncate(got);
    Ok(buf)
}

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))
}

/// `renameat2(RENAME_NOREPLACE)` itself: the filesystem's error as it is (`EINVAL` or `ENOSYS`
/// where it refuses the flag).
fn renameat2_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: both are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `rename(2)` that fails with `AlreadyExists` instead of replacing `to`.
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let Err(err) = renameat2_noreplace(from, to) else { return Ok(()) };
    match err.raw_os_error() {
        // Filesystems without RENAME_NOREPLACE: link() also refuses to overwrite.
        Some(libc::EINVAL) | Some(libc::ENOSYS) => match std::fs::hard_link(from, to) {
            Ok(()) => std::fs::remove_file(from),
            // Neither flags nor links (Android's MediaProvider FUSE daemon refuses both).
            Err(e) if no_links(&e) => rename_claiming(from, to),
            Err(e) => Err(e),
        },
        _ => Err(err),
    }
}

/// A rename into a folder of the agent's own (the staging folder), under a name no other file
/// can have: `RENAME_NOREPLACE` where the filesystem has it; where it refuses the flag (Android's
/// shared storage) a plain rename once the name is checked free. Callers hold the move lock.
/// Unlike [`rename_claiming`], nothing is renamed over an existing file, which on ext4 makes
/// the kernel write back all of the renamed file's data first (`auto_da_alloc`): tens of
/// milliseconds for a fresh video.
pub fn rename_into_own(from: &Path, to: &Path) -> io::Result<()> {
    let Err(err) = renameat2_noreplace(from, to) else { return Ok(()) };
    match err.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) => match std::fs::symlink_metadata(to) {
            Ok(_) => Err(io::Error::new(io::ErrorKind::AlreadyExists, "the name in staging is taken")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::rename(from, to),
            Err(e) => Err(e),
        },
        _ => Err(err),
    }
}

/// Errors of `link(2)` on a filesystem that has no hard links at all.
fn no_links(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM) | Some(libc::EOPNOTSUPP) | Some(libc::EMLINK))
}

/// A rename that never replaces anything, on a filesystem with neither `RENAME_NOREPLACE` nor
/// `link()` (Android's shared storage: `FuseDaemon.cpp` answers `EINVAL` to rename flags and
/// `ENOSYS` to link). `to` is claimed first with `O_CREAT | O_EXCL`, which fails if anything
/// is there; then `from` is renamed over that empty placeholder of ours, after checking that
/// the path still names it, unchanged and empty. Callers hold the move lock. A process that
/// dies in between leaves an empty file at `to`: recovery removes a 0-byte file at a move's
/// destination (no bytes can be lost with it).
pub fn rename_claiming(from: &Path, to: &Path) -> io::Result<()> {
    let claim = create_exclusive(to)?;
    let mine = FileId::of(&claim.metadata()?);
    drop(claim);
    let still_mine = |p: &Path| lstat_id(p).is_ok_and(|now| now.same_content_as(&mine) && now.size == 0);
    if !still_mine(to) {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, "destination was written to while claimed"));
    }
    if let Err(e) = std::fs::rename(from, to) {
        if still_mine(to) {
            let _ = std::fs::remove_file(to);
        }
        return Err(e);
    }
    Ok(())
}

/// `fsync` a directory so a rename or unlink in it is durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// fsync the parent directory of `path`.
pub fn fsync_parent(path: &Path) -> io::Result<()> {
    fsync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Create a new file for writing, refusing to follow or replace anything, mode 0600.
pub fn create_exclusive(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Copy all bytes of `src` (from offset 0) into `dst`, hashing what was written.
/// `on_first_chunk` runs after the first chunk (a fault point for crash tests).
pub fn copy_hashing(src: &File, dst: &mut File, on_first_chunk: impl Fn()) -> io::Result<String> {
    use std::io::Write;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = src.read_at(&mut buf, offset)?;
        if n == 0 {
            break;
        }
        dst.write_all(&buf[..n])?;
        hasher.update(&buf[..n]);
        if offset == 0 {
            on_first_chunk();
        }
        offset += n as u64;
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Set a file's modification time from a nanosecond timestamp (keeps the capture mtime on copies).
pub fn set_mtime(file: &File, mtime_ns: i64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let ts = libc::timespec { tv_sec: mtime_ns.div_euclid(1_000_000_000), tv_nsec: mtime_ns.rem_euclid(1_000_000_000) };
    let times = [libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT }, ts];
    // SAFETY: fd is open for the duration of the call; `times` points at two timespecs.
    let rc = unsafe { libc::futimens(file.as_raw_fd(), times.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Make sure a `SIGIO` cannot end the process: if its disposition is still the default
/// (terminate), set it to ignored. Once per process; a handler someone installed is kept
/// (it then sees a lease break as a spurious `SIGIO`, which a `SIGIO` handler must expect).
/// Nothing in fotovakt uses `SIGIO` (no `O_ASYNC`, no `F_SETOWN`) but the lease probe.
pub fn sigio_harmless() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sigaction with a zeroed struct (a valid "no flags, empty mask" value) reads
        // the current disposition; the second call installs SIG_IGN, which runs no code.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGIO, std::ptr::null(), &mut old) != 0 || old.sa_sigaction != libc::SIG_DFL {
                return;
            }
            let mut ignore: libc::sigaction = std::mem::zeroed();
            ignore.sa_sigaction = libc::SIG_IGN;
            libc::sigemptyset(&mut ignore.sa_mask);
            if libc::sigaction(libc::SIGIO, &ignore, std::ptr::null_mut()) != 0 {
                tracing::warn!(error = %io::Error::last_os_error(), "could not ignore SIGIO; a lease break could end the process");
            }
        }
    });
}

/// Set permission bits through the descriptor.
pub fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

/// Does another process hold this file open for writing? Probed with a read lease, which
/// Linux refuses while any writer has the file open; the lease is dropped at once so no
/// writer is ever delayed. `None` where leases are not allowed (not the file's owner and no
/// CAP_LEASE, or a filesystem without leases): callers then rely on events and settling.
///
/// A writer that opens the file between taking the lease and dropping it breaks the lease,
/// and the kernel then signals the lease holder: this process. Taking a lease makes the
/// process the file's owner for signals (`F_SETOWN` is implied), and the signal is the one
/// `F_SETSIG` names, `SIGIO` when none is set, whose default action terminates the process.
/// Naming another signal with `F_SETSIG` would only move the problem to that signal's
/// disposition, and `F_SETSIG` 0 *is* `SIGIO`; so before the first lease `SIGIO` is set to
/// be ignored process-wide, unless someone installed a handler for it ([`sigio_harmless`]).
/// The lease break itself needs nothing from us: the writer's `open` waits only until the
/// lease is dropped, a moment later.
pub fn open_for_writing(file: &File) -> Option<bool> {
    use std::os::fd::AsRawFd;
    sigio_harmless();
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own; F_SETLEASE takes an int argument.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) };
    if rc == 0 {
        // A test holds the lease here while a writer opens the file (the SIGIO race).
        crate::fault::point("lease_held");
        // SAFETY: as above.
        unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK) };
        return Some(false);
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EBUSY) => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtimes_beyond_what_i64_nanoseconds_hold_are_clamped_not_wrapped() {
        assert_eq!(mtime_ns(1, 5), 1_000_000_005);
        assert_eq!(mtime_ns(-1, 0), -1_000_000_000);
        // 2300-01-01 and the year 9999: after 2262, an `i64` of nanoseconds is full.
        assert_eq!(mtime_ns(10_413_792_000, 0), i64::MAX);
        assert_eq!(mtime_ns(253_402_300_799, 999_999_999), i64::MAX);
        assert_eq!(mtime_ns(-10_413_792_000, 0), i64::MIN);
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("IMG_far.jpg");
        let f = std::fs::File::create(&p).expect("create");
        let far = libc::timespec { tv_sec: 10_413_792_000, tv_nsec: 0 };
        // SAFETY: the descriptor is open; `times` points at two timespecs.
        let rc = unsafe { libc::futimens(std::os::fd::AsRawFd::as_raw_fd(&f), [far, far].as_ptr()) };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        let id = lstat_id(&p).expect("lstat");
        assert_eq!(id.mtime_ns, i64::MAX);
    }
}
