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
 */
object Notifications {
    const val CHANNEL_SERVICE = "service"
    const val CHANNEL_QUARANTINE = "quarantine"
    const val ID_SERVICE = 1

    fun createChannels(context: Context) {
        val nm = context.getSystemService(NotificationManager::class.java)
        nm.createNotificationChannel(
            NotificationChannel(CHANNEL_SERVICE, context.getString(R.string.channel_service), NotificationManager.IMPORTANCE_LOW).apply {
                description = context.getString(R.string.channel_service_desc)
                setShowBadge(false)
            },
        )
        nm.createNotificationChannel(
            NotificationChannel(CHANNEL_QUARANTINE, context.getString(R.string.channel_quarantine), NotificationManager.IMPORTANCE_HIGH).apply {
                description = context.getString(R.string.channel_quarantine_desc)
                lockscreenVisibility = Notification.VISIBILITY_PRIVATE
            },
        )
    }

    fun service(context: Context, text: String): Notification =
        Notification.Builder(context, CHANNEL_SERVICE)
            .setSmallIcon(R.drawable.ic_stat_fotovakt)
            .setContentTitle(context.getString(R.string.service_title))
            .setContentText(text)
            .setOngoing(true)
            .setCategory(Notification.CATEGORY_SERVICE)
            .setContentIntent(openMain(context))
            .setForegroundServiceBehavior(Notification.FOREGROUND_SERVICE_IMMEDIATE)
            .build()

    /** One notification per quarantined item, with "Not case material" and "Add case ID". */
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
            .setStyle(Notification.BigTextStyle().bigText(text))
            .setCategory(Notification.CATEGORY_STATUS)
            .setVisibility(Notification.VISIBILITY_PRIVATE)
            .setPublicVersion(publicVersion)
            .setContentIntent(openMain(context))
            .setAutoCancel(true)
            .addAction(release)
            .addAction(tag)
            .build()
        nm.notify(item.id, id, n)
    }

    fun cancel(context: Context, itemId: String) {
        context.getSystemService(NotificationManager::class.java).cancel(itemId, itemId.hashCode())
    }

    private fun openMain(context: Context): PendingIntent =
        PendingIntent.getActivity(
            context, 0, Intent(context, MainActivity::class.java),
            PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT,
        )

    private fun actionIntent(context: Context, id: Int, action: String, item: QuarantinedItem): PendingIntent {
        val intent = Intent(context, ItemActionActivity::class.java)
            .setAction(action)
            .putExtra(ItemActionActivity.EXTRA_ITEM, item.id)
            .putExtra(ItemActionActivity.EXTRA_NAME, item.displayName)
            .addFlags(Intent.FLAG_ACTIVITY_NEW_TASK or Intent.FLAG_ACTIVITY_MULTIPLE_TASK)
        // Explicit and immutable: nothing outside the app can redirect or fill it in.
        return PendingIntent.getActivity(context, id * 2 + if (action == ItemActionActivity.ACTION_TAG) 1 else 0,
            intent, PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT)
    }
}

/** What the UI needs of a quarantined item (parsed from the core's JSON; no image data). */
data class QuarantinedItem(val id: String, val displayName: String, val takenAt: String, val caseId: String?, val state: String)
