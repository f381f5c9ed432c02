//! Read access to a package: a folder, a zip, or a zip encrypted to its receiver (read in
//! place through age's seeking reader, never decrypted to disk).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{io_at, seal, Identities, PackageError, MAX_TEXT_BYTES};
use crate::ledger::PackageFormat;

/// A zip's bytes: the file, or the plaintext of an encrypted one, read in place.
pub(super) trait ReadSeek: Read + io::Seek {}

impl<T: Read + io::Seek> ReadSeek for T {}

/// Read access to a package, directory or zip (plain or encrypted).
pub(super) enum Reader {
    Dir(PathBuf),
    Zip { archive: Box<zip::ZipArchive<Box<dyn ReadSeek>>>, sealed: bool },
}

impl Reader {
    pub(super) fn open(path: &Path, identities: Option<&Identities>) -> Result<Reader, PackageError> {
        let meta = std::fs::metadata(path).map_err(io_at(path))?;
        if meta.is_dir() {
            return Ok(Reader::Dir(path.to_path_buf()));
        }
        let sealed = seal::is_sealed(path).map_err(io_at(path))?;
        let bytes: Box<dyn ReadSeek> = match (sealed, identities) {
            (false, _) => Box::new(File::open(path).map_err(io_at(path))?),
            (true, Some(ids)) => Box::new(seal::open(path, ids)?),
            (true, None) => {
                return Err(PackageError::Unusable {
                    path: path.to_path_buf(),
                    about: "encrypted to its receiver: open it with --identity KEYFILE (the receiver's age identity)",
                })
            }
        };
        let z = zip::ZipArchive::new(bytes).map_err(|source| PackageError::Zip { path: path.to_path_buf(), source })?;
        Ok(Reader::Zip { archive: Box::new(z), sealed })
    }

    pub(super) fn format(&self) -> PackageFormat {
        match self {
            Reader::Dir(_) => PackageFormat::Dir,
            Reader::Zip { sealed: false, .. } => PackageFormat::Zip,
            Reader::Zip { sealed: true, .. } => PackageFormat::Age,
        }
    }

    /// Every entry name (files only), `/`-separated and relative.
    pub(super) fn names(&mut self) -> Result<Vec<String>, String> {
        match self {
            Reader::Dir(root) => {
                let mut out = Vec::new();
                let mut stack = vec![PathBuf::new()];
                while let Some(rel) = stack.pop() {
                    let dir = root.join(&rel);
                    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                    for e in entries.flatten() {
                        let r = rel.join(e.file_name());
                        match e.file_type() {
                            Ok(t) if t.is_dir() => stack.push(r),
                            _ => out.push(r.to_string_lossy().into_owned()),
                        }
                    }
                }
                out.sort();
                Ok(out)
            }
            Reader::Zip { archive: z, .. } => {
                let mut out = Vec::new();
                for i in 0..z.len() {
                    let f = z.by_index_raw(i).map_err(|e| e.to_string())?;
                    if !f.is_dir() {
                        out.push(f.name().map_err(|e| e.to_string())?.into_owned());
                    }
                }
                out.sort();
                Ok(out)
            }
        }
    }

    /// Stream one entry into `f`; `Ok(false)` when there is no such entry.
    fn with_entry(&mut self, name: &str, f: &mut dyn FnMut(&mut dyn Read) -> io::Result<()>) -> io::Result<bool> {
        match self {
            Reader::Dir(root) => {
                let path = root.join(name);
                match std::fs::symlink_metadata(&path) {
                    Ok(m) if m.is_file() => {}
                    Ok(_) => return Err(io::Error::other("not a regular file")),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                    Err(e) => return Err(e),
                }
                let mut file = File::open(&path)?;
                f(&mut file)?;
                Ok(true)
            }
            Reader::Zip { archive: z, .. } => match z.by_name(name) {
                Ok(mut entry) => {
                    f(&mut entry)?;
                    Ok(true)
                }
                Err(zip::result::ZipError::FileNotFound) => Ok(false),
                Err(e) => Err(io::Error::other(e.to_string())),
            },
        }
    }

    pub(super) fn read_text(&mut self, name: &str) -> io::Result<Option<Vec<u8>>> {
        let mut buf = Vec::new();
        let found = self.with_entry(name, &mut |r| {
            r.take(MAX_TEXT_BYTES + 1).read_to_end(&mut buf)?;
            if buf.len() as u64 > MAX_TEXT_BYTES {
                return Err(io::Error::other(format!("larger than {MAX_TEXT_BYTES} bytes")));
            }
            Ok(())
        })?;
        Ok(found.then_some(buf))
    }

    pub(super) fn hash(&mut self, name: &str) -> io::Result<Option<(String, u64)>> {
        let mut out = None;
        let found = self.with_entry(name, &mut |r| {
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut n = 0u64;
            loop {
                let k = r.read(&mut buf)?;
                if k == 0 {
                    break;
                }
                h.update(&buf[..k]);
                n += k as u64;
            }
            out = Some((hex::encode(h.finalize()), n));
            Ok(())
        })?;
        Ok(if found { out } else { None })
    }
}
