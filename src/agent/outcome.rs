//! What happened to one file: the [`Outcome`] that `scan`, `demo`, the watcher's log and the
//! Android bridge report, built here from a fresh decision or from an earlier one in the ledger.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::ledger::{Item, ItemState};
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
    /// Changed or vanished while being handled: left in place; it will be looked at again.
    Retry,
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
        }
    }

    pub(super) fn simple(path: &Path, kind: OutcomeKind, detail: impl Into<String>, started: Instant) -> Outcome {
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
        }
    }
}
