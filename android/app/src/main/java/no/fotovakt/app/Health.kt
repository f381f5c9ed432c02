package no.fotovakt.app

import android.Manifest
import android.app.NotificationManager
import android.content.Context
import android.content.pm.PackageManager
import android.os.PowerManager
import android.util.Log
import androidx.enterprise.feedback.KeyedAppState
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
        val agency = CoreConfig.agencyHead
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
                else "classifier not loaded: ${model.error ?: agency?.error ?: core?.optString("model_error") ?: CoreHolder.lastError}"),
            Check("case_head", agency == null || (agency.ok() && loaded), agency?.path ?: "shipped",
                when {
                    agency == null -> "the head shipped in the app"
                    agency.ok() && loaded -> "agency head ${agency.path} (SHA-256 ${ManagedConfig.read(context).caseHeadSha256})"
                    else -> "agency head not in use: ${agency.error ?: core?.optString("model_error") ?: CoreHolder.lastError}"
                }),
            Check("service_alive", AgentService.alive && core != null, System.currentTimeMillis().toString(),
                if (core != null) "agent running" else "agent not running: ${CoreHolder.lastError ?: "service not started"}"),
            Check("last_intake", true, lastMs.toString(), "time of the last decision (ms since the epoch)"),
        )
    }

    /** One line for the service notification / screen: the first problem, or null. */
    fun problemLine(context: Context): String? {
        val bad = checks(context).firstOrNull { !it.ok } ?: return null
        return bad.message
    }

    fun report(context: Context) {
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
