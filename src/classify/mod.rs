//! On-device case-material classifier (EfficientNet-Lite0 through ONNX Runtime plus a small head).
//!
//! Seam owned by the classifier issue: the agent only needs [`Classifier::load`] and
//! [`Classifier::assess`]; everything else here is the classifier's business.
//!
//! * [`runtime`]: finds ONNX Runtime (nothing is downloaded) and keeps one environment.
//! * [`decode`]: bytes to model input; EXIF thumbnail / DCT-scaled JPEG fast paths,
//!   orientation, limits against decompression bombs.
//! * [`head`]: the case head trained by `models/train_head.py`, and the on-device
//!   adaptation to officers' corrections.
//!
//! Videos are not decoded here: the Android shell extracts a keyframe and passes its JPEG
//! bytes to [`Classifier::assess`]; on the host a video is decided by context rules.

pub mod backbone;
pub mod decode;
pub mod eighth;
pub mod fit;
pub mod head;
pub mod runtime;

use std::path::{Path, PathBuf};
use std::time::Instant;

use fast_image_resize::Resizer;
use serde::{Deserialize, Serialize};

pub use backbone::Backbone;
pub use decode::Source;

use crate::media::ExifFacts;

/// Default model file name inside `models/`.
pub const MODEL_FILE: &str = "efficientnet_lite0.int8.onnx";
/// Default head file name inside `models/`.
pub const HEAD_FILE: &str = "case_head.json";
/// ImageNet class names, one a line, index order.
pub const LABELS_FILE: &str = "imagenet_labels.txt";
/// ONNX Runtime session option: exact integer kernels on x86 CPUs without VNNI (see `load`).
/// `models/train_head.py` and the benchmark's Python peer set it too, so that the head is
/// trained on, and the peer computes, the embedding a phone computes.
pub const EXACT_INT8_KEY: &str = "session.x64quantprecision";
/// The refine window per thumbnail size class, smallest class first: `(largest thumbnail
/// short side of the class in px, low factor, high margin)`. A thumbnail score inside
/// `[threshold * low, threshold + high)` (the top capped at 0.97) is re-scored from the
/// DCT-scaled decode of the photo itself; outside it the thumbnail decides.
///
/// Chosen by measurement, `cargo run --release --example refine_window` (2026-12-02, head
/// threshold 0.0988; rerun it after the head changes and copy its last lines here). It
/// scores the 581 training photos (eval-dev + train-extra, 19 sources) and 73 held-out
/// camera files of exif-samples (not training photos; their "case" is the photo path's
/// decision) from the photo and from every thumbnail the thumbnail path would take: the
/// photo's own EXIF thumbnail (81) and thumbnails made as cameras make them (160/320/512 px
/// long side, q75): 1,673 thumbnails. `low` is the lowest thumbnail score (/ threshold) of
/// a photo the photo path takes and the thumbnail alone misses, times a margin factor: the
/// narrowest that loses none out of fold in 5-fold CV by photo and in leave-one-source-out
/// CV, then one step (0.1) wider; `high` is the highest thumbnail score above the threshold
/// of a photo the photo path leaves out, plus the narrowest margin adding no false positive
/// out of fold; both rounded outward to 0.05. The training photos alone bound nothing on
/// the low side (the head was fitted on them: no case photo's thumbnail falls below the
/// threshold while its photo is above); the held-out files do (0.31, 0.62, 0.80 of the
/// threshold for 160, 320, 512 px). Refined thumbnails, old window (0.4, 0.3) -> these:
///
/// | short side | window | refined | lost (old -> new) | extra false positives (old -> new) |
/// |---|---|---|---|---|
/// | <= 150 | `[0.10 t, t + 1.00)` | 54 -> 148 of 496 | 1 -> 0 | 7 -> 0 |
/// | 151-300 | `[0.45 t, t + 0.45)` | 39 -> 42 of 814 | 0 -> 0 | 0 -> 0 |
/// | > 300 | `[0.55 t, t + 0.20)` | 31 -> 15 of 363 | 0 -> 0 | 0 -> 0 |
///
/// Out of fold (both groupings) the rule loses no case photo and adds no false positive in
/// any class. The short side is the thumbnail's decode for the model (a 640x480 one decodes
/// at 1/2: 240).
pub const REFINE_WINDOWS: [(u32, f32, f32); 3] = [(150, 0.10, 1.00), (300, 0.45, 0.45), (u32::MAX, 0.55, 0.20)];

/// The refine window `(low factor, high margin)` for a thumbnail `thumb_short` pixels on
/// its short side: see [`REFINE_WINDOWS`].
pub fn refine_window(thumb_short: u32) -> (f32, f32) {
    let last = REFINE_WINDOWS[REFINE_WINDOWS.len() - 1];
    let &(_, low, high) = REFINE_WINDOWS.iter().find(|w| thumb_short <= w.0).unwrap_or(&last);
    (low, high)
}

/// Settings of the classifier, the `[classifier]` table of the config file (defined with the
/// rest of the config, which depends on nothing).
pub use crate::config::ClassifierSettings as Settings;

/// One ImageNet label with its probability.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Label {
    pub label: String,
    pub p: f32,
}

/// What the classifier says about one image.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    /// Probability-like score in 0..1 that this is case material (after corrections).
    pub case_score: f32,
    /// The head's recommended threshold (recall-biased).
    pub threshold: f32,
    /// Top-3 ImageNet labels.
    pub labels: Vec<Label>,
    /// Pooled embedding `[1280]`, kept for officers' corrections.
    #[serde(skip)]
    pub embedding: Vec<f32>,
    pub decode_ms: f64,
    pub infer_ms: f64,
    /// Score of the shipped model and head alone, before corrections.
    pub model_score: f32,
    /// The head's most likely photo category (e.g. `weapons`, `pets`).
    pub category: String,
    /// Which decode the score comes from.
    pub source: Source,
}

impl Assessment {
    /// `case_score >= threshold`: the classifier's own verdict, before policy context.
    pub fn is_case(&self) -> bool {
        self.case_score >= self.threshold
    }
}

/// An officer's correction, replayed into the classifier so it adapts on the device.
#[derive(Debug, Clone)]
pub struct Correction {
    pub embedding: Vec<f32>,
    /// true: an officer tagged it as case material; false: released as a false positive.
    pub case: bool,
}

/// Why the classifier could not give an assessment.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    #[error("ONNX Runtime not found: {0}")]
    RuntimeMissing(String),
    #[error("model {path}: {reason}")]
    Model { path: PathBuf, reason: String },
    #[error("unsupported image format ({0}); decided by context rules")]
    Unsupported(String),
    #[error("cannot decode image: {0}")]
    Decode(String),
    #[error("inference failed: {0}")]
    Inference(String),
    /// The head was fitted on another model's embeddings: its scores would mean nothing.
    #[error(
        "head {head} was fitted for the model with SHA-256 {head_model_sha256}, but the model loaded ({model}) \
         has SHA-256 {model_sha256}: head refused (fit one for this model with `fotovakt head fit`)"
    )]
    HeadForAnotherModel { head: PathBuf, head_model_sha256: String, model: PathBuf, model_sha256: String },
}

/// Head score, top-3 labels and embedding of one photo.
type Scored = (head::HeadScore, Vec<Label>, Vec<f32>);

/// A loaded model plus head; load once, assess many.
pub struct Classifier {
    backbone: Backbone,
    head: head::Head,
    labels: Vec<String>,
    resizer: Resizer,
    settings: Settings,
}

/// The `models/` directories searched for default files, in order.
pub fn model_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(exe_dir) = std::env::current_exe().ok().as_deref().and_then(Path::parent) {
        dirs.push(exe_dir.join("models"));
        if let Some(up) = exe_dir.parent() {
            dirs.push(up.join("models"));
        }
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("models"));
    dirs
}

fn find_default(name: &str) -> Option<PathBuf> {
    model_dirs().into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The head file the settings name, else `case_head.json` beside the model.
pub fn head_path(settings: &Settings, model_path: &Path) -> PathBuf {
    settings
        .head
        .clone()
        .unwrap_or_else(|| model_path.parent().map(Path::to_path_buf).unwrap_or_default().join(HEAD_FILE))
}

/// The ImageNet class names beside the model, else the default ones (`class N` without either).
pub fn imagenet_labels(model_path: &Path) -> Result<Vec<String>, ClassifyError> {
    let beside = model_path.parent().map(|d| d.join(LABELS_FILE)).filter(|p| p.is_file());
    match beside.or_else(|| find_default(LABELS_FILE)) {
        Some(p) => Ok(std::fs::read_to_string(&p)
            .map_err(|e| ClassifyError::Model { path: p.clone(), reason: e.to_string() })?
            .lines()
            .map(str::to_string)
            .collect()),
        None => Ok((0..backbone::CLASSES).map(|i| format!("class {i}")).collect()),
    }
}

impl Classifier {
    /// Load ONNX Runtime, the model and the head once. A head fitted for another model (its
    /// `model_sha256` is not the loaded model's) is refused: [`ClassifyError::HeadForAnotherModel`].
    pub fn load(settings: &Settings) -> Result<Classifier, ClassifyError> {
        let model_path = backbone::model_path(settings)?;
        let head_path = head_path(settings, &model_path);
        let head = head::Head::load(&head_path)?;
        let labels = imagenet_labels(&model_path)?;
        let backbone = Backbone::load(settings)?;
        if head.model_sha256() != backbone.model_sha256() {
            return Err(ClassifyError::HeadForAnotherModel {
                head: head_path,
                head_model_sha256: head.model_sha256().to_string(),
                model: model_path,
                model_sha256: backbone.model_sha256().to_string(),
            });
        }
        tracing::info!(
            model = %model_path.display(),
            model_sha256 = backbone.model_sha256(),
            head = %head_path.display(),
            ort = %backbone.ort_dylib().display(),
            // Two decimals, as a person writes it (an f32 widened to f64 prints 0.30979999899864197).
            threshold = (f64::from(head.threshold()) * 100.0).round() / 100.0,
            threads = settings.threads.max(1),
            "classifier loaded"
        );
        Ok(Classifier { backbone, head, labels, resizer: Resizer::new(), settings: settings.clone() })
    }

    /// The model file in use.
    pub fn model_path(&self) -> &Path {
        self.backbone.model_path()
    }

    /// SHA-256 of the model in use.
    pub fn model_sha256(&self) -> &str {
        self.backbone.model_sha256()
    }

    /// The head's recommended threshold.
    pub fn threshold(&self) -> f32 {
        self.head.threshold()
    }

    /// Decode `bytes` (already hashed by the caller) and score them.
    ///
    /// JPEG keyframes extracted from videos by the Android shell come through here too.
    pub fn assess(&mut self, bytes: &[u8]) -> Result<Assessment, ClassifyError> {
        self.assess_with(bytes, None)
    }

    /// [`Classifier::assess`] with the EXIF facts intake already parsed from these bytes
    /// (thumbnail range, orientation), so the EXIF block is read once per photo.
    pub fn assess_with(&mut self, bytes: &[u8], exif: Option<&ExifFacts>) -> Result<Assessment, ClassifyError> {
        let parsed;
        let exif = match exif {
            Some(e) => e,
            None => {
                parsed = ExifFacts::parse(bytes);
                &parsed
            }
        };
        let t0 = Instant::now();
        let prepared = self.prepare(bytes, exif, self.settings.thumbnail_first)?;
        let mut decode_ms = ms(t0);
        let t1 = Instant::now();
        let mut out = self.infer(std::slice::from_ref(&prepared.input))?;
        let mut infer_ms = ms(t1);
        let mut a = out.pop().ok_or_else(|| ClassifyError::Inference("empty batch".into()))?;
        let mut source = prepared.source;
        if prepared.can_refine && self.near_threshold(a.0.model_score, prepared.thumb_short) {
            let t2 = Instant::now();
            let full = self.prepare(bytes, exif, false)?;
            decode_ms += ms(t2);
            let t3 = Instant::now();
            if let Some(b) = self.infer(std::slice::from_ref(&full.input))?.pop() {
                a = b;
                source = full.source;
            }
            infer_ms += ms(t3);
        }
        Ok(self.assessment(a, decode_ms, infer_ms, source))
    }

    /// Score many photos at once (a backlog scan): decode on all cores, infer in one batch.
    /// One result per input, in order; a bad file is an error in its slot only.
    pub fn assess_batch(&mut self, items: &[&[u8]]) -> Vec<Result<Assessment, ClassifyError>> {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len().max(1));
        let thumbs = self.settings.thumbnail_first;
        let decoded = parallel_prepare(items, workers, thumbs);
        let mut results: Vec<Option<Result<Assessment, ClassifyError>>> = (0..items.len()).map(|_| None).collect();
        let mut pending: Vec<(usize, decode::Prepared, f64)> = Vec::new();
        for (i, r) in decoded.into_iter().enumerate() {
            match r {
                Ok((p, d)) => pending.push((i, p, d)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let mut refine = Vec::new();
        self.run_batch(&pending, &mut results, &mut refine);
        if !refine.is_empty() {
            let again: Vec<&[u8]> = refine.iter().map(|&(i, _)| items[i]).collect();
            let decoded = parallel_prepare(&again, workers, false);
            let mut second = Vec::new();
            for ((i, first_ms), r) in refine.into_iter().zip(decoded) {
                match r {
                    Ok((p, d)) => second.push((i, p, first_ms + d)),
                    Err(e) => results[i] = Some(Err(e)),
                }
            }
            let mut none = Vec::new();
            self.run_batch(&second, &mut results, &mut none);
        }
        results.into_iter().map(|r| r.unwrap_or_else(|| Err(ClassifyError::Inference("not scored".into())))).collect()
    }

    fn run_batch(
        &mut self,
        pending: &[(usize, decode::Prepared, f64)],
        results: &mut [Option<Result<Assessment, ClassifyError>>],
        refine: &mut Vec<(usize, f64)>,
    ) {
        if pending.is_empty() {
            return;
        }
        let inputs: Vec<Vec<f32>> = pending.iter().map(|(_, p, _)| p.input.clone()).collect();
        let t = Instant::now();
        let scored = self.infer(&inputs);
        let per = ms(t) / pending.len() as f64;
        match scored {
            Ok(scores) => {
                for ((i, p, d), s) in pending.iter().zip(scores) {
                    if p.can_refine && self.near_threshold(s.0.model_score, p.thumb_short) {
                        refine.push((*i, *d));
                    } else {
                        results[*i] = Some(Ok(self.assessment(s, *d, per, p.source)));
                    }
                }
            }
            Err(e) => {
                for (i, _, _) in pending {
                    results[*i] = Some(Err(ClassifyError::Inference(e.to_string())));
                }
            }
        }
    }

    /// Replace the on-device corrections the decision adapts to.
    pub fn set_corrections(&mut self, corrections: &[Correction]) {
        self.head.set_corrections(corrections);
    }

    /// Number of corrections in effect.
    pub fn corrections(&self) -> usize {
        self.head.corrections()
    }

    /// Is a thumbnail's score (from a thumbnail `thumb_short` pixels on its short side) too
    /// close to the threshold to trust? See [`refine_window`].
    fn near_threshold(&self, score: f32, thumb_short: u32) -> bool {
        let t = self.head.threshold();
        let (low, high) = refine_window(thumb_short);
        score >= t * low && score < (t + high).min(0.97)
    }

    fn prepare(&mut self, bytes: &[u8], exif: &ExifFacts, thumbnail: bool) -> Result<decode::Prepared, ClassifyError> {
        let opts = decode::Options { thumbnail, threads: self.settings.decode_threads };
        decode::prepare_with(&mut self.resizer, bytes, Some(exif), opts).inspect_err(log_skip)
    }

    /// Run the model on prepared inputs; per input: head score, top labels, embedding.
    fn infer(&mut self, inputs: &[Vec<f32>]) -> Result<Vec<Scored>, ClassifyError> {
        let out = self.backbone.run(inputs)?;
        if out.dim != self.head.embedding_dim() {
            return Err(ClassifyError::Inference(format!(
                "the model's embedding has {} values, the head expects {}",
                out.dim,
                self.head.embedding_dim()
            )));
        }
        let mut scored = Vec::with_capacity(out.n);
        for k in 0..out.n {
            let probs = softmax(out.logits(k));
            let e = out.embedding(k).to_vec();
            let score = self.head.score(&probs, &e);
            scored.push((score, top3(&self.labels, &probs), e));
        }
        Ok(scored)
    }
}

fn top3(labels: &[String], probs: &[f32]) -> Vec<Label> {
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.select_nth_unstable_by(2, |a, b| probs[*b].total_cmp(&probs[*a]));
    idx.truncate(3);
    idx.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]));
    idx.into_iter()
        .map(|i| Label { label: labels.get(i).cloned().unwrap_or_else(|| format!("class {i}")), p: probs[i] })
        .collect()
}

impl Classifier {
    fn assessment(
        &self,
        (score, labels, embedding): Scored,
        decode_ms: f64,
        infer_ms: f64,
        source: Source,
    ) -> Assessment {
        let a = Assessment {
            case_score: score.score,
            threshold: self.head.threshold(),
            labels,
            embedding,
            decode_ms,
            infer_ms,
            model_score: score.model_score,
            category: score.category,
            source,
        };
        tracing::debug!(
            case_score = a.case_score,
            model_score = a.model_score,
            correction_shift = score.correction_shift,
            category = %a.category,
            source = ?a.source,
            decode_ms = a.decode_ms,
            infer_ms = a.infer_ms,
            "photo assessed"
        );
        a
    }
}

fn log_skip(e: &ClassifyError) {
    match e {
        ClassifyError::Unsupported(what) => {
            tracing::info!(format = %what, "not classified: unsupported format, decided by context and manual rules")
        }
        other => tracing::warn!(error = %other, "not classified: decode failed"),
    }
}

fn parallel_prepare(
    items: &[&[u8]],
    workers: usize,
    thumbs: bool,
) -> Vec<Result<(decode::Prepared, f64), ClassifyError>> {
    let run = |chunk: &[&[u8]]| -> Vec<Result<(decode::Prepared, f64), ClassifyError>> {
        let mut resizer = Resizer::new();
        chunk
            .iter()
            .map(|b| {
                let t = Instant::now();
                decode::prepare(&mut resizer, b, thumbs).inspect_err(log_skip).map(|p| (p, ms(t)))
            })
            .collect()
    };
    if workers <= 1 || items.len() <= 1 {
        return run(items);
    }
    let size = items.len().div_ceil(workers);
    std::thread::scope(|s| {
        let handles: Vec<_> = items.chunks(size).map(|c| (c.len(), s.spawn(move || run(c)))).collect();
        handles
            .into_iter()
            .flat_map(|(len, h)| {
                h.join().unwrap_or_else(|_| {
                    (0..len).map(|_| Err(ClassifyError::Decode("decoder thread panicked".into()))).collect()
                })
            })
            .collect()
    })
}

/// Probabilities from logits (the ImageNet output), as the head reads them.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut p: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let s: f32 = p.iter().sum();
    p.iter_mut().for_each(|v| *v /= s);
    p
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

#[cfg(test)]
mod refine_window_tests {
    use super::*;

    #[test]
    fn classes_cover_every_size_in_order() {
        assert!(REFINE_WINDOWS.windows(2).all(|w| w[0].0 < w[1].0), "classes by increasing size");
        assert_eq!(REFINE_WINDOWS[REFINE_WINDOWS.len() - 1].0, u32::MAX, "the last class has no upper bound");
        assert_eq!(refine_window(96), (0.10, 1.00));
        assert_eq!(refine_window(150), (0.10, 1.00));
        assert_eq!(refine_window(151), (0.45, 0.45));
        assert_eq!(refine_window(300), (0.45, 0.45));
        assert_eq!(refine_window(384), (0.55, 0.20));
        assert_eq!(refine_window(u32::MAX), (0.55, 0.20));
    }

    #[test]
    fn larger_thumbnails_never_get_a_wider_window() {
        for w in REFINE_WINDOWS.windows(2) {
            let ((_, low_s, high_s), (_, low_l, high_l)) = (w[0], w[1]);
            assert!(low_l >= low_s && high_l <= high_s, "{:?} is wider than {:?}", w[1], w[0]);
        }
        // and by pixel: a bigger thumbnail's window lies inside a smaller one's
        for short in 96..1000u32 {
            let (a, b) = (refine_window(short), refine_window(short + 1));
            assert!(b.0 >= a.0 && b.1 <= a.1, "{short}: {a:?} -> {b:?}");
        }
    }

    #[test]
    fn every_window_brackets_the_threshold() {
        // a score just under the threshold is always refined, whatever the head's threshold
        for &(_, low, high) in &REFINE_WINDOWS {
            assert!((0.0..1.0).contains(&low) && high > 0.0, "({low}, {high})");
        }
    }
}
