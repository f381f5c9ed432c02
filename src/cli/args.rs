//! The command line's shape: every command, its arguments and its `--help` text, and the
//! grouped command list. Parsing only validates; the command functions in the sibling
//! modules turn arguments into calls on the library.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// fotovakt keeps evidence photos out of personal cloud sync: it watches the camera folders,
/// decides on the device, and moves case material into a private quarantine store with a
/// tamper-evident chain-of-custody ledger.
///
/// The store is `--store DIR`, else `store` in the config, else the platform data dir
/// (`~/.local/share/fotovakt/store`). Only `watch`, `scan`, `tag`, `import` and `session` create it;
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

/// The commands as `fotovakt --help` lists them: for the service that runs on the device, for
/// officers, for admins. Every command is in exactly one group (a unit test checks).
pub(crate) const GROUPS: &[(&str, &[&str])] = &[
    ("Service (the agent on the device)", &["watch", "scan", "pending", "serve-metrics"]),
    ("Officers", &["tag", "import", "release", "session", "list", "show", "export"]),
    ("Admins", &["stats", "report", "verify", "verify-package", "ack", "purge", "anchor", "classify", "head"]),
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
    /// List the files in the camera folders that are not decided yet; decides and writes nothing.
    ///
    /// What the next `scan` (or the watcher's next reconcile) would handle. A photo decided
    /// as the officer's own is not listed, even once its decision was forgotten: the ledger
    /// keeps a keyed marker of it (see "What fotovakt keeps about an officer's own photos").
    #[command(verbatim_doc_comment)]
    Pending {
        /// Camera folder to look in (repeatable; adds to the config's `cameras`).
        #[arg(long, value_name = "DIR")]
        camera: Vec<PathBuf>,
        /// A JSON array of paths instead of one path per line.
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
    /// Bring evidence from a dedicated camera or an SD card into a case.
    ///
    /// Each file (folders are walked, media files only) is hashed on arrival and copied into
    /// the store, verified against that hash, with custody events: its source path and the
    /// camera's EXIF make, model and time. The source is left as it is, unless
    /// --remove-source: then it is removed once its copy is verified. The same bytes already
    /// in the case are not stored twice. A bad file gets one line on stderr and the rest go
    /// on (exit code 1 if any failed). A progress bar shows on a terminal.
    #[command(verbatim_doc_comment)]
    Import {
        /// Case ID the files belong to.
        #[arg(long, value_name = "ID")]
        case: String,
        /// Who imports them (default: $USER).
        #[arg(long, value_name = "NAME")]
        officer: Option<String>,
        /// Remove each source file once its copy in the store is verified.
        #[arg(long)]
        remove_source: bool,
        /// One JSON object per file instead of a summary.
        #[arg(long)]
        json: bool,
        /// Files or folders (a card's DCIM, say).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
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
        /// Every item (released, aborted, purged too), not only those in the store; a photo kept
        /// as the officer's own has no item.
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
    ///
    /// With --checkpoint, also prove that today's ledger still extends each signed checkpoint
    /// kept off the phone (from `stats --json`, the EMM's keyed app states, or
    /// STORE/ledger.checkpoint copied earlier): a ledger rolled back before it, or rewritten at
    /// or before it, is reported.
    #[command(verbatim_doc_comment)]
    Verify {
        /// One JSON object (`store`, `events`, `files`, `checkpoints`, `notes`, `problems`) instead of text.
        #[arg(long)]
        json: bool,
        /// A file of signed checkpoints: one JSON object, a `stats --json` output, a JSON array, or one per line (repeatable).
        #[arg(long, value_name = "FILE")]
        checkpoint: Vec<PathBuf>,
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
        /// Encrypt the package to this receiver's age public key (age1…; repeatable); PATH
        /// must then end in .zip.age. Only a holder of a matching identity can open it.
        #[arg(long = "to", value_name = "RECIPIENT")]
        to: Vec<String>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check a case package offline (no config, no store); non-zero exit on any problem.
    ///
    /// Checks the files, manifest, custody log and digest, and the device key's signature
    /// over the digest; prints the signer's key fingerprint. With --trust (or --trust-file)
    /// the package must be signed by one of those keys: a package rewritten and signed again
    /// by anyone else fails. An encrypted package (.age) needs the receiver's --identity.
    #[command(verbatim_doc_comment)]
    VerifyPackage {
        /// The package folder, .zip or .zip.age.
        path: PathBuf,
        /// A trusted device key's fingerprint (64 hex digits, as `stats` shows it; repeatable).
        #[arg(long, value_name = "FINGERPRINT")]
        trust: Vec<String>,
        /// A file of trusted fingerprints, one per line (the first word; `#` comments; repeatable).
        #[arg(long, value_name = "FILE")]
        trust_file: Vec<PathBuf>,
        /// The receiver's age identity file (AGE-SECRET-KEY-1…), to open an encrypted package.
        #[arg(long, value_name = "KEYFILE")]
        identity: Option<PathBuf>,
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
    /// Anchor the ledger again after `verify` found its head anchor missing or unreadable.
    ///
    /// Records a `head_anchored` event with the reason (how the store lost its head: restored
    /// from a backup without it, a file deleted by hand, damage) and writes the head at it.
    /// `verify` then lists it as a note. Refused while the head is there and readable.
    #[command(verbatim_doc_comment)]
    Anchor {
        /// Why the head was missing or unreadable (kept in the custody log).
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Who anchors it (default: $USER).
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
    /// Fit the case head to an agency's own labelled photos (`head fit`).
    Head {
        #[command(subcommand)]
        action: HeadAction,
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

#[derive(Debug, Subcommand)]
pub enum HeadAction {
    /// Fit a case head to labelled photos and write it with its cross-validation report.
    ///
    /// Each DIR holds a `labels.tsv` (tab-separated, a header row with at least `path`,
    /// `label` (case or personal) and `category`; more columns allowed) and the photos it
    /// names. With a `source_repo` column naming at least 3 sources (a case, a unit, a
    /// camera roll), the cross-validation leaves one source out at a time (10 folds over more
    /// than 20 sources); else it is per photo (stratified k-fold). The threshold is the
    /// highest that keeps the case recall asked for on those out-of-fold scores.
    ///
    /// The photos are read and decoded by the agent's own code (EXIF orientation, the same
    /// decoders, exact int8 kernels) with the model of the config (or --model); the head
    /// records that model's SHA-256, and the agent refuses it on any other model. Put it in
    /// place with `classifier.head` in the config (or managed configuration on Android).
    /// A row or photo that cannot be used gets one line on stderr and is left out (exit code
    /// 1 at the end, the head is still written); too few photos per category is an error.
    #[command(verbatim_doc_comment)]
    Fit {
        /// Labelled folder with a labels.tsv (repeatable).
        #[arg(long = "data", value_name = "DIR", required = true)]
        data: Vec<PathBuf>,
        /// Where to write the head (JSON); replaced atomically.
        #[arg(long, value_name = "HEAD.json")]
        out: PathBuf,
        /// Inverse strength of the L2 penalty.
        #[arg(long = "C", value_name = "C", default_value_t = 1.0)]
        c: f64,
        /// Case recall the threshold keeps on the out-of-fold scores.
        #[arg(long, value_name = "R", default_value_t = 0.98)]
        threshold_recall: f64,
        /// Views per photo (1: the agent's input only; up to 9 with mirrored, squashed,
        /// thumbnail-like, grey and cropped copies).
        #[arg(long, value_name = "N", default_value_t = 9)]
        views: usize,
        /// Per-photo CV folds (stratified by category).
        #[arg(long, value_name = "K", default_value_t = 5)]
        folds: usize,
        /// Per-photo CV repeats.
        #[arg(long, value_name = "N", default_value_t = 1)]
        repeats: usize,
        /// Grouped CV folds (0: leave one source out; default: that up to 20 sources, else 10).
        #[arg(long, value_name = "K")]
        group_folds: Option<usize>,
        /// Fewest usable photos per category.
        #[arg(long, value_name = "N", default_value_t = 5)]
        min_per_category: usize,
        /// Seed of the random views and folds.
        #[arg(long, value_name = "N", default_value_t = 7)]
        seed: u64,
        /// The model to embed with (default: the config's `classifier.model`).
        #[arg(long, value_name = "FILE")]
        model: Option<PathBuf>,
        /// Head whose feature groups and weapon/drug prior the new head uses (default: the
        /// config's `classifier.head`, else the shipped one).
        #[arg(long, value_name = "HEAD.json")]
        like: Option<PathBuf>,
        /// ONNX Runtime threads for embedding (default: the config's `classifier.threads`).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        /// Print one JSON object (what was fitted, the CV report) instead of text.
        #[arg(long)]
        json: bool,
    },
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

/// The officer named on the command line, else the logged-in user (`$USER`, `$LOGNAME`).
pub(crate) fn officer(given: &Option<String>) -> Option<String> {
    given.clone().or_else(|| std::env::var("USER").ok()).or_else(|| std::env::var("LOGNAME").ok())
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
}
