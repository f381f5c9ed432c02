//! Where the store may not be: inside a camera folder, a sync-enabled folder (found by the
//! sync clients' markers, walking up from the store), a configured sync root, or a media-indexed
//! folder of Android shared storage. The check runs before anything is created.

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

/// Names of Android shared-storage folders that MediaStore indexes and backup apps read.
pub const MEDIA_FOLDERS: &[&str] = &[
    "DCIM",
    "Pictures",
    "Movies",
    "Music",
    "Download",
    "Documents",
    "Podcasts",
    "Ringtones",
    "Alarms",
    "Notifications",
    "Audiobooks",
    "Recordings",
    "Screenshots",
];

/// Why the store cannot be at the requested place.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing {what} {store}: {reason} ({marker}); choose a private directory outside every synced or media folder"
)]
pub struct PlacementError {
    /// What was refused: `store` (the default), or `staging folder`, `case package`, ….
    pub what: &'static str,
    pub store: PathBuf,
    pub reason: String,
    /// The marker file or folder that gave it away.
    pub marker: PathBuf,
}

/// Absolute form of a path that may not exist yet: the nearest existing ancestor is
/// canonicalized (following symlinks, so a link into a synced folder is seen through).
pub fn resolve(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_path_buf())
    };
    let mut existing = abs.as_path();
    let mut rest: Vec<&OsStr> = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            let mut out = c;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return normalize(&out);
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return normalize(&abs),
        }
    }
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The sync client whose marker sits directly in `dir`, if any.
pub fn sync_marker_in(dir: &Path) -> Option<(&'static str, PathBuf)> {
    for (name, client) in [
        (".stfolder", "Syncthing"),
        (".dropbox", "Dropbox"),
        (".dropbox.cache", "Dropbox"),
        (".owncloudsync.log", "Nextcloud/ownCloud"),
    ] {
        let p = dir.join(name);
        if p.symlink_metadata().is_ok() {
            return Some((client, p));
        }
    }
    let resilio = dir.join(".sync").join("ID");
    if resilio.symlink_metadata().is_ok() {
        return Some(("Resilio Sync", resilio));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let n = name.to_string_lossy();
            if (n.starts_with(".sync_") || n.starts_with("._sync_")) && n.ends_with(".db") {
                return Some(("Nextcloud/ownCloud", entry.path()));
            }
        }
    }
    None
}

/// Is `store` an acceptable place for the quarantine store?
pub fn check(store: &Path, cameras: &[PathBuf], sync_roots: &[PathBuf]) -> Result<PathBuf, PlacementError> {
    let resolved = check_unsynced(store, cameras, sync_roots)?;
    let refuse =
        |reason: String, marker: PathBuf| PlacementError { what: "store", store: store.to_path_buf(), reason, marker };
    for shared in ["/storage/emulated", "/sdcard", "/storage/self"] {
        if resolved.starts_with(shared) {
            return Err(refuse("it lies on Android shared storage".into(), PathBuf::from(shared)));
        }
    }
    Ok(resolved)
}

/// The rules the store and the staging folder share: not inside (or around) a camera folder,
/// not inside a configured sync root, no sync client's marker and no media-indexed folder name
/// in any ancestor. The staging folder may lie on Android shared storage (it must: it is on
/// the camera folder's filesystem), the store may not ([`check`]).
pub fn check_unsynced(place: &Path, cameras: &[PathBuf], sync_roots: &[PathBuf]) -> Result<PathBuf, PlacementError> {
    let store = place;
    let resolved = resolve(store);
    let refuse =
        |reason: String, marker: PathBuf| PlacementError { what: "store", store: store.to_path_buf(), reason, marker };
    for cam in cameras {
        let cam = resolve(cam);
        if resolved.starts_with(&cam) {
            return Err(refuse("it lies inside the watched camera folder".into(), cam));
        }
        if cam.starts_with(&resolved) {
            return Err(refuse("a watched camera folder lies inside it".into(), cam));
        }
    }
    for root in sync_roots {
        let root = resolve(root);
        if resolved.starts_with(&root) {
            return Err(refuse("it lies inside a configured sync root".into(), root));
        }
    }
    for anc in resolved.ancestors() {
        if let Some((client, marker)) = sync_marker_in(anc) {
            return Err(refuse(format!("it lies inside a {client} folder"), marker));
        }
        if let Some(name) = anc.file_name().and_then(|n| n.to_str()) {
            if MEDIA_FOLDERS.contains(&name) {
                return Err(refuse(format!("it lies inside the media-indexed folder {name}"), anc.to_path_buf()));
            }
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_walking_up() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = tmp.path();
        for (marker, is_dir) in [
            (".stfolder", true),
            (".dropbox", false),
            (".owncloudsync.log", false),
            ("._sync_abc123.db", false),
            (".sync_1f2e.db", false),
        ] {
            let root = base.join(format!("case{}", marker.replace('.', "_")));
            std::fs::create_dir_all(&root).expect("mkdir");
            if is_dir {
                std::fs::create_dir(root.join(marker)).expect("marker dir");
            } else {
                std::fs::write(root.join(marker), b"").expect("marker file");
            }
            let err = check(&root.join("deep/store"), &[], &[]).expect_err(marker);
            assert!(err.marker.ends_with(marker), "{marker}: {err}");
            assert!(err.to_string().contains("refusing store"), "{err}");
            assert!(root.join(marker).exists(), "a sync marker must never be touched");
        }
        let resilio = base.join("resilio");
        std::fs::create_dir_all(resilio.join(".sync")).expect("mkdir");
        std::fs::write(resilio.join(".sync/ID"), b"x").expect("id");
        assert!(check(&resilio.join("s"), &[], &[]).expect_err("resilio").to_string().contains("Resilio"));
    }

    #[test]
    fn media_folders_cameras_and_sync_roots_are_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = tmp.path().canonicalize().expect("canon");
        let e = check(&base.join("Pictures/store"), &[], &[]).expect_err("Pictures");
        assert!(e.reason.contains("Pictures"), "{e}");
        let cam = base.join("phone/cam");
        let e = check(&cam.join("store"), std::slice::from_ref(&cam), &[]).expect_err("inside camera");
        assert!(e.reason.contains("camera"), "{e}");
        let e = check(&base.join("phone"), std::slice::from_ref(&cam), &[]).expect_err("camera inside store");
        assert!(e.reason.contains("camera"), "{e}");
        let e = check(&base.join("sync/x/y"), &[], &[base.join("sync")]).expect_err("sync root");
        assert!(e.reason.contains("sync root"), "{e}");
        assert!(check(&base.join("private/store"), &[cam], &[]).is_ok());
    }

    #[test]
    fn dotdot_and_symlinks_do_not_hide_a_synced_folder() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = tmp.path();
        std::fs::create_dir_all(base.join("synced")).expect("mkdir");
        std::fs::create_dir(base.join("synced/.stfolder")).expect("marker");
        std::os::unix::fs::symlink(base.join("synced"), base.join("link")).expect("symlink");
        assert!(check(&base.join("link/store"), &[], &[]).is_err());
        std::fs::create_dir_all(base.join("other")).expect("mkdir");
        assert!(check(&base.join("other/../synced/store"), &[], &[]).is_err());
    }
}
