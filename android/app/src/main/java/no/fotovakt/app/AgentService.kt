package no.fotovakt.app

import android.app.Service
import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.content.IntentFilter
import android.content.pm.ServiceInfo
import android.database.ContentObserver
import android.net.Uri
import android.os.Build
import android.os.Handler
import android.os.HandlerThread
import android.os.IBinder
import android.util.Log

/**
 * The always-on foreground service.
 *
 * Type `specialUse` (subtype declared in the manifest): `dataSync` is capped at 6 h per 24 h on
 * Android 15 and may not be started from BOOT_COMPLETED there; no other type describes "move
 * new camera files into an app-private store". See android/README.md.
 *
 * Sources of new files, in order: MediaStore ContentObserver (here) and the content-trigger
 * job ([MediaJobService], survives a killed process); the core's own file watcher; a periodic
 * reconcile pass that walks the camera folders for anything both missed.
 */
class AgentService : Service() {
    private lateinit var thread: HandlerThread
    private lateinit var handler: Handler
    private lateinit var intake: MediaIntake
    private var config = ManagedConfig.DEFAULT

    private val observer by lazy {
        object : ContentObserver(handler) {
            override fun onChange(selfChange: Boolean, uris: Collection<Uri>, flags: Int) = scheduleScan()
            override fun onChange(selfChange: Boolean, uri: Uri?) = scheduleScan()
        }
    }

    private val restrictionsReceiver = object : BroadcastReceiver() {
        override fun onReceive(context: Context, intent: Intent) {
            Log.i(TAG, "managed configuration changed; reapplying")
            handler.post { applyConfig() }
        }
    }

    private val scanRunnable = Runnable {
        val n = intake.scanNew()
        if (n > 0) Log.d(TAG, "MediaStore pass: $n file(s)")
    }

    private val reconcileRunnable = object : Runnable {
        override fun run() {
            CoreHolder.call(this@AgentService, "reconcile") { it.reconcile() }?.let { Log.i(TAG, "reconcile: $it") }
            // Retention: only what the managed config allows (acknowledged exports past
            // exported_days; never-exported items only with purge_unexported).
            CoreHolder.call(this@AgentService, "purge") { it.purge(false) }?.let { Log.i(TAG, "purge: $it") }
            CoreHolder.call(this@AgentService, "stats") { it.statsJson() }?.let {
                CoreHolder.writeStats(this@AgentService, it)
                EmmReporter.report(this@AgentService, it)
            }
            handler.postDelayed(this, config.reconcileMinutes * 60_000L)
        }
    }

    override fun onCreate() {
        super.onCreate()
        val notification = Notifications.service(this, getString(R.string.service_text))
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.UPSIDE_DOWN_CAKE) {
            startForeground(Notifications.ID_SERVICE, notification, ServiceInfo.FOREGROUND_SERVICE_TYPE_SPECIAL_USE)
        } else {
            startForeground(Notifications.ID_SERVICE, notification)
        }
        thread = HandlerThread("fotovakt-intake").also { it.start() }
        handler = Handler(thread.looper)
        intake = MediaIntake(applicationContext)
        for (uri in intake.collections) contentResolver.registerContentObserver(uri, true, observer)
        // A protected system broadcast, delivered only to receivers registered at run time.
        registerReceiver(restrictionsReceiver, IntentFilter(Intent.ACTION_APPLICATION_RESTRICTIONS_CHANGED), RECEIVER_NOT_EXPORTED)
        MediaJobService.schedule(this)
        handler.post { applyConfig() }
    }

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        scheduleScan()
        return START_STICKY
    }

    override fun onBind(intent: Intent?): IBinder? = null

    override fun onDestroy() {
        contentResolver.unregisterContentObserver(observer)
        unregisterReceiver(restrictionsReceiver)
        handler.removeCallbacksAndMessages(null)
        handler.post { CoreHolder.stop() }
        thread.quitSafely()
        super.onDestroy()
    }

    /** (Re)starts the core with the current managed configuration and restarts the reconcile timer. */
    private fun applyConfig() {
        config = ManagedConfig.read(this)
        CoreHolder.get(this)
        handler.removeCallbacks(reconcileRunnable)
        handler.post(reconcileRunnable)
    }

    /** Coalesces bursts of MediaStore notifications (a burst shot fires dozens). */
    private fun scheduleScan() {
        handler.removeCallbacks(scanRunnable)
        handler.postDelayed(scanRunnable, 150)
    }

    companion object {
        private const val TAG = "fotovakt"

        fun start(context: Context) {
            context.startForegroundService(Intent(context, AgentService::class.java))
        }
    }
}
