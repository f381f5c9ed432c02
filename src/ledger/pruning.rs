//! Does each `forgotten` event fit its item?
//!
//! A pruned row keeps its hash, kind, item and time, so a checkpoint still holds after
//! pruning. A writer of the ledger could therefore append a `forgotten` event of its own after
//! the newest checkpoint and erase the data of older rows, a case photo's intake for one, and
//! the chain would still check. What the agent forgets is narrow, though, and the kinds and
//! times it leaves in every row are enough to tell its forgetting from such a forgery:
//!
//! * **Case material is never forgotten.** An item whose rows show it reached the store or a
//!   case (quarantined, imported, exported, acknowledged, purged, released) is never
//!   forgotten as the officer's own photo (`decided_personal`, `upgrade`); those reasons apply
//!   only to an item whose row is gone too (it became a keyed personal record).
//! * **A correction runs out only after a release**: `correction_expired` needs a `released`
//!   row of the item before it, at least the shortest `keep_corrections` allowed before it; it
//!   prunes only the kinds that repeat the released photo's personal data (never the rows of its
//!   time in the store); and never an item that was exported or acknowledged (handed-off
//!   evidence stays whole).
//!
//! `stashed` and `returned` rows are the item's like any other: they follow the same rules.
//! A `forgotten` event that does not fit is a [`Problem::ForgottenDoesNotFit`].

use std::collections::BTreeMap;
use std::fmt;

use super::chain::{Problem, RawEvent};
use super::events::{Event, ForgetReason};
use super::privacy::RELEASED_PERSONAL_KINDS;

/// Kinds that show an item was case material: it reached the store or a case. An item with one
/// of these is never forgotten as a personal photo. (`tagged` is not one: a tag of a camera file
/// whose move a power cut undid leaves the photo where it was, to be judged again.)
pub const CASE_KINDS: [&str; 12] = [
    "quarantined",
    "original_kept",
    "original_removed",
    "adopted",
    "imported",
    "release_requested",
    "released",
    "release_failed",
    "release_rolled_back",
    "export",
    "ack",
    "purge",
];

/// Kinds that show an item was handed off as evidence: never forgotten, released or not.
const HANDED_OFF_KINDS: [&str; 3] = ["export", "ack", "purge"];

/// The shortest `keep_corrections` the configuration allows (`privacy.keep_corrections`).
pub const MIN_KEEP_CORRECTIONS_MS: i64 = 1_000;

/// Why a `forgotten` event does not fit its item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misfit {
    /// The item is case material (event `seq` of kind `kind` shows it), yet it was forgotten as
    /// the officer's own photo.
    CaseMaterial { seq: i64, kind: String },
    /// Forgotten as the officer's own photo, yet its item row is still there.
    ItemRowLeft,
    /// Forgotten because its correction ran out, yet no `released` event of it comes before.
    NotReleased,
    /// Forgotten `after_ms` after its release: sooner than any `keep_corrections` allows.
    TooSoon { after_ms: i64 },
    /// Forgotten because its correction ran out, yet it was handed off (event `seq`, `kind`).
    HandedOff { seq: i64, kind: String },
    /// A correction's expiry pruned event `seq` of kind `kind`, which it never prunes.
    KindNotPrunable { seq: i64, kind: String },
}

impl fmt::Display for Misfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misfit::CaseMaterial { seq, kind } => {
                write!(f, "the item is case material (event {seq}: {kind}), never forgotten as a personal photo")
            }
            Misfit::ItemRowLeft => write!(f, "forgotten as a personal photo, yet its item row is still there"),
            Misfit::NotReleased => write!(f, "its correction cannot have run out: it was never released before"),
            Misfit::TooSoon { after_ms } => write!(
                f,
                "forgotten {after_ms} ms after its release, sooner than any keep_corrections allows ({MIN_KEEP_CORRECTIONS_MS} ms)"
            ),
            Misfit::HandedOff { seq, kind } => {
                write!(f, "the item was handed off (event {seq}: {kind}); its events are never forgotten")
            }
            Misfit::KindNotPrunable { seq, kind } => {
                write!(f, "event {seq} ({kind}) is not one a correction's expiry prunes")
            }
        }
    }
}

/// One `forgotten` event as the check needs it.
#[derive(Debug, Clone)]
struct Forgetting {
    seq: i64,
    at_ms: i64,
    reason: ForgetReason,
    pruned: Vec<i64>,
}

/// What the rows of one item say: (`seq`, `kind`, `at_ms`) of each, and its `forgotten` events.
#[derive(Debug, Clone, Default)]
struct ItemRows {
    rows: Vec<(i64, String, i64)>,
    forgotten: Vec<Forgetting>,
}

/// The rows of every item, gathered as a chain check walks them.
#[derive(Debug, Clone, Default)]
pub(super) struct Fits {
    items: BTreeMap<i64, ItemRows>,
}

impl Fits {
    /// Note one row of an item (pruned or not), and its event where it reads as one.
    pub(super) fn row(&mut self, row: &RawEvent, event: Option<&Event>) {
        let Some(item) = row.item else { return };
        let rows = self.items.entry(item).or_default();
        rows.rows.push((row.seq, row.kind.clone(), row.at_ms));
        if let Some(Event::Forgotten { reason, pruned, .. }) = event {
            rows.forgotten.push(Forgetting { seq: row.seq, at_ms: row.at_ms, reason: *reason, pruned: pruned.clone() });
        }
    }

    /// An item row is there: it must not have been forgotten as a personal photo.
    pub(super) fn row_left(&self, item: i64) -> Option<Problem> {
        let f = self.items.get(&item)?.forgotten.iter().find(|f| f.reason != ForgetReason::CorrectionExpired)?;
        Some(Problem::ForgottenDoesNotFit { seq: f.seq, item, reason: f.reason, misfit: Misfit::ItemRowLeft })
    }

    /// Every `forgotten` event that does not fit its item.
    pub(super) fn finish(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (item, rows) in &self.items {
            for f in &rows.forgotten {
                if let Some(misfit) = misfit(rows, f) {
                    problems.push(Problem::ForgottenDoesNotFit { seq: f.seq, item: *item, reason: f.reason, misfit });
                }
            }
        }
        problems
    }
}

/// Why `f` does not fit the item `rows` describe, if it does not.
fn misfit(rows: &ItemRows, f: &Forgetting) -> Option<Misfit> {
    let find = |kinds: &[&str]| rows.rows.iter().find(|(_, k, _)| kinds.contains(&k.as_str()));
    match f.reason {
        ForgetReason::DecidedPersonal | ForgetReason::Upgrade => {
            find(&CASE_KINDS).map(|(seq, kind, _)| Misfit::CaseMaterial { seq: *seq, kind: kind.clone() })
        }
        ForgetReason::CorrectionExpired => {
            if let Some((seq, kind, _)) = find(&HANDED_OFF_KINDS) {
                return Some(Misfit::HandedOff { seq: *seq, kind: kind.clone() });
            }
            let released = rows.rows.iter().filter(|(s, k, _)| *s < f.seq && k == "released").map(|r| r.2).max();
            let Some(released_at) = released else { return Some(Misfit::NotReleased) };
            if f.at_ms - released_at < MIN_KEEP_CORRECTIONS_MS {
                return Some(Misfit::TooSoon { after_ms: f.at_ms - released_at });
            }
            rows.rows
                .iter()
                .find(|(s, k, _)| f.pruned.contains(s) && !RELEASED_PERSONAL_KINDS.contains(&k.as_str()))
                .map(|(seq, kind, _)| Misfit::KindNotPrunable { seq: *seq, kind: kind.clone() })
        }
    }
}
