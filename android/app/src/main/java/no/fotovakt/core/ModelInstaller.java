package no.fotovakt.core;

import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * The classifier travels in the APK: Gradle's {@code modelAssets} task copies
 * {@code models/efficientnet_lite0.int8.onnx} and {@code models/case_head.json} into the
 * assets and writes {@code models/manifest.json} with their SHA-256, computed from the very
 * bytes it packs. {@link #install} copies them to {@code filesDir/models/} at the first start
 * and after every update (temp file, fsync, hash, rename) and, at every start, checks each
 * installed file against the manifest. A mismatch or a missing asset is an error state (the
 * classifier is not loaded and the app says why), never a silent fallback to a stale or
 * unverified model.
 *
 * <p>Plain Java ({@code org.json} is the platform's; the host harness uses Debian's build of
 * the same AOSP library), so the harness installs the repository's model through this very
 * code and opens the core the way the content job does ({@link AgentStarter}).
 */
public final class ModelInstaller {
    public static final String DIR = "models";
    public static final String MANIFEST = DIR + "/manifest.json";

    /** Where the packed files come from: the APK's assets on a phone. */
    public interface Assets {
        InputStream open(String name) throws IOException;
    }

    /** The verified files, or why there are none. */
    public static final class State {
        public final File model;
        public final File head;
        public final String modelSha256;
        public final String error;

        State(File model, File head, String modelSha256, String error) {
            this.model = model;
            this.head = head;
            this.modelSha256 = modelSha256;
            this.error = error;
        }

        static State failed(String error) {
            return new State(null, null, null, error);
        }

        public boolean ok() {
            return error == null && model != null && head != null;
        }
    }

    private ModelInstaller() {
    }

    /**
     * Installs (if {@code version}, the app's {@code lastUpdateTime}, changed or a file is
     * missing or altered) and verifies the model and head under {@code filesDir/models}.
     */
    public static State install(Assets assets, File filesDir, long version, KeyValueStore store) {
        try {
            return installOrThrow(assets, filesDir, version, store);
        } catch (IOException e) {
            return State.failed("model install failed: " + e.getMessage());
        } catch (JSONException e) {
            return State.failed("asset manifest unreadable: " + e.getMessage());
        }
    }

    private static State installOrThrow(Assets assets, File filesDir, long version, KeyValueStore store)
            throws IOException, JSONException {
        JSONObject manifest;
        try (InputStream in = assets.open(MANIFEST)) {
            manifest = new JSONObject(new String(readAll(in), StandardCharsets.UTF_8));
        }
        String modelName = manifest.getString("model");
        String headName = manifest.getString("head");
        JSONObject hashes = manifest.getJSONObject("sha256");
        File dir = new File(filesDir, DIR);
        if (!dir.isDirectory() && !dir.mkdirs()) {
            throw new IOException("cannot create " + dir);
        }
        boolean fresh = store.getLong("models.installed_for", -1L) != version;
        for (String name : new String[] {modelName, headName}) {
            String want = hashes.getString(name);
            File target = new File(dir, name);
            if (fresh || !target.isFile() || !sha256(target).equals(want)) {
                copyVerified(assets, DIR + "/" + name, target, want);
            }
            String got = sha256(target);
            if (!got.equals(want)) {
                return State.failed(name + ": SHA-256 " + got + ", the build recorded " + want);
            }
        }
        store.put(new KeyValueStore.Edit().putLong("models.installed_for", version));
        return new State(new File(dir, modelName), new File(dir, headName), hashes.getString(modelName), null);
    }

    /** Copies an asset beside {@code target}, checks its hash, then renames it into place. */
    private static void copyVerified(Assets assets, String asset, File target, String want) throws IOException {
        File tmp = new File(target.getParentFile(), target.getName() + ".tmp");
        try (InputStream in = assets.open(asset); FileOutputStream out = new FileOutputStream(tmp)) {
            byte[] buf = new byte[1 << 16];
            int n;
            while ((n = in.read(buf)) >= 0) {
                out.write(buf, 0, n);
            }
            out.getFD().sync();
        }
        String got = sha256(tmp);
        if (!got.equals(want)) {
            if (!tmp.delete()) {
                tmp.deleteOnExit();
            }
            throw new IOException(asset + " in the APK has SHA-256 " + got + ", the build recorded " + want);
        }
        if (!tmp.renameTo(target)) {
            throw new IOException("cannot move " + tmp + " into place");
        }
    }

    public static String sha256(File file) throws IOException {
        try (InputStream in = new FileInputStream(file)) {
            return sha256(in);
        }
    }

    public static String sha256(InputStream in) throws IOException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IOException("no SHA-256", e);
        }
        byte[] buf = new byte[1 << 16];
        int n;
        while ((n = in.read(buf)) >= 0) {
            md.update(buf, 0, n);
        }
        StringBuilder s = new StringBuilder();
        for (byte b : md.digest()) {
            s.append(String.format("%02x", b & 0xff));
        }
        return s.toString();
    }

    private static byte[] readAll(InputStream in) throws IOException {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        byte[] buf = new byte[8192];
        int n;
        while ((n = in.read(buf)) >= 0) {
            out.write(buf, 0, n);
        }
        return out.toByteArray();
    }
}
