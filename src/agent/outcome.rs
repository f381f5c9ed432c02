//! What happened to one file: the [`Outcome`] that `scan`, `demo`, the watcher's log and the
//! Android bridge report, built here from a fresh decision or from an earlier one in the ledger.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::ledger::{Item, ItemState, PersonalRecord};
use crate::policy;

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeKind {
    /// Moved into the store, verified.
    Quarantined,
    /// Decided not case material, left where it is.
    Kept,
    /// Not considered: not a media name, already decided, or gone before it could be read.
    Skipped,
    /// Bad input (symlink, FIFO, empty, too large, unreadable): left alone, logged, recorded.
    Rejected,
    /// Not finished: left in place; it will be looked at again ([`Outcome::retry`] says why).
    Retry,
}

/// Why a file was left for another look ([`OutcomeKind::Retry`]). The watcher settles a busy
/// file again and backs off from the others; `scan` looks again only at busy ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RetryCause {
    /// Still being written, or changed while it was read or moved.
    Busy,
    /// The store or the ledger could not take it (full, an I/O error, read-only, locked).
    Store,
    /// Something else about this file failed.
    Failed,
}

/// The result of handling one file, as printed by `demo`/`scan` and returned to Android.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub path: String,
    pub kind: OutcomeKind,
    pub item: Option<i64>,
    pub sha256: Option<String>,
    pub source: Option<policy::Source>,
    pub case_id: Option<String>,
    pub rule: Option<String>,
    pub score: Option<f32>,
    /// Milliseconds from the start of handling to the verified move (or decision).
    pub handle_ms: f64,
    pub detail: Option<String>,
    /// It was out of sight in staging while it was judged and is back in the camera folder at
    /// this path (its own, or `NAME-returned-N.ext` if that was taken meanwhile). On Android
    /// the shell asks MediaStore to scan it: MediaProvider marks a file renamed out of a hidden
    /// folder pending until it is scanned again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub returned_to: Option<String>,
    /// Why a [`OutcomeKind::Retry`] was left for later; `None` for every other kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryCause>,
}

impl Outcome {
    /// The outcome an earlier decision on `item` stands for.
    pub(super) fn of_item(item: &Item, detail: &str, started: Instant) -> Outcome {
        let kind = match item.state {
            ItemState::Quarantined | ItemState::Moving | ItemState::Purged | ItemState::OriginalKept => {
                OutcomeKind::Quarantined
            }
            ItemState::Kept | ItemState::Released | ItemState::Releasing | ItemState::Held => OutcomeKind::Kept,
            ItemState::Aborted => OutcomeKind::Retry,
        };
        let retry = (kind == OutcomeKind::Retry).then_some(RetryCause::Failed);
        let released = matches!(item.state, ItemState::Released | ItemState::Releasing);
        let (source, rule) = if released {
            (Some(policy::Source::Released), "released by an officer".to_string())
        } else {
            (policy::Source::parse(item.source.as_str()), item.rule.clone())
        };
        Outcome {
            path: item.original_path.to_string_lossy().into_owned(),
            kind,
            item: Some(item.id),
            sha256: Some(item.sha256.clone()),
            source,
            case_id: item.case_id.clone(),
            rule: Some(rule),
            score: item.score,
            handle_ms: started.elapsed().as_secs_f64() * 1e3,
            detail: Some(detail.to_string()),
            returned_to: None,
            retry,
        }
    }

    /// The outcome an earlier personal decision stands for: kept, with no item number, hash
    /// or rule (the ledger has none of them), and the day if the record still has it.
    pub(super) fn of_personal(path: &Path, p: &PersonalRecord, detail: &str, started: Instant) -> Outcome {
        let rule = match (p.state, &p.day) {
            (Some(ItemState::Held), _) => "held: to be decided again once media-location access is back".to_string(),
            (Some(_), Some(day)) => format!("decided on {day} as the officer's own (a keyed record only)"),
            _ => "decided earlier as the officer's own; the decision itself has been forgotten".to_string(),
        };
        Outcome {
            path: path.to_string_lossy().into_owned(),
            kind: OutcomeKind::Kept,
            item: None,
            sha256: None,
            source: p.source.and_then(|s| policy::Source::parse(s.as_str())),
            case_id: None,
            rule: Some(rule),
            score: None,
            handle_ms: started.elapsed().as_secs_f64() * 1e3,
            detail: Some(detail.to_string()),
            returned_to: None,
            retry: None,
        }
    }

    pub(super) fn simple(path: &Path, kind: OutcomeKind, detail: impl Into<String>, started: Instant) -> Outcome {
        let retry = (kind == OutcomeKind::Retry).then_some(RetryCause::Failed);
        Outcome {
            path: path.to_string_lossy().into_owned(),
            kind,
            item: None,
            sha256: None,
            source: None,
            case_id: None,
            rule: None,
            score: None,
            handle_ms: started.elapsed().as_secs_f64() * 1e3,
            detail: Some(detail.into()),
            returned_to: None,
            retry,
        }
    }

    /// A file left for another look, and why.
    pub(super) fn later(path: &Path, cause: RetryCause, detail: impl Into<String>, started: Instant) -> Outcome {
        Outcome { retry: Some(cause), ..Outcome::simple(path, OutcomeKind::Retry, detail, started) }
    }
}
