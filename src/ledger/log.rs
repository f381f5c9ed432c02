//! Reads of the custody log (`events`): one item's events, typed or as stored, pruned rows,
//! and the counts and times the views and retention ask for. Writes go through [`Tx::record`]
//! only.
//!
//! [`Tx::record`]: super::Tx::record

use std::collections::HashMap;

use rusqlite::params;

use super::{events, Event, EventError, Ledger, Logged, PrunedEvent, RawEvent, Result, RAW_COLUMNS};

impl Ledger {
    /// The custody log of one item: its events, oldest first, typed. A row that does not read
    /// as an [`Event`] is an error (`verify` names it). Pruned rows are not among them
    /// ([`Ledger::pruned_events_of`]).
    pub fn events_of(&self, item_id: i64) -> Result<Vec<Logged>> {
        let rows = self.rows(
            "SELECT seq, at_ms, kind, data, hash FROM events WHERE item_id = ?1 AND data IS NOT NULL ORDER BY seq",
            [item_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?, r.get(4)?)),
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for (seq, at_ms, kind, text, hash) in rows {
            let data: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| EventError::Malformed { kind: kind.clone(), message: e.to_string() })?;
            let event = Event::from_value(&kind, data.clone())?;
            out.push(Logged { seq, at_ms, kind: event.kind(), event, data, hash });
        }
        Ok(out)
    }

    /// The events of one item whose contents were pruned, oldest first.
    pub fn pruned_events_of(&self, item_id: i64) -> Result<Vec<PrunedEvent>> {
        self.rows(
            "SELECT seq, at_ms, kind, hash FROM events WHERE item_id = ?1 AND data IS NULL ORDER BY seq",
            [item_id],
            |r| Ok(PrunedEvent { seq: r.get(0)?, at_ms: r.get(1)?, kind: r.get(2)?, hash: r.get(3)? }),
        )
    }

    /// The `intake` event of an item, if it has one: where and what the file was when the agent
    /// first hashed it.
    pub fn intake_of(&self, item_id: i64) -> Result<Option<Event>> {
        Ok(self.events_of(item_id)?.into_iter().map(|l| l.event).find(|e| matches!(e, Event::Intake { .. })))
    }

    /// Every event of the given items, oldest first, exactly as stored (the fields its hash is
    /// computed over), for case packages.
    pub fn raw_events_of(&self, item_ids: &[i64]) -> Result<Vec<RawEvent>> {
        let mut out = Vec::new();
        for id in item_ids {
            out.extend(self.rows(
                &format!("SELECT {RAW_COLUMNS} FROM events WHERE item_id = ?1"),
                [id],
                raw_from_row,
            )?);
        }
        out.sort_by_key(|e| e.seq);
        Ok(out)
    }

    /// For each item with at least one event of `kind`, the time of its newest such event.
    pub fn last_event_times(&self, kind: &str) -> Result<HashMap<i64, i64>> {
        Ok(self
            .rows(
                "SELECT item_id, max(at_ms) FROM events WHERE kind = ?1 AND item_id IS NOT NULL GROUP BY item_id",
                [kind],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )?
            .into_iter()
            .collect())
    }

    /// For each item, when it was last exported and last acknowledged (`export` and `ack`
    /// events), for retention.
    pub fn handoff_times(&self) -> Result<(HashMap<i64, i64>, HashMap<i64, i64>)> {
        Ok((self.last_event_times(events::kinds::EXPORT)?, self.last_event_times(events::kinds::ACK)?))
    }

    /// Is a rejection of this file version (`path`, `key`) recorded already? Compares the
    /// typed fields, not the JSON text, so a changed reason or key order is still the same file.
    pub fn rejection_recorded(&self, path: &str, key: i64) -> Result<bool> {
        let rows = self.rows(
            "SELECT data FROM events WHERE kind = ?1 AND item_id IS NULL AND json_extract(data, '$.key') = ?2",
            params![events::kinds::REJECTED, key],
            |r| r.get::<_, String>(0),
        )?;
        for text in rows {
            if let Event::Rejected { path: p, key: k, .. } = Event::from_stored(events::kinds::REJECTED, &text)? {
                if p == path && k == key {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// How many events of `kind` there are (statistics).
    pub fn count_events(&self, kind: &str) -> Result<u64> {
        self.conn
            .query_row("SELECT count(*) FROM events WHERE kind = ?1", [kind], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(self.err())
    }
}

/// A [`RawEvent`] from a row of [`RAW_COLUMNS`].
pub(crate) fn raw_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawEvent> {
    Ok(RawEvent {
        seq: r.get(0)?,
        at_ms: r.get(1)?,
        kind: r.get(2)?,
        item: r.get(3)?,
        data: r.get(4)?,
        prev_hash: r.get(5)?,
        hash: r.get(6)?,
        v: r.get(7)?,
        data_sha256: r.get(8)?,
    })
}
