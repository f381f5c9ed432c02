#!/usr/bin/env bash
# Storm benchmark (issue 5, part 2): 10,000 photos written Android-style (.pending-… file,
# fsync, rename; 4 writer threads) as fast as the disk allows into a camera folder watched by
# the real `fotovakt watch`. Two runs:
#   (a) normal;
#   (c) (after b) the camera folder on the MediaProvider-like FUSE filesystem, store on disk;
#   (b) inotify queue overflow forced: fs.inotify.max_queued_events lowered to 64 while the
#       agent creates its inotify instance (restored at once, and again by the trap below),
#       and the agent frozen with SIGSTOP while the first 500 photos land.
# Each prints one line: photos, quarantined/kept, missed, write rate, drain time (last write →
# all decided), total rate, agent peak RSS, rescans/overflows from the agent's JSON log.
#
#   bash bench/storm.sh [PHOTOS]        # (b) needs root; without it, it is skipped
#
# The agent is the debug test build (dependencies at opt-level 2), like the crash campaign.
set -euo pipefail
cd "$(dirname "$0")/.."
PHOTOS="${1:-10000}"
LIMIT=/proc/sys/fs/inotify/max_queued_events
SAVED="$(cat "$LIMIT")"
# The storm restores the limit itself (a drop guard); this covers a kill of the whole run.
trap 'if [ "$(id -u)" = 0 ] && [ "$(cat "$LIMIT")" != "$SAVED" ]; then echo "$SAVED" > "$LIMIT"; fi' EXIT INT TERM
run() {
  FOTOVAKT_STORM_PHOTOS="$PHOTOS" nice -n 10 cargo test --locked --test storm storm -- --ignored --exact \
    --nocapture --test-threads=1 2>&1 | grep -oE 'storm( \([^)]*\))*: photos=.*|panicked.*|test result.*'
}
echo "== (a) normal: $PHOTOS photos"
FOTOVAKT_STORM_OVERFLOW=0 run
if [ "$(id -u)" = 0 ]; then
  echo "== (b) inotify queue overflow forced: $PHOTOS photos"
  FOTOVAKT_STORM_OVERFLOW=1 run
else
  echo "== (b) SKIP: not root, cannot lower $LIMIT"
fi
if [ "$(id -u)" = 0 ] && [ -e /dev/fuse ]; then
  echo "== (c) camera folder on mediafs (MediaProvider-like FUSE), store on disk: $PHOTOS photos"
  FOTOVAKT_STORM_OVERFLOW=0 FOTOVAKT_STORM_MEDIAFS=1 run
else
  echo "== (c) SKIP: mediafs needs root and /dev/fuse"
fi
echo "max_queued_events now: $(cat "$LIMIT") (was $SAVED)"
