package no.fotovakt.app

import android.content.Context
import android.util.Log
import no.fotovakt.core.AgentStarter
import no.fotovakt.core.NativeCore
import no.fotovakt.core.QuarantineTeller
import java.io.File
import java.util.concurrent.Executors

/**
 * The one in-process Rust agent. The service, the content-trigger job, the boot receiver and
 * the activities all call it through here, so there is a single store and ledger writer per
 * process, and every one of them gets it the same way: [AgentStarter] installs and verifies
 * the shipped model first, starts the core, runs the first-run backlog once access is there,
 * then the core's watcher. (Before, only the service installed the model, so a process the
 * content job started decided photos without the classifier.)
 *
 * Nothing here throws to its caller: a core that cannot open (bad config, unwritable store,
 * missing library) is logged, kept in [lastError] for the screen, the service notification
 * and the EMM, and answered with null. A throw on the service's handler thread would kill the
 * process, and START_STICKY would bring it back into the same failure: a crash loop.
 */
object CoreHolder {
    private const val TAG = "fotovakt"

    @Volatile
    private var starter: AgentStarter? = null

    @Volatile
    private var teller: QuarantineTeller? = null

    fun starter(context: Context): AgentStarter = starter ?: synchronized(this) {
        starter ?: AgentStarter(AndroidEnv(context), PlatformFrames, teller(context)).also {
            // Photos the core put back after judging them out of sight: MediaStore must scan them.
            NativeCore.setReturnListener(ReturnScanner(context.applicationContext))
            starter = it
        }
    }

    /** Health reports after a quarantine, off the deciding thread (which may hold the core). */
    private val reports = Executors.newSingleThreadExecutor()

    /**
     * Tells the officer of each quarantined item once, whichever path decided it. Runs on the
     * deciding thread (the core's watcher thread, or inside a core call): it posts the
     * notification and hands the health report to another thread, never calling into the core
     * itself (that could wait on a core call that is waiting on this).
     */
    fun teller(context: Context): QuarantineTeller = teller ?: synchronized(this) {
        val app = context.applicationContext
        teller ?: QuarantineTeller(Prefs.of(app)) { item, name, case ->
            Notifications.quarantined(app, QuarantinedItem(item, name, "", case, "quarantined"))
            reports.execute {
                try {
                    Health.afterIntake(app)
                } catch (e: RuntimeException) {
                    Log.w(TAG, "health report: ${Logs.of(e)}")
                }
            }
        }.also { teller = it }
    }

    /** Why the agent is not running (null while it is). */
    val lastError: String?
        get() = starter?.lastError()

    /** The running agent, started (or restarted after a config change) on demand; null if it cannot start. */
    fun get(context: Context): NativeCore? {
        val s = starter(context)
        val core = s.get()
        if (core == null) Log.e(TAG, "agent not running${Logs.detail(s.lastError())}")
        return core
    }

    /** Runs [block] against the agent; a core error is logged and answered with null. */
    fun <T> call(context: Context, what: String, block: (NativeCore) -> T): T? {
        val core = get(context) ?: return null
        return try {
            block(core)
        } catch (e: no.fotovakt.core.RefusedException) {
            // The core declined and changed nothing (no case ID, not in the store, unsafe target).
            Log.w(TAG, "$what refused: ${Logs.of(e)}")
            null
        } catch (e: no.fotovakt.core.FotovaktException) {
            Log.e(TAG, "$what failed: ${Logs.of(e)}")
            null
        } catch (e: RuntimeException) {
            Log.e(TAG, "$what failed: ${Logs.of(e)}")
            null
        }
    }

    fun stop() {
        try {
            starter?.stop()
        } catch (e: RuntimeException) {
            Log.e(TAG, "stop: ${Logs.of(e)}")
        }
    }

    /** Statistics (counts only) also land here, for `adb shell run-as no.fotovakt.app cat files/stats.json`. */
    fun writeStats(context: Context, json: String) {
        val file = File(context.filesDir, "stats.json")
        val tmp = File(context.filesDir, "stats.json.tmp")
        try {
            tmp.writeText(json)
            if (!tmp.renameTo(file)) Log.w(TAG, "could not write stats.json")
        } catch (e: java.io.IOException) {
            Log.w(TAG, "could not write stats.json: ${Logs.of(e)}")
        }
    }
}
