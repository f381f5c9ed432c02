//! Decide: context first (an officer's tag, an earlier release of the same bytes, a case
//! session, duty hours and work sites), so that the classifier only runs when the verdict
//! depends on it; then the policy turns the evidence into a verdict.

use std::path::Path;

use tracing::{debug, info, warn};

use crate::classify::{self, Assessment, ClassifyError};
use crate::media::{ExifFacts, MediaKind};
use crate::policy::{self, Evidence, Score, Verdict};

use super::commit::Tag;
use super::intake::Facts;
use super::{Agent, Error, Judge, Model};

impl Agent {
    /// The verdict on `f`, and the classifier's assessment when it was asked. `bytes` are the
    /// image bytes intake hashed (none for a video or an image over `max_image_bytes`).
    pub(super) fn decide(
        &self,
        f: &Facts<'_>,
        bytes: Option<Vec<u8>>,
        tag: Option<&Tag<'_>>,
        keyframe: Option<&[u8]>,
    ) -> Result<(Verdict, Option<Assessment>), Error> {
        let shot_at = f.exif.capture_time.or_else(|| local_time(f.id.mtime_ns));
        let times = session_times(f);
        let (released_before, sessions, capture) = {
            let ledger = self.ledger();
            let (from, to) = (times.iter().min().copied(), times.iter().max().copied());
            let (from, to) = (from.unwrap_or(f.first_seen), to.unwrap_or(f.first_seen));
            (
                ledger.was_released(&f.sha256)?,
                ledger.sessions_overlapping(from, to)?,
                ledger.capture_with_sha(&f.sha256)?,
            )
        };
        // A camera app that also saved a gallery copy of a case-camera photo: the same bytes go
        // into the same case, linked to the capture by their SHA-256.
        if let (None, Some((item, case))) = (tag, capture) {
            let rule = format!("the same SHA-256 as case-camera evidence #{item}: the camera app's gallery copy");
            let verdict =
                Verdict { action: policy::Action::Quarantine, source: policy::Source::Manual, case_id: case, rule };
            return Ok((verdict, None));
        }
        // The first of the photo's times that some session covers decides which session.
        let session = times.iter().find_map(|t| sessions.iter().find(|s| s.covers(*t)));
        let context = Evidence {
            manual_case: tag.map(|t| t.case),
            released_before,
            session,
            shot_at,
            gps: f.exif.gps,
            score: None,
            unscored_because: None,
        };
        let ctx = policy::Context {
            policy: &self.config.policy,
            duty: &self.config.duty,
            work_sites: &self.config.work_sites,
        };
        let verdict = policy::decide(&context, &ctx);
        // An officer's tag still runs the model: its embedding is what the classifier learns from.
        if verdict.source.needs_no_score() && tag.is_none() {
            return Ok((verdict, None));
        }
        let (assessment, unscored) = self.judge(f, bytes, keyframe);
        if assessment.is_none() && unscored.is_none() {
            return Ok((verdict, None));
        }
        let scored = Evidence {
            score: assessment.as_ref().map(|a| Score { case_score: a.case_score, threshold: a.threshold }),
            unscored_because: unscored.as_deref(),
            ..context
        };
        Ok((policy::decide(&scored, &ctx), assessment))
    }

    /// Ask the classifier about an image, or a video's (or HEIC's) frame: the one handed in by
    /// the Android shell, or one the platform decodes now, after the hash (`crate::frames`),
    /// judged as a JPEG. Without a score, the second value says why.
    fn judge(
        &self,
        f: &Facts<'_>,
        bytes: Option<Vec<u8>>,
        keyframe: Option<&[u8]>,
    ) -> (Option<Assessment>, Option<String>) {
        let asked = match keyframe {
            None if crate::frames::needs_platform_frame(f.kind) && matches!(self.model, Model::Ready(_)) => {
                crate::frames::fetch(f.at, f.kind)
            }
            _ => None,
        };
        match keyframe.or(asked.as_deref()) {
            Some(frame) if crate::frames::needs_platform_frame(f.kind) => {
                self.assess(f.path, MediaKind::Jpeg, Some(frame), None)
            }
            _ => self.assess(f.path, f.kind, bytes.as_deref(), Some(&f.exif)),
        }
    }

    /// `exif`: the facts intake parsed from these very bytes (their thumbnail range is used).
    fn assess(
        &self,
        path: &Path,
        kind: MediaKind,
        bytes: Option<&[u8]>,
        exif: Option<&ExifFacts>,
    ) -> (Option<Assessment>, Option<String>) {
        let judge = match &self.model {
            Model::Ready(j) => j,
            Model::Unavailable(why) => return (None, Some(format!("no classifier ({why})"))),
        };
        if kind == MediaKind::Video {
            return (None, Some("video: no decoder on this device; decided by context".into()));
        }
        if kind == MediaKind::Heif {
            info!("HEIC/HEIF cannot be decoded here; decided by context");
            debug!(path = %path.display(), "HEIC/HEIF file");
            return (None, Some("HEIC/HEIF is not decodable here".into()));
        }
        if !kind.is_decodable_image() {
            return (None, Some(format!("content is not a known image format ({})", kind.as_str())));
        }
        let Some(bytes) = bytes else {
            return (None, Some("image larger than max_image_bytes; not decoded".into()));
        };
        let mut judge = judge.lock().unwrap_or_else(|p| p.into_inner());
        self.refresh_corrections(&mut judge);
        match judge.classifier.assess_with(bytes, exif) {
            Ok(a) => (Some(a), None),
            Err(e) => {
                warn!(error = %e, "classifier could not judge a file; decided by context");
                debug!(path = %path.display(), "file the classifier could not judge");
                (
                    None,
                    Some(match e {
                        ClassifyError::Decode(m) => format!("corrupt or undecodable image: {m}"),
                        other => other.to_string(),
                    }),
                )
            }
        }
    }

    /// Replay officers' corrections into the classifier when they changed.
    fn refresh_corrections(&self, judge: &mut Judge) {
        // Count first: the embeddings are loaded only when an officer added a correction or one
        // expired (`keep_corrections`).
        let count = self.ledger().correction_count();
        let stamp = match count {
            Ok(n) if judge.corrections_seen == Some(n) => return,
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "cannot read corrections");
                return;
            }
        };
        let corrections = self.ledger().corrections();
        match corrections {
            Ok(v) => {
                let list: Vec<classify::Correction> =
                    v.into_iter().map(|(embedding, case)| classify::Correction { embedding, case }).collect();
                judge.classifier.set_corrections(&list);
                judge.corrections_seen = Some(stamp);
            }
            Err(e) => warn!(error = %e, "cannot read corrections"),
        }
    }

    /// Classify a keyframe of a video (JPEG bytes extracted by the Android shell).
    pub fn classify_keyframe(&self, jpeg: &[u8]) -> Result<Option<Assessment>, Error> {
        match &self.model {
            Model::Ready(j) => {
                let mut judge = j.lock().unwrap_or_else(|p| p.into_inner());
                judge.classifier.assess(jpeg).map(Some).map_err(|source| Error::Keyframe { source })
            }
            Model::Unavailable(_) => Ok(None),
        }
    }
}

/// The times at which a photo counts as taken or brought onto the device during a case
/// session, most trustworthy first (README, "Decisions", rule 3):
///
/// 1. the file's mtime: when this device wrote it (the phone's own clock);
/// 2. when the agent first saw it: a photo taken before a session but copied in during it
///    (from a body camera, a colleague's phone) arrives during the session;
/// 3. the EXIF capture time, read as local time: a photo taken during a session and copied in
///    later with a new mtime still belongs to it.
///
/// Any one inside a session quarantines the photo for that session's case. A camera whose
/// clock is wrong can only add a quarantine this way, never take one away: the device's
/// clock (1 and 2) still counts, so evidence is not missed for a wrong EXIF time, and a false
/// positive costs an officer one `release`.
fn session_times(f: &Facts<'_>) -> Vec<i64> {
    let mut times = vec![f.id.mtime_ns / 1_000_000, f.first_seen];
    times.extend(f.exif.capture_time.and_then(local_ms));
    times
}

/// Milliseconds since the epoch of a local wall-clock time (the earlier one in a DST fold).
fn local_ms(t: chrono::NaiveDateTime) -> Option<i64> {
    use chrono::TimeZone;
    chrono::Local.from_local_datetime(&t).earliest().map(|t| t.timestamp_millis())
}

/// Local wall-clock time of a nanosecond Unix timestamp.
fn local_time(ns: i64) -> Option<chrono::NaiveDateTime> {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_opt(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000) as u32)
        .single()
        .map(|t| t.naive_local())
}
