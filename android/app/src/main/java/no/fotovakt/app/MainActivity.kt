package no.fotovakt.app

import android.app.Activity
import android.content.Intent
import android.content.pm.PackageManager
import android.net.Uri
import android.os.Bundle
import android.os.PowerManager
import android.provider.Settings
import android.view.View
import android.view.WindowManager
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.EditText
import android.widget.ListView
import android.widget.TextView
import org.json.JSONArray
import java.util.concurrent.Executors

/**
 * Officers' view: quarantined items of the last days (text; tap one for the in-app preview in
 * [ReviewActivity]), opening and closing a case session, the hand-off screen, what is wrong
 * with this phone's setup (permissions, battery exemption, model), and the statistics JSON.
 * Everything goes through the same core functions as the CLI.
 */
class MainActivity : Activity() {
    private val worker = Executors.newSingleThreadExecutor()
    private lateinit var status: TextView
    private lateinit var health: TextView
    private lateinit var caseInput: EditText
    private lateinit var items: ArrayAdapter<String>
    private val itemIds = ArrayList<String>()
    private lateinit var stats: TextView
    private lateinit var grant: Button
    private lateinit var battery: Button

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        window.addFlags(WindowManager.LayoutParams.FLAG_SECURE)
        setContentView(R.layout.activity_main)
        status = findViewById(R.id.status)
        health = findViewById(R.id.health)
        caseInput = findViewById(R.id.case_id)
        stats = findViewById(R.id.stats)
        grant = findViewById(R.id.grant_storage)
        battery = findViewById(R.id.battery_exemption)
        items = ArrayAdapter(this, android.R.layout.simple_list_item_1, ArrayList())
        val list = findViewById<ListView>(R.id.items)
        list.adapter = items
        list.setOnItemClickListener { _, _, position, _ ->
            itemIds.getOrNull(position)?.let { startActivity(Intent(this, ReviewActivity::class.java).putExtra(ReviewActivity.EXTRA_ITEM, it)) }
        }
        findViewById<Button>(R.id.session_open).setOnClickListener { openSession() }
        // Closing a session turns its protection off: the device credential first, as for a release.
        findViewById<Button>(R.id.session_close).setOnClickListener {
            Officer.confirmThen(this, getString(R.string.session_close_button)) { background { it.sessionStop(); getString(R.string.session_closed) } }
        }
        findViewById<Button>(R.id.handoff).setOnClickListener { startActivity(Intent(this, HandoffActivity::class.java)) }
        findViewById<Button>(R.id.case_camera_photo).setOnClickListener { startActivity(Intent(this, CaseCameraActivity::class.java)) }
        findViewById<Button>(R.id.case_camera_video).setOnClickListener {
            startActivity(Intent(this, CaseCameraActivity::class.java).putExtra(CaseCameraActivity.EXTRA_VIDEO, true))
        }
        grant.setOnClickListener { Platform.allFilesAccessIntent(this)?.let { startActivity(it) } }
        battery.setOnClickListener {
            @Suppress("BatteryLife") // distributed through the EMM, not Play; the policy should grant it instead
            startActivity(Intent(Settings.ACTION_REQUEST_IGNORE_BATTERY_OPTIMIZATIONS, Uri.parse("package:$packageName")))
        }
        // The in-app fallback where the policy did not grant them: ACCESS_MEDIA_LOCATION with the
        // photos and videos permissions it belongs with (and WRITE_EXTERNAL_STORAGE on Android 10).
        val missing = Platform.storagePermissions().filter { checkSelfPermission(it) != PackageManager.PERMISSION_GRANTED }
        if (missing.isNotEmpty()) requestPermissions(missing.toTypedArray(), 2)
        if (Platform.notificationPermissionMissing(this)) Platform.requestNotificationPermission(this, 1)
        AgentService.start(this)
    }

    override fun onRequestPermissionsResult(requestCode: Int, permissions: Array<out String>, grantResults: IntArray) {
        // A new grant (e.g. ACCESS_MEDIA_LOCATION) changes the core's config: restart it.
        AgentService.start(this)
        refresh()
    }

    override fun onResume() {
        super.onResume()
        grant.visibility = if (Platform.hasAllFilesAccess(this) || Platform.allFilesAccessIntent(this) == null) View.GONE else View.VISIBLE
        val pm = getSystemService(PowerManager::class.java)
        battery.visibility = if (pm?.isIgnoringBatteryOptimizations(packageName) == true) View.GONE else View.VISIBLE
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
        val officer = ManagedConfig.read(this).officerId
        Officer.confirmThen(this, getString(R.string.session_open_button)) {
            background { it.sessionStart(case, officer, SESSION_SECONDS); getString(R.string.session_open, case) }
        }
    }

    private fun refresh() {
        worker.execute {
            val problem = Health.problemLine(this)
            runOnUiThread { health.text = problem ?: getString(R.string.health_ok) }
        }
        background { core ->
            val list = JSONArray(core.listJson(DAYS))
            val ids = ArrayList<String>()
            val lines = (0 until list.length()).map { i ->
                val o = list.getJSONObject(i)
                val case = if (o.isNull("case_id")) getString(R.string.no_case) else o.optString("case_id")
                val name = o.optString("original_path").substringAfterLast('/')
                val at = android.text.format.DateFormat.format("MM-dd HH:mm", o.optLong("decided_at_ms"))
                ids.add(o.optLong("id").toString())
                "#${o.optLong("id")}  $at  $name  [$case]  ${o.optString("state")}"
            }
            val json = core.statsJson()
            runOnUiThread {
                itemIds.clear()
                itemIds.addAll(ids)
                items.clear()
                items.addAll(lines)
                stats.text = json
            }
            getString(R.string.items_shown, lines.size, DAYS)
        }
    }

    /** Runs [block] on the worker thread and shows its result (or the core's error) as status. */
    private fun background(block: (no.fotovakt.core.NativeCore) -> String) {
        worker.execute {
            val msg = CoreHolder.call(this, "ui") { block(it) } ?: (CoreHolder.lastError ?: getString(R.string.action_failed))
            runOnUiThread { status.text = msg }
        }
    }

    private companion object {
        const val DAYS = 7
        const val SESSION_SECONDS = 8L * 3600
    }
}
