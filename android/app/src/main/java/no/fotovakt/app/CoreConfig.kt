package no.fotovakt.app

import android.content.Context
import android.os.Environment
import java.io.File

/**
 * Builds the core's config file (the same TOML schema the CLI reads, `src/config.rs`) from
 * managed configuration and the app's own paths: the `directories` crate finds nothing on
 * Android, so every path is handed over. The quarantine store is in app-private `filesDir`,
 * never on shared storage.
 */
object CoreConfig {
    fun toml(context: Context, mc: ManagedConfig): String {
        val shared = Environment.getExternalStorageDirectory().absolutePath
        val cameras = mc.cameraFolders.map { if (it.startsWith("/")) it else "$shared/$it" }
        val models = File(context.filesDir, "models")
        return buildString {
            appendLine("store = ${q(File(context.filesDir, "quarantine").absolutePath)}")
            appendLine("cameras = ${list(cameras)}")
            appendLine("reconcile_interval = ${q("${mc.reconcileMinutes}m")}")
            appendLine()
            appendLine("[policy]")
            mc.caseThreshold?.let { appendLine("threshold = $it") }
            appendLine()
            appendLine("[classifier]")
            // Bare soname: the dynamic linker finds it inside the APK (onnxruntime-android AAR).
            appendLine("ort_dylib = ${q("libonnxruntime.so")}")
            appendLine("model = ${q(File(models, "efficientnet_lite0.int8.onnx").absolutePath)}")
            appendLine("head = ${q(File(models, "case_head.json").absolutePath)}")
            appendLine()
            // Managed `retention_days`: how long a never-exported item may stay before the core
            // reports it overdue. Purging stays off for never-exported items (the core's default).
            appendLine("[retention]")
            appendLine("quarantined_days = ${mc.retentionDays}")
            for (shift in parseShifts(mc.dutySchedule)) {
                appendLine()
                appendLine("[[duty.shifts]]")
                appendLine("days = ${list(shift.days)}")
                appendLine("start = ${q(shift.start)}")
                appendLine("end = ${q(shift.end)}")
            }
            for (site in mc.workSites.mapNotNull(::parseSite)) {
                appendLine()
                appendLine("[[work_sites]]")
                appendLine("name = ${q(site.name)}")
                appendLine("lat = ${site.lat}")
                appendLine("lon = ${site.lon}")
                appendLine("radius_m = ${site.radiusM}")
            }
        }
    }

    data class Shift(val days: List<String>, val start: String, val end: String)
    data class Site(val name: String, val lat: Double, val lon: Double, val radiusM: Double)

    private val DAYS = listOf("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    private val TIME = Regex("""^\d{1,2}:\d{2}$""")

    /** "mon-fri 07:00-15:30; sat 08:00-14:00" → shifts. Malformed parts are skipped (the core validates times). */
    fun parseShifts(schedule: String): List<Shift> = schedule.split(';').mapNotNull { part ->
        val words = part.trim().lowercase().split(Regex("\\s+"))
        if (words.size != 2) return@mapNotNull null
        val days = words[0].split(',').flatMap { d ->
            val range = d.split('-').map { DAYS.indexOf(it.take(3)) }
            when {
                range.any { it < 0 } -> emptyList()
                range.size == 1 -> listOf(DAYS[range[0]])
                range.size == 2 && range[0] <= range[1] -> DAYS.subList(range[0], range[1] + 1)
                else -> emptyList()
            }
        }
        val times = words[1].split('-')
        if (days.isEmpty() || times.size != 2 || !times.all { TIME.matches(it) }) null else Shift(days.distinct(), times[0], times[1])
    }

    /** "name;lat;lon;radius_m" → site. */
    fun parseSite(line: String): Site? {
        val f = line.split(';').map { it.trim() }
        if (f.size != 4 || f[0].isEmpty()) return null
        val lat = f[1].toDoubleOrNull() ?: return null
        val lon = f[2].toDoubleOrNull() ?: return null
        val r = f[3].toDoubleOrNull() ?: return null
        return Site(f[0], lat, lon, r)
    }

    private fun q(s: String): String =
        "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n") + "\""

    private fun list(items: List<String>): String = items.joinToString(", ", "[", "]") { q(it) }
}
