//! What every command needs before it runs: logging, the config (with `--store` and
//! `--camera` applied), and the agent opened on a store that may or may not be created, or
//! the store opened read-only for the commands that only look.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

use super::args::{Cli, Command};
use super::format::io_reason;
use super::NoStore;
use crate::agent::{Agent, StoreReader};
use crate::config::Config;

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

/// Install the log subscriber on stderr (`FOTOVAKT_LOG` overrides the level).
pub(crate) fn init_tracing(cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FOTOVAKT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(log_filter(cli)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour_on_stderr());
    let _ = if cli.log_json { builder.json().try_init() } else { builder.compact().try_init() };
}

/// The config with `--store` and the command's `--camera` folders applied.
pub(crate) fn load_config(cli: &Cli, cameras: &[PathBuf]) -> Result<Config> {
    let mut config = Config::resolve(cli.config.as_deref())?;
    if let Some(s) = &cli.store {
        config.store = Some(s.clone());
    }
    config.cameras.extend(cameras.iter().cloned());
    Ok(config)
}

/// Whether a command may create the store it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreUse {
    /// `watch`, `scan`, `tag`, `session`: create it if it is not there, and say so once.
    Create,
    /// Everything else: refuse a store that does not exist, naming the path.
    Existing,
}

/// Whether the classifier is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Model {
    /// Load it (`watch`, `scan`, `tag`).
    Load,
    /// Commands that decide nothing do without it.
    Skip,
    /// `export`: no classifier, and no recovery at open (its reads never wait behind a move;
    /// its one write takes the move lock for a moment).
    Record,
}

/// The ledger's file name inside a store: a store exists when it has one.
const LEDGER_FILE: &str = "ledger.sqlite";

/// [`open_agent`] with the config as loaded for a command without `--camera`.
pub(crate) fn open(cli: &Cli, model: Model, store_use: StoreUse) -> Result<Agent> {
    open_agent(cli, load_config(cli, &[])?, model, store_use)
}

/// Open the agent on the configured store. The classifier is loaded only with
/// [`Model::Load`], and only after the store checks passed. With [`StoreUse::Existing`] a
/// store that does not exist is refused (after the placement check, whose refusal is the
/// more useful message), and on a terminal the store read is named on stderr.
pub(crate) fn open_agent(cli: &Cli, config: Config, model: Model, store_use: StoreUse) -> Result<Agent> {
    let dir = config.store_dir()?;
    let ledger = dir.join(LEDGER_FILE);
    let existed = ledger.is_file();
    // An empty ledger file is what a store that could not be created (a full disk) leaves.
    let in_use = ledger.metadata().is_ok_and(|m| m.len() > 0);
    if !existed && store_use == StoreUse::Existing {
        return Err(no_store(cli, &config, dir));
    }
    let agent = match model {
        Model::Load => Agent::open(config)?,
        Model::Skip => Agent::open_without_model(config)?,
        Model::Record => Agent::open_to_record(config)?,
    };
    // Said only now that the store is open: one that failed to open was not created.
    if !in_use {
        if cli.log_json {
            tracing::warn!(store = %dir.display(), "created a new store");
        } else {
            eprintln!("fotovakt: created a new store at {}", dir.display());
        }
    } else if store_use == StoreUse::Existing {
        name_store_read(cli, &dir);
    }
    Ok(agent)
}

/// Open the configured store read-only, for the commands that only look (`list`, `show`,
/// `stats`, `report`, `verify`, `serve-metrics`, `pending`): nothing created, no recovery, no lock, so
/// they answer at once while the watcher moves a file. A store that does not exist is
/// refused as by [`open_agent`] with [`StoreUse::Existing`].
pub(crate) fn open_reader(cli: &Cli) -> Result<StoreReader> {
    open_reader_with(cli, load_config(cli, &[])?)
}

/// [`open_reader`] with the config as loaded for a command with `--camera` (`pending`).
pub(crate) fn open_reader_with(cli: &Cli, config: Config) -> Result<StoreReader> {
    let dir = config.store_dir()?;
    if !dir.join(LEDGER_FILE).is_file() {
        return Err(no_store(cli, &config, dir));
    }
    let reader = StoreReader::open(config)?;
    name_store_read(cli, &dir);
    Ok(reader)
}

/// On a terminal, name the store a command read (on stderr).
fn name_store_read(cli: &Cli, dir: &Path) {
    if std::io::stderr().is_terminal() && !cli.log_json {
        eprintln!("fotovakt: store {}", dir.display());
    }
}

/// Why a command that does not create a store cannot run on `dir`, which has no ledger:
/// the placement check's refusal first (the more useful message), else where it looked.
fn no_store(cli: &Cli, config: &Config, dir: PathBuf) -> anyhow::Error {
    let cameras: Vec<PathBuf> = config.cameras.iter().map(|c| crate::quarantine::placement::resolve(c)).collect();
    if let Err(e) = crate::quarantine::placement::check(&dir, &cameras, &config.sync_roots) {
        return crate::quarantine::StoreError::from(e).into();
    }
    let origin = if cli.store.is_some() {
        "from --store"
    } else if config.store.is_some() {
        "from `store` in the config"
    } else {
        "the default; pass --store DIR or set `store` in the config"
    };
    if dir.exists() {
        return anyhow!("{} is not a fotovakt store (no {LEDGER_FILE} in it; {origin})", dir.display());
    }
    NoStore { path: dir, origin }.into()
}

/// Why a camera folder cannot be used, or `None` when it is a readable folder.
pub(crate) fn camera_problem(dir: &Path) -> Option<String> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Some(format!("cannot read camera folder {}: not a folder", dir.display())),
        Ok(_) => std::fs::read_dir(dir)
            .err()
            .map(|e| format!("cannot read camera folder {}: {}", dir.display(), io_reason(&e))),
        Err(e) => Some(format!("cannot read camera folder {}: {}", dir.display(), io_reason(&e))),
    }
}
