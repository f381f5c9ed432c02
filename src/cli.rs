//! The command line: argument parsing, logging setup, and one small function per command
//! that calls the library and formats its answer. No business logic lives here.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};

use crate::agent::{Agent, OutcomeKind};
use crate::config::Config;
use crate::{classify, stats, watch};

/// Exit codes: 0 ok, 1 failure, 2 bad usage.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
}

/// fotovakt keeps evidence photos out of personal cloud sync: it watches the camera folders,
/// decides on the device, and moves case material into a private quarantine store with a
/// tamper-evident chain-of-custody ledger.
#[derive(Debug, Parser)]
#[command(name = "fotovakt", version, max_term_width = 100)]
pub struct Cli {
    /// Config file (TOML). Default: $FOTOVAKT_CONFIG, else the platform config dir.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Quarantine store directory (overrides the config).
    #[arg(long, global = true, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// More log output (-v debug, -vv trace). Logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log as JSON lines.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// How often `scan` looks again at a file that changed while it was handled, and how long it
/// waits before each look.
const SCAN_RETRY_PASSES: usize = 3;
const SCAN_RETRY_PAUSE: Duration = Duration::from_millis(300);

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run until SIGINT/SIGTERM; reconcile at start, on watcher overflow, and on a timer.
    Watch {
        /// Camera folder to watch (repeatable; adds to the config's).
        #[arg(long, value_name = "DIR")]
        camera: Vec<PathBuf>,
    },
    /// One pass over what is in the camera folders now, then exit.
    Scan {
        #[arg(long, value_name = "DIR")]
        camera: Vec<PathBuf>,
        /// One JSON object per file instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Mark a photo (in a camera folder, or already in the store) as case material.
    Tag {
        /// A file in a camera folder or in the store, or an item number / hash prefix.
        path: String,
        #[arg(long)]
        case: String,
        /// Who tags it (default: $USER).
        #[arg(long)]
        officer: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Put a false positive back where it came from, audited.
    Release {
        /// Item number, hash prefix (≥ 6 hex digits) or store file.
        item: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        officer: Option<String>,
    },
    /// Case sessions: everything shot while one is open is material of that case.
    Session {
        #[command(subcommand)]
        action: SessionAction,
    },
    /// List quarantined items (with --all, every decided item).
    List {
        #[arg(long)]
        case: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// One item with its custody log.
    Show {
        item: String,
        #[arg(long)]
        json: bool,
    },
    /// Admin statistics: counts and durations only, never file names, GPS or content.
    Stats {
        #[arg(long, value_enum, default_value_t = StatsFormat::Table)]
        format: StatsFormat,
        /// Include per-case counts keyed by case ID.
        #[arg(long)]
        by_case: bool,
    },
    /// Write the statistics as one self-contained HTML page with charts (no network, no scripts).
    Report {
        /// Where to write the page.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Serve the statistics for Prometheus at http://ADDR/metrics until SIGINT/SIGTERM.
    ServeMetrics {
        /// IP address and port to listen on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
        listen: String,
        /// Allow a non-loopback address (the counts become readable from the network).
        #[arg(long)]
        allow_remote: bool,
    },
    /// Re-hash every stored file and check the ledger's hash chain; non-zero exit on any mismatch.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Export a case as a package (a directory, or a .zip): originals, manifest, custody log.
    Export {
        #[arg(long)]
        case: String,
        /// Where to write it: a new (or empty) folder, or a file ending in .zip.
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
        /// Who exports it (default: $USER).
        #[arg(long)]
        officer: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Check a case package offline (no config, no store); non-zero exit on any problem.
    VerifyPackage {
        /// The package folder or .zip.
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Record that the receiving case file has the case's package (starts `exported_days`).
    Ack {
        #[arg(long)]
        case: String,
        /// Who confirms it (default: $USER).
        #[arg(long)]
        officer: Option<String>,
    },
    /// Remove store files whose retention ran out (ledger rows and custody log are kept).
    Purge {
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
        /// Who runs it (default: $USER).
        #[arg(long)]
        officer: Option<String>,
    },
    /// Run the classifier on files; moves nothing.
    Classify {
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Run the real agent on a temporary phone-like tree and show what it does.
    Demo {
        /// Keep the temporary tree afterwards.
        #[arg(long)]
        keep: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionAction {
    /// Open a case session.
    Start {
        #[arg(long)]
        case: String,
        /// How long it stays open (e.g. 2h, 90m); default: until `session stop`.
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: Option<Duration>,
        #[arg(long)]
        officer: Option<String>,
    },
    /// Close the open session.
    Stop,
    /// Show the open session, if any.
    Status,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum StatsFormat {
    Table,
    Json,
    Openmetrics,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (try 90m or 2h)"))
}

/// A mistake in how the program was called (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

/// Parse arguments, run, map to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo tells its own story on stdout; its logs stay quiet unless asked for with -v.
    let quiet = matches!(cli.command, Command::Demo { .. }) && cli.verbose == 0;
    init_tracing(cli.verbose, cli.log_json, quiet);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let usage = e.downcast_ref::<Usage>().is_some()
                || e.downcast_ref::<crate::config::ConfigError>().is_some()
                || matches!(e.downcast_ref::<crate::agent::Error>(), Some(crate::agent::Error::Config(_)));
            eprintln!("fotovakt: {}", one_line(&e));
            ExitCode::from(if usage { exit::USAGE } else { exit::FAILURE })
        }
    }
}

fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

fn init_tracing(verbose: u8, json: bool, quiet: bool) {
    let default = match verbose {
        0 if quiet => "fotovakt=warn",
        0 => "fotovakt=info",
        1 => "fotovakt=debug",
        _ => "fotovakt=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FOTOVAKT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    let _ = if json { builder.json().try_init() } else { builder.compact().try_init() };
}

fn load_config(cli: &Cli, cameras: &[PathBuf]) -> Result<Config> {
    let mut config = Config::resolve(cli.config.as_deref())?;
    if let Some(s) = &cli.store {
        config.store = Some(s.clone());
    }
    config.cameras.extend(cameras.iter().cloned());
    Ok(config)
}

fn officer(given: &Option<String>) -> Option<String> {
    given.clone().or_else(|| std::env::var("USER").ok()).or_else(|| std::env::var("LOGNAME").ok())
}

fn run(cli: Cli) -> Result<u8> {
    let mut out = std::io::stdout().lock();
    match &cli.command {
        Command::Demo { keep } => {
            crate::demo::run(&mut out, *keep).map_err(|e| anyhow!("demo: {e}"))?;
            Ok(exit::OK)
        }
        Command::Classify { json, paths } => classify_cmd(&cli, paths, *json, &mut out),
        // Offline: needs neither the config nor a store.
        Command::VerifyPackage { path, json } => {
            let r = crate::export::verify_package(path)?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
            } else {
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
            }
            Ok(if r.problems.is_empty() { exit::OK } else { exit::FAILURE })
        }
        Command::Export { case, out: path, officer: o, json } => {
            let agent = Agent::open_without_model(load_config(&cli, &[])?)?;
            let r = agent.export(case, path, officer(o).as_deref())?;
            agent.flush()?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
            } else {
                writeln!(
                    out,
                    "case {} exported to {}: {} files, {} bytes\npackage sha256 {}",
                    r.case_id,
                    r.path.display(),
                    r.items.len(),
                    r.bytes,
                    r.package_sha256
                )?;
            }
            Ok(exit::OK)
        }
        Command::Ack { case, officer: o } => {
            let agent = Agent::open_without_model(load_config(&cli, &[])?)?;
            let r = agent.ack(case, officer(o).as_deref())?;
            agent.flush()?;
            writeln!(out, "case {}: receipt recorded for {} item(s)", r.case_id, r.items.len())?;
            Ok(exit::OK)
        }
        Command::Purge { dry_run, json, officer: o } => {
            let agent = Agent::open_without_model(load_config(&cli, &[])?)?;
            let r = agent.purge(*dry_run, officer(o).as_deref())?;
            agent.flush()?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
            } else {
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
            }
            Ok(if r.failures.is_empty() { exit::OK } else { exit::FAILURE })
        }
        Command::Watch { camera } => {
            let agent = Agent::open(load_config(&cli, camera)?)?;
            if agent.cameras().is_empty() {
                return Err(Usage("no camera folder: pass --camera DIR or set `cameras` in the config".into()).into());
            }
            let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
            spawn_signal_thread(stop_tx)?;
            let report = watch::run(&agent, &stop_rx, &watch::WatchOptions::default(), |_| {})?;
            writeln!(out, "{}", serde_json::to_string(&report)?)?;
            Ok(exit::OK)
        }
        Command::Scan { camera, json } => {
            let agent = Agent::open(load_config(&cli, camera)?)?;
            if agent.cameras().is_empty() {
                return Err(Usage("no camera folder: pass --camera DIR or set `cameras` in the config".into()).into());
            }
            // A camera folder that cannot be read is an error of this scan (the others are
            // still scanned), not "nothing new".
            let unreadable: Vec<String> = agent
                .cameras()
                .iter()
                .filter_map(|c| std::fs::read_dir(c).err().map(|e| format!("{}: {e}", c.display())))
                .collect();
            for u in &unreadable {
                eprintln!("fotovakt: cannot read camera folder {u}");
            }
            let files = agent.pending_files(Duration::ZERO)?;
            let bar = if std::io::stderr().is_terminal() && !json {
                indicatif::ProgressBar::new(files.len() as u64)
            } else {
                indicatif::ProgressBar::hidden()
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let mut counts = std::collections::BTreeMap::<&str, u64>::new();
            // A file that changed under the agent (replaced, still being written) is looked at
            // again a few times before the scan gives up on it and says so in its exit code.
            let mut todo = files.clone();
            for pass in 0..=SCAN_RETRY_PASSES {
                if pass > 0 {
                    std::thread::sleep(SCAN_RETRY_PAUSE);
                }
                let mut again = Vec::new();
                for f in &todo {
                    let o = agent.on_media(f);
                    if o.kind == OutcomeKind::Retry && pass < SCAN_RETRY_PASSES {
                        again.push(f.clone());
                        continue;
                    }
                    bar.inc(1);
                    let k = match o.kind {
                        OutcomeKind::Quarantined => "quarantined",
                        OutcomeKind::Kept => "kept",
                        OutcomeKind::Skipped => "skipped",
                        OutcomeKind::Rejected => "rejected",
                        OutcomeKind::Retry => "retry",
                    };
                    *counts.entry(k).or_default() += 1;
                    if *json {
                        writeln!(out, "{}", serde_json::to_string(&o)?)?;
                    }
                }
                todo = again;
                if todo.is_empty() {
                    break;
                }
            }
            let failed = counts.contains_key("retry") || !unreadable.is_empty();
            bar.finish_and_clear();
            agent.flush()?;
            if !json {
                let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
                writeln!(
                    out,
                    "scanned {} files: {}",
                    files.len(),
                    if summary.is_empty() { "nothing new".into() } else { summary.join(", ") }
                )?;
            }
            Ok(if failed { exit::FAILURE } else { exit::OK })
        }
        Command::Tag { path, case, officer: o, note } => {
            let agent = Agent::open(load_config(&cli, &[])?)?;
            let out_item = agent.tag(path, case, officer(o).as_deref(), note.as_deref())?;
            agent.flush()?;
            writeln!(out, "item {} tagged as case {case} (in the store)", out_item.item.unwrap_or_default())?;
            Ok(exit::OK)
        }
        Command::Release { item, reason, officer: o } => {
            let agent = Agent::open_without_model(load_config(&cli, &[])?)?;
            let r = agent.release(item, reason, officer(o).as_deref())?;
            agent.flush()?;
            writeln!(out, "item {} released to {}", r.item.unwrap_or_default(), r.path)?;
            Ok(exit::OK)
        }
        Command::Session { action } => {
            let agent = Agent::open_without_model(load_config(&cli, &[])?)?;
            match action {
                SessionAction::Start { case, duration, officer: o } => {
                    // Opening a session closes the one open (the ledger says "replaced"); say so.
                    if let Some(prev) = agent.ledger().open_session()? {
                        writeln!(out, "session {} for case {} closed (replaced)", prev.id, prev.case_id)?;
                    }
                    let s = agent.session_start(case, officer(o).as_deref(), *duration)?;
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
                SessionAction::Status => match agent.ledger().open_session()? {
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
            Ok(exit::OK)
        }
        Command::List { case, all, json } => {
            let agent = Agent::open_without_model(load_config(&cli, &[])?)?;
            let items: Vec<_> = agent
                .ledger()
                .items(case.as_deref())?
                .into_iter()
                .filter(|i| *all || i.state == crate::ledger::ItemState::Quarantined)
                .collect();
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&items)?)?;
            } else {
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
                        &i.sha256[..12],
                        i.state.as_str(),
                        i.source,
                        i.case_id.as_deref().unwrap_or("-"),
                        i.quarantined_at_ms.map(time_text).unwrap_or_else(|| "-".into()),
                        i.original_path.display()
                    )?;
                }
            }
            Ok(exit::OK)
        }
        Command::Show { item, json } => {
            let agent = Agent::open_without_model(load_config(&cli, &[])?)?;
            let ledger = agent.ledger();
            let it = ledger.find_item(item)?;
            let events = ledger.events_of(it.id)?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&serde_json::json!({"item": it, "events": events}))?)?;
            } else {
                writeln!(out, "item {}  {}", it.id, it.state.as_str())?;
                writeln!(out, "  sha256     {}", it.sha256)?;
                writeln!(out, "  size       {} bytes ({})", it.size, it.kind)?;
                writeln!(out, "  original   {}", it.original_path.display())?;
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
                writeln!(out, "  custody log:")?;
                for e in events {
                    writeln!(out, "    #{:<6} {}  {:<18} {}", e.seq, time_text(e.at_ms), e.kind, e.data)?;
                }
            }
            Ok(exit::OK)
        }
        Command::Stats { format, by_case } => {
            let agent = Agent::open_without_model(load_config(&cli, &[])?)?;
            let s = agent.stats(*by_case)?;
            match format {
                StatsFormat::Table => write!(out, "{}", stats::table(&s))?,
                StatsFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?,
                StatsFormat::Openmetrics => write!(out, "{}", stats::openmetrics(&s))?,
            }
            Ok(exit::OK)
        }
        Command::Report { out: path } => {
            let agent = Agent::open_without_model(load_config(&cli, &[])?)?;
            agent.write_report(path)?;
            writeln!(out, "report written to {}", path.display())?;
            Ok(exit::OK)
        }
        Command::ServeMetrics { listen, allow_remote } => {
            let addr: std::net::SocketAddr = listen.parse().map_err(|e| {
                Usage(format!("--listen {listen:?}: not an IP address and port such as 127.0.0.1:9464 ({e})"))
            })?;
            let server = match crate::serve::Server::bind(addr, *allow_remote) {
                Err(e @ crate::serve::ServeError::NotLoopback { .. }) => return Err(Usage(e.to_string()).into()),
                r => r?,
            };
            let agent = Agent::open_without_model(load_config(&cli, &[])?)?;
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(sig, std::sync::Arc::clone(&stop)).context("installing signal handlers")?;
            }
            writeln!(out, "serving metrics at http://{}/metrics", server.local_addr()?)?;
            out.flush()?;
            server.run(&stop, || agent.stats(false))?;
            Ok(exit::OK)
        }
        Command::Verify { json } => {
            let agent = Agent::open_without_model(load_config(&cli, &[])?)?;
            let v = agent.verify()?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else if v.problems.is_empty() {
                writeln!(out, "OK: {} events chained, {} stored files verified", v.events, v.files)?;
            } else {
                for p in &v.problems {
                    writeln!(out, "PROBLEM: {p}")?;
                }
                writeln!(out, "{} problem(s) in {} events and {} stored files", v.problems.len(), v.events, v.files)?;
            }
            Ok(if v.problems.is_empty() { exit::OK } else { exit::FAILURE })
        }
    }
}

fn classify_cmd(cli: &Cli, paths: &[PathBuf], json: bool, out: &mut dyn Write) -> Result<u8> {
    let config = Config::resolve(cli.config.as_deref())?;
    let mut classifier = classify::Classifier::load(&config.classifier).context("classifier")?;
    let threshold_override = config.policy.threshold;
    if !json {
        writeln!(out, "{:<40} {:>6} {:>5} {:>8} {:>8}  top labels", "file", "score", "case", "decode", "infer")?;
    }
    let mut failed = false;
    for p in paths {
        // Read as the agent does (no symlinks, hash first), then what it is and its EXIF, then
        // the model: each file gets one line, with whatever could be learnt before an error.
        let read = crate::quarantine::fsops::open_regular(p).map_err(|e| anyhow!("{}: {e}", p.display())).and_then(
            |(f, _)| {
                crate::quarantine::fsops::hash_fd(&f, Some(config.max_image_bytes))
                    .map_err(|e| anyhow!("{}: {e}", p.display()))
            },
        );
        let (facts, result) = match read {
            Ok((sha, _, Some(bytes))) => {
                let kind = crate::media::MediaKind::sniff(&bytes[..bytes.len().min(64)]);
                let exif = crate::media::ExifFacts::parse(&bytes);
                let facts = serde_json::json!({
                    "sha256": sha, "kind": kind.as_str(),
                    "exif": {
                        "capture_time": exif.capture_time.map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string()),
                        "gps": exif.gps.map(|(lat, lon)| [lat, lon]), "orientation": exif.orientation,
                    },
                });
                (facts, classifier.assess(&bytes).map_err(|e| anyhow!("{}: {e}", p.display())))
            }
            Ok((sha, _, None)) => {
                (serde_json::json!({"sha256": sha}), Err(anyhow!("{}: larger than max_image_bytes", p.display())))
            }
            Err(e) => (serde_json::json!({}), Err(e)),
        };
        let mut row = serde_json::json!({"path": p.to_string_lossy()});
        if let (Some(row), Some(facts)) = (row.as_object_mut(), facts.as_object()) {
            row.extend(facts.clone());
        }
        match result {
            Ok(a) => {
                let case = a.case_score >= threshold_override.unwrap_or(a.threshold);
                if json {
                    let more = serde_json::json!({
                        "case_score": a.case_score, "case": case,
                        "labels": a.labels, "decode_ms": a.decode_ms, "infer_ms": a.infer_ms,
                    });
                    if let (Some(row), Some(more)) = (row.as_object_mut(), more.as_object()) {
                        row.extend(more.clone());
                    }
                    writeln!(out, "{row}")?;
                } else {
                    let labels: Vec<String> = a.labels.iter().map(|l| format!("{} {:.2}", l.label, l.p)).collect();
                    writeln!(
                        out,
                        "{:<40} {:>6.3} {:>5} {:>6.1}ms {:>6.1}ms  {}",
                        p.display().to_string(),
                        a.case_score,
                        if case { "yes" } else { "no" },
                        a.decode_ms,
                        a.infer_ms,
                        labels.join(", ")
                    )?;
                }
            }
            Err(e) => {
                failed = true;
                if json {
                    if let Some(row) = row.as_object_mut() {
                        row.insert("error".into(), e.to_string().into());
                    }
                    writeln!(out, "{row}")?;
                }
                eprintln!("fotovakt: {e}");
            }
        }
    }
    Ok(if failed { exit::FAILURE } else { exit::OK })
}

/// SIGINT or SIGTERM asks the agent to stop cleanly; a second one, a moment later, makes
/// it exit at once (a move cut short is recovered at the next start). A repeat within
/// [`SAME_STOP`] is the same request delivered twice (`timeout`, shells and service
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

fn time_text(ms: i64) -> String {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn until_text(until: Option<i64>) -> String {
    until.map(|u| format!(" until {}", time_text(u))).unwrap_or_default()
}
