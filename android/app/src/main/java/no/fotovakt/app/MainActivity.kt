package no.fotovakt.app

import android.Manifest
import android.app.Activity
import android.content.Intent
import android.content.pm.PackageManager
import android.net.Uri
import android.os.Build
import android.os.Bundle
import android.os.Environment
import android.provider.Settings
import android.view.View
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.EditText
import android.widget.ListView
import android.widget.TextView
import org.json.JSONArray
import java.util.concurrent.Executors

/**
 * Officers' view: quarantined items of the last days (text only: no thumbnails, evidence
 * pixels are shown by nothing but the store), opening and closing a case session, and the
 * statistics JSON. Everything goes through the same core functions as the CLI.
 */
class MainActivity : Activity() {
    private val worker = Executors.newSingleThreadExecutor()
    private lateinit var status: TextView
    private lateinit var caseInput: EditText
    private lateinit var items: ArrayAdapter<String>
    private lateinit var stats: TextView
    private lateinit var grant: Button

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        status = findViewById(R.id.status)
        caseInput = findViewById(R.id.case_id)
        stats = findViewById(R.id.stats)
        grant = findViewById(R.id.grant_storage)
        items = ArrayAdapter(this, android.R.layout.simple_list_item_1, ArrayList())
        findViewById<ListView>(R.id.items).adapter = items
        findViewById<Button>(R.id.session_open).setOnClickListener { openSession() }
        findViewById<Button>(R.id.session_close).setOnClickListener { background { it.sessionStop(); getString(R.string.session_closed) } }
        grant.setOnClickListener {
            startActivity(Intent(Settings.ACTION_MANAGE_APP_ALL_FILES_ACCESS_PERMISSION, Uri.parse("package:$packageName")))
        }
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU &&
            checkSelfPermission(Manifest.permission.POST_NOTIFICATIONS) != PackageManager.PERMISSION_GRANTED
        ) {
            requestPermissions(arrayOf(Manifest.permission.POST_NOTIFICATIONS), 1)
        }
        AgentService.start(this)
    }

    override fun onResume() {
        super.onResume()
        val manager = Build.VERSION.SDK_INT < Build.VERSION_CODES.R || Environment.isExternalStorageManager()
        grant.visibility = if (manager) View.GONE else View.VISIBLE
        refresh()
    }

    override fun onDestroy() {
        worker.shutdown()
        super.onDestroy()
    }

    private fun openSession() {
        val case = caseInput.text.toString().trim()
        if (case.isEmpty()) {
            caseInput.error = getString(R.string.case_id_hint)
            return
        }
        background { it.sessionStart(case, SESSION_SECONDS); getString(R.string.session_open, case) }
    }

    private fun refresh() = background { core ->
        val list = JSONArray(core.listJson(DAYS))
        val lines = (0 until list.length()).map { i ->
            val o = list.getJSONObject(i)
            val case = if (o.isNull("case_id")) getString(R.string.no_case) else o.optString("case_id")
            val name = o.optString("original_path").substringAfterLast('/')
            val at = android.text.format.DateFormat.format("MM-dd HH:mm", o.optLong("decided_at_ms"))
            "#${o.optLong("id")}  $at  $name  [$case]  ${o.optString("state")}"
        }
        val json = core.statsJson()
        runOnUiThread {
            items.clear()
            items.addAll(lines)
            stats.text = json
        }
        getString(R.string.items_shown, lines.size, DAYS)
    }

    /** Runs [block] on the worker thread and shows its result (or the core's error) as status. */
    private fun background(block: (no.fotovakt.core.NativeCore) -> String) {
        worker.execute {
            val msg = CoreHolder.call(this, "ui") { block(it) } ?: getString(R.string.action_failed)
            runOnUiThread { status.text = msg }
        }
    }

    private companion object {
        const val DAYS = 7
        const val SESSION_SECONDS = 8L * 3600
    }
}
