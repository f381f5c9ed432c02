package no.fotovakt.app

import android.content.Context
import android.util.Log
import no.fotovakt.core.NativeCore
import java.io.File

/**
 * The one in-process Rust agent. The service, the content-trigger job and the activities all
 * call it through here, so there is a single store and ledger writer per process.
 *
 * Nothing here throws to its caller: a core that cannot open (bad config, unwritable store,
 * missing library) is logged, kept in [lastError] for the screen, the service notification
 * and the EMM, and answered with null. A throw on the service's handler thread would kill the
 * process, and START_STICKY would bring it back into the same failure: a crash loop.
 */
object CoreHolder {
    private const val TAG = "fotovakt"
    private var core: NativeCore? = null
    private var appliedConfig: String? = null

    /** Why the agent is not running (null while it is). */
    @Volatile
    var lastError: String? = null
        private set

    /** The running agent, started (or restarted after a config change) on demand; null if it cannot start. */
    @Synchronized
    fun get(context: Context): NativeCore? {
        val app = context.applicationContext
        return try {
            val config = CoreConfig.toml(app, ManagedConfig.read(app))
            val running = core
            if (running != null && config == appliedConfig) return running
            running?.close()
            core = null
            NativeCore.setFrameSource(PlatformFrames)
            // The Keystore device key signs packages and checkpoints; the core's key file if not.
            DeviceKey.install(app)
            NativeCore.setAutoTime(Health.autoTime(app))
            val started = NativeCore.start(config, app.filesDir.absolutePath, app.cacheDir.absolutePath, app.applicationInfo.nativeLibraryDir)
            Log.i(TAG, "agent started (core ${NativeCore.version()})")
            core = started
            appliedConfig = config
            lastError = null
            started
        } catch (e: RuntimeException) { // FotovaktException and anything else from the bridge
            fail("agent could not start: ${e.message}")
        } catch (e: LinkageError) { // UnsatisfiedLinkError: libfotovakt.so or libonnxruntime.so
            fail("native library could not load: ${e.message}")
        }
    }

    private fun fail(message: String): NativeCore? {
        Log.e(TAG, message)
        lastError = message
        return null
    }

    /** Runs [block] against the agent; a core error is logged and answered with null. */
    fun <T> call(context: Context, what: String, block: (NativeCore) -> T): T? {
        val core = get(context) ?: return null
        return try {
            block(core)
        } catch (e: no.fotovakt.core.RefusedException) {
            // The core declined and changed nothing (no case ID, not in the store, unsafe target).
            Log.w(TAG, "$what refused (${e.code}): ${e.message}")
            null
        } catch (e: no.fotovakt.core.FotovaktException) {
            Log.e(TAG, "$what failed (${e.code}): ${e.message}")
            null
        } catch (e: RuntimeException) {
            Log.e(TAG, "$what failed: ${e.message}")
            null
        }
    }

    @Synchronized
    fun stop() {
        try {
            core?.close()
        } catch (e: RuntimeException) {
            Log.e(TAG, "stop: ${e.message}")
        }
        core = null
        appliedConfig = null
    }

    /** Statistics (counts only) also land here, for `adb shell run-as no.fotovakt.app cat files/stats.json`. */
    fun writeStats(context: Context, json: String) {
        val file = File(context.filesDir, "stats.json")
        val tmp = File(context.filesDir, "stats.json.tmp")
        try {
            tmp.writeText(json)
            if (!tmp.renameTo(file)) Log.w(TAG, "could not write ${file.path}")
        } catch (e: java.io.IOException) {
            Log.w(TAG, "could not write ${file.path}: ${e.message}")
        }
    }
}
