//! Creating a ledger, and bringing an older one to [`SCHEMA_VERSION`].
//!
//! Schema 1 → 2 (issue 29), in one transaction under the write lock, at the first open that
//! can take it:
//!
//! 1. `events` gains the hash version `v` and `data_sha256`, and `data` may be NULL (pruned);
//!    every existing row stays a v1 row, byte for byte. `items` gets item numbers that are never
//!    reused (`AUTOINCREMENT`: the events of an item that left the table keep naming it alone)
//!    and a nullable `original_path`. The old tables are copied and dropped; with
//!    `secure_delete` on, their freed pages are overwritten with zeros.
//! 2. Every item an earlier version decided `keep` (kept, or held with `keep` to be decided)
//!    becomes a keyed `personal` record dated to its day, its item row and corrections go, the
//!    `data` of its custody events is pruned (their time cut to the day: a pruned v1 row is
//!    checked by its links only) and a `forgotten` event lists them. An item whose events do
//!    not verify is left as it was, for `verify` to report: pruning it would hide tampering.
//! 3. One `privacy_upgrade` event says how many items and events, and how many were left.
//!
//! The caller checkpoints the write-ahead log afterwards, so the removed bytes leave it too.
//!
//! Schema 2 → 3 (issue 25): `moves` gains the nullable `owner` (a stash row's agent life token;
//! the rows already there have none, and recovery takes them for a dead process's). The same
//! column is added on the way from 1.

use std::path::Path;

use rusqlite::{params, Connection, TransactionBehavior};

use super::events::{Event, ForgetReason, ItemSource};
use super::keyed::DeviceSecret;
use super::privacy::DAY_MS;
use super::schema::{path_from_bytes, Migration, SCHEMA, SCHEMA_VERSION};
use super::{now_ms, ItemState, LedgerError, Result, Tx};

/// The item columns of schema 1 and 2 alike, in order.
const ITEM_COLUMNS_ALL: &str = "id, sha256, size, original_path, kind, capture_time, gps_lat, gps_lon, \
     file_mtime_ns, first_seen_ms, decided_at_ms, quarantined_at_ms, released_at_ms, state, action, source, rule, \
     score, case_id, officer, tags, store_name, embedding";

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Create the tables of a new ledger, or bring an older one to [`SCHEMA_VERSION`]. A ledger
/// from a newer program is refused (`Err(version)`) rather than written in a layout this one
/// does not know.
pub(super) fn migrate(
    conn: &mut Connection,
    db_path: &Path,
    secret: &DeviceSecret,
) -> Result<std::result::Result<Migration, i64>> {
    let err = |source| LedgerError::Sqlite { path: db_path.to_path_buf(), source };
    let version = user_version(conn).map_err(err)?;
    if version >= SCHEMA_VERSION {
        return Ok(if version > SCHEMA_VERSION { Err(version) } else { Ok(Migration::Current) });
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
    // Again under the lock: another process may have migrated meanwhile.
    let version = user_version(&tx).map_err(err)?;
    if version >= SCHEMA_VERSION {
        return Ok(if version > SCHEMA_VERSION { Err(version) } else { Ok(Migration::Current) });
    }
    let existing: i64 = tx
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'", [], |r| r.get(0))
        .map_err(err)?;
    let mark = format!(
        "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema', '{SCHEMA_VERSION}'); \
         PRAGMA user_version = {SCHEMA_VERSION};"
    );
    if existing == 0 {
        tx.execute_batch(&format!("{SCHEMA} {mark}")).map_err(err)?;
        tx.commit().map_err(err)?;
        return Ok(Ok(Migration::Created));
    }
    if version >= 2 {
        tx.execute_batch(&format!("ALTER TABLE moves ADD COLUMN owner TEXT; {mark}")).map_err(err)?;
        tx.commit().map_err(err)?;
        return Ok(Ok(Migration::Upgraded { from: version }));
    }
    // 0 (the first release, whose tables are exactly schema 1) or 1 → 3.
    tx.execute_batch(&format!(
        "ALTER TABLE moves ADD COLUMN owner TEXT; ALTER TABLE events RENAME TO events_v1; ALTER TABLE items RENAME TO items_v1; \
         DROP INDEX IF EXISTS events_item; DROP INDEX IF EXISTS items_sha; DROP INDEX IF EXISTS items_path; \
         {SCHEMA} \
         INSERT INTO events(seq, at_ms, kind, item_id, data, prev_hash, hash, v, data_sha256) \
           SELECT seq, at_ms, kind, item_id, data, prev_hash, hash, 1, NULL FROM events_v1; \
         INSERT INTO items({ITEM_COLUMNS_ALL}) SELECT {ITEM_COLUMNS_ALL} FROM items_v1; \
         DROP TABLE events_v1; DROP TABLE items_v1;"
    ))
    .map_err(err)?;
    let mut t = Tx { tx, db_path, last: None, now: now_ms(), clock: super::clock::now(), secret };
    let (personal_items, events_pruned, left_for_verify) = personal_to_keyed(&mut t)?;
    let upgrade = Event::PrivacyUpgrade { from_schema: version.max(1), personal_items, events_pruned, left_for_verify };
    t.record(None, &upgrade)?;
    t.tx.execute_batch(&mark).map_err(err)?;
    if personal_items + left_for_verify > 0 {
        tracing::info!(
            personal_items,
            events_pruned,
            left_for_verify,
            "ledger upgraded: personal photos kept minimally"
        );
    }
    t.commit()?;
    Ok(Ok(Migration::Upgraded { from: version }))
}

/// Step 2 of the upgrade: every item decided `keep` becomes a keyed record. Returns (items,
/// events pruned, items left because their events do not verify).
fn personal_to_keyed(t: &mut Tx<'_>) -> Result<(u64, u64, u64)> {
    type Row = (i64, Option<Vec<u8>>, i64, Option<i64>, ItemState, ItemSource, i64);
    let rows: Vec<Row> = {
        let mut stmt =
            t.tx.prepare(
                "SELECT id, original_path, size, file_mtime_ns, state, source, decided_at_ms FROM items \
                 WHERE action = 'keep' AND state IN ('kept', 'held') ORDER BY id",
            )
            .map_err(t.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
            .map_err(t.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(t.err())?
    };
    let (mut items, mut pruned_total, mut left) = (0u64, 0u64, 0u64);
    for (id, path, size, mtime, state, source, decided) in rows {
        let Some(pruned) = t.forget_item(id, ForgetReason::Upgrade)? else {
            tracing::warn!(item = id, "upgrade: this item's custody events do not verify; left as it is for `verify`");
            left += 1;
            continue;
        };
        let path = path_from_bytes(path.unwrap_or_default());
        let key = t.secret.file_key(&path, size as u64, mtime.unwrap_or(0));
        let folder = t.secret.folder_key(path.parent().unwrap_or(Path::new("/")));
        t.tx.execute(
            "INSERT OR REPLACE INTO personal(key, folder, state, source, day, since_ms, span_ms) \
             VALUES (?1, ?2, ?3, ?4, date(?5 / 1000, 'unixepoch', 'localtime'), ?6, ?7)",
            params![key, folder, state, source, decided, decided - decided.rem_euclid(DAY_MS), DAY_MS],
        )
        .map_err(t.err())?;
        pruned_total += pruned as u64;
        items += 1;
    }
    Ok((items, pruned_total, left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_ledger_is_created_and_a_newer_one_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (secret, _) = DeviceSecret::load_or_create(&dir.path().join("k")).expect("secret");
        let db = dir.path().join("l.sqlite");
        let mut c = Connection::open(&db).expect("db");
        assert_eq!(migrate(&mut c, &db, &secret).expect("migrate"), Ok(Migration::Created));
        assert_eq!(migrate(&mut c, &db, &secret).expect("again"), Ok(Migration::Current));
        // Schema 2 (no `moves.owner`) gains the column, its rows' owner unknown.
        c.execute_batch(
            "INSERT INTO moves(item_id, direction, src, dst, tmp, sha256, size, started_ms) \
             VALUES (0, 'stash', x'2f61', x'2f62', x'2f62', '', 1, 0); \
             ALTER TABLE moves DROP COLUMN owner; PRAGMA user_version = 2;",
        )
        .expect("a schema 2 ledger");
        assert_eq!(migrate(&mut c, &db, &secret).expect("2 to 3"), Ok(Migration::Upgraded { from: 2 }));
        let owner: Option<String> = c.query_row("SELECT owner FROM moves", [], |r| r.get(0)).expect("owner column");
        assert_eq!(owner, None);
        assert_eq!(user_version(&c).expect("version"), SCHEMA_VERSION);
        c.execute_batch("PRAGMA user_version = 7").expect("newer");
        assert_eq!(migrate(&mut c, &db, &secret).expect("newer"), Err(7));
    }
}
