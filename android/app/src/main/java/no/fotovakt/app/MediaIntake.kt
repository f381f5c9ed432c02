package no.fotovakt.app

import android.content.Context
import android.media.MediaScannerConnection
import android.net.Uri
import android.provider.MediaStore
import android.util.Log
import no.fotovakt.core.Access
import no.fotovakt.core.Backlog
import no.fotovakt.core.Backoff
import no.fotovakt.core.IntakeMarks
import no.fotovakt.core.ManagedSettings
import org.json.JSONObject
import java.io.File
import java.util.concurrent.atomic.AtomicBoolean

/**
 * Learns new photos and videos from MediaStore (the primary source: inotify on the FUSE-backed
 * /storage/emulated is unreliable on Android 11+) and hands each to the core.
 *
 * Two ways in, one per process (an `object`, shared by the service and the content job):
 * * [handleUris]: the rows the service's observer was told of (`onChange` item URIs, batched
 *   on the leading edge by `ChangeBatcher`): each row is queried by its URI and handed over at
 *   once, without re-reading the collection.
 * * [scanNew]: a full pass per volume (from `MediaStore.getExternalVolumeNames`: primary storage
 *   and each SD card): rows whose generation is above the volume's mark ([IntakeMarks]; on
 *   Android 10 `DATE_ADDED`, with 2 s of overlap). The content job, a notification without item
 *   URIs, and retries run it. Passes never overlap; a request during a pass makes it run again.
 *
 * Nothing is passed over while access is missing: without all-files access or the media read
 * grant the app sees only its own files, so neither way runs and no mark moves ([IntakeMarks]
 * also waits for the first-run backlog). The mark moves past a row only after the core took
 * it (any outcome but `retry`, no core error).
 *
 * Retries: a row the core answered `retry` (still being written, the store busy or full)
 * makes the caller schedule another pass after a bounded exponential backoff ([Backoff]: 2 s,
 * 4 s, … at most 5 min apart), on the service's handler and as a one-off job (which survives
 * the process); a pass that took everything resets it.
 *
 * Telling the officer: the core tells every outcome to the process's `QuarantineTeller`
 * (its `OutcomeListener`), which posts one quiet notification per item, whichever path
 * (this, reconcile, the backlog pass, the core's watcher) decided it first.
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
    private val backoff = Backoff()

    /** What a pass or a batch left to do: -1, or when to look again (ms). */
    class Result(val handed: Int, val retryDelayMs: Long)

    @Volatile
    var lastPassMs: Long = 0
        private set

    /** A full pass unless one is running (which then runs once more). */
    fun scanNew(context: Context): Result {
        again.set(true)
        var ran = false
        var n = 0
        var retries = 0
        // A request that comes in between the last check and the release of the flag runs too.
        while (again.get() && running.compareAndSet(false, true)) {
            ran = true
            try {
                while (again.getAndSet(false)) {
                    val (handed, retried) = pass(context.applicationContext)
                    n += handed
                    retries += retried
                }
            } finally {
                running.set(false)
            }
        }
        return if (ran) Result(n, after(retries)) else Result(0, -1)
    }

    /** The rows named by [uris] (MediaStore item URIs), each handed over at once. */
    fun handleUris(context: Context, uris: Collection<String>): Result {
        val app = context.applicationContext
        val access = Platform.access(app)
        if (!access.canSeeCameraFiles()) return Result(0, -1)
        val settings = ManagedConfig.read(app)
        val folders = cameraFolders(settings)
        var n = 0
        var retries = 0
        for (u in uris) {
            val row = queryOne(app, Uri.parse(u), settings) ?: continue
            if (File(row.path).absoluteFile.parent !in folders) continue
            n++
            if (!handle(app, row.path)) retries++
        }
        return Result(n, after(retries))
    }

    /** -1 when nothing needs another look, else the backoff's next delay. */
    private fun after(retries: Int): Long =
        if (retries > 0) backoff.failed() else { backoff.succeeded(); -1 }

    private fun cameraFolders(settings: ManagedSettings): Set<String> =
        settings.absoluteCameraFolders(AndroidEnv.sharedStorageRoot()).map { File(it).absolutePath }.toSet()

    /** (files handed over, files to retry). */
    private fun pass(context: Context): Pair<Int, Int> {
        val settings = ManagedConfig.read(context)
        val access = Platform.access(context)
        // Marks wait for the first-run backlog; run it now if access has come since (AgentStarter).
        val starter = CoreHolder.starter(context)
        if (starter.get() != null && !Backlog.done(Prefs.of(context))) starter.catchUp()
        val backlogDone = Backlog.done(Prefs.of(context))
        var n = 0
        var r = 0
        for (volume in MediaStore.getExternalVolumeNames(context)) {
            val (handed, retried) = passVolume(context, volume, settings, access, backlogDone)
            n += handed
            r += retried
        }
        lastPassMs = System.currentTimeMillis()
        return n to r
    }

    private fun passVolume(context: Context, volume: String, settings: ManagedSettings, access: Access, backlogDone: Boolean): Pair<Int, Int> {
        val prefs = Prefs.of(context)
        val version = MediaStore.getVersion(context, volume)
        val generation = Platform.generation(context, volume)
        // Android 10 has no generations: DATE_ADDED (seconds), re-read with 2 s of overlap
        // (the core answers a file it already decided with the same outcome).
        val now = generation ?: (System.currentTimeMillis() / 1000)
        val since = IntakeMarks.begin(prefs, volume, version, access, backlogDone)
        if (since < 0) return 0 to 0
        val column = Platform.changeColumn()
        val from = if (generation != null) since else maxOf(0, since - 2)
        val (selection, args) = scopeSelection("$column > ?", arrayListOf(from.toString()), settings)
        val rows = ArrayList<Row>()
        for (collection in collections(volume)) {
            context.contentResolver.query(collection, projection(), selection, args.toTypedArray(), null)?.use { c ->
                val data = c.getColumnIndexOrThrow(MediaStore.MediaColumns.DATA)
                val change = c.getColumnIndexOrThrow(column)
                while (c.moveToNext()) {
                    val path = c.getString(data) ?: continue
                    rows.add(Row(path, c.getLong(change)))
                }
            }
        }
        rows.sortBy { it.change }
        val folders = cameraFolders(settings)
        val accepted = BooleanArray(rows.size)
        var n = 0
        var retries = 0
        for ((i, row) in rows.withIndex()) {
            val inScope = File(row.path).absoluteFile.parent in folders
            accepted[i] = if (!inScope) true else { n++; handle(context, row.path) }
            if (!accepted[i]) retries++
        }
        val mark = IntakeMarks.advance(since, rows.map { it.change }.toLongArray(), accepted, now)
        IntakeMarks.store(prefs, volume, version, mark)
        return n to retries
    }

    /** The camera-folder and camera-package narrowing of a query (the parent check is the authority). */
    private fun scopeSelection(base: String, args: ArrayList<String>, settings: ManagedSettings): Pair<String, ArrayList<String>> {
        val relative = settings.cameraFolders.map { relativeOf(it) }
        val selection = StringBuilder(base)
        if (relative.all { it != null }) {
            selection.append(" AND ${MediaStore.MediaColumns.RELATIVE_PATH} IN (${relative.joinToString(",") { "?" }})")
            args.addAll(relative.filterNotNull())
        }
        if (settings.cameraPackages.isNotEmpty()) {
            selection.append(" AND ${MediaStore.MediaColumns.OWNER_PACKAGE_NAME} IN (${settings.cameraPackages.joinToString(",") { "?" }})")
            args.addAll(settings.cameraPackages)
        }
        return selection.toString() to args
    }

    /** One row by its item URI, if it is in scope and visible (a pending row is not: its update comes). */
    private fun queryOne(context: Context, uri: Uri, settings: ManagedSettings): Row? {
        val (selection, args) = scopeSelection("1", arrayListOf(), settings)
        return context.contentResolver.query(uri, projection(), selection, args.toTypedArray(), null)?.use { c ->
            if (!c.moveToFirst()) return@use null
            val path = c.getString(c.getColumnIndexOrThrow(MediaStore.MediaColumns.DATA)) ?: return@use null
            Row(path, c.getLong(c.getColumnIndexOrThrow(Platform.changeColumn())))
        }
    }

    /** "DCIM/Camera" -> "DCIM/Camera/"; "/storage/1234-5678/DCIM/Camera" -> "DCIM/Camera/"; null if unknown. */
    private fun relativeOf(folder: String): String? {
        if (!folder.startsWith("/")) return "$folder/"
        val m = Regex("^/storage/(?:emulated/\\d+|[^/]+)/(.+)$").find(folder) ?: return null
        return m.groupValues[1].trimEnd('/') + "/"
    }

    private data class Row(val path: String, val change: Long)

    private fun collections(volume: String): List<Uri> = listOf(
        MediaStore.Images.Media.getContentUri(volume),
        MediaStore.Video.Media.getContentUri(volume),
    )

    /**
     * One file: the core decides (and asks [PlatformFrames] for a frame of a video or HEIC
     * itself, after hashing; it tells the officer through its outcome listener). Returns
     * whether the core took it (the mark may move past it).
     */
    fun handle(context: Context, path: String): Boolean {
        val json = CoreHolder.call(context, "on_media") { it.onMedia(path) } ?: return false
        val kind = try {
            JSONObject(json).optString("kind")
        } catch (e: org.json.JSONException) {
            Log.e(TAG, "bad outcome JSON: ${Logs.of(e)}")
            return false
        }
        if (kind == "retry") return false
        // Gone from the camera folder (moved by this call or by the core's watcher): a scan of
        // the vanished path drops the stale row. A file still there keeps its row.
        if (!File(path).exists()) forgetRow(context, path)
        return true
    }

    /** Drops the MediaStore row of a file that no longer exists (the scanner checks that itself). */
    private fun forgetRow(context: Context, path: String) {
        MediaScannerConnection.scanFile(context, arrayOf(path), null, null)
    }

    private fun projection() = arrayOf(MediaStore.MediaColumns.DATA, Platform.changeColumn())
}
