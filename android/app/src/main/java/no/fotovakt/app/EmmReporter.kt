package no.fotovakt.app

import android.content.Context
import android.util.Log
import androidx.enterprise.feedback.KeyedAppState
import androidx.enterprise.feedback.KeyedAppStatesReporter
import org.json.JSONObject

/**
 * Keyed app states for the EMM: health and config errors ([Health]) and statistics (counts
 * only, never file names or case IDs): one state per numeric field of the core's `stats_json`,
 * nested objects flattened to dotted keys (`items.quarantined`, `exposure_ms.p95`, ...).
 * Per-day series (arrays) stay on the device.
 */
object EmmReporter {
    private const val TAG = "fotovakt"
    private var reporter: KeyedAppStatesReporter? = null

    @Synchronized
    fun send(context: Context, states: List<KeyedAppState>) {
        if (states.isEmpty()) return
        val r = reporter ?: KeyedAppStatesReporter.create(context.applicationContext).also { reporter = it }
        r.setStates(states) { status, error ->
            if (error != null) Log.w(TAG, "keyed app states: status $status: ${error.message}")
        }
    }

    fun reportStats(context: Context, statsJson: String) {
        val states = try {
            numbers(JSONObject(statsJson), "").map { (key, v) ->
                KeyedAppState.builder()
                    .setKey("fotovakt.$key".take(KeyedAppState.MAX_KEY_LENGTH))
                    .setSeverity(KeyedAppState.SEVERITY_INFO)
                    .setMessage(key)
                    .setData(v.toString())
                    .build()
            }
        } catch (e: org.json.JSONException) {
            Log.e(TAG, "stats JSON: ${e.message}")
            return
        }
        send(context, states)
    }

    /** Numeric leaves of a JSON object, with dotted keys; arrays are left out. */
    private fun numbers(o: JSONObject, prefix: String): List<Pair<String, Number>> =
        o.keys().asSequence().flatMap { key ->
            when (val v = o.opt(key)) {
                is Number -> sequenceOf("$prefix$key" to v)
                is JSONObject -> numbers(v, "$prefix$key.").asSequence()
                else -> emptySequence()
            }
        }.toList()
}
