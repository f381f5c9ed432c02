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
 * source that also fires when the service's process was killed (or the service may not be
 * started from the background). It runs the same process-wide [MediaIntake] pass.
 *
 * Content-trigger jobs are one-shot, so each run arranges the next. Scheduling a job with the
 * ID of a running job stops that job, so two IDs alternate: the running job schedules the
 * other one, and only if that one is not already pending. Nothing ever schedules the ID of a
 * job that may be running.
 */
class MediaJobService : JobService() {
    override fun onStartJob(params: JobParameters): Boolean {
        val app = applicationContext
        scheduleNext(app, params.jobId)
        executor.execute {
            try {
                val n = MediaIntake.scanNew(app)
                Log.d(TAG, "content-trigger job ${params.jobId}: ${params.triggeredContentUris?.size ?: 0} uri(s), $n file(s)")
                // If the process had been killed, bring the service back where that is allowed.
                AgentService.start(app)
            } catch (e: RuntimeException) {
                Log.e(TAG, "content-trigger job: ${e.message}")
            } finally {
                jobFinished(params, false)
            }
        }
        return true
    }

    override fun onStopJob(params: JobParameters): Boolean = true

    companion object {
        private const val TAG = "fotovakt"
        const val JOB_A = 0x0F07
        const val JOB_B = 0x0F08
        private val executor = Executors.newSingleThreadExecutor()

        /** From the service: schedule a trigger job unless one is pending or running. */
        fun ensureScheduled(context: Context) {
            val js = context.getSystemService(JobScheduler::class.java) ?: return
            if (js.getPendingJob(JOB_A) != null || js.getPendingJob(JOB_B) != null) return
            submit(context, js, JOB_A)
        }

        /** From a running job [runningId]: schedule the other ID, never its own. */
        private fun scheduleNext(context: Context, runningId: Int) {
            val js = context.getSystemService(JobScheduler::class.java) ?: return
            val next = if (runningId == JOB_A) JOB_B else JOB_A
            if (js.getPendingJob(next) != null) return
            submit(context, js, next)
        }

        private fun submit(context: Context, js: JobScheduler, id: Int) {
            val job = JobInfo.Builder(id, ComponentName(context, MediaJobService::class.java))
                .addTriggerContentUri(JobInfo.TriggerContentUri(MediaStore.Images.Media.EXTERNAL_CONTENT_URI, JobInfo.TriggerContentUri.FLAG_NOTIFY_FOR_DESCENDANTS))
                .addTriggerContentUri(JobInfo.TriggerContentUri(MediaStore.Video.Media.EXTERNAL_CONTENT_URI, JobInfo.TriggerContentUri.FLAG_NOTIFY_FOR_DESCENDANTS))
                .setTriggerContentUpdateDelay(100)
                .setTriggerContentMaxDelay(2_000)
                .build()
            if (js.schedule(job) != JobScheduler.RESULT_SUCCESS) Log.w(TAG, "content-trigger job $id not scheduled")
        }
    }
}
