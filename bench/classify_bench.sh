#!/usr/bin/env bash
# Classifier benchmark, fotovakt beside the Python peer, same model and thread count.
# Usage: bash bench/classify_bench.sh   (needs ../shared/data/eval-dev, Pillow, onnxruntime)
set -euo pipefail
cd "$(dirname "$0")/.."
PHOTOS="${FOTOVAKT_BENCH_PHOTOS:-/tmp/fotovakt-bench-12mp-noisy}"
[ -d "$PHOTOS" ] || python3 bench/classify_make_photos.py --out "$PHOTOS"
echo "== python peer (1 thread)"
python3 bench/classify_peer.py --photos "$PHOTOS" --threads 1
echo "== fotovakt"
FOTOVAKT_BENCH_PHOTOS="$PHOTOS" cargo bench --bench classify -- --noplot 2>&1 | grep -E '^\{|time:|assess_'
