//! The command line: argument parsing, logging setup, and one small function per command
//! that calls the library and formats its answer. No business logic lives here.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
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
///
/// The store is `--store DIR`, else `store` in the config, else the platform data dir
/// (`~/.local/share/fotovakt/store`). Only `watch`, `scan`, `tag` and `session` create it;
/// every other command refuses a store that does not exist, naming the path it looked at.
/// The config is `--config FILE`, else `$FOTOVAKT_CONFIG`, else `~/.config/fotovakt/config.toml`.
///
/// Logs go to stderr: warnings and errors by default (`watch` and `serve-metrics` also log
/// INFO); `-v` INFO, `-vv` debug, `-vvv` trace; `FOTOVAKT_LOG` (an env-filter such as
/// `fotovakt=debug`) overrides. Colour only on a terminal and never with `NO_COLOR` set.
///
/// Exit codes: 0 ok, 1 failure (one line naming the file and the reason), 2 bad usage
/// (arguments or config). `fotovakt COMMAND --help` tells more about each command.
#[derive(Debug, Parser)]
#[command(name = "fotovakt", version, max_term_width = 100, verbatim_doc_comment)]
pub struct Cli {
    /// Config file (TOML). Default: $FOTOVAKT_CONFIG, else the platform config dir.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Quarantine store directory (overrides the config).
    #[arg(long, global = true, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// More log output: -v info, -vv debug, -vvv trace. Logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log as JSON lines (one object per line on stderr), for log collectors.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// How often `scan` looks again at a file that changed while it was handled, and how long it
/// waits before each look.
const SCAN_RETRY_PASSES: usize = 3;
const SCAN_RETRY_PAUSE: Duration = Duration::from_millis(300);

/// The commands as `fotovakt --help` lists them: for the service that runs on the device, for
/// officers, for admins. Every command is in exactly one group (a unit test checks).
const GROUPS: &[(&str, &[&str])] = &[
    ("Service (the agent on the device)", &["watch", "scan", "serve-metrics"]),
    ("Officers", &["tag", "release", "session", "list", "show", "export"]),
    ("Admins", &["stats", "report", "verify", "verify-package", "ack", "purge", "classify"]),
    ("Try it", &["demo"]),
];

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run until SIGINT/SIGTERM; reconcile at start, on watcher overflow, and on a timer.
    ///
    /// Reconciles the camera folders against the ledger at start, then handles every photo
    /// as it is finished (close-after-write or rename into the folder), reconciles again on a
    /// watcher overflow and every `reconcile_interval`. A first SIGINT/SIGTERM stops cleanly;
    /// a second one, a moment later, exits at once. Prints a JSON report when it stops. Logs
    /// INFO by default. A camera folder that does not exist is a usage error (exit 2) unless
    /// `--wait-for-cameras` or `wait_for_cameras = true` in the config says to wait for it.
    #[command(verbatim_doc_comment)]
    Watch {
        /// Camera folder to watch (repeatable; adds to the config's `cameras`).
        #[arg(long, value_name = "DIR")]
        camera: Vec<PathBuf>,
        /// Wait for camera folders that do not exist yet, instead of exiting 2.
        ///
        /// A new phone's camera app makes `DCIM/Camera` with its first photo: with this set, a
        /// missing folder is checked for every second and watched as soon as it appears. Same
        /// as `wait_for_cameras = true` in the config.
        #[arg(long, verbatim_doc_comment)]
        wait_for_cameras: bool,
    },
    /// One pass over what is in the camera folders now, then exit.
    ///
    /// Each file is decided and, if it is case material, moved into the store; a file that
    /// changes while it is handled is looked at again a few times. Prints a one-line summary
    /// (or, with --json, one JSON object per file). A camera folder that cannot be read is
    /// reported on one line and makes the exit code 1; the other folders are still scanned.
    /// Exit 2 if none can be read.
    #[command(verbatim_doc_comment)]
    Scan {
        /// Camera folder to scan (repeatable; adds to the config's `cameras`).
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
        /// Case ID the photo belongs to.
        #[arg(long, value_name = "ID")]
        case: String,
        /// Who tags it (default: $USER).
        #[arg(long, value_name = "NAME")]
        officer: Option<String>,
        /// A free-text note kept in the custody log.
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },
    /// Put a false positive back where it came from, audited.
    ///
    /// The file goes back to its original path (or `NAME-released-<item>.ext` beside it if
    /// that is taken); the ledger keeps the item, its decision and the reason.
    #[command(verbatim_doc_comment)]
    Release {
        /// Item number, hash prefix (≥ 6 hex digits) or store file.
        item: String,
        /// Why it is released (kept in the custody log).
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Who releases it (default: $USER).
        #[arg(long, value_name = "NAME")]
        officer: Option<String>,
    },
    /// Case sessions: everything shot while one is open is material of that case.
    Session {
        #[command(subcommand)]
        action: SessionAction,
    },
    /// List quarantined items (with --all, every decided item).
    List {
        /// Only items of this case.
        #[arg(long, value_name = "ID")]
        case: Option<String>,
        /// Every decided item (kept, released, aborted too), not only those in the store.
        #[arg(long)]
        all: bool,
        /// A JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One item with its custody log.
    Show {
        /// Item number (`42` or `#42`), hash prefix (≥ 6 hex digits) or store file.
        item: String,
        /// One JSON object (`store`, `item`, `events`) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Admin statistics: counts and durations only, never file names, GPS or content.
    Stats {
        /// Output format.
        #[arg(long, value_enum, value_name = "FORMAT", default_value_t = StatsFormat::Table)]
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
    ///
    /// Connections are served concurrently, without a thread each: a client that connects
    /// and says nothing (or reads nothing) is cut off after 5 s and cannot delay other
    /// scrapes; past a bound on open connections the oldest is dropped first.
    #[command(verbatim_doc_comment)]
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
        /// One JSON object (`store`, `events`, `files`, `problems`) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Export a case as a package (a directory, or a .zip): originals, manifest, custody log.
    Export {
        /// The case to export.
        #[arg(long, value_name = "ID")]
        case: String,
        /// Where to write it: a new (or empty) folder, or a file ending in .zip.
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
        /// Who exports it (default: $USER).
        #[arg(long, value_name = "NAME")]
        officer: Option<String>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check a case package offline (no config, no store); non-zero exit on any problem.
    VerifyPackage {
        /// The package folder or .zip.
        path: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Record that the receiving case file has the case's package (starts `exported_days`).
    Ack {
        /// The case whose package was received.
        #[arg(long, value_name = "ID")]
        case: String,
        /// Who confirms it (default: $USER).
        #[arg(long, value_name = "NAME")]
        officer: Option<String>,
    },
    /// Remove store files whose retention ran out (ledger rows and custody log are kept).
    Purge {
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Who runs it (default: $USER).
        #[arg(long, value_name = "NAME")]
        officer: Option<String>,
    },
    /// Run the classifier on files and print its scores; moves nothing, needs no store.
    ///
    /// Each file is read as the agent reads it (no symlinks, hashed first), then scored by
    /// the model. The `case` column says whether the score reaches the threshold. A file
    /// that cannot be scored gets one line on stderr with the reason, and exit code 1.
    #[command(verbatim_doc_comment)]
    Classify {
        /// One JSON object per file instead of a table.
        #[arg(long)]
        json: bool,
        /// Files to score.
        #[arg(required = true, value_name = "PATH")]
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
        /// The case everything shot during the session belongs to.
        #[arg(long, value_name = "ID")]
        case: String,
        /// How long it stays open (e.g. 2h, 90m); default: until `session stop`.
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Who opens it (default: $USER).
        #[arg(long, value_name = "NAME")]
        officer: Option<String>,
    },
    /// Close the open session.
    Stop,
    /// Show the open session, if any.
    Status,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum StatsFormat {
    /// Aligned text for a person.
    Table,
    /// One JSON object (the documented keys).
    Json,
    /// OpenMetrics text for Prometheus, ending with `# EOF`.
    Openmetrics,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (try 90m or 2h)"))
}

/// A mistake in how the program was called (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

/// The store a command that only reads would read does not exist (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("no store at {path} ({origin}); only `watch`, `scan`, `tag` and `session` create one")]
struct NoStore {
    path: PathBuf,
    origin: &'static str,
}

/// The command line with `--help`'s command list grouped by who uses each command.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let width = GROUPS.iter().flat_map(|(_, names)| names.iter()).map(|n| n.len()).max().unwrap_or(8);
    let mut list = String::new();
    for (title, names) in GROUPS {
        list.push_str(&format!("{title}:\n"));
        for name in names.iter() {
            let about =
                cmd.find_subcommand(name).and_then(|c| c.get_about()).map(|a| a.to_string()).unwrap_or_default();
            list.push_str(&format!("  {name:<width$}  {about}\n"));
        }
        list.push('\n');
    }
    list.push_str(&format!("  {:<width$}  Print this message or the help of the given command\n\n", "help"));
    let template =
        format!("{{before-help}}{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{list}Options:\n{{options}}{{after-help}}");
    cmd.help_template(template)
}

/// Parse arguments, run, map to an exit code.
pub fn main() -> ExitCode {
    use clap::FromArgMatches;
    let cli = match command().try_get_matches().and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_tracing(&cli);
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

/// The reason an I/O error gives, as a person reads it: `No such file or directory`, without
/// the `(os error 2)` the standard library appends.
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    }
}

/// Is colour wanted on stderr? Only on a terminal, and never with `NO_COLOR` set (no-color.org).
fn colour_on_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Log levels: one-shot commands log warnings and errors unless asked (-v info, -vv debug,
/// -vvv trace); the long-running ones (`watch`, `serve-metrics`) log INFO by default.
/// `classify` reports each file's problem on its own line, so the classifier's per-file
/// log lines (which would say the same thing again) stay below -v.
fn log_filter(cli: &Cli) -> String {
    let service = matches!(cli.command, Command::Watch { .. } | Command::ServeMetrics { .. });
    let level = match cli.verbose.max(u8::from(service)) {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    match (&cli.command, cli.verbose) {
        (Command::Classify { .. }, 0) => "fotovakt=warn,fotovakt::classify=error".into(),
        _ => format!("fotovakt={level}"),
    }
}

fn init_tracing(cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FOTOVAKT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(log_filter(cli)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour_on_stderr());
    let _ = if cli.log_json { builder.json().try_init() } else { builder.compact().try_init() };
}

fn load_config(cli: &Cli, cameras: &[PathBuf]) -> Result<Config> {
    let mut config = Config::resolve(cli.config.as_deref())?;
    if let Some(s) = &cli.store {
        config.store = Some(s.clone());
    }
    config.cameras.extend(cameras.iter().cloned());
    Ok(config)
}

/// Whether a command may create the store it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreUse {
    /// `watch`, `scan`, `tag`, `session`: create it if it is not there, and say so once.
    Create,
    /// Everything else: refuse a store that does not exist, naming the path.
    Existing,
}

/// Open the agent on the configured store. The classifier is loaded only with `model`, and
/// only after the store checks passed. With [`StoreUse::Existing`] a store that does not
/// exist is refused (after the placement check, whose refusal is the more useful message),
/// and on a terminal the store read is named on stderr.
fn open_agent(cli: &Cli, config: Config, model: bool, store_use: StoreUse) -> Result<Agent> {
    let dir = config.store_dir()?;
    let existed = dir.join(LEDGER_FILE).is_file();
    if !existed && store_use == StoreUse::Existing {
        let cameras: Vec<PathBuf> = config.cameras.iter().map(|c| crate::quarantine::placement::resolve(c)).collect();
        crate::quarantine::placement::check(&dir, &cameras, &config.sync_roots)
            .map_err(crate::quarantine::StoreError::from)?;
        let origin = if cli.store.is_some() {
            "from --store"
        } else if config.store.is_some() {
            "from `store` in the config"
        } else {
            "the default; pass --store DIR or set `store` in the config"
        };
        if dir.exists() {
            return Err(anyhow!("{} is not a fotovakt store (no {LEDGER_FILE} in it; {origin})", dir.display()));
        }
        return Err(NoStore { path: dir, origin }.into());
    }
    let agent = if model { Agent::open(config)? } else { Agent::open_without_model(config)? };
    if !existed {
        if cli.log_json {
            tracing::warn!(store = %dir.display(), "created a new store");
        } else {
            eprintln!("fotovakt: created a new store at {}", dir.display());
        }
    } else if store_use == StoreUse::Existing && std::io::stderr().is_terminal() && !cli.log_json {
        eprintln!("fotovakt: store {}", dir.display());
    }
    Ok(agent)
}

/// The ledger's file name inside a store: a store exists when it has one.
const LEDGER_FILE: &str = "ledger.sqlite";

/// Add `"store": DIR` to a JSON object, so that `--json` output names the store it read.
fn with_store(agent: &Agent, v: impl serde::Serialize) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(v)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("store".into(), agent.store().root().to_string_lossy().into_owned().into());
    }
    Ok(v)
}

/// Why a camera folder cannot be used, or `None` when it is a readable folder.
fn camera_problem(dir: &Path) -> Option<String> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Some(format!("cannot read camera folder {}: not a folder", dir.display())),
        Ok(_) => std::fs::read_dir(dir)
            .err()
            .map(|e| format!("cannot read camera folder {}: {}", dir.display(), io_reason(&e))),
        Err(e) => Some(format!("cannot read camera folder {}: {}", dir.display(), io_reason(&e))),
    }
}

fn officer(given: &Option<String>) -> Option<String> {
    given.clone().or_else(|| std::env::var("USER").ok()).or_else(|| std::env::var("LOGNAME").ok())
}

/// `s` shortened to at most `max` characters by cutting its middle (`/data/…/IMG_1.jpg`), so
/// a long path keeps its start and its file name and the table keeps its columns.
fn fit(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max || max < 5 {
        return s.to_string();
    }
    let tail = (max - 1) / 2 + (max - 1) % 2;
    let head = max - 1 - tail;
    let start: String = s.chars().take(head).collect();
    let end: String = s.chars().skip(n - tail).collect();
    format!("{start}…{end}")
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
            let agent = open_agent(&cli, load_config(&cli, &[])?, false, StoreUse::Existing)?;
            let r = agent.export(case, path, officer(o).as_deref())?;
            agent.flush()?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&with_store(&agent, &r)?)?)?;
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
            let agent = open_agent(&cli, load_config(&cli, &[])?, false, StoreUse::Existing)?;
            let r = agent.ack(case, officer(o).as_deref())?;
            agent.flush()?;
            writeln!(out, "case {}: receipt recorded for {} item(s)", r.case_id, r.items.len())?;
            Ok(exit::OK)
        }
        Command::Purge { dry_run, json, officer: o } => {
            let agent = open_agent(&cli, load_config(&cli, &[])?, false, StoreUse::Existing)?;
            let r = agent.purge(*dry_run, officer(o).as_deref())?;
            agent.flush()?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&with_store(&agent, &r)?)?)?;
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
        Command::Watch { camera, wait_for_cameras } => {
            let config = load_config(&cli, camera)?;
            if config.cameras.is_empty() {
                return Err(Usage("no camera folder: pass --camera DIR or set `cameras` in the config".into()).into());
            }
            // A mistyped folder is a usage error, found before the model loads; a folder that is
            // not there yet is waited for only when asked (the Android shell's DCIM/Camera).
            if !(*wait_for_cameras || config.wait_for_cameras) {
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
            let agent = open_agent(&cli, config, true, StoreUse::Create)?;
            let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
            spawn_signal_thread(stop_tx)?;
            let report = watch::run(&agent, &stop_rx, &watch::WatchOptions::default(), |_| {})?;
            writeln!(out, "{}", serde_json::to_string(&report)?)?;
            Ok(exit::OK)
        }
        Command::Scan { camera, json } => {
            let config = load_config(&cli, camera)?;
            if config.cameras.is_empty() {
                return Err(Usage("no camera folder: pass --camera DIR or set `cameras` in the config".into()).into());
            }
            // A camera folder that cannot be read is an error of this scan (the others are
            // still scanned), not "nothing new"; found before the model loads. If none can be
            // read there is nothing to scan: a usage error, like `watch`'s.
            let unreadable: Vec<String> = config.cameras.iter().filter_map(|c| camera_problem(c)).collect();
            if unreadable.len() == config.cameras.len() {
                for u in &unreadable[..unreadable.len() - 1] {
                    eprintln!("fotovakt: {u}");
                }
                return Err(Usage(unreadable[unreadable.len() - 1].clone()).into());
            }
            for u in &unreadable {
                eprintln!("fotovakt: {u}");
            }
            let agent = open_agent(&cli, config, true, StoreUse::Create)?;
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
            let agent = open_agent(&cli, load_config(&cli, &[])?, true, StoreUse::Create)?;
            let out_item = agent.tag(path, case, officer(o).as_deref(), note.as_deref())?;
            agent.flush()?;
            writeln!(out, "item {} tagged as case {case} (in the store)", out_item.item.unwrap_or_default())?;
            Ok(exit::OK)
        }
        Command::Release { item, reason, officer: o } => {
            let agent = open_agent(&cli, load_config(&cli, &[])?, false, StoreUse::Existing)?;
            let r = agent.release(item, reason, officer(o).as_deref())?;
            agent.flush()?;
            writeln!(out, "item {} released to {}", r.item.unwrap_or_default(), r.path)?;
            Ok(exit::OK)
        }
        Command::Session { action } => {
            let agent = open_agent(&cli, load_config(&cli, &[])?, false, StoreUse::Create)?;
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
            let agent = open_agent(&cli, load_config(&cli, &[])?, false, StoreUse::Existing)?;
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
                        fit(i.case_id.as_deref().unwrap_or("-"), 16),
                        i.quarantined_at_ms.map(time_text).unwrap_or_else(|| "-".into()),
                        i.original_path.display()
                    )?;
                }
            }
            Ok(exit::OK)
        }
        Command::Show { item, json } => {
            let agent = open_agent(&cli, load_config(&cli, &[])?, false, StoreUse::Existing)?;
            let ledger = agent.ledger();
            let it = ledger.find_item(item)?;
            let events = ledger.events_of(it.id)?;
            if *json {
                let v = with_store(&agent, serde_json::json!({"item": it, "events": events}))?;
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
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
            let agent = open_agent(&cli, load_config(&cli, &[])?, false, StoreUse::Existing)?;
            let s = agent.stats(*by_case)?;
            match format {
                StatsFormat::Table => write!(out, "{}", stats::table(&s))?,
                StatsFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?,
                StatsFormat::Openmetrics => write!(out, "{}", stats::openmetrics(&s))?,
            }
            Ok(exit::OK)
        }
        Command::Report { out: path } => {
            let agent = open_agent(&cli, load_config(&cli, &[])?, false, StoreUse::Existing)?;
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
            let agent = open_agent(&cli, load_config(&cli, &[])?, false, StoreUse::Existing)?;
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
            let agent = open_agent(&cli, load_config(&cli, &[])?, false, StoreUse::Existing)?;
            let v = agent.verify()?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&with_store(&agent, &v)?)?)?;
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

/// Widest the `classify` table's file column gets; longer paths are cut in the middle.
const CLASSIFY_PATH_WIDTH: usize = 48;

/// Why `classify` could not score a file, as one person-readable reason.
fn classify_reason(e: &classify::ClassifyError) -> String {
    match e {
        classify::ClassifyError::Unsupported(what) => format!("not an image: {what}"),
        other => other.to_string(),
    }
}

fn open_reason(e: &crate::quarantine::fsops::OpenError) -> String {
    use crate::quarantine::fsops::OpenError;
    match e {
        // `classify` is handed a path; "vanished" would suggest it once was there.
        OpenError::Vanished => io_reason(&std::io::Error::from_raw_os_error(libc::ENOENT)),
        OpenError::Io(e) => io_reason(e),
        other => other.to_string(),
    }
}

fn classify_cmd(cli: &Cli, paths: &[PathBuf], json: bool, out: &mut dyn Write) -> Result<u8> {
    let config = Config::resolve(cli.config.as_deref())?;
    let mut classifier = classify::Classifier::load(&config.classifier).context("classifier")?;
    let threshold_override = config.policy.threshold;
    let shown: Vec<String> = paths.iter().map(|p| fit(&p.display().to_string(), CLASSIFY_PATH_WIDTH)).collect();
    let width = shown.iter().map(|s| s.chars().count()).max().unwrap_or(0).max(4);
    let mut header_done = json;
    let mut failed = false;
    for (p, shown) in paths.iter().zip(&shown) {
        // Read as the agent does (no symlinks, hash first), then what it is and its EXIF, then
        // the model: each file gets one line, with whatever could be learnt before an error.
        let read = crate::quarantine::fsops::open_regular(p).map_err(|e| open_reason(&e)).and_then(|(f, _)| {
            crate::quarantine::fsops::hash_fd(&f, Some(config.max_image_bytes)).map_err(|e| io_reason(&e))
        });
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
                (facts, classifier.assess(&bytes).map_err(|e| classify_reason(&e)))
            }
            Ok((sha, size, None)) => (
                serde_json::json!({"sha256": sha}),
                Err(format!("{size} bytes, larger than max_image_bytes ({})", config.max_image_bytes)),
            ),
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
            }
            Err(reason) => {
                failed = true;
                let message = format!("{}: {reason}", p.display());
                if json {
                    if let Some(row) = row.as_object_mut() {
                        row.insert("error".into(), message.clone().into());
                    }
                    writeln!(out, "{row}")?;
                }
                eprintln!("fotovakt: {message}");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_in_exactly_one_help_group() {
        use clap::CommandFactory;
        let listed: Vec<&str> = GROUPS.iter().flat_map(|(_, names)| names.iter().copied()).collect();
        let mut commands: Vec<String> = Cli::command().get_subcommands().map(|c| c.get_name().to_string()).collect();
        commands.sort();
        let mut sorted: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
        sorted.sort();
        assert_eq!(sorted, commands, "GROUPS lists each command once");
        command().debug_assert();
    }

    #[test]
    fn long_text_is_cut_in_the_middle() {
        assert_eq!(fit("short", 10), "short");
        let cut = fit("/data/a-very-long-folder/IMG_20261201.jpg", 20);
        assert_eq!(cut.chars().count(), 20);
        assert!(cut.starts_with("/data/a") && cut.ends_with("01.jpg") && cut.contains('…'), "{cut}");
    }

    #[test]
    fn io_reasons_read_as_a_person_writes_them() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(io_reason(&e), "No such file or directory");
    }
}
