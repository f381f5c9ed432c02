//! Photos to features: each labelled photo is read as the agent reads a camera file
//! ([`media::inspect`]: no symlinks, hashed before anything looks at it, EXIF parsed once),
//! decoded into its views ([`super::views`]), run through the backbone, and turned into the
//! head's feature vector `[l2norm(embedding), ln(sum p(group) + eps)...]`.

use std::collections::HashMap;

use fast_image_resize::Resizer;
use ndarray::Array2;

use super::labels::{BadRow, Row};
use super::{views, Event};
use crate::classify::head::Recipe;
use crate::classify::{softmax, Backbone, ClassifyError};
use crate::media;

/// The embedded photos.
pub struct Set {
    /// One per photo, in order.
    pub photos: Vec<Row>,
    /// Features of every view, `[views, features]`; view rows of a photo are consecutive.
    pub x: Array2<f64>,
    /// Photo of each view row.
    pub photo_of_row: Vec<usize>,
    /// Row of each photo's view 0 (the agent's input).
    pub first_row: Vec<usize>,
    /// The strong groups' probability (max over them) of each photo's view 0.
    pub strong: Vec<f64>,
    /// Embedding length.
    pub dim: usize,
}

/// The feature vector of one model output (what `head.rs` computes on the device, in f32 as
/// there), and the strong groups' probability.
pub fn features(recipe: &Recipe, logits: &[f32], embedding: &[f32]) -> (Vec<f32>, f32) {
    let probs = softmax(logits);
    let norm = embedding.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    let mut x: Vec<f32> = embedding.iter().map(|v| v / norm).collect();
    let group_p: Vec<f32> = recipe.groups.iter().map(|g| g.classes.iter().map(|&c| probs[c]).sum()).collect();
    x.extend(group_p.iter().map(|p| (p + recipe.eps).ln()));
    let strong = recipe
        .strong_groups
        .iter()
        .filter_map(|s| recipe.groups.iter().position(|g| &g.name == s))
        .map(|g| group_p[g])
        .fold(0f32, f32::max);
    (x, strong)
}

/// Seed of a photo's random views: the run's seed and the photo's content.
fn photo_seed(seed: u64, sha256: &str) -> u64 {
    let head = u64::from_str_radix(&sha256[..16.min(sha256.len())], 16).unwrap_or(0);
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ head
}

/// Why one photo cannot be used, as the reason of its [`BadRow`].
fn photo_problem(row: &Row, what: &str) -> BadRow {
    BadRow { labels: super::labels::labels_file(&row.dir), line: row.line, reason: format!("{}: {what}", row.path) }
}

/// Embed every row; a photo that cannot be used is reported through `on` and left out.
pub fn embed(
    backbone: &mut Backbone,
    recipe: &Recipe,
    rows: Vec<Row>,
    opts: &super::Options,
    on: &mut dyn FnMut(Event<'_>),
    skipped: &mut Vec<BadRow>,
) -> Result<Set, ClassifyError> {
    let total = rows.len();
    let mut resizer = Resizer::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    let (mut photos, mut feats, mut photo_of_row, mut first_row, mut strong) =
        (Vec::new(), Vec::<Vec<f32>>::new(), Vec::new(), Vec::new(), Vec::new());
    let mut dim = 0;
    for (done, row) in rows.into_iter().enumerate() {
        on(Event::Embedding { done, total });
        let mut skip = |bad: BadRow| {
            on(Event::Skipped(&bad));
            skipped.push(bad);
        };
        let inspected = match media::inspect(&row.file(), opts.max_image_bytes) {
            Ok(i) => i,
            Err(e) => {
                skip(photo_problem(&row, &e.to_string()));
                continue;
            }
        };
        let Some(bytes) = inspected.bytes else {
            skip(photo_problem(&row, &format!("{} bytes, larger than max_image_bytes", inspected.size)));
            continue;
        };
        if let Some(want) = row.sha256.as_deref().filter(|w| *w != inspected.sha256) {
            skip(photo_problem(&row, &format!("SHA-256 is {}, labels.tsv says {want}", inspected.sha256)));
            continue;
        }
        if let Some(first) = seen.get(&inspected.sha256) {
            skip(photo_problem(&row, &format!("the same photo as {first}; counted once")));
            continue;
        }
        let mut rng = fastrand::Rng::with_seed(photo_seed(opts.seed, &inspected.sha256));
        let inputs = match views::views(&mut resizer, &bytes, &inspected.exif, opts.views, &mut rng) {
            Ok(v) => v,
            Err(e) => {
                skip(photo_problem(&row, &format!("cannot be decoded: {e}")));
                continue;
            }
        };
        let out = backbone.run(&inputs)?;
        dim = out.dim;
        first_row.push(feats.len());
        for k in 0..out.n {
            let (x, s) = features(recipe, out.logits(k), out.embedding(k));
            if k == 0 {
                strong.push(f64::from(s));
            }
            feats.push(x);
            photo_of_row.push(photos.len());
        }
        seen.insert(inspected.sha256, row.name());
        photos.push(row);
    }
    on(Event::Embedding { done: total, total });
    let width = feats.first().map_or(0, Vec::len);
    let x = Array2::from_shape_fn((feats.len(), width), |(i, j)| f64::from(feats[i][j]));
    Ok(Set { photos, x, photo_of_row, first_row, strong, dim })
}
