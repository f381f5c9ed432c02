//! The store's health, as `stats` (JSON, table, OpenMetrics), the report and the Android
//! health show it: whether the agent's last try to write the store failed (since when, why,
//! how many files wait for it), and what any process can read without writing: the free space
//! on the store's filesystem and whether it is mounted read-only.
//!
//! The agent that tries the moves (`watch`, the Android service) knows when the store fails;
//! another process (`fotovakt stats`, `serve-metrics`) sees only the filesystem's side, so a
//! store whose writes fail with I/O errors while it has room reads `ok` there. Its items that
//! wait for another try are `items.aborted` in the same statistics.

use std::path::Path;

use serde::Serialize;

/// Below this much free space the store counts as full: no camera photo fits.
pub const FULL_BELOW_BYTES: u64 = 1 << 20;

/// The store's state, worst first where more than one holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreState {
    /// Room, writable, and the last try to store a file (if any) went through.
    Ok,
    /// The agent's last try to store a file or record it failed; it retries with backoff.
    Failing,
    /// Less than [`FULL_BELOW_BYTES`] free.
    Full,
    /// Mounted read-only.
    ReadOnly,
    /// The free space could not be read (`reason` says why).
    Unknown,
}

impl StoreState {
    /// Every state, in declaration order (OpenMetrics shows each as a 0/1 sample).
    pub const ALL: [StoreState; 5] =
        [StoreState::Ok, StoreState::Failing, StoreState::Full, StoreState::ReadOnly, StoreState::Unknown];

    /// The state as one word, the same as its JSON form.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreState::Ok => "ok",
            StoreState::Failing => "failing",
            StoreState::Full => "full",
            StoreState::ReadOnly => "read_only",
            StoreState::Unknown => "unknown",
        }
    }
}

/// The `health` block of the statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    pub store: StoreState,
    /// Why the store is failing (the last error), or why its space is unknown.
    pub reason: Option<String>,
    /// Since when the store has been failing (ms since the Unix epoch; this process's view).
    pub since_ms: Option<i64>,
    /// Bytes free for the agent on the store's filesystem; `null` when it cannot be read.
    pub free_bytes: Option<u64>,
    /// Files this process failed to store and will try again (the watcher's, the service's).
    pub waiting: u64,
}

/// What `statvfs` says about the filesystem of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes available to an unprivileged writer.
    pub free: u64,
    pub read_only: bool,
}

/// Free space and the read-only flag of the filesystem holding `path` (reads nothing else,
/// writes nothing).
pub fn space(path: &Path) -> std::io::Result<Space> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: statvfs fills the zeroed struct; the path is NUL-terminated.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Space {
        free: (s.f_bavail as u64).saturating_mul(s.f_frsize as u64),
        read_only: s.f_flag & libc::ST_RDONLY != 0,
    })
}

impl Health {
    /// The health of the store at `root` from its filesystem alone (no failure seen by this
    /// process).
    pub fn of_filesystem(root: &Path) -> Health {
        Health::from_parts(None, space(root), 0)
    }

    /// `failing`: since when and why the agent's tries failed, if they do now.
    pub fn from_parts(failing: Option<(i64, String)>, space: std::io::Result<Space>, waiting: u64) -> Health {
        let (store, reason) = match (&failing, &space) {
            (Some((_, why)), _) => (StoreState::Failing, Some(why.clone())),
            (None, Ok(s)) if s.read_only => (StoreState::ReadOnly, None),
            (None, Ok(s)) if s.free < FULL_BELOW_BYTES => (StoreState::Full, None),
            (None, Ok(_)) => (StoreState::Ok, None),
            (None, Err(e)) => (StoreState::Unknown, Some(format!("cannot read the store's free space: {e}"))),
        };
        Health {
            store,
            reason,
            since_ms: failing.map(|(since, _)| since),
            free_bytes: space.ok().map(|s| s.free),
            waiting,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_state_shows_and_unknown_space_is_said() {
        let room = || Ok(Space { free: 10 << 20, read_only: false });
        assert_eq!(Health::from_parts(None, room(), 0).store, StoreState::Ok);
        let h = Health::from_parts(Some((7, "No space left on device".into())), room(), 3);
        assert_eq!((h.store, h.since_ms, h.waiting), (StoreState::Failing, Some(7), 3));
        assert_eq!(h.reason.as_deref(), Some("No space left on device"));
        let full = Health::from_parts(None, Ok(Space { free: 4096, read_only: false }), 0);
        assert_eq!((full.store, full.free_bytes), (StoreState::Full, Some(4096)));
        let ro = Health::from_parts(None, Ok(Space { free: 10 << 20, read_only: true }), 0);
        assert_eq!(ro.store, StoreState::ReadOnly);
        let unknown = Health::from_parts(None, Err(std::io::Error::from_raw_os_error(libc::EIO)), 0);
        assert_eq!((unknown.store, unknown.free_bytes), (StoreState::Unknown, None));
        assert!(unknown.reason.is_some_and(|r| r.contains("free space")));
        assert!(space(Path::new("/")).is_ok());
    }
}
