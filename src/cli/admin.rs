//! The admins' commands: `stats`, `report`, `verify`, `verify-package`, `ack`, `purge`,
//! `classify`. Each calls the library and formats its answer; a problem found (a chain
//! mismatch, a purge that failed, a file that could not be scored) is printed where it is
//! found and raises the error flag that makes the exit code 1 at the end.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::args::{officer, Cli, StatsFormat};
use super::format::{fit, io_reason, json_with_store, time_text};
use super::set_errored;
use super::setup::{open, open_reader, Model, StoreUse};
use crate::classify::{self, Assessment, ClassifyError};
use crate::config::Config;
use crate::export::SignatureStatus;
use crate::media::{self, InspectError};
use crate::quarantine::fsops::OpenError;
use crate::signing::{Checkpoint, TrustList};
use crate::stats;

/// One line on who signed a package.
fn signature_line(s: &SignatureStatus, trusted_keys: usize) -> String {
    match s {
        SignatureStatus::Unsigned => "signature: none (an unsigned package: who made it cannot be told)".into(),
        SignatureStatus::Invalid { .. } => "signature: does not stand (see the problems above)".into(),
        SignatureStatus::Valid { fingerprint, algorithm, attestation_certificates, trusted } => {
            let attested = match attestation_certificates {
                0 => String::new(),
                n => format!(", with a {n}-certificate Keystore attestation chain"),
            };
            let trust = match trusted {
                Some(true) => format!(": one of the {trusted_keys} trusted key(s)"),
                Some(false) => ": NOT a trusted key".into(),
                None => " (not checked against trusted keys: pass --trust FINGERPRINT)".into(),
            };
            format!("signature: valid, device key {fingerprint} ({algorithm}{attested}){trust}")
        }
    }
}

/// `stats`: counts and durations, as a table, JSON or OpenMetrics.
pub(crate) fn stats(cli: &Cli, format: StatsFormat, by_case: bool, out: &mut dyn Write) -> Result<()> {
    let store = open_reader(cli)?;
    let s = store.stats(by_case)?;
    // Shown as unknown in every format; the exit code says so too.
    if let Some(e) = &s.store.error {
        err_message!("{e}");
    }
    match format {
        StatsFormat::Table => write!(out, "{}", stats::table(&s))?,
        StatsFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?,
        StatsFormat::Openmetrics => write!(out, "{}", stats::openmetrics(&s))?,
    }
    Ok(())
}

/// `report --out FILE`: the statistics as one HTML page.
pub(crate) fn report(cli: &Cli, path: &Path, out: &mut dyn Write) -> Result<()> {
    let store = open_reader(cli)?;
    store.write_report(path)?;
    writeln!(out, "report written to {}", path.display())?;
    Ok(())
}

/// The checkpoints in `files` (each: one object, a `stats --json` output, an array, or lines).
fn read_checkpoints(files: &[PathBuf]) -> Result<Vec<Checkpoint>> {
    let mut all = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).with_context(|| format!("--checkpoint {}", f.display()))?;
        let found = Checkpoint::parse_many(&text)
            .map_err(|e| super::Usage(format!("--checkpoint {}: not a fotovakt checkpoint: {e}", f.display())))?;
        all.extend(found);
    }
    Ok(all)
}

/// `verify [--checkpoint FILE]…`: re-hash the store, check the chain, and prove the ledger
/// extends each checkpoint.
pub(crate) fn verify(cli: &Cli, json: bool, checkpoints: &[PathBuf], out: &mut dyn Write) -> Result<()> {
    let checkpoints = read_checkpoints(checkpoints)?;
    let store = open_reader(cli)?;
    let v = store.verify_with(&checkpoints)?;
    if !v.problems.is_empty() {
        set_errored();
    }
    if json {
        return json_with_store(out, &store, &v);
    }
    for n in &v.notes {
        writeln!(out, "NOTE: {n}")?;
    }
    let extended =
        if v.checkpoints > 0 { format!(", extends {} signed checkpoint(s)", v.checkpoints) } else { String::new() };
    let pruned = match v.pruned {
        0 => String::new(),
        n => format!(" ({n} pruned on schedule: personal data removed, their hashes still chained)"),
    };
    if v.problems.is_empty() {
        writeln!(out, "OK: {} events chained{pruned}, {} stored files verified{extended}", v.events, v.files)?;
        return Ok(());
    }
    for p in &v.problems {
        writeln!(out, "PROBLEM: {p}")?;
    }
    writeln!(out, "{} problem(s) in {} events and {} stored files", v.problems.len(), v.events, v.files)?;
    Ok(())
}

/// `anchor --reason TEXT`: anchor the ledger again after its head was lost, audited.
pub(crate) fn anchor(cli: &Cli, reason: &str, by: &Option<String>, out: &mut dyn Write) -> Result<()> {
    let agent = open(cli, Model::Skip, StoreUse::Existing)?;
    let r = agent.anchor(reason, officer(by).as_deref())?;
    writeln!(
        out,
        "ledger anchored again at event {} (the head was {:?} with events up to {})",
        r.seq, r.found, r.newest
    )?;
    Ok(())
}

/// What a receiver brings to `verify-package`: trusted keys and its identity.
pub(crate) struct Receiver<'a> {
    pub(crate) trust: &'a [String],
    pub(crate) trust_file: &'a [PathBuf],
    pub(crate) identity: Option<&'a Path>,
}

/// `verify-package PATH`: offline, needs neither the config nor a store.
pub(crate) fn verify_package(path: &Path, receiver: &Receiver<'_>, json: bool, out: &mut dyn Write) -> Result<()> {
    let mut trust = TrustList::default();
    for t in receiver.trust {
        trust.add(t, "--trust").map_err(|e| super::Usage(e.to_string()))?;
    }
    for f in receiver.trust_file {
        let text = std::fs::read_to_string(f).with_context(|| format!("--trust-file {}", f.display()))?;
        let before = trust.len();
        trust.add_file_text(&text, f).map_err(|e| super::Usage(e.to_string()))?;
        if trust.len() == before && !text.lines().any(|l| !l.split('#').next().unwrap_or("").trim().is_empty()) {
            return Err(super::Usage(format!("--trust-file {}: no fingerprint in it", f.display())).into());
        }
    }
    let identities = receiver.identity.map(crate::export::Identities::from_file).transpose()?;
    let check = crate::export::Check { trust: Some(&trust), identities: identities.as_ref() };
    let r = crate::export::verify_package_with(path, &check)?;
    if !r.problems.is_empty() {
        set_errored();
    }
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
        return Ok(());
    }
    for p in &r.problems {
        writeln!(out, "PROBLEM: {p}")?;
    }
    let summary = format!(
        "case {}: {} files, {} custody events ({} links checked, {} gap(s) where other items' events sit)",
        r.case_id.as_deref().unwrap_or("?"),
        r.files,
        r.events,
        r.links_checked,
        r.gaps
    );
    if r.problems.is_empty() {
        writeln!(out, "OK: {summary}")?;
        writeln!(out, "package sha256 {}", r.digest.as_deref().unwrap_or("-"))?;
    } else {
        writeln!(out, "{} problem(s); {summary}", r.problems.len())?;
    }
    writeln!(out, "{}", signature_line(&r.signature, trust.len()))?;
    if r.encrypted {
        writeln!(out, "encrypted to its receiver; opened with the identity given")?;
    }
    Ok(())
}

/// `ack --case ID`: the receiving case file has the package.
pub(crate) fn ack(cli: &Cli, case: &str, by: &Option<String>, out: &mut dyn Write) -> Result<()> {
    let agent = open(cli, Model::Skip, StoreUse::Existing)?;
    let r = agent.ack(case, officer(by).as_deref())?;
    writeln!(out, "case {}: receipt recorded for {} item(s)", r.case_id, r.items.len())?;
    Ok(())
}

/// `purge`: remove store files whose retention ran out.
pub(crate) fn purge(cli: &Cli, dry_run: bool, json: bool, by: &Option<String>, out: &mut dyn Write) -> Result<()> {
    let agent = open(cli, Model::Skip, StoreUse::Existing)?;
    let r = agent.purge(dry_run, officer(by).as_deref())?;
    if !r.failures.is_empty() {
        set_errored();
    }
    if json {
        return json_with_store(out, &agent, &r);
    }
    let verb = if r.dry_run { "would purge" } else { "purged" };
    for d in &r.items {
        writeln!(
            out,
            "{verb} item {} (case {}, {}, due {})",
            d.item,
            d.case_id.as_deref().unwrap_or("-"),
            d.reason.as_str(),
            time_text(d.due_at_ms)
        )?;
    }
    for f in &r.failures {
        writeln!(out, "PROBLEM: {f}")?;
    }
    writeln!(out, "{verb} {} item(s), {} bytes", r.items.len(), r.bytes)?;
    let p = &r.personal;
    if p.personal_forgotten + p.markers_removed + p.corrections_expired + p.released_forgotten > 0 {
        writeln!(
            out,
            "privacy: forgot {} personal decision(s), removed {} marker(s), {} correction(s) expired, {} released \
             item(s) forgotten",
            p.personal_forgotten, p.markers_removed, p.corrections_expired, p.released_forgotten
        )?;
    }
    Ok(())
}

/// Widest the `classify` table's file column gets; longer paths are cut in the middle.
const CLASSIFY_PATH_WIDTH: usize = 48;

/// Why `classify` could not read a file, as one person-readable reason.
fn inspect_reason(e: &InspectError) -> String {
    match e {
        // `classify` is handed a path; "vanished" would suggest it once was there.
        InspectError::Open(OpenError::Vanished) => io_reason(&std::io::Error::from_raw_os_error(libc::ENOENT)),
        InspectError::Open(OpenError::Io(e)) | InspectError::Read(e) => io_reason(e),
        other => other.to_string(),
    }
}

/// Why `classify` could not score a file, as one person-readable reason.
fn classify_reason(e: &ClassifyError) -> String {
    match e {
        ClassifyError::Unsupported(what) => format!("not an image: {what}"),
        other => other.to_string(),
    }
}

/// What `classify` learnt about one file: the facts read before any error, and the score
/// or why there is none.
struct Scored {
    facts: serde_json::Value,
    result: Result<Assessment, String>,
}

/// The classifier, loaded when the first file that is an image needs it: a missing file or
/// a text file is reported for what it is, with or without ONNX Runtime.
enum Lazy<'a> {
    NotYet(&'a classify::Settings),
    Ready(Box<classify::Classifier>),
    /// Why it could not be loaded; said in full for the first image, briefly after.
    Failed {
        said: bool,
        reason: String,
    },
}

impl Lazy<'_> {
    fn get(&mut self) -> Result<&mut classify::Classifier, String> {
        if let Lazy::NotYet(settings) = self {
            *self = match classify::Classifier::load(settings) {
                Ok(c) => Lazy::Ready(Box::new(c)),
                Err(e) => Lazy::Failed { said: false, reason: load_reason(&e) },
            };
        }
        match self {
            Lazy::Ready(c) => Ok(c),
            Lazy::Failed { said: false, reason } => {
                let r = format!("cannot be scored: {reason}");
                *self = Lazy::Failed { said: true, reason: std::mem::take(reason) };
                Err(r)
            }
            Lazy::Failed { said: true, .. } => {
                Err("cannot be scored: the classifier is not available (see above)".into())
            }
            Lazy::NotYet(_) => unreachable!("loaded above"),
        }
    }
}

/// Why the classifier could not be loaded, for `classify` (which only scores: nothing is
/// "decided by context" here).
fn load_reason(e: &ClassifyError) -> String {
    match e {
        ClassifyError::RuntimeMissing(why) => {
            format!(
                "ONNX Runtime not found: {}",
                why.replace(classify::runtime::HOW_TO_GET, classify::runtime::INSTALL_HINT)
            )
        }
        other => format!("classifier: {other}"),
    }
}

/// Read `path` as the agent does ([`media::inspect`]: no symlinks, hashed first, then what
/// it is and its EXIF), then score it if it is an image.
fn score(classifier: &mut Lazy<'_>, path: &Path, max_image_bytes: u64) -> Scored {
    match media::inspect(path, max_image_bytes) {
        Ok(media::Inspected { sha256, bytes: Some(bytes), kind, exif, .. }) => Scored {
            facts: serde_json::json!({
                "sha256": sha256, "kind": kind.as_str(),
                "exif": {
                    "capture_time": exif.capture_time.map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string()),
                    "gps": exif.gps.map(|(lat, lon)| [lat, lon]), "orientation": exif.orientation,
                },
            }),
            result: match classify::decode::sniff(&bytes) {
                classify::decode::Format::Unsupported(what) => Err(format!("not an image: {what}")),
                _ => classifier.get().and_then(|c| c.assess(&bytes).map_err(|e| classify_reason(&e))),
            },
        },
        Ok(media::Inspected { sha256, size, bytes: None, .. }) => Scored {
            facts: serde_json::json!({"sha256": sha256}),
            result: Err(format!("{size} bytes, larger than max_image_bytes ({max_image_bytes})")),
        },
        Err(e) => Scored { facts: serde_json::json!({}), result: Err(inspect_reason(&e)) },
    }
}

/// `classify PATH…`: the model's scores, one line (or JSON object) per file; moves nothing.
pub(crate) fn classify(cli: &Cli, paths: &[PathBuf], json: bool, out: &mut dyn Write) -> Result<()> {
    let config = Config::resolve(cli.config.as_deref())?;
    let mut classifier = Lazy::NotYet(&config.classifier);
    let shown: Vec<String> = paths.iter().map(|p| fit(&p.display().to_string(), CLASSIFY_PATH_WIDTH)).collect();
    let width = shown.iter().map(|s| s.chars().count()).max().unwrap_or(0).max(4);
    let mut header_done = json;
    for (p, shown) in paths.iter().zip(&shown) {
        let Scored { facts, result } = score(&mut classifier, p, config.max_image_bytes);
        let mut row = serde_json::json!({"path": p.to_string_lossy()});
        extend(&mut row, facts);
        let a = match result {
            Ok(a) => a,
            Err(reason) => {
                let message = format!("{}: {reason}", p.display());
                if json {
                    extend(&mut row, serde_json::json!({"error": message}));
                    writeln!(out, "{row}")?;
                }
                err_message!("{message}");
                continue;
            }
        };
        let case = a.case_score >= config.policy.threshold.unwrap_or(a.threshold);
        if json {
            let more = serde_json::json!({
                "case_score": a.case_score, "case": case,
                "labels": a.labels, "decode_ms": a.decode_ms, "infer_ms": a.infer_ms,
            });
            extend(&mut row, more);
            writeln!(out, "{row}")?;
            continue;
        }
        if !header_done {
            writeln!(
                out,
                "{:<width$} {:>6} {:>5} {:>8} {:>8}  top labels",
                "file", "score", "case", "decode", "infer"
            )?;
            header_done = true;
        }
        let labels: Vec<String> = a.labels.iter().map(|l| format!("{} {:.2}", l.label, l.p)).collect();
        writeln!(
            out,
            "{:<width$} {:>6.3} {:>5} {:>6.1}ms {:>6.1}ms  {}",
            shown,
            a.case_score,
            if case { "yes" } else { "no" },
            a.decode_ms,
            a.infer_ms,
            labels.join(", ")
        )?;
    }
    Ok(())
}

/// Add the keys of the JSON object `more` to the JSON object `row`.
fn extend(row: &mut serde_json::Value, more: serde_json::Value) {
    if let (Some(row), serde_json::Value::Object(more)) = (row.as_object_mut(), more) {
        row.extend(more);
    }
}
