package no.fotovakt.app

import android.content.Context
import android.media.MediaScannerConnection
import android.net.Uri
import android.provider.MediaStore
import android.util.Log
import no.fotovakt.core.ManagedSettings
import org.json.JSONObject
import java.io.File
import java.util.concurrent.atomic.AtomicBoolean

/**
 * Learns new photos and videos from MediaStore (the primary source: inotify on the FUSE-backed
 * /storage/emulated is unreliable on Android 11+) and hands each to the core.
 *
 * One per process (an `object`): the service's ContentObserver and the content-trigger job
 * share it, and passes never overlap; a request that arrives during a pass makes that pass
 * run once more instead of starting a second one.
 *
 * Per volume (from `MediaStore.getExternalVolumeNames`: primary storage and each SD card):
 * the pass reads rows whose generation is above the volume's mark, and checks
 * `MediaStore.getVersion` first: a new version means the volume's generations were reset
 * (the database was rebuilt), so the mark starts over. The mark moves past a row only after
 * the core accepted it (any outcome but `retry`, and no core error); the first row it could
 * not take stops the mark there, and the next pass sees that row again.
 *
 * Scope: exactly what the core's `release` can put back: files directly in a configured
 * camera folder (MediaStore `RELATIVE_PATH`, then the file's parent compared with the core's
 * `cameras`), optionally only those owned by the configured camera packages. Screenshots,
 * downloads, messenger media and other folders are never handed over unless configured.
 *
 * MediaStore rows are never deleted by this app: after a move the file is gone and a media
 * scan of its path drops the stale row; if the core left the file in place (kept, retry, or a
 * newer version at the same path) the row stays. `ContentResolver.delete` would delete the
 * file itself.
 */
object MediaIntake {
    private const val TAG = "fotovakt"
    private val running = AtomicBoolean(false)
    private val again = AtomicBoolean(false)

    @Volatile
    var lastPassMs: Long = 0
        private set

    /** Runs a pass unless one is running (which then runs once more). Returns files handed to the core. */
    fun scanNew(context: Context): Int {
        again.set(true)
        if (!running.compareAndSet(false, true)) return 0
        var n = 0
        try {
            while (again.getAndSet(false)) n += pass(context.applicationContext)
        } finally {
            running.set(false)
        }
        // A request that came in between the last check and the release of the flag.
        if (again.get()) n += scanNew(context)
        return n
    }

    private fun pass(context: Context): Int {
        val settings = ManagedConfig.read(context)
        val folders = settings.absoluteCameraFolders(CoreConfig.sharedStorage()).map { File(it).absolutePath }.toSet()
        var n = 0
        for (volume in MediaStore.getExternalVolumeNames(context)) {
            n += passVolume(context, volume, settings, folders)
        }
        lastPassMs = System.currentTimeMillis()
        return n
    }

    private fun passVolume(context: Context, volume: String, settings: ManagedSettings, folders: Set<String>): Int {
        val prefs = context.getSharedPreferences("intake", Context.MODE_PRIVATE)
        val version = MediaStore.getVersion(context, volume)
        val generation = Platform.generation(context, volume)
        // Android 10 has no generations: DATE_ADDED (seconds), re-read with 2 s of overlap
        // (the core answers a file it already decided with the same outcome).
        val now = generation ?: (System.currentTimeMillis() / 1000)
        val markKey = "mark.$volume"
        val versionKey = "version.$volume"
        val since = if (prefs.getString(versionKey, null) == version) prefs.getLong(markKey, -1L) else -1L
        if (since < 0) {
            // First sight of this volume, or its generations were reset: what is there now is
            // the backlog (the core's first-run pass and reconcile decide it), not new photos.
            if (prefs.contains(versionKey)) Log.i(TAG, "MediaStore version of $volume changed; mark starts over")
            prefs.edit().putString(versionKey, version).putLong(markKey, now).apply()
            return 0
        }
        val column = Platform.changeColumn()
        val from = if (generation != null) since else since - 2
        // RELATIVE_PATH narrows the query; the parent-folder check below is the authority.
        val relative = settings.cameraFolders.map { relativeOf(it) }
        val selection = StringBuilder("$column > ?")
        val args = arrayListOf(from.toString())
        if (relative.all { it != null }) {
            selection.append(" AND ${MediaStore.MediaColumns.RELATIVE_PATH} IN (${relative.joinToString(",") { "?" }})")
            args.addAll(relative.filterNotNull())
        }
        if (settings.cameraPackages.isNotEmpty()) {
            selection.append(" AND ${MediaStore.MediaColumns.OWNER_PACKAGE_NAME} IN (${settings.cameraPackages.joinToString(",") { "?" }})")
            args.addAll(settings.cameraPackages)
        }
        val rows = ArrayList<Row>()
        for (collection in collections(volume)) {
            context.contentResolver.query(collection, PROJECTION, selection.toString(), args.toTypedArray(), null)?.use { c ->
                val data = c.getColumnIndexOrThrow(MediaStore.MediaColumns.DATA)
                val name = c.getColumnIndexOrThrow(MediaStore.MediaColumns.DISPLAY_NAME)
                val change = c.getColumnIndexOrThrow(column)
                while (c.moveToNext()) {
                    val path = c.getString(data) ?: continue
                    rows.add(Row(path, c.getString(name) ?: path.substringAfterLast('/'), c.getLong(change)))
                }
            }
        }
        rows.sortBy { it.change }
        var mark = since
        var blocked = false
        var n = 0
        for (row in rows) {
            val inScope = File(row.path).absoluteFile.parent in folders
            val accepted = if (!inScope) true else { n++; handle(context, row.path, row.displayName) }
            if (!accepted) blocked = true
            if (!blocked) mark = maxOf(mark, row.change)
        }
        if (!blocked) mark = maxOf(mark, now)
        prefs.edit().putString(versionKey, version).putLong(markKey, mark).apply()
        return n
    }

    /** "DCIM/Camera" -> "DCIM/Camera/"; "/storage/1234-5678/DCIM/Camera" -> "DCIM/Camera/"; null if unknown. */
    private fun relativeOf(folder: String): String? {
        if (!folder.startsWith("/")) return "$folder/"
        val m = Regex("^/storage/(?:emulated/\\d+|[^/]+)/(.+)$").find(folder) ?: return null
        return m.groupValues[1].trimEnd('/') + "/"
    }

    private data class Row(val path: String, val displayName: String, val change: Long)

    private fun collections(volume: String): List<Uri> = listOf(
        MediaStore.Images.Media.getContentUri(volume),
        MediaStore.Video.Media.getContentUri(volume),
    )

    /**
     * One file: the core decides (and asks [PlatformFrames] for a frame of a video or HEIC
     * itself, after hashing). Returns whether the core took it (the mark may move past it).
     */
    fun handle(context: Context, path: String, displayName: String): Boolean {
        val json = CoreHolder.call(context, "on_media $displayName") { it.onMedia(path) } ?: return false
        val outcome = Outcome.parse(json) ?: return false
        if (outcome.kind == "retry") return false
        // Gone from the camera folder (moved by this call or by the core's watcher): a scan of
        // the vanished path drops the stale row. A file still there keeps its row.
        if (!File(path).exists()) forgetRow(context, path)
        if (outcome.kind == "quarantined" && outcome.fresh) {
            Notifications.quarantined(context, QuarantinedItem(outcome.itemId ?: path, displayName, "", outcome.caseId, "quarantined"))
            Health.afterIntake(context)
        }
        return true
    }

    /** Drops the MediaStore row of a file that no longer exists (the scanner checks that itself). */
    private fun forgetRow(context: Context, path: String) {
        MediaScannerConnection.scanFile(context, arrayOf(path), null, null)
    }

    /** The part of the core's `Outcome` JSON (src/agent.rs) the app acts on. */
    data class Outcome(val kind: String, val itemId: String?, val caseId: String?, val fresh: Boolean) {
        companion object {
            fun parse(json: String): Outcome? = try {
                val o = JSONObject(json)
                Outcome(
                    kind = o.optString("kind"),
                    itemId = if (o.isNull("item")) null else o.optLong("item").toString(),
                    caseId = if (o.isNull("case_id")) null else o.optString("case_id"),
                    // "already decided" / "another handler": the officer was told the first time.
                    fresh = o.isNull("detail") || !o.optString("detail").startsWith("already"),
                )
            } catch (e: org.json.JSONException) {
                Log.e(TAG, "bad outcome JSON: ${e.message}")
                null
            }
        }
    }

    private val PROJECTION = arrayOf(
        MediaStore.MediaColumns.DATA,
        MediaStore.MediaColumns.DISPLAY_NAME,
        Platform.changeColumn(),
    )
}
