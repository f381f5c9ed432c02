package no.fotovakt.app

import android.graphics.Bitmap
import android.graphics.ImageDecoder
import android.media.MediaMetadataRetriever
import android.util.Log
import no.fotovakt.core.FrameSource
import java.io.ByteArrayOutputStream
import java.io.File
import java.io.IOException

/**
 * Frames of files the core cannot decode, decoded by the platform and handed to the core as
 * JPEG bytes in memory (nothing is written anywhere): HEIC/HEIF/AVIF photos through
 * [ImageDecoder] (scaled while decoding), videos through
 * [MediaMetadataRetriever.getScaledFrameAtTime] (a sync frame, scaled by the codec). The core
 * calls [frame] after it hashed the file and only when the classifier's score decides, from
 * whichever path found the file, so MediaStore, reconcile and the core's watcher all get the
 * same decision. Also used for in-app previews of such items, decoded from the store file.
 */
object PlatformFrames : FrameSource {
    private const val TAG = "fotovakt"
    /** The classifier takes 224 px; a 448 px short side leaves room for its centre crop. */
    private const val FRAME_SIDE = 640

    override fun frame(path: String, kind: String): ByteArray? = try {
        val bitmap = when (kind) {
            "heif" -> decodeImage(File(path), FRAME_SIDE)
            "video" -> videoFrame(path, FRAME_SIDE)
            else -> null
        }
        bitmap?.let { jpeg(it) }
    } catch (e: IOException) {
        // A release build names neither the file nor the decoder's message (it may hold the path).
        Log.w(TAG, "no $kind frame: ${Logs.of(e)}${Logs.detail(path)}")
        null
    } catch (e: RuntimeException) {
        Log.w(TAG, "no $kind frame: ${Logs.of(e)}${Logs.detail(path)}")
        null
    }

    /** A still image decoded by the platform, longest side at most [maxSide]. */
    fun decodeImage(file: File, maxSide: Int): Bitmap =
        ImageDecoder.decodeBitmap(ImageDecoder.createSource(file)) { decoder, info, _ ->
            val w = info.size.width
            val h = info.size.height
            val scale = maxSide.toDouble() / maxOf(w, h)
            if (scale < 1) decoder.setTargetSize(maxOf(1, (w * scale).toInt()), maxOf(1, (h * scale).toInt()))
            decoder.allocator = ImageDecoder.ALLOCATOR_SOFTWARE
        }

    /** A sync frame of a video, longest side at most [maxSide]. */
    fun videoFrame(path: String, maxSide: Int): Bitmap? {
        val mmr = MediaMetadataRetriever()
        return try {
            mmr.setDataSource(path)
            val w = mmr.extractMetadata(MediaMetadataRetriever.METADATA_KEY_VIDEO_WIDTH)?.toIntOrNull() ?: maxSide
            val h = mmr.extractMetadata(MediaMetadataRetriever.METADATA_KEY_VIDEO_HEIGHT)?.toIntOrNull() ?: maxSide
            val scale = minOf(1.0, maxSide.toDouble() / maxOf(w, h, 1))
            mmr.getScaledFrameAtTime(
                0, MediaMetadataRetriever.OPTION_CLOSEST_SYNC,
                maxOf(1, (w * scale).toInt()), maxOf(1, (h * scale).toInt()),
            )
        } finally {
            mmr.release()
        }
    }

    fun jpeg(bitmap: Bitmap): ByteArray =
        ByteArrayOutputStream().also { bitmap.compress(Bitmap.CompressFormat.JPEG, 90, it); bitmap.recycle() }.toByteArray()
}
