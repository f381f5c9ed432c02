package no.fotovakt.app

import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.util.Log

/**
 * Starts [AgentService] after boot and after an app update. Starting a `specialUse` foreground
 * service from BOOT_COMPLETED is allowed on Android 15 (a `dataSync` one is not).
 * LOCKED_BOOT_COMPLETED is not used: the store is in credential-encrypted `filesDir`.
 */
class BootReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        when (intent.action) {
            Intent.ACTION_BOOT_COMPLETED, Intent.ACTION_MY_PACKAGE_REPLACED -> {
                Log.i("fotovakt", "${intent.action}: starting agent service")
                AgentService.start(context)
            }
        }
    }
}
