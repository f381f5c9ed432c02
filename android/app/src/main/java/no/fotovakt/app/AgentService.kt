package no.fotovakt.app

import android.app.Service
import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.content.IntentFilter
import android.database.ContentObserver
import android.os.Handler
import android.os.HandlerThread
import android.os.IBinder
import android.os.SystemClock
import android.provider.MediaStore
import android.util.Log
import no.fotovakt.core.Backlog
import no.fotovakt.core.ChangeBatcher

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
 *
 * The observer reacts on the leading edge ([ChangeBatcher]): the first change after a quiet
 * spell is handled at once, a burst's changes together within 250 ms at most, and only the rows
 * the notifications named ([MediaIntake.handleUris]) unless a notification named none.
 */
class AgentService : Service() {
    private var thread: HandlerThread? = null
    private var handler: Handler? = null
    private var foreground = false
    private var reconcileMinutes = 15

    private val batcher by lazy {
        val h = handler!!
        ChangeBatcher(
            { SystemClock.uptimeMillis() },
            object : ChangeBatcher.Scheduler {
                override fun schedule(task: Runnable, delayMs: Long) {
                    h.postDelayed(task, delayMs)
                }

                override fun cancel(task: Runnable) = h.removeCallbacks(task)
            },
        ) { batch -> safely("MediaStore batch") { intake(batch) } }
    }

    private val observer: ContentObserver by lazy {
        Platform.mediaObserver(handler!!) { uris, everything -> batcher.offer(uris, everything) }
    }

    private val restrictionsReceiver = object : BroadcastReceiver() {
        override fun onReceive(context: Context, intent: Intent) {
            Log.i(TAG, "managed configuration changed; reapplying")
            post { applyConfig() }
        }
    }

    private val scanRunnable = Runnable { safely("MediaStore pass") { retryAfter(MediaIntake.scanNew(this)) } }

    private val reconcileRunnable = object : Runnable {
        override fun run() {
            safely("reconcile") { tick() }
            handler?.postDelayed(this, reconcileMinutes * 60_000L)
        }
    }

    /**
     * The reconcile tick: the first-run backlog if access has come since (never a reconcile
     * before it: that would decide the pre-install camera roll as new photos), then reconcile
     * (its quarantines reach the officer through the core's outcome listener), purge, the
     * hand-off folder, and the health states.
     */
    private fun tick() {
        val starter = CoreHolder.starter(this)
        CoreHolder.get(this) ?: return Health.report(this)
        val backlog = starter.catchUp()
        if (backlog?.state == Backlog.State.DONE) {
            CoreHolder.call(this, "reconcile") { it.reconcile() }
        } else {
            Log.i(TAG, "reconcile waits for the first-run backlog: ${backlog?.state}")
        }
        // Retention: acknowledged exports past exported_days only (never unexported items).
        CoreHolder.call(this, "purge") { it.purge(false) }
        Handoff.sweep(this)
        Health.report(this)
    }

    private fun intake(batch: ChangeBatcher.Batch) {
        if (batch.everything) {
            retryAfter(MediaIntake.scanNew(this))
        } else {
            retryAfter(MediaIntake.handleUris(this, batch.uris))
        }
    }

    /** Another full pass after the backoff's delay: here, and as a job in case the process dies. */
    private fun retryAfter(r: MediaIntake.Result) {
        if (r.retryDelayMs < 0) return
        handler?.removeCallbacks(scanRunnable)
        handler?.postDelayed(scanRunnable, r.retryDelayMs)
        MediaJobService.scheduleRetry(this, r.retryDelayMs, -1)
    }

    override fun onCreate() {
        super.onCreate()
        foreground = try {
            Platform.startForeground(this, Notifications.ID_SERVICE, Notifications.service(this, getString(R.string.service_text)))
            true
        } catch (e: IllegalStateException) {
            // ForegroundServiceStartNotAllowedException (API 31+) is an IllegalStateException.
            if (!Platform.isForegroundStartRefused(e)) Log.e(TAG, "startForeground: ${Logs.of(e)}")
            Log.w(TAG, "foreground start not allowed now; the content job covers until the next allowed start")
            false
        } catch (e: SecurityException) {
            Log.e(TAG, "startForeground refused: ${Logs.of(e)}")
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
        post { batcher.offer(emptyList(), true) }
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
            // Model, core, backlog (once access is there), watcher: AgentStarter, as on every path.
            val core = CoreHolder.get(this)
            alive = core != null
            Handoff.sweep(this)
            Notifications.updateService(this, Health.problemLine(this))
            Health.report(this)
        }
        handler?.removeCallbacks(reconcileRunnable)
        handler?.post(reconcileRunnable)
    }

    private fun post(block: () -> Unit) {
        handler?.post(block)
    }

    /** Nothing thrown on the handler thread may reach the looper: it would kill the process. */
    private inline fun safely(what: String, block: () -> Unit) {
        try {
            block()
        } catch (e: RuntimeException) {
            Log.e(TAG, "$what failed: ${Logs.of(e)}")
        } catch (e: LinkageError) {
            Log.e(TAG, "$what failed: ${Logs.of(e)}")
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
            Log.e(TAG, "service start refused: ${Logs.of(e)}")
            false
        }
    }
}
