package no.fotovakt.app

import android.app.Application

/** Process entry: notification channels exist before any service or activity posts. */
class FotovaktApp : Application() {
    override fun onCreate() {
        super.onCreate()
        Notifications.createChannels(this)
    }
}
