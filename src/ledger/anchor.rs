//! The head anchor's life beside the ledger (issue 26): a new ledger's event-0 head, the
//! durability barrier that advances it, and an officer's re-anchoring after it went missing.
//! Only a writer ([`Ledger::open`]) runs these; a [`super::LedgerReader`]'s barrier does nothing.

use std::path::Path;
use std::sync::atomic::Ordering;

use super::{head, Head, Ledger, LedgerError, Result, Synced, GENESIS};

impl Ledger {
    /// A ledger with no events and no head gets a head naming event 0 (the genesis hash),
    /// durably, before any event can be recorded: from its first instant a store has a head,
    /// so a ledger with events and no head is never the normal state ([`Problem::HeadMissing`]).
    /// Under the write lock, so it never races another process's first events.
    pub(super) fn anchor_new(&self) -> Result<()> {
        if !matches!(head::read(&self.head_path), Head::Absent) {
            return Ok(());
        }
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(self.err())?;
        let empty = self
            .conn
            .query_row("SELECT NOT EXISTS (SELECT 1 FROM events)", [], |r| r.get::<_, bool>(0))
            .map_err(self.err());
        let written = match empty {
            Ok(true) if matches!(head::read(&self.head_path), Head::Absent) => head::write(&self.head_path, 0, GENESIS)
                .map_err(|source| LedgerError::Durability {
                    about: "writing the head anchor of a new ledger",
                    path: self.head_path.clone(),
                    source,
                }),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        self.conn.execute_batch(if written.is_ok() { "COMMIT" } else { "ROLLBACK" }).map_err(self.err())?;
        written
    }

    /// Durability barrier: fsync the write-ahead log so every commit so far survives power
    /// loss, then advance `ledger.head` to the newest event (written, fsynced, renamed, its
    /// folder fsynced).
    ///
    /// The head is advanced here and not at every commit: a head written at commit could reach
    /// the disk before the WAL does and, after a power cut, name rows that are gone (a false
    /// tamper alarm); making it safe per commit would cost an fsync of the WAL and two more per
    /// commit. Here the newest row is read *before* the WAL is synced, so the head never names
    /// a row that is not durable; it lags commits made since the last barrier, which are the
    /// rows a power cut may take anyway. A barrier with no new events writes no head. The cost
    /// is two fsyncs per barrier (the head file, its folder): measured on ext4 in a VM, a
    /// barrier after a 3-event commit took 10.4 ms against 4.0 ms for the WAL fsync alone.
    /// Without the folder fsync a cut could only bring back an older head (still safe); with
    /// it, the head a barrier wrote survives the cut too, so rows cut off later are caught.
    ///
    /// A head that is missing or unreadable is left so: writing a new one would hide that rows
    /// may have been cut off with it. `verify` reports it until an officer anchors the ledger
    /// again ([`Ledger::reanchor`]).
    ///
    /// Returns the newest durable event and whether this barrier advanced the head to it
    /// (`None` while the ledger has no events).
    pub fn sync(&self) -> Result<Option<Synced>> {
        if self.read_only {
            return Ok(None);
        }
        let newest = self.newest_event()?;
        self.sync_log()?;
        let durability = |about, path: &Path| {
            let path = path.to_path_buf();
            move |source| LedgerError::Durability { about, path, source }
        };
        let Some((seq, hash)) = newest else { return Ok(None) };
        if seq <= self.head_written.load(Ordering::Relaxed) {
            return Ok(Some(Synced { seq, hash, advanced: false }));
        }
        // The watcher and an officer's command share the ledger and may reach their barriers
        // at once: SQLite's write lock is held while the head is compared and replaced, so two
        // processes never interleave on the head's temporary file (an empty head renamed into
        // place would read as truncation) and one never moves the head back.
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(self.err())?;
        let advanced = self.advance_head(seq, &hash).map_err(durability("writing the head anchor", &self.head_path));
        let end = if advanced.is_ok() { "COMMIT" } else { "ROLLBACK" };
        self.conn.execute_batch(end).map_err(self.err())?;
        Ok(Some(Synced { seq, hash, advanced: advanced? }))
    }

    /// Write the head `seq hash` unless the file already names `seq` or later (another
    /// process advanced it meanwhile), or is missing or unreadable (left for `verify` to
    /// report). Runs under the write lock ([`Ledger::sync`]). `true` when it was written.
    fn advance_head(&self, seq: i64, hash: &str) -> std::io::Result<bool> {
        match head::read(&self.head_path) {
            Head::At { seq: on_disk, .. } if on_disk >= seq => {
                self.head_written.store(on_disk, Ordering::Relaxed);
                return Ok(false);
            }
            Head::At { .. } => {}
            found @ (Head::Absent | Head::Unreadable(_)) => {
                // Once per connection: every barrier would say the same.
                if !self.head_lost_said.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        head = %self.head_path.display(), ?found, newest = seq,
                        "the ledger's head anchor is missing or unreadable; not writing a new one (rows may have \
                         been cut off with it). `fotovakt verify` reports it; `fotovakt anchor --reason` records why"
                    );
                }
                return Ok(false);
            }
        }
        head::write(&self.head_path, seq, hash)?;
        self.head_written.store(seq, Ordering::Relaxed);
        Ok(true)
    }

    /// Run `f` under the ledger's write lock (`BEGIN IMMEDIATE` … `COMMIT`): files beside the
    /// ledger that every process may write (the checkpoint, the device key) are written one
    /// process at a time.
    pub fn locked<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(self.err())?;
        let out = f();
        self.conn.execute_batch("COMMIT").map_err(self.err())?;
        Ok(out)
    }

    /// What the head file says now.
    pub fn head(&self) -> Head {
        head::read(&self.head_path)
    }

    /// Anchor the ledger again after an officer recorded why its head was missing or
    /// unreadable (the `head_anchored` event, already committed): fsync the WAL and write the
    /// head at the newest event, whatever the file holds. Under the write lock.
    pub fn reanchor(&self) -> Result<Option<(i64, String)>> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(self.err())?;
        let done = (|| {
            let newest = self.newest_event()?;
            self.sync_log()?;
            if let Some((seq, hash)) = &newest {
                head::write(&self.head_path, *seq, hash).map_err(|source| LedgerError::Durability {
                    about: "writing the head anchor",
                    path: self.head_path.clone(),
                    source,
                })?;
                self.head_written.store(*seq, Ordering::Relaxed);
            }
            Ok(newest)
        })();
        self.conn.execute_batch(if done.is_ok() { "COMMIT" } else { "ROLLBACK" }).map_err(self.err())?;
        done
    }
}
