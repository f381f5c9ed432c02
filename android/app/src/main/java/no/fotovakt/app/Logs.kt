package no.fotovakt.app

import android.content.Context
import android.content.pm.ApplicationInfo
import no.fotovakt.core.FotovaktException

/**
 * What the app's own log lines may say. logcat ends up in bug reports an EMM can collect, so
 * a release build (not debuggable) logs item numbers, counts and error codes, never a path,
 * a file name, a case ID or a core error's message (which may name either); a debuggable
 * build logs them too. The Rust core decides the same for its lines (src/android/logging.rs).
 */
object Logs {
    /** Whether this is a debuggable build (set once at process start by [FotovaktApp]). */
    @Volatile
    var verbose = false
        private set

    fun init(context: Context) {
        verbose = (context.applicationInfo.flags and ApplicationInfo.FLAG_DEBUGGABLE) != 0
    }

    /** [detail] in a debuggable build; in a release build nothing. */
    fun detail(detail: String?): String = if (verbose && detail != null) ": $detail" else ""

    /** A core error as a release build may log it: its code, plus its message when debuggable. */
    fun of(e: FotovaktException): String = "${e.code}${detail(e.message)}"

    /** Any other exception: its class, plus its message when debuggable. */
    fun of(e: Throwable): String = "${e.javaClass.simpleName}${detail(e.message)}"
}
