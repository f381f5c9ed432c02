//! What the ledger keeps about an officer's own photos, and how it lets go of it (issue 29).
//!
//! * `personal`: one row per file version decided `keep` (or held while media-location access
//!   is off, with `keep` as the decision to be). The row has no name, path, content hash, EXIF
//!   time, GPS or embedding: its key is the keyed hash of the file version ([`DeviceSecret`]),
//!   beside the keyed hash of its folder, the state, the rule that decided, the local day, and
//!   the coarse period of the decision that its expiry is counted from (`since_ms`, `span_ms`:
//!   a period no finer than `keep_personal_decisions`, and never finer than a day once that is
//!   a day or more). When `keep_personal_decisions` has passed since the end of that period,
//!   [`Tx::forget_personal`] empties the row down to its two keys: a marker that reconcile
//!   still recognises (the photo is not decided again), counted in `personal_tally` by rule
//!   and no longer by day. A marker goes when its file has left the folder
//!   ([`Tx::drop_markers`]).
//! * Corrections: [`Tx::expire_corrections`] deletes the embeddings officers' tags and releases
//!   left for learning when `keep_corrections` has passed, and [`Tx::forget_released`] takes a
//!   released false positive's path, capture time, GPS, embedding, rule and notes out of its
//!   item row and prunes the custody events that repeated them, recording which in a
//!   `forgotten` event (the chain checker accepts a pruned row only if such an event lists it).
//!
//! Nothing is pruned from an item whose events do not verify: that would hide tampering.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::chain::{hash_holds, HASH_V1};
use super::events::{Event, ForgetReason, ItemSource};
use super::keyed::{DeviceSecret, SecretError};
use super::{raw_from_row, ItemState, Ledger, RawEvent, Result, Tx, RAW_COLUMNS};

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The custody events of a released false positive that name its path or place, or carry an
/// officer's free text about it: pruned when its correction runs out. `stashed` and `returned`
/// name it too (its name in staging, the name it came back to).
pub(super) const RELEASED_PERSONAL_KINDS: [&str; 7] =
    ["intake", "stashed", "returned", "decided", "tagged", "release_requested", "released"];

/// The rule text a forgotten released item keeps.
pub const FORGOTTEN_RULE: &str = "(forgotten: the correction ran out)";

/// What the ledger knows about one file version decided as the officer's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonalRecord {
    /// `kept` or `held`; `None` once forgotten (only the keyed marker is left).
    pub state: Option<ItemState>,
    /// The rule that decided; `None` once forgotten.
    pub source: Option<ItemSource>,
    /// The local calendar day of the decision; `None` once forgotten.
    pub day: Option<String>,
}

/// Counts of personal decisions, for the statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersonalCounts {
    /// Decided `keep`, record still held.
    pub kept: u64,
    /// Held (no media-location access), to be decided again.
    pub held: u64,
    /// Forgotten: counted here and by rule, no longer by day.
    pub forgotten: u64,
    /// By deciding rule (its stored name): records held and forgotten ones (`held` ones are
    /// not decisions yet).
    pub by_source: BTreeMap<String, u64>,
    /// By local day of the decision: records still held (kept and held).
    pub per_day: BTreeMap<String, u64>,
}

/// The period a decision is dated to: no finer than `keep`, at most a day.
fn span_ms(keep: Duration) -> i64 {
    (keep.as_millis() as i64).clamp(1_000, DAY_MS)
}

fn keep_ms(keep: Duration) -> i64 {
    keep.as_millis().min(i64::MAX as u128) as i64
}

impl Ledger {
    /// The device secret of the keyed records: a writer's always; a reader's if it could read
    /// one ([`super::LedgerReader`] makes none).
    pub(crate) fn secret(&self) -> Result<&DeviceSecret> {
        let path = || self.db_path.with_file_name(super::keyed::SECRET_FILE);
        Ok(self.secret.as_ref().ok_or_else(|| SecretError::Missing { path: path() })?)
    }

    /// The personal record of this file version, if there is one (a marker included). Without
    /// the device secret (a reader of a store whose secret is gone, or of a ledger older than
    /// the keyed records) this is known only when there are no keyed records at all.
    pub fn personal(&self, path: &Path, size: u64, mtime_ns: i64) -> Result<Option<PersonalRecord>> {
        if self.secret.is_none() {
            let any: bool =
                self.conn.query_row("SELECT EXISTS (SELECT 1 FROM personal)", [], |r| r.get(0)).map_err(self.err())?;
            if !any {
                return Ok(None);
            }
        }
        let key = self.secret()?.file_key(path, size, mtime_ns);
        self.conn
            .query_row("SELECT state, source, day FROM personal WHERE key = ?1", [key], |r| {
                Ok(PersonalRecord { state: r.get(0)?, source: r.get(1)?, day: r.get(2)? })
            })
            .optional()
            .map_err(self.err())
    }

    /// The markers (forgotten records): their key and folder key.
    pub fn personal_markers(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.rows("SELECT key, folder FROM personal WHERE state IS NULL", [], |r| Ok((r.get(0)?, r.get(1)?)))
    }

    /// Released items whose correction ran out at `now_ms` under `keep` and that still hold
    /// personal data. An item that was ever exported or acknowledged is not one: a case package
    /// holds its custody records, and `verify` reports its events forgotten as tampering.
    pub fn released_due(&self, now_ms: i64, keep: Duration) -> Result<Vec<i64>> {
        self.rows(
            "SELECT id FROM items WHERE state = 'released' AND original_path IS NOT NULL \
             AND released_at_ms IS NOT NULL AND released_at_ms <= ?1 - ?2 \
             AND NOT EXISTS (SELECT 1 FROM events e WHERE e.item_id = items.id AND e.kind IN ('export', 'ack', 'purge')) \
             ORDER BY id",
            params![now_ms, keep_ms(keep)],
            |r| r.get(0),
        )
    }

    /// Counts of personal decisions for the statistics.
    pub fn personal_counts(&self) -> Result<PersonalCounts> {
        let mut c = PersonalCounts::default();
        for (state, source, day) in self.rows("SELECT state, source, day FROM personal", [], |r| {
            Ok((r.get::<_, Option<ItemState>>(0)?, r.get::<_, Option<ItemSource>>(1)?, r.get::<_, Option<String>>(2)?))
        })? {
            match state {
                Some(ItemState::Held) => c.held += 1,
                Some(_) => c.kept += 1,
                None => {}
            }
            if let (Some(ItemState::Kept), Some(source)) = (state, source) {
                *c.by_source.entry(source.as_str().to_string()).or_default() += 1;
            }
            if let Some(day) = day {
                *c.per_day.entry(day).or_default() += 1;
            }
        }
        for (source, n) in self.rows("SELECT source, decisions FROM personal_tally", [], |r| {
            Ok((r.get::<_, ItemSource>(0)?, r.get::<_, i64>(1)? as u64))
        })? {
            c.forgotten += n;
            *c.by_source.entry(source.as_str().to_string()).or_default() += n;
        }
        Ok(c)
    }
}

impl Tx<'_> {
    /// Record the decision on a file version that is the officer's own (`state` kept or held),
    /// minimally: keyed hashes of the file and its folder, the state, the rule, the day, and
    /// the coarse period the expiry is counted from. Replaces an earlier record of the same
    /// file version (a held one decided again).
    pub fn keep_personal(
        &mut self,
        path: &Path,
        size: u64,
        mtime_ns: i64,
        state: ItemState,
        source: ItemSource,
        keep: Duration,
    ) -> Result<()> {
        let key = self.secret.file_key(path, size, mtime_ns);
        let folder = self.secret.folder_key(path.parent().unwrap_or(Path::new("/")));
        let span = span_ms(keep);
        let since = self.now - self.now.rem_euclid(span);
        self.tx
            .execute(
                "INSERT OR REPLACE INTO personal(key, folder, state, source, day, since_ms, span_ms) \
                 VALUES (?1, ?2, ?3, ?4, date(?5 / 1000, 'unixepoch', 'localtime'), ?6, ?7)",
                params![key, folder, state, source, self.now, since, span],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Remove the personal record of a file version (it is case material now, with a full
    /// record of its own). Returns whether there was one.
    pub fn drop_personal(&mut self, path: &Path, size: u64, mtime_ns: i64) -> Result<bool> {
        let key = self.secret.file_key(path, size, mtime_ns);
        let n = self.tx.execute("DELETE FROM personal WHERE key = ?1", [key]).map_err(self.err())?;
        Ok(n > 0)
    }

    /// Forget every kept record whose time is up under `keep` (counted from the end of its
    /// decision's period): it becomes a marker, and is counted in `personal_tally` by rule.
    /// Returns how many.
    pub fn forget_personal(&mut self, keep: Duration) -> Result<u64> {
        const DUE: &str = "state = 'kept' AND since_ms + span_ms <= ?1 - ?2";
        let (now, keep) = (self.now, keep_ms(keep));
        let by_source: Vec<(String, i64)> = {
            let mut stmt = self
                .tx
                .prepare(&format!("SELECT source, count(*) FROM personal WHERE {DUE} GROUP BY source"))
                .map_err(self.err())?;
            let rows = stmt.query_map(params![now, keep], |r| Ok((r.get(0)?, r.get(1)?))).map_err(self.err())?;
            rows.collect::<rusqlite::Result<_>>().map_err(self.err())?
        };
        for (source, n) in &by_source {
            self.tx
                .execute(
                    "INSERT INTO personal_tally(source, decisions) VALUES (?1, ?2) \
                     ON CONFLICT(source) DO UPDATE SET decisions = decisions + excluded.decisions",
                    params![source, n],
                )
                .map_err(self.err())?;
        }
        let n = self
            .tx
            .execute(
                &format!(
                    "UPDATE personal SET state = NULL, source = NULL, day = NULL, since_ms = NULL, span_ms = NULL \
                     WHERE {DUE}"
                ),
                params![now, keep],
            )
            .map_err(self.err())?;
        Ok(n as u64)
    }

    /// Remove these markers (their files have left their folders). Returns how many.
    pub fn drop_markers(&mut self, keys: &[Vec<u8>]) -> Result<u64> {
        let mut n = 0;
        for k in keys {
            n += self.tx.execute("DELETE FROM personal WHERE key = ?1 AND state IS NULL", [k]).map_err(self.err())?
                as u64;
        }
        Ok(n)
    }

    /// Delete the corrections older than `keep`. Returns how many.
    pub fn expire_corrections(&mut self, keep: Duration) -> Result<u64> {
        let n = self
            .tx
            .execute("DELETE FROM corrections WHERE at_ms <= ?1 - ?2", params![self.now, keep_ms(keep)])
            .map_err(self.err())?;
        Ok(n as u64)
    }

    /// Take a released false positive's personal data out of the ledger: its path, capture
    /// time, GPS, embedding, rule and notes from the item row, its corrections, and the
    /// `data` of the custody events that repeated them, then record a `forgotten` event
    /// listing those events. What stays: the SHA-256 (so the same bytes are kept, not judged
    /// again), size, times, state, case and officer, and the events of its time in the store.
    /// Returns the number of events pruned, or `None` when one of them does not verify (it is
    /// left as it is, for `verify` to report).
    pub fn forget_released(&mut self, item: i64) -> Result<Option<usize>> {
        let Some(pruned) = self.prune_rows(item, Some(&RELEASED_PERSONAL_KINDS), false)? else {
            return Ok(None);
        };
        self.tx
            .execute(
                "UPDATE items SET original_path = NULL, capture_time = NULL, gps_lat = NULL, gps_lon = NULL, \
                 file_mtime_ns = NULL, embedding = NULL, rule = ?2, tags = '[]' WHERE id = ?1",
                params![item, FORGOTTEN_RULE],
            )
            .map_err(self.err())?;
        self.tx.execute("DELETE FROM corrections WHERE item_id = ?1", [item]).map_err(self.err())?;
        let n = pruned.len();
        let forgotten =
            Event::Forgotten { reason: ForgetReason::CorrectionExpired, pruned, state: Some(ItemState::Released) };
        self.record(Some(item), &forgotten)?;
        Ok(Some(n))
    }

    /// Take item `id` out of the items table as the officer's own photo: the `data` of every one
    /// of its events is pruned (a v1 row's time cut to the day), its row and corrections are
    /// deleted, and a `forgotten` event lists the pruned events. The caller records the keyed
    /// record. Returns the number of events pruned, or `None` (nothing changed) when one of
    /// them does not verify.
    pub fn forget_item(&mut self, id: i64, reason: ForgetReason) -> Result<Option<usize>> {
        let Some(pruned) = self.prune_rows(id, None, true)? else {
            return Ok(None);
        };
        self.tx.execute("DELETE FROM corrections WHERE item_id = ?1", [id]).map_err(self.err())?;
        self.tx.execute("DELETE FROM items WHERE id = ?1", [id]).map_err(self.err())?;
        let n = pruned.len();
        self.record(Some(id), &Event::Forgotten { reason, pruned, state: None })?;
        Ok(Some(n))
    }

    /// Remove the `data` of `item`'s events (of `kinds`, or all), after checking that each one
    /// verifies. With `coarse_time`, the time of a v1 row (whose hash cannot be recomputed once
    /// its data is gone, so nothing depends on it) is cut to the day. Returns the rows pruned,
    /// or `None` (nothing changed) when one of them does not verify.
    pub(super) fn prune_rows(
        &mut self,
        item: i64,
        kinds: Option<&[&str]>,
        coarse_time: bool,
    ) -> Result<Option<Vec<i64>>> {
        let rows: Vec<RawEvent> = {
            let mut stmt = self
                .tx
                .prepare(&format!(
                    "SELECT {RAW_COLUMNS} FROM events WHERE item_id = ?1 AND data IS NOT NULL ORDER BY seq"
                ))
                .map_err(self.err())?;
            let rows = stmt.query_map([item], raw_from_row).map_err(self.err())?;
            rows.collect::<rusqlite::Result<_>>().map_err(self.err())?
        };
        let targets: Vec<&RawEvent> =
            rows.iter().filter(|r| kinds.is_none_or(|k| k.contains(&r.kind.as_str()))).collect();
        if targets.iter().any(|r| hash_holds(r) != Some(true)) {
            return Ok(None);
        }
        for r in &targets {
            let at_ms = if coarse_time && r.v == HASH_V1 { r.at_ms - r.at_ms.rem_euclid(DAY_MS) } else { r.at_ms };
            self.tx
                .execute("UPDATE events SET data = NULL, at_ms = ?2 WHERE seq = ?1", params![r.seq, at_ms])
                .map_err(self.err())?;
        }
        Ok(Some(targets.iter().map(|r| r.seq).collect()))
    }
}
