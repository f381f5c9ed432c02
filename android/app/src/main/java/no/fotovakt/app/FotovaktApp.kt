package no.fotovakt.app

import android.app.Application

/**
 * Process entry: what every component needs before it runs, whatever started the process
 * (service, content job, boot receiver, activity): notification channels, the log policy
 * ([Logs]), and why the previous process ended (a force stop keeps the app off until it is
 * opened again: reported as `fotovakt.health.started`).
 */
class FotovaktApp : Application() {
    override fun onCreate() {
        super.onCreate()
        Logs.init(this)
        forceStoppedBefore = Platform.lastExitWasForceStop(this)
        Notifications.createChannels(this)
    }

    companion object {
        @Volatile
        var forceStoppedBefore = false
            private set
    }
}
