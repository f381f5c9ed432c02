//! Whose stash is it? Every [`super::Agent`] has a life token and holds `store/live/TOKEN.lock`
//! with an exclusive `flock` for as long as it lives; each stash row it journals names that
//! token (`moves.owner`). A process that dies (a crash, `kill -9`, a power cut) loses its locks
//! with it, so recovery can tell a file another live process is judging, or keeps in staging for
//! a stuck store, from one a dead process left: only a row whose owner's lock file can be taken
//! (or is gone, or that names no owner: a row of an older version) is returned to its name.
//!
//! `flock` locks belong to an open file description, so two agents in one process (the Android
//! bridge may open more than one) each hold their own token, and one sees the other alive. The
//! liveness probe never waits (`LOCK_NB`): recovery runs under the ledger mutex and the move
//! lock, and must not block on another process's life lock.
//!
//! Read-only views ([`super::StoreReader`]) never take a token: they write nothing.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use tracing::debug;

use super::Error;

/// The folder under the store root that holds the life locks.
pub const LIVE_DIR: &str = "live";

/// This agent's life: its token and the lock file it holds. Dropping it removes the file, then
/// releases the lock.
#[derive(Debug)]
pub(super) struct Life {
    token: String,
    path: PathBuf,
    _file: File,
}

impl Life {
    /// Take a new token under `store` and hold its lock. The lock file is made and locked under
    /// a temporary name and only then renamed to `TOKEN.lock`, so a sweep never sees a live
    /// token's lock file unlocked.
    pub fn take(store: &Path) -> Result<Life, Error> {
        let dir = store.join(LIVE_DIR);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(Error::io("making the life-lock folder", &dir))?;
        let mut bytes = [0u8; 12];
        getrandom::fill(&mut bytes)
            .map_err(|e| Error::io("making a life token", &dir)(io::Error::other(e.to_string())))?;
        let token = hex::encode(bytes);
        let new = dir.join(format!("{token}.new"));
        let path = dir.join(format!("{token}.lock"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&new)
            .map_err(Error::io("making a life lock", &new))?;
        flock(&file, libc::LOCK_EX | libc::LOCK_NB).map_err(Error::io("taking a life lock", &new))?;
        std::fs::rename(&new, &path).map_err(Error::io("naming a life lock", &path))?;
        Ok(Life { token, path, _file: file })
    }

    pub fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for Life {
    fn drop(&mut self) {
        // Removed while still held: no probe can take it in between and call it dead early.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Is the owner `token` alive? A token that is not a plain hex name, a lock file that is gone,
/// or one that can be taken now, is a dead owner's (its lock file is removed then). Never
/// blocks. An error other than "taken by someone" counts as alive: a file is never returned
/// from under a process that may be judging it.
pub(super) fn alive(store: &Path, token: &str) -> bool {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let path = store.join(LIVE_DIR).join(format!("{token}.lock"));
    probe(&path)
}

/// Probe one lock file: `true` while its holder lives. A dead holder's file is removed.
fn probe(path: &Path) -> bool {
    let file = match OpenOptions::new().read(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return false,
        Err(e) => {
            debug!(path = %path.display(), error = %e, "cannot open a life lock; its owner counts as alive");
            return true;
        }
    };
    match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => {
            // Dead: nobody will take this token again. Removed while we hold it.
            let _ = std::fs::remove_file(path);
            false
        }
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => true,
        Err(e) => {
            debug!(path = %path.display(), error = %e, "cannot probe a life lock; its owner counts as alive");
            true
        }
    }
}

/// Remove the lock files of dead owners (those no row names, too). Returns how many.
/// Run under the move lock, like every recovery.
pub(super) fn sweep(store: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(store.join(LIVE_DIR)) else { return 0 };
    let mut removed = 0;
    for e in entries.flatten() {
        let p = e.path();
        // Only `.lock` names: a `.new` one may be a live agent's between its create and its lock.
        if p.extension().is_some_and(|x| x == "lock") && !probe(&p) {
            removed += 1;
        }
    }
    removed
}

fn flock(file: &File, how: libc::c_int) -> io::Result<()> {
    // SAFETY: the fd is valid for the duration of the call.
    if unsafe { libc::flock(file.as_raw_fd(), how) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_token_is_alive_and_a_dropped_one_dead_and_swept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Life::take(dir.path()).expect("life a");
        let b = Life::take(dir.path()).expect("life b");
        assert_ne!(a.token(), b.token());
        // Another open file description in the same process sees it held.
        assert!(alive(dir.path(), a.token()));
        assert_eq!(sweep(dir.path()), 0);
        let token = a.token().to_string();
        drop(a);
        assert!(!alive(dir.path(), &token));
        assert!(!alive(dir.path(), ""));
        assert!(!alive(dir.path(), "../x"));
        assert!(alive(dir.path(), b.token()));
        // A lock file its holder left behind (a killed process's): taken by the sweep.
        let stale = dir.path().join(LIVE_DIR).join("00ff.lock");
        std::fs::write(&stale, b"").expect("stale");
        assert_eq!(sweep(dir.path()), 1);
        assert!(!stale.exists());
        assert!(dir.path().join(LIVE_DIR).join(format!("{}.lock", b.token())).exists());
    }
}
