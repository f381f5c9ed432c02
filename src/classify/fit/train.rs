//! The head from the embedded photos: weights per photo, the cross-validations, the
//! threshold, the final fits, and the head file's JSON (`models/train_head.py`'s recipe
//! without its per-category priors: no prior is fitted on the out-of-fold scores that
//! report it).

use ndarray::{Array1, Array2, Axis};
use serde_json::{json, Value};

use super::cv::Fold;
use super::embed::Set;
use super::logistic::{self, Data, Model};
use super::{Event, FitError, Options};
use crate::classify::head::{Recipe, FORMAT};

/// The photos' labels, as the fits and reports need them.
pub struct Labels {
    /// Category names, sorted; index = class.
    pub categories: Vec<String>,
    /// Whether each category is case material.
    pub case_of: Vec<bool>,
    /// Class of each photo.
    pub class: Vec<usize>,
    /// Whether each photo is case material.
    pub case: Vec<bool>,
    /// Source of each photo (`source_repo`), when every photo has one.
    pub sources: Option<Vec<String>>,
}

/// Per-photo weight, mean 1: every category weighs the same, and (with sources) inside a
/// category a source weighs sqrt(its photos) rather than its photos (`--weighting source`
/// of `train_head.py`), so one source's look teaches less.
pub fn photo_weights(labels: &Labels) -> Vec<f64> {
    let n = labels.class.len();
    let mut w = vec![1.0; n];
    if let Some(src) = &labels.sources {
        for i in 0..n {
            let same = (0..n).filter(|&j| labels.class[j] == labels.class[i] && src[j] == src[i]).count();
            w[i] = 1.0 / (same as f64).sqrt();
        }
    }
    for c in 0..labels.categories.len() {
        let sum: f64 = (0..n).filter(|&i| labels.class[i] == c).map(|i| w[i]).sum();
        (0..n).filter(|&i| labels.class[i] == c).for_each(|i| w[i] /= sum);
    }
    let mean = w.iter().sum::<f64>() / n as f64;
    w.iter().map(|v| v / mean).collect()
}

/// `1 - (1 - head) (1 - min(1, gain * strong))`: the learned head and the weapon/drug prior.
pub fn combine(head: f64, strong: f64, gain: f64) -> f64 {
    1.0 - (1.0 - head) * (1.0 - (gain * strong).clamp(0.0, 1.0))
}

/// Everything that fits a model: the feature rows, the photos' labels and weights.
pub struct Trainer<'a> {
    pub set: &'a Set,
    pub labels: &'a Labels,
    pub weight: Vec<f64>,
    pub c: f64,
}

impl Trainer<'_> {
    /// Fit on the view rows of `photos` with the feature columns `cols` (all or the embedding).
    /// Classes without a photo here are left out of this fit; `start` warms it up.
    pub fn fit(&self, photos: &[usize], cols: usize, start: Option<&Model>) -> Result<(Model, Vec<usize>), FitError> {
        let mut keep = vec![false; self.labels.class.len()];
        photos.iter().for_each(|&p| keep[p] = true);
        let rows: Vec<usize> = (0..self.set.photo_of_row.len()).filter(|&r| keep[self.set.photo_of_row[r]]).collect();
        let mut present: Vec<usize> = photos.iter().map(|&p| self.labels.class[p]).collect();
        present.sort_unstable();
        present.dedup();
        let x = self.set.x.select(Axis(0), &rows);
        let x = x.slice(ndarray::s![.., ..cols]);
        let y: Vec<usize> = rows
            .iter()
            .map(|&r| present.binary_search(&self.labels.class[self.set.photo_of_row[r]]).unwrap_or(0))
            .collect();
        let w = Array1::from_iter(rows.iter().map(|&r| self.weight[self.set.photo_of_row[r]]));
        let start = start.filter(|m| m.coef.nrows() == present.len());
        let data = Data { x, y: &y, weight: w.view(), classes: present.len() };
        let model = logistic::fit(&data, self.c, start).map_err(FitError::Optimiser)?;
        if !model.converged {
            tracing::warn!(iterations = model.iterations, "L-BFGS stopped at its iteration limit before converging");
        }
        Ok((model, present))
    }

    /// Out-of-fold category probabilities (view 0 of each photo), `[photos, categories]`.
    pub fn out_of_fold(
        &self,
        folds: &[Fold],
        start: &Model,
        on: &mut dyn FnMut(Event<'_>),
        done: &mut usize,
        total: usize,
    ) -> Result<Array2<f64>, FitError> {
        let n = self.labels.class.len();
        let mut oof = Array2::zeros((n, self.labels.categories.len()));
        let cols = self.set.x.ncols();
        for fold in folds {
            let (model, present) = self.fit(&fold.train, cols, Some(start))?;
            let rows: Vec<usize> = fold.test.iter().map(|&p| self.set.first_row[p]).collect();
            let p = model.predict(self.set.x.select(Axis(0), &rows).view());
            for (i, &photo) in fold.test.iter().enumerate() {
                for (j, &class) in present.iter().enumerate() {
                    oof[[photo, class]] = p[[i, j]];
                }
            }
            *done += 1;
            on(Event::Fitting { done: *done, total });
        }
        Ok(oof)
    }

    /// Case scores from category probabilities (sum over case categories, then the prior).
    pub fn scores(&self, probs: &Array2<f64>, gain: f64) -> Vec<f64> {
        probs
            .rows()
            .into_iter()
            .zip(&self.set.strong)
            .map(|(row, &s)| {
                let head: f64 = row.iter().zip(&self.labels.case_of).filter(|(_, &c)| c).map(|(p, _)| p).sum();
                combine(head, s, gain)
            })
            .collect()
    }
}

fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

/// The head file's JSON, in the layout and key order `train_head.py` writes.
pub struct Doc<'a> {
    pub recipe: &'a Recipe,
    pub gain: f64,
    pub model_sha256: &'a str,
    pub labels: &'a Labels,
    pub set: &'a Set,
    pub full: &'a Model,
    pub embedding_only: &'a Model,
    pub threshold: f64,
    pub opts: &'a Options,
    pub cv: Value,
}

impl Doc<'_> {
    pub fn to_json(&self) -> Value {
        let (w, b) = self.full.export();
        let (wq, bq) = self.embedding_only.export();
        let dim = self.set.dim;
        let first = self.set.x.select(Axis(0), &self.set.first_row);
        let mean = first.slice(ndarray::s![.., ..dim]).mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(dim));
        let rows = |m: &Array2<f64>, d: i32| -> Vec<Vec<f64>> {
            m.rows().into_iter().map(|r| r.iter().map(|v| round(*v, d)).collect()).collect()
        };
        let groups: Vec<Value> =
            self.recipe.groups.iter().map(|g| json!({"name": g.name, "classes": g.classes})).collect();
        let categories: Vec<Value> = self
            .labels
            .categories
            .iter()
            .zip(&self.labels.case_of)
            .map(|(c, case)| json!({"name": c, "case": case}))
            .collect();
        let datasets: Vec<String> = self.opts.data.iter().map(|d| d.display().to_string()).collect();
        json!({
            "format": FORMAT,
            "model_sha256": self.model_sha256,
            "embedding_dim": dim,
            "features": "concat(l2norm(embedding), ln(sum(softmax(logits)[group]) + eps) for group in groups)",
            "eps": f64::from(self.recipe.eps),
            "groups": groups,
            "strong_groups": self.recipe.strong_groups,
            "prior_gain": self.gain,
            "combine": "p = softmax(W x + b); head = sum(p[case categories]); \
                        score = 1 - (1 - head) * (1 - min(1, prior_gain * max(sum softmax(logits)[strong group])))",
            "categories": categories,
            "embedding_mean": mean.iter().map(|v| round(*v, 6)).collect::<Vec<_>>(),
            "category_weights": rows(&wq, 5),
            "category_bias": bq.iter().map(|v| round(*v, 5)).collect::<Vec<_>>(),
            "weights": rows(&w, 6),
            "bias": b.iter().map(|v| round(*v, 6)).collect::<Vec<_>>(),
            // rounded down: a threshold rounded up could pass over the case score that set it
            "threshold": (self.threshold * 1e4).floor() / 1e4,
            "target_recall": self.opts.recall,
            "train": {
                "tool": concat!("fotovakt head fit ", env!("CARGO_PKG_VERSION")),
                "photos": self.labels.class.len(), "datasets": datasets,
                "views_per_photo": self.opts.views, "C": self.opts.c,
                "weighting": if self.labels.sources.is_some() { "source" } else { "category" },
                "folds": self.opts.folds, "repeats": self.opts.repeats, "seed": self.opts.seed,
                "iterations": self.full.iterations, "converged": self.full.converged,
            },
            "cv": self.cv,
        })
    }
}
