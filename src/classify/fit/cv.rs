//! Cross-validation splits, the threshold for a target recall, and the report of a set of
//! out-of-fold scores (the `cv` block of a head file, as `models/train_head.py` writes it).

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// One fold: the photos it trains on and the photos it scores (indices into the photos).
#[derive(Debug, Clone, PartialEq)]
pub struct Fold {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// Sources up to which grouped CV leaves one source out at a time; with more, the sources
/// are dealt into [`GROUP_FOLDS`] folds.
pub const LEAVE_ONE_OUT_UP_TO: usize = 20;
/// Folds of the grouped CV over many sources (issue 22: at least 10).
pub const GROUP_FOLDS: usize = 10;
/// Fewest sources for a grouped CV; with fewer the CV is per photo.
pub const MIN_SOURCES: usize = 3;

fn fold_of(assign: &[usize], folds: usize) -> Vec<Fold> {
    (0..folds)
        .map(|f| Fold {
            train: (0..assign.len()).filter(|&i| assign[i] != f).collect(),
            test: (0..assign.len()).filter(|&i| assign[i] == f).collect(),
        })
        .filter(|f| !f.test.is_empty() && !f.train.is_empty())
        .collect()
}

/// Grouped folds by source: one source out at a time with up to `leave_one_out_up_to`
/// sources (or `folds` = 0), else the sources dealt into `folds` folds, largest source first
/// into the fold with fewest photos (scikit-learn's `GroupKFold`). Returns the folds and
/// the scheme in words.
pub fn grouped(sources: &[String], folds: Option<usize>) -> (Vec<Fold>, String) {
    let mut names: Vec<&String> = sources.iter().collect();
    names.sort();
    names.dedup();
    let count = |s: &String| sources.iter().filter(|x| *x == s).count();
    let k = match folds {
        Some(0) => names.len(),
        Some(k) => k.min(names.len()),
        None if names.len() <= LEAVE_ONE_OUT_UP_TO => names.len(),
        None => GROUP_FOLDS,
    };
    let mut fold_of_source: BTreeMap<&String, usize> = BTreeMap::new();
    if k == names.len() {
        for (i, s) in names.iter().enumerate() {
            fold_of_source.insert(s, i);
        }
    } else {
        let mut by_size = names.clone();
        by_size.sort_by(|a, b| count(b).cmp(&count(a)).then(a.cmp(b)));
        let mut load = vec![0usize; k];
        for s in by_size {
            let f = (0..k).min_by_key(|&f| (load[f], f)).unwrap_or(0);
            load[f] += count(s);
            fold_of_source.insert(s, f);
        }
    }
    let assign: Vec<usize> = sources.iter().map(|s| fold_of_source[s]).collect();
    let scheme = if k == names.len() {
        format!("leave one source out ({} sources)", names.len())
    } else {
        format!("group k-fold by source ({k} folds over {} sources)", names.len())
    };
    (fold_of(&assign, k), scheme)
}

/// Per-photo folds, stratified by category: each category's photos shuffled (seeded) and
/// dealt round the folds in turn.
pub fn stratified(categories: &[usize], folds: usize, seed: u64) -> Vec<Fold> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut assign = vec![0usize; categories.len()];
    let mut next = 0usize;
    let mut cats: Vec<usize> = categories.to_vec();
    cats.sort_unstable();
    cats.dedup();
    for c in cats {
        let mut idx: Vec<usize> = (0..categories.len()).filter(|&i| categories[i] == c).collect();
        rng.shuffle(&mut idx);
        for i in idx {
            assign[i] = next % folds;
            next += 1;
        }
    }
    fold_of(&assign, folds)
}

/// The highest threshold that keeps case recall >= `recall` on these scores: the
/// `floor((1 - recall) * positives)`-th lowest case score (`train_head.py`'s rule).
pub fn pick_threshold(scores: &[f64], case: &[bool], recall: f64) -> f64 {
    let mut pos: Vec<f64> = scores.iter().zip(case).filter(|(_, &c)| c).map(|(s, _)| *s).collect();
    pos.sort_by(f64::total_cmp);
    let lose = ((1.0 - recall) * pos.len() as f64).floor() as usize;
    pos.get(lose).copied().unwrap_or(0.5)
}

fn round4(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

/// What a threshold does to out-of-fold scores: precision, recall, the share of personal
/// photos taken, and the share decided right per category (the keys of `train_head.py`).
pub fn report(scores: &[f64], case: &[bool], categories: &[String], threshold: f64) -> Value {
    let pred: Vec<bool> = scores.iter().map(|&s| s >= threshold).collect();
    let tp = pred.iter().zip(case).filter(|(&p, &c)| p && c).count();
    let fp = pred.iter().zip(case).filter(|(&p, &c)| p && !c).count();
    let fn_ = pred.iter().zip(case).filter(|(&p, &c)| !p && c).count();
    let personal = case.iter().filter(|&&c| !c).count();
    let mut cats: BTreeMap<&str, (bool, usize, usize)> = BTreeMap::new();
    for ((c, &is_case), &p) in categories.iter().zip(case).zip(&pred) {
        let e = cats.entry(c).or_insert((is_case, 0, 0));
        e.1 += 1;
        e.2 += usize::from(p == is_case);
    }
    let per: serde_json::Map<String, Value> = cats
        .iter()
        .map(|(c, (is_case, n, right))| {
            let label = if *is_case { "case" } else { "personal" };
            (c.to_string(), json!({"label": label, "n": n, "correct": round4(*right as f64 / *n as f64)}))
        })
        .collect();
    let worst = cats
        .iter()
        .min_by(|a, b| (a.1 .2 as f64 / a.1 .1 as f64).total_cmp(&(b.1 .2 as f64 / b.1 .1 as f64)))
        .map(|(c, _)| c.to_string())
        .unwrap_or_default();
    json!({
        "threshold": round4(threshold),
        "case_precision": round4(tp as f64 / (tp + fp).max(1) as f64),
        "case_recall": round4(tp as f64 / (tp + fn_).max(1) as f64),
        "personal_taken": round4(fp as f64 / personal.max(1) as f64),
        "categories": per,
        "worst": worst,
    })
}

/// Share decided right per source at `threshold`.
pub fn per_source(scores: &[f64], case: &[bool], sources: &[String], threshold: f64) -> Value {
    let mut by: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for ((s, &c), &score) in sources.iter().zip(case).zip(scores) {
        let e = by.entry(s).or_default();
        e.0 += 1;
        e.1 += usize::from((score >= threshold) == c);
    }
    Value::Object(
        by.into_iter()
            .map(|(s, (n, right))| (s.to_string(), json!({"n": n, "correct": round4(right as f64 / n as f64)})))
            .collect(),
    )
}

/// ROC AUC of scores for case against personal (ties count half).
pub fn auc(scores: &[f64], case: &[bool]) -> f64 {
    let pos: Vec<f64> = scores.iter().zip(case).filter(|(_, &c)| c).map(|(s, _)| *s).collect();
    let neg: Vec<f64> = scores.iter().zip(case).filter(|(_, &c)| !c).map(|(s, _)| *s).collect();
    if pos.is_empty() || neg.is_empty() {
        return f64::NAN;
    }
    let mut wins = 0.0;
    for p in &pos {
        for n in &neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (pos.len() * neg.len()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_folds_keep_each_source_in_one_fold() {
        let sources: Vec<String> = ["a", "a", "b", "c", "c", "c", "d"].iter().map(|s| s.to_string()).collect();
        let (folds, scheme) = grouped(&sources, None);
        assert_eq!(folds.len(), 4, "{scheme}");
        assert_eq!(scheme, "leave one source out (4 sources)");
        for f in &folds {
            let held: Vec<&String> = f.test.iter().map(|&i| &sources[i]).collect();
            assert!(held.iter().all(|s| *s == held[0]));
            assert!(f.train.iter().all(|&i| sources[i] != *held[0]));
        }
        let (folds, scheme) = grouped(&sources, Some(2));
        assert_eq!((folds.len(), scheme.as_str()), (2, "group k-fold by source (2 folds over 4 sources)"));
        // largest source first into the emptiest fold: c (3) | a (2) + b (1) ... d
        let sizes: Vec<usize> = folds.iter().map(|f| f.test.len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 7);
        assert!(sizes.iter().all(|&s| s >= 3), "{sizes:?}");
    }

    #[test]
    fn stratified_folds_spread_every_category() {
        let cats: Vec<usize> = (0..30).map(|i| i % 3).collect();
        let folds = stratified(&cats, 5, 7);
        assert_eq!(folds.len(), 5);
        for f in &folds {
            assert_eq!(f.test.len(), 6);
            for c in 0..3 {
                assert_eq!(f.test.iter().filter(|&&i| cats[i] == c).count(), 2);
            }
        }
        let mut all: Vec<usize> = folds.iter().flat_map(|f| f.test.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..30).collect::<Vec<_>>());
    }

    #[test]
    fn the_threshold_keeps_the_asked_recall() {
        let scores: Vec<f64> = (0..100).map(|i| f64::from(i) / 100.0).collect();
        let case: Vec<bool> = (0..100).map(|i| i >= 50).collect();
        // 50 case photos, recall 0.98 lets one go: the second-lowest case score
        assert_eq!(pick_threshold(&scores, &case, 0.98), 0.51);
        assert_eq!(pick_threshold(&scores, &case, 1.0), 0.50);
        let cats: Vec<String> = case.iter().map(|&c| if c { "cash".into() } else { "pets".into() }).collect();
        let r = report(&scores, &case, &cats, 0.51);
        assert_eq!(r["case_recall"], 0.98);
        assert_eq!(r["personal_taken"], 0.0);
        assert_eq!(r["worst"], "cash");
        assert_eq!(auc(&scores, &case), 1.0);
    }
}
