//! The camera folders and which directory of each is watched now.
//!
//! A camera folder that is not there yet (a new phone's camera app makes `DCIM/Camera` with
//! its first photo), or that is deleted and made again, is watched as soon as it exists. A
//! watch belongs to a directory, not to a path: the kernel drops it with the directory, so
//! each folder remembers the (device, inode) it watches, and a removal seen by the collector
//! forgets them all (a new directory may get the same inode number at once).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use notify::RecursiveMode;
use tracing::{info, warn};

/// What [`Folders::refresh`] needs from the watcher and the disk (a fake one in the tests).
pub(crate) trait Watches {
    /// (device, inode) of `dir` if it is a directory (links followed, as a watch does).
    fn identity(&self, dir: &Path) -> Option<(u64, u64)>;
    fn watch(&mut self, dir: &Path) -> Result<(), String>;
    fn unwatch(&mut self, dir: &Path);
}

/// notify's watcher on the real disk.
pub(crate) struct NotifyWatches<W>(pub W);

impl<W: notify::Watcher> Watches for NotifyWatches<W> {
    fn identity(&self, dir: &Path) -> Option<(u64, u64)> {
        std::fs::metadata(dir).ok().filter(|m| m.is_dir()).map(|m| (m.dev(), m.ino()))
    }

    fn watch(&mut self, dir: &Path) -> Result<(), String> {
        self.0.watch(dir, RecursiveMode::NonRecursive).map_err(|e| e.to_string())
    }

    fn unwatch(&mut self, dir: &Path) {
        let _ = self.0.unwatch(dir);
    }
}

/// The camera folders and the directory each one watches.
pub(crate) struct Folders {
    list: Vec<Folder>,
}

struct Folder {
    path: PathBuf,
    /// (device, inode) of the directory the watch is on; `None` while not watched.
    watched: Option<(u64, u64)>,
    /// The last problem logged, so a lasting one is logged once, not every second.
    problem: Option<String>,
}

impl Folders {
    pub fn new(paths: &[PathBuf]) -> Folders {
        Folders { list: paths.iter().map(|p| Folder { path: p.clone(), watched: None, problem: None }).collect() }
    }

    /// A camera folder was removed: watch every folder afresh at the next refresh.
    pub fn forget_watches(&mut self) {
        for f in &mut self.list {
            f.watched = None;
        }
    }

    /// Bring the watches in line with the folders on disk. True when a folder was newly
    /// watched (it appeared, or was replaced): the caller reconciles.
    pub fn refresh(&mut self, watches: &mut impl Watches) -> bool {
        let mut added = false;
        for f in &mut self.list {
            let now = watches.identity(&f.path);
            if now.is_some() && now == f.watched {
                continue;
            }
            // Deleted or replaced: the kernel dropped the old watch with the directory.
            f.watched = None;
            watches.unwatch(&f.path);
            let Some(id) = now else {
                note(f, "camera folder does not exist (yet); it is watched as soon as it appears");
                continue;
            };
            match watches.watch(&f.path) {
                Ok(()) => {
                    info!(folder = %f.path.display(), "watching");
                    f.watched = Some(id);
                    f.problem = None;
                    added = true;
                }
                Err(e) => note(f, &format!("cannot watch camera folder: {e}")),
            }
        }
        added
    }
}

/// Log `problem` for `f` unless it is the one logged last.
fn note(f: &mut Folder, problem: &str) {
    if f.problem.as_deref() != Some(problem) {
        warn!(folder = %f.path.display(), "{problem}");
        f.problem = Some(problem.to_string());
    }
}
