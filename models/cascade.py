#!/usr/bin/env python3
"""Issue 22's second signal as a cascade: text density (text_signal.py) only where the first score is unsure.

Stage 1: the out-of-fold score s1 of a recipe (cv22 / finetune, nested priors or none).
Stage 2, only for photos with s1 in the band [lo, hi): a logistic regression on
  [logit(s1), text_area, text_mean, text_lines]
gives s2; outside the band s2 = s1. Everything nested: each test fold's band and stage-2 model
are fitted on the other folds' out-of-fold scores (the band: the s1 quantiles of those folds' case
photos around their own recall-0.98 threshold, scaled by --band-lo/--band-hi). The threshold at
recall 0.98 is then chosen on the pooled s2, as for every other recipe.
Cost: share of photos in the band x the detector's time per photo.

Usage: python3 models/cascade.py --oof models/.cache/cv-baseline-gkf10.json [--band-lo 0.2 --band-hi 4]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import cv22  # noqa: E402
import finetune as ft  # noqa: E402
import text_signal as ts  # noqa: E402
import train_head as th  # noqa: E402


def logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def stage2(s1, T, y, w, split, lo_f, hi_f, C=1.0):
    from sklearn.linear_model import LogisticRegression

    s2 = s1.copy()
    band = np.zeros(len(s1), bool)
    for tr, te in split:
        thr = th.pick_threshold(s1[tr], y[tr], th.TARGET_RECALL)
        lo, hi = thr * lo_f, min(thr * hi_f, 0.999)
        X = np.column_stack([logit(s1), T])
        m = tr[(s1[tr] >= lo) & (s1[tr] < hi)]
        mu, sd = X[m].mean(0), X[m].std(0) + 1e-6
        lr = LogisticRegression(C=C, max_iter=2000).fit((X[m] - mu) / sd, y[m], sample_weight=w[m])
        t = te[(s1[te] >= lo) & (s1[te] < hi)]
        band[t] = True
        if len(t):
            s2[t] = lr.predict_proba((X[t] - mu) / sd)[:, 1]
    return s2, band


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--oof", type=Path, required=True, help="a cv22 JSON (scores per photo, row order)")
    ap.add_argument("--which", default="nested_priors")
    ap.add_argument("--scheme", default="gkf10")
    ap.add_argument("--band-lo", default="0.1,0.3")
    ap.add_argument("--band-hi", default="3,10")
    args = ap.parse_args()
    rows, cats, categories, y, case_of_cat, cat_img, groups, w = ft.setup()
    s1 = np.array(json.loads(args.oof.read_text())[args.which]["scores"])
    rbf = [(cv22.SHARED / d, [r for r in rows if r["dataset"] == d]) for d in cv22.FOLDERS]
    T, ms = ts.extract(rbf, HERE / ".cache")
    sp = cv22.splits(args.scheme, y, groups)
    print(cv22.line("stage 1 only", cv22.summary(s1, y, cats, groups)))
    for lo in [float(v) for v in args.band_lo.split(",")]:
        for hi in [float(v) for v in args.band_hi.split(",")]:
            s2, band = stage2(s1, T, y, w, sp, lo, hi)
            s = cv22.summary(s2, y, cats, groups)
            print(cv22.line(f"band [{lo} t, {hi} t): {100 * band.mean():.1f} % of photos x {ms:.0f} ms = "
                            f"{band.mean() * ms:.1f} ms a photo", s))
    # the text features alone, for reference (AUC case vs personal)
    from sklearn.metrics import roc_auc_score
    for k, nme in enumerate(["text_area", "text_mean", "text_lines"]):
        print(f"{nme}: AUC {roc_auc_score(y, T[:, k]):.3f}; by category (mean): "
              + ", ".join(f"{c} {T[cats == c, k].mean():.3f}" for c in categories))


if __name__ == "__main__":
    main()
