//! The host's device key: an Ed25519 key in `STORE/device.key` (PKCS#8 PEM, mode 0600).
//!
//! Made once, from the operating system's random source, when a store has none. Written the
//! way the head is: a temporary file (`device.key.tmp`, `O_EXCL`, 0600), fsynced, then renamed
//! into place without replacing anything, and the folder fsynced. The agent makes it under the
//! ledger's write lock, so one process makes it and the others read it; a temporary left by a
//! process that died is removed by the next one. `openssl pkey -in device.key -pubout` reads
//! it. It never leaves the store: packages carry the public key only.

use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};

use super::{Algorithm, Provider, PublicKey, SignError, Signer};
use crate::quarantine::fsops;

/// The key file's name inside the store.
pub const FILE_NAME: &str = "device.key";

/// An Ed25519 device key read from (or just written to) its file.
pub struct KeyFile {
    key: ed25519_dalek::SigningKey,
    public: PublicKey,
    path: PathBuf,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile").field("path", &self.path).field("fingerprint", &self.public.fingerprint()).finish()
    }
}

impl KeyFile {
    /// Read the key at `path`. A file others can read is refused (like the store itself).
    pub fn load(path: &Path) -> Result<KeyFile, SignError> {
        let io = |source| SignError::Io { path: path.to_path_buf(), source };
        let meta = std::fs::symlink_metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(SignError::BadKeyFile { path: path.to_path_buf(), reason: "not a regular file".into() });
        }
        if meta.mode() & 0o077 != 0 {
            return Err(SignError::Permissions { path: path.to_path_buf(), mode: meta.mode() & 0o777 });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&text).map_err(|e| SignError::BadKeyFile {
            path: path.to_path_buf(),
            reason: format!("not a PKCS#8 Ed25519 key: {e}"),
        })?;
        KeyFile::from_key(key, path)
    }

    fn from_key(key: ed25519_dalek::SigningKey, path: &Path) -> Result<KeyFile, SignError> {
        let spki = key
            .verifying_key()
            .to_public_key_der()
            .map_err(|e| SignError::BadKeyFile { path: path.to_path_buf(), reason: e.to_string() })?;
        let public = PublicKey::from_spki(Algorithm::Ed25519, spki.as_bytes())?;
        Ok(KeyFile { key, public, path: path.to_path_buf() })
    }

    /// Make a new key at `path`. If another process made one meanwhile, that one is read and
    /// `false` comes back with it. Callers serialise (the ledger's write lock): the temporary
    /// file's name is fixed, and one left by a dead process is removed first.
    fn create(path: &Path) -> Result<(KeyFile, bool), SignError> {
        let io = |source| SignError::Io { path: path.to_path_buf(), source };
        let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        let pem = key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| SignError::BadKeyFile { path: path.to_path_buf(), reason: e.to_string() })?;
        let tmp = path.with_extension("key.tmp");
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
        let written = (|| -> io::Result<()> {
            let mut f = fsops::create_exclusive(&tmp)?;
            f.write_all(pem.as_bytes())?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        match fsops::rename_noreplace(&tmp, path) {
            Ok(()) => {
                fsops::fsync_parent(path).map_err(io)?;
                Ok((KeyFile::from_key(key, path)?, true))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let _ = std::fs::remove_file(&tmp);
                Ok((KeyFile::load(path)?, false))
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(io(e))
            }
        }
    }

    /// Read the key at `path`, or make one if there is none; `true` when it was made now.
    pub fn load_or_create(path: &Path) -> Result<(KeyFile, bool), SignError> {
        match KeyFile::load(path) {
            Err(SignError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => KeyFile::create(path),
            other => other.map(|k| (k, false)),
        }
    }

    /// Move a key file that cannot be used out of the way (kept beside it for an examiner, as
    /// `device.key.unusable-<ms>`), so a new one can be made. Returns where it went.
    pub fn set_aside(path: &Path, now_ms: i64) -> Result<PathBuf, SignError> {
        let aside = path.with_extension(format!("key.unusable-{now_ms}"));
        fsops::rename_noreplace(path, &aside).map_err(|source| SignError::Io { path: path.to_path_buf(), source })?;
        fsops::fsync_parent(path).map_err(|source| SignError::Io { path: path.to_path_buf(), source })?;
        Ok(aside)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Signer for KeyFile {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        use ed25519_dalek::Signer as _;
        Ok(self.key.sign(message).to_bytes().to_vec())
    }

    fn provider(&self) -> Provider {
        Provider::KeyFile
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_private_and_read_back_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        let (a, made) = KeyFile::load_or_create(&path).expect("create");
        assert!(made);
        assert_eq!(std::fs::metadata(&path).expect("meta").mode() & 0o777, 0o600);
        assert!(std::fs::read_to_string(&path).expect("pem").starts_with("-----BEGIN PRIVATE KEY-----"));
        let (b, made) = KeyFile::load_or_create(&path).expect("load");
        assert!(!made);
        assert_eq!(a.public_key(), b.public_key());
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
    }

    #[test]
    fn a_readable_or_damaged_key_file_is_refused_and_can_be_set_aside() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        KeyFile::load_or_create(&path).expect("create");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(KeyFile::load(&path), Err(SignError::Permissions { mode: 0o644, .. })));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::write(&path, "-----BEGIN PRIVATE KEY-----\nbroken\n").expect("damage");
        assert!(matches!(KeyFile::load(&path), Err(SignError::BadKeyFile { .. })));
        let aside = KeyFile::set_aside(&path, 42).expect("aside");
        assert!(aside.ends_with("device.key.unusable-42") && aside.exists() && !path.exists());
        assert!(KeyFile::load_or_create(&path).expect("new").1);
    }
}
