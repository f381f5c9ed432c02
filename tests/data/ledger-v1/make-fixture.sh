#!/bin/bash
# Write a small real ledger with the pre-typed-events binary ($BIN).
set -euo pipefail
BIN=${BIN:-/tmp/fx/fotovakt-v1}
W=$(mktemp -d /tmp/fx/run.XXXX)
CAM=$W/phone/DCIM/Camera; STORE=$W/private/store
mkdir -p "$CAM" "$W/phone/DCIM/.stfolder" "$W/out"
cat > "$W/cfg.toml" <<CFG
cameras = ["$CAM"]
[classifier]
enabled = false
[retention]
exported_days = 0
CFG
export FOTOVAKT_CONFIG=$W/cfg.toml NO_COLOR=1 FOTOVAKT_LOG=fotovakt=warn
fv() { "$BIN" --store "$STORE" "$@"; }
# A real JPEG with a COM segment carrying the seed right after SOI: a distinct file per seed.
BASE=${BASE:-/root/.pyenv/versions/3.12.1/lib/python3.12/test/imghdrdata/python.jpg}
shoot() {
  python3 -c "import sys; b=open('$BASE','rb').read(); c=b'fotovakt fixture seed $2'; sys.stdout.buffer.write(b[:2]+b'\xff\xfe'+(len(c)+2).to_bytes(2,'big')+c+b[2:])" > "$W/tmp.jpg"
  mv "$W/tmp.jpg" "$CAM/$1"; touch -d '-10 seconds' "$CAM/$1"
}
shoot IMG_personal.jpg 1
shoot IMG_kept.jpg 2
: > "$CAM/IMG_broken.jpg"; touch -d '-10 seconds' "$CAM/IMG_broken.jpg"
fv scan --camera "$CAM"
fv session start --case C-1 --officer ola
shoot IMG_c1.jpg 11; shoot IMG_c2.jpg 12; shoot IMG_c3.jpg 13
fv scan --camera "$CAM"
fv session stop
fv scan --camera "$CAM"   # the broken file again: no second rejection
fv tag "$CAM/IMG_personal.jpg" --case C-1 --officer ola --note "seen at the scene"
fv list --all --json > "$W/list.json"
C3=$(python3 -c "import json,sys; l=json.load(open('$W/list.json')); print([i['id'] for i in l if i['original_path'].endswith('IMG_c3.jpg')][0])")
fv release "$C3" --reason "false positive" --officer ola
fv session start --case C-2 --for 1h
shoot IMG_d1.jpg 21
fv scan --camera "$CAM"
fv session stop
fv export --case C-1 --out "$W/out/C-1.zip" --officer ola
fv ack --case C-1 --officer clerk
fv purge --officer admin
sqlite3_checkpoint() { python3 -c "import sqlite3; c=sqlite3.connect('$STORE/ledger.sqlite'); print(c.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchall()); c.close()"; }
sqlite3_checkpoint
fv verify
fv list --all
echo "$W"
