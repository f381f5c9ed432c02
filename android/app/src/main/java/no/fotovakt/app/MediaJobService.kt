package no.fotovakt.app

import android.app.job.JobInfo
import android.app.job.JobParameters
import android.app.job.JobScheduler
import android.app.job.JobService
import android.content.ComponentName
import android.content.Context
import android.provider.MediaStore
import android.util.Log
import java.util.concurrent.Executors

/**
 * Content-trigger job on the MediaStore image and video collections: a second MediaStore
 * source that also fires when the service's process was killed. Content-trigger jobs are
 * one-shot, so each run schedules the next.
 */
class MediaJobService : JobService() {
    override fun onStartJob(params: JobParameters): Boolean {
        executor.execute {
            try {
                val n = MediaIntake(applicationContext).scanNew()
                Log.d(TAG, "content-trigger job: ${params.triggeredContentUris?.size ?: 0} uri(s), $n file(s)")
            } finally {
                schedule(applicationContext)
                jobFinished(params, false)
            }
        }
        return true
    }

    override fun onStopJob(params: JobParameters): Boolean = true

    companion object {
        private const val TAG = "fotovakt"
        private const val JOB_ID = 0x0F07
        private val executor = Executors.newSingleThreadExecutor()

        fun schedule(context: Context) {
            val js = context.getSystemService(JobScheduler::class.java)
            val job = JobInfo.Builder(JOB_ID, ComponentName(context, MediaJobService::class.java))
                .addTriggerContentUri(JobInfo.TriggerContentUri(MediaStore.Images.Media.EXTERNAL_CONTENT_URI, JobInfo.TriggerContentUri.FLAG_NOTIFY_FOR_DESCENDANTS))
                .addTriggerContentUri(JobInfo.TriggerContentUri(MediaStore.Video.Media.EXTERNAL_CONTENT_URI, JobInfo.TriggerContentUri.FLAG_NOTIFY_FOR_DESCENDANTS))
                .setTriggerContentUpdateDelay(100)
                .setTriggerContentMaxDelay(2_000)
                .build()
            if (js.schedule(job) != JobScheduler.RESULT_SUCCESS) Log.w(TAG, "content-trigger job not scheduled")
        }
    }
}
