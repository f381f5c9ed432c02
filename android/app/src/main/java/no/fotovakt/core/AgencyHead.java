package no.fotovakt.core;

import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * An agency's own case head ({@code fotovakt head fit}), named by managed configuration
 * ({@code case_head_file}, pinned by {@code case_head_sha256}), installed into the app's
 * private {@code filesDir/models/} before the core reads it.
 *
 * <p>The file arrives on shared storage (an EMM's file deployment, or the bench over USB),
 * where other apps with storage access could change it, so it is used only if its SHA-256 is
 * the one the managed configuration pins: it is copied (temp file, fsync, hash again, rename)
 * to {@link #INSTALLED} and the core is pointed at that copy. A copy installed earlier with
 * the same pin is used when the shared file is gone. Anything else (missing, other hash,
 * unreadable) is an error: the app then starts the core with the classifier off and reports
 * the reason as health ERROR; it never falls back to another head. The core itself refuses a
 * head fitted for another model ({@code model_sha256}), naming both hashes.
 *
 * <p>Plain Java 8 (no Android imports), so the host harness runs the very code the app does.
 */
public final class AgencyHead {
    /** File name of the installed copy inside {@code filesDir/models/}. */
    public static final String INSTALLED = "agency_case_head.json";
    /** Larger files are refused before reading (a head is about 0.4 MB). */
    public static final long MAX_BYTES = 16L * 1024 * 1024;

    /** The installed head, or why there is none. */
    public static final class Result {
        public final String path;
        public final String error;

        Result(String path, String error) {
            this.path = path;
            this.error = error;
        }

        public boolean ok() {
            return error == null && path != null;
        }
    }

    private AgencyHead() {}

    /**
     * Installs the head at {@code source} (absolute, or relative to {@code sharedStorage})
     * into {@code filesDir/models/} if its SHA-256 is {@code pinnedSha256}.
     */
    public static Result install(String source, String pinnedSha256, String sharedStorage, String filesDir) {
        String want = pinnedSha256.trim().toLowerCase(java.util.Locale.ROOT);
        File src = source.startsWith("/") ? new File(source) : new File(sharedStorage.replaceAll("/+$", ""), source);
        File dir = new File(filesDir, "models");
        File target = new File(dir, INSTALLED);
        try {
            if (!src.isFile()) {
                if (target.isFile() && want.equals(sha256(target))) {
                    return new Result(target.getAbsolutePath(), null);
                }
                return new Result(null, "case_head_file " + src + " not found (and no copy with SHA-256 " + want + " installed)");
            }
            if (src.length() > MAX_BYTES) {
                return new Result(null, "case_head_file " + src + " is " + src.length() + " bytes: not a head file");
            }
            String got = sha256(src);
            if (!got.equals(want)) {
                return new Result(null, "case_head_file " + src + " has SHA-256 " + got + ", case_head_sha256 pins " + want
                        + ": head refused, classifier off");
            }
            if (!dir.isDirectory() && !dir.mkdirs()) {
                throw new IOException("cannot create " + dir);
            }
            if (!(target.isFile() && want.equals(sha256(target)))) {
                copyVerified(src, target, want);
            }
            return new Result(target.getAbsolutePath(), null);
        } catch (IOException e) {
            return new Result(null, "case_head_file " + src + ": " + e.getMessage());
        }
    }

    /** Copies beside {@code target}, syncs, checks the hash of the copy, renames it into place. */
    private static void copyVerified(File src, File target, String want) throws IOException {
        File tmp = new File(target.getParentFile(), target.getName() + ".tmp");
        try (InputStream in = new FileInputStream(src); FileOutputStream out = new FileOutputStream(tmp)) {
            byte[] buf = new byte[1 << 16];
            int n;
            while ((n = in.read(buf)) > 0) {
                out.write(buf, 0, n);
            }
            out.getFD().sync();
        }
        String got = sha256(tmp);
        if (!got.equals(want)) {
            if (!tmp.delete()) {
                tmp.deleteOnExit();
            }
            throw new IOException("the file changed while it was copied (SHA-256 " + got + ")");
        }
        if (!tmp.renameTo(target)) {
            throw new IOException("cannot move " + tmp + " into place");
        }
    }

    /** Lower-case hex SHA-256 of a file. */
    public static String sha256(File file) throws IOException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IOException("SHA-256 unavailable", e);
        }
        try (InputStream in = new FileInputStream(file)) {
            byte[] buf = new byte[1 << 16];
            int n;
            while ((n = in.read(buf)) > 0) {
                md.update(buf, 0, n);
            }
        }
        StringBuilder s = new StringBuilder();
        for (byte b : md.digest()) {
            s.append(String.format("%02x", b & 0xff));
        }
        return s.toString();
    }
}
