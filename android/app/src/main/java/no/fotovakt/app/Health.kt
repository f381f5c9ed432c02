package no.fotovakt.app

import android.Manifest
import android.app.NotificationManager
import android.content.Context
import android.content.pm.PackageManager
import android.os.PowerManager
import android.provider.Settings
import android.util.Log
import androidx.enterprise.feedback.KeyedAppState
import no.fotovakt.core.NativeCore
import org.json.JSONObject

/**
 * What an admin needs to know about this phone, as keyed app states (`fotovakt.health.*`),
 * plus the managed-config values that could not be used (`fotovakt.config.<key>`, ERROR).
 * Checked at every start and every reconcile tick; [problemLine] is what the service
 * notification and the app's screen show.
 */
object Health {
    private const val TAG = "fotovakt"

    data class Check(val key: String, val ok: Boolean, val data: String, val message: String)

    fun checks(context: Context): List<Check> {
        val pm = context.getSystemService(PowerManager::class.java)
        val nm = context.getSystemService(NotificationManager::class.java)
        val battery = pm?.isIgnoringBatteryOptimizations(context.packageName) == true
        val location = context.checkSelfPermission(Manifest.permission.ACCESS_MEDIA_LOCATION) == PackageManager.PERMISSION_GRANTED
        val notifications = nm?.areNotificationsEnabled() == true && !Platform.notificationPermissionMissing(context)
        val model = ModelAssets.last
        val core = CoreHolder.call(context, "health") { JSONObject(it.healthJson()) }
        val loaded = core?.optBoolean("model_loaded") == true
        val lastMs = core?.takeUnless { it.isNull("last_decided_ms") }?.optLong("last_decided_ms") ?: 0L
        val key = core?.optJSONObject("device_key")
        val provider = key?.optString("provider") ?: ""
        val checkpoint = core?.optJSONObject("checkpoint")
        val autoTime = autoTime(context)
        return listOf(
            Check("all_files_access", Platform.hasAllFilesAccess(), Platform.hasAllFilesAccess().toString(),
                "all-files access (MANAGE_EXTERNAL_STORAGE): needed to move other apps' camera files"),
            Check("media_location", location, location.toString(),
                "ACCESS_MEDIA_LOCATION: without it GPS is redacted on read and nothing is moved"),
            Check("notifications", notifications, notifications.toString(), "notifications to the officer"),
            Check("battery_exemption", battery, battery.toString(),
                "battery-optimisation exemption: keeps the service alive and lets it restart from the background"),
            Check("model", model.ok && loaded, model.modelSha256 ?: "",
                if (model.ok && loaded) "classifier loaded, SHA-256 ${model.modelSha256}"
                else "classifier not loaded: ${model.error ?: core?.optString("model_error") ?: CoreHolder.lastError}"),
            Check("service_alive", AgentService.alive && core != null, System.currentTimeMillis().toString(),
                if (core != null) "agent running" else "agent not running: ${CoreHolder.lastError ?: "service not started"}"),
            Check("last_intake", true, lastMs.toString(), "time of the last decision (ms since the epoch)"),
            // What the admin registers per phone: packages and checkpoints are signed with it.
            Check("device_key", key != null && provider.startsWith("android_"), key?.optString("fingerprint") ?: "",
                if (key == null) "no device key: packages cannot be signed (${core?.optString("device_key_error") ?: CoreHolder.lastError})"
                else if (!provider.startsWith("android_")) "device key in the app's key file, not the Keystore (${DeviceKey.lastError}); fingerprint ${key.optString("fingerprint")}"
                else "device key (${if (provider == "android_strongbox") "StrongBox" else "TEE"}), SHA-256 of the public key ${key.optString("fingerprint")}"),
            // The newest signed ledger checkpoint: the EMM's history of these proves later that
            // the ledger was not rolled back or rewritten (`fotovakt verify --checkpoint`).
            Check("checkpoint", true, checkpoint?.toString() ?: "",
                if (checkpoint != null) "signed ledger checkpoint of event ${checkpoint.optLong("seq")}" else "no ledger checkpoint yet"),
            Check("auto_time", autoTime != false, autoTime?.toString() ?: "unknown",
                "automatic (network) time: ${if (autoTime == false) "OFF: the clock can be set back to backdate events" else "on"}"),
        )
    }

    /** `Settings.Global.AUTO_TIME`: is the phone's time taken from the network? null: cannot tell. */
    fun autoTime(context: Context): Boolean? = try {
        Settings.Global.getInt(context.contentResolver, Settings.Global.AUTO_TIME) == 1
    } catch (e: Settings.SettingNotFoundException) {
        null
    }

    /** One line for the service notification / screen: the first problem, or null. */
    fun problemLine(context: Context): String? {
        val bad = checks(context).firstOrNull { !it.ok } ?: return null
        return bad.message
    }

    fun report(context: Context) {
        // Every event recorded from now on says whether the clock was set by the network.
        try {
            NativeCore.setAutoTime(autoTime(context))
        } catch (e: LinkageError) {
            Log.w(TAG, "auto time not passed to the core: ${e.message}")
        }
        val states = ArrayList<KeyedAppState>()
        for (c in checks(context)) {
            states.add(state("fotovakt.health.${c.key}", if (c.ok) KeyedAppState.SEVERITY_INFO else KeyedAppState.SEVERITY_ERROR, c.message, c.data))
        }
        for ((key, problem) in ManagedConfig.read(context).problems) {
            states.add(state("fotovakt.config.$key", KeyedAppState.SEVERITY_ERROR, problem, key))
        }
        EmmReporter.send(context, states)
        CoreHolder.call(context, "stats") { it.statsJson() }?.let { stats ->
            CoreHolder.writeStats(context, stats)
            if (ManagedConfig.read(context).reportStats) EmmReporter.reportStats(context, stats)
        }
    }

    @Volatile
    private var lastIntakeReportMs = 0L

    /** After a quarantine: at most one report a minute (EMMs throttle keyed app states). */
    fun afterIntake(context: Context) {
        val now = System.currentTimeMillis()
        if (now - lastIntakeReportMs < 60_000) return
        lastIntakeReportMs = now
        report(context)
    }

    /** The platform refused a foreground start: say so where the admin looks. */
    fun serviceRefused(context: Context) {
        Log.w(TAG, "service not started (background start refused)")
        EmmReporter.send(context, listOf(state("fotovakt.health.service_alive", KeyedAppState.SEVERITY_ERROR,
            "foreground start refused in the background; exempt the app from battery optimisation", System.currentTimeMillis().toString())))
    }

    private fun state(key: String, severity: Int, message: String, data: String): KeyedAppState =
        KeyedAppState.builder()
            .setKey(key.take(KeyedAppState.MAX_KEY_LENGTH))
            .setSeverity(severity)
            .setMessage(message.take(KeyedAppState.MAX_MESSAGE_LENGTH))
            .setData(data.take(KeyedAppState.MAX_DATA_LENGTH))
            .build()
}
