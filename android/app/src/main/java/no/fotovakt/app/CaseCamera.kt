package no.fotovakt.app

import android.app.Activity
import android.content.ActivityNotFoundException
import android.content.ClipData
import android.content.ContentProvider
import android.content.ContentValues
import android.content.Context
import android.content.Intent
import android.database.Cursor
import android.media.MediaScannerConnection
import android.net.Uri
import android.os.Bundle
import android.os.ParcelFileDescriptor
import android.provider.MediaStore
import android.util.Log
import android.widget.Toast
import no.fotovakt.core.ReturnListener
import org.json.JSONObject
import java.io.File
import java.io.FileNotFoundException
import java.util.UUID
import java.util.concurrent.Executors

/**
 * The case camera: during a case session the officer takes evidence photos and videos with the
 * phone's own camera app, and they never land in shared storage. The camera app is asked
 * (`ACTION_IMAGE_CAPTURE` / `ACTION_VIDEO_CAPTURE`) to write to `EXTRA_OUTPUT`, a URI of this
 * app's [CaptureProvider], whose `openFile` hands it a write descriptor on a file in app-private
 * storage; the grant is for that one URI, to the camera apps that can answer. When the camera
 * app returns, the core imports the file into the session's case ([NativeCore.importCapture]):
 * hashed on arrival, recorded with the camera package that wrote it (the provider's caller) and
 * when, moved into the store (a rename: both are on `/data`) and verified like any other item.
 * A camera app that also saves a copy to the gallery: the core's guard catches that copy in the
 * camera folder like any photo, and quarantines it into the same case, linked by its SHA-256.
 * Platform API only.
 */
object Captures {
    private const val TAG = "fotovakt"
    const val AUTHORITY = "no.fotovakt.app.capture"

    fun dir(context: Context): File = File(context.filesDir, "capture").apply { mkdirs() }

    /**
     * A new capture: its URI for `EXTRA_OUTPUT`, backed by an empty file in app storage named by
     * an unguessable token. On disk, not in memory: the app's process may be killed while the
     * camera app runs.
     */
    fun issue(context: Context, video: Boolean): Pair<String, Uri> {
        val token = UUID.randomUUID().toString()
        File(dir(context), token + if (video) ".mp4" else ".jpg").createNewFile()
        val kind = if (video) "video" else "photo"
        return token to Uri.parse("content://$AUTHORITY/$kind/$token")
    }

    /** The file of an issued capture, if `token` is one (a UUID, never a path). */
    fun file(context: Context, token: String): File? {
        if (!token.matches(Regex("[0-9a-f-]{36}"))) return null
        return listOf(".jpg", ".mp4").map { File(dir(context), token + it) }.firstOrNull { it.isFile }
    }

    /** Which package opened the capture for writing, and when (kept beside it). */
    fun wrote(context: Context, token: String, pkg: String?) {
        File(dir(context), "$token.writer").writeText("${pkg ?: "unknown"}\n${System.currentTimeMillis()}\n")
    }

    /** Import what an earlier capture left (the app was killed, or no session was open then). */
    fun importLeftovers(context: Context) {
        val tokens = dir(context).listFiles { f -> f.name.endsWith(".writer") }.orEmpty().map { it.name.removeSuffix(".writer") }
        for (t in tokens) importCapture(context, t, null)
    }

    /**
     * Import a finished capture into the session's case; false (file kept in app storage, where
     * nothing syncs or indexes it, for the next try) when the core could not take it now.
     */
    fun importCapture(context: Context, token: String, fallbackPackage: String?): Boolean {
        val file = file(context, token) ?: return true
        val writer = File(dir(context), "$token.writer")
        if (file.length() == 0L) { // cancelled, or the camera app wrote nothing
            file.delete()
            writer.delete()
            return true
        }
        val lines = if (writer.isFile) writer.readLines() else emptyList()
        val pkg = lines.getOrNull(0) ?: fallbackPackage ?: "unknown"
        val at = lines.getOrNull(1)?.toLongOrNull() ?: file.lastModified()
        val json = CoreHolder.call(context, "case camera") { it.importCapture(file.absolutePath, null, pkg, at) } ?: return false
        Log.i(TAG, "case camera: item ${JSONObject(json).optLong("item")} from $pkg")
        writer.delete()
        return true
    }
}

/** Write-only files for the case camera; see [Captures]. Not exported: reached by URI grant only. */
class CaptureProvider : ContentProvider() {
    override fun onCreate(): Boolean = true

    override fun openFile(uri: Uri, mode: String): ParcelFileDescriptor {
        val ctx = context ?: throw FileNotFoundException("provider not attached")
        val token = uri.lastPathSegment ?: throw FileNotFoundException("no capture in $uri")
        val file = Captures.file(ctx, token) ?: throw FileNotFoundException("no capture $token")
        if (!mode.contains('w')) throw FileNotFoundException("capture URIs are for writing")
        Captures.wrote(ctx, token, callingPackage)
        return ParcelFileDescriptor.open(file, ParcelFileDescriptor.parseMode(mode))
    }

    override fun getType(uri: Uri): String = if (uri.pathSegments.firstOrNull() == "video") "video/mp4" else "image/jpeg"

    override fun query(uri: Uri, projection: Array<out String>?, selection: String?, selectionArgs: Array<out String>?, sortOrder: String?): Cursor? = null

    override fun insert(uri: Uri, values: ContentValues?): Uri? = null

    override fun update(uri: Uri, values: ContentValues?, selection: String?, selectionArgs: Array<out String>?): Int = 0

    override fun delete(uri: Uri, selection: String?, selectionArgs: Array<out String>?): Int = 0
}

/**
 * "Take evidence photo" / "Take evidence video": starts the camera app on a [CaptureProvider]
 * URI during a case session and imports what it wrote. Refuses (and says so) without a session.
 */
class CaseCameraActivity : Activity() {
    private val worker = Executors.newSingleThreadExecutor()
    private var token: String? = null
    private var output: Uri? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        token = savedInstanceState?.getString(STATE_TOKEN)
        output = savedInstanceState?.getString(STATE_URI)?.let { Uri.parse(it) }
        if (token != null) return // recreated while the camera app ran: wait for its result
        worker.execute {
            val open = CoreHolder.call(this, "session") { JSONObject(it.statsJson()).optBoolean("session_open") } == true
            if (open) Captures.importLeftovers(this)
            runOnUiThread { if (open) launch() else finishWith(getString(R.string.case_camera_no_session)) }
        }
    }

    private fun launch() {
        val video = intent.getBooleanExtra(EXTRA_VIDEO, false)
        val (t, uri) = Captures.issue(this, video)
        val action = if (video) MediaStore.ACTION_VIDEO_CAPTURE else MediaStore.ACTION_IMAGE_CAPTURE
        val ask = Intent(action).putExtra(MediaStore.EXTRA_OUTPUT, uri)
            .addFlags(Intent.FLAG_GRANT_WRITE_URI_PERMISSION or Intent.FLAG_GRANT_READ_URI_PERMISSION)
        // The intent's grant flags and ClipData give the camera app that answers (whichever the
        // officer picks) write access to this one URI; which package wrote it the provider sees.
        ask.clipData = ClipData.newRawUri("", uri)
        token = t
        output = uri
        try {
            startActivityForResult(ask, REQUEST)
        } catch (e: ActivityNotFoundException) {
            finishWith(getString(R.string.case_camera_none))
        }
    }

    override fun onSaveInstanceState(outState: Bundle) {
        super.onSaveInstanceState(outState)
        outState.putString(STATE_TOKEN, token)
        outState.putString(STATE_URI, output?.toString())
    }

    override fun onActivityResult(requestCode: Int, resultCode: Int, data: Intent?) {
        val t = token ?: return finish()
        output?.let { revokeUriPermission(it, Intent.FLAG_GRANT_WRITE_URI_PERMISSION or Intent.FLAG_GRANT_READ_URI_PERMISSION) }
        worker.execute {
            val done = Captures.importCapture(this, t, null)
            val msg = getString(if (done) R.string.case_camera_done else R.string.case_camera_kept)
            runOnUiThread { finishWith(msg) }
        }
    }

    private fun finishWith(message: String) {
        Toast.makeText(this, message, Toast.LENGTH_LONG).show()
        finish()
    }

    override fun onDestroy() {
        worker.shutdown()
        super.onDestroy()
    }

    companion object {
        const val EXTRA_VIDEO = "no.fotovakt.app.extra.VIDEO"
        private const val REQUEST = 41
        private const val STATE_TOKEN = "token"
        private const val STATE_URI = "uri"
    }
}

/**
 * Asks MediaStore to scan each file the core put back in a camera folder after judging it out
 * of sight (see `ReturnListener`): MediaProvider keeps the row through the renames but leaves
 * it pending until a scan, so without one the officer's personal photo would vanish from
 * galleries and backup until the next idle scan.
 */
class ReturnScanner(private val app: Context) : ReturnListener {
    override fun returned(path: String) {
        try {
            MediaScannerConnection.scanFile(app, arrayOf(path), null, null)
        } catch (e: RuntimeException) {
            Log.w("fotovakt", "scan after a return failed: ${e.javaClass.simpleName}")
        }
    }
}
