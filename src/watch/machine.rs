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
//!   a file the agent found still being written (`Retry`, busy) settles the same way;
//! - a file the agent could not finish for another reason **backs off**: it is tried again
//!   after `retry_first`, then twice as long after each failed try, up to `retry_cap`, so a
//!   stuck photo is re-read a bounded number of times (about ten in the first ten minutes,
//!   then once per `retry_cap`);
//! - when the store or the ledger was the reason (full, I/O error, read-only), the store is
//!   *down*: besides each file's own backoff, a cheap probe of the store runs (`probe_first`,
//!   doubling to `probe_cap`), and once it says the store can take the waiting files, or any
//!   file goes into the store, every file waiting for the store is tried at once, one at a time,
//!   fewest tries first, stopping at the first that fails again. Nothing waits for an event:
//!   the timers pick waiting files up;
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
    /// How long a file that could not be finished waits before its second try; each failed try
    /// doubles it, up to `retry_cap`.
    pub retry_first: Duration,
    pub retry_cap: Duration,
    /// How long after the store went down it is first probed; each probe that fails doubles
    /// it, up to `probe_cap`.
    pub probe_first: Duration,
    pub probe_cap: Duration,
}

/// `first`, doubled `n` times, at most `cap`: the wait before the next try after `n` failed
/// ones (the watcher's per-file retries and store probes, and `watch` opening its store).
pub(crate) fn backoff(first: Duration, cap: Duration, n: u32) -> Duration {
    first.saturating_mul(1u32 << n.min(20)).min(cap)
}

/// What became of a file the agent was given ([`Input::Handled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handling {
    /// Moved into the store: nothing more to do, and the store takes files.
    Stored,
    /// Kept, skipped, rejected or gone: nothing more to do.
    Done,
    /// Still being written, or changed while it was read: it settles again (cheap stat probes).
    Settle,
    /// The file could not be finished for a reason of its own: tried again after its backoff.
    Backoff,
    /// The store or the ledger could not take it (full, I/O error, read-only): tried again
    /// after its backoff, and the store is down until a probe or a file says otherwise.
    Store,
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
    /// Result of [`Action::Handle`]: what the agent did with the file (a file that is gone
    /// is `Done`, whatever the agent said).
    Handled { path: PathBuf, result: Handling },
    /// Result of [`Action::Reconcile`]; `None` when the walk failed (logged by the driver).
    Listed(Option<Vec<Unsettled>>),
    /// Result of [`Action::Probe`]: the file's identity now, `None` if it is gone.
    Probed { path: PathBuf, id: Option<FileId> },
    /// Result of [`Action::RefreshFolders`]: a folder is newly watched.
    FoldersRefreshed { added: bool },
    /// Result of [`Action::Flush`].
    Flushed { ok: bool },
    /// Result of [`Action::ProbeStore`]: the store looks able to take the waiting files.
    StoreProbed { ready: bool },
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
    /// Nothing to run: `tries` tries of the file failed; it is tried again at `until`.
    Backoff { path: PathBuf, tries: u32, until: Time },
    /// Check cheaply whether the store can take these waiting files now (free space, a small
    /// write); answer with [`Input::StoreProbed`].
    ProbeStore(Vec<PathBuf>),
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
            Action::Backoff { path, tries, until } => {
                write!(f, "backoff {} until {} (try {tries} failed)", path.display(), until.as_millis())
            }
            Action::ProbeStore(paths) => write!(f, "probe_store {}", paths.len()),
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
    /// Tries of files whose earlier try failed.
    pub retries: u64,
    /// Times the store went down (a file could not be stored while it was up).
    pub store_outages: u64,
}

/// A file that is settling: since when, and the identity last seen (`None` before the
/// first probe).
#[derive(Debug, Clone, Copy)]
struct Settling {
    since: Time,
    seen: Option<FileId>,
}

/// A file whose last try failed: how many tries failed, when it is due again, and whether the
/// store was the reason.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    tries: u32,
    due: Time,
    store: bool,
}

/// The store is down: how many probes failed, and when the next is due (`None` while a probe
/// or the try it let through runs). Once a file a probe let through failed anyway (`lied`),
/// the probe cannot be trusted and backs off like a file does, to `retry_cap`: a store with
/// room for a small write but not for the photos is not re-read every `probe_cap`.
#[derive(Debug, Clone, Copy)]
struct Down {
    probes: u32,
    next_probe: Option<Time>,
    lied: bool,
}

/// The state machine; see the module docs.
#[derive(Debug)]
pub(crate) struct Machine {
    timing: Timing,
    settling: BTreeMap<PathBuf, Settling>,
    waiting: BTreeMap<PathBuf, Waiting>,
    /// `Some` while the store is down.
    down: Option<Down>,
    /// The store looks able again: every file waiting for it is tried now, one at a time.
    draining: bool,
    /// The waiting file being tried now (its result brings the next one).
    retrying: Option<PathBuf>,
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
            waiting: BTreeMap::new(),
            down: None,
            draining: false,
            retrying: None,
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

    /// The files waiting for another try, in path order, with the tries that failed.
    #[cfg(test)]
    pub fn waiting(&self) -> impl Iterator<Item = (&PathBuf, u32)> {
        self.waiting.iter().map(|(p, w)| (p, w.tries))
    }

    /// Handled files not yet behind a durability barrier that held.
    #[cfg(test)]
    pub fn unflushed(&self) -> bool {
        self.unflushed
    }

    /// When the machine next wants a [`Input::Tick`], if ever.
    pub fn next_deadline(&self) -> Option<Time> {
        let settle = self.settling.values().map(|s| s.since + self.timing.settle).min();
        let due = self.waiting.values().map(|w| w.due).min();
        let probe = self.down.and_then(|d| d.next_probe).filter(|_| self.waiting.values().any(|w| w.store));
        [settle, due, probe, self.next_reconcile, self.next_folder_check].into_iter().flatten().min()
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
            Input::Handled { path, result } => {
                self.counts.handled += 1;
                self.unflushed = true;
                self.handled(now, path, result, &mut out);
            }
            Input::StoreProbed { ready } => {
                let t = self.timing;
                if let Some(d) = &mut self.down {
                    if ready {
                        self.draining = true;
                    } else {
                        d.probes += 1;
                        d.next_probe = Some(now + t.probe_wait(d.probes, d.lied));
                    }
                }
                self.next_waiting(now, &mut out);
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
        // Written again (or a new file under the name): whatever failed before, it starts over.
        self.waiting.remove(&path);
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
        // A file waiting for another try keeps its own schedule.
        let files: Vec<Unsettled> = files.into_iter().filter(|f| !self.waiting.contains_key(&f.path)).collect();
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
        self.probe_store(now, out);
        self.next_waiting(now, out);
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

impl Timing {
    /// The wait before the next try of a file after `failed` tries of it failed.
    fn retry_wait(&self, failed: u32) -> Duration {
        backoff(self.retry_first, self.retry_cap, failed.saturating_sub(1))
    }

    /// The wait before the next store probe after `failed` probes failed.
    fn probe_wait(&self, failed: u32, lied: bool) -> Duration {
        backoff(self.probe_first, if lied { self.retry_cap.max(self.probe_cap) } else { self.probe_cap }, failed)
    }
}

/// Waiting files, store probes and backoff.
impl Machine {
    /// What the agent did with `path`.
    fn handled(&mut self, now: Time, path: PathBuf, result: Handling, out: &mut Vec<Action>) {
        if self.retrying.as_ref() == Some(&path) {
            self.retrying = None;
        }
        let earlier = self.waiting.remove(&path);
        match result {
            Handling::Stored => {
                // A file went into the store: it takes files again.
                if self.down.take().is_some() {
                    self.draining = true;
                }
            }
            Handling::Done => {}
            // Still being written or changed under us: look again once it has settled.
            Handling::Settle => self.settle(now, path, None, out),
            Handling::Backoff | Handling::Store => {
                let store = result == Handling::Store;
                let tries = earlier.map_or(0, |w| w.tries) + 1;
                let until = now + self.timing.retry_wait(tries);
                out.push(Action::Backoff { path: path.clone(), tries, until });
                self.waiting.insert(path, Waiting { tries, due: until, store });
                if store {
                    self.store_failed(now);
                }
            }
        }
        self.next_waiting(now, out);
    }

    /// A file could not be stored: the store is down (again), and the files waiting for it
    /// wait for their own backoff or the next probe.
    fn store_failed(&mut self, now: Time) {
        let trial = std::mem::replace(&mut self.draining, false);
        let t = self.timing;
        match &mut self.down {
            None => {
                self.counts.store_outages += 1;
                self.down = Some(Down { probes: 0, next_probe: Some(now + t.probe_wait(0, false)), lied: false });
            }
            // The probe said yes, but a file failed while it was let through: probe later, and
            // trust the probe less. (A failure while a probe is merely under way says nothing
            // about the probe.)
            Some(d) if trial => {
                d.probes += 1;
                d.lied = true;
                d.next_probe = Some(now + t.probe_wait(d.probes, true));
            }
            Some(_) => {}
        }
    }

    /// While the store is down and files wait for it: probe it when the probe is due.
    fn probe_store(&mut self, now: Time, out: &mut Vec<Action>) {
        let Some(d) = &mut self.down else { return };
        if self.retrying.is_some() || d.next_probe.is_none_or(|t| now < t) {
            return;
        }
        let paths: Vec<PathBuf> = self.waiting.iter().filter(|(_, w)| w.store).map(|(p, _)| p.clone()).collect();
        if !paths.is_empty() {
            d.next_probe = None;
            out.push(Action::ProbeStore(paths));
        }
    }

    /// Try the next waiting file, if one is due (or, while draining, any waiting for the
    /// store): fewest failed tries first, then the one due first. One at a time, so a store
    /// that fails again stops the drain.
    fn next_waiting(&mut self, now: Time, out: &mut Vec<Action>) {
        if self.retrying.is_some() || (self.down.is_some_and(|d| d.next_probe.is_none()) && !self.draining) {
            return;
        }
        let draining = self.draining;
        let next = self
            .waiting
            .iter()
            .filter(|(_, w)| w.due <= now || (draining && w.store))
            .min_by_key(|(p, w)| (w.tries, w.due, (*p).clone()))
            .map(|(p, _)| p.clone());
        match next {
            Some(path) => {
                self.counts.retries += 1;
                self.retrying = Some(path.clone());
                out.push(Action::Handle(path));
            }
            None => {
                self.draining = false;
                // A probe's yes with nothing left to let through: probe again on schedule.
                let t = self.timing;
                if let Some(d) = self.down.as_mut().filter(|d| d.next_probe.is_none() && draining) {
                    d.next_probe = Some(now + t.probe_wait(d.probes, d.lied));
                }
            }
        }
    }
}
