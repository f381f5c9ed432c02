package no.fotovakt.app

import android.Manifest
import android.content.Context
import android.content.pm.PackageManager
import android.os.Environment
import no.fotovakt.core.AgencyHead
import no.fotovakt.core.ManagedSettings

/**
 * The core's config file (the same TOML schema the CLI reads, `src/config.rs`), written by
 * [ManagedSettings.toToml] from managed configuration and the device's facts: app-private
 * paths (the `directories` crate finds nothing on Android), the verified model
 * ([ModelAssets]), and whether `ACCESS_MEDIA_LOCATION` is granted (`media_location_access`:
 * without it MediaProvider redacts GPS on read and the core moves nothing).
 *
 * With `case_head_file` in managed configuration the head is the agency's, installed by
 * [AgencyHead] only if its SHA-256 is the pinned one; otherwise the classifier is off (never
 * another head) and [agencyHead] says why, for [Health].
 */
object CoreConfig {
    /** The agency head as last installed: null when managed configuration names none. */
    @Volatile
    var agencyHead: AgencyHead.Result? = null
        private set

    fun mediaLocationGranted(context: Context): Boolean =
        context.checkSelfPermission(Manifest.permission.ACCESS_MEDIA_LOCATION) == PackageManager.PERMISSION_GRANTED

    fun toml(context: Context, settings: ManagedSettings): String {
        val model = ModelAssets.last
        val agency = settings.caseHeadFile?.let {
            AgencyHead.install(it, settings.caseHeadSha256, sharedStorage(), context.filesDir.absolutePath)
        }
        agencyHead = agency
        val head = if (agency != null) agency.path?.takeIf { agency.ok() } else model.head?.takeIf { model.ok }?.absolutePath
        val device = ManagedSettings.Device(
            context.filesDir.absolutePath,
            sharedStorage(),
            mediaLocationGranted(context),
            model.model?.takeIf { model.ok && head != null }?.absolutePath,
            head,
        )
        return settings.toToml(device)
    }

    @Suppress("DEPRECATION")
    fun sharedStorage(): String = Environment.getExternalStorageDirectory().absolutePath
}
