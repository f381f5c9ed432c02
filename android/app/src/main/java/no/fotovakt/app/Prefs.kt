package no.fotovakt.app

import android.content.Context
import no.fotovakt.core.KeyValueStore

/**
 * The shell's little state ([KeyValueStore]) in one SharedPreferences file, written with
 * `commit()` (on disk before it returns: a backlog marked done or a mark moved must survive
 * a kill right after). Credential-encrypted app storage, excluded from backup.
 */
class Prefs private constructor(context: Context) : KeyValueStore {
    private val prefs = context.applicationContext.getSharedPreferences("fotovakt", Context.MODE_PRIVATE)

    override fun getString(key: String, dflt: String?): String? = prefs.getString(key, dflt)

    override fun getLong(key: String, dflt: Long): Long = prefs.getLong(key, dflt)

    override fun getBoolean(key: String, dflt: Boolean): Boolean = prefs.getBoolean(key, dflt)

    override fun contains(key: String): Boolean = prefs.contains(key)

    override fun put(edit: KeyValueStore.Edit) {
        val e = prefs.edit()
        for ((key, value) in edit.values()) {
            when (value) {
                null -> e.remove(key)
                is String -> e.putString(key, value)
                is Long -> e.putLong(key, value)
                is Boolean -> e.putBoolean(key, value)
            }
        }
        e.commit()
    }

    companion object {
        @Volatile
        private var instance: Prefs? = null

        fun of(context: Context): Prefs = instance ?: synchronized(this) { instance ?: Prefs(context).also { instance = it } }
    }
}
