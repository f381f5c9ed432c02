package no.fotovakt.app

import android.content.Context
import android.util.Log
import androidx.enterprise.feedback.KeyedAppState
import androidx.enterprise.feedback.KeyedAppStatesReporter
import no.fotovakt.core.AppStates

/**
 * Keyed app states for the EMM, built by [AppStates] (health, config, and the statistics as a
 * few states with structured data: counts only, never file names or case IDs). Keys are never
 * cut: [AppStates.State] refuses one longer than the limit, and every key here is fixed.
 */
object EmmReporter {
    private const val TAG = "fotovakt"
    private var reporter: KeyedAppStatesReporter? = null

    @Synchronized
    fun send(context: Context, states: List<AppStates.State>) {
        if (states.isEmpty()) return
        val r = reporter ?: KeyedAppStatesReporter.create(context.applicationContext).also { reporter = it }
        val keyed = states.map {
            KeyedAppState.builder()
                .setKey(it.key)
                .setSeverity(if (it.ok()) KeyedAppState.SEVERITY_INFO else KeyedAppState.SEVERITY_ERROR)
                .setMessage(it.message)
                .setData(it.data)
                .build()
        }
        r.setStates(keyed) { status, error ->
            if (error != null) Log.w(TAG, "keyed app states: status $status: ${Logs.of(error)}")
        }
    }
}
