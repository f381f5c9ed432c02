//! Power-cut mode of the test filesystem (LazyFS-like): what was not made durable is lost
//! at a [`PowerCut::cut`].
//!
//! Every change still goes to the backing directory at once (readers see it, as they see a
//! real page cache), and beside it this journal remembers how to take it back:
//!
//! * **file content**: before the first write, truncate or `O_TRUNC` of a file since its last
//!   `fsync`/`fdatasync` (or since the mount), its bytes are kept as the *durable content*
//!   (a file created since then: empty). `fsync` of the file drops that copy: what is there
//!   now is durable;
//! * **directory entries**: create, mkdir, unlink, rmdir, rename and link are metadata
//!   operations, kept in order with an undo record (an unlinked or replaced file is held
//!   under a hard link in an *attic* beside the backing directory, so undoing brings back the
//!   very inode and its bytes).
//!
//! Which metadata is durable follows a journalling filesystem: operations become durable as
//! a *prefix* of their order (a journal commits in order, and each operation is atomic: a
//! rename is at its old name or its new one, never both or neither). What makes a prefix
//! durable depends on the [`Model`]:
//!
//! | | [`Model::Posix`] (strict, the LazyFS rule) | [`Model::Journal`] (ext4 `data=ordered`-ish, and worse) |
//! |---|---|---|
//! | `fsync` of a directory | commits every operation up to the last one that changed that directory | commits every operation so far |
//! | `fsync` of a file | its content only | its content, and every operation so far (ext4's fsync commits the running transaction) |
//! | at the cut, un-committed operations | all undone | a random prefix survives (the journal committed on its own timer), the rest is undone |
//! | at the cut, content of a file not fsynced since its last change | its durable content exactly | one of: its durable content, its current content (written back in time), or torn: the current bytes up to a random 4 KiB page boundary and the durable bytes after it |
//!
//! So `Posix` is the minimum POSIX promises for fsynced state (except that a later directory
//! fsync also commits earlier operations on other directories: undoing only a suffix keeps
//! every state reachable by a real filesystem); `Journal` adds the states a real ext4 may
//! also leave, including the "zero-length file after rename" of delayed allocation (the
//! rename committed, the data not written back) and renames that survive without any fsync.
//!
//! A cut is atomic with respect to the handlers: every mutation holds the journal's lock
//! while it changes the backing directory, and after the cut every mutation fails with `EIO`
//! and changes nothing (late writebacks of a killed process's pages included) until the
//! filesystem is mounted again, which starts a fresh journal: what is on disk then is durable.
//!
//! Known limits: times and modes are not journalled (they stay as last set); one journal per
//! mount, so two mounts are two independent disks (worse than one partition: their orders
//! are unrelated); only files and directories (no special files) are taken back.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Which durability rules a power cut follows (see the module doc's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Only what was fsynced survives (directories by fsync of the directory).
    Posix,
    /// An ext4-like journal: any fsync commits all metadata; at the cut a random prefix of the
    /// rest survives; un-fsynced content is old, new or torn.
    Journal,
}

/// One metadata operation and how to take it back.
#[derive(Debug)]
enum MetaOp {
    /// A new file or special file at `path`: undo removes it.
    Created {
        path: PathBuf,
    },
    Mkdir {
        path: PathBuf,
    },
    /// The file that was at `path` is held at `attic`: undo links it back.
    Unlinked {
        path: PathBuf,
        attic: PathBuf,
    },
    Rmdir {
        path: PathBuf,
    },
    /// `from` renamed to `to`; what `to` named before is held at `replaced` (a file) or was an
    /// empty directory (`replaced_dir`).
    Renamed {
        from: PathBuf,
        to: PathBuf,
        replaced: Option<PathBuf>,
        replaced_dir: bool,
    },
    /// A new hard link at `path`: undo removes it.
    Linked {
        path: PathBuf,
    },
}

impl MetaOp {
    /// Does this operation change the entries of `dir`?
    fn touches(&self, dir: &Path) -> bool {
        let parent_is = |p: &Path| p.parent() == Some(dir);
        match self {
            MetaOp::Created { path }
            | MetaOp::Mkdir { path }
            | MetaOp::Unlinked { path, .. }
            | MetaOp::Rmdir { path }
            | MetaOp::Linked { path } => parent_is(path),
            MetaOp::Renamed { from, to, .. } => parent_is(from) || parent_is(to),
        }
    }

    /// Attic paths this operation holds (released once it is committed).
    fn attic(&self) -> Option<&Path> {
        match self {
            MetaOp::Unlinked { attic, .. } => Some(attic),
            MetaOp::Renamed { replaced: Some(a), .. } => Some(a),
            _ => None,
        }
    }

    fn undo(&self) -> io::Result<()> {
        match self {
            MetaOp::Created { path } | MetaOp::Linked { path } => std::fs::remove_file(path),
            MetaOp::Mkdir { path } => std::fs::remove_dir(path),
            MetaOp::Unlinked { path, attic } => std::fs::hard_link(attic, path),
            MetaOp::Rmdir { path } => std::fs::create_dir(path),
            MetaOp::Renamed { from, to, replaced, replaced_dir } => {
                std::fs::rename(to, from)?;
                match replaced {
                    Some(a) => std::fs::hard_link(a, to),
                    None if *replaced_dir => std::fs::create_dir(to),
                    None => Ok(()),
                }
            }
        }
    }
}

#[derive(Debug, Default)]
struct State {
    cut: bool,
    /// Metadata operations not committed yet, oldest first.
    ops: Vec<MetaOp>,
    /// Backing inode → durable content, for files changed since their last fsync.
    durable: HashMap<u64, Vec<u8>>,
}

/// What a cut did, for the campaign's history.
#[derive(Debug, Default, Clone)]
pub struct CutReport {
    /// Metadata operations that were pending, survived (journal prefix), undone.
    pub pending_ops: usize,
    pub kept_ops: usize,
    /// Files whose content was not durable: reverted, kept new, torn.
    pub reverted: usize,
    pub kept_new: usize,
    pub torn: usize,
    /// Undo steps that failed (should be none; each is described).
    pub errors: Vec<String>,
}

impl std::fmt::Display for CutReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} pending metadata ops ({} survived, {} undone); files not fsynced: {} reverted, {} kept new, {} torn",
            self.pending_ops,
            self.kept_ops,
            self.pending_ops - self.kept_ops,
            self.reverted,
            self.kept_new,
            self.torn
        )?;
        if !self.errors.is_empty() {
            write!(f, "; UNDO ERRORS: {:?}", self.errors)?;
        }
        Ok(())
    }
}

/// The journal of one mount in power-cut mode.
#[derive(Debug)]
pub struct PowerCut {
    model: Model,
    root: PathBuf,
    /// Beside the backing directory (same filesystem, so hard links work), outside the mount.
    attic: PathBuf,
    next_attic: AtomicU64,
    state: Mutex<State>,
}

/// Held while a mutation is applied: the cut cannot land in the middle of one.
pub struct Guard<'a> {
    pc: &'a PowerCut,
    st: MutexGuard<'a, State>,
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(libc::EIO)
}

fn ino_of(p: &Path) -> io::Result<u64> {
    std::fs::symlink_metadata(p).map(|m| m.ino())
}

impl PowerCut {
    pub fn new(model: Model, root: &Path) -> io::Result<PowerCut> {
        let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let attic = root.with_file_name(format!(".{name}.powercut-attic"));
        let _ = std::fs::remove_dir_all(&attic);
        std::fs::create_dir_all(&attic)?;
        Ok(PowerCut {
            model,
            root: root.to_path_buf(),
            attic,
            next_attic: AtomicU64::new(0),
            state: Mutex::new(State::default()),
        })
    }

    pub fn model(&self) -> Model {
        self.model
    }

    /// Take the lock for one mutation; `EIO` once the power is cut.
    pub fn begin(&self) -> io::Result<Guard<'_>> {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.cut {
            return Err(eio());
        }
        Ok(Guard { pc: self, st })
    }

    fn attic_path(&self) -> PathBuf {
        self.attic.join(self.next_attic.fetch_add(1, Ordering::Relaxed).to_string())
    }

    /// Cut the power: undo what was not durable (see the module doc), then refuse every
    /// further mutation. `rand` supplies the random choices of [`Model::Journal`].
    pub fn cut(&self, rand: &mut dyn FnMut() -> u64) -> CutReport {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.cut = true;
        let mut rep = CutReport { pending_ops: st.ops.len(), ..CutReport::default() };
        rep.kept_ops = match self.model {
            Model::Posix => 0,
            Model::Journal => (rand() % (st.ops.len() as u64 + 1)) as usize,
        };
        // Content first, while every inode is still reachable (live names and the attic).
        let mut where_is = HashMap::new();
        index_inodes(&self.root, &mut where_is);
        index_inodes(&self.attic, &mut where_is);
        let durable = std::mem::take(&mut st.durable);
        for (ino, old) in durable {
            let Some(path) = where_is.get(&ino) else { continue };
            let choice = match self.model {
                Model::Posix => 0,
                Model::Journal => rand() % 3,
            };
            let r = match choice {
                0 => {
                    rep.reverted += 1;
                    std::fs::write(path, &old)
                }
                1 => {
                    rep.kept_new += 1;
                    Ok(())
                }
                _ => {
                    rep.torn += 1;
                    std::fs::read(path).and_then(|new| {
                        let pages = new.len().max(old.len()) / 4096 + 1;
                        let at = ((rand() % (pages as u64 + 1)) as usize * 4096).min(new.len());
                        let mut torn = new[..at].to_vec();
                        if old.len() > at {
                            torn.extend_from_slice(&old[at..]);
                        }
                        std::fs::write(path, torn)
                    })
                }
            };
            if let Err(e) = r {
                rep.errors.push(format!("restore content of {}: {e}", path.display()));
            }
        }
        let ops = std::mem::take(&mut st.ops);
        for op in ops[rep.kept_ops..].iter().rev() {
            if let Err(e) = op.undo() {
                rep.errors.push(format!("undo {op:?}: {e}"));
            }
        }
        let _ = std::fs::remove_dir_all(&self.attic);
        rep
    }
}

fn index_inodes(dir: &Path, out: &mut HashMap<u64, PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => index_inodes(&p, out),
            Ok(t) if t.is_file() => {
                if let Ok(m) = e.metadata() {
                    out.entry(m.ino()).or_insert(p);
                }
            }
            _ => {}
        }
    }
}

impl Guard<'_> {
    /// Before changing the content of the file `ino`: keep its durable bytes, once.
    pub fn before_data(&mut self, ino: u64, read: impl FnOnce() -> io::Result<Vec<u8>>) -> io::Result<()> {
        if let std::collections::hash_map::Entry::Vacant(e) = self.st.durable.entry(ino) {
            e.insert(read()?);
        }
        Ok(())
    }

    pub fn before_data_of(&mut self, file: &File) -> io::Result<()> {
        let m = file.metadata()?;
        self.before_data(m.ino(), || {
            let mut buf = vec![0u8; m.len() as usize];
            file.read_exact_at(&mut buf, 0)?;
            Ok(buf)
        })
    }

    /// A new file at `path` (its content so far: nothing durable).
    pub fn created(&mut self, path: &Path) -> io::Result<()> {
        let ino = ino_of(path)?;
        self.st.durable.insert(ino, Vec::new());
        self.st.ops.push(MetaOp::Created { path: path.to_path_buf() });
        Ok(())
    }

    pub fn mkdir(&mut self, path: &Path) {
        self.st.ops.push(MetaOp::Mkdir { path: path.to_path_buf() });
    }

    pub fn rmdir(&mut self, path: &Path) {
        self.st.ops.push(MetaOp::Rmdir { path: path.to_path_buf() });
    }

    pub fn linked(&mut self, path: &Path) {
        self.st.ops.push(MetaOp::Linked { path: path.to_path_buf() });
    }

    /// Hold the file at `path` in the attic before it is unlinked or replaced.
    pub fn hold(&mut self, path: &Path) -> io::Result<PathBuf> {
        let a = self.pc.attic_path();
        std::fs::hard_link(path, &a)?;
        Ok(a)
    }

    pub fn unlinked(&mut self, path: &Path, attic: PathBuf) {
        self.st.ops.push(MetaOp::Unlinked { path: path.to_path_buf(), attic });
    }

    pub fn renamed(&mut self, from: &Path, to: &Path, replaced: Option<PathBuf>, replaced_dir: bool) {
        self.st.ops.push(MetaOp::Renamed { from: from.to_path_buf(), to: to.to_path_buf(), replaced, replaced_dir });
    }

    /// `fsync`/`fdatasync` of the file `ino`.
    pub fn fsync(&mut self, ino: u64) {
        self.st.durable.remove(&ino);
        if self.pc.model == Model::Journal {
            let n = self.st.ops.len();
            self.commit(n);
        }
    }

    /// `fsync` of the directory `dir`.
    pub fn fsync_dir(&mut self, dir: &Path) {
        let n = match self.pc.model {
            Model::Journal => self.st.ops.len(),
            Model::Posix => self.st.ops.iter().rposition(|op| op.touches(dir)).map_or(0, |i| i + 1),
        };
        self.commit(n);
    }

    /// The first `n` pending operations are durable now: release what their undo held.
    fn commit(&mut self, n: usize) {
        for op in self.st.ops.drain(..n).collect::<Vec<_>>() {
            if let Some(a) = op.attic() {
                // Last name of an inode gone: forget its content (the number may be reused).
                if let Ok(m) = std::fs::symlink_metadata(a) {
                    if m.nlink() == 1 {
                        self.st.durable.remove(&m.ino());
                    }
                }
                let _ = std::fs::remove_file(a);
            }
        }
    }
}
