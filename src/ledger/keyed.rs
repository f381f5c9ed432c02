//! The device secret and the keyed hashes that stand in for an officer's own photos.
//!
//! A photo decided `keep` is not recorded by name, path or content hash: the ledger keeps
//! HMAC-SHA256 of its file identity under a secret made on this device ([`DeviceSecret`]),
//! enough to recognise the same file version when reconcile sees it again, and nothing anyone
//! without the secret can match to a photo. The secret is 32 random bytes in `privacy.key`
//! beside the ledger (mode 0600), made when the store is created (or when an older store is
//! first opened by this version), never exported, never in a package. Whoever holds it and a
//! photo can tell whether the agent decided that photo, no more; a store copied without it
//! says nothing about which photos the officer kept.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::schema::path_bytes;

/// The secret's file name, beside the ledger.
pub const SECRET_FILE: &str = "privacy.key";
const SECRET_LEN: usize = 32;

/// The device secret of the keyed hashes.
#[derive(Clone)]
pub struct DeviceSecret([u8; SECRET_LEN]);

impl std::fmt::Debug for DeviceSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceSecret(..)")
    }
}

/// A secret file that is there but cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Not 32 bytes: damaged. The agent does not replace it on its own (a new secret would make
    /// every keyed marker unmatchable, and every photo would be decided again); remove the file
    /// to start over, knowing that.
    #[error("{path}: {len} bytes, not a {SECRET_LEN}-byte device secret (damaged?); remove it to make a new one, and every photo in the camera folders is decided once more")]
    Damaged { path: PathBuf, len: usize },
    /// A read-only open found no usable secret at `path` (it makes none), and the ledger holds
    /// keyed records: no photo can be matched to one.
    #[error("{path} is not there or cannot be read, so no photo can be matched to its keyed record")]
    Missing { path: PathBuf },
}

impl SecretError {
    /// Did the disk under the secret fail (full, an I/O error, read-only), rather than the
    /// secret itself or its permissions? Like the ledger's own such failures, it may pass.
    pub fn is_storage_failure(&self) -> bool {
        match self {
            SecretError::Io { source, .. } => {
                matches!(
                    source.kind(),
                    io::ErrorKind::StorageFull | io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::QuotaExceeded
                ) || source.raw_os_error() == Some(libc::EIO)
            }
            SecretError::Damaged { .. } | SecretError::Missing { .. } => false,
        }
    }
}

impl DeviceSecret {
    /// Read the secret at `path`, or make it when there is none (`created` says which). The
    /// caller holds the ledger's write lock, so two processes never make two secrets. A new
    /// secret is written to a temporary file, fsynced, renamed into place and its folder
    /// fsynced: it is never seen half-written.
    pub fn load_or_create(path: &Path) -> Result<(DeviceSecret, bool), SecretError> {
        let io_err = |source| SecretError::Io { path: path.to_path_buf(), source };
        if let Some(secret) = DeviceSecret::load(path)? {
            return Ok((secret, false));
        }
        let mut bytes = [0u8; SECRET_LEN];
        getrandom::fill(&mut bytes).map_err(|e| io_err(io::Error::other(e.to_string())))?;
        let tmp = path.with_extension("key.tmp");
        let written = (|| {
            let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            crate::quarantine::fsops::fsync_parent(path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err(e));
        }
        Ok((DeviceSecret(bytes), true))
    }

    /// Read the secret at `path`, or `None` when there is none; never makes one (a read-only
    /// open of the ledger).
    pub fn load(path: &Path) -> Result<Option<DeviceSecret>, SecretError> {
        let io_err = |source| SecretError::Io { path: path.to_path_buf(), source };
        let mut f = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(e)),
        };
        let mut buf = Vec::with_capacity(SECRET_LEN);
        Read::by_ref(&mut f).take(SECRET_LEN as u64 + 1).read_to_end(&mut buf).map_err(io_err)?;
        let bytes: [u8; SECRET_LEN] =
            buf.as_slice().try_into().map_err(|_| SecretError::Damaged { path: path.to_path_buf(), len: buf.len() })?;
        Ok(Some(DeviceSecret(bytes)))
    }

    fn mac(&self, domain: &[u8]) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        m.update(domain);
        m
    }

    /// The keyed identity of one file version: its path, size and modification time (the
    /// facts reconcile compares). 32 bytes.
    pub fn file_key(&self, path: &Path, size: u64, mtime_ns: i64) -> Vec<u8> {
        let mut m = self.mac(b"fotovakt-file-v1\0");
        let p = path_bytes(path);
        m.update(&(p.len() as u64).to_le_bytes());
        m.update(p);
        m.update(&size.to_le_bytes());
        m.update(&mtime_ns.to_le_bytes());
        m.finalize().into_bytes().to_vec()
    }

    /// The keyed identity of the folder a file is in: which reconcile pass may tell that a
    /// marker's file has left its folder. 32 bytes.
    pub fn folder_key(&self, folder: &Path) -> Vec<u8> {
        let mut m = self.mac(b"fotovakt-folder-v1\0");
        m.update(path_bytes(folder));
        m.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_full_or_failing_disk_under_the_secret_is_a_storage_failure() {
        let io = |e: io::Error| SecretError::Io { path: "store/privacy.key".into(), source: e };
        assert!(io(io::Error::from_raw_os_error(libc::ENOSPC)).is_storage_failure());
        assert!(io(io::Error::from_raw_os_error(libc::EIO)).is_storage_failure());
        assert!(io(io::Error::from_raw_os_error(libc::EROFS)).is_storage_failure());
        assert!(!io(io::Error::from_raw_os_error(libc::EACCES)).is_storage_failure());
        assert!(!SecretError::Damaged { path: "k".into(), len: 3 }.is_storage_failure());
    }

    #[test]
    fn a_secret_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join(SECRET_FILE);
        let (a, created) = DeviceSecret::load_or_create(&p).expect("create");
        assert!(created);
        assert_eq!(std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777, 0o600);
        let (b, created) = DeviceSecret::load_or_create(&p).expect("read");
        assert!(!created);
        let f = Path::new("/c/IMG_1.jpg");
        assert_eq!(a.file_key(f, 3, 7), b.file_key(f, 3, 7));
        assert_eq!(a.file_key(f, 3, 7).len(), 32);
        assert_ne!(a.file_key(f, 3, 7), a.file_key(f, 3, 8), "another version of the file");
        assert_ne!(a.file_key(f, 3, 7), a.folder_key(f), "domains are separate");
        let other = tempfile::tempdir().expect("tempdir");
        let (c, _) = DeviceSecret::load_or_create(&other.path().join(SECRET_FILE)).expect("other");
        assert_ne!(a.file_key(f, 3, 7), c.file_key(f, 3, 7), "another device's secret");
    }

    #[test]
    fn a_damaged_secret_is_an_error_not_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join(SECRET_FILE);
        std::fs::write(&p, b"short").expect("write");
        let e = DeviceSecret::load_or_create(&p).expect_err("damaged");
        assert!(matches!(e, SecretError::Damaged { len: 5, .. }), "{e}");
        assert_eq!(std::fs::read(&p).expect("read"), b"short", "left alone");
    }
}
