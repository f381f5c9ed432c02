package no.fotovakt.core;

/**
 * Told of every file the core took out of sight (renamed into its staging folder before it was
 * judged) and put back in a camera folder: a photo judged personal, one that could not be
 * judged now, one recovery found staged. The app asks MediaStore to scan it: MediaProvider keeps
 * the file's row through the renames but marks it pending when it leaves a hidden folder
 * ({@code getContentValuesForFuseRename}), and only a scan clears that ({@code
 * ModernMediaScanner}: "If IS_PENDING is set by FUSE, we should scan the file"). Installed with
 * {@link NativeCore#setReturnListener}; called from whichever thread returned the file.
 *
 * <p>Plain Java with no Android imports (the app's implementation is in {@code
 * CaseCamera.kt}), so the host JVM harness can install one too.
 */
public interface ReturnListener {
    /**
     * @param path where the file is now (its own name, or {@code NAME-returned-N.ext} when that
     *     was taken meanwhile). Must not throw; if it does, the exception is cleared and logged.
     */
    void returned(String path);
}
