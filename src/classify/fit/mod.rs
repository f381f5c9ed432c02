//! `fotovakt head fit`: a case head fitted to an agency's own labelled photos.
//!
//! The recipe is the shipped head's (`models/train_head.py`), in Rust and on the agent's own
//! code path, so a fitted head sees exactly the inputs the agent will feed it:
//!
//! 1. [`labels`]: each folder's `labels.tsv` (`path label category`, optional `source_repo`).
//! 2. [`embed`]: every photo read and hashed as the agent reads a camera file, decoded into
//!    [`views`] by the classifier's decoders (view 0 is the agent's input; the others are
//!    mirrored, squashed, thumbnail-like, grey and cropped copies), run through the
//!    [`Backbone`] with the agent's session options (exact int8 kernels).
//! 3. [`train`]: a multinomial logistic regression over the categories ([`logistic`], L-BFGS
//!    from argmin) on `[l2norm(embedding), ln(sum p(ImageNet group) + eps)]`, case
//!    probability = sum over the case categories, noisy-OR with the weapon/drug prior; an
//!    embedding-only category model for officers' corrections ([`crate::classify::head`]).
//! 4. [`cv`]: out-of-fold scores grouped by source (leave one source out, or 10 folds over
//!    many sources) when at least three sources are named, else per photo (stratified k-fold);
//!    the threshold is the highest that keeps the case recall asked for on them.
//!
//! The head records the model's SHA-256, read from the model bytes at run time: the agent
//! refuses it on any other model. [`place`] writes the file atomically.

pub mod cv;
pub mod embed;
pub mod labels;
pub mod logistic;
pub mod train;
pub mod views;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::{json, Value};

use crate::classify::head::Recipe;
use crate::classify::{Backbone, ClassifyError};
pub use labels::BadRow;
use train::{Labels, Trainer};

/// How to fit.
#[derive(Debug, Clone)]
pub struct Options {
    /// Labelled folders (each with a `labels.tsv`).
    pub data: Vec<PathBuf>,
    /// Inverse strength of the L2 penalty (scikit-learn's `C`).
    pub c: f64,
    /// Case recall the threshold keeps on the out-of-fold scores.
    pub recall: f64,
    /// Views per photo, 1..=9 (see [`views`]).
    pub views: usize,
    /// Per-photo folds (stratified by category).
    pub folds: usize,
    /// Per-photo CV repeats (other shuffles).
    pub repeats: usize,
    /// Grouped folds: `None` leave one source out up to 20 sources, else 10; `Some(0)` always
    /// leave one out; `Some(k)` k folds.
    pub group_folds: Option<usize>,
    /// Seed of the random views and the per-photo folds.
    pub seed: u64,
    /// Fewest photos a category needs.
    pub min_per_category: usize,
    /// Gain of the weapon/drug prior; `None`: the template head's.
    pub prior_gain: Option<f32>,
    /// Larger photos are left out (the agent does not decode them either).
    pub max_image_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            data: Vec::new(),
            c: 1.0,
            recall: 0.98,
            views: views::MAX_VIEWS,
            folds: 5,
            repeats: 1,
            group_folds: None,
            seed: 7,
            min_per_category: 5,
            prior_gain: None,
            max_image_bytes: 64 << 20,
        }
    }
}

/// Progress, for a bar or a log.
#[derive(Debug)]
pub enum Event<'a> {
    /// A row or photo left out (one line each).
    Skipped(&'a BadRow),
    /// Photos embedded so far.
    Embedding { done: usize, total: usize },
    /// Models fitted so far (cross-validation folds and the final fits).
    Fitting { done: usize, total: usize },
}

/// Why no head could be fitted.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error("{path}: {reason}")]
    Labels { path: PathBuf, reason: String },
    #[error("{0}")]
    Classifier(#[from] ClassifyError),
    #[error("category {category} is labelled both case and personal ({case} case, {personal} personal photos): one category, one label")]
    MixedCategory { category: String, case: usize, personal: usize },
    #[error("too few photos: {detail}")]
    TooFew { detail: String },
    #[error("fitting the head: {0}")]
    Optimiser(String),
    #[error("{0}")]
    Options(String),
}

/// A fitted head: the file's JSON and what the run did.
#[derive(Debug)]
pub struct Fitted {
    pub doc: Value,
    pub summary: Value,
}

/// Fit a head to the labelled folders of `opts`, embedding with `backbone` and taking the
/// feature recipe (ImageNet groups, prior) from `recipe`.
pub fn fit(
    backbone: &mut Backbone,
    recipe: &Recipe,
    opts: &Options,
    on: &mut dyn FnMut(Event<'_>),
) -> Result<Fitted, FitError> {
    check_options(opts)?;
    let started = Instant::now();
    let mut skipped = Vec::new();
    let mut rows = Vec::new();
    for dir in &opts.data {
        let (r, bad) = labels::read(dir)?;
        for b in bad {
            on(Event::Skipped(&b));
            skipped.push(b);
        }
        rows.extend(r);
    }
    check_categories(&rows, opts.min_per_category.max(opts.folds))?;
    let set = embed::embed(backbone, recipe, rows, opts, on, &mut skipped)?;
    let labels = labels_of(&set, opts)?;
    let embed_s = started.elapsed().as_secs_f64();
    let gain = f64::from(opts.prior_gain.unwrap_or(recipe.prior_gain));
    let trainer = Trainer { weight: train::photo_weights(&labels), set: &set, labels: &labels, c: opts.c };
    let (grouped_folds, grouped_scheme) = match &labels.sources {
        Some(s) => {
            let (f, scheme) = cv::grouped(s, opts.group_folds);
            (Some(f), scheme)
        }
        None => (None, String::new()),
    };
    let photo_folds: Vec<Vec<cv::Fold>> = (0..opts.repeats)
        .map(|r| cv::stratified(&labels.class, opts.folds, opts.seed.wrapping_add(r as u64)))
        .collect();
    let total = 2 + grouped_folds.as_ref().map_or(0, Vec::len) + photo_folds.iter().map(Vec::len).sum::<usize>();
    let mut done = 0;
    let all: Vec<usize> = (0..labels.class.len()).collect();
    let (full, _) = trainer.fit(&all, set.x.ncols(), None)?;
    done += 1;
    on(Event::Fitting { done, total });
    let grouped = match &grouped_folds {
        Some(folds) => Some(trainer.scores(&trainer.out_of_fold(folds, &full, on, &mut done, total)?, gain)),
        None => None,
    };
    let mut per_photo = Vec::new();
    for folds in &photo_folds {
        per_photo.push(trainer.scores(&trainer.out_of_fold(folds, &full, on, &mut done, total)?, gain));
    }
    let (embedding_only, _) = trainer.fit(&all, set.dim, None)?;
    on(Event::Fitting { done: total, total });
    let (cv, threshold) = cv_block(&set, &labels, opts, grouped.as_deref(), &grouped_scheme, &per_photo);
    let doc = train::Doc {
        recipe,
        gain,
        model_sha256: backbone.model_sha256(),
        labels: &labels,
        set: &set,
        full: &full,
        embedding_only: &embedding_only,
        threshold,
        opts,
        cv: cv.clone(),
    }
    .to_json();
    let summary = json!({
        "model": backbone.model_path(),
        "model_sha256": backbone.model_sha256(),
        "photos": labels.class.len(),
        "views": set.x.nrows(),
        "sources": labels.sources.as_ref().map(|s| { let mut v = s.clone(); v.sort(); v.dedup(); v.len() }),
        "skipped": skipped.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "threshold": doc["threshold"],
        "threshold_from": cv["threshold_from"],
        "cv": cv,
        "seconds": {"embedding": (embed_s * 10.0).round() / 10.0, "total": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0},
        "ms_per_photo_embedding": (embed_s * 1000.0 / labels.class.len().max(1) as f64).round(),
    });
    Ok(Fitted { doc, summary })
}

fn check_options(opts: &Options) -> Result<(), FitError> {
    let bad = |m: &str| Err(FitError::Options(m.to_string()));
    if opts.data.is_empty() {
        return bad("no --data folder");
    }
    if !(opts.c.is_finite() && opts.c > 0.0) {
        return bad("C must be a positive number");
    }
    if !(opts.recall > 0.0 && opts.recall <= 1.0) {
        return bad("the recall to keep must be within (0, 1]");
    }
    if !(1..=views::MAX_VIEWS).contains(&opts.views) {
        return bad("views must be within 1..=9");
    }
    if opts.folds < 2 || opts.repeats < 1 {
        return bad("at least 2 per-photo folds and 1 repeat");
    }
    if opts.group_folds == Some(1) {
        return bad("grouped CV needs at least 2 folds (0: leave one source out)");
    }
    Ok(())
}

/// A category must carry one label, and have enough rows before minutes of embedding (the
/// photos that turn out unusable are counted again after).
fn check_categories(rows: &[labels::Row], min: usize) -> Result<(), FitError> {
    let mut by: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in rows {
        let e = by.entry(&r.category).or_default();
        if r.case {
            e.0 += 1
        } else {
            e.1 += 1
        }
    }
    if let Some((category, &(case, personal))) = by.iter().find(|(_, (c, p))| *c > 0 && *p > 0) {
        return Err(FitError::MixedCategory { category: category.to_string(), case, personal });
    }
    let short: Vec<String> =
        by.iter().filter(|(_, (c, p))| c + p < min).map(|(k, (c, p))| format!("{k} has {}", c + p)).collect();
    if !short.is_empty() {
        return Err(FitError::TooFew {
            detail: format!("{}; every category needs at least {min} usable photos", short.join(", ")),
        });
    }
    Ok(())
}

/// Classes, labels and sources of the embedded photos; too few photos is an error here.
fn labels_of(set: &embed::Set, opts: &Options) -> Result<Labels, FitError> {
    let mut categories: Vec<String> = set.photos.iter().map(|p| p.category.clone()).collect();
    categories.sort();
    categories.dedup();
    let count = |c: &String| set.photos.iter().filter(|p| &p.category == c).count();
    let min = opts.min_per_category.max(opts.folds);
    let short: Vec<String> =
        categories.iter().filter(|c| count(c) < min).map(|c| format!("{c} has {}", count(c))).collect();
    if !short.is_empty() {
        return Err(FitError::TooFew {
            detail: format!("{}; every category needs at least {min} usable photos", short.join(", ")),
        });
    }
    let case_of: Vec<bool> = categories.iter().map(|c| set.photos.iter().any(|p| &p.category == c && p.case)).collect();
    if !case_of.contains(&true) || !case_of.contains(&false) {
        return Err(FitError::TooFew { detail: "the photos need at least one case and one personal category".into() });
    }
    let class: Vec<usize> = set.photos.iter().map(|p| categories.binary_search(&p.category).unwrap_or(0)).collect();
    let case: Vec<bool> = set.photos.iter().map(|p| p.case).collect();
    let sources: Option<Vec<String>> = set.photos.iter().map(|p| p.source.clone()).collect();
    let distinct = sources.as_ref().map_or(0, |s| {
        let mut v: Vec<&String> = s.iter().collect();
        v.sort();
        v.dedup();
        v.len()
    });
    let sources = sources.filter(|_| distinct >= cv::MIN_SOURCES);
    Ok(Labels { categories, case_of, class, case, sources })
}

/// The `cv` block and the threshold: grouped out-of-fold scores when there are sources,
/// else the per-photo ones (pooled over repeats, as `train_head.py` pools them).
fn cv_block(
    set: &embed::Set,
    labels: &Labels,
    opts: &Options,
    grouped: Option<&[f64]>,
    grouped_scheme: &str,
    per_photo: &[Vec<f64>],
) -> (Value, f64) {
    let cats: Vec<String> = labels.class.iter().map(|&c| labels.categories[c].clone()).collect();
    let n = labels.class.len();
    let mean: Vec<f64> = (0..n).map(|i| per_photo.iter().map(|r| r[i]).sum::<f64>() / per_photo.len() as f64).collect();
    let pooled: Vec<f64> = per_photo.iter().flatten().copied().collect();
    let pooled_case: Vec<bool> = per_photo.iter().flat_map(|_| labels.case.iter().copied()).collect();
    let own = cv::pick_threshold(&pooled, &pooled_case, opts.recall);
    let mut block = serde_json::Map::new();
    let threshold = match grouped {
        Some(g) => {
            let t = cv::pick_threshold(g, &labels.case, opts.recall);
            let mut r = cv::report(g, &labels.case, &cats, t);
            r["scheme"] = json!(grouped_scheme);
            r["auc"] = json!((cv::auc(g, &labels.case) * 1e4).round() / 1e4);
            if let Some(src) = &labels.sources {
                r["per_source"] = cv::per_source(g, &labels.case, src, t);
            }
            r["errors"] = errors(g, &labels.case, &set.photos, t);
            block.insert("grouped".into(), r);
            t
        }
        None => own,
    };
    let scheme = format!("{}-fold stratified by category, {} repeat(s), per photo", opts.folds, opts.repeats);
    let mut photo = json!({"scheme": scheme, "own_threshold": cv::report(&mean, &labels.case, &cats, own)});
    photo["own_threshold"]["auc"] = json!((cv::auc(&mean, &labels.case) * 1e4).round() / 1e4);
    if grouped.is_some() {
        photo["at_grouped_threshold"] = cv::report(&mean, &labels.case, &cats, threshold);
    } else {
        photo["errors"] = errors(&mean, &labels.case, &set.photos, threshold);
    }
    block.insert("per_photo".into(), photo);
    let from = if grouped.is_some() { "grouped" } else { "per_photo" };
    block.insert("threshold_from".into(), json!(from));
    (Value::Object(block), threshold)
}

/// The photos the out-of-fold scores decide wrongly at `threshold`.
fn errors(scores: &[f64], case: &[bool], photos: &[labels::Row], threshold: f64) -> Value {
    scores
        .iter()
        .zip(case)
        .zip(photos)
        .filter(|((s, c), _)| (**s >= threshold) != **c)
        .map(|((s, _), p)| json!({"path": p.name(), "score": (s * 1e4).round() / 1e4}))
        .collect()
}
