#!/usr/bin/env python3
"""Where a quarantined photo's time goes inside the agent, from the system calls of one run of
the latency bench (issue 12). Run the bench under strace, then this on the trace:

  FOTOVAKT_BENCH_PHOTOS=/tmp/fotovakt-bench-flavours/none FOTOVAKT_BENCH_N=20 FOTOVAKT_BENCH_PEER=0 \
  FOTOVAKT_BENCH_STAGES=0 strace -f -ttt -T -o /tmp/latency.strace \
    -e trace=openat,pread64,fsync,rename,renameat2,flock,pwrite64,fchmod,read,write,close \
    target/release/deps/latency-HASH
  python3 bench/latency_strace.py /tmp/latency.strace

Per quarantined photo (the first two, warm-ups, left out), medians in ms, from the bench's rename
into the camera folder: to the agent's open, the read (preads, hashing between them), from the
last read to the move lock (EXIF, decide's queries, the classifier), the lock's open, the ledger
transaction up to the intent's WAL fsync, that fsync, to the rename out (gone), the two folder
fsyncs after it, the closing commit, and the barrier's WAL fsync. strace slows system calls;
read the shares, not the absolute times.
"""
import re
import statistics as st
import sys


def events(path):
    pend, ev = {}, []
    for line in open(path).read().splitlines():
        m = re.match(r"(\d+)\s+(\d+\.\d+) (.*)", line)
        if not m:
            continue
        tid, t, rest = m.group(1), float(m.group(2)), m.group(3)
        if rest.endswith("<unfinished ...>"):
            pend[tid] = (t, rest[: -len("<unfinished ...>")])
            continue
        r = re.match(r"<\.\.\. (\w+) resumed>(.*)", rest)
        if r and tid in pend:
            t, head = pend.pop(tid)
            rest = head + r.group(2)
        d = re.search(r"<(\d+\.\d+)>$", rest)
        ev.append((tid, t, rest, float(d.group(1)) if d else 0.0))
    return ev


def main():
    ev = events(sys.argv[1])
    agent = {e[0] for e in ev if e[2].startswith("renameat2(")}
    photos = []
    for e in ev:
        if e[2].startswith("rename(") and ".pending-" in e[2]:
            m = re.search(r', "[^"]*/(IMG_\d+\.jpg)"', e[2])
            if m:
                photos.append((e[1], m.group(1)))
    rows = []
    for k, (t0, name) in enumerate(photos):
        t1 = photos[k + 1][0] if k + 1 < len(photos) else float("inf")
        s = [e for e in ev if e[0] in agent and t0 <= e[1] < t1]

        def first(pred, after):
            return next((e for e in s if e[1] >= after and pred(e)), None)

        op = first(lambda e: e[2].startswith("openat") and name in e[2], t0)
        if not op:
            continue
        last = None
        for e in s:
            if e[1] < op[1]:
                continue
            if e[2].startswith("pread64("):
                last = e
            elif last:
                break
        end_read = last[1] + last[3]
        lk = first(lambda e: "move.lock" in e[2] and e[2].startswith("openat"), op[1])
        ren = lk and first(lambda e: e[2].startswith("renameat2(") and name in e[2], lk[1])
        if not ren:
            continue  # kept: no move
        wal = first(lambda e: e[2].startswith("fsync("), lk[1])
        f1 = first(lambda e: e[2].startswith("fsync("), ren[1])
        f2 = first(lambda e: e[2].startswith("fsync("), f1[1] + 1e-6)
        bw = first(lambda e: e[2].startswith("fsync("), f2[1] + 1e-6)
        rows.append({
            "rename -> open": (op[1] - t0) * 1e3,
            "read + SHA-256": (end_read - op[1]) * 1e3,
            "EXIF, decide, classify": (lk[1] - end_read) * 1e3,
            "move lock open": lk[3] * 1e3,
            "ledger tx to intent": (wal[1] - lk[1] - lk[3]) * 1e3,
            "intent WAL fsync": wal[3] * 1e3,
            "to the rename": (ren[1] - wal[1] - wal[3]) * 1e3,
            "rename -> gone (total)": (ren[1] + ren[3] - t0) * 1e3,
            "store folder fsync": f1[3] * 1e3,
            "camera folder fsync": f2[3] * 1e3,
            "closing commit": (bw[1] - f2[1] - f2[3]) * 1e3 if bw else float("nan"),
            "barrier WAL fsync": bw[3] * 1e3 if bw else float("nan"),
        })
    rows = rows[2:] if len(rows) > 4 else rows
    print(f"{len(rows)} quarantined photos; medians (min, max) in ms")
    for key in rows[0]:
        v = [r[key] for r in rows]
        print(f"  {key:24s} {st.median(v):7.2f}  ({min(v):.2f}, {max(v):.2f})")


if __name__ == "__main__":
    main()
