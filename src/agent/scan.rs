//! `scan`: one pass over what is in the camera folders now, with the retry passes for files
//! that changed while they were handled, ending with the durability barrier. The CLI's
//! `scan` and anything else that wants "handle everything that is there" call
//! [`Agent::scan`]; the watcher has its own loop.
//!
//! Uses only the agent's public API, so it reads as a client of the pipeline.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Agent, Error, Outcome, OutcomeKind, RetryCause};

/// How often a scan looks again at a file that changed while it was handled, and how long it
/// waits before each look.
pub const SCAN_RETRY_PASSES: usize = 3;
/// The pause before each retry pass.
pub const SCAN_RETRY_PAUSE: Duration = Duration::from_millis(300);

impl OutcomeKind {
    /// Every kind, in declaration order.
    pub const ALL: [OutcomeKind; 5] =
        [OutcomeKind::Quarantined, OutcomeKind::Kept, OutcomeKind::Skipped, OutcomeKind::Rejected, OutcomeKind::Retry];

    /// The kind as one lower-case word, the same as its JSON form (`"quarantined"`, …): the
    /// one place the CLI's summary, the demo's lines and the JSON agree on.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Quarantined => "quarantined",
            OutcomeKind::Kept => "kept",
            OutcomeKind::Skipped => "skipped",
            OutcomeKind::Rejected => "rejected",
            OutcomeKind::Retry => "retry",
        }
    }
}

impl std::fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// What [`Agent::scan`] tells its caller while it runs.
#[derive(Debug, Clone, Copy)]
pub enum ScanProgress<'a> {
    /// This many files are pending; each will be [`ScanProgress::Settled`] once.
    Found(usize),
    /// One file's final outcome.
    Settled(&'a Outcome),
}

/// What one [`Agent::scan`] did.
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// Files found pending at the start of the scan.
    pub files: usize,
    /// The final outcome of every file, in the order they were settled (a file retried in a
    /// later pass comes after those settled in an earlier one).
    pub outcomes: Vec<Outcome>,
}

impl ScanReport {
    /// How many files ended in each kind, only kinds that occurred, ordered by name
    /// (`kept`, `quarantined`, `rejected`, `retry`, `skipped`).
    pub fn counts(&self) -> Vec<(OutcomeKind, u64)> {
        let mut counts = BTreeMap::<&'static str, (OutcomeKind, u64)>::new();
        for o in &self.outcomes {
            counts.entry(o.kind.as_str()).or_insert((o.kind, 0)).1 += 1;
        }
        counts.into_values().collect()
    }

    /// Did a file stay changing through every retry pass (it is still in its camera folder,
    /// undecided)?
    pub fn gave_up(&self) -> bool {
        self.outcomes.iter().any(|o| o.kind == OutcomeKind::Retry)
    }
}

impl Agent {
    /// Handle every pending file in the camera folders now (see [`Agent::pending_files`]).
    ///
    /// A file that changed under the agent (replaced, still being written) is looked at again
    /// up to [`SCAN_RETRY_PASSES`] times (one the store could not take is not: it stays for
    /// the next scan or the watcher's backoff), [`SCAN_RETRY_PAUSE`] apart, before its `retry`
    /// outcome stands. `progress` hears how many files are pending, then each file's final
    /// outcome as it is settled (for a progress bar and streaming output). Starts with the
    /// privacy pruning ([`Agent::prune`]). Ends with the durability barrier
    /// ([`Agent::flush`]): what the report says was decided survives a power cut.
    pub fn scan(&self, mut progress: impl FnMut(ScanProgress<'_>)) -> Result<ScanReport, Error> {
        self.scan_with(SCAN_RETRY_PASSES, SCAN_RETRY_PAUSE, &mut progress)
    }

    fn scan_with(
        &self,
        passes: usize,
        pause: Duration,
        progress: &mut dyn FnMut(ScanProgress<'_>),
    ) -> Result<ScanReport, Error> {
        // What `[privacy]` says is past its time goes first; a forgotten decision leaves a
        // marker, so its photo is not among the pending files.
        self.prune_logged();
        let mut todo = self.pending_files(Duration::ZERO)?;
        progress(ScanProgress::Found(todo.len()));
        let mut report = ScanReport { files: todo.len(), outcomes: Vec::with_capacity(todo.len()) };
        for pass in 0..=passes {
            if pass > 0 {
                std::thread::sleep(pause);
            }
            let mut again = Vec::new();
            for f in todo {
                let o = self.on_media(&f);
                // Looked at again only when busy: a failing store is not fixed in a second.
                if o.kind == OutcomeKind::Retry && o.retry == Some(RetryCause::Busy) && pass < passes {
                    again.push(f);
                    continue;
                }
                progress(ScanProgress::Settled(&o));
                report.outcomes.push(o);
            }
            todo = again;
            if todo.is_empty() {
                break;
            }
        }
        self.flush()?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(kind: OutcomeKind) -> Outcome {
        Outcome {
            path: "/cam/IMG_1.jpg".into(),
            kind,
            item: None,
            sha256: None,
            source: None,
            case_id: None,
            rule: None,
            score: None,
            handle_ms: 0.0,
            detail: None,
            returned_to: None,
            retry: None,
        }
    }

    #[test]
    fn the_text_of_a_kind_is_its_json_form() {
        for k in OutcomeKind::ALL {
            assert_eq!(serde_json::to_value(k).expect("serialises"), serde_json::Value::from(k.as_str()));
        }
        assert_eq!(format!("{:<7}|", OutcomeKind::Kept), "kept   |");
    }

    #[test]
    fn counts_are_by_name_and_only_what_occurred() {
        let report = ScanReport {
            files: 4,
            outcomes: [OutcomeKind::Skipped, OutcomeKind::Quarantined, OutcomeKind::Kept, OutcomeKind::Skipped]
                .into_iter()
                .map(outcome)
                .collect(),
        };
        assert_eq!(
            report.counts(),
            vec![(OutcomeKind::Kept, 1), (OutcomeKind::Quarantined, 1), (OutcomeKind::Skipped, 2)]
        );
        assert!(!report.gave_up());
    }

    #[test]
    fn a_scan_settles_every_pending_file_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let camera = dir.path().join("DCIM/Camera");
        std::fs::create_dir_all(&camera).expect("camera folder");
        std::fs::write(camera.join("IMG_1.jpg"), crate::sample::SamplePhoto::default().jpeg()).expect("photo");
        std::fs::write(camera.join("IMG_2.jpg"), b"").expect("empty photo");
        std::fs::write(camera.join("notes.txt"), b"not media").expect("text");
        let config = crate::config::Config {
            store: Some(dir.path().join("store")),
            cameras: vec![camera],
            ..crate::config::Config::default()
        };
        let agent = Agent::open_without_model(config).expect("agent");
        let mut seen = Vec::new();
        let report = agent
            .scan_with(1, Duration::ZERO, &mut |p| {
                if let ScanProgress::Settled(o) = p {
                    seen.push(o.path.clone());
                }
            })
            .expect("scan");
        assert_eq!(report.files, 2, "two candidate names");
        assert_eq!(seen.len(), 2);
        let kinds: Vec<OutcomeKind> = report.counts().into_iter().map(|(k, _)| k).collect();
        assert!(kinds.contains(&OutcomeKind::Rejected), "the empty file is rejected: {kinds:?}");
        // A second scan does not look at the decided photo again (a rejected file is looked
        // at again, its rejection deduplicated by the ledger).
        let again = agent.scan_with(1, Duration::ZERO, &mut |_| {}).expect("second scan");
        assert!(again.outcomes.iter().all(|o| !o.path.ends_with("IMG_1.jpg")), "{:?}", again.outcomes);
        assert!(again.files < report.files, "{} then {}", report.files, again.files);
    }
}
