//! Checking a case package offline: what `verify-package` does, with no config and no store.
//!
//! The custody log is checked by the ledger's own chain checker over a subset of the chain
//! ([`Coverage::Subset`]); everything else (files, manifest, CSV, digest, how each file is bound
//! to its events) is checked here. Problems are typed ([`PackageProblem`]); their `Display` is
//! the sentence printed after `PROBLEM:`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::reader::Reader;
use super::{
    csv_fields, package_digest, parse_csv, utc, CustodyLog, Identities, LogEvent, Manifest, ManifestItem, PackageError,
    PackageSignature, CSV_COLUMNS, CUSTODY_LOG, DIGEST_FILE, FORMAT, MANIFEST_CSV, MANIFEST_JSON, README_FILE,
    SIGNATURE_FILE, SIGNATURE_FORMAT,
};
use crate::ledger::{ChainCheck, Coverage, Event, Head, ItemState, PackageFormat, Problem, Problems, RawEvent};
use crate::signing::{package_message, SignatureProblem, TrustList};

/// What a receiver asks of a package beyond its being whole: whose signature it must carry,
/// and the keys to open it with if it is encrypted.
#[derive(Default, Clone, Copy)]
pub struct Check<'a> {
    /// Device keys one of which must have signed the package; `None` (or an empty list):
    /// a signature is checked and its signer reported, but none is required.
    pub trust: Option<&'a TrustList>,
    /// The receiver's identities, for a package encrypted to it.
    pub identities: Option<&'a Identities>,
}

/// Who signed a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SignatureStatus {
    /// No `package.sig` (a package from before signing, or one whose signature was removed).
    Unsigned,
    /// Signed, and the signature stands over this package's digest.
    Valid {
        fingerprint: String,
        algorithm: crate::signing::Algorithm,
        /// Certificates in the key's attestation chain (Android Keystore keys).
        attestation_certificates: usize,
        /// Whether a trusted key signed it; `None` when no trust list was given.
        trusted: Option<bool>,
    },
    /// There is a `package.sig`, but it does not stand (the problems say why).
    Invalid { fingerprint: Option<String> },
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
    /// Who signed it.
    pub signature: SignatureStatus,
    /// The package was encrypted to its receiver (and opened with its identity).
    pub encrypted: bool,
    pub problems: Problems<PackageProblem>,
}

/// One thing wrong inside a package. `Display` is the sentence `verify-package` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageProblem {
    /// A text part (`manifest.json`, …) is not in the package.
    PartMissing { part: &'static str },
    /// A text part could not be read.
    PartUnreadable { part: &'static str, reason: String },
    /// `package.sha256` is not the digest of the three text parts.
    DigestMismatch,
    /// `manifest.json` or `custody.json` does not parse as one.
    PartInvalid { part: &'static str, reason: String },
    /// A text part names another package format.
    WrongFormat { part: &'static str, found: String },
    /// A manifest record's file is not `files/<name>`.
    UnsafeFileName { item: i64, file: String },
    /// A file listed twice in the manifest.
    ListedTwice { file: String },
    /// A manifest record of another case than the package's.
    WrongCase { file: String, record: Option<String>, package: String },
    /// A file's SHA-256 is not the manifest's.
    FileChanged { file: String },
    /// A file's size is not the manifest's.
    FileSize { file: String, size: u64, manifest: u64 },
    /// A file the manifest lists is not in the package.
    FileMissing { file: String },
    /// A file could not be read.
    FileUnreadable { file: String, reason: String },
    /// An entry the manifest does not list.
    Unlisted { name: String },
    /// The package's entries could not be listed.
    CannotList { reason: String },
    /// `manifest.csv` is not CSV.
    CsvUnparsable { reason: String },
    /// `manifest.csv` has other columns.
    CsvHeader,
    /// `manifest.csv` has another number of rows than the manifest has items.
    CsvRowCount { rows: usize, items: usize },
    /// A CSV field that differs from the manifest.
    CsvField { row: usize, file: String, column: &'static str, got: String, want: String },
    /// A CSV row with another number of fields.
    CsvFieldCount { row: usize, fields: usize, expected: usize },
    /// The custody log's chain (hashes, links, order, event contents).
    Custody(Problem),
    /// An event's `at` is not its `at_ms`.
    AtDiffers { seq: i64, kind: String, at: String, at_ms: i64 },
    /// An event of an item that is not in the manifest.
    ForeignEvent { seq: i64, kind: String, item: Option<i64> },
    /// A file whose item has no events in the log.
    NoEvents { file: String, item: i64 },
    /// A file whose item has no intake (or adoption) event.
    NoIntake { file: String, item: i64 },
    /// The manifest's SHA-256 is not the one the intake event recorded.
    IntakeHash { file: String, kind: &'static str, seq: i64 },
    /// The manifest's size is not the one the intake event recorded.
    IntakeSize { file: String, kind: &'static str, seq: i64 },
    /// The manifest's original path is not the one the intake event recorded.
    IntakePath { file: String, seq: i64 },
    /// The manifest's action, source or rule is not the latest decision's.
    DecisionDiffers { file: String, field: &'static str, seq: i64 },
    /// The item's events do not end with it in the store.
    NotInStore { file: String, state: Option<ItemState> },
    /// `package.sig` does not read as a package signature.
    SignatureUnreadable { reason: String },
    /// `package.sig` signs another digest than this package's: its contents were changed.
    SignatureForOtherDigest { signed: String },
    /// `package.sig`'s signature does not stand.
    BadSignature(SignatureProblem),
    /// A trusted signer was asked for (`--trust`), and the package is not signed.
    Unsigned,
    /// Signed by a key that is not among the trusted ones.
    UntrustedSigner { fingerprint: String },
}

impl fmt::Display for PackageProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use PackageProblem as P;
        match self {
            P::PartMissing { part } => write!(f, "{part}: missing from the package"),
            P::PartUnreadable { part, reason } => write!(f, "{part}: unreadable: {reason}"),
            P::DigestMismatch => write!(
                f,
                "{DIGEST_FILE}: does not match {MANIFEST_JSON} + {MANIFEST_CSV} + {CUSTODY_LOG} (one of them was changed)"
            ),
            P::PartInvalid { part, reason } if *part == MANIFEST_JSON => {
                write!(f, "{part}: not a valid manifest: {reason}")
            }
            P::PartInvalid { part, reason } => write!(f, "{part}: not a valid custody log: {reason}"),
            P::WrongFormat { part, found } => write!(f, "{part}: format {found:?}, expected {FORMAT:?}"),
            P::UnsafeFileName { item, file } => {
                write!(f, "{MANIFEST_JSON}: item {item}: file name {file:?} is not files/<name>")
            }
            P::ListedTwice { file } => write!(f, "{MANIFEST_JSON}: {file} is listed more than once"),
            P::WrongCase { file, record, package } => {
                write!(f, "{file}: case ID {record:?} in the manifest record, package is for {package:?}")
            }
            P::FileChanged { file } => write!(f, "{file}: SHA-256 differs from the manifest (the file was changed)"),
            P::FileSize { file, size, manifest } => write!(f, "{file}: {size} bytes, the manifest says {manifest}"),
            P::FileMissing { file } => write!(f, "{file}: listed in the manifest but missing from the package"),
            P::FileUnreadable { file, reason } => write!(f, "{file}: unreadable (damaged?): {reason}"),
            P::Unlisted { name } => write!(f, "{name}: in the package but not in the manifest"),
            P::CannotList { reason } => write!(f, "cannot list the package: {reason}"),
            P::CsvUnparsable { reason } => write!(f, "{MANIFEST_CSV}: {reason}"),
            P::CsvHeader => {
                write!(f, "{MANIFEST_CSV}: header differs from the expected columns {}", CSV_COLUMNS.join(","))
            }
            P::CsvRowCount { rows, items } => write!(f, "{MANIFEST_CSV}: {rows} rows, {MANIFEST_JSON} has {items} items"),
            P::CsvField { row, file, column, got, want } => {
                write!(f, "{MANIFEST_CSV}: row {row} ({file}): {column} is {got:?}, {MANIFEST_JSON} says {want:?}")
            }
            P::CsvFieldCount { row, fields, expected } => {
                write!(f, "{MANIFEST_CSV}: row {row} has {fields} fields, expected {expected}")
            }
            P::Custody(p) => write!(f, "{CUSTODY_LOG}: {p}"),
            P::AtDiffers { seq, kind, at, at_ms } => {
                write!(f, "{CUSTODY_LOG}: event {seq} ({kind}): at {at:?} differs from at_ms {at_ms}")
            }
            P::ForeignEvent { seq, kind, item } => write!(
                f,
                "{CUSTODY_LOG}: event {seq} ({kind}): belongs to item {item:?}, which is not in the manifest"
            ),
            P::NoEvents { file, item } => write!(f, "{file}: no custody events for item {item}"),
            P::NoIntake { file, item } => write!(f, "{file}: no intake event for item {item}"),
            P::IntakeHash { file, kind, seq } => {
                write!(f, "{file}: SHA-256 in the manifest is not the one its {kind} event (seq {seq}) recorded")
            }
            P::IntakeSize { file, kind, seq } => {
                write!(f, "{file}: size in the manifest differs from its {kind} event (seq {seq})")
            }
            P::IntakePath { file, seq } => {
                write!(f, "{file}: original path in the manifest differs from its intake event (seq {seq})")
            }
            P::DecisionDiffers { file, field, seq } => {
                write!(f, "{file}: {field} in the manifest differs from its decided event (seq {seq})")
            }
            P::SignatureUnreadable { reason } => write!(f, "{SIGNATURE_FILE}: unreadable: {reason}"),
            P::SignatureForOtherDigest { signed } => write!(
                f,
                "{SIGNATURE_FILE}: signs package digest {signed}, not this package's (its contents were changed)"
            ),
            P::BadSignature(p) => write!(f, "{SIGNATURE_FILE}: {p}"),
            P::Unsigned => write!(f, "the package is not signed, and a signature by a trusted device key was asked for"),
            P::UntrustedSigner { fingerprint } => {
                write!(f, "{SIGNATURE_FILE}: signed by device key {fingerprint}, which is not among the trusted keys")
            }
            P::NotInStore { file, state } => write!(
                f,
                "{file}: its custody log does not end in the store (last state {})",
                state.map(ItemState::as_str).unwrap_or("none")
            ),
        }
    }
}

/// The text parts of a package, as read.
struct Parts {
    manifest: Option<Vec<u8>>,
    csv: Option<Vec<u8>>,
    log: Option<Vec<u8>>,
    digest: Option<Vec<u8>>,
    signature: Option<Vec<u8>>,
}

/// [`verify_package_with`] asking nothing more: any signature is checked, none is required.
pub fn verify_package(path: &Path) -> Result<PackageReport, PackageError> {
    verify_package_with(path, &Check::default())
}

/// Check a package offline (no config, no store): files against the manifest, the CSV against
/// the JSON, every event's hash and the links between consecutive events, each file's SHA-256
/// against its intake event, the package digest, and the device key's signature over it (by a
/// trusted key, when `check` names any). An encrypted package is opened with `check`'s
/// identities, in place. Problems are listed, not returned as errors; an `Err` means the
/// package could not be opened at all.
pub fn verify_package_with(path: &Path, check: &Check<'_>) -> Result<PackageReport, PackageError> {
    let mut r = Reader::open(path, check.identities)?;
    if let Reader::Zip { archive, .. } = &r {
        if archive.is_empty() {
            return Err(PackageError::Unusable { path: path.to_path_buf(), about: "empty archive" });
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
        signature: SignatureStatus::Unsigned,
        encrypted: r.format() == PackageFormat::Age,
        problems: Problems::default(),
    };
    let parts = read_parts(&mut r, &mut report.problems);
    report.digest = check_digest(&parts, &mut report.problems);
    report.signature = check_signature(&parts, report.digest.as_deref(), check.trust, &mut report.problems);
    let manifest: Option<Manifest> = parse_part(parts.manifest.as_deref(), MANIFEST_JSON, &mut report.problems);
    let log: Option<CustodyLog> = parse_part(parts.log.as_deref(), CUSTODY_LOG, &mut report.problems);
    let Some(manifest) = manifest else {
        return Ok(report);
    };
    report.case_id = Some(manifest.case_id.clone());
    if manifest.format != FORMAT {
        report.problems.push(PackageProblem::WrongFormat { part: MANIFEST_JSON, found: manifest.format.clone() });
    }
    report.files = check_files(&mut r, &manifest, &mut report.problems);
    if let Some(csv) = &parts.csv {
        check_csv(csv, &manifest, &mut report.problems);
    }
    let Some(log) = log else {
        return Ok(report);
    };
    if log.format != FORMAT {
        report.problems.push(PackageProblem::WrongFormat { part: CUSTODY_LOG, found: log.format.clone() });
    }
    check_custody(&log, &manifest, &mut report);
    Ok(report)
}

fn read_parts(r: &mut Reader, p: &mut Problems<PackageProblem>) -> Parts {
    let mut text = |part: &'static str| match r.read_text(part) {
        Ok(Some(b)) => Some(b),
        Ok(None) => {
            p.push(PackageProblem::PartMissing { part });
            None
        }
        Err(e) => {
            p.push(PackageProblem::PartUnreadable { part, reason: e.to_string() });
            None
        }
    };
    let parts = Parts {
        manifest: text(MANIFEST_JSON),
        csv: text(MANIFEST_CSV),
        log: text(CUSTODY_LOG),
        digest: text(DIGEST_FILE),
        signature: None,
    };
    // Optional: packages from before signing have none.
    let signature = match r.read_text(SIGNATURE_FILE) {
        Ok(b) => b,
        Err(e) => {
            p.push(PackageProblem::SignatureUnreadable { reason: e.to_string() });
            None
        }
    };
    Parts { signature, ..parts }
}

/// The signature in `package.sig` over the recomputed `digest`, and whether a trusted key made it.
fn check_signature(
    parts: &Parts,
    digest: Option<&str>,
    trust: Option<&TrustList>,
    p: &mut Problems<PackageProblem>,
) -> SignatureStatus {
    let trust = trust.filter(|t| !t.is_empty());
    let Some(bytes) = &parts.signature else {
        if trust.is_some() {
            p.push(PackageProblem::Unsigned);
        }
        return SignatureStatus::Unsigned;
    };
    let sig: PackageSignature = match serde_json::from_slice(bytes) {
        Ok(s) => s,
        Err(e) => {
            p.push(PackageProblem::SignatureUnreadable { reason: e.to_string() });
            return SignatureStatus::Invalid { fingerprint: None };
        }
    };
    let invalid = SignatureStatus::Invalid { fingerprint: Some(sig.signed.fingerprint.clone()) };
    if sig.format != SIGNATURE_FORMAT {
        p.push(PackageProblem::SignatureUnreadable {
            reason: format!("format {:?}, expected {SIGNATURE_FORMAT:?}", sig.format),
        });
        return invalid;
    }
    // Without the three text parts there is no digest to hold the signature against (their
    // absence is reported already).
    let Some(digest) = digest else { return invalid };
    if !sig.digest.eq_ignore_ascii_case(digest) {
        p.push(PackageProblem::SignatureForOtherDigest { signed: sig.digest.clone() });
        return invalid;
    }
    let key = match sig.signed.check(&package_message(digest)) {
        Ok(key) => key,
        Err(e) => {
            p.push(PackageProblem::BadSignature(e));
            return invalid;
        }
    };
    let trusted = trust.map(|t| t.trusts(&key.fingerprint()));
    if trusted == Some(false) {
        p.push(PackageProblem::UntrustedSigner { fingerprint: key.fingerprint() });
    }
    SignatureStatus::Valid {
        fingerprint: key.fingerprint(),
        algorithm: key.algorithm(),
        attestation_certificates: sig.signed.attestation.len(),
        trusted,
    }
}

/// The digest recomputed from the three text parts, compared with `package.sha256`.
fn check_digest(parts: &Parts, p: &mut Problems<PackageProblem>) -> Option<String> {
    let (Some(m), Some(c), Some(l)) = (&parts.manifest, &parts.csv, &parts.log) else {
        return None;
    };
    let digest = package_digest(m, c, l);
    let recorded =
        parts.digest.as_deref().map(|d| String::from_utf8_lossy(d).split_whitespace().next().map(str::to_string));
    match recorded {
        Some(Some(recorded)) if recorded.eq_ignore_ascii_case(&digest) => {}
        Some(_) => p.push(PackageProblem::DigestMismatch),
        None => {}
    }
    Some(digest)
}

fn parse_part<T: serde::de::DeserializeOwned>(
    bytes: Option<&[u8]>,
    part: &'static str,
    p: &mut Problems<PackageProblem>,
) -> Option<T> {
    match serde_json::from_slice(bytes?) {
        Ok(v) => Some(v),
        Err(e) => {
            p.push(PackageProblem::PartInvalid { part, reason: e.to_string() });
            None
        }
    }
}

/// Every listed file re-hashed against the manifest, and nothing unlisted; returns the files read.
fn check_files(r: &mut Reader, manifest: &Manifest, p: &mut Problems<PackageProblem>) -> u64 {
    let mut files = 0;
    let mut listed = HashSet::new();
    for m in &manifest.items {
        if !safe_file_name(&m.file) {
            p.push(PackageProblem::UnsafeFileName { item: m.item, file: m.file.clone() });
            continue;
        }
        if !listed.insert(m.file.clone()) {
            p.push(PackageProblem::ListedTwice { file: m.file.clone() });
            continue;
        }
        if m.case_id.as_deref() != Some(manifest.case_id.as_str()) {
            p.push(PackageProblem::WrongCase {
                file: m.file.clone(),
                record: m.case_id.clone(),
                package: manifest.case_id.clone(),
            });
        }
        match r.hash(&m.file) {
            Ok(Some((sha, size))) => {
                files += 1;
                if !sha.eq_ignore_ascii_case(&m.sha256) {
                    p.push(PackageProblem::FileChanged { file: m.file.clone() });
                } else if size != m.size {
                    p.push(PackageProblem::FileSize { file: m.file.clone(), size, manifest: m.size });
                }
            }
            Ok(None) => p.push(PackageProblem::FileMissing { file: m.file.clone() }),
            Err(e) => p.push(PackageProblem::FileUnreadable { file: m.file.clone(), reason: e.to_string() }),
        }
    }
    match r.names() {
        Ok(names) => {
            let known = [MANIFEST_JSON, MANIFEST_CSV, CUSTODY_LOG, DIGEST_FILE, SIGNATURE_FILE, README_FILE];
            for name in names {
                if !known.contains(&name.as_str()) && !listed.contains(&name) {
                    p.push(PackageProblem::Unlisted { name });
                }
            }
        }
        Err(reason) => p.push(PackageProblem::CannotList { reason }),
    }
    files
}

/// `manifest.csv` against `manifest.json`, field by field.
fn check_csv(csv: &[u8], manifest: &Manifest, p: &mut Problems<PackageProblem>) {
    let rows = match parse_csv(&String::from_utf8_lossy(csv)) {
        Err(reason) => return p.push(PackageProblem::CsvUnparsable { reason }),
        Ok(rows) => rows,
    };
    let header: Vec<&str> = rows.first().map(|h| h.iter().map(String::as_str).collect()).unwrap_or_default();
    if header != CSV_COLUMNS {
        p.push(PackageProblem::CsvHeader);
    }
    let body = rows.get(1..).unwrap_or_default();
    if body.len() != manifest.items.len() {
        p.push(PackageProblem::CsvRowCount { rows: body.len(), items: manifest.items.len() });
    }
    for (i, (row, m)) in body.iter().zip(&manifest.items).enumerate() {
        let want = csv_fields(m);
        for (column, (got, want)) in CSV_COLUMNS.iter().zip(row.iter().zip(&want)) {
            if got != want {
                p.push(PackageProblem::CsvField {
                    row: i + 1,
                    file: m.file.clone(),
                    column,
                    got: got.clone(),
                    want: want.clone(),
                });
            }
        }
        if row.len() != want.len() {
            p.push(PackageProblem::CsvFieldCount { row: i + 1, fields: row.len(), expected: want.len() });
        }
    }
}

/// The custody log through the chain checker, then each file bound to its events.
fn check_custody(log: &CustodyLog, manifest: &Manifest, report: &mut PackageReport) {
    let items: HashMap<i64, &ManifestItem> = manifest.items.iter().map(|m| (m.item, m)).collect();
    let mut check = ChainCheck::new(Coverage::Subset, Head::Absent);
    let mut counted: HashSet<i64> = HashSet::new();
    for e in &log.events {
        check.push(&raw(e));
        if e.at != utc(e.at_ms) {
            let (seq, kind, at, at_ms) = (e.seq, e.kind.clone(), e.at.clone(), e.at_ms);
            report.problems.push(PackageProblem::AtDiffers { seq, kind, at, at_ms });
        }
        match e.item.filter(|i| items.contains_key(i)) {
            Some(i) => {
                counted.insert(i);
            }
            None => {
                report.problems.push(PackageProblem::ForeignEvent { seq: e.seq, kind: e.kind.clone(), item: e.item })
            }
        }
    }
    for m in &manifest.items {
        if !counted.contains(&m.item) {
            report.problems.push(PackageProblem::NoEvents { file: m.file.clone(), item: m.item });
            continue;
        }
        bind_file(m, &check, &mut report.problems);
    }
    let chain = check.finish();
    report.events = chain.events;
    report.links_checked = chain.links_checked;
    report.gaps = chain.gaps;
    report.problems.extend(chain.problems.into_iter().map(PackageProblem::Custody));
}

fn raw(e: &LogEvent) -> RawEvent {
    RawEvent {
        seq: e.seq,
        at_ms: e.at_ms,
        kind: e.kind.clone(),
        item: e.item,
        data: e.data.clone(),
        prev_hash: e.prev_hash.clone(),
        hash: e.hash.clone(),
        v: e.v,
        data_sha256: e.data_sha256.clone(),
    }
}

/// A file bound to its intake (or adoption) event, its latest decision and its last state.
fn bind_file(m: &ManifestItem, check: &ChainCheck, p: &mut Problems<PackageProblem>) {
    let file = || m.file.clone();
    let history = check.history(m.item);
    match history.and_then(|h| h.origin.as_ref()) {
        None => p.push(PackageProblem::NoIntake { file: file(), item: m.item }),
        Some((seq, e)) => {
            let seq = *seq;
            let (sha256, size, path) = match e {
                Event::Intake { sha256, size, path, .. } => (sha256, *size, Some(path)),
                Event::Adopted { sha256, size, .. } => (sha256, *size, None),
                _ => unreachable!("an origin is an intake or adopted event"),
            };
            if *sha256 != m.sha256 {
                p.push(PackageProblem::IntakeHash { file: file(), kind: e.kind(), seq });
            }
            if size != m.size {
                p.push(PackageProblem::IntakeSize { file: file(), kind: e.kind(), seq });
            }
            if path.is_some_and(|path| *path != m.original_path) {
                p.push(PackageProblem::IntakePath { file: file(), seq });
            }
        }
    }
    // The latest decision: a photo first kept and then tagged was decided twice.
    if let Some((seq, Event::Decided { action, source, rule, .. })) = history.and_then(|h| h.decision.as_ref()) {
        for (field, recorded, listed) in
            [("action", action.as_str(), &m.action), ("source", source.as_str(), &m.source), ("rule", rule, &m.rule)]
        {
            if recorded != listed {
                p.push(PackageProblem::DecisionDiffers { file: file(), field, seq: *seq });
            }
        }
    }
    let state = history.and_then(|h| h.state);
    if state != Some(ItemState::Quarantined) {
        p.push(PackageProblem::NotInStore { file: file(), state });
    }
}

/// A package entry name this program would write for a file: `files/<name>`, no other
/// folders, no `..`, nothing absolute.
pub(crate) fn safe_file_name(name: &str) -> bool {
    match name.strip_prefix("files/") {
        Some(rest) => !rest.is_empty() && !rest.contains('/') && !rest.starts_with('.') && !rest.contains('\\'),
        None => false,
    }
}
