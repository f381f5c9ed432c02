package no.fotovakt.app

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.content.Context
import android.content.Intent

/**
 * Channels and notifications. No thumbnail, large icon or picture style is ever attached:
 * evidence pixels must not leave the app (notifications are mirrored to watches, cars and
 * notification-listener apps).
 *
 * Quarantine notifications are quiet: a low-importance channel (no sound, no heads-up over
 * the viewfinder), alert-once, and grouped under one summary, so a burst of photos at a scene
 * is one line in the shade. On the lock screen they show no content: private visibility, with
 * a public version that is the title alone (no file name, no case ID). The earlier
 * high-importance channel is deleted on upgrade (a channel's importance cannot be lowered
 * once created).
 *
 * Every quarantine reaches the officer through [quarantined], whichever path decided it (the
 * MediaStore pass, the content job, reconcile, the backlog pass, the core's own watcher), once
 * per item (`QuarantineTeller`).
 */
object Notifications {
    const val CHANNEL_SERVICE = "service"
    const val CHANNEL_QUARANTINE = "quarantine_quiet"
    const val CHANNEL_HEALTH = "health"
    private const val OLD_CHANNEL_QUARANTINE = "quarantine"
    private const val GROUP = "no.fotovakt.app.QUARANTINED"
    const val ID_SERVICE = 1
    private const val ID_SUMMARY = 2

    fun createChannels(context: Context) {
        val nm = context.getSystemService(NotificationManager::class.java)
        nm.deleteNotificationChannel(OLD_CHANNEL_QUARANTINE)
        nm.createNotificationChannel(
            NotificationChannel(CHANNEL_SERVICE, context.getString(R.string.channel_service), NotificationManager.IMPORTANCE_LOW).apply {
                description = context.getString(R.string.channel_service_desc)
                setShowBadge(false)
            },
        )
        nm.createNotificationChannel(
            NotificationChannel(CHANNEL_QUARANTINE, context.getString(R.string.channel_quarantine), NotificationManager.IMPORTANCE_LOW).apply {
                description = context.getString(R.string.channel_quarantine_desc)
                lockscreenVisibility = Notification.VISIBILITY_PRIVATE
                setSound(null, null)
                enableVibration(false)
            },
        )
        nm.createNotificationChannel(
            NotificationChannel(CHANNEL_HEALTH, context.getString(R.string.channel_health), NotificationManager.IMPORTANCE_DEFAULT).apply {
                description = context.getString(R.string.channel_health_desc)
                lockscreenVisibility = Notification.VISIBILITY_PRIVATE
            },
        )
    }

    fun service(context: Context, text: String): Notification =
        Platform.immediate(
            Notification.Builder(context, CHANNEL_SERVICE)
                .setSmallIcon(R.drawable.ic_stat_fotovakt)
                .setContentTitle(context.getString(R.string.service_title))
                .setContentText(text)
                .setStyle(Notification.BigTextStyle().bigText(text))
                .setOngoing(true)
                .setCategory(Notification.CATEGORY_SERVICE)
                .setContentIntent(openMain(context)),
        ).build()

    /** The service notification shows the first health problem (or the normal text). */
    fun updateService(context: Context, problem: String?) {
        val text = problem?.let { context.getString(R.string.service_problem, it) } ?: context.getString(R.string.service_text)
        context.getSystemService(NotificationManager::class.java).notify(ID_SERVICE, service(context, text))
    }

    /** One quiet, grouped notification per quarantined item, with "Not case material" and "Add case ID". */
    fun quarantined(context: Context, item: QuarantinedItem) {
        val nm = context.getSystemService(NotificationManager::class.java)
        if (!nm.areNotificationsEnabled()) return
        val id = item.id.hashCode()
        val text = context.getString(R.string.quarantined_text, item.displayName)
        val publicVersion = Notification.Builder(context, CHANNEL_QUARANTINE)
            .setSmallIcon(R.drawable.ic_stat_fotovakt)
            .setContentTitle(context.getString(R.string.quarantined_title))
            .build()
        val release = Notification.Action.Builder(
            null, context.getString(R.string.action_release),
            actionIntent(context, id, ItemActionActivity.ACTION_RELEASE, item),
        ).build()
        val tag = Notification.Action.Builder(
            null, context.getString(R.string.action_tag),
            actionIntent(context, id, ItemActionActivity.ACTION_TAG, item),
        ).build()
        val n = Notification.Builder(context, CHANNEL_QUARANTINE)
            .setSmallIcon(R.drawable.ic_stat_fotovakt)
            .setContentTitle(context.getString(R.string.quarantined_title))
            .setContentText(text)
            .setCategory(Notification.CATEGORY_STATUS)
            .setVisibility(Notification.VISIBILITY_PRIVATE)
            .setPublicVersion(publicVersion)
            .setGroup(GROUP)
            .setGroupAlertBehavior(Notification.GROUP_ALERT_SUMMARY)
            .setOnlyAlertOnce(true)
            .setContentIntent(reviewIntent(context, id, item))
            .setAutoCancel(true)
            .addAction(release)
            .addAction(tag)
            .build()
        nm.notify(item.id, id, n)
        val summary = Notification.Builder(context, CHANNEL_QUARANTINE)
            .setSmallIcon(R.drawable.ic_stat_fotovakt)
            .setContentTitle(context.getString(R.string.quarantined_summary))
            .setVisibility(Notification.VISIBILITY_PRIVATE)
            .setPublicVersion(publicVersion)
            .setGroup(GROUP)
            .setGroupSummary(true)
            .setOnlyAlertOnce(true)
            .setContentIntent(openMain(context))
            .setAutoCancel(true)
            .build()
        nm.notify(ID_SUMMARY, summary)
    }

    fun cancel(context: Context, itemId: String) {
        context.getSystemService(NotificationManager::class.java).cancel(itemId, itemId.hashCode())
    }

    private fun openMain(context: Context): PendingIntent =
        PendingIntent.getActivity(
            context, 0, Intent(context, MainActivity::class.java),
            PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT,
        )

    private fun reviewIntent(context: Context, id: Int, item: QuarantinedItem): PendingIntent =
        PendingIntent.getActivity(
            context, id * 4 + 2,
            Intent(context, ReviewActivity::class.java).putExtra(ReviewActivity.EXTRA_ITEM, item.id),
            PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT,
        )

    private fun actionIntent(context: Context, id: Int, action: String, item: QuarantinedItem): PendingIntent {
        val intent = Intent(context, ItemActionActivity::class.java)
            .setAction(action)
            .putExtra(ItemActionActivity.EXTRA_ITEM, item.id)
            .putExtra(ItemActionActivity.EXTRA_NAME, item.displayName)
            .addFlags(Intent.FLAG_ACTIVITY_NEW_TASK or Intent.FLAG_ACTIVITY_MULTIPLE_TASK)
        // Explicit and immutable: nothing outside the app can redirect or fill it in.
        return PendingIntent.getActivity(context, id * 4 + if (action == ItemActionActivity.ACTION_TAG) 1 else 0,
            intent, PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT)
    }
}

/** What the UI needs of a quarantined item (parsed from the core's JSON; no image data). */
data class QuarantinedItem(val id: String, val displayName: String, val takenAt: String, val caseId: String?, val state: String)
