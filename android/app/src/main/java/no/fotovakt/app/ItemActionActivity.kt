package no.fotovakt.app

import android.app.Activity
import android.app.AlertDialog
import android.os.Bundle
import android.text.InputType
import android.widget.EditText
import android.widget.Toast
import java.util.concurrent.Executors

/**
 * Dialog-only activity behind the notification actions: "Not case material" (release, with a
 * reason picker) and "Add case ID". Calls the same core functions as `fotovakt release` / `fotovakt tag`.
 */
class ItemActionActivity : Activity() {
    companion object {
        const val ACTION_RELEASE = "no.fotovakt.app.action.RELEASE"
        const val ACTION_TAG = "no.fotovakt.app.action.TAG"
        const val EXTRA_ITEM = "item"
        const val EXTRA_NAME = "name"
        private val worker = Executors.newSingleThreadExecutor()
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val item = intent.getStringExtra(EXTRA_ITEM)
        if (item == null) {
            finish()
            return
        }
        val name = intent.getStringExtra(EXTRA_NAME) ?: item
        when (intent.action) {
            ACTION_RELEASE -> askReason(item, name)
            ACTION_TAG -> askCaseId(item, name)
            else -> finish()
        }
    }

    private fun askReason(item: String, name: String) {
        val labels = resources.getStringArray(R.array.release_reason_labels)
        val codes = resources.getStringArray(R.array.release_reason_codes)
        AlertDialog.Builder(this)
            .setTitle(getString(R.string.release_title, name))
            .setItems(labels) { _, which -> run(item, getString(R.string.released)) { it.release(item, codes[which], null) } }
            .setNegativeButton(android.R.string.cancel) { _, _ -> finish() }
            .setOnCancelListener { finish() }
            .show()
    }

    private fun askCaseId(item: String, name: String) {
        val input = EditText(this).apply {
            inputType = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_FLAG_CAP_CHARACTERS
            hint = getString(R.string.case_id_hint)
        }
        AlertDialog.Builder(this)
            .setTitle(getString(R.string.tag_title, name))
            .setView(input)
            .setPositiveButton(android.R.string.ok) { _, _ ->
                val case = input.text.toString().trim()
                if (case.isEmpty()) finish() else run(item, getString(R.string.tagged, case)) { it.tag(item, case, null, null) }
            }
            .setNegativeButton(android.R.string.cancel) { _, _ -> finish() }
            .setOnCancelListener { finish() }
            .show()
    }

    private fun run(item: String, done: String, block: (no.fotovakt.core.NativeCore) -> String) {
        val app = applicationContext
        worker.execute {
            val ok = CoreHolder.call(app, "item action") { block(it) } != null
            if (ok) Notifications.cancel(app, item)
            runOnUiThread {
                Toast.makeText(app, if (ok) done else getString(R.string.action_failed), Toast.LENGTH_SHORT).show()
                finish()
            }
        }
    }
}
