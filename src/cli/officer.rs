//! The officers' commands: `tag`, `release`, `session`, `list`, `show`, `export`. Each calls
//! one agent method and formats its answer.

use std::io::Write;
use std::path::Path;

use anyhow::Result;

use super::args::{officer, SessionAction};
use super::format::{fit, json_with_store, time_text, until_text};
use super::setup::{open, open_reader, Model, StoreUse};
use super::Cli;
use crate::agent::browse::Listing;
use crate::ledger::Item;

/// `tag PATH --case ID`: a photo in a camera folder or the store becomes case material.
pub(crate) fn tag(
    cli: &Cli,
    path: &str,
    case: &str,
    by: &Option<String>,
    note: Option<&str>,
    out: &mut dyn Write,
) -> Result<()> {
    let agent = open(cli, Model::Load, StoreUse::Create)?;
    let tagged = agent.tag(path, case, officer(by).as_deref(), note)?;
    let item = tagged.item.unwrap_or_default();
    if tagged.kind == crate::agent::OutcomeKind::Retry {
        writeln!(out, "item {item} tagged as case {case} (waits in staging, out of sight, until the store takes it)")?;
    } else {
        writeln!(out, "item {item} tagged as case {case} (in the store)")?;
    }
    Ok(())
}

/// `release ITEM --reason TEXT`: a false positive goes back to its camera folder.
pub(crate) fn release(cli: &Cli, item: &str, reason: &str, by: &Option<String>, out: &mut dyn Write) -> Result<()> {
    let agent = open(cli, Model::Skip, StoreUse::Existing)?;
    let released = agent.release(item, reason, officer(by).as_deref())?;
    writeln!(out, "item {} released to {}", released.item.unwrap_or_default(), released.path)?;
    Ok(())
}

/// `session start|stop|status`.
pub(crate) fn session(cli: &Cli, action: &SessionAction, out: &mut dyn Write) -> Result<()> {
    let agent = open(cli, Model::Skip, StoreUse::Create)?;
    match action {
        SessionAction::Start { case, duration, officer: by } => {
            // Opening a session closes the one open (the ledger says "replaced"); say so.
            if let Some(prev) = agent.session_status()? {
                writeln!(out, "session {} for case {} closed (replaced)", prev.id, prev.case_id)?;
            }
            let s = agent.session_start(case, officer(by).as_deref(), *duration)?;
            writeln!(out, "session {} open for case {}{}", s.id, s.case_id, until_text(s.until_ms))?;
        }
        SessionAction::Stop => {
            let stopped = agent.session_stop()?;
            if stopped.is_empty() {
                writeln!(out, "no session was open")?;
            }
            for s in stopped {
                writeln!(out, "session {} for case {} closed", s.id, s.case_id)?;
            }
        }
        SessionAction::Status => match agent.session_status()? {
            Some(s) => writeln!(
                out,
                "session {} open for case {} since {}{}",
                s.id,
                s.case_id,
                time_text(s.started_ms),
                until_text(s.until_ms)
            )?,
            None => writeln!(out, "no session open")?,
        },
    }
    Ok(())
}

/// `list`: a table (or JSON array) of the items in the store, or with `--all` every item.
pub(crate) fn list(cli: &Cli, case: Option<&str>, all: bool, json: bool, out: &mut dyn Write) -> Result<()> {
    let store = open_reader(cli)?;
    let items = store.list(case, if all { Listing::All } else { Listing::InStore })?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&items)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:>6}  {:<12}  {:<11}  {:<10}  {:<16}  {:<19}  original path",
        "item", "sha256", "state", "source", "case", "quarantined"
    )?;
    for i in &items {
        writeln!(
            out,
            "{:>6}  {:<12}  {:<11}  {:<10}  {:<16}  {:<19}  {}",
            i.id,
            i.sha256.chars().take(12).collect::<String>(),
            i.state.as_str(),
            i.source,
            fit(i.case_id.as_deref().unwrap_or("-"), 16),
            i.quarantined_at_ms.map(time_text).unwrap_or_else(|| "-".into()),
            i.original_path.display()
        )?;
    }
    Ok(())
}

/// `show ITEM`: one item and its custody log.
pub(crate) fn show(cli: &Cli, key: &str, json: bool, out: &mut dyn Write) -> Result<()> {
    let store = open_reader(cli)?;
    let record = store.show(key)?;
    if json {
        return json_with_store(out, &store, &record);
    }
    item_text(out, &record.item)?;
    writeln!(out, "  custody log:")?;
    let mut lines: Vec<(i64, String)> = record
        .events
        .iter()
        .map(|e| (e.seq, format!("    #{:<6} {}  {:<18} {}", e.seq, time_text(e.at_ms), e.kind, e.data)))
        .collect();
    lines.extend(record.pruned.iter().map(|e| {
        (
            e.seq,
            format!("    #{:<6} {}  {:<18} (pruned on schedule; hash {})", e.seq, time_text(e.at_ms), e.kind, e.hash),
        )
    }));
    lines.sort_by_key(|(seq, _)| *seq);
    for (_, line) in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The facts of one item, one per line, as `show` prints them.
fn item_text(out: &mut dyn Write, it: &Item) -> Result<()> {
    writeln!(out, "item {}  {}", it.id, it.state.as_str())?;
    writeln!(out, "  sha256     {}", it.sha256)?;
    writeln!(out, "  size       {} bytes ({})", it.size, it.kind)?;
    let original = match it.original_path.as_os_str().is_empty() {
        true => "(forgotten: the correction ran out)".to_string(),
        false => it.original_path.display().to_string(),
    };
    writeln!(out, "  original   {original}")?;
    writeln!(out, "  captured   {}", it.capture_time.as_deref().unwrap_or("-"))?;
    if let Some((lat, lon)) = it.gps {
        writeln!(out, "  gps        {lat:.6}, {lon:.6}")?;
    }
    writeln!(out, "  first seen {}", time_text(it.first_seen_ms))?;
    writeln!(out, "  decision   {} by {}: {}", it.action, it.source, it.rule)?;
    writeln!(out, "  case       {}", it.case_id.as_deref().unwrap_or("-"))?;
    if let Some(n) = &it.store_name {
        writeln!(out, "  stored as  {n}")?;
    }
    Ok(())
}

/// `export --case ID --out PATH [--to RECIPIENT]…`: the case package, signed, and encrypted
/// to its receivers when `--to` names any.
pub(crate) fn export(
    cli: &Cli,
    case: &str,
    path: &Path,
    by: &Option<String>,
    to: &[String],
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let recipients = crate::export::Recipients::parse(to).map_err(|e| super::Usage(format!("--to: {e}")))?;
    let agent = open(cli, Model::Record, StoreUse::Existing)?;
    let r = agent.export_to(case, path, officer(by).as_deref(), &recipients)?;
    if json {
        return json_with_store(out, &agent, &r);
    }
    writeln!(
        out,
        "case {} exported to {}: {} files, {} bytes\npackage sha256 {}",
        r.case_id,
        r.path.display(),
        r.items.len(),
        r.bytes,
        r.package_sha256
    )?;
    if let Some(f) = &r.signer {
        writeln!(out, "signed by device key {f}")?;
    }
    if let Some(sealed) = &r.sealed_sha256 {
        writeln!(out, "encrypted to {}; encrypted file sha256 {sealed}", r.recipients.join(", "))?;
    }
    Ok(())
}
