//! The command line: `main` parses the arguments, sets up logging and calls [`try_main`],
//! which hands each command to one small function (in [`service`], [`officer`] and
//! [`admin`]) that calls the library and formats its answer. No business logic lives here.
//!
//! Exit codes are decided once, at the end of [`main`] (ripgrep's pattern): an error that
//! stops the command is printed as one line and gives 1, or 2 for bad usage; a problem that
//! does not stop it (one file of many that could not be scored, a camera folder that cannot
//! be read, a chain mismatch) is printed where it is found and raises [`set_errored`], which
//! makes a command that ran to its end exit 1.
//!
//! Durability is the library's: every officer operation and [`crate::agent::Agent::scan`]
//! end with the agent's durability barrier before they return, so no command here flushes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{anyhow, Result};

/// Print one `fotovakt: …` line on stderr for a problem the command goes on after, and raise
/// the error flag so that the exit code says something went wrong. Defined before the
/// command modules, so it is in scope in all of them.
macro_rules! err_message {
    ($($tt:tt)*) => {{
        $crate::cli::set_errored();
        eprintln!("fotovakt: {}", format_args!($($tt)*));
    }};
}

mod admin;
mod args;
mod format;
mod head;
mod import;
mod officer;
mod service;
mod setup;

pub use args::{command, Cli, Command, HeadAction, SessionAction, StatsFormat};

/// Exit codes: 0 ok, 1 failure, 2 bad usage.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
}

/// Set when a command reported a problem and went on; decides exit code 1 at the end.
static ERRORED: AtomicBool = AtomicBool::new(false);

/// Remember that something went wrong (the command goes on; its exit code will be 1).
pub(crate) fn set_errored() {
    ERRORED.store(true, Ordering::SeqCst);
}

/// Did a command report a problem and go on?
fn errored() -> bool {
    ERRORED.load(Ordering::SeqCst)
}

/// A mistake in how the program was called (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Usage(pub(crate) String);

/// The store a command that only reads would read does not exist (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("no store at {path} ({origin}); only `watch`, `scan`, `tag` and `session` create one")]
pub(crate) struct NoStore {
    pub(crate) path: PathBuf,
    pub(crate) origin: &'static str,
}

/// Parse arguments, run, map to an exit code.
pub fn main() -> ExitCode {
    use clap::FromArgMatches;
    let cli = match command().try_get_matches().and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    setup::init_tracing(&cli);
    let code = match try_main(&cli) {
        Ok(()) if errored() => exit::FAILURE,
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("fotovakt: {}", one_line(&e));
            exit_code_of(&e)
        }
    };
    ExitCode::from(code)
}

/// Run the command: one function per command, each writing its answer to stdout.
fn try_main(cli: &Cli) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    let out: &mut dyn Write = &mut stdout;
    match &cli.command {
        Command::Watch { camera, wait_for_cameras } => service::watch(cli, camera, *wait_for_cameras, out),
        Command::Scan { camera, json } => service::scan(cli, camera, *json, out),
        Command::Pending { camera, json } => service::pending(cli, camera, *json, out),
        Command::ServeMetrics { listen, allow_remote } => service::serve_metrics(cli, listen, *allow_remote, out),
        Command::Tag { path, case, officer, note } => officer::tag(cli, path, case, officer, note.as_deref(), out),
        Command::Import { case, officer, remove_source, json, paths } => {
            import::run(cli, case, officer, *remove_source, *json, paths, out)
        }
        Command::Release { item, reason, officer } => officer::release(cli, item, reason, officer, out),
        Command::Session { action } => officer::session(cli, action, out),
        Command::List { case, all, json } => officer::list(cli, case.as_deref(), *all, *json, out),
        Command::Show { item, json } => officer::show(cli, item, *json, out),
        Command::Export { case, out: path, officer, to, json } => {
            officer::export(cli, case, path, officer, to, *json, out)
        }
        Command::Stats { format, by_case } => admin::stats(cli, *format, *by_case, out),
        Command::Report { out: path } => admin::report(cli, path, out),
        Command::Verify { json, checkpoint } => admin::verify(cli, *json, checkpoint, out),
        // Offline: needs neither the config nor a store.
        Command::VerifyPackage { path, trust, trust_file, identity, json } => admin::verify_package(
            path,
            &admin::Receiver { trust, trust_file, identity: identity.as_deref() },
            *json,
            out,
        ),
        Command::Anchor { reason, officer } => admin::anchor(cli, reason, officer, out),
        Command::Ack { case, officer } => admin::ack(cli, case, officer, out),
        Command::Purge { dry_run, json, officer } => admin::purge(cli, *dry_run, *json, officer, out),
        Command::Classify { json, paths } => admin::classify(cli, paths, *json, out),
        Command::Head { action } => head::run(cli, action, out),
        Command::Demo { keep } => crate::demo::run(out, *keep).map_err(|e| anyhow!("demo: {e}")),
    }
}

/// Exit code of an error that stopped the command, from its type and variant (never its
/// text): 2 for bad usage (arguments, config), else 1. A refusal (the agent declined: no case
/// ID, an item not in the store, an unsafe destination) changed nothing and exits 1 like any
/// other failure; its message is the refusal's own text.
fn exit_code_of(e: &anyhow::Error) -> u8 {
    use crate::agent::Error;
    if e.downcast_ref::<Usage>().is_some() || e.downcast_ref::<crate::config::ConfigError>().is_some() {
        return exit::USAGE;
    }
    match e.downcast_ref::<Error>() {
        Some(Error::Config(_)) => exit::USAGE,
        Some(
            Error::Refused(_)
            | Error::Store(_)
            | Error::Ledger(_)
            | Error::Move(_)
            | Error::Package(_)
            | Error::Open { .. }
            | Error::Io { .. }
            | Error::Keyframe { .. }
            | Error::Json { .. }
            | Error::TagFailed { .. }
            | Error::NotEvidence { .. },
        )
        | None => exit::FAILURE,
    }
}

/// An error and its causes on one line, each cause once (`a: b: c`).
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{Error, Refusal};

    #[test]
    fn the_exit_code_follows_the_error_type_not_its_text() {
        assert_eq!(exit_code_of(&Usage("no camera folder".into()).into()), exit::USAGE);
        let config = crate::config::Config::from_toml_str("surprise = 1\n", std::path::Path::new("/x.toml"))
            .expect_err("an unknown key is refused");
        assert_eq!(exit_code_of(&anyhow::Error::from(Error::Config(config))), exit::USAGE);
        // A refusal whose text mentions "config" is still a refusal: exit 1.
        let refused = Error::from(Refusal::NotExported { case: "config".into() });
        assert_eq!(exit_code_of(&refused.into()), exit::FAILURE);
        assert_eq!(exit_code_of(&anyhow!("anything else")), exit::FAILURE);
    }

    #[test]
    fn one_line_names_each_cause_once() {
        let e = anyhow::Error::from(std::io::Error::other("disk full")).context("writing x.zip");
        assert_eq!(one_line(&e), "writing x.zip: disk full");
        let e = anyhow!("a\nb");
        assert_eq!(one_line(&e), "a b");
    }
}
