//! The agent's errors, typed so that callers branch on the variant, never on the text.
//!
//! Two tiers, as in watchexec: an [`Error`] stops the one operation it came from (one photo's
//! intake goes on to the next photo; an officer command exits non-zero), and a [`Refusal`] is
//! the agent declining a request that would break a custody rule or has nothing to act on, with
//! nothing changed. Every variant carries what it is about (path, item, case); I/O and open
//! failures keep their cause as `#[source]`. The Display texts are what the CLI prints and what
//! its tests read, so they stay stable.

use std::io;
use std::path::PathBuf;

use crate::classify::ClassifyError;
use crate::export::PackageError;
use crate::ledger::{ItemState, LedgerError};
use crate::quarantine::fsops::OpenError;
use crate::quarantine::{MoveError, MoveProblem, StoreError};

use super::OutcomeKind;

/// Errors of the agent's operations. Each names the file or item and the reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid (a usage error: the CLI exits with 2).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The store cannot be opened or used (placement, permissions, locking).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ledger failed (SQLite, the head file, an unknown item key).
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A move into or out of the store failed; the file is where the error says.
    #[error(transparent)]
    Move(#[from] MoveError),
    /// A case package could not be written or put in place.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The agent declined the request; nothing was changed.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// `path` could not be opened safely (a symlink, not a regular file, gone, unreadable).
    #[error("{path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: OpenError,
    },
    /// An I/O operation on `path` failed; `about` says what the agent was doing.
    #[error("{path}: {source}")]
    Io {
        about: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The classifier could not judge a video keyframe handed in by the Android shell.
    #[error("keyframe: {source}")]
    Keyframe {
        #[source]
        source: ClassifyError,
    },
    /// A report could not be written as JSON (`what` says which).
    #[error("{what}: cannot write it as JSON: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A file an officer tagged was not quarantined: intake ended with `kind` (rejected, to be
    /// retried, skipped) for the reason in `detail`; the file stays where it is.
    #[error("{path}: {detail}")]
    TagFailed { path: PathBuf, kind: OutcomeKind, detail: String },
    /// A file offered for import that is not evidence the agent can take: empty, not a photo or
    /// video by its content, over `max_file_bytes`, inside the store or a camera folder.
    #[error("{path}: {reason}")]
    NotEvidence { path: PathBuf, reason: String },
}

impl Error {
    pub(crate) fn io(about: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { about, path, source }
    }

    pub(crate) fn open(path: impl Into<PathBuf>) -> impl FnOnce(OpenError) -> Error {
        let path = path.into();
        move |source| Error::Open { path, source }
    }

    /// Did the store or the ledger's disk fail (full, an I/O error, read-only, locked), rather
    /// than the file, the request or the configuration? The watcher tries such a file again
    /// with backoff, and `watch` waits for a store it cannot open for such a reason.
    pub fn is_storage_failure(&self) -> bool {
        match self {
            Error::Store(StoreError::Io { .. } | StoreError::ReadOnly { .. }) | Error::Io { .. } => true,
            Error::Ledger(e) => e.is_storage_failure(),
            Error::Move(m) => matches!(m.what, MoveProblem::Io { .. } | MoveProblem::Occupied),
            _ => false,
        }
    }

    /// The refusal, when the agent declined the request.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Error::Refused(r) => Some(r),
            _ => None,
        }
    }
}

/// An output (a report) that could not be written or put in place: an I/O error naming the
/// path and what was being done, so every front end reports it as it reports other I/O.
impl From<crate::output::OutputError> for Error {
    fn from(e: crate::output::OutputError) -> Error {
        match e {
            crate::output::OutputError::Io { path, what, source } => Error::Io { about: what, path, source },
            crate::output::OutputError::Refused { path, about } => {
                Error::Io { about, path, source: io::Error::new(io::ErrorKind::AlreadyExists, about) }
            }
        }
    }
}

/// What a package or report is, in a refusal to write it somewhere unsafe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A case package (`export`).
    Package,
    /// The admin report (`report`).
    Report,
}

impl Output {
    fn what(self) -> &'static str {
        match self {
            Output::Package => "a case package",
            Output::Report => "the report",
        }
    }

    fn why(self) -> &'static str {
        match self {
            Output::Package => "an evidence package",
            Output::Report => "the quarantine statistics",
        }
    }
}

/// A request the agent declines, with nothing changed. Officer commands (tag, release,
/// sessions, export, ack) and the admin report are the callers; the variant says which rule
/// or missing thing stopped it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `tag`, `session start` and `export` need a non-empty case ID.
    #[error("a case ID is required")]
    CaseIdRequired,
    /// `release` needs a non-empty reason for the custody log.
    #[error("a reason is required to release an item")]
    ReasonRequired,
    /// `tag` was given a path outside every camera folder and the store.
    #[error("{path}: not in a camera folder or the store; refusing to touch it")]
    OutsideCameras { path: PathBuf },
    /// `release` was given a path (not an item number or hash) outside the store.
    #[error("{key}: not a file of the store; give an item number or hash")]
    NotAStorePath { key: String },
    /// A file of the store that no item row names.
    #[error("{name}: not an item of this store")]
    UnknownStoreFile { name: String },
    /// `release` of an item that is not in the store now.
    #[error("item {item} is {}; only quarantined items can be released", state.as_str())]
    NotQuarantined { item: i64, state: ItemState },
    /// `tag` of an item that is not in the store now (a kept photo is tagged by its path).
    #[error("item {item} is {}, not in the store; tag the file by its path instead", state.as_str())]
    TagNotInStore { item: i64, state: ItemState },
    /// A quarantined item without a store file name (a damaged ledger).
    #[error("item {item}: quarantined but has no store file; run `fotovakt verify`")]
    NoStoreFile { item: i64 },
    /// A release destination that differs from the path the item's hash-chained `intake`
    /// event recorded (an edited `items` row cannot redirect a release).
    #[error("item {item}: its original path does not match its intake event; run `fotovakt verify`")]
    OriginalPathMismatch { item: i64 },
    /// A release destination inside the store.
    #[error("item {item}: original path is inside the store")]
    OriginalInStore { item: i64 },
    /// A release destination outside the configured camera folders.
    #[error("item {item}: {path} is not in a configured camera folder; refusing to write there")]
    OriginalOutsideCameras { item: i64, path: PathBuf },
    /// The folder a release would write to no longer exists.
    #[error("{path}: original folder no longer exists; cannot release there")]
    OriginalFolderGone { path: PathBuf },
    /// An item adopted at recovery (its original path was lost with its ledger rows) goes
    /// to the first camera folder, and none is configured.
    #[error(
        "item {item} was recovered after a power cut and where it came from is unknown; it is released into the \
         first camera folder: set `cameras` in the config"
    )]
    ReleaseNeedsCamera { item: i64 },
    /// A session whose duration ended before it could be read back.
    #[error("session ended at once")]
    SessionEnded,
    /// An export destination that already holds something.
    #[error("{path}: already exists and is not empty; refusing to write over it")]
    TargetNotEmpty { path: PathBuf },
    /// A package or report destination in a camera folder or a synced or media-indexed place.
    #[error(
        "refusing to write {} to {path}: {reason} ({marker}); {} there could be synced or indexed: choose a \
         private folder",
        output.what(),
        output.why()
    )]
    OutputInSyncedPlace { output: Output, path: PathBuf, reason: String, marker: PathBuf },
    /// A package or report destination inside the store.
    #[error("{path}: inside the quarantine store; choose another folder")]
    OutputInStore { path: PathBuf },
    /// A report destination without a file name.
    #[error("{path}: not a file name")]
    NotAFileName { path: PathBuf },
    /// No item carries this case ID.
    #[error("case {case}: no item has this case ID")]
    UnknownCase { case: String },
    /// The case has items, but none is in the store (released or purged).
    #[error("case {case}: nothing to export: none of its {items} item(s) is in the store (released or purged)")]
    NothingInStore { case: String, items: usize },
    /// `ack` with every exported item already acknowledged.
    #[error("case {case}: every exported item in the store is already acknowledged")]
    AlreadyAcknowledged { case: String },
    /// `ack` of a case that was never exported.
    #[error("case {case}: nothing was exported yet; run `fotovakt export --case {case}` first")]
    NotExported { case: String },
    /// The store has no usable device key (the reason says why): packages are not written
    /// unsigned.
    #[error("no device key to sign with: {reason}")]
    NoDeviceKey { reason: String },
    /// `anchor` while the head anchor is there and readable: nothing to clear.
    #[error("the ledger's head anchor is there and readable; nothing to anchor again (`fotovakt verify` says more)")]
    HeadPresent,
}
