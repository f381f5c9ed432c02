//! The watcher's decisions as a pure state machine: no notify, no thread, no disk, no agent.
//!
//! [`Machine::on`] takes the time (from the driver's injected clock) and one [`Input`], and
//! returns the [`Action`]s to run, in order. Inputs are either what the lanes delivered
//! (a file, a rescan, a timer tick, start, stop) or the result of an action the driver ran
//! (what the agent did with a file, what a reconcile walk found, what a stat saw, whether the
//! durability barrier held). The driver runs the follow-up actions of a result before the
//! rest (depth first), so the order is the one a direct call would have.
//!
//! What it decides:
//! - a complete file (close-after-write, rename into the folder) is handled now;
//! - a created file is *settling*: probed every `settle`, handled once its identity (inode,
//!   size, mtime) is the same twice in a row, dropped if it is gone (renamed out, deleted);
//!   a file the agent could not finish (`Retry`) settles the same way;
//! - a rescan (inotify overflow, a full lane, a watcher error) first handles what the lane
//!   still held, then reconciles: walk the folders for what the ledger has not settled,
//!   handle the old files, let the fresh ones settle;
//! - timers: settling files, the folder check every `folder_check` (a camera folder that
//!   appeared or was made again is watched and reconciled at once) and the reconcile timer;
//!   a timer is re-armed when its batch is over, so slow work never makes it fire back to back;
//! - **every batch that handled a file ends with the durability barrier** ([`Action::Flush`])
//!   once the lane is drained, and a failed barrier is tried again after the next batch; the
//!   watcher's stop always ends with one.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use tracing::debug;

use super::collector::Trigger;
use crate::quarantine::fsops::FileId;

/// Time since the watcher started, as the driver's clock says.
pub(crate) type Time = Duration;

/// The periods the machine works with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// How long a file's identity must stay unchanged before it is handled without a close.
    pub settle: Duration,
    /// How often the folders are reconciled against the ledger anyway.
    pub reconcile_interval: Duration,
    /// How often the camera folders themselves are checked (appeared, gone, replaced).
    pub folder_check: Duration,
}

/// A file the reconcile walk found that the ledger has not settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsettled {
    pub path: PathBuf,
    /// Time since its last modification; `None` if unknown (or in the future).
    pub age: Option<Duration>,
}

/// What happened, as the machine is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    /// The watcher starts.
    Start,
    /// One message from the bounded lane.
    File(PathBuf, Trigger),
    /// The control lane asks for a rescan; `queued` is what the bounded lane still held.
    Rescan { queued: Vec<(PathBuf, Trigger)> },
    /// Nothing arrived before the deadline.
    Tick,
    /// The watcher is asked to stop.
    Stop,
    /// Result of [`Action::Handle`]: `retry` when the agent asked to look again and the file
    /// is still there.
    Handled { path: PathBuf, retry: bool },
    /// Result of [`Action::Reconcile`]; `None` when the walk failed (logged by the driver).
    Listed(Option<Vec<Unsettled>>),
    /// Result of [`Action::Probe`]: the file's identity now, `None` if it is gone.
    Probed { path: PathBuf, id: Option<FileId> },
    /// Result of [`Action::RefreshFolders`]: a folder is newly watched.
    FoldersRefreshed { added: bool },
    /// Result of [`Action::Flush`].
    Flushed { ok: bool },
    /// Every action of the batch has run; `lane_empty` when nothing more is queued.
    BatchEnd { lane_empty: bool },
}

/// What the driver is to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Give the file to the agent now; answer with [`Input::Handled`].
    Handle(PathBuf),
    /// Nothing to run: the file is settling and is looked at again at `until`.
    Settle { path: PathBuf, until: Time },
    /// Stat a settling file; answer with [`Input::Probed`].
    Probe(PathBuf),
    /// Walk the folders for what the ledger has not settled; answer with [`Input::Listed`].
    Reconcile,
    /// Bring the watches in line with the folders; answer with [`Input::FoldersRefreshed`].
    RefreshFolders,
    /// Log retention that is overdue.
    WarnOverdue,
    /// The durability barrier; answer with [`Input::Flushed`].
    Flush,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Handle(p) => write!(f, "handle {}", p.display()),
            Action::Settle { path, until } => write!(f, "settle {} until {}", path.display(), until.as_millis()),
            Action::Probe(p) => write!(f, "probe {}", p.display()),
            Action::Reconcile => f.write_str("reconcile"),
            Action::RefreshFolders => f.write_str("refresh_folders"),
            Action::WarnOverdue => f.write_str("warn_overdue"),
            Action::Flush => f.write_str("flush"),
        }
    }
}

/// Counters the machine keeps for the run's report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub handled: u64,
    pub rescans: u64,
    pub reconciles: u64,
}

/// A file that is settling: since when, and the identity last seen (`None` before the
/// first probe).
#[derive(Debug, Clone, Copy)]
struct Settling {
    since: Time,
    seen: Option<FileId>,
}

/// The state machine; see the module docs.
#[derive(Debug)]
pub(crate) struct Machine {
    timing: Timing,
    settling: BTreeMap<PathBuf, Settling>,
    /// Files were handled since the last durability barrier that held.
    unflushed: bool,
    /// The first folder refresh (at start) is followed by the start-up reconcile.
    started: bool,
    /// `None` while the timer's work runs; armed again at the end of the batch.
    next_reconcile: Option<Time>,
    next_folder_check: Option<Time>,
    counts: Counts,
}

impl Machine {
    pub fn new(timing: Timing) -> Machine {
        Machine {
            timing,
            settling: BTreeMap::new(),
            unflushed: false,
            started: false,
            next_reconcile: None,
            next_folder_check: None,
            counts: Counts::default(),
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The files settling now, in path order.
    #[cfg(test)]
    pub fn settling(&self) -> impl Iterator<Item = &PathBuf> {
        self.settling.keys()
    }

    /// Handled files not yet behind a durability barrier that held.
    #[cfg(test)]
    pub fn unflushed(&self) -> bool {
        self.unflushed
    }

    /// When the machine next wants a [`Input::Tick`], if ever.
    pub fn next_deadline(&self) -> Option<Time> {
        let settle = self.settling.values().map(|s| s.since + self.timing.settle).min();
        [settle, self.next_reconcile, self.next_folder_check].into_iter().flatten().min()
    }

    /// Take one input at `now`; the actions to run, in order.
    pub fn on(&mut self, now: Time, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Start => out.push(Action::RefreshFolders),
            Input::File(path, trigger) => {
                self.accept(now, path, trigger, &mut out);
                self.timers(now, &mut out);
            }
            Input::Rescan { queued } => {
                self.counts.rescans += 1;
                // What is queued first: real events, cheaper than a walk.
                for (path, trigger) in queued {
                    self.accept(now, path, trigger, &mut out);
                }
                self.reconcile(&mut out);
                self.timers(now, &mut out);
            }
            Input::Tick => self.timers(now, &mut out),
            Input::Stop => out.push(Action::Flush),
            Input::Handled { path, retry } => {
                self.counts.handled += 1;
                self.unflushed = true;
                if retry {
                    // Still being written or changed under us: look again once it has settled.
                    self.settle(now, path, None, &mut out);
                }
            }
            Input::Listed(files) => self.listed(now, files.unwrap_or_default(), &mut out),
            Input::Probed { path, id } => self.probed(now, path, id, &mut out),
            Input::FoldersRefreshed { added } => {
                if !self.started {
                    self.started = true;
                    self.reconcile(&mut out);
                    out.push(Action::WarnOverdue);
                } else if added {
                    // Whatever was written before the watch took hold.
                    self.reconcile(&mut out);
                }
            }
            Input::Flushed { ok } => self.unflushed |= !ok,
            Input::BatchEnd { lane_empty } => {
                let t = self.timing;
                self.next_reconcile.get_or_insert(now + t.reconcile_interval);
                self.next_folder_check.get_or_insert(now + t.folder_check);
                if lane_empty && self.unflushed {
                    self.unflushed = false;
                    out.push(Action::Flush);
                }
            }
        }
        out
    }

    fn accept(&mut self, now: Time, path: PathBuf, trigger: Trigger, out: &mut Vec<Action>) {
        match trigger {
            Trigger::Complete => {
                self.settling.remove(&path);
                out.push(Action::Handle(path));
            }
            Trigger::Created => {
                if !self.settling.contains_key(&path) {
                    self.settle(now, path, None, out);
                }
            }
        }
    }

    /// (Re)start the settle timer of `path`.
    fn settle(&mut self, now: Time, path: PathBuf, seen: Option<FileId>, out: &mut Vec<Action>) {
        out.push(Action::Settle { path: path.clone(), until: now + self.timing.settle });
        self.settling.insert(path, Settling { since: now, seen });
    }

    fn reconcile(&mut self, out: &mut Vec<Action>) {
        self.counts.reconciles += 1;
        out.push(Action::Reconcile);
    }

    /// Anything the ledger has not settled is handled now, or left to settle if it was
    /// written too recently to be sure it is complete.
    fn listed(&mut self, now: Time, files: Vec<Unsettled>, out: &mut Vec<Action>) {
        for f in files {
            let fresh = f.age.is_some_and(|age| age < self.timing.settle);
            if !fresh {
                out.push(Action::Handle(f.path));
            } else if !self.settling.contains_key(&f.path) {
                self.settle(now, f.path, None, out);
            }
        }
    }

    /// A settling file is handled once unchanged for `settle`, dropped once gone.
    fn probed(&mut self, now: Time, path: PathBuf, id: Option<FileId>, out: &mut Vec<Action>) {
        let Some(previous) = self.settling.get(&path) else { return };
        match id {
            None => {
                self.settling.remove(&path);
            }
            Some(id) if previous.seen == Some(id) => {
                self.settling.remove(&path);
                debug!(path = %path.display(), "settled without a close event");
                out.push(Action::Handle(path));
            }
            Some(id) => self.settle(now, path, Some(id), out),
        }
    }

    fn timers(&mut self, now: Time, out: &mut Vec<Action>) {
        let settle = self.timing.settle;
        out.extend(
            self.settling.iter().filter(|(_, s)| now >= s.since + settle).map(|(p, _)| Action::Probe(p.clone())),
        );
        if self.next_folder_check.is_some_and(|t| now >= t) {
            self.next_folder_check = None;
            out.push(Action::RefreshFolders);
        }
        if self.next_reconcile.is_some_and(|t| now >= t) {
            self.next_reconcile = None;
            self.reconcile(out);
            out.push(Action::WarnOverdue);
        }
    }
}
