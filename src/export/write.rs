//! Writing a case package: staged under a temporary name beside its destination
//! ([`crate::output`]), every store file hashed as it is copied, signed with the device key,
//! optionally encrypted to its receivers as it is written, then put in place.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{
    io_at, manifest_csv, manifest_item, package_digest, utc, CustodyLog, LogEvent, Manifest, PackageError,
    PackageSignature, Recipients, CUSTODY_LOG, DIGEST_FILE, FORMAT, HASH_RULE, MANIFEST_CSV, MANIFEST_JSON,
    README_FILE, SIGNATURE_FILE, SIGNATURE_FORMAT,
};
use crate::ledger::{Item, PackageFormat, RawEvent};
use crate::output;
use crate::quarantine::fsops;
use crate::signing::{package_message, Signed, Signer};

/// What goes into a package.
pub struct PackageInput<'a> {
    pub case_id: &'a str,
    pub officer: Option<&'a str>,
    /// The items, each with the path of its store file.
    pub items: Vec<(&'a Item, PathBuf)>,
    /// Every event of those items, as stored.
    pub events: &'a [RawEvent],
    pub now_ms: i64,
    /// The device key that signs the package digest (`package.sig`); `None` writes an
    /// unsigned package (tests of old packages only: the agent always signs).
    pub signer: Option<&'a dyn Signer>,
    /// Encrypt the package to these receivers (the destination must end in `.age`).
    pub recipients: &'a Recipients,
}

/// A package written under a temporary name beside its destination, not yet published.
/// Dropping it (or [`Staged::discard`]) removes the temporary package.
#[derive(Debug)]
pub struct Staged {
    pending: output::Pending,
    pub dest: PathBuf,
    pub format: PackageFormat,
    pub digest: String,
    pub files: usize,
    pub bytes: u64,
    /// Fingerprint of the key that signed it.
    pub signer: Option<String>,
    /// The recipients of an encrypted package.
    pub recipients: Vec<String>,
    /// SHA-256 of the encrypted file as written.
    pub sealed_sha256: Option<String>,
}

impl Staged {
    /// Where the package is written until it is published.
    pub fn temp_path(&self) -> &Path {
        self.pending.temp_path()
    }

    /// fsync it, rename it into place (replacing only an empty file or folder at the
    /// destination) and fsync the folder it is in ([`output::Pending::place`]). On an error
    /// the temporary package is gone and the destination is as it was.
    pub fn publish(self) -> Result<(), PackageError> {
        Ok(self.pending.place(output::Replace::OnlyEmpty)?)
    }

    /// Remove the temporary package (after a failure).
    pub fn discard(self) {
        self.pending.discard();
    }
}

/// Where a package is written entry by entry.
trait Sink {
    fn add_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<(), PackageError>;
    /// Copy a store file in, hashing as it goes; returns (sha256, size).
    fn add_file(&mut self, name: &str, src: &mut File) -> Result<(String, u64), PackageError>;
    /// Make the package durable; an encrypted one answers the SHA-256 of what was written.
    fn finish(self: Box<Self>) -> Result<Option<String>, PackageError>;
}

fn copy_hashing(src: &mut File, dst: &mut dyn Write, path: &Path) -> Result<(String, u64), PackageError> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = src.read(&mut buf).map_err(io_at(path))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        dst.write_all(&buf[..k]).map_err(io_at(path))?;
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

struct DirSink {
    root: PathBuf,
}

impl DirSink {
    fn create(&self, name: &str) -> Result<(File, PathBuf), PackageError> {
        let path = self.root.join(name);
        if let Some(parent) = path.parent() {
            if !parent.exists() {
                std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(io_at(parent))?;
            }
        }
        let f =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(io_at(&path))?;
        Ok((f, path))
    }
}

impl Sink for DirSink {
    fn add_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<(), PackageError> {
        let (mut f, path) = self.create(name)?;
        f.write_all(bytes).map_err(io_at(&path))
    }

    fn add_file(&mut self, name: &str, src: &mut File) -> Result<(String, u64), PackageError> {
        let (mut f, path) = self.create(name)?;
        copy_hashing(src, &mut f, &path)
    }

    fn finish(self: Box<Self>) -> Result<Option<String>, PackageError> {
        // Every file and folder is fsynced when the package is placed (`output::Pending::place`).
        Ok(None)
    }
}

/// The file under a zip archive: plain, or the age stream that encrypts it.
trait ZipOut: Write + Seek {
    /// Finish writing (the fsync is the placing's); an encrypted file answers the SHA-256 of its bytes.
    fn close(self, path: &Path) -> Result<Option<String>, PackageError>;
}

impl ZipOut for File {
    fn close(self, _path: &Path) -> Result<Option<String>, PackageError> {
        Ok(None)
    }
}

/// A file that hashes what is written to it (the ciphertext of an encrypted package).
struct Hashing {
    file: File,
    hash: Sha256,
}

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

type Sealing = zip::write::StreamWriter<age::stream::StreamWriter<Hashing>>;

impl ZipOut for Sealing {
    fn close(self, path: &Path) -> Result<Option<String>, PackageError> {
        let hashing = self.into_inner().finish().map_err(io_at(path))?;
        Ok(Some(hex::encode(hashing.hash.finalize())))
    }
}

struct ZipSink<W: ZipOut> {
    path: PathBuf,
    zip: zip::ZipWriter<W>,
    /// Entry time: when the package was built (UTC; zip has no zone), not 1980.
    mtime: zip::DateTime,
}

/// A zip entry's time: when the package was built (UTC; zip has no zone), not 1980.
fn entry_time(ms: i64) -> zip::DateTime {
    use chrono::{Datelike, Timelike};
    chrono::DateTime::from_timestamp_millis(ms)
        .and_then(|t| {
            zip::DateTime::from_date_and_time(
                u16::try_from(t.year()).ok()?,
                t.month() as u8,
                t.day() as u8,
                t.hour() as u8,
                t.minute() as u8,
                t.second() as u8,
            )
            .ok()
        })
        .unwrap_or_default()
}

impl<W: ZipOut> ZipSink<W> {
    fn zip_err(&self, source: zip::result::ZipError) -> PackageError {
        PackageError::Zip { path: self.path.clone(), source }
    }
}

impl<W: ZipOut> Sink for ZipSink<W> {
    fn add_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<(), PackageError> {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(self.mtime)
            .unix_permissions(0o600);
        self.zip.start_file(name, opts).map_err(|e| self.zip_err(e))?;
        self.zip.write_all(bytes).map_err(io_at(&self.path))
    }

    fn add_file(&mut self, name: &str, src: &mut File) -> Result<(String, u64), PackageError> {
        let size = src.metadata().map_err(io_at(&self.path))?.len();
        // Photos and videos are compressed already: stored, so the bytes sit in the archive as they are.
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .last_modified_time(self.mtime)
            .unix_permissions(0o600)
            .large_file(size >= u32::MAX as u64);
        self.zip.start_file(name, opts).map_err(|e| self.zip_err(e))?;
        let path = self.path.clone();
        copy_hashing(src, &mut self.zip, &path)
    }

    fn finish(self: Box<Self>) -> Result<Option<String>, PackageError> {
        let path = self.path.clone();
        // fsynced when the package is placed (`output::Pending::place`).
        let out = self.zip.finish().map_err(|source| PackageError::Zip { path: path.clone(), source })?;
        out.close(&path)
    }
}

fn readme(case_id: &str, digest: &str, signer: Option<&str>) -> String {
    let signed = match signer {
        Some(f) => format!(
            "package.sig = the phone's device key's signature over package.sha256, key fingerprint\n\
             {f}\n(SHA-256 of the public key). Check it against the phone's registered fingerprint:\n\
             fotovakt verify-package --trust {f} <this package>\n\n"
        ),
        None => "This package is not signed.\n\n".to_string(),
    };
    format!(
        "fotovakt case package ({FORMAT}), case {case_id}\n\n\
         package.sha256 = {digest}\n\n{signed}\
         Check it offline with:  fotovakt verify-package <this folder or .zip>\n\n\
         What that checks: every file's SHA-256 and size against manifest.json; manifest.csv\n\
         against manifest.json; every custody event's hash recomputed from its fields\n\
         ({HASH_RULE}); the prev_hash links between events with consecutive seq; that each\n\
         file's SHA-256 is the one its intake event recorded; package.sha256; and the signature\n\
         in package.sig over it (with --trust, that a registered device key made it).\n\n\
         The phone's ledger records package.sha256 in an `export` event for every item: compare\n\
         it with `fotovakt show ITEM` on the phone to know this is the package that left it.\n"
    )
}

/// Write a package for `input` under a temporary name beside `dest` ([`output`]): a crash
/// leaves only a name that says it is incomplete. [`Staged::publish`] puts it in place.
/// Each store file is hashed as it is copied and must match its ledger SHA-256.
pub fn stage(dest: &Path, input: &PackageInput<'_>) -> Result<Staged, PackageError> {
    let format = PackageFormat::for_path(dest);
    match (format, input.recipients.is_empty()) {
        (PackageFormat::Age, true) => {
            return Err(PackageError::Unusable {
                path: dest.to_path_buf(),
                about: "a .age package is encrypted to its receivers: name them (export --to RECIPIENT)",
            })
        }
        (PackageFormat::Dir | PackageFormat::Zip, false) => {
            return Err(PackageError::Unusable {
                path: dest.to_path_buf(),
                about: "a package encrypted to receivers is one file: name it NAME.zip.age",
            })
        }
        _ => {}
    }
    let (pending, mut sink): (output::Pending, Box<dyn Sink>) = match format {
        PackageFormat::Dir => {
            let pending = output::begin_folder(dest)?;
            let root = pending.temp_path().to_path_buf();
            (pending, Box::new(DirSink { root }))
        }
        PackageFormat::Zip => {
            let (pending, f) = output::begin_file(dest)?;
            let path = pending.temp_path().to_path_buf();
            (pending, Box::new(ZipSink { path, zip: zip::ZipWriter::new(f), mtime: entry_time(input.now_ms) }))
        }
        PackageFormat::Age => {
            let encryptor = input.recipients.encryptor(dest)?;
            let (pending, f) = output::begin_file(dest)?;
            let path = pending.temp_path().to_path_buf();
            // On an error `pending` is dropped, which removes the temporary file.
            let sealed = encryptor.wrap_output(Hashing { file: f, hash: Sha256::new() }).map_err(io_at(&path))?;
            // Streamed: the zip is never seekable, so no plaintext byte is ever written.
            (
                pending,
                Box::new(ZipSink { path, zip: zip::ZipWriter::new_stream(sealed), mtime: entry_time(input.now_ms) }),
            )
        }
    };
    // On an error `pending` is dropped, which removes the temporary package.
    let w = write_all(&mut *sink, input)?;
    let sealed_sha256 = sink.finish()?;
    Ok(Staged {
        pending,
        dest: dest.to_path_buf(),
        format,
        digest: w.digest,
        files: w.files,
        bytes: w.bytes,
        signer: w.signer,
        recipients: input.recipients.as_strings(),
        sealed_sha256,
    })
}

/// What [`write_all`] wrote.
struct Written {
    digest: String,
    files: usize,
    bytes: u64,
    signer: Option<String>,
}

fn write_all(sink: &mut dyn Sink, input: &PackageInput<'_>) -> Result<Written, PackageError> {
    let mut records = Vec::new();
    let mut bytes = 0u64;
    for (item, store_path) in &input.items {
        let record = manifest_item(item);
        let (mut src, _) = fsops::open_regular(store_path)
            .map_err(|source| PackageError::StoreFile { path: store_path.clone(), source })?;
        let (sha, size) = sink.add_file(&record.file, &mut src)?;
        if sha != item.sha256 || size != item.size {
            return Err(PackageError::StoreFileChanged { path: store_path.clone(), item: item.id });
        }
        bytes += size;
        records.push(record);
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        case_id: input.case_id.to_string(),
        exported_at: utc(input.now_ms),
        exported_by: input.officer.map(str::to_string),
        tool: format!("fotovakt {}", env!("CARGO_PKG_VERSION")),
        items: records,
    };
    let log = CustodyLog {
        format: FORMAT.into(),
        hash: HASH_RULE.into(),
        events: input
            .events
            .iter()
            .map(|e| LogEvent {
                seq: e.seq,
                at_ms: e.at_ms,
                at: utc(e.at_ms),
                kind: e.kind.clone(),
                item: e.item,
                data: e.data.clone(),
                prev_hash: e.prev_hash.clone(),
                hash: e.hash.clone(),
                v: e.v,
                data_sha256: e.data_sha256.clone(),
            })
            .collect(),
    };
    let json_err = |source| PackageError::Json { path: PathBuf::from(MANIFEST_JSON), source };
    let manifest_json = serde_json::to_vec_pretty(&manifest).map_err(json_err)?;
    let csv = manifest_csv(&manifest);
    let custody = serde_json::to_vec_pretty(&log).map_err(json_err)?;
    let digest = package_digest(&manifest_json, csv.as_bytes(), &custody);
    let signature = match input.signer {
        Some(signer) => Some(PackageSignature {
            format: SIGNATURE_FORMAT.into(),
            digest: digest.clone(),
            signed: Signed::make(signer, &package_message(&digest))?,
        }),
        None => None,
    };
    let signer = signature.as_ref().map(|s| s.signed.fingerprint.clone());
    sink.add_bytes(MANIFEST_JSON, &manifest_json)?;
    sink.add_bytes(MANIFEST_CSV, csv.as_bytes())?;
    sink.add_bytes(CUSTODY_LOG, &custody)?;
    sink.add_bytes(DIGEST_FILE, format!("{digest}\n").as_bytes())?;
    if let Some(sig) = &signature {
        let text = serde_json::to_vec_pretty(sig)
            .map_err(|source| PackageError::Json { path: SIGNATURE_FILE.into(), source })?;
        sink.add_bytes(SIGNATURE_FILE, &text)?;
    }
    sink.add_bytes(README_FILE, readme(input.case_id, &digest, signer.as_deref()).as_bytes())?;
    Ok(Written { digest, files: manifest.items.len(), bytes, signer })
}
