#!/usr/bin/env python3
"""Issue 22's grouped evaluation: one protocol for the baseline and every try.

* Groups: `source_repo`, with the six mahmoudnafifi/* repositories as one group (one author's
  photos), so 64 groups over eval-dev + train-extra + train-extra2.
* Splits: leave one group out (--scheme loso) or 10-fold group k-fold (--scheme gkf10,
  StratifiedGroupKFold by case/personal, shuffle, seed 0). Every try is scored on the same splits
  as the baseline beside it.
* Priors (per-category log-odds shifts, train_head.fit_priors) are **nested**: each held-out
  fold's priors are fitted on the other folds' out-of-fold scores only; reported with and without.
* Threshold: the highest keeping case recall >= 0.98 on the grouped out-of-fold scores.
  Off duty at the threshold, on duty at threshold x 0.6 (the agent's on_duty_threshold_factor).

Scores come from `oof_categories(...)`: out-of-fold category probabilities for a recipe. The
baseline recipe is train_head.py's (C 1, source weights, prior gain 2, 9 views per photo) on the
shipped int8 model's features.

Usage: python3 models/cv22.py --scheme gkf10 [--model M.onnx] [--tag NAME]
"""

from __future__ import annotations

import os

os.environ["ORT_DISABLE_TELEMETRY"] = "1"
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import train_head as th  # noqa: E402

SHARED = HERE.parent.parent / "shared/data"
FOLDERS = ["eval-dev", "train-extra", "train-extra2"]
ON_DUTY = 0.6


def group_of(source: str) -> str:
    return "mahmoudnafifi/*" if source.startswith("mahmoudnafifi/") else source


def splits(scheme: str, y: np.ndarray, groups: np.ndarray):
    from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold

    n = len(y)
    if scheme == "loso":
        return list(LeaveOneGroupOut().split(np.zeros(n), groups=groups))
    k = int(scheme.removeprefix("gkf"))
    return list(StratifiedGroupKFold(k, shuffle=True, random_state=0).split(np.zeros(n), y, groups))


def load(model: Path, n_aug: int = 8, seed: int = 7):
    rows, logits, emb, img, view = th.extract([SHARED / d for d in FOLDERS], model, n_aug, seed, HERE / ".cache")
    return rows, logits, emb, img, view


def nested_scores(P, strong, y, case_of_cat, gain, split, priors=True):
    """Scores with each test fold's priors fitted on the other folds' out-of-fold rows only."""
    g = np.zeros(len(y))
    for tr, te in split:
        d = (th.fit_priors(P[tr], strong[tr], y[tr], case_of_cat, gain, th.TARGET_RECALL) if priors
             else np.zeros(len(case_of_cat)))
        g[te] = th.scores_with_priors(P[te], strong[te], case_of_cat, gain, d)
    return g


def summary(score, y, cats, groups) -> dict:
    from sklearn.metrics import roc_auc_score

    thr = th.pick_threshold(score, y, th.TARGET_RECALL)
    off = th.report(score, y, cats, thr)
    on = th.report(score, y, cats, thr * ON_DUTY)
    return {
        "threshold": off["threshold"], "auc": round(float(roc_auc_score(y, score)), 4),
        "off_duty": {k: off[k] for k in ("case_recall", "case_precision", "personal_taken")},
        "on_duty": {k: on[k] for k in ("case_recall", "case_precision", "personal_taken")},
        "categories": {c: v["correct"] for c, v in off["categories"].items()},
        "categories_on_duty": {c: v["correct"] for c, v in on["categories"].items()},
        "worst": off["worst"],
        "per_group": {s: round(float(((score >= thr) == (y == 1))[groups == s].mean()), 3)
                      for s in sorted(set(groups))},
    }


def line(tag, s):
    o, d = s["off_duty"], s["on_duty"]
    return (f"{tag}: thr {s['threshold']:.4f} AUC {s['auc']:.3f} | off duty R {o['case_recall']:.3f} "
            f"P {o['case_precision']:.3f} personal taken {100 * o['personal_taken']:.1f} % | on duty (x0.6) "
            f"R {d['case_recall']:.3f} P {d['case_precision']:.3f} taken {100 * d['personal_taken']:.1f} % | "
            f"worst {s['worst']} {s['categories'][s['worst']]:.2f}")


def evaluate(P, strong, y, cats, groups, case_of_cat, split, gain=2.0, tag="", out=None):
    """P: out-of-fold category probabilities. Prints and returns nested / without-prior summaries."""
    res = {}
    for name, pri in (("nested_priors", True), ("no_priors", False)):
        g = nested_scores(P, strong, y, case_of_cat, gain, split, pri)
        res[name] = summary(g, y, cats, groups)
        res[name]["scores"] = [round(float(v), 5) for v in g]
        print(line(f"{tag} {name}", res[name]), flush=True)
    if out:
        Path(out).write_text(json.dumps(res))
    return res


def baseline_oof(X_train, X_test, cat, img, w, split, case_of_cat, C=1.0):
    return th.cross_validate({"train": X_train, "test": X_test}, cat, img, w, split, case_of_cat, C)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scheme", default="gkf10")
    ap.add_argument("--model", type=Path, default=HERE / "efficientnet_lite0.int8.onnx")
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--gain", type=float, default=2.0)
    ap.add_argument("--per-photo", action="store_true", help="also a 5-fold per-photo CV (stratified)")
    ap.add_argument("--tag", default="baseline")
    args = ap.parse_args()
    rows, logits, emb, img, view = load(args.model)
    cats_img = np.array([r["category"] for r in rows])
    groups = np.array([group_of(r["source_repo"]) for r in rows])
    y = np.array([r["label"] == "case" for r in rows]).astype(int)
    categories = sorted(set(cats_img))
    case_of_cat = np.array([int(y[cats_img == c][0]) for c in categories])
    cat = np.array([categories.index(c) for c in cats_img])[img]
    F = th.features(logits, emb)
    v0 = np.zeros(len(rows), int)
    v0[img[view == 0]] = np.where(view == 0)[0]
    Xt, strong = F[v0], th.strong_prob(logits[v0])
    w = th.photo_weights(cats_img, np.array([r["source_repo"] for r in rows]), "source")
    print(f"{len(rows)} photos, {len(set(groups))} groups, {int(y.sum())} case; scheme {args.scheme}")
    sp = splits(args.scheme, y, groups)
    P = baseline_oof(F, Xt, cat, img, w, sp, case_of_cat, args.C)
    np.save(HERE / f".cache/oof-{args.tag}-{args.scheme}.npy", P)
    evaluate(P, strong, y, cats_img, groups, case_of_cat, sp, args.gain, f"{args.tag} {args.scheme}",
             HERE / f".cache/cv-{args.tag}-{args.scheme}.json")
    if args.per_photo:
        from sklearn.model_selection import StratifiedKFold

        pp = list(StratifiedKFold(5, shuffle=True, random_state=7).split(np.zeros(len(y)), cats_img))
        P2 = baseline_oof(F, Xt, cat, img, w, pp, case_of_cat, args.C)
        evaluate(P2, strong, y, cats_img, groups, case_of_cat, pp, args.gain, f"{args.tag} per-photo-5fold")


if __name__ == "__main__":
    main()
