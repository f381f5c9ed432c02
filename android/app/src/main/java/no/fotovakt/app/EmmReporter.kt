package no.fotovakt.app

import android.content.Context
import android.util.Log
import androidx.enterprise.feedback.KeyedAppState
import androidx.enterprise.feedback.KeyedAppStatesReporter
import org.json.JSONObject

/**
 * Statistics (counts only, never file names or case IDs) sent to the EMM as keyed app states:
 * one state per top-level numeric field of the core's `stats_json`.
 */
object EmmReporter {
    private const val TAG = "fotovakt"
    private var reporter: KeyedAppStatesReporter? = null

    @Synchronized
    fun report(context: Context, statsJson: String) {
        if (!ManagedConfig.read(context).reportStats) return
        val states = try {
            val o = JSONObject(statsJson)
            o.keys().asSequence().mapNotNull { key ->
                val v = o.opt(key)
                if (v !is Number) return@mapNotNull null
                KeyedAppState.builder()
                    .setKey("fotovakt.$key".take(KeyedAppState.MAX_KEY_LENGTH))
                    .setSeverity(KeyedAppState.SEVERITY_INFO)
                    .setMessage(key)
                    .setData(v.toString())
                    .build()
            }.toList()
        } catch (e: org.json.JSONException) {
            Log.e(TAG, "stats JSON: ${e.message}")
            return
        }
        if (states.isEmpty()) return
        val r = reporter ?: KeyedAppStatesReporter.create(context.applicationContext).also { reporter = it }
        r.setStates(states) { status, error ->
            if (error != null) Log.w(TAG, "keyed app states: status $status: ${error.message}")
        }
    }
}
