package no.fotovakt.app

import android.content.ContentUris
import android.content.Context
import android.graphics.Bitmap
import android.media.MediaMetadataRetriever
import android.media.MediaScannerConnection
import android.net.Uri
import android.os.Build
import android.provider.MediaStore
import android.util.Log
import org.json.JSONObject
import java.io.ByteArrayOutputStream

/**
 * Learns new photos and videos from MediaStore (the primary source: inotify on the FUSE-backed
 * /storage/emulated is unreliable on Android 11+), hands each file to the core, and after a
 * quarantine removes the original's MediaStore row so no gallery or backup app keeps a stale entry.
 *
 * Shared by the service's ContentObserver and the content-trigger job; calls are serialised.
 */
class MediaIntake(private val context: Context) {
    private val prefs = context.getSharedPreferences("intake", Context.MODE_PRIVATE)

    /** Images and videos on all external volumes (primary storage and SD cards). */
    val collections: List<Uri> = listOf(
        MediaStore.Images.Media.getContentUri(MediaStore.VOLUME_EXTERNAL),
        MediaStore.Video.Media.getContentUri(MediaStore.VOLUME_EXTERNAL),
    )

    /** Processes every row added or modified since the last pass. Returns how many files went to the core. */
    @Synchronized
    fun scanNew(): Int {
        val modern = Build.VERSION.SDK_INT >= Build.VERSION_CODES.R
        // API 30+: MediaStore generations are monotonic and survive clock changes.
        val mark = if (modern) MediaStore.getGeneration(context, MediaStore.VOLUME_EXTERNAL)
        else System.currentTimeMillis() / 1000
        val since = prefs.getLong(KEY_MARK, -1L)
        if (since < 0) {
            // First run: the core's reconcile pass handles whatever was there before install.
            prefs.edit().putLong(KEY_MARK, mark).apply()
            return 0
        }
        val column = if (modern) MediaStore.MediaColumns.GENERATION_MODIFIED else MediaStore.MediaColumns.DATE_ADDED
        val from = if (modern) since else since - 2
        var n = 0
        for (collection in collections) {
            context.contentResolver.query(
                collection, PROJECTION, "$column > ?", arrayOf(from.toString()), "$column ASC",
            )?.use { c ->
                val id = c.getColumnIndexOrThrow(MediaStore.MediaColumns._ID)
                val data = c.getColumnIndexOrThrow(MediaStore.MediaColumns.DATA)
                val name = c.getColumnIndexOrThrow(MediaStore.MediaColumns.DISPLAY_NAME)
                val mime = c.getColumnIndexOrThrow(MediaStore.MediaColumns.MIME_TYPE)
                while (c.moveToNext()) {
                    val path = c.getString(data) ?: continue
                    val uri = ContentUris.withAppendedId(collection, c.getLong(id))
                    handle(uri, path, c.getString(name) ?: path.substringAfterLast('/'), c.getString(mime) ?: "")
                    n++
                }
            }
        }
        prefs.edit().putLong(KEY_MARK, mark).apply()
        return n
    }

    /** One file: the core decides; on quarantine the MediaStore row goes and the officer is told. */
    fun handle(uri: Uri, path: String, displayName: String, mime: String) {
        val keyframe = if (mime.startsWith("video/")) keyframe(path) else null
        val json = CoreHolder.call(context, "on_media $displayName") {
            if (keyframe != null) it.onVideo(path, keyframe) else it.onMedia(path)
        } ?: return
        val outcome = Outcome.parse(json) ?: return
        if (!outcome.quarantined) {
            // Already moved by the core's own watcher: only the stale MediaStore row is left.
            if (!java.io.File(path).exists()) removeMediaRow(uri, path)
            return
        }
        removeMediaRow(uri, path)
        Notifications.quarantined(context, QuarantinedItem(outcome.itemId ?: path, displayName, "", outcome.caseId, "quarantined"))
        CoreHolder.call(context, "stats") { it.statsJson() }?.let { stats ->
            CoreHolder.writeStats(context, stats)
            EmmReporter.report(context, stats)
        }
    }

    /**
     * A video's keyframe, decoded here (MediaMetadataRetriever uses the platform codecs) and
     * handed to the core as JPEG bytes in memory: nothing is written outside the app.
     */
    private fun keyframe(path: String): ByteArray? {
        val mmr = MediaMetadataRetriever()
        return try {
            mmr.setDataSource(path)
            val frame = mmr.getFrameAtTime(0, MediaMetadataRetriever.OPTION_CLOSEST_SYNC) ?: return null
            ByteArrayOutputStream().also { frame.compress(Bitmap.CompressFormat.JPEG, 90, it); frame.recycle() }.toByteArray()
        } catch (e: RuntimeException) {
            Log.w(TAG, "no keyframe for $path: ${e.message}")
            null
        } finally {
            mmr.release()
        }
    }

    private fun removeMediaRow(uri: Uri, path: String) {
        try {
            // With all-files access the app may delete other apps' rows without a consent dialog.
            if (context.contentResolver.delete(uri, null, null) > 0) return
        } catch (e: SecurityException) {
            Log.w(TAG, "cannot delete $uri (${e.message}); rescanning instead")
        }
        // The file is gone (moved into the store): a scan of its path drops the stale row.
        MediaScannerConnection.scanFile(context, arrayOf(path), null, null)
    }

    /** The part of the core's `Outcome` JSON (src/agent.rs) the app acts on. */
    data class Outcome(val quarantined: Boolean, val itemId: String?, val caseId: String?) {
        companion object {
            fun parse(json: String): Outcome? = try {
                val o = JSONObject(json)
                Outcome(
                    quarantined = o.optString("kind") == "quarantined",
                    itemId = if (o.isNull("item")) null else o.optLong("item").toString(),
                    caseId = if (o.isNull("case_id")) null else o.optString("case_id"),
                )
            } catch (e: org.json.JSONException) {
                Log.e(TAG, "bad outcome JSON: ${e.message}")
                null
            }
        }
    }

    companion object {
        private const val TAG = "fotovakt"
        private const val KEY_MARK = "mark"
        private val PROJECTION = arrayOf(
            MediaStore.MediaColumns._ID,
            MediaStore.MediaColumns.DATA,
            MediaStore.MediaColumns.DISPLAY_NAME,
            MediaStore.MediaColumns.MIME_TYPE,
        )
    }
}
