//! The item row and the custody events of a decision: `intake` (the file as hashed),
//! `stashed` (where it waited, out of sight, while it was judged) or `imported` (where it came
//! from, for evidence that never was in a camera folder), `decided`, and an officer's
//! `tagged`.

use crate::classify::Assessment;
use crate::ledger::{Event, Item, ItemState, NewItem, Tx};
use crate::policy::Verdict;

use super::commit::Tag;
use super::intake::Facts;
use super::Error;

/// The item row and its `intake`, `decided` (and `tagged`) events: a new item, or `earlier`
/// decided again (an officer's tag of a kept photo, a held photo with access back).
#[allow(clippy::too_many_arguments)]
pub(super) fn record(
    tx: &mut Tx<'_>,
    f: &Facts<'_>,
    verdict: &Verdict,
    assessment: Option<&Assessment>,
    tag: Option<&Tag<'_>>,
    state: ItemState,
    earlier: Option<&Item>,
    arrival: Option<&Event>,
) -> Result<i64, Error> {
    let tags: Vec<String> = tag.and_then(|t| t.note).map(|n| vec![n.to_string()]).unwrap_or_default();
    let item = if let Some(earlier) = earlier {
        if earlier.sha256 != f.sha256 {
            tx.set_sha256(earlier.id, &f.sha256)?;
            let rehashed = Event::Rehashed {
                sha256: f.sha256.clone(),
                previous_sha256: earlier.sha256.clone(),
                reason: "read again with media-location access; the earlier read was altered".into(),
            };
            tx.record(Some(earlier.id), &rehashed)?;
        }
        tx.redecide_item(
            earlier.id,
            state,
            verdict.action.as_str(),
            verdict.source.as_str(),
            &verdict.rule,
            verdict.case_id.as_deref(),
            tag.and_then(|t| t.officer),
            &tags,
        )?;
        stashed(tx, f, earlier.id)?;
        earlier.id
    } else {
        let item = tx.insert_item(&new_item(f, verdict, assessment, tag, state, &tags))?;
        let intake = Event::Intake {
            sha256: f.sha256.clone(),
            size: f.id.size,
            kind: f.kind.as_str().into(),
            path: f.path.to_string_lossy().into_owned(),
            mtime_ns: f.id.mtime_ns,
            first_seen_ms: f.first_seen,
        };
        tx.record(Some(item), &intake)?;
        stashed(tx, f, item)?;
        if let Some(e) = arrival {
            tx.record(Some(item), e)?;
        }
        item
    };
    let decided = Event::Decided {
        state,
        action: verdict.action,
        source: verdict.source.into(),
        rule: verdict.rule.clone(),
        case_id: verdict.case_id.clone(),
        score: assessment.map(|a| a.case_score),
    };
    tx.record(Some(item), &decided)?;
    if let Some(t) = tag {
        tx.record(Some(item), &tagged(t.case, t.officer, t.note))?;
        if let Some(a) = assessment.filter(|a| !a.embedding.is_empty()) {
            tx.add_correction(item, true, &a.embedding)?;
        }
    }
    Ok(item)
}

/// The `stashed` event of a file judged in staging, on `item`, and its stash row linked to
/// the item: once per stash (a file that waits in staging for the store and is tried again
/// from there was recorded at its first try).
pub(super) fn stashed(tx: &mut Tx<'_>, f: &Facts<'_>, item: i64) -> Result<(), Error> {
    if let Some(s) = f.staged.filter(|s| s.item != Some(item)) {
        let stashed = Event::Stashed { staging: s.at.to_string_lossy().into_owned(), stashed_at_ms: s.at_ms };
        tx.record(Some(item), &stashed)?;
        tx.link_stash(s.row, item, &f.sha256)?;
    }
    Ok(())
}

/// The row of a file seen for the first time.
fn new_item<'a>(
    f: &'a Facts<'_>,
    verdict: &'a Verdict,
    assessment: Option<&'a Assessment>,
    tag: Option<&Tag<'a>>,
    state: ItemState,
    tags: &'a [String],
) -> NewItem<'a> {
    NewItem {
        sha256: &f.sha256,
        size: f.id.size,
        original_path: f.path,
        kind: f.kind.as_str(),
        capture_time: f.exif.capture_time.map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string()),
        gps: f.exif.gps,
        file_mtime_ns: Some(f.id.mtime_ns),
        first_seen_ms: f.first_seen,
        state,
        action: verdict.action.as_str(),
        source: verdict.source.as_str(),
        rule: &verdict.rule,
        score: assessment.map(|a| a.case_score),
        case_id: verdict.case_id.as_deref(),
        officer: tag.and_then(|t| t.officer),
        tags,
        embedding: assessment.map(|a| a.embedding.as_slice()).filter(|e| !e.is_empty()),
    }
}

/// An officer's tag, as the custody log records it.
pub(super) fn tagged(case: &str, officer: Option<&str>, note: Option<&str>) -> Event {
    Event::Tagged { case_id: case.into(), officer: officer.map(str::to_string), note: note.map(str::to_string) }
}
