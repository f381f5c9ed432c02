package no.fotovakt.app

import android.app.Service
import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.content.IntentFilter
import android.database.ContentObserver
import android.net.Uri
import android.os.Handler
import android.os.HandlerThread
import android.os.IBinder
import android.provider.MediaStore
import android.util.Log

/**
 * The always-on foreground service.
 *
 * Type `specialUse` (subtype declared in the manifest): `dataSync` is capped at 6 h per 24 h on
 * Android 15 and may not be started from BOOT_COMPLETED there; no other type describes "move
 * new camera files into an app-private store". See android/README.md.
 *
 * No crash loops: every start is guarded. When the platform refuses a foreground start (a
 * START_STICKY restart or a job in the background on Android 12+ without a battery-optimisation
 * exemption), the service stops itself and is not sticky; the content-trigger job keeps
 * handing new files to the core, and the next allowed start (boot, app update, the officer
 * opening the app, a job where the exemption allows it) brings the service back. Core and
 * model failures are caught ([CoreHolder]), shown in the notification and reported to the
 * EMM, never rethrown on the handler thread.
 *
 * Sources of new files, in order: MediaStore ContentObserver (here) and the content-trigger
 * job ([MediaJobService], survives a killed process); the core's own file watcher; a periodic
 * reconcile pass that walks the camera folders for anything both missed.
 */
class AgentService : Service() {
    private var thread: HandlerThread? = null
    private var handler: Handler? = null
    private var foreground = false
    private var reconcileMinutes = 15

    private val observer by lazy {
        object : ContentObserver(handler) {
            override fun onChange(selfChange: Boolean, uri: Uri?) = scheduleScan()
        }
    }

    private val restrictionsReceiver = object : BroadcastReceiver() {
        override fun onReceive(context: Context, intent: Intent) {
            Log.i(TAG, "managed configuration changed; reapplying")
            post { applyConfig() }
        }
    }

    private val scanRunnable = Runnable { safely("MediaStore pass") { MediaIntake.scanNew(this) } }

    private val reconcileRunnable = object : Runnable {
        override fun run() {
            safely("reconcile") {
                CoreHolder.call(this@AgentService, "reconcile") { it.reconcile() }?.let { Log.i(TAG, "reconcile: $it") }
                // Retention: acknowledged exports past exported_days only (never unexported items).
                CoreHolder.call(this@AgentService, "purge") { it.purge(false) }?.let { Log.i(TAG, "purge: $it") }
                Health.report(this@AgentService)
            }
            handler?.postDelayed(this, reconcileMinutes * 60_000L)
        }
    }

    override fun onCreate() {
        super.onCreate()
        foreground = try {
            Platform.startForeground(this, Notifications.ID_SERVICE, Notifications.service(this, getString(R.string.service_text)))
            true
        } catch (e: IllegalStateException) {
            // ForegroundServiceStartNotAllowedException (API 31+) is an IllegalStateException.
            if (!Platform.isForegroundStartRefused(e)) Log.e(TAG, "startForeground: ${e.message}")
            Log.w(TAG, "foreground start not allowed now; the content job covers until the next allowed start")
            false
        } catch (e: SecurityException) {
            Log.e(TAG, "startForeground refused: ${e.message}")
            false
        }
        if (!foreground) {
            Health.serviceRefused(this)
            stopSelf()
            return
        }
        val t = HandlerThread("fotovakt-intake").also { it.start() }
        thread = t
        handler = Handler(t.looper)
        for (uri in listOf(MediaStore.Images.Media.getContentUri(MediaStore.VOLUME_EXTERNAL), MediaStore.Video.Media.getContentUri(MediaStore.VOLUME_EXTERNAL))) {
            contentResolver.registerContentObserver(uri, true, observer)
        }
        // A protected system broadcast, delivered only to receivers registered at run time.
        Platform.registerPrivateReceiver(this, restrictionsReceiver, IntentFilter(Intent.ACTION_APPLICATION_RESTRICTIONS_CHANGED))
        MediaJobService.ensureScheduled(this)
        post { applyConfig() }
    }

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        if (!foreground) return START_NOT_STICKY
        scheduleScan()
        return START_STICKY
    }

    override fun onBind(intent: Intent?): IBinder? = null

    override fun onDestroy() {
        if (foreground) {
            contentResolver.unregisterContentObserver(observer)
            unregisterReceiver(restrictionsReceiver)
        }
        handler?.removeCallbacksAndMessages(null)
        handler?.post { CoreHolder.stop() }
        thread?.quitSafely()
        alive = false
        super.onDestroy()
    }

    /**
     * (Re)starts the core with the current managed configuration: model check, permissions,
     * first-run backlog, health, and the reconcile timer. Failures end up in [Health].
     */
    private fun applyConfig() {
        safely("apply config") {
            val settings = ManagedConfig.read(this)
            reconcileMinutes = settings.reconcileMinutes
            ModelAssets.install(this)
            val core = CoreHolder.get(this)
            alive = core != null
            if (core != null) Backlog.runOnce(this, core)
            Notifications.updateService(this, Health.problemLine(this))
            Health.report(this)
        }
        handler?.removeCallbacks(reconcileRunnable)
        handler?.post(reconcileRunnable)
    }

    /** Coalesces bursts of MediaStore notifications (a burst shot fires dozens). */
    private fun scheduleScan() {
        val h = handler ?: return
        h.removeCallbacks(scanRunnable)
        h.postDelayed(scanRunnable, 150)
    }

    private fun post(block: () -> Unit) {
        handler?.post(block)
    }

    /** Nothing thrown on the handler thread may reach the looper: it would kill the process. */
    private inline fun safely(what: String, block: () -> Unit) {
        try {
            block()
        } catch (e: RuntimeException) {
            Log.e(TAG, "$what failed: ${e.message}", e)
        } catch (e: LinkageError) {
            Log.e(TAG, "$what failed: ${e.message}", e)
        }
    }

    companion object {
        private const val TAG = "fotovakt"

        /** Whether this process has a service with a running agent (for the health states). */
        @Volatile
        var alive = false
            private set

        /**
         * Starts the service where the platform allows it; returns false (and logs) where it
         * does not. Never throws: callers are receivers, jobs and activities.
         */
        fun start(context: Context): Boolean = try {
            context.startForegroundService(Intent(context, AgentService::class.java))
            true
        } catch (e: IllegalStateException) {
            // ForegroundServiceStartNotAllowedException (31+) or a background-start refusal.
            Log.w(TAG, "service start not allowed now (${e.javaClass.simpleName}); content job covers")
            false
        } catch (e: SecurityException) {
            Log.e(TAG, "service start refused: ${e.message}")
            false
        }
    }
}
