package no.fotovakt.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * What the admin sees of this phone in the EMM: a fixed, small set of keyed app states, each
 * with structured data (compact JSON), none of them cut:
 * <ul>
 *   <li>{@code fotovakt.health.<check>}, one per check in {@link #HEALTH_KEYS};</li>
 *   <li>{@code fotovakt.config}: the managed configuration, ERROR with the keys whose values
 *       could not be used (one state, so fixing a value also clears the error);</li>
 *   <li>{@code fotovakt.stats…}: the statistics, a few states (src/android/states.rs).</li>
 * </ul>
 * A key is never cut to fit ({@link #MAX_KEY_LENGTH}): every key here is fixed and short. Data
 * is built to fit {@link #MAX_DATA_LENGTH} as whole JSON; a message longer than
 * {@link #MAX_MESSAGE_LENGTH} is shortened with an ellipsis (it is for people).
 *
 * <p>"Never started since install" cannot be a state the app sends: an app Android installed
 * and no one opened is in the stopped state, and nothing of it runs. The EMM shows the app
 * installed but no {@code fotovakt.health.*} state at all; android/README.md says what the
 * admin does then. Once it runs, {@code fotovakt.health.started} reports when it was installed
 * and first started, and whether it was force-stopped before this start.
 */
public final class AppStates {
    /** androidx.enterprise.feedback KeyedAppState limits and severities. */
    public static final int MAX_KEY_LENGTH = 100;
    public static final int MAX_MESSAGE_LENGTH = 1000;
    public static final int MAX_DATA_LENGTH = 1000;
    public static final int SEVERITY_INFO = 1;
    public static final int SEVERITY_ERROR = 2;

    public static final List<String> HEALTH_KEYS = Collections.unmodifiableList(java.util.Arrays.asList(
            "access", "media_location", "notifications", "battery_exemption", "model", "case_head", "service_alive", "last_intake", "store", "started",
            "device_key", "checkpoint", "auto_time"));

    /** One keyed app state. */
    public static final class State {
        public final String key;
        public final int severity;
        public final String message;
        public final String data;

        State(String key, int severity, String message, String data) {
            if (key.length() > MAX_KEY_LENGTH) {
                throw new IllegalArgumentException("keyed app state key longer than " + MAX_KEY_LENGTH + ": " + key);
            }
            if (data.length() > MAX_DATA_LENGTH) {
                throw new IllegalArgumentException("data of " + key + " longer than " + MAX_DATA_LENGTH);
            }
            this.key = key;
            this.severity = severity;
            this.message = message.length() <= MAX_MESSAGE_LENGTH ? message : message.substring(0, MAX_MESSAGE_LENGTH - 1) + "…";
            this.data = data;
        }

        public boolean ok() {
            return severity == SEVERITY_INFO;
        }

        @Override
        public String toString() {
            return key + " " + (ok() ? "INFO" : "ERROR") + " " + data + " " + message;
        }
    }

    /** The facts the health states are made of. */
    public static final class Facts {
        public Access access = new Access(false, false, false);
        public Backlog.State backlog = Backlog.State.WAITING_FOR_ACCESS;
        public boolean notifications;
        public boolean batteryExempt;
        public ModelInstaller.State model;
        /** The agency head named by managed configuration ({@link AgencyHead}), or null for the shipped one. */
        public AgencyHead.Result agencyHead;
        /** The SHA-256 managed configuration pins the agency head to, or null. */
        public String agencyHeadSha256;
        /** The core's healthJson, or null when the core is not running. */
        public String coreHealth;
        /** Why the core is not running, or null. */
        public String coreError;
        public boolean serviceAlive;
        public long nowMs;
        public long installedAtMs;
        public long firstStartMs;
        /** The process before this one was force-stopped (API 30+ exit reasons; false if unknown). */
        public boolean forceStoppedBefore;
        /** Why the Keystore device key is not in use (the core signs with its key file), or null. */
        public String deviceKeyError;
        /** {@code Settings.Global.AUTO_TIME}: the phone takes its time from the network; null: cannot tell. */
        public Boolean autoTime;
    }

    private AppStates() {
    }

    public static List<State> health(Facts f) {
        JSONObject core = parse(f.coreHealth);
        List<State> out = new ArrayList<>();
        boolean waiting = !f.access.canSeeCameraFiles();
        String accessMsg = waiting
                ? "waiting for access: neither all-files access nor the photos and videos permission is granted; the camera roll is not judged, nor marked seen, until one is"
                : f.access.allFiles ? "all-files access granted"
                : "only the photos and videos permission: new photos are seen, but other apps' files cannot be moved without all-files access";
        out.add(state("access", f.access.allFiles && f.backlog == Backlog.State.DONE, accessMsg, obj(
                "all_files", f.access.allFiles, "media_read", f.access.mediaRead, "waiting_for_access", waiting,
                "backlog", f.backlog.name().toLowerCase(java.util.Locale.ROOT))));
        out.add(state("media_location", f.access.mediaLocation,
                "ACCESS_MEDIA_LOCATION: without it GPS is redacted on read and nothing is moved", obj("granted", f.access.mediaLocation)));
        out.add(state("notifications", f.notifications, "notifications to the officer", obj("enabled", f.notifications)));
        out.add(state("battery_exemption", f.batteryExempt,
                "battery-optimisation exemption: keeps the service alive and lets it restart from the background", obj("exempt", f.batteryExempt)));
        boolean loaded = core != null && core.optBoolean("model_loaded");
        boolean modelOk = f.model != null && f.model.ok() && loaded;
        String why = f.model != null && f.model.error != null ? f.model.error
                : f.agencyHead != null && f.agencyHead.error != null ? f.agencyHead.error
                : core != null && !core.isNull("model_error") ? core.optString("model_error") : f.coreError;
        out.add(state("model", modelOk, modelOk ? "classifier loaded" : "classifier not loaded: " + why,
                obj("loaded", modelOk, "sha256", f.model != null && f.model.modelSha256 != null ? f.model.modelSha256 : "")));
        AgencyHead.Result agency = f.agencyHead;
        String coreWhy = core != null && !core.isNull("model_error") ? core.optString("model_error") : f.coreError;
        boolean agencyOk = agency == null || (agency.ok() && loaded);
        out.add(state("case_head", agencyOk,
                agency == null ? "the head shipped in the app"
                        : agencyOk ? "agency head in use (SHA-256 " + f.agencyHeadSha256 + ")"
                        : "agency head not in use, classifier off: " + (agency.error != null ? agency.error : coreWhy),
                obj("agency", agency != null, "ok", agencyOk, "sha256", agency != null && f.agencyHeadSha256 != null ? f.agencyHeadSha256 : "")));
        boolean alive = f.serviceAlive && core != null;
        out.add(state("service_alive", alive,
                core != null ? (f.serviceAlive ? "agent running" : "agent running, service not started (content job only)")
                        : "agent not running: " + (f.coreError != null ? f.coreError : "service not started"),
                obj("reported_at_ms", f.nowMs, "watching", core != null && core.optBoolean("watching"))));
        long last = core == null || core.isNull("last_decided_ms") ? 0 : core.optLong("last_decided_ms");
        // For a photo kept as the officer's own the core reports the start of its day (or of its
        // keep_personal_decisions period, if shorter), never the photo's own time.
        out.add(state("last_intake", true,
                "time of the last decision (ms since the epoch; a personal photo's: the start of its day)",
                obj("last_decided_ms", last)));
        // The core's store health: "ok", or failing / full / read_only / unknown with a reason.
        JSONObject store = core == null ? null : core.optJSONObject("store");
        String storeState = store == null ? "unknown" : store.optString("store", "unknown");
        String storeWhy = store == null || store.isNull("reason") ? null : store.optString("reason");
        long waitingFiles = store == null ? 0 : store.optLong("waiting");
        boolean storeOk = core == null || "ok".equals(storeState);
        out.add(state("store", storeOk, storeOk ? "the store takes photos"
                        : "the store cannot take photos (" + storeState + (storeWhy != null ? ": " + storeWhy : "")
                        + "); " + waitingFiles + " waiting in the camera folder, tried again with backoff",
                obj("state", storeState, "waiting", waitingFiles)));
        out.add(state("started", !f.forceStoppedBefore,
                f.forceStoppedBefore ? "the app was force-stopped and stayed off until this start" : "started",
                obj("installed_at_ms", f.installedAtMs, "first_start_ms", f.firstStartMs, "force_stopped_before", f.forceStoppedBefore)));
        signing(f, core, out);
        return out;
    }

    /**
     * Issue 26: the device key (what the admin registers per phone: packages and checkpoints are
     * signed with it), the newest signed ledger checkpoint (the EMM's history of these proves
     * later that the ledger was not rolled back or rewritten: {@code fotovakt verify --checkpoint}),
     * and whether the clock is the network's.
     */
    private static void signing(Facts f, JSONObject core, List<State> out) {
        JSONObject key = core == null ? null : core.optJSONObject("device_key");
        String provider = key == null ? "" : key.optString("provider");
        String fingerprint = key == null ? "" : key.optString("fingerprint");
        boolean keystore = provider.startsWith("android_");
        String keyWhy = core != null && !core.isNull("device_key_error") ? core.optString("device_key_error") : f.coreError;
        out.add(state("device_key", key != null && keystore,
                key == null ? "no device key: packages cannot be signed (" + keyWhy + ")"
                        : !keystore ? "device key in the app's key file, not the Keystore (" + f.deviceKeyError + "); fingerprint " + fingerprint
                        : "device key (" + ("android_strongbox".equals(provider) ? "StrongBox" : "TEE") + "), SHA-256 of the public key " + fingerprint,
                obj("fingerprint", fingerprint, "provider", provider)));
        JSONObject checkpoint = core == null ? null : core.optJSONObject("checkpoint");
        String cp = checkpoint == null ? "{}" : checkpoint.toString();
        out.add(state("checkpoint", true,
                checkpoint != null ? "signed ledger checkpoint of event " + checkpoint.optLong("seq") : "no ledger checkpoint yet",
                cp.length() <= MAX_DATA_LENGTH ? cp : obj("seq", checkpoint.optLong("seq"), "too_long", true)));
        out.add(state("auto_time", !Boolean.FALSE.equals(f.autoTime),
                "automatic (network) time: " + (Boolean.FALSE.equals(f.autoTime) ? "OFF: the clock can be set back to backdate events" : f.autoTime == null ? "unknown" : "on"),
                obj("auto_time", f.autoTime == null ? "unknown" : f.autoTime.toString())));
    }

    /** The one state for the managed configuration: INFO, or ERROR naming the keys not used. */
    public static State config(Map<String, String> problems) {
        if (problems.isEmpty()) {
            return new State("fotovakt.config", SEVERITY_INFO, "managed configuration applied", "{\"problems\":{}}");
        }
        StringBuilder msg = new StringBuilder(problems.size() + " managed-configuration value(s) not used (defaults apply): ");
        JSONObject all = new JSONObject();
        JSONArray keys = new JSONArray();
        try {
            for (Map.Entry<String, String> e : problems.entrySet()) {
                msg.append(e.getKey()).append(": ").append(e.getValue()).append("; ");
                all.put(e.getKey(), e.getValue());
                keys.put(e.getKey());
            }
            String data = new JSONObject().put("problems", all).toString();
            if (data.length() > MAX_DATA_LENGTH) {
                data = new JSONObject().put("bad_keys", keys).toString();
            }
            if (data.length() > MAX_DATA_LENGTH) {
                data = new JSONObject().put("bad_keys_count", problems.size()).toString();
            }
            return new State("fotovakt.config", SEVERITY_ERROR, msg.toString(), data);
        } catch (JSONException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * The core's statistics states ({@link NativeCore#statsStates}), as INFO states. Throws
     * IllegalArgumentException (unchecked, as the callers' guards expect) for unreadable JSON.
     */
    public static List<State> stats(String statsStatesJson) {
        try {
            JSONArray a = new JSONArray(statsStatesJson);
            List<State> out = new ArrayList<>();
            for (int i = 0; i < a.length(); i++) {
                JSONObject s = a.getJSONObject(i);
                out.add(new State(s.getString("key"), SEVERITY_INFO, s.getString("message"), s.getString("data")));
            }
            return out;
        } catch (JSONException e) {
            throw new IllegalArgumentException("statistics states unreadable: " + e.getMessage(), e);
        }
    }

    private static State state(String check, boolean ok, String message, String data) {
        return new State("fotovakt.health." + check, ok ? SEVERITY_INFO : SEVERITY_ERROR, message, data);
    }

    /** A compact JSON object of alternating names and values. */
    private static String obj(Object... kv) {
        JSONObject o = new JSONObject();
        try {
            for (int i = 0; i < kv.length; i += 2) {
                o.put((String) kv[i], kv[i + 1]);
            }
        } catch (JSONException e) {
            throw new IllegalStateException(e);
        }
        return o.toString();
    }

    private static JSONObject parse(String json) {
        if (json == null) {
            return null;
        }
        try {
            return new JSONObject(json);
        } catch (JSONException e) {
            return null;
        }
    }
}
