package no.fotovakt.app

import android.content.Context
import android.os.Environment
import java.io.File

/**
 * Builds the core's config file (the same TOML the CLI reads) from managed configuration and
 * the app's own paths: the `directories` crate finds nothing on Android, so every path is
 * handed over. The quarantine store is in app-private `filesDir`, never on shared storage.
 */
object CoreConfig {
    fun toml(context: Context, mc: ManagedConfig): String {
        val shared = Environment.getExternalStorageDirectory().absolutePath
        val cameras = mc.cameraFolders.map { if (it.startsWith("/")) it else "$shared/$it" }
        val models = File(context.filesDir, "models")
        return buildString {
            appendLine("store = ${q(File(context.filesDir, "quarantine").absolutePath)}")
            appendLine("cameras = ${list(cameras)}")
            appendLine()
            appendLine("[classifier]")
            // Bare soname: the dynamic linker finds it inside the APK (onnxruntime-android AAR).
            appendLine("ort_dylib = ${q("libonnxruntime.so")}")
            appendLine("model = ${q(File(models, "efficientnet_lite0.int8.onnx").absolutePath)}")
            appendLine("head = ${q(File(models, "case_head.json").absolutePath)}")
            appendLine()
            appendLine("[policy]")
            appendLine("threshold = ${mc.caseThreshold}")
            appendLine("retention_days = ${mc.retentionDays}")
            appendLine()
            appendLine("[duty]")
            appendLine("schedule = ${q(mc.dutySchedule)}")
            appendLine("work_sites = ${list(mc.workSites)}")
        }
    }

    private fun q(s: String): String =
        "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n") + "\""

    private fun list(items: List<String>): String = items.joinToString(", ", "[", "]") { q(it) }
}
