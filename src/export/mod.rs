//! Case packages: what leaves the phone for the case file, and how a receiver checks it offline.
//!
//! A package is a directory, or a `.zip` with the same entries:
//!
//! ```text
//! manifest.json    the case, who exported it and when, and one record per file
//! manifest.csv     the same records as CSV (for a spreadsheet)
//! custody.json     every ledger event of those items, with seq, at, kind, data, prev_hash, hash
//! package.sha256   SHA-256 over manifest.json, manifest.csv and custody.json (see [`package_digest`])
//! package.sig      the device key's signature over that digest, with its public key (and, on
//!                  Android, the Keystore's attestation chain)
//! README.txt       how to check the package
//! files/<item>-<sha8>.<ext>   the originals, byte for byte from the store
//! ```
//!
//! Exported with recipients (`export --to`), the `.zip` is encrypted as it is written, to the
//! receivers' age X25519 keys (`NAME.zip.age`, [`seal`]): no plaintext of it touches the disk.
//!
//! The custody log is a *subset* of the phone's global hash chain: other items' events
//! interleave. Each event carries its `prev_hash` and `hash`, so a receiver recomputes every
//! event's hash from its own fields ([`crate::ledger::event_hash`]) and checks the links
//! between events whose sequence numbers follow each other; across a gap the link belongs
//! to events not in the package. Files are bound to the log by their intake event, which
//! records the SHA-256 taken before anything else read the file. The package digest is
//! recorded in the phone's ledger (`export` events), so the phone attests what left it.
//!
//! The signature binds the digest (and through it every file's SHA-256) to the device key. A
//! package rewritten consistently (files, manifest, log, digest) no longer verifies under its
//! signature; re-signed with another key, it fails `verify-package --trust` with the phone's
//! registered fingerprint. Packages written before signing verify as "unsigned".
//!
//! [`write`] builds packages; [`verify`] checks them, with the ledger's own chain checker
//! ([`crate::ledger::ChainCheck`]).

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ledger::Item;

mod reader;
pub mod seal;
pub mod verify;
pub mod write;

pub use crate::ledger::PackageFormat;
pub use seal::{Identities, Recipients};
pub use verify::{verify_package, verify_package_with, Check, PackageProblem, PackageReport, SignatureStatus};
pub use write::{stage, PackageInput, Staged};

/// The package format written and understood here.
pub const FORMAT: &str = "fotovakt-case-package-v1";
pub const MANIFEST_JSON: &str = "manifest.json";
pub const MANIFEST_CSV: &str = "manifest.csv";
pub const CUSTODY_LOG: &str = "custody.json";
pub const DIGEST_FILE: &str = "package.sha256";
pub const README_FILE: &str = "README.txt";
pub const SIGNATURE_FILE: &str = "package.sig";
/// The format of `package.sig`.
pub const SIGNATURE_FORMAT: &str = "fotovakt-package-signature-v1";
pub const FILES_DIR: &str = "files";

/// Largest manifest or custody log read back (a sanity bound against a hostile package).
pub(crate) const MAX_TEXT_BYTES: u64 = 256 << 20;

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
    /// Reading or writing `path` failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `path` is not a zip archive that can be read, or writing the archive failed.
    #[error("{path}: not a readable zip archive: {source}")]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    /// A store file could not be opened as the regular file it must be.
    #[error("{path}: {source}")]
    StoreFile {
        path: PathBuf,
        #[source]
        source: crate::quarantine::fsops::OpenError,
    },
    /// A store file's bytes are not the ones its ledger row records (`fotovakt verify` says more).
    #[error("{path}: store file of item {item} does not match its ledger SHA-256/size; run `fotovakt verify`")]
    StoreFileChanged { path: PathBuf, item: i64 },
    /// The package's text parts could not be serialised.
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The package could not be written beside its destination or put in place.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    /// `path` is not where a package can be written or read: `about` says why.
    #[error("{path}: {about}")]
    Unusable { path: PathBuf, about: &'static str },
    /// The device key did not sign the package (nothing was published).
    #[error("signing the package: {0}")]
    Sign(#[from] crate::signing::SignError),
    /// Encrypting to the recipients, or opening an encrypted package, failed.
    #[error("{path}: {reason}")]
    Sealed { path: PathBuf, reason: String },
}

fn io_at(path: &std::path::Path) -> impl Fn(io::Error) -> PackageError + '_ {
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

/// `package.sig`: the device key's signature over the package digest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PackageSignature {
    pub format: String,
    /// The package digest it signs (what `package.sha256` holds), as the signed text
    /// [`crate::signing::package_message`] spells it.
    pub digest: String,
    #[serde(flatten)]
    pub signed: crate::signing::Signed,
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
    /// The event's JSON text exactly as hashed (v1) or as `data_sha256` covers (v2); `null`
    /// if it was pruned (a case item's events never are).
    pub data: Option<String>,
    pub prev_hash: String,
    pub hash: String,
    /// The hash version (1 when absent): see [`HASH_RULE`].
    #[serde(default = "hash_v1", skip_serializing_if = "is_hash_v1")]
    pub v: u8,
    /// v2: the SHA-256 of `data`, lowercase hex, which the hash covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sha256: Option<String>,
}

fn hash_v1() -> u8 {
    crate::ledger::HASH_V1
}

fn is_hash_v1(v: &u8) -> bool {
    *v == crate::ledger::HASH_V1
}

pub(crate) const HASH_RULE: &str =
    "v1 (no \"v\"): sha256(\"fotovakt-event-v1\\n\" + seq + \"\\n\" + at_ms + \"\\n\" + kind + \"\\n\" + (item or \"\") \
     + \"\\n\" + data + \"\\n\" + prev_hash); v2 (\"v\": 2): sha256(\"fotovakt-event-v2\\n\" + seq + \"\\n\" + at_ms + \
     \"\\n\" + kind + \"\\n\" + (item or \"\") + \"\\n\" + data_sha256 + \"\\n\" + prev_hash), where data_sha256 = \
     sha256(data) and must match data; lowercase hex; prev_hash of event 1 is 64 zeros";

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
    // The row's hash is not trusted to be 64 hex digits (a tampered ledger): no slicing that
    // could panic; a wrong hash is caught when the store file is hashed and compared.
    let sha8: String = item.sha256.chars().filter(char::is_ascii_hexdigit).take(8).collect();
    format!("{FILES_DIR}/{}-{sha8}.{ext}", item.id)
}

pub(crate) fn manifest_item(item: &Item) -> ManifestItem {
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
        source: item.source.as_str().to_string(),
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

pub(crate) fn csv_line(fields: &[String]) -> String {
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
        assert!(verify::safe_file_name("files/12-abcdef01.jpg"));
        for bad in ["files/../x", "../files/a", "/etc/passwd", "files/a/b", "files/", "manifest.json", "files/.x"] {
            assert!(!verify::safe_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn digest_frames_each_part() {
        let a = package_digest(b"ab", b"c", b"");
        let b = package_digest(b"a", b"bc", b"");
        assert_ne!(a, b, "moving bytes between parts changes the digest");
    }
}
