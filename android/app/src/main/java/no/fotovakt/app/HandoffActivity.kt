package no.fotovakt.app

import android.app.Activity
import android.os.Bundle
import android.view.WindowManager
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.TextView
import org.json.JSONObject
import java.util.concurrent.Executors

/**
 * Hand-off of a case: export writes the case package (zip with the originals, their SHA-256
 * and the custody log, signed with the device key; encrypted to the case system's age keys
 * when managed configuration names them in `handoff_recipients`, as `<case>.zip.age`, so only
 * the receiver can open it on the way) into the [Handoff] folder as the case's one package,
 * replacing an older one of the same case only once the new one is complete; acknowledge
 * records that the receiving case file got it (which starts the `exported_days` clock) and
 * removes the package from the folder. Both ask for the device credential and carry the
 * officer from managed configuration.
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
        val dir = Handoff.dir(this)
        val settings = ManagedConfig.read(this)
        val msg = CoreHolder.call(this, "export") {
            it.exportHandoff(case, dir.absolutePath, settings.officerId, settings.handoffRecipients)
        }?.let { getString(R.string.exported_to, JSONObject(it).optString("path"), it) } ?: getString(R.string.action_failed)
        // An older package of another state (acknowledged, of purged items) goes now too.
        Handoff.sweep(this)
        runOnUiThread { status.text = msg }
    }

    private fun ack(case: String) = worker.execute {
        val officer = ManagedConfig.read(this).officerId
        val msg = CoreHolder.call(this, "ack") { it.ack(case, officer) } ?: getString(R.string.action_failed)
        // Acknowledged: the package leaves the hand-off folder.
        Handoff.sweep(this)
        runOnUiThread { status.text = msg }
    }

    override fun onDestroy() {
        worker.shutdown()
        super.onDestroy()
    }
}
