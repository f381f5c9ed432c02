package no.fotovakt.app

import android.app.Activity
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.os.Bundle
import android.view.WindowManager
import android.widget.Button
import android.widget.ImageView
import android.widget.LinearLayout
import android.widget.TextView
import java.io.File
import java.util.concurrent.Executors

/**
 * The officer's review of one quarantined item before releasing or tagging it: a preview
 * decoded from the store inside this app. JPEG/PNG/WebP are decoded by the core
 * (`previewJpeg`, the classifier's decoders and limits); HEIC/AVIF and videos by the platform
 * from the app-private store file. No content URI is ever created, so no other app can read
 * it. The window is FLAG_SECURE (no screenshots, no screen recording, blank in Recents) and
 * the activity is excluded from Recents (manifest).
 */
class ReviewActivity : Activity() {
    companion object {
        const val EXTRA_ITEM = "item"
        private const val PREVIEW_SIDE = 1280
        private val worker = Executors.newSingleThreadExecutor()
    }

    private lateinit var image: ImageView
    private lateinit var caption: TextView

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        window.addFlags(WindowManager.LayoutParams.FLAG_SECURE)
        Platform.hideFromRecentsScreenshot(this)
        val item = intent.getStringExtra(EXTRA_ITEM) ?: return finish()
        image = ImageView(this).apply { adjustViewBounds = true }
        caption = TextView(this).apply { text = getString(R.string.loading_preview) }
        val release = Button(this).apply { text = getString(R.string.action_release) }
        val tag = Button(this).apply { text = getString(R.string.action_tag) }
        release.setOnClickListener { askReason(this, item, "#$item") { finish() } }
        tag.setOnClickListener { askCaseId(this, item, "#$item") { finish() } }
        setContentView(
            LinearLayout(this).apply {
                orientation = LinearLayout.VERTICAL
                setPadding(24, 24, 24, 24)
                addView(caption)
                addView(image, LinearLayout.LayoutParams(LinearLayout.LayoutParams.MATCH_PARENT, 0, 1f))
                addView(release)
                addView(tag)
            },
        )
        worker.execute { load(item) }
    }

    private fun load(item: String) {
        val bitmap: Bitmap? = CoreHolder.call(this, "preview") { core ->
            try {
                val jpeg = core.previewJpeg(item, PREVIEW_SIDE)
                BitmapFactory.decodeByteArray(jpeg, 0, jpeg.size)
            } catch (e: no.fotovakt.core.FotovaktException) {
                // Only a file the core cannot decode (HEIC, AVIF, video, too large) is decoded by the
                // platform here; an item that is gone or not in the store is an error like any other.
                if (e.code != no.fotovakt.core.FotovaktException.Code.PREVIEW_UNSUPPORTED) throw e
                val file = File(core.itemFile(item))
                PlatformFrames.videoFrame(file.path, PREVIEW_SIDE).takeIf { file.name.isVideoName() }
                    ?: PlatformFrames.decodeImage(file, PREVIEW_SIDE)
            }
        }
        runOnUiThread {
            if (bitmap != null) {
                image.setImageBitmap(bitmap)
                caption.text = getString(R.string.preview_of, item)
            } else {
                caption.text = getString(R.string.preview_failed)
            }
        }
    }

    private fun String.isVideoName(): Boolean =
        substringAfterLast('.', "").lowercase() in setOf("mp4", "m4v", "mov", "3gp", "3g2", "mkv", "webm")
}
