//! `import --case ID PATH...`: evidence from a dedicated camera or an SD card into a case,
//! through the agent's one "import a file into a case" path (the Android case camera uses it
//! too).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::args::officer;
use super::setup::{open, Model, StoreUse};
use super::Cli;
use crate::agent::{ImportRequest, Origin};

/// `import --case ID [--remove-source] PATH...`.
pub(crate) fn run(
    cli: &Cli,
    case: &str,
    by: &Option<String>,
    remove_source: bool,
    json: bool,
    paths: &[PathBuf],
    out: &mut dyn Write,
) -> Result<()> {
    let mut files = Vec::new();
    for p in paths {
        collect(p, true, &mut files);
    }
    let agent = open(cli, Model::Skip, StoreUse::Create)?;
    let by = officer(by);
    let req = ImportRequest { case, officer: by.as_deref(), origin: Origin::Card, remove_source };
    let bar = if std::io::stderr().is_terminal() && !json {
        indicatif::ProgressBar::new(files.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta} {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (mut stored, mut already, mut failed, mut removed) = (0, 0, 0, 0);
    let mut write_error = None;
    let results = agent.import_files(&files, &req, |p, r| {
        bar.inc(1);
        bar.set_message(p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        match r {
            Ok(i) => {
                if i.already {
                    already += 1
                } else {
                    stored += 1
                }
                removed += usize::from(i.source_removed);
                if json && write_error.is_none() {
                    write_error = serde_json::to_string(i)
                        .map_err(anyhow::Error::from)
                        .and_then(|l| {
                            writeln!(out, "{l}")?;
                            Ok(())
                        })
                        .err();
                }
            }
            Err(e) => {
                failed += 1;
                // One clear line per bad file, above the bar; the rest go on.
                bar.suspend(|| err_message!("{e}"));
            }
        }
    })?;
    bar.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e);
    }
    if files.is_empty() {
        err_message!("nothing to import: no photo or video under {}", shown(paths));
    }
    if !json {
        let mut line = format!("imported {stored} file(s) into case {case}");
        if already > 0 {
            line.push_str(&format!(", {already} already there"));
        }
        if remove_source {
            line.push_str(&format!(", {removed} source(s) removed after their copies verified"));
        }
        if failed > 0 {
            line.push_str(&format!(", {failed} failed (above)"));
        }
        writeln!(out, "{line}")?;
    }
    debug_assert_eq!(results.len(), files.len());
    Ok(())
}

fn shown(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// The files to import under `p`: a file named on the command line as it is (the import says
/// why if it is no photo); in a folder, recursively, the media files by name (a card's
/// `DCIM/100CANON/IMG_0001.JPG`), never following a symlink and skipping dotfiles (`.Trashes`,
/// `._IMG_0001.JPG`).
fn collect(p: &Path, named: bool, files: &mut Vec<PathBuf>) {
    let Ok(meta) = std::fs::symlink_metadata(p) else {
        files.push(p.to_path_buf());
        return;
    };
    if !meta.is_dir() {
        if named || p.file_name().is_some_and(crate::media::is_candidate_name) {
            files.push(p.to_path_buf());
        }
        return;
    }
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(p) {
        Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
        Err(_) => {
            files.push(p.to_path_buf());
            return;
        }
    };
    entries.sort();
    for e in entries {
        if e.file_name().is_some_and(|n| n.as_encoded_bytes().first() == Some(&b'.')) {
            continue;
        }
        collect(&e, false, files);
    }
}
