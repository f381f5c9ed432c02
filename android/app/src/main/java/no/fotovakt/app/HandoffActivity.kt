package no.fotovakt.app

import android.app.Activity
import android.os.Bundle
import android.view.WindowManager
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.TextView
import java.io.File
import java.util.concurrent.Executors

/**
 * Hand-off of a case: export writes the case package (zip with the originals, their SHA-256
 * and the custody log, signed with the device key; encrypted to the case system's age keys
 * when managed configuration names them in `handoff_recipients`, as NAME.zip.age, so only the
 * receiver can open it on the way) to the app's own external files folder
 * (`Android/data/no.fotovakt.app/files/handoff`, not media-indexed, not readable by other apps
 * on Android 11+, reachable over USB at the agency's bench), and acknowledge records that the
 * receiving case file got it, which starts the `exported_days` clock. Both ask for the device
 * credential and carry the officer from managed configuration.
 */
class HandoffActivity : Activity() {
    private val worker = Executors.newSingleThreadExecutor()
    private lateinit var status: TextView

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        window.addFlags(WindowManager.LayoutParams.FLAG_SECURE)
        val case = EditText(this).apply { hint = getString(R.string.case_id_hint) }
        status = TextView(this).apply { setTextIsSelectable(true) }
        val export = Button(this).apply { text = getString(R.string.export_button) }
        val ack = Button(this).apply { text = getString(R.string.ack_button) }
        export.setOnClickListener {
            val id = case.text.toString().trim()
            if (id.isNotEmpty()) Officer.confirmThen(this, getString(R.string.export_button)) { export(id) }
        }
        ack.setOnClickListener {
            val id = case.text.toString().trim()
            if (id.isNotEmpty()) Officer.confirmThen(this, getString(R.string.ack_button)) { ack(id) }
        }
        setContentView(
            LinearLayout(this).apply {
                orientation = LinearLayout.VERTICAL
                setPadding(24, 24, 24, 24)
                addView(case)
                addView(export)
                addView(ack)
                addView(status)
            },
        )
    }

    private fun export(case: String) = worker.execute {
        val dir = getExternalFilesDir("handoff") ?: File(filesDir, "handoff")
        dir.mkdirs()
        File(dir, ".nomedia").createNewFile()
        val settings = ManagedConfig.read(this)
        val recipients = settings.handoffRecipients
        val out = File(dir, case.replace(Regex("[^A-Za-z0-9._-]"), "_") + if (recipients.isEmpty()) ".zip" else ".zip.age")
        val msg = CoreHolder.call(this, "export") { it.exportTo(case, out.absolutePath, settings.officerId, recipients) }
            ?.let { getString(R.string.exported_to, out.absolutePath, it) } ?: getString(R.string.action_failed)
        runOnUiThread { status.text = msg }
    }

    private fun ack(case: String) = worker.execute {
        val officer = ManagedConfig.read(this).officerId
        val msg = CoreHolder.call(this, "ack") { it.ack(case, officer) } ?: getString(R.string.action_failed)
        runOnUiThread { status.text = msg }
    }

    override fun onDestroy() {
        worker.shutdown()
        super.onDestroy()
    }
}
