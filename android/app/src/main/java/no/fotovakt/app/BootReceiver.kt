package no.fotovakt.app

import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.util.Log

/**
 * Starts [AgentService] after boot and after an app update (which also re-verifies the model
 * from the new APK's assets). Starting a `specialUse` foreground service from BOOT_COMPLETED is
 * allowed on Android 15 (a `dataSync` one is not). LOCKED_BOOT_COMPLETED is not used: the store
 * is in credential-encrypted `filesDir`. The start is guarded ([AgentService.start]) and the
 * content-trigger job is scheduled either way.
 */
class BootReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        when (intent.action) {
            Intent.ACTION_BOOT_COMPLETED, Intent.ACTION_MY_PACKAGE_REPLACED -> {
                Log.i("fotovakt", "${intent.action}: starting agent service")
                MediaJobService.ensureScheduled(context)
                AgentService.start(context)
            }
        }
    }
}
