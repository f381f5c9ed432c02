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
 * started from the background). It runs the same process-wide [MediaIntake] pass, on a core
 * opened the same way as everywhere else ([CoreHolder]: the model is installed and loaded
 * first, so its decisions, which are final, use the classifier).
 *
 * Content-trigger jobs are one-shot, so each run arranges the next. Scheduling a job with the
 * ID of a running job stops that job, so two IDs alternate: the running job schedules the
 * other one, and only if that one is not already pending. Nothing ever schedules the ID of a
 * job that may be running.
 *
 * Retries: when a pass leaves a file to look at again, a one-off retry job (two alternating
 * IDs as well) runs the pass after the bounded backoff [MediaIntake] computed, so a retry
 * happens even if the process dies meanwhile. It is scheduled after `jobFinished`.
 */
class MediaJobService : JobService() {
    override fun onStartJob(params: JobParameters): Boolean {
        val app = applicationContext
        val retryJob = params.jobId == RETRY_A || params.jobId == RETRY_B
        if (!retryJob) scheduleNext(app, params.jobId)
        executor.execute {
            var retryDelay = -1L
            try {
                val r = MediaIntake.scanNew(app)
                retryDelay = r.retryDelayMs
                Log.d(TAG, "job ${params.jobId}: ${params.triggeredContentUris?.size ?: 0} uri(s), ${r.handed} file(s)")
                // If the process had been killed, bring the service back where that is allowed.
                AgentService.start(app)
            } catch (e: RuntimeException) {
                Log.e(TAG, "job ${params.jobId}: ${Logs.of(e)}")
            } finally {
                jobFinished(params, false)
            }
            if (retryDelay >= 0) scheduleRetry(app, retryDelay, params.jobId)
        }
        return true
    }

    override fun onStopJob(params: JobParameters): Boolean = true

    companion object {
        private const val TAG = "fotovakt"
        const val JOB_A = 0x0F07
        const val JOB_B = 0x0F08
        const val RETRY_A = 0x0F09
        const val RETRY_B = 0x0F0A
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

        /**
         * A pass after [delayMs]. [runningId]: the job calling (its ID is never scheduled), or -1.
         * A retry job already pending (or running) covers it.
         */
        fun scheduleRetry(context: Context, delayMs: Long, runningId: Int) {
            val js = context.getSystemService(JobScheduler::class.java) ?: return
            val id = if (runningId == RETRY_A) RETRY_B else RETRY_A
            if (js.getPendingJob(RETRY_A) != null || js.getPendingJob(RETRY_B) != null) return
            if (js.getPendingJob(id) != null) return
            submit(context, js, id, delayMs)
        }

        /** Schedules job [id]: a content trigger, or with [retryDelayMs] >= 0 a one-off pass after that delay. */
        private fun submit(context: Context, js: JobScheduler, id: Int, retryDelayMs: Long = -1) {
            val builder = JobInfo.Builder(id, ComponentName(context, MediaJobService::class.java))
            val job = if (retryDelayMs >= 0) {
                builder.setMinimumLatency(retryDelayMs).build()
            } else {
                builder
                    .addTriggerContentUri(JobInfo.TriggerContentUri(MediaStore.Images.Media.EXTERNAL_CONTENT_URI, JobInfo.TriggerContentUri.FLAG_NOTIFY_FOR_DESCENDANTS))
                    .addTriggerContentUri(JobInfo.TriggerContentUri(MediaStore.Video.Media.EXTERNAL_CONTENT_URI, JobInfo.TriggerContentUri.FLAG_NOTIFY_FOR_DESCENDANTS))
                    .setTriggerContentUpdateDelay(100)
                    .setTriggerContentMaxDelay(2_000)
                    .build()
            }
            if (js.schedule(job) != JobScheduler.RESULT_SUCCESS) Log.w(TAG, "job $id not scheduled")
        }
    }
}
