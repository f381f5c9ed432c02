package no.fotovakt.core;

/**
 * The MediaStore pass's mark per volume (the highest generation, or on Android 10 the
 * {@code DATE_ADDED}, it has handed to the core), with the volume's {@code MediaStore.getVersion}:
 * a new version means the volume's generations were reset, and the mark starts over.
 *
 * <p>The mark never moves while it could skip something:
 * <ul>
 *   <li>no pass at all, and nothing stored, while the app cannot see other apps' camera files
 *       or the first-run backlog is not done (rows the app was not allowed to see are not
 *       passed over: the pass waits);</li>
 *   <li>at first sight of a volume, or after a version change, the mark starts at 0: every
 *       row in the camera folders is handed over once; what the backlog already recorded is
 *       answered from the ledger without being read again;</li>
 *   <li>after a pass, the mark moves past a row only if the core took it and every row
 *       before it ({@link #advance}).</li>
 * </ul>
 */
public final class IntakeMarks {
    private IntakeMarks() {
    }

    private static String markKey(String volume) {
        return "mark." + volume;
    }

    private static String versionKey(String volume) {
        return "version." + volume;
    }

    /**
     * Where a pass over {@code volume} starts (rows above the returned value), or -1: no pass
     * now. Stores nothing unless the volume is seen for the first time (or with a new version).
     */
    public static long begin(KeyValueStore store, String volume, String version, Access access, boolean backlogDone) {
        if (!access.canSeeCameraFiles() || !backlogDone) {
            return -1;
        }
        if (version.equals(store.getString(versionKey(volume), null)) && store.contains(markKey(volume))) {
            return store.getLong(markKey(volume), 0);
        }
        store.put(new KeyValueStore.Edit().putString(versionKey(volume), version).putLong(markKey(volume), 0));
        return 0;
    }

    /**
     * The mark after a pass that started at {@code since}: past every row up to the first one
     * the core did not take ({@code accepted[i]} false), in {@code changes} order (ascending);
     * to {@code now} (the volume's generation when the pass began) only if it took them all.
     */
    public static long advance(long since, long[] changes, boolean[] accepted, long now) {
        long mark = since;
        for (int i = 0; i < changes.length; i++) {
            if (!accepted[i]) {
                return mark;
            }
            mark = Math.max(mark, changes[i]);
        }
        return Math.max(mark, now);
    }

    public static void store(KeyValueStore store, String volume, String version, long mark) {
        store.put(new KeyValueStore.Edit().putString(versionKey(volume), version).putLong(markKey(volume), mark));
    }
}
