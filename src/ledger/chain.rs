//! The hash chain and the one checker of it.
//!
//! Every `events` row's `hash` is SHA-256 over its own fields and the previous row's hash.
//! Two versions of that rule exist, told apart by the row's `v`:
//!
//! * **v1** ([`event_hash`], every row written before schema 2) hashes the event's `data` text
//!   itself;
//! * **v2** ([`event_hash_v2`], every row written since) hashes `data_sha256`, the SHA-256 of
//!   the `data` text, and the row keeps both. The `data` of a v2 row can therefore be removed
//!   (*pruned*: personal data whose time is up) while its hash still checks in full; a row
//!   whose `data` is there must match its `data_sha256`.
//!
//! A v1 row whose `data` was pruned (personal items of an older ledger, at its upgrade) can no
//! longer be recomputed; it is checked by its links only (its `prev_hash` is the previous row's
//! hash, and the next row's `prev_hash` is its hash), and its time was cut to the day. Either
//! way a pruned row is legitimate only if a later `forgotten` event of the same item lists it
//! ([`Event::Forgotten`]); one that no such event accounts for is reported as tampering
//! ([`Problem::PrunedWithoutRecord`]), so pruning cannot be used to erase evidence unnoticed.
//!
//! [`ChainCheck`] walks rows in `seq` order and reports, as typed [`Problem`]s, what does not
//! hold: a row edited (hash), removed, inserted or reordered (links and sequence numbers), a
//! `data` that does not read as an [`Event`], the head anchor naming a row that is not there, a
//! pruned row nobody recorded. It also replays what the events say about each item (hash,
//! state, store file, intake, latest decision) for the caller to compare with what it has.
//!
//! The same checker runs over the phone's whole ledger ([`super::Ledger::check_chain`]) and
//! over the subset of it in a case package (`export::verify_package`): there, other
//! items' events interleave, so a gap in `seq` is expected and a link is checked only between
//! consecutive rows ([`Coverage::Subset`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::clock::{self, Stamp};
use super::events::{Event, EventError, ForgetReason};
use super::pruning::{Fits, Misfit};
use super::{Item, ItemState};

/// Hash that precedes the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash version of rows written before schema 2: the `data` text itself is hashed.
pub const HASH_V1: u8 = 1;
/// The hash version of rows written now: the SHA-256 of the `data` text is hashed.
pub const HASH_V2: u8 = 2;

/// The hash of one v1 event row.
pub fn event_hash(seq: i64, at_ms: i64, kind: &str, item: Option<i64>, data: &str, prev_hash: &str) -> String {
    let mut h = Sha256::new();
    h.update(format!(
        "fotovakt-event-v1\n{seq}\n{at_ms}\n{kind}\n{}\n",
        item.map(|i| i.to_string()).unwrap_or_default()
    ));
    h.update(data.as_bytes());
    h.update(b"\n");
    h.update(prev_hash.as_bytes());
    hex::encode(h.finalize())
}

/// The SHA-256 of an event's `data` text, lowercase hex: what a v2 hash covers.
pub fn data_sha256(data: &str) -> String {
    hex::encode(Sha256::digest(data.as_bytes()))
}

/// The hash of one v2 event row: over its fields, the SHA-256 of its `data` and the previous
/// row's hash.
pub fn event_hash_v2(
    seq: i64,
    at_ms: i64,
    kind: &str,
    item: Option<i64>,
    data_sha256: &str,
    prev_hash: &str,
) -> String {
    let item = item.map(|i| i.to_string()).unwrap_or_default();
    hex::encode(Sha256::digest(
        format!("fotovakt-event-v2\n{seq}\n{at_ms}\n{kind}\n{item}\n{data_sha256}\n{prev_hash}").as_bytes(),
    ))
}

fn v1() -> u8 {
    HASH_V1
}

fn is_v1(v: &u8) -> bool {
    *v == HASH_V1
}

/// One event row exactly as stored: every field its hash covers, plus the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawEvent {
    pub seq: i64,
    pub at_ms: i64,
    pub kind: String,
    pub item: Option<i64>,
    /// The event's JSON text, byte for byte as hashed (v1) or as `data_sha256` covers (v2);
    /// `None` once pruned.
    pub data: Option<String>,
    pub prev_hash: String,
    pub hash: String,
    /// The hash version: [`HASH_V1`] or [`HASH_V2`].
    #[serde(default = "v1", skip_serializing_if = "is_v1")]
    pub v: u8,
    /// v2: the SHA-256 of `data`, which the hash covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sha256: Option<String>,
}

/// Does the row's own hash check? `Some(true)`: yes; `Some(false)`: no; `None`: it cannot be
/// told (a pruned v1 row, or an unknown version).
pub(super) fn hash_holds(row: &RawEvent) -> Option<bool> {
    match (row.v, &row.data, &row.data_sha256) {
        (HASH_V1, Some(data), _) => {
            Some(event_hash(row.seq, row.at_ms, &row.kind, row.item, data, &row.prev_hash) == row.hash)
        }
        (HASH_V1, None, _) => None,
        (HASH_V2, data, Some(covered)) => Some(
            data.as_deref().is_none_or(|d| data_sha256(d) == *covered)
                && event_hash_v2(row.seq, row.at_ms, &row.kind, row.item, covered, &row.prev_hash) == row.hash,
        ),
        (HASH_V2, _, None) => Some(false),
        _ => None,
    }
}

/// One thing verification found wrong. `Display` is the sentence `verify` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The row's `seq` is not the one after the previous row's: a row was deleted or inserted.
    SequenceGap { seq: i64, expected: i64 },
    /// The row's `seq` is not after the previous row's (a package's log out of order).
    OutOfOrder { seq: i64, kind: String, after: i64 },
    /// The row's `prev_hash` is not the previous row's `hash`.
    BrokenLink { seq: i64, kind: String, previous: i64 },
    /// Event 1 does not follow [`GENESIS`].
    NotFromGenesis { seq: i64, kind: String },
    /// The row's fields do not hash to its `hash`: it was edited.
    HashMismatch { seq: i64, kind: String },
    /// The row's `data` does not read as the event its kind names.
    UnreadableEvent { seq: i64, error: EventError },
    /// The row names a hash version this program does not know.
    UnknownHashVersion { seq: i64, kind: String, v: u8 },
    /// The row's `data` was removed, and no later `forgotten` event of its item records that.
    PrunedWithoutRecord { seq: i64, kind: String },
    /// A `forgotten` event (`seq`) that does not fit its item: what it pruned was not the
    /// agent's to forget (see [`super::pruning`]).
    ForgottenDoesNotFit { seq: i64, item: i64, reason: ForgetReason, misfit: Misfit },
    /// `ledger.head` names an event that is not in the ledger: rows were cut off the end.
    HeadEventMissing { seq: i64 },
    /// `ledger.head` names an event whose hash is another.
    HeadHashDiffers { seq: i64 },
    /// `ledger.head` could not be read or parsed.
    HeadUnreadable { reason: String },
    /// No `ledger.head`, yet the ledger has events: rows may have been cut off the end with
    /// it. A store made today has a head from its first instant (naming event 0).
    HeadMissing { newest: i64 },
    /// The wall clock advanced `by_ms` less than the boot clock since event `previous` (same
    /// boot): the phone's time was set back, and this event's time may be backdated.
    ClockRanBackwards { seq: i64, kind: String, previous: i64, by_ms: i64 },
    /// A boot-clock stamp before the previous one's in the same boot: stamps were edited.
    MonotonicBackwards { seq: i64, kind: String, previous: i64 },
    /// A checkpoint names event `seq`, but the ledger ends at `newest`: rolled back or cut off.
    CheckpointRolledBack { seq: i64, at_ms: i64, newest: i64 },
    /// A checkpoint names event `seq` with another hash: the ledger was rewritten at or before it.
    CheckpointRewritten { seq: i64, at_ms: i64 },
    /// A checkpoint whose signature does not stand.
    CheckpointUnverified { seq: i64, reason: String },
    /// A checkpoint signed by a key the ledger never recorded as its device key.
    CheckpointForeignKey { seq: i64, fingerprint: String },
    /// An item row that does not read (a stored value this program does not know).
    UnreadableItem { item: i64, reason: String },
    /// An item row no event speaks of (inserted outside the agent).
    ItemWithoutEvents { item: i64 },
    /// An item row's SHA-256 is not the one its events recorded.
    ItemHashDiffers { item: i64 },
    /// An item row's state is not the one its events lead to.
    ItemStateDiffers { item: i64, row: ItemState, events: Option<ItemState> },
    /// A quarantined item row's store file is not the one its events recorded.
    ItemStoreNameDiffers { item: i64 },
    /// A quarantined item has no store file name.
    NoStoreFileName { item: i64 },
    /// A store file's bytes no longer hash to its item's SHA-256.
    StoreFileChanged { item: i64, name: String },
    /// A store file could not be read.
    StoreFileUnreadable { item: i64, name: String, reason: String },
    /// A file in the store that no quarantined item accounts for.
    UnaccountedStoreFile { name: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::SequenceGap { seq, expected } => {
                write!(f, "event {seq}: expected sequence number {expected} (a row was deleted or inserted)")
            }
            Problem::OutOfOrder { seq, kind, after } => {
                write!(f, "event {seq} ({kind}): out of order (after event {after})")
            }
            Problem::BrokenLink { seq, kind, previous } => write!(
                f,
                "event {seq} ({kind}): previous-hash link to event {previous} broken (an event before it was \
                 changed, deleted or reordered)"
            ),
            Problem::NotFromGenesis { seq, kind } => {
                write!(f, "event {seq} ({kind}): the first event of the ledger must follow the genesis hash")
            }
            Problem::HashMismatch { seq, kind } => {
                write!(f, "event {seq} ({kind}): contents do not match its hash (the event was edited)")
            }
            Problem::UnreadableEvent { seq, error } => {
                write!(f, "event {seq}: does not read as a custody event: {error}")
            }
            Problem::UnknownHashVersion { seq, kind, v } => {
                write!(f, "event {seq} ({kind}): hash version {v} is not one this program knows; update fotovakt")
            }
            Problem::PrunedWithoutRecord { seq, kind } => write!(
                f,
                "event {seq} ({kind}): its contents were removed, and no later forgotten event of its item records \
                 that (the event was tampered with)"
            ),
            Problem::ForgottenDoesNotFit { seq, item, reason, misfit } => write!(
                f,
                "event {seq} (forgotten, {}): item {item}: {misfit} (a forged forgotten event erasing custody \
                 records)",
                reason.as_str()
            ),
            Problem::HeadEventMissing { seq } => {
                write!(f, "ledger.head names event {seq}, which is missing (rows were cut off the end)")
            }
            Problem::HeadHashDiffers { seq } => write!(f, "ledger.head: event {seq} has a different hash"),
            Problem::HeadUnreadable { reason } => write!(f, "ledger.head: {reason}"),
            Problem::HeadMissing { newest } => write!(
                f,
                "ledger.head is missing, yet the ledger has events up to {newest} (rows may have been cut off the \
                 end with it; if you know why, `fotovakt anchor --reason TEXT` records it and anchors the ledger again)"
            ),
            Problem::ClockRanBackwards { seq, kind, previous, by_ms } => write!(
                f,
                "event {seq} ({kind}): the wall clock fell {} behind the boot clock since event {previous} (the \
                 phone's time was set back; this event's time may be backdated)",
                humantime::format_duration(std::time::Duration::from_secs((*by_ms / 1000).max(0) as u64))
            ),
            Problem::MonotonicBackwards { seq, kind, previous } => write!(
                f,
                "event {seq} ({kind}): its boot-clock stamp is before event {previous}'s in the same boot (stamps \
                 were edited)"
            ),
            Problem::CheckpointRolledBack { seq, at_ms, newest } => write!(
                f,
                "checkpoint of event {seq} (made {}): the ledger now ends at event {newest}: it was rolled back or \
                 cut off since",
                crate::export::utc(*at_ms)
            ),
            Problem::CheckpointRewritten { seq, at_ms } => write!(
                f,
                "checkpoint of event {seq} (made {}): the ledger's event {seq} has another hash: the ledger was \
                 rewritten at or before it",
                crate::export::utc(*at_ms)
            ),
            Problem::CheckpointUnverified { seq, reason } => write!(f, "checkpoint of event {seq}: {reason}"),
            Problem::CheckpointForeignKey { seq, fingerprint } => write!(
                f,
                "checkpoint of event {seq}: signed by key {fingerprint}, which this ledger never recorded as its \
                 device key"
            ),
            Problem::UnreadableItem { item, reason } => write!(f, "item {item}: unreadable row: {reason}"),
            Problem::ItemWithoutEvents { item } => {
                write!(f, "item {item}: has no events (row inserted outside the agent)")
            }
            Problem::ItemHashDiffers { item } => {
                write!(f, "item {item}: sha256 differs from the one recorded in its events")
            }
            Problem::ItemStateDiffers { item, row, events } => write!(
                f,
                "item {item}: state {} but its events say {}",
                row.as_str(),
                events.map(ItemState::as_str).unwrap_or("(none)")
            ),
            Problem::ItemStoreNameDiffers { item } => write!(f, "item {item}: store file name differs from its events"),
            Problem::NoStoreFileName { item } => write!(f, "item {item}: quarantined but has no store file name"),
            Problem::StoreFileChanged { item, name } => {
                write!(f, "item {item}: stored file {name} has changed (SHA-256 differs)")
            }
            Problem::StoreFileUnreadable { item, name, reason } => {
                write!(f, "item {item}: stored file {name}: {reason}")
            }
            Problem::UnaccountedStoreFile { name } => {
                write!(f, "{name}: file in the store that no quarantined item accounts for")
            }
        }
    }
}

/// A list of problems: what a verification found. Empty means clean. Serialises as the list of
/// their sentences (the `problems` array of `verify --json` and `verify-package --json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems<P = Problem>(Vec<P>);

impl<P> Default for Problems<P> {
    fn default() -> Self {
        Problems(Vec::new())
    }
}

impl<P> Problems<P> {
    pub fn push(&mut self, p: P) {
        self.0.push(p);
    }

    pub fn into_vec(self) -> Vec<P> {
        self.0
    }
}

impl<P: fmt::Display> Problems<P> {
    /// The sentences joined by `sep`.
    pub fn join(&self, sep: &str) -> String {
        self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join(sep)
    }

    /// The sentences.
    pub fn sentences(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

impl<P> std::ops::Deref for Problems<P> {
    type Target = [P];
    fn deref(&self) -> &[P] {
        &self.0
    }
}

impl<P> Extend<P> for Problems<P> {
    fn extend<I: IntoIterator<Item = P>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl<P> FromIterator<P> for Problems<P> {
    fn from_iter<I: IntoIterator<Item = P>>(iter: I) -> Self {
        Problems(iter.into_iter().collect())
    }
}

impl<'a, P> IntoIterator for &'a Problems<P> {
    type Item = &'a P;
    type IntoIter = std::slice::Iter<'a, P>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<P> IntoIterator for Problems<P> {
    type Item = P;
    type IntoIter = std::vec::IntoIter<P>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<P: fmt::Display> Serialize for Problems<P> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

/// Which rows a check sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// The whole ledger: `seq` runs 1, 2, 3, … and every row links to the one before.
    Ledger,
    /// Some items' events out of the whole (a case package): gaps are other items' events;
    /// links are checked between rows whose `seq` follow each other.
    Subset,
}

/// What the events of one item say about it, replayed in order.
#[derive(Debug, Clone, Default)]
pub struct ItemHistory {
    /// The SHA-256 last recorded.
    pub sha256: Option<String>,
    /// The state the events lead to.
    pub state: Option<ItemState>,
    /// The store file name last recorded.
    pub store_name: Option<String>,
    /// The first `intake` or `adopted` event, with its `seq`: how the item came to the agent.
    pub origin: Option<(i64, Event)>,
    /// The latest `decided` event, with its `seq`.
    pub decision: Option<(i64, Event)>,
}

impl ItemHistory {
    fn replay(&mut self, seq: i64, e: &Event) {
        if let Some(sha) = e.sha256() {
            self.sha256 = Some(sha.to_string());
        }
        if let Some(state) = e.state() {
            self.state = Some(state);
        }
        if let Some(name) = e.store_name() {
            self.store_name = Some(name.to_string());
        }
        match e {
            Event::Intake { .. } | Event::Adopted { .. } if self.origin.is_none() => {
                self.origin = Some((seq, e.clone()));
            }
            Event::Decided { .. } => self.decision = Some((seq, e.clone())),
            _ => {}
        }
    }
}

/// The anchor the whole ledger's newest row is checked against: `ledger.head` as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// No head file (a new ledger, or one from before the head existed).
    Absent,
    /// The head names this row.
    At { seq: i64, hash: String },
    /// The file is there but could not be read or parsed.
    Unreadable(String),
}

/// The checker: feed it rows in `seq` order with [`ChainCheck::push`], then
/// [`ChainCheck::check_item`] for each item row there is, then [`ChainCheck::finish`].
#[derive(Debug)]
pub struct ChainCheck {
    coverage: Coverage,
    head: Head,
    head_seen: bool,
    /// (`seq`, `hash`) of the previous row.
    prev: Option<(i64, String)>,
    events: u64,
    links_checked: u64,
    gaps: u64,
    problems: Problems,
    items: BTreeMap<i64, ItemHistory>,
    /// The last row with a monotonic stamp: (`seq`, `at_ms`, stamp).
    clock: Option<(i64, i64, Stamp)>,
    /// Pruned rows seen so far: (`seq`, `kind`, `item`), each to be accounted for by a later
    /// `forgotten` event of its item.
    pruned: Vec<(i64, String, Option<i64>)>,
    /// Per item, the rows its `forgotten` events say were pruned.
    forgotten: BTreeMap<i64, BTreeSet<i64>>,
    /// Every item's rows, to check that each `forgotten` event fits its item.
    fits: Fits,
}

/// What a [`ChainCheck`] found.
#[derive(Debug, Clone, Default)]
pub struct ChainReport {
    /// Rows checked.
    pub events: u64,
    /// `prev_hash` links checked.
    pub links_checked: u64,
    /// Places where rows not covered (other items' events) sit between two covered rows.
    pub gaps: u64,
    /// Rows whose `data` was pruned on schedule (recorded by a `forgotten` event): personal
    /// data gone, hash still in the chain. Not a problem.
    pub pruned: u64,
    pub problems: Problems,
}

impl ChainCheck {
    /// A check of `coverage`; `head` is the anchor for [`Coverage::Ledger`] (read it *before*
    /// the rows: a row committed meanwhile is then merely newer than the head).
    pub fn new(coverage: Coverage, head: Head) -> ChainCheck {
        // A head at event 0 is a new store's: it names the genesis hash, not a row.
        let head_seen = match &head {
            Head::At { seq: 0, .. } => true,
            Head::At { .. } => false,
            Head::Absent | Head::Unreadable(_) => true,
        };
        let mut problems = Problems::default();
        match &head {
            Head::Unreadable(reason) => problems.push(Problem::HeadUnreadable { reason: reason.clone() }),
            Head::At { seq: 0, hash } if hash != GENESIS => problems.push(Problem::HeadHashDiffers { seq: 0 }),
            _ => {}
        }
        ChainCheck { problems, ..ChainCheck::empty(coverage, head, head_seen) }
    }

    fn empty(coverage: Coverage, head: Head, head_seen: bool) -> ChainCheck {
        ChainCheck {
            coverage,
            head,
            head_seen,
            prev: None,
            events: 0,
            links_checked: 0,
            gaps: 0,
            problems: Problems::default(),
            items: BTreeMap::new(),
            clock: None,
            pruned: Vec::new(),
            forgotten: BTreeMap::new(),
            fits: Fits::default(),
        }
    }

    /// Check one row (the next in `seq` order); returns its event when it reads as one (a
    /// pruned row has none).
    pub fn push(&mut self, row: &RawEvent) -> Option<Event> {
        self.events += 1;
        let (seq, kind) = (row.seq, row.kind.clone());
        self.check_link(row);
        match hash_holds(row) {
            Some(true) => {}
            Some(false) => self.problems.push(Problem::HashMismatch { seq, kind: kind.clone() }),
            None if row.v != HASH_V1 => {
                self.problems.push(Problem::UnknownHashVersion { seq, kind: kind.clone(), v: row.v });
            }
            // A pruned v1 row: its links are all that can be checked.
            None => {}
        }
        if let Head::At { seq: head_seq, hash } = &self.head {
            if *head_seq == seq {
                self.head_seen = true;
                if *hash != row.hash {
                    self.problems.push(Problem::HeadHashDiffers { seq });
                }
            }
        }
        self.prev = Some((seq, row.hash.clone()));
        let Some(text) = row.data.as_deref() else {
            // Pruned: its clock stamp went with the rest of its data (a personal photo's time
            // is not kept); the clock check goes on from the last stamp still there.
            self.pruned.push((seq, kind, row.item));
            self.fits.row(row, None);
            return None;
        };
        let parsed = serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| EventError::Malformed { kind: row.kind.clone(), message: e.to_string() })
            .and_then(|data| {
                self.check_clock(row, &data);
                Event::from_value(&row.kind, data)
            });
        match parsed {
            Ok(event) => {
                if let Some(item) = row.item {
                    if let Event::Forgotten { pruned, .. } = &event {
                        self.forgotten.entry(item).or_default().extend(pruned.iter().filter(|p| **p < seq));
                    }
                    self.items.entry(item).or_default().replay(seq, &event);
                }
                self.fits.row(row, Some(&event));
                Some(event)
            }
            Err(error) => {
                self.problems.push(Problem::UnreadableEvent { seq, error });
                None
            }
        }
    }

    fn check_link(&mut self, row: &RawEvent) {
        let (seq, kind) = (row.seq, &row.kind);
        let broken = |previous| Problem::BrokenLink { seq, kind: kind.clone(), previous };
        match (&self.prev, self.coverage) {
            (None, Coverage::Ledger) => {
                if seq != 1 {
                    self.problems.push(Problem::SequenceGap { seq, expected: 1 });
                }
                self.links_checked += 1;
                if row.prev_hash != GENESIS {
                    self.problems.push(Problem::NotFromGenesis { seq, kind: kind.clone() });
                }
            }
            (None, Coverage::Subset) => {
                if seq == 1 {
                    self.links_checked += 1;
                    if row.prev_hash != GENESIS {
                        self.problems.push(Problem::NotFromGenesis { seq, kind: kind.clone() });
                    }
                }
            }
            (Some((q, _)), _) if seq <= *q => {
                self.problems.push(Problem::OutOfOrder { seq, kind: kind.clone(), after: *q });
            }
            (Some((q, hash)), Coverage::Ledger) => {
                // Every row links to the one before it, gap or not.
                if seq != q + 1 {
                    self.problems.push(Problem::SequenceGap { seq, expected: q + 1 });
                }
                self.links_checked += 1;
                if row.prev_hash != *hash {
                    self.problems.push(broken(*q));
                }
            }
            (Some((q, hash)), Coverage::Subset) if seq == q + 1 => {
                self.links_checked += 1;
                if row.prev_hash != *hash {
                    self.problems.push(broken(*q));
                }
            }
            (Some(_), Coverage::Subset) => self.gaps += 1,
        }
    }

    /// Compare the row's two clocks with the last stamped row's, within one boot: the wall
    /// clock may not fall behind the boot clock by more than [`clock::TOLERANCE_MS`].
    fn check_clock(&mut self, row: &RawEvent, data: &serde_json::Value) {
        let Some(stamp) = clock::of_data(data) else { return };
        if let Some((previous, prev_at, prev)) = &self.clock {
            if prev.boot == stamp.boot {
                let (seq, kind, previous) = (row.seq, row.kind.clone(), *previous);
                if stamp.mono_ms < prev.mono_ms {
                    self.problems.push(Problem::MonotonicBackwards { seq, kind, previous });
                } else {
                    let by_ms = (stamp.mono_ms - prev.mono_ms) - (row.at_ms - prev_at);
                    if by_ms > clock::TOLERANCE_MS {
                        self.problems.push(Problem::ClockRanBackwards { seq, kind, previous, by_ms });
                    }
                }
            }
        }
        self.clock = Some((row.seq, row.at_ms, stamp));
    }

    /// What the events so far say about `item`.
    pub fn history(&self, item: i64) -> Option<&ItemHistory> {
        self.items.get(&item)
    }

    /// Compare an item row with what its events say.
    pub fn check_item(&mut self, item: &Item) {
        let Some(h) = self.items.get(&item.id) else {
            self.problems.push(Problem::ItemWithoutEvents { item: item.id });
            return;
        };
        let mut found = Vec::new();
        if h.sha256.as_deref() != Some(item.sha256.as_str()) {
            found.push(Problem::ItemHashDiffers { item: item.id });
        }
        if h.state != Some(item.state) {
            found.push(Problem::ItemStateDiffers { item: item.id, row: item.state, events: h.state });
        }
        if item.state == ItemState::Quarantined && h.store_name != item.store_name {
            found.push(Problem::ItemStoreNameDiffers { item: item.id });
        }
        found.extend(self.fits.row_left(item.id));
        self.problems.extend(found);
    }

    /// Record a problem the caller found beside the chain.
    pub fn report(&mut self, p: Problem) {
        self.problems.push(p);
    }

    /// The report; a head naming a row that never came, and a pruned row no `forgotten` event
    /// accounts for, are reported here.
    pub fn finish(mut self) -> ChainReport {
        if let (false, Head::At { seq, .. }) = (self.head_seen, &self.head) {
            self.problems.push(Problem::HeadEventMissing { seq: *seq });
        }
        if let (Coverage::Ledger, Head::Absent, Some((newest, _))) = (self.coverage, &self.head, &self.prev) {
            self.problems.push(Problem::HeadMissing { newest: *newest });
        }
        let mut pruned = 0;
        for (seq, kind, item) in std::mem::take(&mut self.pruned) {
            if item.and_then(|i| self.forgotten.get(&i)).is_some_and(|f| f.contains(&seq)) {
                pruned += 1;
            } else {
                self.problems.push(Problem::PrunedWithoutRecord { seq, kind });
            }
        }
        self.problems.extend(self.fits.finish());
        ChainReport {
            events: self.events,
            links_checked: self.links_checked,
            gaps: self.gaps,
            pruned,
            problems: self.problems,
        }
    }
}
