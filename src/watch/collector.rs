//! notify's side of the watcher: each event becomes a [`Signal`] and goes into one of two lanes.
//!
//! The callback runs on notify's own thread and must stay cheap: it never touches the agent,
//! the ledger or the disk. A finished file (close-after-write, or a rename into the folder —
//! how Android camera apps and MediaStore publish a `.pending-…` file) goes into the bounded
//! lane as [`Trigger::Complete`]; a `Create` without a close yet goes in as
//! [`Trigger::Created`] (handled once its size stops changing: hard links, FUSE). The control
//! lane is lossless: if the bounded lane is full, or inotify's own queue overflowed
//! (`need_rescan()`), one message asks for a rescan, and a flag keeps a second one from being
//! queued before the first is taken (as watchexec does).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};
use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::EventKind;
use tracing::warn;

use crate::media;

/// What an event says about a file in a camera folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// Written and closed, or renamed into the folder: complete.
    Complete,
    /// Created; not known to be complete yet.
    Created,
}

/// One notify event, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Signal {
    /// A candidate file: goes into the bounded lane.
    File(PathBuf, Trigger),
    /// inotify's queue overflowed: events were lost in the kernel.
    Overflow,
    /// notify reported an error: what it would have said is unknown.
    WatcherError(String),
    /// A camera folder itself was removed: its watch is gone with it.
    FolderGone,
    /// Nothing the watcher acts on (other kinds, temporary or non-media names).
    Ignored,
}

/// Classify one event from notify. Pure: no I/O, no state.
pub(crate) fn classify(event: &notify::Result<notify::Event>, cameras: &[PathBuf]) -> Signal {
    let event = match event {
        Ok(e) => e,
        Err(e) => return Signal::WatcherError(e.to_string()),
    };
    if event.need_rescan() {
        return Signal::Overflow;
    }
    if matches!(event.kind, EventKind::Remove(_)) && event.paths.iter().any(|p| cameras.contains(p)) {
        return Signal::FolderGone;
    }
    let (path, trigger) = match (&event.kind, event.paths.as_slice()) {
        (EventKind::Access(AccessKind::Close(AccessMode::Write)), [p, ..]) => (p, Trigger::Complete),
        (EventKind::Modify(ModifyKind::Name(RenameMode::To)), [p, ..]) => (p, Trigger::Complete),
        (EventKind::Create(CreateKind::File | CreateKind::Any), [p, ..]) => (p, Trigger::Created),
        _ => return Signal::Ignored,
    };
    if !is_candidate(path) {
        return Signal::Ignored;
    }
    Signal::File(path.clone(), trigger)
}

fn is_candidate(path: &Path) -> bool {
    path.file_name().is_some_and(media::is_candidate_name)
}

/// Counters and flags shared between the callback and the consumer.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// A rescan is asked for and not yet taken by the consumer.
    pub rescan: AtomicBool,
    /// A camera folder was removed since the consumer last looked.
    pub folder_gone: AtomicBool,
    pub events: AtomicU64,
    pub lane_full: AtomicU64,
    pub overflows: AtomicU64,
}

/// The notify callback: classifies, counts and puts into a lane; never blocks.
pub(crate) struct Collector {
    pub lane: Sender<(PathBuf, Trigger)>,
    pub control: Sender<()>,
    pub shared: Arc<Shared>,
    pub cameras: Vec<PathBuf>,
}

impl Collector {
    fn ask_rescan(&self) {
        if !self.shared.rescan.swap(true, Ordering::SeqCst) {
            let _ = self.control.send(());
        }
    }

    /// Act on one signal (what [`notify::EventHandler::handle_event`] does after [`classify`]).
    pub fn deliver(&self, signal: Signal) {
        match signal {
            Signal::File(path, trigger) => {
                self.shared.events.fetch_add(1, Ordering::Relaxed);
                match self.lane.try_send((path, trigger)) {
                    Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                    Err(TrySendError::Full(_)) => {
                        self.shared.lane_full.fetch_add(1, Ordering::Relaxed);
                        self.ask_rescan();
                    }
                }
            }
            Signal::Overflow => {
                self.shared.overflows.fetch_add(1, Ordering::Relaxed);
                self.ask_rescan();
            }
            Signal::WatcherError(e) => {
                warn!(error = %e, "watcher error; rescanning");
                self.ask_rescan();
            }
            Signal::FolderGone => self.shared.folder_gone.store(true, Ordering::SeqCst),
            Signal::Ignored => {}
        }
    }
}

impl notify::EventHandler for Collector {
    fn handle_event(&mut self, event: notify::Result<notify::Event>) {
        let signal = classify(&event, &self.cameras);
        self.deliver(signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{Flag, RemoveKind};
    use notify::Event;

    fn cams() -> Vec<PathBuf> {
        vec![PathBuf::from("/p/Camera")]
    }

    #[test]
    fn close_write_and_rename_to_are_complete_create_is_not() {
        let p = PathBuf::from("/p/Camera/IMG_1.jpg");
        let close = Event::new(EventKind::Access(AccessKind::Close(AccessMode::Write))).add_path(p.clone());
        let to = Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::To))).add_path(p.clone());
        let create = Event::new(EventKind::Create(CreateKind::File)).add_path(p.clone());
        assert_eq!(classify(&Ok(close), &cams()), Signal::File(p.clone(), Trigger::Complete));
        assert_eq!(classify(&Ok(to), &cams()), Signal::File(p.clone(), Trigger::Complete));
        assert_eq!(classify(&Ok(create), &cams()), Signal::File(p, Trigger::Created));
    }

    #[test]
    fn overflow_errors_and_folder_removal_are_control_signals() {
        let overflow = Event::new(EventKind::Other).set_flag(Flag::Rescan);
        assert_eq!(classify(&Ok(overflow), &cams()), Signal::Overflow);
        let gone = Event::new(EventKind::Remove(RemoveKind::Folder)).add_path(PathBuf::from("/p/Camera"));
        assert_eq!(classify(&Ok(gone), &cams()), Signal::FolderGone);
        let err = Err(notify::Error::generic("boom"));
        assert!(matches!(classify(&err, &cams()), Signal::WatcherError(_)));
    }
}
