#!/usr/bin/env bash
# Classifier benchmark: fotovakt beside the Python peer (Pillow draft + onnxruntime, same
# int8 model, one thread), alternating photo by photo in one run, per EXIF flavour
# (no thumbnail, the project's own EXIF, piexif, exiftool, the real camera files of
# exif-samples). Run twice: pinned to one core (the 1-thread figures; the 2-thread decode
# then shares that core), and on two cores (the 2-thread decode's figure).
# Usage: bash bench/classify_bench.sh   (needs ../shared/data/eval-dev and exif-samples,
#        Pillow, numpy, onnxruntime, piexif, exiftool)
set -euo pipefail
cd "$(dirname "$0")/.."
PHOTOS="${FOTOVAKT_BENCH_PHOTOS:-/tmp/fotovakt-bench-flavours}"
[ -d "$PHOTOS" ] || python3 bench/classify_make_photos.py --out "$PHOTOS"
cargo build --release --bench classify 2>&1 | tail -1
echo "== one core: taskset -c 1"
FOTOVAKT_BENCH_PHOTOS="$PHOTOS" nice -n 10 taskset -c 1 cargo bench --bench classify 2>/dev/null | grep -E '^[{#]'
echo "== two cores: taskset -c 0,1"
FOTOVAKT_BENCH_PHOTOS="$PHOTOS" nice -n 10 taskset -c 0,1 cargo bench --bench classify 2>/dev/null | grep -E '^[{#]'
