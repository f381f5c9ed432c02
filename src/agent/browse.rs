//! Read-only views for officers: the items in the store (`list`), one item with its custody
//! log (`show`), the open case session (`session status`). The CLI and the Android bridge
//! format these; neither queries the ledger itself.
//!
//! Methods of [`StoreReader`]: they read the ledger read-only and never wait behind a move.
//! An item being moved reads as `moving` (`releasing` on its way out) until its move ends.

use serde::Serialize;

use super::{Error, StoreReader};
use crate::ledger::{Item, ItemState, Logged, PrunedEvent, Session};

/// Which items [`StoreReader::list`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Listing {
    /// Only items whose file is in the store now.
    #[default]
    InStore,
    /// Every item: released, aborted and purged too (a photo kept as the officer's own has no
    /// item, only a keyed record).
    All,
}

/// One item and its custody log, oldest event first, as [`StoreReader::show`] returns it.
#[derive(Debug, Clone, Serialize)]
pub struct ItemRecord {
    pub item: Item,
    pub events: Vec<Logged>,
    /// Events whose contents were pruned on schedule (what is left of them), oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<PrunedEvent>,
}

impl StoreReader {
    /// Items, newest first, optionally only those of `case`.
    pub fn list(&self, case: Option<&str>, listing: Listing) -> Result<Vec<Item>, Error> {
        let items = self.read()?.items(case)?;
        Ok(items.into_iter().filter(|i| listing == Listing::All || i.state == ItemState::Quarantined).collect())
    }

    /// One item, found by number (`42`, `#42`) or SHA-256 prefix (≥ 6 hex digits).
    pub fn find(&self, key: &str) -> Result<Item, Error> {
        Ok(self.read()?.find_item(key)?)
    }

    /// One item, found by number (`42`, `#42`) or SHA-256 prefix (≥ 6 hex digits), with its
    /// custody log.
    pub fn show(&self, key: &str) -> Result<ItemRecord, Error> {
        // One snapshot: the row and its log agree even while the item is being moved.
        Ok(self.read()?.snapshot(|l| {
            let item = l.find_item(key)?;
            let events = l.events_of(item.id)?;
            let pruned = l.pruned_events_of(item.id)?;
            Ok(ItemRecord { item, events, pruned })
        })?)
    }

    /// The case session open now, if any.
    pub fn session_status(&self) -> Result<Option<Session>, Error> {
        Ok(self.read()?.open_session()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::Agent;
    use std::time::Duration;

    #[test]
    fn list_show_and_session_status_read_what_the_agent_recorded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let camera = dir.path().join("DCIM/Camera");
        std::fs::create_dir_all(&camera).expect("camera folder");
        let config = crate::config::Config {
            store: Some(dir.path().join("store")),
            cameras: vec![camera.clone()],
            ..crate::config::Config::default()
        };
        let agent = Agent::open_without_model(config).expect("agent");
        assert!(agent.session_status().expect("status").is_none());
        agent.session_start("CASE-1", Some("officer"), Some(Duration::from_secs(600))).expect("session");
        let open = agent.session_status().expect("status").expect("a session is open");
        assert_eq!(open.case_id, "CASE-1");

        let photo = camera.join("IMG_1.jpg");
        std::fs::write(&photo, crate::sample::SamplePhoto::default().jpeg()).expect("photo");
        let o = agent.on_media(&photo);
        let id = o.item.expect("an item");
        agent.session_stop().expect("stop");
        assert!(agent.session_status().expect("status").is_none());

        let in_store = agent.list(None, Listing::InStore).expect("list");
        assert_eq!(in_store.iter().map(|i| i.id).collect::<Vec<_>>(), vec![id], "{o:?}");
        assert!(agent.list(Some("OTHER"), Listing::All).expect("list").is_empty());

        agent.release(&id.to_string(), "false positive", Some("officer")).expect("release");
        assert!(agent.list(None, Listing::InStore).expect("list").is_empty());
        assert_eq!(agent.list(Some("CASE-1"), Listing::All).expect("list").len(), 1);

        let record = agent.show(&format!("#{id}")).expect("show");
        assert_eq!(record.item.id, id);
        assert_eq!(record.item.state, ItemState::Released);
        assert!(record.events.len() >= 2, "decided, moved, released: {:?}", record.events);
        assert!(record.events.windows(2).all(|w| w[0].seq < w[1].seq), "oldest first");
        assert!(matches!(agent.show("#999"), Err(Error::Ledger(crate::ledger::LedgerError::NoSuchItem(_)))));
    }
}
