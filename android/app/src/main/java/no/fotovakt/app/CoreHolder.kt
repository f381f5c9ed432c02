package no.fotovakt.app

import android.content.Context
import android.util.Log
import no.fotovakt.core.FotovaktException
import no.fotovakt.core.NativeCore
import java.io.File

/**
 * The one in-process Rust agent. The service, the content-trigger job and the activities all
 * call it through here, so there is a single store and ledger writer per process.
 */
object CoreHolder {
    private const val TAG = "fotovakt"
    private var core: NativeCore? = null
    private var appliedConfig: String? = null

    /** The running agent, started (or restarted after a managed-config change) on demand. */
    @Synchronized
    fun get(context: Context): NativeCore {
        val app = context.applicationContext
        val config = CoreConfig.toml(app, ManagedConfig.read(app))
        val running = core
        if (running != null && config == appliedConfig) return running
        running?.close()
        core = null
        val started = NativeCore.start(
            config,
            app.filesDir.absolutePath,
            app.cacheDir.absolutePath,
            app.applicationInfo.nativeLibraryDir,
        )
        Log.i(TAG, "agent started (core ${NativeCore.version()})")
        core = started
        appliedConfig = config
        return started
    }

    /** Runs [block] against the agent; a core error is logged and returned as null. */
    fun <T> call(context: Context, what: String, block: (NativeCore) -> T): T? =
        try {
            block(get(context))
        } catch (e: FotovaktException) {
            Log.e(TAG, "$what failed: ${e.message}")
            null
        }

    @Synchronized
    fun stop() {
        core?.close()
        core = null
        appliedConfig = null
    }

    /** Statistics (counts only) also land here, for `adb shell run-as no.fotovakt.app cat files/stats.json`. */
    fun writeStats(context: Context, json: String) {
        val file = File(context.filesDir, "stats.json")
        val tmp = File(context.filesDir, "stats.json.tmp")
        tmp.writeText(json)
        if (!tmp.renameTo(file)) Log.w(TAG, "could not write ${file.path}")
    }
}
