//! The staging folder: where a new camera file goes first, in one rename, before it is hashed
//! and judged ("out of sight first").
//!
//! It must be on the camera folder's filesystem (a rename, never a copy), hidden from
//! MediaStore, and outside every tree a sync client walks:
//!
//! * **MediaStore**: the folder's name starts with a dot and it holds a `.nomedia` file. AOSP
//!   MediaProvider treats a file as hidden when its name, or any ancestor folder's name,
//!   starts with `.`, or an ancestor holds `.nomedia` (`FileUtils.isDirectoryHidden`,
//!   `MediaProvider.shouldFileBeHidden`); a file renamed into such a folder keeps its row but
//!   with `MEDIA_TYPE_NONE`, so it leaves the image and video collections in the rename's own
//!   database transaction (`renameFileForFuse`, `getContentValuesForFuseRename`), and the
//!   scanner skips the whole subtree (`ModernMediaScanner.preVisitDirectory`).
//! * **Sync clients that walk the tree** (Syncthing, FolderSync, Nextcloud's auto upload):
//!   a dot-folder is no protection (Syncthing syncs dotfiles unless told otherwise), so the
//!   folder is placed outside every synced tree: the store's placement rules
//!   ([`placement::check_unsynced`]) apply to it, except that it may (and on a phone must) be
//!   on shared storage.
//!
//! By default it is `.fotovakt-staging` in the nearest ancestor of the camera folder that
//! meets those rules and is on the same filesystem (same `st_dev`); on a phone that is the
//! volume root, `/storage/emulated/0/.fotovakt-staging` (`DCIM` is a media folder). A camera
//! folder with no such ancestor is judged in place, and the agent says so once.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::placement::{self, PlacementError};
use super::StoreError;

/// The staging folder's name where the agent picks it.
pub const FOLDER: &str = ".fotovakt-staging";

/// Where each camera folder's files are staged; found on first use and remembered.
#[derive(Debug)]
pub struct Staging {
    cameras: Vec<PathBuf>,
    sync_roots: Vec<PathBuf>,
    store: PathBuf,
    explicit: Option<PathBuf>,
    /// Camera folder (canonical) → its staging folder, or why it has none.
    found: Mutex<HashMap<PathBuf, Result<PathBuf, String>>>,
}

impl Staging {
    /// Staging for these camera folders. `explicit` (the config's `staging`) is checked now:
    /// a folder inside a synced, media-indexed or camera folder, or inside the store, is
    /// refused. Whether it is on each camera's filesystem is checked when that camera's first
    /// file comes (a camera folder may not exist yet).
    pub fn new(
        cameras: &[PathBuf],
        sync_roots: &[PathBuf],
        store: &Path,
        explicit: Option<&Path>,
    ) -> Result<Staging, StoreError> {
        let explicit = match explicit {
            Some(dir) => Some(check(dir, cameras, sync_roots, store)?),
            None => None,
        };
        Ok(Staging {
            cameras: cameras.to_vec(),
            sync_roots: sync_roots.to_vec(),
            store: store.to_path_buf(),
            explicit,
            found: Mutex::new(HashMap::new()),
        })
    }

    /// The staging folder for files of `camera` (created on first use, with `.nomedia`), or
    /// why files there are judged in place.
    pub fn dir_for(&self, camera: &Path) -> Result<PathBuf, String> {
        let camera = placement::resolve(camera);
        let mut found = self.found.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = found.get(&camera) {
            return known.clone();
        }
        let result = self.find(&camera);
        match &result {
            Ok(dir) => tracing::info!(camera = %camera.display(), staging = %dir.display(), "staging folder"),
            Err(why) => {
                tracing::warn!(camera = %camera.display(), why = %why, "no staging folder: new files are judged where they lie")
            }
        }
        found.insert(camera, result.clone());
        result
    }

    fn find(&self, camera: &Path) -> Result<PathBuf, String> {
        let dev = std::fs::metadata(camera).map_err(|e| format!("camera folder: {e}"))?.dev();
        if let Some(dir) = &self.explicit {
            prepare(dir).map_err(|e| format!("staging folder {}: {e}", dir.display()))?;
            let on = std::fs::metadata(dir).map(|m| m.dev()).map_err(|e| e.to_string())?;
            if on != dev {
                return Err(format!(
                    "the configured staging folder {} is not on the camera folder's filesystem (a rename there would be a copy)",
                    dir.display()
                ));
            }
            return Ok(dir.clone());
        }
        let mut refusals = Vec::new();
        for anc in camera.ancestors().skip(1) {
            match std::fs::metadata(anc) {
                Ok(m) if m.dev() == dev => {}
                // Another filesystem above: the camera folder's own ends here.
                _ => break,
            }
            let dir = anc.join(FOLDER);
            match check(&dir, &self.cameras, &self.sync_roots, &self.store) {
                Ok(dir) => match prepare(&dir) {
                    Ok(()) => return Ok(dir),
                    Err(e) => refusals.push(format!("{}: {e}", dir.display())),
                },
                Err(e) => refusals.push(e.to_string()),
            }
        }
        Err(match refusals.last() {
            Some(last) => format!("no folder on its filesystem is outside every synced or media folder (last: {last})"),
            None => "its filesystem has no folder above it".into(),
        })
    }

    /// Is `path` inside a staging folder this agent uses (or would use by default)?
    pub fn contains(&self, path: &Path) -> bool {
        let found = self.found.lock().unwrap_or_else(|p| p.into_inner());
        found.values().flatten().any(|d| path.starts_with(d))
            || path.ancestors().any(|a| a.file_name().is_some_and(|n| n == FOLDER))
    }
}

/// Told the path of every file that came back from staging (on Android the shell asks
/// MediaStore to scan it: MediaProvider marks a file renamed out of a hidden folder pending
/// until a scan). Process-wide, like the app's single agent.
pub type ReturnHook = dyn Fn(&Path) + Send + Sync;

fn hook() -> &'static std::sync::RwLock<Option<std::sync::Arc<ReturnHook>>> {
    static HOOK: std::sync::RwLock<Option<std::sync::Arc<ReturnHook>>> = std::sync::RwLock::new(None);
    &HOOK
}

/// Install (or, with `None`, remove) the process's return hook.
pub fn on_return(h: Option<std::sync::Arc<ReturnHook>>) {
    *hook().write().unwrap_or_else(|p| p.into_inner()) = h;
}

/// Tell the installed hook, if any, that `path` is back in its camera folder.
pub fn returned(path: &Path) {
    let h = hook().read().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(h) = h {
        h(path);
    }
}

/// The name a file gets in staging: its inode number (unique among files that exist) and its
/// own name, so a person can tell what it is.
pub fn staged_name(ino: u64, name: &std::ffi::OsStr) -> std::ffi::OsString {
    let mut s = std::ffi::OsString::from(format!("{ino}-"));
    s.push(name);
    s
}

/// The name a returned file gets when its own was taken meanwhile: `IMG_1-returned-7.jpg`.
pub fn fallback_name(original: &Path, row: i64) -> PathBuf {
    let stem = original.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match original.extension() {
        Some(ext) => format!("{stem}-returned-{row}.{}", ext.to_string_lossy()),
        None => format!("{stem}-returned-{row}"),
    };
    original.with_file_name(name)
}

fn check(dir: &Path, cameras: &[PathBuf], sync_roots: &[PathBuf], store: &Path) -> Result<PathBuf, PlacementError> {
    let resolved = placement::check_unsynced(dir, cameras, sync_roots).map_err(|mut e| {
        e.what = "staging folder";
        e
    })?;
    let store = placement::resolve(store);
    let refuse = |reason: &str| PlacementError {
        what: "staging folder",
        store: dir.to_path_buf(),
        reason: reason.into(),
        marker: store.clone(),
    };
    if resolved.starts_with(&store) {
        return Err(refuse("it lies inside the store"));
    }
    if store.starts_with(&resolved) {
        return Err(refuse("the store lies inside it"));
    }
    Ok(resolved)
}

/// Create the folder (0700) and its `.nomedia`, durably; a folder that exists is checked to be
/// a folder we can write.
fn prepare(dir: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(io::Error::other("exists and is not a folder")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new().mode(0o700).create(dir)?;
            super::fsops::fsync_parent(dir)?;
        }
        Err(e) => return Err(e),
    }
    let nomedia = dir.join(".nomedia");
    if std::fs::symlink_metadata(&nomedia).is_err() {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&nomedia)?;
        super::fsops::fsync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_unsynced_ancestor_on_the_same_filesystem_is_picked() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = tmp.path().canonicalize().expect("canon");
        let cam = base.join("phone/DCIM/Camera");
        std::fs::create_dir_all(&cam).expect("camera");
        std::fs::create_dir_all(base.join("phone/DCIM/.stfolder")).expect("marker");
        let store = base.join("private/store");
        let s = Staging::new(std::slice::from_ref(&cam), &[], &store, None).expect("staging");
        let dir = s.dir_for(&cam).expect("a staging folder");
        assert_eq!(dir, base.join("phone").join(FOLDER));
        assert!(dir.join(".nomedia").is_file(), "MediaStore is kept out by .nomedia too");
        assert!(s.contains(&dir.join("1-IMG_1.jpg")));
        assert!(!s.contains(&cam.join("IMG_1.jpg")));
    }

    #[test]
    fn a_synced_tree_pushes_it_up_and_an_all_synced_filesystem_has_none() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = tmp.path().canonicalize().expect("canon");
        let cam = base.join("home/Sync/DCIM/Camera");
        std::fs::create_dir_all(&cam).expect("camera");
        // The whole `home/Sync` tree is synced (a sync root): staging goes above it.
        let roots = vec![base.join("home/Sync")];
        let s = Staging::new(std::slice::from_ref(&cam), &roots, &base.join("store"), None).expect("staging");
        assert_eq!(s.dir_for(&cam).expect("staging"), base.join("home").join(FOLDER));
        // Everything up to `/` synced: no staging folder, judged in place.
        let all = vec![PathBuf::from("/")];
        let s = Staging::new(std::slice::from_ref(&cam), &all, &base.join("store"), None).expect("staging");
        let why = s.dir_for(&cam).expect_err("nowhere to stage");
        assert!(why.contains("sync root"), "{why}");
    }

    #[test]
    fn a_configured_staging_folder_inside_a_synced_or_camera_folder_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = tmp.path().canonicalize().expect("canon");
        let cam = base.join("phone/DCIM/Camera");
        std::fs::create_dir_all(&cam).expect("camera");
        std::fs::create_dir_all(base.join("phone/DCIM/.stfolder")).expect("marker");
        let store = base.join("private/store");
        for bad in [cam.join(".staging"), base.join("phone/DCIM/.staging"), store.join("staging")] {
            let e = Staging::new(std::slice::from_ref(&cam), &[], &store, Some(&bad)).expect_err("refused");
            assert!(e.to_string().contains("refusing staging folder"), "{e}");
        }
        let ok = base.join("phone/.mine");
        let s = Staging::new(std::slice::from_ref(&cam), &[], &store, Some(&ok)).expect("accepted");
        assert_eq!(s.dir_for(&cam).expect("used"), ok);
    }

    #[test]
    fn fallback_names_keep_the_extension() {
        assert_eq!(fallback_name(Path::new("/c/IMG_1.jpg"), 7), PathBuf::from("/c/IMG_1-returned-7.jpg"));
        assert_eq!(fallback_name(Path::new("/c/clip"), 3), PathBuf::from("/c/clip-returned-3"));
        assert_eq!(staged_name(42, std::ffi::OsStr::new("IMG_1.jpg")), "42-IMG_1.jpg");
    }
}
