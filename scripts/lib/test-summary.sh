#!/usr/bin/env bash
# Summarise a `cargo test` log (scripts/test): tests ran, passed, failed and ignored (summed
# over libtest's `test result:` lines of every target), and the tests that skipped, with why
# (the `SKIP: <reason> [<target>::<test>]` lines of tests/common/skip.rs).
#
#   bash scripts/lib/test-summary.sh LOG
set -euo pipefail
log="$1"
# The marker may share a line with libtest's `test name ... ` (it is written past the
# output capture, at the moment the test skips), so it is matched anywhere in a line.
grep -o 'SKIP: .*' "$log" | sort -u >"$log.skips" || true
awk -v skipfile="$log.skips" '
  /^test result: / {
    for (i = 1; i <= NF; i++) {
      n = $(i - 1) + 0
      if ($i ~ /^passed;?$/) passed += n
      if ($i ~ /^failed;?$/) failed += n
      if ($i ~ /^ignored;?$/) ignored += n
    }
    targets++
  }
  END {
    skipped = 0
    while ((getline line < skipfile) > 0) { skips[skipped++] = line }
    printf "== tests: %d ran in %d targets: %d passed, %d failed; %d ignored; %d skipped%s\n", \
      passed + failed, targets, passed, failed, ignored, skipped, \
      (skipped ? " (a skip passes, except under CI=true), because:" : "")
    for (i = 0; i < skipped; i++) printf "  %s\n", skips[i]
  }
' "$log"
rm -f "$log.skips"
