//! The service commands, what runs on the device: `watch`, `scan`, `pending`, `serve-metrics`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context as _, Result};

use super::args::Cli;
use super::setup::{camera_problem, load_config, open_agent, open_reader, open_reader_with, Model, StoreUse};
use super::{set_errored, Usage};
use crate::agent::scan::ScanProgress;
use crate::watch;

const NO_CAMERA: &str = "no camera folder: pass --camera DIR or set `cameras` in the config";

/// `watch`: run the watcher until SIGINT/SIGTERM, then print its JSON report.
pub(crate) fn watch(cli: &Cli, camera: &[PathBuf], wait_for_cameras: bool, out: &mut dyn Write) -> Result<()> {
    let config = load_config(cli, camera)?;
    if config.cameras.is_empty() {
        return Err(Usage(NO_CAMERA.into()).into());
    }
    // A mistyped folder is a usage error, found before the model loads; a folder that is
    // not there yet is waited for only when asked (the Android shell's DCIM/Camera).
    if !(wait_for_cameras || config.wait_for_cameras) {
        let missing: Vec<String> =
            config.cameras.iter().filter(|c| !c.is_dir()).map(|c| c.display().to_string()).collect();
        if !missing.is_empty() {
            return Err(Usage(format!(
                "camera folder {} does not exist (pass --wait-for-cameras, or set wait_for_cameras = true \
                 in the config, to wait for it)",
                missing.join(", ")
            ))
            .into());
        }
    }
    let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
    spawn_signal_thread(stop_tx)?;
    let Some(agent) = open_for_watch(cli, &config, &stop_rx)? else {
        return Err(anyhow::anyhow!(
            "stopped before the store could be opened: the camera folders were not guarded meanwhile"
        ));
    };
    match watch::run(&agent, &stop_rx, &watch::WatchOptions::default(), |_| {}) {
        Ok(report) => writeln!(out, "{}", serde_json::to_string(&report)?)?,
        Err(watch::WatchError::Unflushed { report, source }) => {
            // The report stands; the exit code says the last decisions may not be durable.
            writeln!(out, "{}", serde_json::to_string(&report)?)?;
            return Err(anyhow::Error::from(*source).context("the last durability barrier failed"));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// `pending`: the files the ledger has not settled, one per line (or a JSON array). Read-only.
pub(crate) fn pending(cli: &Cli, camera: &[PathBuf], json: bool, out: &mut dyn Write) -> Result<()> {
    let config = load_config(cli, camera)?;
    if config.cameras.is_empty() {
        return Err(Usage(NO_CAMERA.into()).into());
    }
    for u in config.cameras.iter().filter_map(|c| camera_problem(c)) {
        err_message!("{u}");
    }
    // Read-only, like `list`: no store made, no recovery, never waiting behind a move.
    let files = open_reader_with(cli, config)?.unsettled()?;
    if json {
        let paths: Vec<String> = files.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        writeln!(out, "{}", serde_json::to_string(&paths)?)?;
    } else {
        for f in &files {
            writeln!(out, "{}", f.display())?;
        }
    }
    Ok(())
}

/// Open the agent for `watch`. A store that cannot be written now (a full disk, an I/O error,
/// a read-only remount, a ledger that cannot be opened) does not stop the guard: it says so
/// once and tries again with backoff ([`watch::open_backoff`]) until the store opens or a stop
/// signal comes (`None`). Photos wait in the camera folders meanwhile; the reconcile at start
/// handles them as soon as the store opens. Anything else (a refused placement, bad
/// permissions, a ledger from a newer program) is an error as for any other command.
fn open_for_watch(
    cli: &Cli,
    config: &crate::config::Config,
    stop: &crossbeam_channel::Receiver<()>,
) -> Result<Option<crate::agent::Agent>> {
    let mut failed = 0u32;
    loop {
        let e = match open_agent(cli, config.clone(), Model::Load, StoreUse::Create) {
            Ok(agent) => {
                if failed > 0 {
                    tracing::info!(tries = failed + 1, "the store opened; watching");
                }
                return Ok(Some(agent));
            }
            Err(e) if e.downcast_ref::<crate::agent::Error>().is_some_and(|a| a.is_storage_failure()) => e,
            Err(e) => return Err(e),
        };
        let wait = watch::open_backoff(failed);
        if failed == 0 {
            tracing::error!(
                store = %config.store_dir().map(|d| d.display().to_string()).unwrap_or_default(),
                error = %super::one_line(&e),
                "the store cannot be opened for writing; watching anyway: photos stay in the camera folders and are \
                 handled once it opens (tried again with backoff, at least every {} s)",
                watch::PROBE_CAP.as_secs()
            );
        } else {
            tracing::debug!(error = %super::one_line(&e), wait_ms = wait.as_millis() as u64, "the store still cannot be opened");
        }
        failed += 1;
        match stop.recv_timeout(wait) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            _ => return Ok(None),
        }
    }
}

/// `scan`: one pass of [`crate::agent::Agent::scan`], a progress bar on a terminal, and a
/// one-line summary (or one JSON object per file).
pub(crate) fn scan(cli: &Cli, camera: &[PathBuf], json: bool, out: &mut dyn Write) -> Result<()> {
    let config = load_config(cli, camera)?;
    if config.cameras.is_empty() {
        return Err(Usage(NO_CAMERA.into()).into());
    }
    // A camera folder that cannot be read is an error of this scan (the others are still
    // scanned), not "nothing new"; found before the model loads. If none can be read there
    // is nothing to scan: a usage error, like `watch`'s.
    let mut unreadable: Vec<String> = config.cameras.iter().filter_map(|c| camera_problem(c)).collect();
    if unreadable.len() == config.cameras.len() {
        let last = unreadable.pop().unwrap_or_else(|| NO_CAMERA.into());
        for u in &unreadable {
            eprintln!("fotovakt: {u}");
        }
        return Err(Usage(last).into());
    }
    for u in &unreadable {
        err_message!("{u}");
    }
    let agent = open_agent(cli, config, Model::Load, StoreUse::Create)?;
    let bar = if std::io::stderr().is_terminal() && !json {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    // Lines go out as files are settled; the first write error stops the output, not the scan.
    let mut write_error = None;
    let report = agent.scan(|p| {
        let o = match p {
            ScanProgress::Found(n) => return bar.set_length(n as u64),
            ScanProgress::Settled(o) => o,
        };
        bar.inc(1);
        if json && write_error.is_none() {
            write_error = serde_json::to_string(o)
                .map_err(anyhow::Error::from)
                .and_then(|line| {
                    writeln!(out, "{line}")?;
                    Ok(())
                })
                .err();
        }
    })?;
    bar.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e);
    }
    if report.gave_up() {
        set_errored();
    }
    if !json {
        let summary: Vec<String> = report.counts().iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(
            out,
            "scanned {} files: {}",
            report.files,
            if summary.is_empty() { "nothing new".into() } else { summary.join(", ") }
        )?;
    }
    Ok(())
}

/// `serve-metrics`: the statistics for Prometheus until SIGINT/SIGTERM.
pub(crate) fn serve_metrics(cli: &Cli, listen: &str, allow_remote: bool, out: &mut dyn Write) -> Result<()> {
    let addr: std::net::SocketAddr = listen
        .parse()
        .map_err(|e| Usage(format!("--listen {listen:?}: not an IP address and port such as 127.0.0.1:9464 ({e})")))?;
    let server = match crate::serve::Server::bind(addr, allow_remote) {
        Err(e @ crate::serve::ServeError::NotLoopback { .. }) => return Err(Usage(e.to_string()).into()),
        r => r?,
    };
    let store = open_reader(cli)?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, std::sync::Arc::clone(&stop)).context("installing signal handlers")?;
    }
    writeln!(out, "serving metrics at http://{}/metrics", server.local_addr()?)?;
    out.flush()?;
    server.run(&stop, || store.stats(false))?;
    Ok(())
}

/// SIGINT or SIGTERM asks the agent to stop cleanly; a second one, a moment later, makes
/// it exit at once (a move cut short is recovered at the next start). A repeat within
/// `SAME_STOP` is the same request delivered twice (`timeout`, shells and service
/// managers signal the child and then its whole process group) and is ignored.
fn spawn_signal_thread(stop: crossbeam_channel::Sender<()>) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    const SAME_STOP: std::time::Duration = std::time::Duration::from_secs(1);
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).context("installing signal handlers")?;
    std::thread::Builder::new().name("fotovakt-signals".into()).spawn(move || {
        let mut first: Option<std::time::Instant> = None;
        for sig in signals.forever() {
            match first {
                None => {
                    tracing::info!(signal = sig, "stopping (signal again to exit at once)");
                    first = Some(std::time::Instant::now());
                    let _ = stop.send(());
                }
                Some(at) if at.elapsed() < SAME_STOP => {
                    tracing::debug!(signal = sig, "repeated stop signal ignored");
                }
                Some(_) => std::process::exit(130),
            }
        }
    })?;
    Ok(())
}
