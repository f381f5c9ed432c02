package no.fotovakt.app

import android.content.Context
import android.os.Environment
import no.fotovakt.core.Access
import no.fotovakt.core.AgentStarter
import no.fotovakt.core.KeyValueStore
import no.fotovakt.core.ManagedSettings
import no.fotovakt.core.ModelInstaller
import no.fotovakt.core.NativeCore
import java.io.File

/** What [AgentStarter] needs of the phone: managed configuration, paths, grants, the APK's assets. */
class AndroidEnv(context: Context) : AgentStarter.Env {
    private val app = context.applicationContext

    override fun settings(): ManagedSettings = ManagedConfig.read(app)

    override fun filesDir(): File = app.filesDir

    override fun cacheDir(): String = app.cacheDir.absolutePath

    override fun nativeLibDir(): String = app.applicationInfo.nativeLibraryDir

    override fun sharedStorage(): String = sharedStorageRoot()

    override fun access(): Access = Platform.access(app)

    override fun assets(): ModelInstaller.Assets = ModelInstaller.Assets { name -> app.assets.open(name) }

    override fun appVersion(): Long = app.packageManager.getPackageInfo(app.packageName, 0).lastUpdateTime

    override fun installedAtMs(): Long = app.packageManager.getPackageInfo(app.packageName, 0).firstInstallTime

    override fun store(): KeyValueStore = Prefs.of(app)

    override fun ortDylib(): String = ManagedSettings.ORT_SONAME

    override fun nowMs(): Long = System.currentTimeMillis()

    override fun beforeStart() {
        // The Keystore device key signs packages and checkpoints; the core's key file if not.
        DeviceKey.install(app)
        NativeCore.setAutoTime(Health.autoTime(app))
    }

    companion object {
        @Suppress("DEPRECATION")
        fun sharedStorageRoot(): String = Environment.getExternalStorageDirectory().absolutePath
    }
}
