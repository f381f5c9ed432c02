package no.fotovakt.app

import android.app.Activity
import android.app.AlertDialog
import android.os.Bundle
import android.text.InputType
import android.view.WindowManager
import android.widget.EditText
import android.widget.Toast
import java.util.concurrent.Executors

/**
 * Dialog-only activity behind the notification actions: "Not case material" (release, with a
 * reason picker and the device credential) and "Add case ID". Calls the same core functions as
 * `fotovakt release` / `fotovakt tag`, with the officer from managed configuration.
 */
class ItemActionActivity : Activity() {
    companion object {
        const val ACTION_RELEASE = "no.fotovakt.app.action.RELEASE"
        const val ACTION_TAG = "no.fotovakt.app.action.TAG"
        const val EXTRA_ITEM = "item"
        const val EXTRA_NAME = "name"
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        window.addFlags(WindowManager.LayoutParams.FLAG_SECURE)
        val item = intent.getStringExtra(EXTRA_ITEM)
        if (item == null) {
            finish()
            return
        }
        val name = intent.getStringExtra(EXTRA_NAME) ?: item
        when (intent.action) {
            ACTION_RELEASE -> askReason(this, item, name) { finish() }
            ACTION_TAG -> askCaseId(this, item, name) { finish() }
            else -> finish()
        }
    }
}

/** Reason picker, then the device credential, then `release(item, reason, officer)`. */
fun askReason(activity: Activity, item: String, name: String, done: () -> Unit) {
    val labels = activity.resources.getStringArray(R.array.release_reason_labels)
    val codes = activity.resources.getStringArray(R.array.release_reason_codes)
    AlertDialog.Builder(activity)
        .setTitle(activity.getString(R.string.release_title, name))
        .setItems(labels) { _, which ->
            Officer.confirmThen(activity, activity.getString(R.string.release_title, name), done) {
                val officer = Officer.id(activity)
                runOnCore(activity, item, activity.getString(R.string.released), done) { it.release(item, codes[which], officer) }
            }
        }
        .setNegativeButton(android.R.string.cancel) { _, _ -> done() }
        .setOnCancelListener { done() }
        .show()
}

/** Case ID entry, then the device credential (as for a release), then `tag(item, case, officer)`. */
fun askCaseId(activity: Activity, item: String, name: String, done: () -> Unit) {
    val input = EditText(activity).apply {
        inputType = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_FLAG_CAP_CHARACTERS
        hint = activity.getString(R.string.case_id_hint)
    }
    AlertDialog.Builder(activity)
        .setTitle(activity.getString(R.string.tag_title, name))
        .setView(input)
        .setPositiveButton(android.R.string.ok) { _, _ ->
            val case = input.text.toString().trim()
            if (case.isEmpty()) {
                done()
            } else {
                Officer.confirmThen(activity, activity.getString(R.string.tag_title, name), done) {
                    val officer = Officer.id(activity)
                    runOnCore(activity, item, activity.getString(R.string.tagged, case), done) { it.tag(item, case, officer, null) }
                }
            }
        }
        .setNegativeButton(android.R.string.cancel) { _, _ -> done() }
        .setOnCancelListener { done() }
        .show()
}

private val itemWorker = Executors.newSingleThreadExecutor()

private fun runOnCore(activity: Activity, item: String, okText: String, done: () -> Unit, block: (no.fotovakt.core.NativeCore) -> String) {
    val app = activity.applicationContext
    itemWorker.execute {
        val ok = CoreHolder.call(app, "item action") { block(it) } != null
        if (ok) Notifications.cancel(app, item)
        activity.runOnUiThread {
            Toast.makeText(app, if (ok) okText else app.getString(R.string.action_failed), Toast.LENGTH_SHORT).show()
            done()
        }
    }
}
