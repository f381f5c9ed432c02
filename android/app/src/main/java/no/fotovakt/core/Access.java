package no.fotovakt.core;

/**
 * What the app may see of shared storage right now, as the platform says at this moment
 * ({@code Platform.access} on a phone):
 * <ul>
 *   <li>{@link #allFiles}: all-files access ({@code MANAGE_EXTERNAL_STORAGE}, API 30+), or on
 *       Android 10 legacy storage with {@code WRITE_EXTERNAL_STORAGE} granted: every camera
 *       file can be read and moved;</li>
 *   <li>{@link #mediaRead}: the media read grant ({@code READ_MEDIA_IMAGES}/{@code _VIDEO} on
 *       33+, {@code READ_EXTERNAL_STORAGE} before): other apps' photos and videos are listed
 *       and readable;</li>
 *   <li>{@link #mediaLocation}: {@code ACCESS_MEDIA_LOCATION} (EXIF GPS not redacted on read).</li>
 * </ul>
 * Without either of the first two, FUSE and MediaStore show the app only its own files: a
 * pass then sees an empty camera roll, so nothing may be marked done, and no mark may move.
 */
public final class Access {
    public final boolean allFiles;
    public final boolean mediaRead;
    public final boolean mediaLocation;

    public Access(boolean allFiles, boolean mediaRead, boolean mediaLocation) {
        this.allFiles = allFiles;
        this.mediaRead = mediaRead;
        this.mediaLocation = mediaLocation;
    }

    /** Whether other apps' camera files are visible at all. */
    public boolean canSeeCameraFiles() {
        return allFiles || mediaRead;
    }

    @Override
    public String toString() {
        return "allFiles=" + allFiles + " mediaRead=" + mediaRead + " mediaLocation=" + mediaLocation;
    }
}
