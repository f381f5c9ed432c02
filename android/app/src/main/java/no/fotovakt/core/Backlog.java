package no.fotovakt.core;

import java.io.File;
import java.util.ArrayList;
import java.util.List;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * The first-run backlog: photos that were in the camera folders before the app was installed.
 *
 * <p>It runs only once the app can see other apps' camera files ({@link Access}): without
 * all-files access or the media read grant, FUSE lists only the app's own files, and a pass
 * would find nothing and be marked done, after which the 15-minute reconcile would decide the
 * whole pre-install camera roll as new photos (duty hours, a session or the classifier could
 * then take personal photos). Until then the state is {@link State#WAITING_FOR_ACCESS}, a
 * health state the admin sees.
 *
 * <p>With access: each file directly in a camera folder whose modification time is at or
 * after the install ({@code PackageInfo.firstInstallTime}) was taken after the install, while
 * access was missing, and is decided as a new photo ({@code onMedia}); then the core's
 * {@code record_backlog} pass handles the rest with the managed {@code backlog} setting
 * (default {@code record}: hashed and recorded as kept, nothing moved). Only a pass in which
 * nothing had to be retried marks the backlog done; the core skips what it already recorded,
 * so a pass cut short simply runs again.
 */
public final class Backlog {
    public static final String DONE = "backlog.done";
    public static final String DONE_AT = "backlog.done_at_ms";

    public enum State { DONE, WAITING_FOR_ACCESS, AGAIN }

    /** What one call did. */
    public static final class Result {
        public final State state;
        /** Files taken after the install and decided as new photos in this call. */
        public final int decidedAsNew;
        /** Files the core's backlog pass handled in this call. */
        public final int backlog;
        /** Files to look at again (the backlog stays not done). */
        public final int retry;
        public final String error;

        Result(State state, int decidedAsNew, int backlog, int retry, String error) {
            this.state = state;
            this.decidedAsNew = decidedAsNew;
            this.backlog = backlog;
            this.retry = retry;
            this.error = error;
        }

        @Override
        public String toString() {
            return state + " new=" + decidedAsNew + " backlog=" + backlog + " retry=" + retry + (error == null ? "" : " error=" + error);
        }
    }

    private Backlog() {
    }

    public static boolean done(KeyValueStore store) {
        return store.getBoolean(DONE, false);
    }

    /**
     * Runs the backlog pass unless it is done or access is missing.
     *
     * @param cameraFolders absolute camera folders (the core's {@code cameras})
     * @param installedAtMs when the app was first installed
     */
    public static Result runOnce(NativeCore core, Access access, List<String> cameraFolders, long installedAtMs,
            KeyValueStore store, long nowMs) {
        if (done(store)) {
            return new Result(State.DONE, 0, 0, 0, null);
        }
        if (!access.canSeeCameraFiles()) {
            return new Result(State.WAITING_FOR_ACCESS, 0, 0, 0, null);
        }
        int fresh = 0;
        int retry = 0;
        try {
            for (String path : takenSince(cameraFolders, installedAtMs)) {
                fresh++;
                if (kind(core.onMedia(path)).equals("retry")) {
                    retry++;
                }
            }
            if (retry > 0) {
                // Not yet: the backlog pass would record a photo still being written as kept.
                return new Result(State.AGAIN, fresh, 0, retry, null);
            }
            JSONArray outcomes = new JSONArray(core.recordBacklog());
            for (int i = 0; i < outcomes.length(); i++) {
                if (outcomes.getJSONObject(i).optString("kind").equals("retry")) {
                    retry++;
                }
            }
            if (retry > 0) {
                return new Result(State.AGAIN, fresh, outcomes.length(), retry, null);
            }
            store.put(new KeyValueStore.Edit().putBoolean(DONE, true).putLong(DONE_AT, nowMs));
            return new Result(State.DONE, fresh, outcomes.length(), 0, null);
        } catch (JSONException e) {
            return new Result(State.AGAIN, fresh, 0, retry, "backlog outcomes unreadable: " + e.getMessage());
        } catch (RuntimeException e) { // FotovaktException and anything else from the bridge
            return new Result(State.AGAIN, fresh, 0, retry, "backlog pass failed: " + e);
        }
    }

    /** Regular files directly in the folders, modified at or after {@code sinceMs}, oldest first. */
    static List<String> takenSince(List<String> folders, long sinceMs) {
        List<File> found = new ArrayList<>();
        for (String folder : folders) {
            File[] files = new File(folder).listFiles();
            if (files == null) {
                continue;
            }
            for (File f : files) {
                if (f.isFile() && f.lastModified() >= sinceMs) {
                    found.add(f);
                }
            }
        }
        found.sort((a, b) -> Long.compare(a.lastModified(), b.lastModified()));
        List<String> out = new ArrayList<>();
        for (File f : found) {
            out.add(f.getAbsolutePath());
        }
        return out;
    }

    private static String kind(String outcomeJson) {
        try {
            return new JSONObject(outcomeJson).optString("kind");
        } catch (JSONException e) {
            return "retry";
        }
    }
}
