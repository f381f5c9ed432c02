package no.fotovakt.app

import android.content.Context
import android.content.RestrictionsManager
import android.os.Bundle

/**
 * Managed configuration pushed by the EMM (keys declared in res/xml/app_restrictions.xml),
 * read through [RestrictionsManager]. Re-read whenever
 * `Intent.ACTION_APPLICATION_RESTRICTIONS_CHANGED` arrives (registered by [AgentService]).
 */
data class ManagedConfig(
    /** e.g. "Mon-Fri 07:00-19:00; Sat 08:00-14:00". Empty: always on duty. */
    val dutySchedule: String,
    /** Work sites as "name;lat;lon;radius_m" lines. */
    val workSites: List<String>,
    /** Classifier score at or above which a photo is quarantined (0..1); null: the model head's own. */
    val caseThreshold: Float?,
    /** Camera folders below shared storage, relative ("DCIM/Camera") or absolute. */
    val cameraFolders: List<String>,
    /** Days a quarantined item that was never exported may stay before it is reported overdue (`[retention] quarantined_days`). */
    val retentionDays: Int,
    /** Minutes between full reconcile passes. */
    val reconcileMinutes: Int,
    /** Send counts to the EMM as keyed app states. */
    val reportStats: Boolean,
) {
    companion object {
        val DEFAULT = ManagedConfig(
            dutySchedule = "",
            workSites = emptyList(),
            caseThreshold = null,
            cameraFolders = listOf("DCIM/Camera", "Pictures", "DCIM"),
            retentionDays = 90,
            reconcileMinutes = 15,
            reportStats = true,
        )

        fun read(context: Context): ManagedConfig {
            val rm = context.getSystemService(RestrictionsManager::class.java)
            return fromBundle(rm?.applicationRestrictions ?: Bundle())
        }

        fun fromBundle(b: Bundle): ManagedConfig {
            val d = DEFAULT
            return ManagedConfig(
                dutySchedule = b.getString("duty_schedule") ?: d.dutySchedule,
                workSites = lines(b.getString("work_sites")) ?: d.workSites,
                caseThreshold = b.getString("case_threshold")?.toFloatOrNull()?.coerceIn(0f, 1f) ?: d.caseThreshold,
                cameraFolders = lines(b.getString("camera_folders")) ?: d.cameraFolders,
                retentionDays = b.getInt("retention_days", d.retentionDays).coerceAtLeast(1),
                reconcileMinutes = b.getInt("reconcile_minutes", d.reconcileMinutes).coerceIn(5, 24 * 60),
                reportStats = b.getBoolean("report_stats", d.reportStats),
            )
        }

        private fun lines(s: String?): List<String>? =
            s?.split('\n', ',')?.map { it.trim() }?.filter { it.isNotEmpty() }?.takeIf { it.isNotEmpty() }
    }
}
