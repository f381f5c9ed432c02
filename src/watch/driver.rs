//! Runs the [`Machine`]'s actions against [`Effects`] with the time from a [`Clock`].
//!
//! The same driver runs the real watcher (the agent, the disk, `Instant`) and the test cases
//! (a simulated phone and a mock clock): only the wait for the next lane message differs.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use tracing::{debug, info};

use super::collector::{Shared, Trigger};
use super::machine::{Action, Handling, Input, Machine, Time, Unsettled};
use crate::quarantine::fsops::FileId;

/// The time the machine is driven by.
pub(crate) trait Clock {
    /// Time since the watcher started.
    fn now(&self) -> Time;
}

/// The real clock: monotonic time since the watcher started.
pub(crate) struct SystemClock(pub Instant);

impl Clock for SystemClock {
    fn now(&self) -> Time {
        self.0.elapsed()
    }
}

/// Everything the machine's actions touch.
pub(crate) trait Effects {
    /// Give a file to the agent: what became of it (a file that is gone is `Done`).
    fn handle(&mut self, path: &Path) -> Handling;
    /// What the ledger has not settled in the camera folders, with ages; `None` on failure.
    fn unsettled(&mut self) -> Option<Vec<Unsettled>>;
    /// The identity of whatever is at `path` now, without following links.
    fn probe(&mut self, path: &Path) -> Option<FileId>;
    /// Bring the watches in line with the folders (`forget`: a camera folder was removed, so
    /// no watch can be trusted). True when a folder is newly watched.
    fn refresh_folders(&mut self, forget: bool) -> bool;
    /// The durability barrier; true when it held.
    fn flush(&mut self) -> bool;
    /// Can the store take these waiting files now, as far as a cheap check can tell?
    fn store_ready(&mut self, waiting: &[PathBuf]) -> bool;
    fn warn_overdue(&mut self);
}

/// The machine, its effects and its clock.
pub(crate) struct Driver<E, C> {
    pub machine: Machine,
    pub effects: E,
    pub clock: C,
    shared: std::sync::Arc<Shared>,
    /// Every action run, with its time (the test cases compare it).
    pub log: Option<Vec<(Time, Action)>>,
}

impl<E: Effects, C: Clock> Driver<E, C> {
    pub fn new(machine: Machine, effects: E, clock: C, shared: std::sync::Arc<Shared>) -> Self {
        Driver { machine, effects, clock, shared, log: None }
    }

    /// One batch: the input, every action it leads to, then the batch's end (the durability
    /// barrier when the lane is drained).
    pub fn step(&mut self, input: Input, lane: &Receiver<(PathBuf, Trigger)>) {
        self.feed(input);
        self.feed(Input::BatchEnd { lane_empty: lane.is_empty() });
    }

    /// The control lane asked for a rescan: take the flag, then what the lane still holds.
    pub fn rescan(&mut self, lane: &Receiver<(PathBuf, Trigger)>) {
        self.shared.rescan.store(false, Ordering::SeqCst);
        // The totals so far say which it was: the kernel's queue or our own lane.
        info!(
            overflows = self.shared.overflows.load(Ordering::Relaxed),
            lane_full = self.shared.lane_full.load(Ordering::Relaxed),
            "rescan requested (watcher queue overflow or lane full); reconciling"
        );
        let queued = lane.try_iter().collect();
        self.step(Input::Rescan { queued }, lane);
    }

    /// How long to wait for a lane message before [`Input::Tick`].
    pub fn timeout(&self) -> Duration {
        let now = self.clock.now();
        self.machine.next_deadline().map_or(Duration::from_secs(1), |d| d.saturating_sub(now))
    }

    /// Run `input` and every action it leads to, results' follow-ups first.
    pub fn feed(&mut self, input: Input) {
        let mut queue: VecDeque<Action> = self.machine.on(self.clock.now(), input).into();
        while let Some(action) = queue.pop_front() {
            if let Some(log) = &mut self.log {
                log.push((self.clock.now(), action.clone()));
            }
            let Some(result) = self.run(action) else { continue };
            let follow = self.machine.on(self.clock.now(), result);
            for a in follow.into_iter().rev() {
                queue.push_front(a);
            }
        }
    }

    fn run(&mut self, action: Action) -> Option<Input> {
        Some(match action {
            Action::Handle(path) => {
                let result = self.effects.handle(&path);
                Input::Handled { path, result }
            }
            Action::Settle { path, until } => {
                debug!(path = %path.display(), until_ms = until.as_millis() as u64, "settling");
                return None;
            }
            Action::Backoff { path, tries, until } => {
                debug!(path = %path.display(), tries, until_ms = until.as_millis() as u64, "will try again");
                return None;
            }
            Action::ProbeStore(paths) => Input::StoreProbed { ready: self.effects.store_ready(&paths) },
            Action::Probe(path) => {
                let id = self.effects.probe(&path);
                Input::Probed { path, id }
            }
            Action::Reconcile => Input::Listed(self.effects.unsettled()),
            Action::RefreshFolders => {
                let forget = self.shared.folder_gone.swap(false, Ordering::SeqCst);
                Input::FoldersRefreshed { added: self.effects.refresh_folders(forget) }
            }
            Action::WarnOverdue => {
                self.effects.warn_overdue();
                return None;
            }
            Action::Flush => Input::Flushed { ok: self.effects.flush() },
        })
    }
}
