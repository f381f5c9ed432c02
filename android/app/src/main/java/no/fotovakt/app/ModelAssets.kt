package no.fotovakt.app

import android.content.Context
import android.util.Log
import org.json.JSONObject
import java.io.File
import java.io.FileOutputStream
import java.io.IOException
import java.io.InputStream
import java.security.MessageDigest

/**
 * The classifier travels in the APK: Gradle's `modelAssets` task (app/build.gradle.kts) copies
 * `models/efficientnet_lite0.int8.onnx` and `models/case_head.json` into the assets and writes
 * `models/manifest.json` with their SHA-256, computed at build time from the very files it
 * packs. At the first start, and after every update, [install] copies them to
 * `filesDir/models/`; at every start it checks each installed file against the manifest.
 * Any mismatch (or a missing asset) is an error state: the classifier is not loaded, the app
 * says so in its notification, its screen and a keyed app state (ERROR). It never falls back
 * silently to an unverified or stale model.
 */
object ModelAssets {
    private const val TAG = "fotovakt"
    private const val DIR = "models"
    private const val MANIFEST = "$DIR/manifest.json"

    /** Result of [install]: the verified files, or why there are none. */
    data class State(val model: File?, val head: File?, val modelSha256: String?, val error: String?) {
        val ok: Boolean get() = error == null && model != null && head != null
    }

    @Volatile
    var last: State = State(null, null, null, "not checked yet")
        private set

    @Synchronized
    fun install(context: Context): State {
        val state = try {
            installOrThrow(context)
        } catch (e: IOException) {
            State(null, null, null, "model install failed: ${e.message}")
        } catch (e: org.json.JSONException) {
            State(null, null, null, "asset manifest unreadable: ${e.message}")
        }
        if (!state.ok) Log.e(TAG, "classifier model: ${state.error}")
        last = state
        return state
    }

    private fun installOrThrow(context: Context): State {
        val manifest = JSONObject(context.assets.open(MANIFEST).use { String(it.readBytes(), Charsets.UTF_8) })
        val modelName = manifest.getString("model")
        val headName = manifest.getString("head")
        val hashes = manifest.getJSONObject("sha256")
        val dir = File(context.filesDir, DIR).apply { mkdirs() }
        val version = context.packageManager.getPackageInfo(context.packageName, 0).lastUpdateTime
        val prefs = context.getSharedPreferences("models", Context.MODE_PRIVATE)
        val fresh = prefs.getLong("installed_for", -1L) != version
        for (name in listOf(modelName, headName)) {
            val want = hashes.getString(name)
            val target = File(dir, name)
            if (fresh || !target.isFile || sha256(target) != want) copyVerified(context, "$DIR/$name", target, want)
            val got = sha256(target)
            if (got != want) return State(null, null, null, "$name: SHA-256 $got, the build recorded $want")
        }
        prefs.edit().putLong("installed_for", version).apply()
        Log.i(TAG, "classifier model verified: $modelName ${hashes.getString(modelName)}")
        return State(File(dir, modelName), File(dir, headName), hashes.getString(modelName), null)
    }

    /** Copies an asset beside [target], checks its hash, then renames it into place. */
    private fun copyVerified(context: Context, asset: String, target: File, want: String) {
        val tmp = File(target.parentFile, target.name + ".tmp")
        context.assets.open(asset).use { input -> FileOutputStream(tmp).use { out -> input.copyTo(out); out.fd.sync() } }
        val got = sha256(tmp)
        if (got != want) {
            tmp.delete()
            throw IOException("$asset in the APK has SHA-256 $got, the build recorded $want")
        }
        if (!tmp.renameTo(target)) throw IOException("cannot move ${tmp.path} into place")
    }

    fun sha256(file: File): String = file.inputStream().use(::sha256)

    fun sha256(input: InputStream): String {
        val md = MessageDigest.getInstance("SHA-256")
        val buf = ByteArray(1 shl 16)
        while (true) {
            val n = input.read(buf)
            if (n < 0) break
            md.update(buf, 0, n)
        }
        return md.digest().joinToString("") { "%02x".format(it) }
    }
}
