package no.fotovakt.app

import android.Manifest
import android.app.Activity
import android.app.ActivityManager
import android.app.ApplicationExitInfo
import android.app.ForegroundServiceStartNotAllowedException
import android.app.Notification
import android.app.Service
import android.content.BroadcastReceiver
import android.content.ContentResolver
import android.content.Context
import android.content.Intent
import android.content.IntentFilter
import android.content.pm.PackageManager
import android.content.pm.ServiceInfo
import android.database.ContentObserver
import android.hardware.biometrics.BiometricManager
import android.hardware.biometrics.BiometricPrompt
import android.net.Uri
import android.os.Build
import android.os.CancellationSignal
import android.os.Environment
import android.os.Handler
import android.provider.MediaStore
import android.provider.Settings
import no.fotovakt.core.Access

/**
 * Every platform call newer than minSdk 29, each behind its own `Build.VERSION.SDK_INT` check
 * with the API 29 behaviour beside it. This is the only source file compiled against the newest
 * API stubs; `scripts/check-android.sh` compiles every other source against an API 29 stub jar
 * (so a newer call anywhere else fails the build) and checks that each function here tests
 * `SDK_INT`. Android Lint's NewApi check does the same on a machine with the SDK.
 */
object Platform {
    /** MediaStore generation of `volume` (API 30+); null on Android 10, which has none. */
    fun generation(context: Context, volume: String): Long? =
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) MediaStore.getGeneration(context, volume) else null

    /** The column compared with [generation] (API 30+); `date_added` (seconds) on Android 10. */
    fun changeColumn(): String =
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) MediaStore.MediaColumns.GENERATION_MODIFIED
        else MediaStore.MediaColumns.DATE_ADDED

    /** startForeground with the specialUse type where the platform knows it (34+). */
    fun startForeground(service: Service, id: Int, notification: Notification) {
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.UPSIDE_DOWN_CAKE) {
            service.startForeground(id, notification, ServiceInfo.FOREGROUND_SERVICE_TYPE_SPECIAL_USE)
        } else {
            service.startForeground(id, notification)
        }
    }

    /** Is [e] the platform refusing a foreground-service start from the background (31+)? */
    fun isForegroundStartRefused(e: Throwable): Boolean =
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.S) e is ForegroundServiceStartNotAllowedException else false

    /** Show the service notification at once (31+; earlier versions always do). */
    fun immediate(builder: Notification.Builder): Notification.Builder =
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.S) builder.setForegroundServiceBehavior(Notification.FOREGROUND_SERVICE_IMMEDIATE)
        else builder

    /**
     * Access to other apps' camera files: all-files access (`MANAGE_EXTERNAL_STORAGE`, 30+); on
     * Android 10, which has no such thing, legacy storage (`requestLegacyExternalStorage`) with
     * `WRITE_EXTERNAL_STORAGE` granted. (This said `true` on Android 10 before, although the
     * permission was never requested.)
     */
    fun hasAllFilesAccess(context: Context): Boolean =
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
            Environment.isExternalStorageManager()
        } else {
            Environment.isExternalStorageLegacy() && granted(context, Manifest.permission.WRITE_EXTERNAL_STORAGE)
        }

    /** The media read grant: `READ_MEDIA_IMAGES` and `READ_MEDIA_VIDEO` (33+), `READ_EXTERNAL_STORAGE` before. */
    fun hasMediaRead(context: Context): Boolean =
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            granted(context, Manifest.permission.READ_MEDIA_IMAGES) && granted(context, Manifest.permission.READ_MEDIA_VIDEO)
        } else {
            granted(context, Manifest.permission.READ_EXTERNAL_STORAGE)
        }

    /** What the app may see of shared storage now. */
    fun access(context: Context): Access =
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.Q) {
            Access(hasAllFilesAccess(context), hasMediaRead(context), granted(context, Manifest.permission.ACCESS_MEDIA_LOCATION))
        } else {
            Access(false, false, false)
        }

    /**
     * The runtime permissions the in-app fallback asks for: `ACCESS_MEDIA_LOCATION` together
     * with the photos and videos permissions of its permission group (STORAGE on 29-32,
     * READ_MEDIA_VISUAL from 33; without them it lets the app read nothing, and the fallback
     * asked for it alone before), plus on Android 10 `WRITE_EXTERNAL_STORAGE` (there is no
     * all-files access there).
     */
    fun storagePermissions(): Array<String> =
        when {
            Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU -> arrayOf(
                Manifest.permission.READ_MEDIA_IMAGES, Manifest.permission.READ_MEDIA_VIDEO, Manifest.permission.ACCESS_MEDIA_LOCATION,
            )
            Build.VERSION.SDK_INT >= Build.VERSION_CODES.R -> arrayOf(
                Manifest.permission.READ_EXTERNAL_STORAGE, Manifest.permission.ACCESS_MEDIA_LOCATION,
            )
            else -> arrayOf(
                Manifest.permission.READ_EXTERNAL_STORAGE, Manifest.permission.WRITE_EXTERNAL_STORAGE,
                Manifest.permission.ACCESS_MEDIA_LOCATION,
            )
        }

    private fun granted(context: Context, permission: String): Boolean =
        Build.VERSION.SDK_INT >= Build.VERSION_CODES.M && context.checkSelfPermission(permission) == PackageManager.PERMISSION_GRANTED

    /**
     * The MediaStore observer. On 30+ it takes the item URIs `onChange(Boolean, Collection<Uri>,
     * Int)` hands it (MediaProvider notifies each inserted or updated row's URI) and ignores
     * deletes (rows of files that are gone, most of them moved by this app); a notification
     * without item URIs asks for a full pass. On 29 each `onChange(Boolean, Uri)` is one URI.
     */
    fun mediaObserver(handler: Handler, onChange: (List<String>, Boolean) -> Unit): ContentObserver =
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
            object : ContentObserver(handler) {
                override fun onChange(selfChange: Boolean, uris: Collection<Uri>, flags: Int) {
                    if (flags and ContentResolver.NOTIFY_DELETE != 0) return
                    val items = uris.filter { it.lastPathSegment?.toLongOrNull() != null }.map { it.toString() }
                    onChange(items, uris.isEmpty() || items.size < uris.size)
                }
            }
        } else {
            object : ContentObserver(handler) {
                override fun onChange(selfChange: Boolean, uri: Uri?) {
                    val item = uri?.takeIf { it.lastPathSegment?.toLongOrNull() != null }?.toString()
                    onChange(listOfNotNull(item), item == null)
                }
            }
        }

    /** Whether the process before this one ended because the user force-stopped the app (30+; false when unknown). */
    fun lastExitWasForceStop(context: Context): Boolean =
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
            val am = context.getSystemService(ActivityManager::class.java)
            am?.getHistoricalProcessExitReasons(context.packageName, 0, 1)?.firstOrNull()?.reason == ApplicationExitInfo.REASON_USER_REQUESTED
        } else {
            false
        }

    /** The settings screen that grants all-files access (30+), or null. */
    fun allFilesAccessIntent(context: Context): Intent? =
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
            Intent(Settings.ACTION_MANAGE_APP_ALL_FILES_ACCESS_PERMISSION, Uri.parse("package:${context.packageName}"))
        } else {
            null
        }

    /** Runtime notification permission (33+); before 13 notifications need no grant. */
    fun notificationPermissionMissing(context: Context): Boolean =
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            context.checkSelfPermission(Manifest.permission.POST_NOTIFICATIONS) != PackageManager.PERMISSION_GRANTED
        } else {
            false
        }

    fun requestNotificationPermission(activity: Activity, requestCode: Int) {
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            activity.requestPermissions(arrayOf(Manifest.permission.POST_NOTIFICATIONS), requestCode)
        }
    }

    /** A receiver for a protected system broadcast, not exported (flag required on 33+). */
    fun registerPrivateReceiver(context: Context, receiver: BroadcastReceiver, filter: IntentFilter) {
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            context.registerReceiver(receiver, filter, Context.RECEIVER_NOT_EXPORTED)
        } else {
            context.registerReceiver(receiver, filter)
        }
    }

    /** No screenshot of this activity in Recents (33+; FLAG_SECURE covers earlier versions). */
    fun hideFromRecentsScreenshot(activity: Activity) {
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) activity.setRecentsScreenshotEnabled(false)
    }

    /**
     * Asks for the device credential (PIN, pattern, password; a strong biometric where
     * enrolled) before an officer's release or acknowledgement. API 30+: allowed
     * authenticators; API 29: `setDeviceCredentialAllowed`.
     */
    @Suppress("DEPRECATION")
    fun confirmCredential(activity: Activity, title: String, subtitle: String, onResult: (Boolean, String?) -> Unit) {
        val builder = BiometricPrompt.Builder(activity).setTitle(title).setSubtitle(subtitle)
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
            builder.setAllowedAuthenticators(
                BiometricManager.Authenticators.BIOMETRIC_STRONG or BiometricManager.Authenticators.DEVICE_CREDENTIAL,
            )
        } else {
            builder.setDeviceCredentialAllowed(true)
        }
        builder.build().authenticate(
            CancellationSignal(), activity.mainExecutor,
            object : BiometricPrompt.AuthenticationCallback() {
                override fun onAuthenticationSucceeded(result: BiometricPrompt.AuthenticationResult) = onResult(true, null)
                override fun onAuthenticationError(errorCode: Int, errString: CharSequence) = onResult(false, errString.toString())
            },
        )
    }
}
