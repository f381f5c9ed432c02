//! Case packages: what leaves the phone for the case file, and how a receiver checks it offline.
//!
//! A package is a directory, or a `.zip` with the same entries:
//!
//! ```text
//! manifest.json    the case, who exported it and when, and one record per file
//! manifest.csv     the same records as CSV (for a spreadsheet)
//! custody.json     every ledger event of those items, with seq, at, kind, data, prev_hash, hash
//! package.sha256   SHA-256 over manifest.json, manifest.csv and custody.json (see [`package_digest`])
//! README.txt       how to check the package
//! files/<item>-<sha8>.<ext>   the originals, byte for byte from the store
//! ```
//!
//! The custody log is a *subset* of the phone's global hash chain: other items' events
//! interleave. Each event carries its `prev_hash` and `hash`, so a receiver recomputes every
//! event's hash from its own fields ([`crate::ledger::event_hash`]) and checks the links
//! between events whose sequence numbers follow each other; across a gap the link belongs
//! to events not in the package. Files are bound to the log by their intake event, which
//! records the SHA-256 taken before anything else read the file. The package digest is
//! recorded in the phone's ledger (`export` events), so the phone attests what left it.
//!
//! Nothing here is signed: someone who rewrites a package consistently (files, manifest, log,
//! digest) is caught only by comparing the digest with the phone's ledger (`fotovakt show`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ledger::{self, Item, RawEvent};
use crate::quarantine::fsops;

/// The package format written and understood here.
pub const FORMAT: &str = "fotovakt-case-package-v1";
pub const MANIFEST_JSON: &str = "manifest.json";
pub const MANIFEST_CSV: &str = "manifest.csv";
pub const CUSTODY_LOG: &str = "custody.json";
pub const DIGEST_FILE: &str = "package.sha256";
pub const README_FILE: &str = "README.txt";
pub const FILES_DIR: &str = "files";

/// Largest manifest or custody log read back (a sanity bound against a hostile package).
const MAX_TEXT_BYTES: u64 = 256 << 20;

/// The columns of `manifest.csv`, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "file",
    "item",
    "original_name",
    "original_path",
    "sha256",
    "size",
    "kind",
    "capture_time",
    "gps_lat",
    "gps_lon",
    "first_seen",
    "quarantined_at",
    "action",
    "source",
    "rule",
    "officer",
    "case_id",
    "tags",
];

/// Errors writing or opening a package. Problems *inside* a readable package are not errors:
/// they are listed in [`PackageReport::problems`].
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not a readable zip archive: {message}")]
    Zip { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> PackageError + '_ {
    move |source| PackageError::Io { path: path.to_path_buf(), source }
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub case_id: String,
    /// When the package was built (UTC, RFC 3339 with milliseconds).
    pub exported_at: String,
    pub exported_by: Option<String>,
    /// The program that wrote it.
    pub tool: String,
    pub items: Vec<ManifestItem>,
}

/// One file of the package.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ManifestItem {
    /// Path inside the package (`files/<item>-<sha8>.<ext>`).
    pub file: String,
    /// Item number in the phone's ledger (the `item` of its custody events).
    pub item: i64,
    pub original_name: String,
    pub original_path: String,
    pub sha256: String,
    pub size: u64,
    pub kind: String,
    /// EXIF capture time as written by the camera (local time, no zone).
    pub capture_time: Option<String>,
    pub gps_lat: Option<f64>,
    pub gps_lon: Option<f64>,
    /// UTC, RFC 3339 with milliseconds.
    pub first_seen: String,
    pub quarantined_at: Option<String>,
    pub action: String,
    pub source: String,
    pub rule: String,
    pub officer: Option<String>,
    pub case_id: Option<String>,
    pub tags: Vec<String>,
}

/// `custody.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustodyLog {
    pub format: String,
    /// How each `hash` is computed, for a receiver without this program.
    pub hash: String,
    pub events: Vec<LogEvent>,
}

/// One event of the custody log: the ledger row, plus `at` for people.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogEvent {
    pub seq: i64,
    pub at_ms: i64,
    /// `at_ms` as UTC, RFC 3339 (not hashed; checked against `at_ms`).
    pub at: String,
    pub kind: String,
    pub item: Option<i64>,
    /// The event's JSON text exactly as hashed.
    pub data: String,
    pub prev_hash: String,
    pub hash: String,
}

const HASH_RULE: &str =
    "sha256(\"fotovakt-event-v1\\n\" + seq + \"\\n\" + at_ms + \"\\n\" + kind + \"\\n\" + (item or \"\") \
     + \"\\n\" + data + \"\\n\" + prev_hash), lowercase hex; prev_hash of event 1 is 64 zeros";

/// UTC RFC 3339 with milliseconds.
pub fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// The package digest: SHA-256 over the three text parts, each framed by its name and length.
pub fn package_digest(manifest_json: &[u8], manifest_csv: &[u8], custody: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"fotovakt-package-v1\n");
    for (name, bytes) in [(MANIFEST_JSON, manifest_json), (MANIFEST_CSV, manifest_csv), (CUSTODY_LOG, custody)] {
        h.update(format!("{name}\n{}\n", bytes.len()).as_bytes());
        h.update(bytes);
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// The name a store item gets inside a package: unique (item number) and readable.
pub fn package_file_name(item: &Item) -> String {
    let ext: String = item
        .original_path
        .extension()
        .map(|e| e.to_string_lossy().chars().filter(|c| c.is_ascii_alphanumeric()).take(8).collect())
        .unwrap_or_default();
    let ext = if ext.is_empty() { "bin".to_string() } else { ext.to_ascii_lowercase() };
    format!("{FILES_DIR}/{}-{}.{ext}", item.id, &item.sha256[..8])
}

fn manifest_item(item: &Item) -> ManifestItem {
    ManifestItem {
        file: package_file_name(item),
        item: item.id,
        original_name: item.original_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        original_path: item.original_path.to_string_lossy().into_owned(),
        sha256: item.sha256.clone(),
        size: item.size,
        kind: item.kind.clone(),
        capture_time: item.capture_time.clone(),
        gps_lat: item.gps.map(|g| g.0),
        gps_lon: item.gps.map(|g| g.1),
        first_seen: utc(item.first_seen_ms),
        quarantined_at: item.quarantined_at_ms.map(utc),
        action: item.action.clone(),
        source: item.source.clone(),
        rule: item.rule.clone(),
        officer: item.officer.clone(),
        case_id: item.case_id.clone(),
        tags: item.tags.clone(),
    }
}

/// One manifest record as CSV fields, in [`CSV_COLUMNS`] order.
pub fn csv_fields(m: &ManifestItem) -> Vec<String> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let num = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    vec![
        m.file.clone(),
        m.item.to_string(),
        m.original_name.clone(),
        m.original_path.clone(),
        m.sha256.clone(),
        m.size.to_string(),
        m.kind.clone(),
        opt(&m.capture_time),
        num(m.gps_lat),
        num(m.gps_lon),
        m.first_seen.clone(),
        opt(&m.quarantined_at),
        m.action.clone(),
        m.source.clone(),
        m.rule.clone(),
        opt(&m.officer),
        opt(&m.case_id),
        m.tags.join("; "),
    ]
}

fn csv_line(fields: &[String]) -> String {
    let quoted: Vec<String> = fields.iter().map(|f| format!("\"{}\"", f.replace('"', "\"\""))).collect();
    quoted.join(",") + "\r\n"
}

/// `manifest.csv` for a manifest (RFC 4180: every field quoted, CRLF line ends).
pub fn manifest_csv(m: &Manifest) -> String {
    let header: Vec<String> = CSV_COLUMNS.iter().map(|c| c.to_string()).collect();
    let mut out = csv_line(&header);
    for item in &m.items {
        out.push_str(&csv_line(&csv_fields(item)));
    }
    out
}

/// Parse RFC 4180 CSV (quoted fields may hold commas, quotes and line breaks).
pub fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut any = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            '"' => return Err(format!("line {}: stray quote inside a field", rows.len() + 1)),
            ',' => row.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                any = false;
                continue;
            }
            _ => field.push(c),
        }
        any = true;
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    if any || !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

/// What goes into a package.
pub struct PackageInput<'a> {
    pub case_id: &'a str,
    pub officer: Option<&'a str>,
    /// The items, each with the path of its store file.
    pub items: Vec<(&'a Item, PathBuf)>,
    /// Every event of those items, as stored.
    pub events: &'a [RawEvent],
    pub now_ms: i64,
}

/// How a package is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageFormat {
    Dir,
    Zip,
}

impl PackageFormat {
    /// `.zip` (any case) means a zip archive; anything else a directory.
    pub fn for_path(path: &Path) -> PackageFormat {
        match path.extension() {
            Some(e) if e.eq_ignore_ascii_case("zip") => PackageFormat::Zip,
            _ => PackageFormat::Dir,
        }
    }
}

/// A package written under a temporary name beside its destination, not yet published.
#[derive(Debug)]
pub struct Staged {
    pub tmp: PathBuf,
    pub dest: PathBuf,
    pub format: PackageFormat,
    pub digest: String,
    pub files: usize,
    pub bytes: u64,
}

impl Staged {
    /// Rename into place (replacing only an empty file or directory at the destination).
    pub fn publish(&self) -> Result<(), PackageError> {
        match std::fs::symlink_metadata(&self.dest) {
            Ok(m) if m.is_dir() => std::fs::remove_dir(&self.dest).map_err(io_at(&self.dest))?,
            Ok(m) if m.is_file() && m.len() == 0 => std::fs::remove_file(&self.dest).map_err(io_at(&self.dest))?,
            Ok(_) => {
                return Err(PackageError::Invalid {
                    path: self.dest.clone(),
                    message: "appeared while the package was written; not replaced".into(),
                })
            }
            Err(_) => {}
        }
        fsops::rename_noreplace(&self.tmp, &self.dest).map_err(io_at(&self.dest))?;
        fsops::fsync_parent(&self.dest).map_err(io_at(&self.dest))
    }

    /// Remove the temporary package (after a failure).
    pub fn discard(&self) {
        let _ = match self.format {
            PackageFormat::Dir => std::fs::remove_dir_all(&self.tmp),
            PackageFormat::Zip => std::fs::remove_file(&self.tmp),
        };
    }
}

/// Where a package is written entry by entry.
trait Sink {
    fn add_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<(), PackageError>;
    /// Copy a store file in, hashing as it goes; returns (sha256, size).
    fn add_file(&mut self, name: &str, src: &mut File) -> Result<(String, u64), PackageError>;
    fn finish(self: Box<Self>) -> Result<(), PackageError>;
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
        f.write_all(bytes).map_err(io_at(&path))?;
        f.sync_all().map_err(io_at(&path))
    }

    fn add_file(&mut self, name: &str, src: &mut File) -> Result<(String, u64), PackageError> {
        let (mut f, path) = self.create(name)?;
        let r = copy_hashing(src, &mut f, &path)?;
        f.sync_all().map_err(io_at(&path))?;
        Ok(r)
    }

    fn finish(self: Box<Self>) -> Result<(), PackageError> {
        fsops::fsync_dir(&self.root.join(FILES_DIR)).map_err(io_at(&self.root))?;
        fsops::fsync_dir(&self.root).map_err(io_at(&self.root))
    }
}

struct ZipSink {
    path: PathBuf,
    zip: zip::ZipWriter<File>,
    /// Entry time: when the package was built (UTC; zip has no zone), not 1980.
    mtime: zip::DateTime,
}

impl ZipSink {
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

    fn zip_err(&self, e: zip::result::ZipError) -> PackageError {
        PackageError::Zip { path: self.path.clone(), message: e.to_string() }
    }
}

impl Sink for ZipSink {
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

    fn finish(self: Box<Self>) -> Result<(), PackageError> {
        let path = self.path.clone();
        let f = self.zip.finish().map_err(|e| PackageError::Zip { path: path.clone(), message: e.to_string() })?;
        f.sync_all().map_err(io_at(&path))
    }
}

fn readme(case_id: &str, digest: &str) -> String {
    format!(
        "fotovakt case package ({FORMAT}), case {case_id}\n\n\
         package.sha256 = {digest}\n\n\
         Check it offline with:  fotovakt verify-package <this folder or .zip>\n\n\
         What that checks: every file's SHA-256 and size against manifest.json; manifest.csv\n\
         against manifest.json; every custody event's hash recomputed from its fields\n\
         ({HASH_RULE}); the prev_hash links between events with consecutive seq; that each\n\
         file's SHA-256 is the one its intake event recorded; and package.sha256.\n\n\
         The phone's ledger records package.sha256 in an `export` event for every item: compare\n\
         it with `fotovakt show ITEM` on the phone to know this is the package that left it.\n"
    )
}

/// Write a package for `input` under a temporary name beside `dest` (`.fotovakt-partial-…`):
/// a crash leaves only a name that says it is incomplete. [`Staged::publish`] renames it.
/// Each store file is hashed as it is copied and must match its ledger SHA-256.
pub fn stage(dest: &Path, input: &PackageInput<'_>) -> Result<Staged, PackageError> {
    let format = PackageFormat::for_path(dest);
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(PackageError::Invalid { path: parent, message: "folder does not exist".into() });
    }
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "package".into());
    let tmp = parent.join(format!(".fotovakt-partial-{}-{name}", std::process::id()));
    let mut sink: Box<dyn Sink> = match format {
        PackageFormat::Dir => {
            std::fs::DirBuilder::new().mode(0o700).create(&tmp).map_err(io_at(&tmp))?;
            Box::new(DirSink { root: tmp.clone() })
        }
        PackageFormat::Zip => {
            let f =
                std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(io_at(&tmp))?;
            Box::new(ZipSink {
                path: tmp.clone(),
                zip: zip::ZipWriter::new(f),
                mtime: ZipSink::entry_time(input.now_ms),
            })
        }
    };
    let staged =
        Staged { tmp: tmp.clone(), dest: dest.to_path_buf(), format, digest: String::new(), files: 0, bytes: 0 };
    match write_all(&mut *sink, input).and_then(|(digest, files, bytes)| sink.finish().map(|_| (digest, files, bytes)))
    {
        Ok((digest, files, bytes)) => Ok(Staged { digest, files, bytes, ..staged }),
        Err(e) => {
            staged.discard();
            Err(e)
        }
    }
}

fn write_all(sink: &mut dyn Sink, input: &PackageInput<'_>) -> Result<(String, usize, u64), PackageError> {
    let mut records = Vec::new();
    let mut bytes = 0u64;
    for (item, store_path) in &input.items {
        let record = manifest_item(item);
        let (mut src, _) = fsops::open_regular(store_path)
            .map_err(|e| PackageError::Invalid { path: store_path.clone(), message: e.to_string() })?;
        let (sha, size) = sink.add_file(&record.file, &mut src)?;
        if sha != item.sha256 || size != item.size {
            return Err(PackageError::Invalid {
                path: store_path.clone(),
                message: format!(
                    "store file of item {} does not match its ledger SHA-256/size; run `fotovakt verify`",
                    item.id
                ),
            });
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
            })
            .collect(),
    };
    let json_err =
        |e: serde_json::Error| PackageError::Invalid { path: PathBuf::from(MANIFEST_JSON), message: e.to_string() };
    let manifest_json = serde_json::to_vec_pretty(&manifest).map_err(json_err)?;
    let csv = manifest_csv(&manifest);
    let custody = serde_json::to_vec_pretty(&log).map_err(json_err)?;
    let digest = package_digest(&manifest_json, csv.as_bytes(), &custody);
    sink.add_bytes(MANIFEST_JSON, &manifest_json)?;
    sink.add_bytes(MANIFEST_CSV, csv.as_bytes())?;
    sink.add_bytes(CUSTODY_LOG, &custody)?;
    sink.add_bytes(DIGEST_FILE, format!("{digest}\n").as_bytes())?;
    sink.add_bytes(README_FILE, readme(input.case_id, &digest).as_bytes())?;
    Ok((digest, manifest.items.len(), bytes))
}

/// What `verify-package` found.
#[derive(Debug, Clone, Serialize)]
pub struct PackageReport {
    pub path: PathBuf,
    pub format: PackageFormat,
    pub case_id: Option<String>,
    /// The digest recomputed from the package's text parts.
    pub digest: Option<String>,
    pub files: u64,
    pub events: u64,
    /// prev_hash links checked (between events with consecutive seq).
    pub links_checked: u64,
    /// Places where events of items outside the package sit between two exported events.
    pub gaps: u64,
    pub problems: Vec<String>,
}

/// Read access to a package, directory or zip.
enum Reader {
    Dir(PathBuf),
    Zip(Box<zip::ZipArchive<File>>),
}

impl Reader {
    fn open(path: &Path) -> Result<Reader, PackageError> {
        let meta = std::fs::metadata(path).map_err(io_at(path))?;
        if meta.is_dir() {
            return Ok(Reader::Dir(path.to_path_buf()));
        }
        let f = File::open(path).map_err(io_at(path))?;
        let z = zip::ZipArchive::new(f)
            .map_err(|e| PackageError::Zip { path: path.to_path_buf(), message: e.to_string() })?;
        Ok(Reader::Zip(Box::new(z)))
    }

    fn format(&self) -> PackageFormat {
        match self {
            Reader::Dir(_) => PackageFormat::Dir,
            Reader::Zip(_) => PackageFormat::Zip,
        }
    }

    /// Every entry name (files only), `/`-separated and relative.
    fn names(&mut self) -> Result<Vec<String>, String> {
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
            Reader::Zip(z) => {
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
            Reader::Zip(z) => match z.by_name(name) {
                Ok(mut entry) => {
                    f(&mut entry)?;
                    Ok(true)
                }
                Err(zip::result::ZipError::FileNotFound) => Ok(false),
                Err(e) => Err(io::Error::other(e.to_string())),
            },
        }
    }

    fn read_text(&mut self, name: &str) -> io::Result<Option<Vec<u8>>> {
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

    fn hash(&mut self, name: &str) -> io::Result<Option<(String, u64)>> {
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

/// A package entry name this program would write for a file: `files/<name>`, no other
/// folders, no `..`, nothing absolute.
fn safe_file_name(name: &str) -> bool {
    match name.strip_prefix("files/") {
        Some(rest) => !rest.is_empty() && !rest.contains('/') && !rest.starts_with('.') && !rest.contains('\\'),
        None => false,
    }
}

/// Check a package offline (no config, no store): files against the manifest, the CSV against
/// the JSON, every event's hash and the links between consecutive events, each file's SHA-256
/// against its intake event, and the package digest. Problems are listed, not returned as errors;
/// an `Err` means the package could not be opened at all.
pub fn verify_package(path: &Path) -> Result<PackageReport, PackageError> {
    let mut r = Reader::open(path)?;
    if let Reader::Zip(z) = &r {
        if z.is_empty() {
            return Err(PackageError::Invalid { path: path.to_path_buf(), message: "empty archive".into() });
        }
    }
    let mut report = PackageReport {
        path: path.to_path_buf(),
        format: r.format(),
        case_id: None,
        digest: None,
        files: 0,
        events: 0,
        links_checked: 0,
        gaps: 0,
        problems: Vec::new(),
    };
    let p = &mut report.problems;
    let text = |r: &mut Reader, name: &str, p: &mut Vec<String>| match r.read_text(name) {
        Ok(Some(b)) => Some(b),
        Ok(None) => {
            p.push(format!("{name}: missing from the package"));
            None
        }
        Err(e) => {
            p.push(format!("{name}: unreadable: {e}"));
            None
        }
    };
    let manifest_bytes = text(&mut r, MANIFEST_JSON, p);
    let csv_bytes = text(&mut r, MANIFEST_CSV, p);
    let log_bytes = text(&mut r, CUSTODY_LOG, p);
    let digest_bytes = text(&mut r, DIGEST_FILE, p);
    if let (Some(m), Some(c), Some(l)) = (&manifest_bytes, &csv_bytes, &log_bytes) {
        let digest = package_digest(m, c, l);
        match digest_bytes.as_deref().map(|d| String::from_utf8_lossy(d).split_whitespace().next().map(str::to_string))
        {
            Some(Some(recorded)) if recorded.eq_ignore_ascii_case(&digest) => {}
            Some(_) => p.push(format!(
                "{DIGEST_FILE}: does not match {MANIFEST_JSON} + {MANIFEST_CSV} + {CUSTODY_LOG} (one of them was changed)"
            )),
            None => {}
        }
        report.digest = Some(digest);
    }
    let manifest: Option<Manifest> = manifest_bytes.as_deref().and_then(|b| match serde_json::from_slice(b) {
        Ok(m) => Some(m),
        Err(e) => {
            p.push(format!("{MANIFEST_JSON}: not a valid manifest: {e}"));
            None
        }
    });
    let log: Option<CustodyLog> = log_bytes.as_deref().and_then(|b| match serde_json::from_slice(b) {
        Ok(l) => Some(l),
        Err(e) => {
            p.push(format!("{CUSTODY_LOG}: not a valid custody log: {e}"));
            None
        }
    });
    let Some(manifest) = manifest else {
        return Ok(report);
    };
    report.case_id = Some(manifest.case_id.clone());
    if manifest.format != FORMAT {
        p.push(format!("{MANIFEST_JSON}: format {:?}, expected {FORMAT:?}", manifest.format));
    }
    // Files against the manifest.
    let mut listed = HashSet::new();
    for m in &manifest.items {
        if !safe_file_name(&m.file) {
            p.push(format!("{MANIFEST_JSON}: item {}: file name {:?} is not files/<name>", m.item, m.file));
            continue;
        }
        if !listed.insert(m.file.clone()) {
            p.push(format!("{MANIFEST_JSON}: {} is listed more than once", m.file));
            continue;
        }
        if m.case_id.as_deref() != Some(manifest.case_id.as_str()) {
            p.push(format!(
                "{}: case ID {:?} in the manifest record, package is for {:?}",
                m.file, m.case_id, manifest.case_id
            ));
        }
        match r.hash(&m.file) {
            Ok(Some((sha, size))) => {
                report.files += 1;
                if !sha.eq_ignore_ascii_case(&m.sha256) {
                    p.push(format!("{}: SHA-256 differs from the manifest (the file was changed)", m.file));
                } else if size != m.size {
                    p.push(format!("{}: {size} bytes, the manifest says {}", m.file, m.size));
                }
            }
            Ok(None) => p.push(format!("{}: listed in the manifest but missing from the package", m.file)),
            Err(e) => p.push(format!("{}: unreadable (damaged?): {e}", m.file)),
        }
    }
    match r.names() {
        Ok(names) => {
            let known = [MANIFEST_JSON, MANIFEST_CSV, CUSTODY_LOG, DIGEST_FILE, README_FILE];
            for n in names {
                if !known.contains(&n.as_str()) && !listed.contains(&n) {
                    p.push(format!("{n}: in the package but not in the manifest"));
                }
            }
        }
        Err(e) => p.push(format!("cannot list the package: {e}")),
    }
    // The CSV against the JSON.
    if let Some(csv) = csv_bytes {
        match parse_csv(&String::from_utf8_lossy(&csv)) {
            Err(e) => p.push(format!("{MANIFEST_CSV}: {e}")),
            Ok(rows) => {
                let header: Vec<&str> =
                    rows.first().map(|h| h.iter().map(String::as_str).collect()).unwrap_or_default();
                if header != CSV_COLUMNS {
                    p.push(format!(
                        "{MANIFEST_CSV}: header differs from the expected columns {}",
                        CSV_COLUMNS.join(",")
                    ));
                }
                let body = rows.get(1..).unwrap_or_default();
                if body.len() != manifest.items.len() {
                    p.push(format!(
                        "{MANIFEST_CSV}: {} rows, {MANIFEST_JSON} has {} items",
                        body.len(),
                        manifest.items.len()
                    ));
                }
                for (i, (row, m)) in body.iter().zip(&manifest.items).enumerate() {
                    let want = csv_fields(m);
                    for (col, (got, want)) in CSV_COLUMNS.iter().zip(row.iter().zip(&want)) {
                        if got != want {
                            p.push(format!(
                                "{MANIFEST_CSV}: row {} ({}): {col} is {got:?}, {MANIFEST_JSON} says {want:?}",
                                i + 1,
                                m.file
                            ));
                        }
                    }
                    if row.len() != want.len() {
                        p.push(format!(
                            "{MANIFEST_CSV}: row {} has {} fields, expected {}",
                            i + 1,
                            row.len(),
                            want.len()
                        ));
                    }
                }
            }
        }
    }
    let Some(log) = log else {
        return Ok(report);
    };
    if log.format != FORMAT {
        p.push(format!("{CUSTODY_LOG}: format {:?}, expected {FORMAT:?}", log.format));
    }
    // Every event's hash, and the links between consecutive events.
    let items: HashMap<i64, &ManifestItem> = manifest.items.iter().map(|m| (m.item, m)).collect();
    let mut by_item: BTreeMap<i64, Vec<&LogEvent>> = BTreeMap::new();
    let mut prev: Option<&LogEvent> = None;
    for e in &log.events {
        report.events += 1;
        let what = format!("{CUSTODY_LOG}: event {} ({})", e.seq, e.kind);
        if ledger::event_hash(e.seq, e.at_ms, &e.kind, e.item, &e.data, &e.prev_hash) != e.hash {
            p.push(format!("{what}: contents do not match its hash (the event was edited)"));
        }
        if e.at != utc(e.at_ms) {
            p.push(format!("{what}: at {:?} differs from at_ms {}", e.at, e.at_ms));
        }
        if serde_json::from_str::<serde_json::Value>(&e.data).is_err() {
            p.push(format!("{what}: data is not JSON"));
        }
        match prev {
            Some(q) if e.seq <= q.seq => {
                p.push(format!("{what}: out of order (after event {})", q.seq));
            }
            Some(q) if e.seq == q.seq + 1 => {
                report.links_checked += 1;
                if e.prev_hash != q.hash {
                    p.push(format!(
                        "{what}: prev_hash does not link to event {} (an event was changed or removed)",
                        q.seq
                    ));
                }
            }
            Some(_) => report.gaps += 1,
            None if e.seq == 1 => {
                report.links_checked += 1;
                if e.prev_hash != ledger::GENESIS {
                    p.push(format!("{what}: the first event of the ledger must follow the genesis hash"));
                }
            }
            None => {}
        }
        prev = Some(e);
        match e.item.filter(|i| items.contains_key(i)) {
            Some(i) => by_item.entry(i).or_default().push(e),
            None => p.push(format!("{what}: belongs to item {:?}, which is not in the manifest", e.item)),
        }
    }
    // Each file bound to its intake (or adoption) event and its decision.
    for m in &manifest.items {
        let Some(events) = by_item.get(&m.item) else {
            p.push(format!("{}: no custody events for item {}", m.file, m.item));
            continue;
        };
        let data = |e: &LogEvent| serde_json::from_str::<serde_json::Value>(&e.data).unwrap_or_default();
        match events.iter().find(|e| e.kind == "intake" || e.kind == "adopted") {
            None => p.push(format!("{}: no intake event for item {}", m.file, m.item)),
            Some(e) => {
                let d = data(e);
                if d["sha256"].as_str() != Some(m.sha256.as_str()) {
                    p.push(format!(
                        "{}: SHA-256 in the manifest is not the one its {} event (seq {}) recorded",
                        m.file, e.kind, e.seq
                    ));
                }
                if d["size"].as_u64() != Some(m.size) {
                    p.push(format!(
                        "{}: size in the manifest differs from its {} event (seq {})",
                        m.file, e.kind, e.seq
                    ));
                }
                if e.kind == "intake" && d["path"].as_str() != Some(m.original_path.as_str()) {
                    p.push(format!(
                        "{}: original path in the manifest differs from its intake event (seq {})",
                        m.file, e.seq
                    ));
                }
            }
        }
        // The latest decision: a photo first kept and then tagged was decided twice.
        if let Some(e) = events.iter().rev().find(|e| e.kind == "decided") {
            let d = data(e);
            for (field, value) in [("action", &m.action), ("source", &m.source), ("rule", &m.rule)] {
                if d[field].as_str() != Some(value.as_str()) {
                    p.push(format!(
                        "{}: {field} in the manifest differs from its decided event (seq {})",
                        m.file, e.seq
                    ));
                }
            }
        }
        let state = events.iter().rev().find_map(|e| data(e)["state"].as_str().map(str::to_string));
        if state.as_deref() != Some("quarantined") {
            p.push(format!("{}: its custody log does not end in the store (last state {:?})", m.file, state));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips_quotes_commas_and_line_breaks() {
        let rows = vec![vec!["a,b".to_string(), "say \"hi\"".into(), "two\r\nlines".into(), String::new()]];
        let text: String = rows.iter().map(|r| csv_line(r)).collect();
        assert_eq!(parse_csv(&text).expect("parse"), rows);
        assert!(parse_csv("\"open").is_err());
    }

    #[test]
    fn only_plain_names_under_files_are_accepted() {
        assert!(safe_file_name("files/12-abcdef01.jpg"));
        for bad in ["files/../x", "../files/a", "/etc/passwd", "files/a/b", "files/", "manifest.json", "files/.x"] {
            assert!(!safe_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn digest_frames_each_part() {
        let a = package_digest(b"ab", b"c", b"");
        let b = package_digest(b"a", b"bc", b"");
        assert_ne!(a, b, "moving bytes between parts changes the digest");
    }
}
