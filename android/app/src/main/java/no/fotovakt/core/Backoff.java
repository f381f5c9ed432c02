package no.fotovakt.core;

/**
 * Bounded exponential backoff for files the core asked to look at again ({@code retry}: still
 * being written, changed while hashed, the store busy or full): the next pass comes after
 * {@code base}, then twice that, … never more than {@code max} apart, and at once again after
 * a pass in which nothing had to be retried. So a photo that cannot be taken yet is retried
 * soon, and one that keeps failing costs a pass every {@code max}, not a busy loop.
 */
public final class Backoff {
    public static final long BASE_MS = 2_000;
    public static final long MAX_MS = 5 * 60_000;

    private final long baseMs;
    private final long maxMs;
    private int failures;

    public Backoff(long baseMs, long maxMs) {
        if (baseMs <= 0 || maxMs < baseMs) {
            throw new IllegalArgumentException("0 < base <= max");
        }
        this.baseMs = baseMs;
        this.maxMs = maxMs;
    }

    public Backoff() {
        this(BASE_MS, MAX_MS);
    }

    /** A pass left something to retry: how long until the next one. */
    public synchronized long failed() {
        long delay = baseMs;
        for (int i = 0; i < failures && delay < maxMs; i++) {
            delay *= 2;
        }
        failures++;
        return Math.min(delay, maxMs);
    }

    /** A pass took everything: the next retry starts at {@code base} again. */
    public synchronized void succeeded() {
        failures = 0;
    }

    public synchronized int failures() {
        return failures;
    }
}
