//! `verify`: every stored file re-hashed and the ledger's hash chain checked, from one
//! consistent view, beside a running watcher.
//!
//! The ledger is read in one snapshot ([`crate::ledger::LedgerReader::snapshot`]): the chain,
//! the item rows and the journal of moves in flight. The files are then hashed and the store
//! listed, without the move lock (a reader never waits behind a move), so the store may have
//! moved on meanwhile: a photo arrived, an item was released or purged. What looks wrong is
//! therefore looked at again against a fresh read before it is reported:
//!
//! * A file the snapshot expected that is missing, unreadable or changed is a problem only if
//!   the fresh read still expects it (a release marks the item `releasing` before its file
//!   moves, a purge marks it `purged` before the wipe, so either shows in the fresh read).
//! * A file the snapshot does not account for is a problem only if the fresh read does not
//!   either (every move is journaled before a byte moves, so a file that arrived since is
//!   known to it), and the file is still there. One that is now an item's in the store is
//!   verified like the others.
//! * A purged item's file still there is what an interrupted purge leaves, or a purge under
//!   way: it is decided under the move lock taken shared, when no purge can be running; the
//!   lock is only tried, never waited for past [`LEFTOVER_WAIT`].

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::warn;

use crate::ledger::{Direction, Item, ItemState, Ledger, LedgerError, Problem, Problems};
use crate::quarantine::{fsops, Store};
use crate::signing::Checkpoint;

use super::{Error, StoreReader};

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub events: u64,
    /// Events whose contents were pruned on schedule (a `forgotten` event records each): not
    /// a problem; their hashes still chain.
    pub pruned: u64,
    pub files: u64,
    /// Checkpoints checked (`verify --checkpoint`).
    pub checkpoints: usize,
    /// What is worth knowing but not wrong: the ledger anchored again by an officer.
    pub notes: Vec<String>,
    /// What is wrong, typed; `Display` of each is the sentence `verify` prints, and the list
    /// serialises as those sentences.
    pub problems: Problems,
}

/// How long `verify` tries for the move lock to decide about a purged item's file that is
/// still there; past it the file is left to the next run (and to the next purge, which
/// removes it), with a warning.
pub const LEFTOVER_WAIT: Duration = Duration::from_secs(10);

/// What one read of the ledger says the store holds.
struct Accounts {
    /// Items whose file must be in the store with their bytes (quarantined, or copied with
    /// the original kept), by id.
    stored: HashMap<i64, Item>,
    /// Store names of those items.
    stored_names: HashMap<String, i64>,
    /// Store names a move under way may or may not have in place yet: the journal's, and
    /// those of items in `moving` or `releasing`.
    in_flight: HashSet<String>,
    /// Store names of purged items.
    purged: HashSet<String>,
}

impl Accounts {
    fn read(l: &Ledger, store: &Store) -> Result<Accounts, LedgerError> {
        let mut a = Accounts {
            stored: HashMap::new(),
            stored_names: HashMap::new(),
            in_flight: HashSet::new(),
            purged: HashSet::new(),
        };
        let in_store =
            |p: &std::path::Path| p.strip_prefix(store.root()).ok().map(|n| n.to_string_lossy().into_owned());
        for m in l.pending_moves()? {
            let end = match m.direction {
                Direction::In | Direction::Copy => &m.dst,
                Direction::Out => &m.src,
                // A staged file is not in the store.
                Direction::Stash => continue,
            };
            a.in_flight.extend(in_store(end));
        }
        for item in l.items(None)? {
            let Some(name) = item.store_name.clone() else {
                if matches!(item.state, ItemState::Quarantined | ItemState::OriginalKept) {
                    a.stored.insert(item.id, item);
                }
                continue;
            };
            match item.state {
                ItemState::Quarantined | ItemState::OriginalKept => {
                    a.stored_names.insert(name, item.id);
                    a.stored.insert(item.id, item);
                }
                ItemState::Moving | ItemState::Releasing => {
                    a.in_flight.insert(name);
                }
                ItemState::Purged => {
                    a.purged.insert(name);
                }
                _ => {}
            }
        }
        Ok(a)
    }

    fn accounts_for(&self, name: &str) -> bool {
        self.stored_names.contains_key(name) || self.in_flight.contains(name)
    }

    /// Does this read still expect `item`'s file `name` with the bytes `sha256`?
    fn expects(&self, item: i64, name: &str, sha256: &str) -> bool {
        self.stored.get(&item).is_some_and(|i| i.store_name.as_deref() == Some(name) && i.sha256 == sha256)
    }
}

/// Something that looked wrong, to be looked at again.
enum Doubt {
    /// An expected file that did not verify.
    File { item: i64, name: String, sha256: String, problem: Problem },
    /// A file the snapshot did not account for.
    Stray(String),
}

impl StoreReader {
    /// Re-hash every stored file and check the ledger's hash chain and item rows, from one
    /// snapshot of the ledger; what changed in the store since is told from tampering (see
    /// the module docs). Never waits behind a move.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        self.verify_with(&[])
    }

    /// [`StoreReader::verify`], and prove that today's ledger still extends each of
    /// `checkpoints` (signed by a device key the ledger recorded, its event still there with its
    /// hash). Checked in the same snapshot as the chain: a watcher that appends meanwhile only
    /// adds events after them, so it cannot make a good checkpoint look rolled back.
    pub fn verify_with(&self, checkpoints: &[Checkpoint]) -> Result<VerifyReport, Error> {
        let (chain, snapshot, checked, notes) = self.read()?.snapshot(|l| {
            let mut checked = Problems::default();
            super::keys::check_checkpoints(l, checkpoints, &mut checked)?;
            Ok((l.check_chain()?, Accounts::read(l, &self.store)?, checked, super::keys::anchor_notes(l)?))
        })?;
        let mut problems = chain.problems;
        problems.extend(checked.into_vec());
        let mut files = 0u64;
        let mut doubts = Vec::new();
        let mut stored: Vec<&Item> = snapshot.stored.values().collect();
        stored.sort_by_key(|i| i.id);
        for item in stored {
            let Some(name) = item.store_name.as_deref() else {
                problems.push(Problem::NoStoreFileName { item: item.id });
                continue;
            };
            files += 1;
            if let Err(problem) = self.check_file(item.id, name, &item.sha256) {
                doubts.push(Doubt::File { item: item.id, name: name.into(), sha256: item.sha256.clone(), problem });
            }
        }
        let listing = self.listing()?;
        doubts.extend(listing.into_iter().filter(|n| !snapshot.accounts_for(n)).map(Doubt::Stray));
        if !doubts.is_empty() {
            self.settle(doubts, &mut problems, &mut files)?;
        }
        Ok(VerifyReport {
            events: chain.events,
            pruned: chain.pruned,
            files,
            checkpoints: checkpoints.len(),
            notes,
            problems,
        })
    }

    /// Does the store file `name` hash to `sha256`?
    fn check_file(&self, item: i64, name: &str, sha256: &str) -> Result<(), Problem> {
        match fsops::hash_path(&self.store.path_of(name)) {
            Ok(h) if h == sha256 => Ok(()),
            Ok(_) => Err(Problem::StoreFileChanged { item, name: name.into() }),
            Err(e) => Err(Problem::StoreFileUnreadable { item, name: name.into(), reason: e.to_string() }),
        }
    }

    fn listing(&self) -> Result<Vec<String>, Error> {
        let on_disk =
            self.store.objects().map_err(Error::io("listing the store", self.store.root().join("objects")))?;
        Ok(on_disk.into_iter().map(|(name, _)| name).collect())
    }

    fn fresh(&self) -> Result<Accounts, Error> {
        Ok(self.read()?.snapshot(|l| Accounts::read(l, &self.store))?)
    }

    /// Look again, against a fresh read, at what looked wrong; report what still is.
    fn settle(&self, doubts: Vec<Doubt>, problems: &mut Problems, files: &mut u64) -> Result<(), Error> {
        let fresh = self.fresh()?;
        let mut leftovers = Vec::new();
        for doubt in doubts {
            match doubt {
                // Released, purged or otherwise moved on since the snapshot: not a problem.
                Doubt::File { item, name, sha256, problem } => {
                    if fresh.expects(item, &name, &sha256) {
                        problems.push(problem);
                    }
                }
                Doubt::Stray(name) => {
                    if let Some(&item) = fresh.stored_names.get(&name) {
                        // Arrived after the snapshot: verify it like the others.
                        *files += 1;
                        let sha256 = fresh.stored[&item].sha256.clone();
                        if let Err(problem) = self.check_file(item, &name, &sha256) {
                            if self.fresh()?.expects(item, &name, &sha256) {
                                problems.push(problem);
                            }
                        }
                    } else if fresh.in_flight.contains(&name) || self.store.path_of(&name).symlink_metadata().is_err() {
                        // A move under way, or gone since it was listed (released, moved out).
                    } else if fresh.purged.contains(&name) {
                        leftovers.push(name);
                    } else {
                        problems.push(Problem::UnaccountedStoreFile { name });
                    }
                }
            }
        }
        if !leftovers.is_empty() {
            self.settle_leftovers(leftovers, problems)?;
        }
        Ok(())
    }

    /// Purged items' files that were still there: an interrupted purge's (a problem until the
    /// next purge or start removes it), or those of a purge under way. Decided under the move
    /// lock taken shared, which no purge holds while it runs.
    fn settle_leftovers(&self, names: Vec<String>, problems: &mut Problems) -> Result<(), Error> {
        let until = Instant::now() + LEFTOVER_WAIT;
        let lock = loop {
            match self.store.try_lock_shared()? {
                Some(lock) => break Some(lock),
                None if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
                None => break None,
            }
        };
        let Some(_lock) = lock else {
            warn!(
                files = names.len(),
                "purged items' files are still in the store while the move lock stays busy; \
                  not checked now (`fotovakt purge` removes what an interrupted purge left)"
            );
            return Ok(());
        };
        let fresh = self.fresh()?;
        for name in names {
            let there = self.store.path_of(&name).symlink_metadata().is_ok();
            if there && !fresh.accounts_for(&name) {
                problems.push(Problem::UnaccountedStoreFile { name });
            }
        }
        Ok(())
    }
}
