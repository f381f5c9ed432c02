package no.fotovakt.core;

import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.function.LongSupplier;

/**
 * Turns MediaStore change notifications into intake runs, on the leading edge: the first
 * change after a quiet spell runs at once; changes that arrive within {@code quietMs} of the
 * last run or of each other (a burst shot: dozens of inserts and updates) are gathered and run
 * together once {@code quietMs} pass without a change, and never later than {@code maxWaitMs}
 * after the first of them. A run carries the item URIs the notifications named
 * ({@code ContentObserver.onChange(boolean, Collection<Uri>, int)}, API 30+), so the intake
 * queries those rows instead of re-reading the whole collection; a notification without item
 * URIs (API 29, or a collection URI) asks for a full pass ({@link Batch#everything}).
 *
 * <p>The observer before this debounced on the trailing edge (150 ms, restarted by every change
 * of a burst), so a photo waited in the camera folder for the whole burst plus 150 ms.
 *
 * <p>Plain Java with an injected clock and scheduler: on a phone the service's handler
 * ({@code SystemClock.uptimeMillis}, {@code Handler.postDelayed}); in the host harness a fake
 * clock. Not thread-safe by itself: the service calls it and runs it on one handler thread.
 */
public final class ChangeBatcher {
    public static final long QUIET_MS = 100;
    public static final long MAX_WAIT_MS = 250;

    /** Runs {@code task} after {@code delayMs}; {@link #cancel} withdraws it. */
    public interface Scheduler {
        void schedule(Runnable task, long delayMs);

        void cancel(Runnable task);
    }

    /** What one run is to look at. */
    public static final class Batch {
        public final Set<String> uris;
        public final boolean everything;

        Batch(Set<String> uris, boolean everything) {
            this.uris = Collections.unmodifiableSet(uris);
            this.everything = everything;
        }
    }

    /** The intake: runs one batch. */
    public interface Sink {
        void run(Batch batch);
    }

    private final LongSupplier clock;
    private final Scheduler scheduler;
    private final Sink sink;
    private final long quietMs;
    private final long maxWaitMs;
    private final Runnable flush = this::flush;

    private Set<String> pending = new LinkedHashSet<>();
    private boolean pendingEverything;
    private boolean armed;
    private long firstPendingAt;
    private long lastEventAt = Long.MIN_VALUE / 2;

    public ChangeBatcher(LongSupplier clock, Scheduler scheduler, Sink sink, long quietMs, long maxWaitMs) {
        if (quietMs < 0 || maxWaitMs < quietMs) {
            throw new IllegalArgumentException("0 <= quiet <= maxWait");
        }
        this.clock = clock;
        this.scheduler = scheduler;
        this.sink = sink;
        this.quietMs = quietMs;
        this.maxWaitMs = maxWaitMs;
    }

    public ChangeBatcher(LongSupplier clock, Scheduler scheduler, Sink sink) {
        this(clock, scheduler, sink, QUIET_MS, MAX_WAIT_MS);
    }

    /**
     * A notification: {@code uris} the item URIs it named (may be empty), {@code everything}
     * when it named none or only a collection.
     */
    public void offer(Collection<String> uris, boolean everything) {
        long now = clock.getAsLong();
        boolean quiet = !armed && now - lastEventAt >= quietMs;
        lastEventAt = now;
        pending.addAll(uris);
        pendingEverything |= everything;
        if (quiet) {
            flush();
            return;
        }
        if (!armed) {
            armed = true;
            firstPendingAt = now;
        }
        long deadline = Math.min(now + quietMs, firstPendingAt + maxWaitMs);
        scheduler.cancel(flush);
        scheduler.schedule(flush, Math.max(0, deadline - now));
    }

    /** Whether a run is waiting. */
    public boolean waiting() {
        return armed;
    }

    private void flush() {
        if (armed) {
            scheduler.cancel(flush);
        }
        armed = false;
        Batch batch = new Batch(pending, pendingEverything);
        pending = new LinkedHashSet<>();
        pendingEverything = false;
        if (!batch.uris.isEmpty() || batch.everything) {
            sink.run(batch);
        }
    }
}
