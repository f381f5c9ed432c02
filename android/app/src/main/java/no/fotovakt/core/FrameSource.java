package no.fotovakt.core;

/**
 * Supplies a frame of a file the core cannot decode itself (a video, a HEIC/HEIF/AVIF photo),
 * decoded by the platform. The core calls it after the file was hashed, only when the
 * classifier is loaded and the verdict depends on a score, from whichever thread found the
 * file (MediaStore pass, the core's watcher, reconcile). Installed with
 * {@link NativeCore#setFrameSource}.
 *
 * <p>Plain Java with no Android imports (the app's implementation is {@code PlatformFrames.kt}),
 * so the host JVM harness can install one too.
 */
public interface FrameSource {
    /**
     * @param path the file's absolute path: in the camera folder's staging folder
     *     ({@code .fotovakt-staging/<inode>-<name>}), where a new file waits out of sight while it
     *     is judged, or in a camera folder (a file judged where it lies)
     * @param kind the core's media kind: {@code "video"} or {@code "heif"}
     * @return JPEG bytes of one scaled frame (in memory, nothing written), or {@code null} when it
     *     cannot be decoded: the core then decides by context. Must not throw; if it does, the
     *     exception is cleared and treated as {@code null}.
     */
    byte[] frame(String path, String kind);
}
