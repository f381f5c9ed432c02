package no.fotovakt.app

import android.content.Context
import android.util.Log
import no.fotovakt.core.NativeCore
import org.json.JSONArray

/**
 * The first-run backlog: photos that were in the camera folders before the app was installed.
 * Once per installation the core's `record_backlog` pass runs with the managed `backlog`
 * setting (default `record`: each is hashed and recorded as kept, none is moved; `quarantine`:
 * each is decided like a new photo). Only after it finished without error is it marked done;
 * a pass cut short runs again (the core skips what it already recorded).
 */
object Backlog {
    private const val TAG = "fotovakt"

    fun runOnce(context: Context, core: NativeCore) {
        val prefs = context.getSharedPreferences("backlog", Context.MODE_PRIVATE)
        if (prefs.getBoolean("done", false)) return
        val json = try {
            core.recordBacklog()
        } catch (e: RuntimeException) {
            Log.e(TAG, "first-run backlog failed (will run again): ${e.message}")
            return
        }
        val outcomes = JSONArray(json)
        val retry = (0 until outcomes.length()).count { outcomes.getJSONObject(it).optString("kind") == "retry" }
        Log.i(TAG, "first-run backlog: ${outcomes.length()} file(s), $retry to look at again")
        if (retry == 0) prefs.edit().putBoolean("done", true).putLong("done_at_ms", System.currentTimeMillis()).apply()
    }
}
