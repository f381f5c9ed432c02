package no.fotovakt.core;

/**
 * Told of every outcome the core produces while deciding files: from {@link NativeCore#onMedia}
 * (MediaStore pass, content job), {@link NativeCore#reconcile}, {@link NativeCore#recordBacklog}
 * and the core's own file watcher (whose outcomes have no other way to reach the app). Skips
 * are not told. Called on the deciding thread (a core thread for the watcher, attached to the
 * JVM for the call). Installed with {@link NativeCore#setOutcomeListener}; the app's is a
 * {@link QuarantineTeller}, so every quarantine reaches the officer the same way, once.
 */
public interface OutcomeListener {
    /** @param json one outcome, as {@link NativeCore#onMedia} returns it. Must not throw. */
    void outcome(String json);
}
