package no.fotovakt.app

import android.content.Context
import android.content.RestrictionsManager
import android.os.Bundle
import no.fotovakt.core.ManagedSettings

/**
 * Managed configuration pushed by the EMM (keys declared in res/xml/app_restrictions.xml),
 * read through [RestrictionsManager] and interpreted by [ManagedSettings] (plain Java, shared
 * with the host JVM harness, so what is tested there is what runs here). Re-read whenever
 * `Intent.ACTION_APPLICATION_RESTRICTIONS_CHANGED` arrives (registered by [AgentService]).
 * Bad values come back in [ManagedSettings.problems] and go to the EMM as keyed app-state errors.
 */
object ManagedConfig {
    fun read(context: Context): ManagedSettings {
        val rm = context.getSystemService(RestrictionsManager::class.java)
        return fromBundle(rm?.applicationRestrictions ?: Bundle())
    }

    /** Bundle -> map of what it holds (String, Int, Boolean), for [ManagedSettings.parse]. */
    fun fromBundle(b: Bundle): ManagedSettings {
        val values = HashMap<String, Any>()
        for (key in b.keySet()) {
            @Suppress("DEPRECATION")
            val v = b.get(key)
            if (v != null) values[key] = v
        }
        return ManagedSettings.parse(values)
    }
}
