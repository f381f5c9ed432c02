package no.fotovakt.app

import android.Manifest
import android.content.Context
import android.content.pm.PackageManager
import android.os.Environment
import no.fotovakt.core.ManagedSettings

/**
 * The core's config file (the same TOML schema the CLI reads, `src/config.rs`), written by
 * [ManagedSettings.toToml] from managed configuration and the device's facts: app-private
 * paths (the `directories` crate finds nothing on Android), the verified model
 * ([ModelAssets]), and whether `ACCESS_MEDIA_LOCATION` is granted (`media_location_access`:
 * without it MediaProvider redacts GPS on read and the core moves nothing).
 */
object CoreConfig {
    fun mediaLocationGranted(context: Context): Boolean =
        context.checkSelfPermission(Manifest.permission.ACCESS_MEDIA_LOCATION) == PackageManager.PERMISSION_GRANTED

    fun toml(context: Context, settings: ManagedSettings): String {
        val model = ModelAssets.last
        val device = ManagedSettings.Device(
            context.filesDir.absolutePath,
            sharedStorage(),
            mediaLocationGranted(context),
            model.model?.takeIf { model.ok }?.absolutePath,
            model.head?.takeIf { model.ok }?.absolutePath,
        )
        return settings.toToml(device)
    }

    @Suppress("DEPRECATION")
    fun sharedStorage(): String = Environment.getExternalStorageDirectory().absolutePath
}
