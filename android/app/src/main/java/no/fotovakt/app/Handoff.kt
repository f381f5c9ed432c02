package no.fotovakt.app

import android.content.Context
import android.util.Log
import org.json.JSONObject
import java.io.File

/**
 * The hand-off folder, `Android/data/no.fotovakt.app/files/handoff` (not media-indexed: it
 * holds a `.nomedia`; reachable over USB at the agency's bench). Shared storage, so a package
 * stays only while it is needed: the core replaces a case's older package when the case is
 * exported again, and [sweep] removes a package on `ack`, once an item of it was purged or
 * released, and when its retention ran out (src/android/handoff.rs). The service sweeps at
 * every start and every reconcile tick, and the hand-off screen after export and ack, so a
 * package also goes if the app died in between.
 */
object Handoff {
    private const val TAG = "fotovakt"

    fun dir(context: Context): File {
        val dir = context.getExternalFilesDir("handoff") ?: File(context.filesDir, "handoff")
        dir.mkdirs()
        File(dir, ".nomedia").createNewFile()
        return dir
    }

    /** Removes what is no longer needed; returns how many files went (-1 if the core is not running). */
    fun sweep(context: Context): Int {
        val json = CoreHolder.call(context, "hand-off sweep") { it.sweepHandoff(dir(context).absolutePath, System.currentTimeMillis()) }
            ?: return -1
        val removed = try {
            JSONObject(json).optJSONArray("removed")?.length() ?: 0
        } catch (e: org.json.JSONException) {
            0
        }
        if (removed > 0) Log.i(TAG, "hand-off folder: $removed package(s) removed")
        return removed
    }
}
