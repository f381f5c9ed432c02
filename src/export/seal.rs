//! Packages for their receiver alone: the `.zip` encrypted to age X25519 recipients
//! (age-encryption.org/v1, through the `age` crate), and opened again with the receiver's
//! identity file.
//!
//! Encryption happens while the zip is written ([`super::write`] streams the archive into the
//! age writer), so the plaintext package never touches the disk, not even in a temporary file
//! beside the destination (on a phone, shared storage). Reading back needs no plaintext copy
//! either: age's reader seeks, so the zip is read in place ([`super::verify`]).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::str::FromStr;

use super::PackageError;

/// The first line of every age file (the binary format; `age -a` armor is not written here).
pub const HEADER: &[u8] = b"age-encryption.org/v1\n";

/// The receivers an encrypted package is for.
#[derive(Clone, Default)]
pub struct Recipients(Vec<age::x25519::Recipient>);

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_strings()).finish()
    }
}

/// A recipient that is not an age X25519 public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not an age X25519 recipient (a public key age1…): {reason}")]
pub struct BadRecipient {
    pub given: String,
    pub reason: String,
}

impl Recipients {
    /// Parse recipients (`age1…`), each at most once. Blank entries are skipped.
    pub fn parse<S: AsRef<str>>(given: impl IntoIterator<Item = S>) -> Result<Recipients, BadRecipient> {
        let mut out: Vec<age::x25519::Recipient> = Vec::new();
        for g in given {
            let g = g.as_ref().trim();
            if g.is_empty() {
                continue;
            }
            let r = age::x25519::Recipient::from_str(g)
                .map_err(|reason| BadRecipient { given: g.to_string(), reason: reason.to_string() })?;
            if !out.iter().any(|o| o.to_string() == r.to_string()) {
                out.push(r);
            }
        }
        Ok(Recipients(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The recipients as written (`age1…`), for the ledger and reports.
    pub fn as_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    pub(crate) fn encryptor(&self, path: &Path) -> Result<age::Encryptor, PackageError> {
        age::Encryptor::with_recipients(self.0.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| PackageError::Sealed { path: path.to_path_buf(), reason: e.to_string() })
    }
}

/// The receiver's secret keys, from an age identity file (`AGE-SECRET-KEY-1…` lines, as
/// `age-keygen` writes them).
pub struct Identities(Vec<Box<dyn age::Identity + Send + Sync>>);

impl Identities {
    /// Read an identity file.
    pub fn from_file(path: &Path) -> Result<Identities, PackageError> {
        let io = |source| PackageError::Io { path: path.to_path_buf(), source };
        let file = File::open(path).map_err(io)?;
        let parsed = age::IdentityFile::from_buffer(io::BufReader::new(file)).map_err(io)?;
        let ids = parsed
            .into_identities()
            .map_err(|e| PackageError::Sealed { path: path.to_path_buf(), reason: e.to_string() })?;
        if ids.is_empty() {
            return Err(PackageError::Sealed {
                path: path.to_path_buf(),
                reason: "no age identity in the file".into(),
            });
        }
        Ok(Identities(ids))
    }
}

/// Is `path` an age-encrypted file (a regular file that starts with the age header)?
pub fn is_sealed(path: &Path) -> io::Result<bool> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Ok(false);
    }
    let mut start = [0u8; HEADER.len()];
    let mut f = File::open(path)?;
    let mut n = 0;
    while n < start.len() {
        match f.read(&mut start[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n == HEADER.len() && start == HEADER)
}

/// Open an encrypted package with `identities`: a reader of the plaintext zip that seeks.
pub(crate) fn open(path: &Path, identities: &Identities) -> Result<age::stream::StreamReader<File>, PackageError> {
    let sealed = |reason: String| PackageError::Sealed { path: path.to_path_buf(), reason };
    let file = File::open(path).map_err(|source| PackageError::Io { path: path.to_path_buf(), source })?;
    let d = age::Decryptor::new(file).map_err(|e| sealed(format!("not a readable age file: {e}")))?;
    if d.is_scrypt() {
        return Err(sealed("encrypted with a passphrase, not to a recipient: not a fotovakt package".into()));
    }
    d.decrypt(identities.0.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| sealed(format!("cannot be opened with this identity file: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_checked_and_deduplicated() {
        let id = age::x25519::Identity::generate();
        let r = id.to_public().to_string();
        let parsed = Recipients::parse([r.as_str(), " ", r.as_str()]).expect("parse");
        assert_eq!(parsed.as_strings(), vec![r]);
        let e = Recipients::parse(["age1notakey"]).expect_err("bad");
        assert_eq!(e.given, "age1notakey");
        assert!(Recipients::parse(["ssh-ed25519 AAAA"]).is_err());
    }
}
