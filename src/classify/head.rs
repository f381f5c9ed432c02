//! The case-material head (`models/case_head.json`, written by `models/train_head.py`) and
//! the on-device adaptation to officers' corrections.
//!
//! Score: a multinomial logistic regression over photo categories on
//! `[l2norm(embedding), ln(sum p(ImageNet group) + eps)...]`; the head's case probability
//! is the sum over case categories, combined (noisy-OR) with a weapon/drug prior taken
//! straight from the ImageNet probabilities.
//!
//! Corrections: each `tag` (case) or `release` (personal) keeps its embedding. Two effects:
//! 1. Per-category rates (an incremental update of the head's last step). The head's case
//!    probability is `sum_c p_c(x) * r_c` with `r_c` = 1 for case categories, 0 for
//!    personal ones. An embedding-only category model (in the head file) says which
//!    categories a correction belongs to (`q_c`), and `r_c` becomes the posterior mean
//!    `(PRIOR_WEIGHT * r_c + sum_j q_c(j) * y_j) / (PRIOR_WEIGHT + sum_j q_c(j))`: after a
//!    few tagged animal photos, animals count as case material; after a few released car
//!    photos, cars stop counting. Other categories do not move.
//! 2. Near duplicates: a photo very like a corrected one (centred cosine above
//!    `KERNEL_FLOOR`) moves toward that correction's verdict by up to `GAIN` logits.
//!
//! Bounded: each correction moves a category's rate by at most 1/(PRIOR_WEIGHT+1) (2/3), a rate
//! stays within 0..1, the near-duplicate shift is at most `GAIN` logits, and at most
//! `MAX_CORRECTIONS` are kept (newest win). Reversible: the model and head file are never
//! modified; `set_corrections(&[])` gives back the shipped scores exactly.

use std::path::Path;

use serde::Deserialize;

use super::{ClassifyError, Correction};

/// Largest shift of the log-odds a near-duplicate correction may cause.
pub const GAIN: f32 = 6.0;
/// Centred cosine below which a correction has no say as a near duplicate.
pub const KERNEL_FLOOR: f32 = 0.5;
/// Weight of the shipped case/personal rate of a category, in corrections. A category's
/// rate cannot fall below `PRIOR_WEIGHT / (PRIOR_WEIGHT + corrections)`, and that floor
/// has to get under the threshold (0.0988 since the head was chosen by grouped CV): with
/// 1.5, ten released car photos left the rate at ~0.14 and the cars still flagged; with 0.5
/// it is ~0.05.
pub const PRIOR_WEIGHT: f32 = 0.5;
/// Nearest corrections of each kind that count as near duplicates.
pub const TOP_K: usize = 1;
/// Corrections kept; older ones are dropped first.
pub const MAX_CORRECTIONS: usize = 2000;

/// A group of ImageNet classes whose summed probability is one feature.
#[derive(Debug, Clone, Deserialize)]
pub struct Group {
    pub name: String,
    pub classes: Vec<usize>,
}

#[derive(Debug, Deserialize)]
struct Category {
    name: String,
    case: bool,
}

#[derive(Debug, Deserialize)]
struct HeadFile {
    format: String,
    /// SHA-256 of the model whose embeddings the head was fitted on.
    model_sha256: String,
    embedding_dim: usize,
    eps: f32,
    groups: Vec<Group>,
    strong_groups: Vec<String>,
    prior_gain: f32,
    categories: Vec<Category>,
    embedding_mean: Vec<f32>,
    category_weights: Vec<Vec<f32>>,
    category_bias: Vec<f32>,
    weights: Vec<Vec<f32>>,
    bias: Vec<f32>,
    threshold: f32,
}

/// The head file format this module reads and `fotovakt head fit` writes.
pub const FORMAT: &str = "fotovakt-case-head/1";

/// How a head turns the model's outputs into features and a prior (see [`Head::recipe`]).
#[derive(Debug, Clone)]
pub struct Recipe {
    pub groups: Vec<Group>,
    pub strong_groups: Vec<String>,
    pub eps: f32,
    pub prior_gain: f32,
}

/// One correction, normalised for similarity.
#[derive(Debug, Clone)]
struct Proto {
    unit: Vec<f32>,
    case: bool,
}

/// The loaded head plus the current corrections.
#[derive(Debug)]
pub struct Head {
    file: HeadFile,
    strong: Vec<usize>,
    protos: Vec<Proto>,
    /// Case rate per category: the shipped 0/1, or adapted by corrections.
    rates: Vec<f32>,
}

/// What the head says about one photo.
#[derive(Debug, Clone)]
pub struct HeadScore {
    /// Score after corrections.
    pub score: f32,
    /// Score of the shipped head alone.
    pub model_score: f32,
    /// Most likely photo category of the head.
    pub category: String,
    /// Shift of the log-odds from corrections.
    pub correction_shift: f32,
}

impl Head {
    pub fn load(path: &Path) -> Result<Head, ClassifyError> {
        let err = |reason: String| ClassifyError::Model { path: path.to_path_buf(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let file: HeadFile = serde_json::from_str(&text).map_err(|e| err(format!("bad head file: {e}")))?;
        if file.format != FORMAT {
            return Err(err(format!("unknown head format {}", file.format)));
        }
        if file.model_sha256.len() != 64 || !file.model_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err(format!("model_sha256 {:?} is not a SHA-256 in hex", file.model_sha256)));
        }
        let nfeat = file.embedding_dim + file.groups.len();
        if file.weights.len() != file.categories.len()
            || file.bias.len() != file.categories.len()
            || file.weights.iter().any(|w| w.len() != nfeat)
            || file.embedding_mean.len() != file.embedding_dim
            || file.category_weights.len() != file.categories.len()
            || file.category_bias.len() != file.categories.len()
            || file.category_weights.iter().any(|w| w.len() != file.embedding_dim)
            || file.groups.iter().flat_map(|g| &g.classes).any(|&c| c >= 1000)
        {
            return Err(err("head dimensions do not match".into()));
        }
        let strong = file.strong_groups.iter().filter_map(|s| file.groups.iter().position(|g| &g.name == s)).collect();
        let rates = file.categories.iter().map(|c| if c.case { 1.0 } else { 0.0 }).collect();
        Ok(Head { file, strong, protos: Vec::new(), rates })
    }

    pub fn threshold(&self) -> f32 {
        self.file.threshold
    }

    /// SHA-256 of the model the head was fitted for (lower-case hex).
    pub fn model_sha256(&self) -> String {
        self.file.model_sha256.to_ascii_lowercase()
    }

    /// The feature recipe of this head: its ImageNet groups, the strong ones, eps and the
    /// prior gain. `fotovakt head fit` takes them from the shipped head, so a fitted head
    /// computes the same features and prior as the one it replaces.
    pub fn recipe(&self) -> Recipe {
        let f = &self.file;
        Recipe {
            groups: f.groups.clone(),
            strong_groups: f.strong_groups.clone(),
            eps: f.eps,
            prior_gain: f.prior_gain,
        }
    }

    pub fn embedding_dim(&self) -> usize {
        self.file.embedding_dim
    }

    /// Score one photo from its ImageNet probabilities (softmax) and embedding.
    pub fn score(&self, probs: &[f32], embedding: &[f32]) -> HeadScore {
        let f = &self.file;
        let norm = embedding.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        let mut x: Vec<f32> = embedding.iter().map(|v| v / norm).collect();
        let group_p: Vec<f32> = f.groups.iter().map(|g| g.classes.iter().map(|&c| probs[c]).sum()).collect();
        x.extend(group_p.iter().map(|p| (p + f.eps).ln()));
        let logits: Vec<f32> =
            f.weights.iter().zip(&f.bias).map(|(w, b)| w.iter().zip(&x).map(|(a, b)| a * b).sum::<f32>() + b).collect();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let total: f32 = exp.iter().sum();
        let head_p: f32 = exp.iter().zip(&f.categories).filter(|(_, c)| c.case).map(|(e, _)| e / total).sum();
        let strong = self.strong.iter().map(|&g| group_p[g]).fold(0f32, f32::max);
        let prior = (f.prior_gain * strong).clamp(0.0, 1.0);
        let model_score = (1.0 - (1.0 - head_p) * (1.0 - prior)).clamp(0.0, 1.0);
        let adapted_p: f32 = exp.iter().zip(&self.rates).map(|(e, r)| e / total * r).sum();
        // a released kind also quiets the weapon/drug prior in proportion
        let prior_keep = if head_p > 1e-6 { (adapted_p / head_p).min(1.0) } else { 1.0 };
        let adapted = (1.0 - (1.0 - adapted_p) * (1.0 - prior * prior_keep)).clamp(0.0, 1.0);
        let best = exp
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| f.categories[i].name.clone())
            .unwrap_or_default();
        let (score, shift) = if self.protos.is_empty() {
            (model_score, 0.0)
        } else {
            let k = self.correction_shift(&x[..f.embedding_dim]);
            (shift_score(adapted, k), logit(shift_score(adapted, k)) - logit(model_score))
        };
        HeadScore { score, model_score, category: best, correction_shift: shift }
    }

    /// Centred, re-normalised embedding used for similarity between photos.
    fn unit(&self, l2: &[f32]) -> Vec<f32> {
        let mut v: Vec<f32> = l2.iter().zip(&self.file.embedding_mean).map(|(a, m)| a - m).collect();
        let n = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
        v.iter_mut().for_each(|a| *a /= n);
        v
    }

    /// Replace the corrections (newest last); wrong-sized embeddings are skipped.
    pub fn set_corrections(&mut self, corrections: &[Correction]) {
        let dim = self.file.embedding_dim;
        let start = corrections.len().saturating_sub(MAX_CORRECTIONS);
        self.protos = corrections[start..]
            .iter()
            .filter(|c| c.embedding.len() == dim && c.embedding.iter().all(|v| v.is_finite()))
            .map(|c| {
                let n = c.embedding.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                let l2: Vec<f32> = c.embedding.iter().map(|v| v / n).collect();
                Proto { unit: self.unit(&l2), case: c.case }
            })
            .collect();
        // per-category case rates from the embedding-only category model
        let f = &self.file;
        let mut mass = vec![0f32; f.categories.len()];
        let mut case_mass = vec![0f32; f.categories.len()];
        for c in corrections[start..].iter().filter(|c| c.embedding.len() == dim) {
            let n = c.embedding.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            let l2: Vec<f32> = c.embedding.iter().map(|v| v / n).collect();
            let q = softmax(
                &f.category_weights
                    .iter()
                    .zip(&f.category_bias)
                    .map(|(w, b)| w.iter().zip(&l2).map(|(a, b)| a * b).sum::<f32>() + b)
                    .collect::<Vec<_>>(),
            );
            for (k, qk) in q.iter().enumerate() {
                mass[k] += qk;
                if c.case {
                    case_mass[k] += qk;
                }
            }
        }
        self.rates = f
            .categories
            .iter()
            .enumerate()
            .map(|(k, cat)| {
                let r0 = if cat.case { 1.0 } else { 0.0 };
                (PRIOR_WEIGHT * r0 + case_mass[k]) / (PRIOR_WEIGHT + mass[k])
            })
            .collect();
        let tagged = self.protos.iter().filter(|p| p.case).count();
        tracing::info!(tagged, released = self.protos.len() - tagged, "classifier corrections set");
    }

    pub fn corrections(&self) -> usize {
        self.protos.len()
    }

    /// Log-odds shift for an (l2-normalised) embedding.
    fn correction_shift(&self, l2: &[f32]) -> f32 {
        if self.protos.is_empty() {
            return 0.0;
        }
        let u = self.unit(l2);
        let mut case_k = Vec::new();
        let mut pers_k = Vec::new();
        for p in &self.protos {
            let cos: f32 = p.unit.iter().zip(&u).map(|(a, b)| a * b).sum();
            let k = ((cos - KERNEL_FLOOR) / (1.0 - KERNEL_FLOOR)).clamp(0.0, 1.0);
            if p.case {
                case_k.push(k)
            } else {
                pers_k.push(k)
            }
        }
        let top = |mut v: Vec<f32>| -> f32 {
            v.sort_by(|a, b| b.total_cmp(a));
            v.iter().take(TOP_K).sum::<f32>() / TOP_K as f32
        };
        (GAIN * (top(case_k) - top(pers_k))).clamp(-GAIN, GAIN)
    }
}

fn softmax(z: &[f32]) -> Vec<f32> {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = z.iter().map(|v| (v - max).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

fn logit(p: f32) -> f32 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

/// Move a probability by `shift` in log-odds.
pub fn shift_score(p: f32, shift: f32) -> f32 {
    let z = logit(p) + shift;
    1.0 / (1.0 + (-z).exp())
}
