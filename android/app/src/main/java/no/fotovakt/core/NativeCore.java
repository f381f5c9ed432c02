package no.fotovakt.core;

/**
 * The JNI surface of the Rust core ({@code src/android.rs}, cargo feature {@code android}).
 *
 * <p>Plain Java with no Android imports, so the very same class is compiled into the app and into
 * the host JVM harness ({@code android/host-test}) that drives the bridge on a desktop JVM.
 * Every method calls the same {@code Agent} functions the CLI uses; results are JSON strings.
 * Errors and Rust panics arrive as {@link FotovaktException} carrying a stable
 * {@link FotovaktException.Code} from the Rust error's variant; refusals (nothing changed) as
 * its subclass {@link RefusedException}.
 *
 * <p>Durability: every call that changes the store or the ledger returns only after the core's
 * durability barrier (the library syncs the ledger and the folders it wrote before it returns,
 * and again when the agent is dropped at {@link #close()}), so the app never flushes.
 *
 * <p>Thread safety: the Rust agent is {@code Send + Sync}; calls may come from any thread.
 * {@link #close()} must not race other calls on the same instance (the service owns it).
 */
public final class NativeCore implements AutoCloseable {
    private static volatile boolean loaded;

    /** Loads {@code libfotovakt.so} (on a host JVM: {@code -Djava.library.path} names its folder). */
    public static synchronized void load() {
        if (!loaded) {
            System.loadLibrary("fotovakt");
            loaded = true;
        }
    }

    private long handle;

    private NativeCore(long handle) {
        this.handle = handle;
    }

    /**
     * Opens the agent.
     *
     * @param configToml the config file contents (same schema as the CLI's config), built by the
     *     app from managed configuration; its paths point into {@code filesDir}
     * @param filesDir app-private files dir (the quarantine store lives below it)
     * @param cacheDir app-private cache dir (scratch)
     * @param nativeLibDir {@code ApplicationInfo.nativeLibraryDir}, for diagnostics only: ONNX
     *     Runtime is loaded by bare soname {@code libonnxruntime.so}
     */
    public static NativeCore start(String configToml, String filesDir, String cacheDir, String nativeLibDir) {
        load();
        return new NativeCore(nativeStart(configToml, filesDir, cacheDir, nativeLibDir));
    }

    /** A new photo or video at {@code path}: hash, classify, decide, maybe quarantine. Outcome JSON. */
    public String onMedia(String path) {
        return nativeOnMedia(h(), path, null);
    }

    /**
     * A new video at {@code path} with one keyframe decoded by the app (JPEG bytes, in memory):
     * when no context rule decides, the classifier judges the keyframe. Outcome JSON.
     */
    public String onVideo(String path, byte[] keyframeJpeg) {
        return nativeOnMedia(h(), path, keyframeJpeg);
    }

    /** Classify one JPEG keyframe of a video (decoded by the app). Assessment JSON, or "null". */
    public String classifyKeyframe(byte[] jpeg) {
        return nativeClassifyKeyframe(h(), jpeg);
    }

    /** Tag a quarantined item (or "session") with a case ID. ItemSummary JSON. */
    public String tag(String target, String caseId, String officer, String note) {
        return nativeTag(h(), target, caseId, officer, note);
    }

    /** Release a quarantined item as not case material, with a reason. ItemSummary JSON. */
    public String release(String item, String reason, String officer) {
        return nativeRelease(h(), item, reason, officer);
    }

    /**
     * Open a case session: new photos are taken as material of {@code caseId}; {@code officer}
     * (may be null) goes on the custody event. 0 = no limit.
     */
    public void sessionStart(String caseId, String officer, long durationSeconds) {
        nativeSessionStart(h(), caseId, officer, durationSeconds);
    }

    public void sessionStop() {
        nativeSessionStop(h());
    }

    /** Quarantined items of the last {@code days} days (no image data), JSON array. */
    public String listJson(int days) {
        return nativeListJson(h(), days);
    }

    /**
     * Starts the core's own file watcher on the camera folders, if it is not running. The shell
     * calls it only once the first-run backlog pass is done ({@link AgentStarter}): the watcher
     * reconciles at once and would decide the camera roll from before the install as new.
     * Its outcomes go to the {@link OutcomeListener}. Returns whether it runs.
     */
    public boolean startWatcher() {
        return nativeStartWatcher(h());
    }

    /** Walk the camera folders for anything the observers missed. ReconcileReport JSON. */
    public String reconcile() {
        return nativeReconcile(h());
    }

    /** Counts only (for the EMM): JSON object. */
    public String statsJson() {
        return nativeStatsJson(h());
    }

    /**
     * The statistics as a few keyed app states: JSON array of {@code {key, message, data}},
     * data compact JSON within the EMM's limits (see src/android/states.rs).
     */
    public String statsStates() {
        return nativeStatsStates(h());
    }

    /**
     * Writes a case package (a folder, or a zip when {@code outPath} ends in .zip) for the
     * receiving case file, audited in the ledger. ExportReport JSON.
     */
    public String export(String caseId, String outPath, String officer) {
        return nativeExport(h(), caseId, outPath, officer);
    }

    /**
     * {@link #export}, encrypted to the receiving case system's age public keys
     * ({@code age1...}, managed configuration {@code handoff_recipients}): {@code outPath} must
     * then end in .zip.age, and only a holder of a matching identity can open it. With no
     * recipients, a plain package. Every package is signed with the device key. ExportReport JSON
     * (with {@code signer}, {@code recipients}, {@code sealed_sha256}).
     */
    public String exportTo(String caseId, String outPath, String officer, java.util.List<String> recipients) {
        return nativeExportTo(h(), caseId, outPath, officer, lines(recipients));
    }

    /**
     * Anchors the ledger again after its head anchor was found missing or unreadable (health
     * and {@code fotovakt verify} say so): an audited event with the officer's reason.
     * AnchorReport JSON; refused ({@code REFUSED_HEAD_PRESENT}) while the head is there.
     */
    public String anchor(String reason, String officer) {
        return nativeAnchor(h(), reason, officer);
    }

    /**
     * Exports a case into the hand-off folder {@code dir} as its one package
     * ({@code <case>.zip}, or {@code <case>.zip.age} encrypted to {@code recipients}, the receiving
     * case system's age public keys from managed configuration {@code handoff_recipients}),
     * replacing that case's older package there (of either kind) only once the new one is complete
     * and recorded. Signed with the device key. ExportReport JSON; its {@code path} is where the
     * package is.
     */
    public String exportHandoff(String caseId, String dir, String officer, java.util.List<String> recipients) {
        return nativeExportHandoff(h(), caseId, dir, officer, lines(recipients));
    }

    private static String lines(java.util.List<String> recipients) {
        StringBuilder lines = new StringBuilder();
        for (String r : recipients) {
            lines.append(r).append('\n');
        }
        return lines.toString();
    }

    /**
     * Removes from the hand-off folder {@code dir} every package that is no longer needed at
     * {@code nowMs}: acknowledged, replaced, holding an item that left the store (purged,
     * released), older than the retention, or of no case. JSON {@code {kept:[…], removed:[…]}}.
     */
    public String sweepHandoff(String dir, long nowMs) {
        return nativeSweepHandoff(h(), dir, nowMs);
    }

    /** Records that the case file received the package. AckReport JSON. */
    public String ack(String caseId, String officer) {
        return nativeAck(h(), caseId, officer);
    }

    /** Removes store files whose retention ran out (ledger rows kept). PurgeReport JSON. */
    public String purge(boolean dryRun) {
        return nativePurge(h(), dryRun);
    }

    /** The first-run pass over the camera roll as it was before install (config {@code backlog}). Outcome JSON array. */
    public String recordBacklog() {
        return nativeRecordBacklog(h());
    }

    /**
     * Health for the admin: {@code model_loaded}, {@code model_error}, {@code media_location_access},
     * {@code backlog}, {@code cameras}, {@code last_decided_ms}, {@code store}: the store's
     * health ({@code store}: ok, failing, full, read_only or unknown; {@code reason},
     * {@code since_ms}, {@code free_bytes}, {@code waiting}), {@code device_key}
     * ({@code algorithm}, {@code fingerprint}, {@code provider}; null with {@code device_key_error})
     * and {@code checkpoint} (the newest signed ledger checkpoint, for the EMM to keep). JSON object.
     */
    public String healthJson() {
        return nativeHealthJson(h());
    }

    /**
     * A downscaled JPEG (longest side at most {@code maxSide}) of a quarantined item, decoded
     * from the store by the core. For the officer's in-app preview only (FLAG_SECURE window).
     * Throws for formats the core cannot decode (HEIC, video): use {@link #itemFile} then.
     */
    public byte[] previewJpeg(String item, int maxSide) {
        return nativePreviewJpeg(h(), item, maxSide);
    }

    /** The app-private store file of a quarantined item (for platform decoding in-app; never shared). */
    public String itemFile(String item) {
        return nativeItemFile(h(), item);
    }

    /**
     * Parses and validates {@code configToml} as {@link #start} would, opening nothing.
     * Returns the effective config as JSON; a bad value throws {@link FotovaktException} naming it.
     */
    public static String checkConfig(String configToml, String filesDir) {
        load();
        return nativeCheckConfig(configToml, filesDir);
    }

    /**
     * Installs the process's device key (null removes it) for agents started afterwards: the
     * core checks that it signs with its own public key and returns its fingerprint (SHA-256
     * of the public key, hex), which the admin registers. A signer that fails that check is not
     * installed and throws; the core then signs with its own key file.
     */
    public static String setDeviceSigner(DeviceSigner signer) {
        load();
        return nativeSetDeviceSigner(signer);
    }

    /**
     * Whether the phone takes its time from the network ({@code Settings.Global.AUTO_TIME});
     * null: cannot tell. Every custody event recorded afterwards says so in its clock stamp.
     */
    public static void setAutoTime(Boolean on) {
        load();
        nativeSetAutoTime(on == null ? -1 : on ? 1 : 0);
    }

    /** Installs the process's {@link FrameSource} (null removes it). */
    public static void setFrameSource(FrameSource source) {
        load();
        nativeSetFrameSource(source);
    }

    /**
     * Installs the process's {@link OutcomeListener} (null removes it): told of every outcome of
     * onMedia, reconcile, recordBacklog and the core's own watcher.
     */
    public static void setOutcomeListener(OutcomeListener listener) {
        load();
        nativeSetOutcomeListener(listener);
    }

    /** Stops the agent (flushes the ledger). Idempotent. */
    @Override
    public synchronized void close() {
        long h = handle;
        handle = 0;
        if (h != 0) {
            nativeStop(h);
        }
    }

    private synchronized long h() {
        if (handle == 0) {
            throw new FotovaktException(FotovaktException.Code.NOT_RUNNING, "agent is stopped");
        }
        return handle;
    }

    /**
     * A photo or video the case camera wrote into the app's own storage ({@code path}, written
     * through {@code CaptureProvider}): imported into {@code caseId} (null: the open session's
     * case), recorded with the camera app that wrote it ({@code cameraPackage}) and when the
     * write ended, moved into the store and verified; the file at {@code path} is gone once its
     * store copy is. The same bytes already in the case are not stored twice. Imported JSON.
     */
    public String importCapture(String path, String caseId, String cameraPackage, long writtenAtMs) {
        return nativeImportCapture(h(), path, caseId, cameraPackage, writtenAtMs);
    }

    /**
     * Installs (or, with {@code null}, removes) the listener told of every file the core judged
     * out of sight and put back in a camera folder. Process-wide.
     */
    public static void setReturnListener(ReturnListener listener) {
        load();
        nativeSetReturnListener(listener);
    }

    /**
     * Every error code the core can throw, one per line: the host harness checks that each is
     * a {@link FotovaktException.Code} constant, so a new Rust variant cannot arrive as UNKNOWN.
     */
    public static String errorCodes() {
        load();
        return nativeErrorCodes();
    }

    /** The crate version the library was built from (loads the library first). */
    public static String version() {
        load();
        return nativeVersion();
    }

    private static native String nativeVersion();
    private static native String nativeErrorCodes();

    private static native long nativeStart(String configToml, String filesDir, String cacheDir, String nativeLibDir);
    private static native String nativeOnMedia(long handle, String path, byte[] keyframeJpeg);
    private static native String nativeClassifyKeyframe(long handle, byte[] jpeg);
    private static native String nativeTag(long handle, String target, String caseId, String officer, String note);
    private static native String nativeRelease(long handle, String item, String reason, String officer);
    private static native void nativeSessionStart(long handle, String caseId, String officer, long durationSeconds);
    private static native void nativeSessionStop(long handle);
    private static native String nativeListJson(long handle, int days);
    private static native String nativeReconcile(long handle);
    private static native boolean nativeStartWatcher(long handle);
    private static native String nativeExportHandoff(long handle, String caseId, String dir, String officer, String recipients);
    private static native String nativeSweepHandoff(long handle, String dir, long nowMs);
    private static native String nativeStatsStates(long handle);
    private static native void nativeSetOutcomeListener(OutcomeListener listener);
    private static native String nativeStatsJson(long handle);
    private static native String nativeExport(long handle, String caseId, String outPath, String officer);
    private static native String nativeAck(long handle, String caseId, String officer);
    private static native String nativePurge(long handle, boolean dryRun);
    private static native String nativeRecordBacklog(long handle);
    private static native String nativeHealthJson(long handle);
    private static native byte[] nativePreviewJpeg(long handle, String item, int maxSide);
    private static native String nativeItemFile(long handle, String item);
    private static native String nativeCheckConfig(String configToml, String filesDir);
    private static native void nativeSetFrameSource(FrameSource source);
    private static native String nativeSetDeviceSigner(DeviceSigner signer);
    private static native void nativeSetAutoTime(int state);
    private static native String nativeExportTo(long handle, String caseId, String outPath, String officer, String recipients);
    private static native String nativeAnchor(long handle, String reason, String officer);
    private static native void nativeStop(long handle);
    private static native String nativeImportCapture(long handle, String path, String caseId, String cameraPackage, long writtenAtMs);
    private static native void nativeSetReturnListener(ReturnListener listener);
}
