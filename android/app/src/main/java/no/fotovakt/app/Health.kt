package no.fotovakt.app

import android.app.NotificationManager
import android.content.Context
import android.os.PowerManager
import android.provider.Settings
import android.util.Log
import no.fotovakt.core.AppStates
import no.fotovakt.core.Backlog
import no.fotovakt.core.NativeCore

/**
 * What an admin needs to know about this phone, as a fixed, small set of keyed app states
 * ([AppStates]: `fotovakt.health.<check>`, `fotovakt.config`, `fotovakt.stats…`), each with
 * structured data. Checked at every start and every reconcile tick; [problemLine] is what the
 * service notification and the app's screen show.
 *
 * "Waiting for access" is `fotovakt.health.access` (ERROR, data `waiting_for_access: true`).
 * "Never started since install" cannot be sent by the app (nothing of a stopped app runs):
 * the EMM shows no `fotovakt.health.*` state at all; see android/README.md.
 */
object Health {
    private const val TAG = "fotovakt"
    private const val FIRST_START = "health.first_start_ms"

    /** Read once per process: the previous process's exit reason does not change. */
    private val forceStoppedBefore: Boolean by lazy { FotovaktApp.forceStoppedBefore }

    fun facts(context: Context): AppStates.Facts {
        val app = context.applicationContext
        val pm = app.getSystemService(PowerManager::class.java)
        val nm = app.getSystemService(NotificationManager::class.java)
        val starter = CoreHolder.starter(app)
        val core = CoreHolder.call(app, "health") { it.healthJson() }
        val prefs = Prefs.of(app)
        val info = app.packageManager.getPackageInfo(app.packageName, 0)
        val now = System.currentTimeMillis()
        if (!prefs.contains(FIRST_START)) prefs.put(no.fotovakt.core.KeyValueStore.Edit().putLong(FIRST_START, now))
        return AppStates.Facts().apply {
            access = Platform.access(app)
            backlog = if (Backlog.done(prefs)) Backlog.State.DONE else starter.backlog()?.state ?: Backlog.State.WAITING_FOR_ACCESS
            notifications = nm?.areNotificationsEnabled() == true && !Platform.notificationPermissionMissing(app)
            batteryExempt = pm?.isIgnoringBatteryOptimizations(app.packageName) == true
            model = starter.model()
            agencyHead = starter.agencyHead()
            agencyHeadSha256 = ManagedConfig.read(app).caseHeadSha256
            coreHealth = core
            coreError = CoreHolder.lastError
            serviceAlive = AgentService.alive
            nowMs = now
            installedAtMs = info.firstInstallTime
            firstStartMs = prefs.getLong(FIRST_START, now)
            forceStoppedBefore = this@Health.forceStoppedBefore
            deviceKeyError = DeviceKey.lastError
            autoTime = autoTime(app)
        }
    }

    fun checks(context: Context): List<AppStates.State> = AppStates.health(facts(context))

    /** `Settings.Global.AUTO_TIME`: is the phone's time taken from the network? null: cannot tell. */
    fun autoTime(context: Context): Boolean? = try {
        Settings.Global.getInt(context.contentResolver, Settings.Global.AUTO_TIME) == 1
    } catch (e: Settings.SettingNotFoundException) {
        null
    }

    /** One line for the service notification / screen: the first problem, or null. */
    fun problemLine(context: Context): String? = checks(context).firstOrNull { !it.ok() }?.message

    fun report(context: Context) {
        // Every event recorded from now on says whether the clock was set by the network.
        try {
            NativeCore.setAutoTime(autoTime(context))
        } catch (e: LinkageError) {
            Log.w(TAG, "auto time not passed to the core: ${Logs.of(e)}")
        }
        val states = ArrayList(checks(context))
        val settings = ManagedConfig.read(context)
        states.add(AppStates.config(settings.problems))
        CoreHolder.call(context, "stats") { core ->
            CoreHolder.writeStats(context, core.statsJson())
            if (settings.reportStats) states.addAll(AppStates.stats(core.statsStates()))
        }
        EmmReporter.send(context, states)
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
        val f = facts(context)
        f.serviceAlive = false
        EmmReporter.send(context, AppStates.health(f).filter { it.key == "fotovakt.health.service_alive" })
    }
}
