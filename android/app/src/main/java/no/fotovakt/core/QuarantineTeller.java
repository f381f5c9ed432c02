package no.fotovakt.core;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * Tells the officer of every quarantined item exactly once, whichever path decided it: the
 * MediaStore pass, the content job, reconcile, the backlog pass or the core's own watcher
 * (all reach it through the core's {@link OutcomeListener}; the shell also offers it what
 * those calls return). An outcome that says "already quarantined" is told too if nobody
 * told it before: the watcher may have decided the photo a moment earlier, or in a process
 * that died before it could post the notification; otherwise a photo taken by mistake would
 * never get its "Not case material" prompt.
 *
 * <p>Which items were told is kept (the last {@link #REMEMBER} item numbers), so a later
 * outcome for the same item is not told again, not even after a restart.
 */
public final class QuarantineTeller implements OutcomeListener {
    public static final String KEY = "told.items";
    public static final int REMEMBER = 512;

    /**
     * How the officer is told (the app: a quiet, grouped notification). Called on the deciding
     * thread (a core thread for the watcher): must be quick, must not call into the core, and
     * must not throw.
     */
    public interface Officer {
        void tell(String itemId, String displayName, String caseId);
    }

    private final KeyValueStore store;
    private final Officer officer;
    private Deque<Long> told;

    public QuarantineTeller(KeyValueStore store, Officer officer) {
        this.store = store;
        this.officer = officer;
    }

    @Override
    public void outcome(String json) {
        offer(json);
    }

    /**
     * One outcome (JSON object) or several (JSON array), as the core returns them. Returns how
     * many items were told now. The officer is called outside this object's lock: the core's
     * watcher thread and a thread inside a core call may offer at the same time.
     */
    public int offer(String json) {
        List<JSONObject> fresh = new ArrayList<>();
        synchronized (this) {
            for (JSONObject o : parse(json)) {
                if (claim(o)) {
                    fresh.add(o);
                }
            }
        }
        int n = 0;
        for (JSONObject o : fresh) {
            n += tell(o);
        }
        return n;
    }

    private static List<JSONObject> parse(String json) {
        List<JSONObject> out = new ArrayList<>();
        if (json == null) {
            return out;
        }
        try {
            String t = json.trim();
            if (t.startsWith("[")) {
                JSONArray a = new JSONArray(t);
                for (int i = 0; i < a.length(); i++) {
                    out.add(a.getJSONObject(i));
                }
            } else if (t.startsWith("{")) {
                out.add(new JSONObject(t));
            }
        } catch (JSONException e) {
            return out;
        }
        return out;
    }

    /** Whether {@code item} was told already. */
    public synchronized boolean told(long item) {
        return told().contains(item);
    }

    /** Whether {@code o} is a quarantine no one was told of; if so it is recorded as told now. */
    private boolean claim(JSONObject o) {
        if (!"quarantined".equals(o.optString("kind")) || o.isNull("item")) {
            return false;
        }
        long item = o.optLong("item", -1);
        if (item < 0 || told().contains(item)) {
            return false;
        }
        told().addLast(item);
        while (told().size() > REMEMBER) {
            told().removeFirst();
        }
        save();
        return true;
    }

    private int tell(JSONObject o) {
        String path = o.isNull("path") ? "" : o.optString("path");
        String name = path.substring(path.lastIndexOf('/') + 1);
        String caseId = o.isNull("case_id") ? null : o.optString("case_id");
        long item = o.optLong("item", -1);
        try {
            officer.tell(Long.toString(item), name.isEmpty() ? "#" + item : name, caseId);
        } catch (RuntimeException e) {
            // A notification that could not be posted must not stop the core's thread.
            return 0;
        }
        return 1;
    }

    private Deque<Long> told() {
        if (told == null) {
            told = new ArrayDeque<>();
            for (String s : store.getString(KEY, "").split(",")) {
                if (s.matches("\\d{1,18}")) {
                    told.addLast(Long.parseLong(s));
                }
            }
        }
        return told;
    }

    private void save() {
        StringBuilder s = new StringBuilder();
        for (Long id : told) {
            s.append(s.length() == 0 ? "" : ",").append(id);
        }
        store.put(new KeyValueStore.Edit().putString(KEY, s.toString()));
    }
}
