package no.fotovakt.core;

import java.io.File;

/**
 * The one way the app opens the core, whatever opened the process: the service, the content
 * job, the boot receiver or an activity. {@code CoreHolder.kt} holds the process's one
 * instance; {@code scripts/check-android.sh} checks that nothing else calls
 * {@link NativeCore#start}.
 *
 * <p>{@link #get}, in order:
 * <ol>
 *   <li>installs and verifies the shipped model ({@link ModelInstaller}), once per process
 *       (a failed install again after a minute), before the first start: a process the content job started runs the classifier too
 *       (before, only the service installed it, and the job's decisions, which are final,
 *       were made by context alone);</li>
 *   <li>writes the core's config from managed configuration and the device's facts, and starts
 *       the core (again when that config changed);</li>
 *   <li>{@link #catchUp}: the first-run backlog once access is there, then the core's own
 *       watcher (never before the backlog: it would decide the pre-install roll as new).</li>
 * </ol>
 * Never throws: a core that cannot start is answered with null and {@link #lastError}.
 *
 * <p>Plain Java, so the host harness opens the core through this very code, the way the job does.
 */
public final class AgentStarter {
    /** What the starter needs of the platform (the app: {@code AndroidEnv.kt}). */
    public interface Env {
        ManagedSettings settings();

        File filesDir();

        String cacheDir();

        String nativeLibDir();

        /** Shared storage's root ({@code /storage/emulated/0}). */
        String sharedStorage();

        /** Asked anew at every call: grants change while the app runs. */
        Access access();

        ModelInstaller.Assets assets();

        /** {@code PackageInfo.lastUpdateTime}: a new APK reinstalls the model. */
        long appVersion();

        /** {@code PackageInfo.firstInstallTime}. */
        long installedAtMs();

        KeyValueStore store();

        /** {@link ManagedSettings#ORT_SONAME} on a phone; null on a host. */
        String ortDylib();

        long nowMs();

        /**
         * Called before every start of the core: the app installs the Keystore device signer
         * ({@link NativeCore#setDeviceSigner}) and tells the core whether the clock is the
         * network's ({@link NativeCore#setAutoTime}). A host has neither: the core signs with
         * its key file.
         */
        default void beforeStart() {
        }
    }

    private final Env env;
    private final FrameSource frames;
    private final OutcomeListener listener;
    private ModelInstaller.State model;
    private long modelTriedAt;
    private NativeCore core;
    private String applied;
    private volatile String lastError;
    private volatile Backlog.Result backlog;
    private volatile AgencyHead.Result agencyHead;

    public AgentStarter(Env env, FrameSource frames, OutcomeListener listener) {
        this.env = env;
        this.frames = frames;
        this.listener = listener;
    }

    /** The running core, started (or restarted after a config change) on demand; null if it cannot start. */
    public synchronized NativeCore get() {
        try {
            long now = env.nowMs();
            // Once per process; a failed install (a full disk, say) is tried again a minute later,
            // not on every call (a bad asset stays bad until the next APK).
            if (model == null || (!model.ok() && now - modelTriedAt >= 60_000)) {
                modelTriedAt = now;
                model = ModelInstaller.install(env.assets(), env.filesDir(), env.appVersion(), env.store());
            }
            String toml = toml();
            if (core != null && toml.equals(applied)) {
                return core;
            }
            if (core != null) {
                core.close();
                core = null;
            }
            NativeCore.setFrameSource(frames);
            NativeCore.setOutcomeListener(listener);
            env.beforeStart();
            core = NativeCore.start(toml, env.filesDir().getAbsolutePath(), env.cacheDir(), env.nativeLibDir());
            applied = toml;
            lastError = null;
            catchUpLocked();
            return core;
        } catch (RuntimeException e) { // FotovaktException and anything else from the bridge
            return fail("agent could not start: " + e.getMessage());
        } catch (LinkageError e) { // UnsatisfiedLinkError: libfotovakt.so or libonnxruntime.so
            return fail("native library could not load: " + e.getMessage());
        }
    }

    /**
     * The backlog pass if it is not done and access is there, then the core's watcher. Called
     * by {@link #get} after a start and by the reconcile tick (access may have come since).
     */
    public synchronized Backlog.Result catchUp() {
        return core == null ? backlog : catchUpLocked();
    }

    private Backlog.Result catchUpLocked() {
        ManagedSettings s = env.settings();
        Backlog.Result r = Backlog.runOnce(core, env.access(), s.absoluteCameraFolders(env.sharedStorage()), env.installedAtMs(),
                env.store(), env.nowMs());
        backlog = r;
        if (r.state == Backlog.State.DONE) {
            core.startWatcher();
        }
        return r;
    }

    /**
     * The config the core gets now: model paths only if the model verified; with
     * {@code case_head_file} in managed configuration the head is the agency's, installed by
     * {@link AgencyHead} only if its SHA-256 is the pinned one, and otherwise the classifier is
     * off (never another head) and {@link #agencyHead} says why.
     */
    public synchronized String toml() {
        ModelInstaller.State m = model;
        boolean ok = m != null && m.ok();
        ManagedSettings settings = env.settings();
        agencyHead = settings.caseHeadFile == null ? null
                : AgencyHead.install(settings.caseHeadFile, settings.caseHeadSha256, env.sharedStorage(),
                        env.filesDir().getAbsolutePath());
        String head = agencyHead != null ? (agencyHead.ok() ? agencyHead.path : null)
                : ok ? m.head.getAbsolutePath() : null;
        ManagedSettings.Device device = new ManagedSettings.Device(env.filesDir().getAbsolutePath(), env.sharedStorage(),
                env.access().mediaLocation, ok && head != null ? m.model.getAbsolutePath() : null, head, env.ortDylib());
        return settings.toToml(device);
    }

    /** The agency head as last installed by {@link #toml}: null when managed configuration names none. */
    public AgencyHead.Result agencyHead() {
        return agencyHead;
    }

    public synchronized void stop() {
        try {
            if (core != null) {
                core.close();
            }
        } finally {
            core = null;
            applied = null;
        }
    }

    /** The model install's result (null before the first {@link #get}). */
    public ModelInstaller.State model() {
        return model;
    }

    /** The last backlog pass's result (null before the first). */
    public Backlog.Result backlog() {
        return backlog;
    }

    /** Why the core is not running (null while it is). */
    public String lastError() {
        return lastError;
    }

    private NativeCore fail(String message) {
        lastError = message;
        return null;
    }
}
