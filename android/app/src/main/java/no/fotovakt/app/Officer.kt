package no.fotovakt.app

import android.app.Activity
import android.app.KeyguardManager
import android.widget.Toast

/**
 * The officer behind an action: the identity from managed configuration (`officer_id`, on
 * every custody event the core records: release, tag, session, export, acknowledge) and the
 * device credential, asked before anything leaves the store or is signed off.
 */
object Officer {
    fun id(activity: Activity): String? = ManagedConfig.read(activity).officerId

    /**
     * Runs [action] after the officer confirmed the device credential; refuses on a phone
     * without one. Asked before everything that takes evidence out of the store or changes what
     * is protected: release, tag, opening and closing a case session, export, acknowledge.
     * [refused] runs when the officer cancels or there is no screen lock.
     */
    fun confirmThen(activity: Activity, title: String, refused: () -> Unit = {}, action: () -> Unit) {
        val km = activity.getSystemService(KeyguardManager::class.java)
        if (km?.isDeviceSecure != true) {
            Toast.makeText(activity, R.string.needs_lock_screen, Toast.LENGTH_LONG).show()
            refused()
            return
        }
        Platform.confirmCredential(activity, title, activity.getString(R.string.confirm_subtitle)) { ok, why ->
            if (ok) {
                action()
            } else {
                Toast.makeText(activity, why ?: activity.getString(R.string.action_failed), Toast.LENGTH_SHORT).show()
                refused()
            }
        }
    }
}
