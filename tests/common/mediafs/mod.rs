//! `mediafs`: a FUSE filesystem (the `fuser` crate) that behaves like Android's shared storage,
//! MediaProvider's FUSE daemon (`packages/providers/MediaProvider`, `jni/FuseDaemon.cpp`), for
//! the integration tests, the crash campaign, the storm and the copy-path benchmark.
//!
//! It passes through to a backing directory, with MediaProvider's traits:
//!
//! | trait | AOSP source it follows |
//! |---|---|
//! | `rename` with any flag (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`, …) fails with `EINVAL` | `do_rename`: `if (flags != 0) return EINVAL;` |
//! | no hard links: `link` fails (the daemon answers `ENOSYS`; Linux 6.6+ gives the caller `EPERM`) | `pf_link` is commented out, so libfuse answers `ENOSYS` |
//! | no symlinks: `symlink` fails with `ENOSYS` | `pf_symlink` is commented out likewise |
//! | a plain rename replaces an existing destination | `MediaProvider.renameForFuse` ends in `Os.rename` |
//! | `chmod`/`chown` are accepted and ignored; new files are 0664, directories 0775 | `pf_setattr` ("chmod/chown should NEVER be implemented"), `pf_create`, `pf_mkdir` |
//! | `unlink` or `rename` of chosen paths fails (`EACCES`, `EROFS`, …): [`MediaFs::fail`] | `pf_unlink` returns what `MediaProvider.deleteFileForFuse` says (`EPERM`/`EACCES` for a caller without write access); `do_rename` returns `MediaProvider.renameForFuse`'s errno |
//!
//! Besides those traits, a failing disk can be injected on any mount: every write under a
//! path ([`Op::Write`]: data writes, creating files and folders, truncating) or every `fsync`
//! ([`Op::Fsync`]) fails with the errno given, `EIO` or `ENOSPC` say, until
//! [`MediaFs::clear_faults`]; reads, renames, unlinks and `statfs` go on working, as on a disk
//! whose writes fail. Faults match a path and everything under it.
//! | with [`MediaFs::set_redaction`] on, a read-only open serves the EXIF GPS value bytes as zeros; an open for writing is not redacted; redacted handles use direct I/O | `pf_open` (`GetRedactionInfo` for readers without `ACCESS_MEDIA_LOCATION`, none for writers), `create_handle_for_node` (`direct_io` when redaction is needed), `do_read_with_redaction`, `LocalCallingIdentity.hasPermission(PERMISSION_IS_REDACTION_NEEDED)` |
//! | changes made through the mount raise inotify events (the kernel's VFS does it for FUSE) | how apps and fotovakt see camera writes on `/storage/emulated/0` |
//! | its own `st_dev`: a rename to any other filesystem (the store on `/data`) is `EXDEV` | `/storage/emulated` is a FUSE mount; app-private storage is on `/data` |
//!
//! Every change to the backing directory goes through [`backing::Backing`]. Mounted with
//! [`Options::power`] set ([`MediaFs::mount_with`]), that layer journals what is not durable
//! yet and [`MediaFs::power_cut`] drops it, LazyFS-like ([`power`] has the model). With
//! [`Options::phone`] off the traits above are off too (rename flags, hard links allowed): a
//! plain pass-through with power-cut semantics, for the store and its SQLite ledger (POSIX
//! locks are the kernel's local ones, as fuser does not ask for `FUSE_POSIX_LOCKS`; the
//! ledger's `-shm` is mmapped through the page cache).
//!
//! Mounting needs `/dev/fuse` and root (the tests run as root; CI too). [`MediaFs::mount_or_skip`]
//! skips elsewhere (`common::skip`: a `SKIP:` line, a failure under CI) and returns `None`.
//! Attribute and entry TTLs are zero, so a stat always reaches the daemon (an injected fault
//! or a rename is seen at once).
#![allow(dead_code)]

pub mod backing;
pub mod power;
pub mod redact;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::fs::{DirEntryExt, FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    AccessFlags, BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use backing::Backing;

/// Which operation an injected fault refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Unlink,
    /// Matched on the rename's source path.
    Rename,
    /// Every write: `write`, `create`, `mkdir`, `mknod`, a truncate.
    Write,
    /// `fsync` and `fsyncdir`.
    Fsync,
}

/// What the tests can change while the filesystem is mounted.
#[derive(Debug, Default)]
pub struct Control {
    redact_gps: AtomicBool,
    /// (op, path relative to the mount root (and everything under it), or `None` for every
    /// path) → errno.
    faults: Mutex<Vec<(Op, Option<PathBuf>, i32)>>,
    /// Requests that an injected fault refused.
    refused: AtomicU64,
}

impl Control {
    fn fault(&self, op: Op, rel: &Path) -> Option<i32> {
        let faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        let hit =
            faults.iter().find(|(o, p, _)| *o == op && p.as_deref().is_none_or(|p| rel.starts_with(p))).map(|f| f.2);
        if hit.is_some() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }
}

/// How to mount.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// MediaProvider's traits (the table above). Default: on.
    pub phone: bool,
    /// Power-cut mode with this durability model. Default: off.
    pub power: Option<power::Model>,
}

impl Default for Options {
    fn default() -> Options {
        Options { phone: true, power: None }
    }
}

/// A mounted `mediafs`; unmounted on drop.
pub struct MediaFs {
    pub backing: PathBuf,
    pub mountpoint: PathBuf,
    pub options: Options,
    control: Arc<Control>,
    power: Option<Arc<power::PowerCut>>,
    session: Option<fuser::BackgroundSession>,
}

impl MediaFs {
    /// Why this machine cannot mount it, if it cannot.
    pub fn unavailable() -> Option<String> {
        if !Path::new("/dev/fuse").exists() {
            return Some("/dev/fuse is missing (no FUSE in this kernel or container)".into());
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Some("not root, so a FUSE filesystem cannot be mounted without fusermount".into());
        }
        None
    }

    /// Mount `backing` at `mountpoint` (both must exist), phone-like, no power-cut mode.
    pub fn mount(backing: &Path, mountpoint: &Path) -> io::Result<MediaFs> {
        MediaFs::mount_with(backing, mountpoint, Options::default())
    }

    /// Mount `backing` at `mountpoint` (both must exist) with `options`.
    pub fn mount_with(backing: &Path, mountpoint: &Path, options: Options) -> io::Result<MediaFs> {
        MediaFs::mount_inner(backing, mountpoint, options, Arc::new(Control::default()))
    }

    fn mount_inner(backing: &Path, mountpoint: &Path, options: Options, control: Arc<Control>) -> io::Result<MediaFs> {
        let backing = backing.canonicalize()?;
        let root_ino = std::fs::metadata(&backing)?.ino();
        let power = match options.power {
            Some(model) => Some(Arc::new(power::PowerCut::new(model, &backing)?)),
            None => None,
        };
        let fs = Fs {
            root: backing.clone(),
            root_ino,
            phone: options.phone,
            control: control.clone(),
            backing: Backing { power: power.clone(), phone: options.phone },
            paths: Mutex::new(HashMap::from([(INodeNo::ROOT.0, backing.clone())])),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
        };
        let mut config = fuser::Config::default();
        config.mount_options = vec![MountOption::FSName("mediafs".into()), MountOption::Subtype("mediafs".into())];
        config.n_threads = Some(4);
        let session = fuser::spawn_mount(fs, mountpoint, &config)?;
        let mediafs =
            MediaFs { backing, mountpoint: mountpoint.to_path_buf(), options, control, power, session: Some(session) };
        // The mount is live once the kernel reports a different device for the mount point.
        let parent_dev = std::fs::metadata(mountpoint.parent().unwrap_or(Path::new("/")))?.dev();
        for _ in 0..200 {
            if std::fs::metadata(mountpoint).map(|m| m.dev() != parent_dev).unwrap_or(false) {
                return Ok(mediafs);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(io::Error::other("mediafs did not appear at the mount point"))
    }

    /// Mount `dir/backing` at `dir/mnt`, or skip (`common::skip`) and return `None` where this
    /// machine cannot (no `/dev/fuse`, not root, mount refused).
    pub fn mount_or_skip(dir: &Path, what: &str) -> Option<MediaFs> {
        if let Some(why) = MediaFs::unavailable() {
            crate::common::skip::skip(format!("{why}; {what} not exercised on the MediaProvider-like FUSE filesystem"));
            return None;
        }
        let (b, m) = (dir.join("backing"), dir.join("mnt"));
        std::fs::create_dir_all(&b).expect("backing dir");
        std::fs::create_dir_all(&m).expect("mount point");
        match MediaFs::mount(&b, &m) {
            Ok(fs) => Some(fs),
            Err(e) => {
                crate::common::skip::skip(format!(
                    "cannot mount a FUSE filesystem here ({e}); {what} not exercised on mediafs"
                ));
                None
            }
        }
    }

    /// Make `op` on `rel` and everything under it (relative to the mount root; `None`: every
    /// path) fail with `errno`.
    pub fn fail(&self, op: Op, rel: Option<&Path>, errno: i32) {
        self.control.faults.lock().unwrap_or_else(|p| p.into_inner()).push((op, rel.map(Path::to_path_buf), errno));
    }

    /// Remove every injected fault.
    pub fn clear_faults(&self) {
        self.control.faults.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// How many requests injected faults refused so far.
    pub fn refused(&self) -> u64 {
        self.control.refused.load(Ordering::Relaxed)
    }

    /// Serve EXIF GPS bytes as zeros to readers (a caller without `ACCESS_MEDIA_LOCATION`).
    pub fn set_redaction(&self, on: bool) {
        self.control.redact_gps.store(on, Ordering::SeqCst);
    }

    /// Cut the power (power-cut mode only): from now on every change fails with `EIO`, what
    /// was not durable is undone in the backing directory (see [`power`]), and the filesystem
    /// is unmounted. Kill the processes using it first (or let a fault point kill them), then
    /// [`MediaFs::remount`]. `rand` supplies the model's random choices.
    pub fn power_cut(&mut self, rand: &mut dyn FnMut() -> u64) -> io::Result<power::CutReport> {
        let pc = self.power.clone().ok_or_else(|| io::Error::other("not mounted in power-cut mode"))?;
        let report = pc.cut(rand);
        if let Some(s) = self.session.take() {
            if s.umount_and_join().is_err() {
                // Busy (a handle still open): detach it. Its daemon answers EIO to every change
                // until the last handle is closed, as a dead disk would.
                let c = std::ffi::CString::new(self.mountpoint.as_os_str().as_encoded_bytes())
                    .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
                // SAFETY: a valid NUL-terminated path.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        Ok(report)
    }

    /// Mount again after [`MediaFs::power_cut`] (the power is back): a fresh journal, the
    /// same options and faults.
    pub fn remount(&mut self) -> io::Result<()> {
        let mut again = MediaFs::mount_inner(&self.backing, &self.mountpoint, self.options, self.control.clone())?;
        self.power = again.power.take();
        self.session = again.session.take();
        Ok(())
    }

    /// Path relative to the mount root of a path under the mount point.
    pub fn rel<'a>(&self, p: &'a Path) -> &'a Path {
        p.strip_prefix(&self.mountpoint).unwrap_or(p)
    }
}

impl Drop for MediaFs {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            let _ = s.umount_and_join();
        }
    }
}

const TTL: Duration = Duration::ZERO;

struct Handle {
    file: File,
    /// The path relative to the mount root it was opened as (for injected write faults).
    rel: PathBuf,
    /// Zeroed byte ranges for this reader (empty: no redaction).
    redact: Vec<(u64, u64)>,
}

struct Fs {
    root: PathBuf,
    root_ino: u64,
    /// MediaProvider's traits on (rename flags and links refused).
    phone: bool,
    control: Arc<Control>,
    backing: Backing,
    /// FUSE inode → backing path. Inode numbers are the backing inodes (the root is 1).
    paths: Mutex<HashMap<u64, PathBuf>>,
    handles: Mutex<HashMap<u64, Handle>>,
    next_fh: AtomicU64,
}

fn errno(e: io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

fn time(sec: i64, nsec: i64) -> SystemTime {
    if sec >= 0 {
        UNIX_EPOCH + Duration::new(sec as u64, nsec as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(sec.unsigned_abs()) + Duration::from_nanos(nsec as u64)
    }
}

fn timespec(t: TimeOrNow) -> libc::timespec {
    match t {
        TimeOrNow::Now => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_NOW },
        TimeOrNow::SpecificTime(t) => {
            let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
            libc::timespec { tv_sec: d.as_secs() as libc::time_t, tv_nsec: d.subsec_nanos() as libc::c_long }
        }
    }
}

impl Fs {
    fn fuse_ino(&self, backing_ino: u64) -> u64 {
        if backing_ino == self.root_ino {
            INodeNo::ROOT.0
        } else if backing_ino == INodeNo::ROOT.0 {
            self.root_ino
        } else {
            backing_ino
        }
    }

    fn path(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        self.paths.lock().unwrap_or_else(|p| p.into_inner()).get(&ino.0).cloned().ok_or(Errno::ENOENT)
    }

    fn rel(&self, p: &Path) -> PathBuf {
        p.strip_prefix(&self.root).unwrap_or(p).to_path_buf()
    }

    fn attr(&self, m: &std::fs::Metadata) -> FileAttr {
        let kind = match m.mode() & libc::S_IFMT {
            libc::S_IFDIR => FileType::Directory,
            libc::S_IFLNK => FileType::Symlink,
            libc::S_IFIFO => FileType::NamedPipe,
            libc::S_IFSOCK => FileType::Socket,
            libc::S_IFCHR => FileType::CharDevice,
            libc::S_IFBLK => FileType::BlockDevice,
            _ => FileType::RegularFile,
        };
        FileAttr {
            ino: INodeNo(self.fuse_ino(m.ino())),
            size: m.size(),
            blocks: m.blocks(),
            atime: time(m.atime(), m.atime_nsec()),
            mtime: time(m.mtime(), m.mtime_nsec()),
            ctime: time(m.ctime(), m.ctime_nsec()),
            crtime: time(m.ctime(), m.ctime_nsec()),
            kind,
            perm: (m.mode() & 0o7777) as u16,
            nlink: m.nlink() as u32,
            uid: m.uid(),
            gid: m.gid(),
            rdev: m.rdev() as u32,
            blksize: m.blksize() as u32,
            flags: 0,
        }
    }

    /// lstat `path`, remember its inode, return its attributes.
    fn entry(&self, path: PathBuf) -> Result<FileAttr, Errno> {
        let m = std::fs::symlink_metadata(&path).map_err(errno)?;
        let attr = self.attr(&m);
        self.paths.lock().unwrap_or_else(|p| p.into_inner()).insert(attr.ino.0, path);
        Ok(attr)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.path(parent)?.join(name))
    }

    fn add_handle(&self, file: File, rel: PathBuf, redact: Vec<(u64, u64)>) -> FileHandle {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles.lock().unwrap_or_else(|p| p.into_inner()).insert(fh, Handle { file, rel, redact });
        FileHandle(fh)
    }

    /// An injected fault of `op` on the file open as `fh`.
    fn handle_fault(&self, op: Op, fh: FileHandle) -> Option<Errno> {
        let rel = self.handles.lock().unwrap_or_else(|p| p.into_inner()).get(&fh.0).map(|h| h.rel.clone())?;
        self.control.fault(op, &rel).map(Errno::from_i32)
    }

    /// An injected fault of `op` on `path` (a backing path).
    fn path_fault_of(&self, op: Op, path: &Path) -> Result<(), Errno> {
        match self.control.fault(op, &self.rel(path)) {
            Some(e) => Err(Errno::from_i32(e)),
            None => Ok(()),
        }
    }

    /// An injected write fault on `path` (a backing path).
    fn path_fault(&self, path: &Path) -> Result<(), Errno> {
        match self.control.fault(Op::Write, &self.rel(path)) {
            Some(e) => Err(Errno::from_i32(e)),
            None => Ok(()),
        }
    }

    fn with_handle<T>(&self, fh: FileHandle, f: impl FnOnce(&Handle) -> io::Result<T>) -> Result<T, Errno> {
        let handles = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        let h = handles.get(&fh.0).ok_or(Errno::EBADF)?;
        f(h).map_err(errno)
    }
}

impl Filesystem for Fs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.child(parent, name).and_then(|p| self.entry(p)) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.path(ino).and_then(|p| self.entry(p)) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // pf_setattr: size and times only; chmod/chown are accepted and ignored.
        let path = match self.path(ino) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        if let (Some(mode), false) = (mode, self.phone) {
            if let Err(e) = self.backing.chmod(&path, mode) {
                return reply.error(errno(e));
            }
        }
        if let Some(size) = size {
            if let Err(e) = self.path_fault(&path) {
                return reply.error(e);
            }
            let r = match fh {
                Some(fh) => self.with_handle(fh, |h| self.backing.truncate(&path, Some(&h.file), size)),
                None => self.backing.truncate(&path, None, size).map_err(errno),
            };
            if let Err(e) = r {
                return reply.error(e);
            }
        }
        if atime.is_some() || mtime.is_some() {
            if let Err(e) = self.backing.set_times(&path, atime.map(timespec), mtime.map(timespec)) {
                return reply.error(errno(e));
            }
        }
        match self.entry(path) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, _ino: INodeNo, reply: ReplyData) {
        reply.error(Errno::EINVAL);
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let r = self.child(parent, name).and_then(|p| {
            self.path_fault(&p)?;
            self.backing.mknod(&p, mode, rdev).map_err(errno)?;
            self.entry(p)
        });
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let r = self.child(parent, name).and_then(|p| {
            self.path_fault(&p)?;
            self.backing.mkdir(&p, mode & !umask).map_err(errno)?;
            self.entry(p)
        });
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let path = match self.child(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        if let Some(e) = self.control.fault(Op::Unlink, &self.rel(&path)) {
            return reply.error(Errno::from_i32(e));
        }
        match self.backing.unlink(&path) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.child(parent, name).and_then(|p| self.backing.rmdir(&p).map_err(errno)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, _target: &Path, reply: ReplyEntry) {
        // pf_symlink is not implemented in FuseDaemon.cpp.
        reply.error(Errno::ENOSYS);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        // do_rename: `if (flags != 0) return EINVAL;`
        if self.phone && !flags.is_empty() {
            return reply.error(Errno::EINVAL);
        }
        let (from, to) = match (self.child(parent, name), self.child(newparent, newname)) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(e), _) | (_, Err(e)) => return reply.error(e),
        };
        if let Some(e) = self.control.fault(Op::Rename, &self.rel(&from)) {
            return reply.error(Errno::from_i32(e));
        }
        match self.backing.rename(&from, &to, flags.bits()) {
            Ok(()) => {
                // Re-point the moved inode and, for a directory, everything below it.
                let mut paths = self.paths.lock().unwrap_or_else(|p| p.into_inner());
                for p in paths.values_mut() {
                    if let Ok(rest) = p.strip_prefix(&from) {
                        *p = if rest.as_os_str().is_empty() { to.clone() } else { to.join(rest) };
                    }
                }
                reply.ok()
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn link(&self, _req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        // pf_link is not implemented in FuseDaemon.cpp: libfuse answers ENOSYS.
        if self.phone {
            return reply.error(Errno::ENOSYS);
        }
        let r = self.path(ino).and_then(|from| {
            let to = self.child(newparent, newname)?;
            self.backing.link(&from, &to).map_err(errno)?;
            self.entry(to)
        });
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let path = match self.path(ino) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let writing = flags.0 & (libc::O_WRONLY | libc::O_RDWR) != 0;
        let opened = if writing {
            // pf_open opens O_RDWR where O_WRONLY was asked (reads for the writeback cache).
            self.backing.open_for_write(&path, flags.0)
        } else {
            std::fs::OpenOptions::new().read(true).open(&path)
        };
        let file = match opened {
            Ok(f) => f,
            Err(e) => return reply.error(errno(e)),
        };
        // No redaction for a caller granted write access (pf_open).
        let redact = if !writing && self.control.redact_gps.load(Ordering::SeqCst) {
            let mut head = vec![0u8; 128 * 1024];
            let n = file.read_at(&mut head, 0).unwrap_or(0);
            redact::gps_ranges(&head[..n])
        } else {
            Vec::new()
        };
        let fopen = if redact.is_empty() { FopenFlags::empty() } else { FopenFlags::FOPEN_DIRECT_IO };
        reply.opened(self.add_handle(file, self.rel(&path), redact), fopen);
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let r = self.with_handle(fh, |h| {
            let mut buf = vec![0u8; size as usize];
            let mut got = 0;
            while got < buf.len() {
                let n = h.file.read_at(&mut buf[got..], offset + got as u64)?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            buf.truncate(got);
            redact::apply(&mut buf, offset, &h.redact);
            Ok(buf)
        });
        match r {
            Ok(b) => reply.data(&b),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        if let Some(e) = self.handle_fault(Op::Write, fh) {
            return reply.error(e);
        }
        match self.with_handle(fh, |h| self.backing.write(&h.file, offset, data)) {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.handles.lock().unwrap_or_else(|p| p.into_inner()).remove(&fh.0);
        reply.ok();
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        if let Some(e) = self.handle_fault(Op::Fsync, fh) {
            return reply.error(e);
        }
        match self.with_handle(fh, |h| self.backing.fsync(&h.file, datasync)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let path = match self.path(ino) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let mut entries: Vec<(u64, FileType, std::ffi::OsString)> =
            vec![(ino.0, FileType::Directory, ".".into()), (ino.0, FileType::Directory, "..".into())];
        let rd = match std::fs::read_dir(&path) {
            Ok(r) => r,
            Err(e) => return reply.error(errno(e)),
        };
        let mut names: Vec<_> = rd
            .flatten()
            .map(|e| {
                let kind = match e.file_type() {
                    Ok(t) if t.is_dir() => FileType::Directory,
                    Ok(t) if t.is_symlink() => FileType::Symlink,
                    _ => FileType::RegularFile,
                };
                (self.fuse_ino(e.ino()), kind, e.file_name())
            })
            .collect();
        names.sort_by(|a, b| a.2.cmp(&b.2));
        entries.extend(names);
        for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        match self.path(ino).and_then(|p| {
            self.path_fault_of(Op::Fsync, &p)?;
            self.backing.fsync_dir(&p).map_err(errno)
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let c = std::ffi::CString::new(self.root.as_os_str().as_encoded_bytes()).unwrap_or_default();
        // SAFETY: statvfs fills the zeroed struct; the path is NUL-terminated.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
            return reply.error(Errno::EIO);
        }
        reply.statfs(
            s.f_blocks as u64,
            s.f_bfree as u64,
            s.f_bavail as u64,
            s.f_files as u64,
            s.f_ffree as u64,
            s.f_bsize as u32,
            s.f_namemax as u32,
            s.f_frsize as u32,
        );
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let r = self.child(parent, name).and_then(|p| {
            self.path_fault(&p)?;
            let f = self.backing.create(&p, flags, mode & !umask).map_err(errno)?;
            Ok((self.entry(p.clone())?, f, self.rel(&p)))
        });
        match r {
            Ok((a, f, rel)) => {
                reply.created(&TTL, &a, Generation(0), self.add_handle(f, rel, Vec::new()), FopenFlags::empty())
            }
            Err(e) => reply.error(e),
        }
    }
}
