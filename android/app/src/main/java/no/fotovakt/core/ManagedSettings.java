package no.fotovakt.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Managed configuration (the EMM's app restrictions, {@code res/xml/app_restrictions.xml}) turned
 * into the core's TOML ({@code src/config.rs}): the one place where the keys' meaning and
 * defaults live on the app side.
 *
 * <p>Plain Java 8 API (minSdk 29 has no {@code List.of} or {@code String.isBlank}) with no Android imports: {@code ManagedConfig.kt} hands it the restrictions
 * {@code Bundle} as a map, and the host JVM harness feeds it the same maps and runs the TOML
 * through the real core ({@link NativeCore#checkConfig}, {@link NativeCore#start}), so what the
 * managed-config text promises is checked against what the core does.
 *
 * <p>Defaults are the core's: an empty {@code duty_schedule} means <em>no shifts</em>, i.e.
 * never on duty by schedule (the core's {@code [duty]} default); {@code always} is the explicit
 * all-week shift. A value that cannot be used is reported in {@link #problems} (one per key,
 * sent to the EMM as a keyed app-state error) and the key's default is used instead.
 */
public final class ManagedSettings {
    /** Every managed-configuration key, in the order of app_restrictions.xml. */
    public static final List<String> KEYS = Collections.unmodifiableList(Arrays.asList(
            "duty_schedule", "work_sites", "case_threshold", "case_head_file", "case_head_sha256", "camera_folders",
            "camera_packages", "retention_days", "reconcile_minutes", "report_stats", "officer_id", "backlog",
            "handoff_recipients", "keep_personal_decisions", "keep_corrections"));

    public static final String DEFAULT_CAMERA_FOLDER = "DCIM/Camera";

    /** One weekly shift as the core reads it. */
    public static final class Shift {
        public final List<String> days;
        public final String start;
        public final String end;

        Shift(List<String> days, String start, String end) {
            this.days = days;
            this.start = start;
            this.end = end;
        }
    }

    /** One work site as the core reads it. */
    public static final class Site {
        public final String name;
        public final double lat;
        public final double lon;
        public final double radiusM;

        Site(String name, double lat, double lon, double radiusM) {
            this.name = name;
            this.lat = lat;
            this.lon = lon;
            this.radiusM = radiusM;
        }
    }

    public final List<Shift> shifts;
    public final List<Site> workSites;
    /** null: the model head's own threshold. */
    public final Float caseThreshold;
    /**
     * An agency's own head ({@code fotovakt head fit}) on shared storage, absolute or relative
     * to it; null: the head shipped in the APK. Set only together with {@link #caseHeadSha256}.
     */
    public final String caseHeadFile;
    /** The SHA-256 the agency head must have (lower-case hex); null with {@link #caseHeadFile}. */
    public final String caseHeadSha256;
    /** Relative to shared storage ("DCIM/Camera") or absolute ("/storage/1234-5678/DCIM/Camera"). */
    public final List<String> cameraFolders;
    /** Owner packages whose files are taken (MediaStore OWNER_PACKAGE_NAME); empty: any owner. */
    public final List<String> cameraPackages;
    public final int retentionDays;
    public final int reconcileMinutes;
    public final boolean reportStats;
    /** Goes on custody events (release, tag, session, export, ack); null when not configured. */
    public final String officerId;
    /** "record" or "quarantine" (the core's {@code backlog}). */
    public final String backlog;
    /**
     * The receiving case system's age X25519 public keys ({@code age1...}): the hand-off screen
     * encrypts every package to them ({@link NativeCore#exportHandoff}). Empty: plain packages.
     */
    public final List<String> handoffRecipients;
    /**
     * How long the minimal record of a photo kept as the officer's own is kept (the core's
     * {@code [privacy] keep_personal_decisions}), as duration text: "7d", "12h", "1d 12h".
     */
    public final String keepPersonalDecisions;
    /** How long officers' corrections are kept for learning ({@code [privacy] keep_corrections}). */
    public final String keepCorrections;
    /** key -> what is wrong with its value (the default was used). */
    public final Map<String, String> problems;

    private ManagedSettings(Builder b) {
        shifts = Collections.unmodifiableList(b.shifts);
        workSites = Collections.unmodifiableList(b.sites);
        caseThreshold = b.threshold;
        caseHeadFile = b.headFile;
        caseHeadSha256 = b.headSha256;
        cameraFolders = Collections.unmodifiableList(b.folders);
        cameraPackages = Collections.unmodifiableList(b.packages);
        retentionDays = b.retentionDays;
        reconcileMinutes = b.reconcileMinutes;
        reportStats = b.reportStats;
        officerId = b.officer;
        backlog = b.backlog;
        handoffRecipients = Collections.unmodifiableList(b.recipients);
        keepPersonalDecisions = b.keepPersonal;
        keepCorrections = b.keepCorrections;
        problems = Collections.unmodifiableMap(b.problems);
    }

    private static final class Builder {
        List<Shift> shifts = new ArrayList<>();
        List<Site> sites = new ArrayList<>();
        Float threshold;
        String headFile;
        String headSha256;
        List<String> folders = new ArrayList<>(Collections.singletonList(DEFAULT_CAMERA_FOLDER));
        List<String> packages = new ArrayList<>();
        int retentionDays = 90;
        int reconcileMinutes = 15;
        boolean reportStats = true;
        String officer;
        String backlog = "record";
        List<String> recipients = new ArrayList<>();
        String keepPersonal = "7d";
        String keepCorrections = "90d";
        Map<String, String> problems = new LinkedHashMap<>();

        void problem(String key, String message) {
            problems.merge(key, message, (a, c) -> a + "; " + c);
        }
    }

    /** The defaults (no managed configuration pushed). */
    public static ManagedSettings defaults() {
        return parse(Collections.<String, Object>emptyMap());
    }

    /**
     * Reads the restrictions. Values are what {@code Bundle} holds: String for string keys,
     * Integer for integer keys, Boolean for bool keys (a String is accepted for each, as some
     * EMMs send every value as text).
     */
    public static ManagedSettings parse(Map<String, ?> values) {
        Builder b = new Builder();
        for (String key : values.keySet()) {
            if (!KEYS.contains(key)) {
                b.problem(key, "unknown key (ignored)");
            }
        }
        String duty = text(values, "duty_schedule", b);
        if (duty != null) {
            parseShifts(duty, b);
        }
        String sites = text(values, "work_sites", b);
        if (sites != null) {
            for (String line : sites.split("[\\n\\r|]+")) {
                if (!line.trim().isEmpty()) {
                    parseSite(line.trim(), b);
                }
            }
        }
        String threshold = text(values, "case_threshold", b);
        if (threshold != null && !threshold.trim().isEmpty()) {
            Double t = number(threshold);
            if (t == null || !(t >= 0 && t <= 1)) {
                b.problem("case_threshold", "\"" + threshold + "\" is not a number within 0..1 (the model's own threshold is used)");
            } else {
                b.threshold = t.floatValue();
            }
        }
        parseHead(text(values, "case_head_file", b), text(values, "case_head_sha256", b), b);
        List<String> folders = list(text(values, "camera_folders", b));
        if (folders != null) {
            List<String> ok = new ArrayList<>();
            for (String f : folders) {
                String norm = f.replaceAll("/+$", "");
                if (norm.isEmpty() || norm.contains("..") || (!norm.startsWith("/") && norm.startsWith("Android"))) {
                    b.problem("camera_folders", "\"" + f + "\" is not a camera folder");
                } else if (!ok.contains(norm)) {
                    ok.add(norm);
                }
            }
            if (!ok.isEmpty()) {
                b.folders = ok;
            }
        }
        List<String> packages = list(text(values, "camera_packages", b));
        if (packages != null) {
            for (String p : packages) {
                if (p.matches("[A-Za-z][A-Za-z0-9_]*(\\.[A-Za-z][A-Za-z0-9_]*)+")) {
                    b.packages.add(p);
                } else {
                    b.problem("camera_packages", "\"" + p + "\" is not a package name");
                }
            }
        }
        b.retentionDays = integer(values, "retention_days", b.retentionDays, 1, 36500, b);
        b.reconcileMinutes = integer(values, "reconcile_minutes", b.reconcileMinutes, 5, 24 * 60, b);
        b.reportStats = bool(values, "report_stats", b.reportStats, b);
        String officer = text(values, "officer_id", b);
        if (officer != null && !officer.trim().isEmpty()) {
            b.officer = officer.trim();
        }
        String backlog = text(values, "backlog", b);
        if (backlog != null && !backlog.trim().isEmpty()) {
            String v = backlog.trim().toLowerCase(Locale.ROOT);
            if (v.equals("record") || v.equals("quarantine")) {
                b.backlog = v;
            } else {
                b.problem("backlog", "\"" + backlog + "\" is neither record nor quarantine (record is used)");
            }
        }
        List<String> recipients = list(text(values, "handoff_recipients", b));
        if (recipients != null) {
            for (String r : recipients) {
                if (!AGE_RECIPIENT.matcher(r).matches()) {
                    b.problem("handoff_recipients", "\"" + r + "\" is not an age X25519 public key (age1..., 62 characters; left out)");
                } else if (!b.recipients.contains(r.toLowerCase(Locale.ROOT))) {
                    b.recipients.add(r.toLowerCase(Locale.ROOT));
                }
            }
        }
        b.keepPersonal = duration(values, "keep_personal_decisions", b.keepPersonal, b);
        b.keepCorrections = duration(values, "keep_corrections", b.keepCorrections, b);
        return new ManagedSettings(b);
    }

    /**
     * An age X25519 recipient: "age1" and 58 bech32 characters, one case throughout. The core
     * checks the checksum again ({@link NativeCore#exportTo} refuses a bad one).
     */
    private static final Pattern AGE_RECIPIENT = Pattern.compile("age1[02-9ac-hj-np-z]{58}|AGE1[02-9AC-HJ-NP-Z]{58}");

    /** Paths and device facts the TOML needs besides the managed configuration. */
    public static final class Device {
        public final String filesDir;
        public final String sharedStorage;
        public final boolean mediaLocationAccess;
        public final String modelFile;
        public final String headFile;
        /** How the core finds ONNX Runtime; null: the host's way (pip's wheel or ORT_DYLIB_PATH). */
        public final String ortDylib;

        /**
         * @param modelFile the verified model in filesDir/models, or null when it is missing or
         *     failed its SHA-256 check (the classifier is then disabled and the app reports it)
         * @param ortDylib {@link #ORT_SONAME} on a phone (the AAR's library, found by the dynamic
         *     linker inside the APK); null on a host
         */
        public Device(String filesDir, String sharedStorage, boolean mediaLocationAccess, String modelFile, String headFile,
                String ortDylib) {
            this.filesDir = filesDir;
            this.sharedStorage = sharedStorage;
            this.mediaLocationAccess = mediaLocationAccess;
            this.modelFile = modelFile;
            this.headFile = headFile;
            this.ortDylib = ortDylib;
        }

        /** A phone's device facts: ONNX Runtime by its bare soname. */
        public Device(String filesDir, String sharedStorage, boolean mediaLocationAccess, String modelFile, String headFile) {
            this(filesDir, sharedStorage, mediaLocationAccess, modelFile, headFile, ORT_SONAME);
        }
    }

    /** The onnxruntime-android AAR's library, by bare soname. */
    public static final String ORT_SONAME = "libonnxruntime.so";

    /** Absolute camera folders, as the core's {@code cameras} (non-recursive, exact folders). */
    public List<String> absoluteCameraFolders(String sharedStorage) {
        List<String> out = new ArrayList<>();
        for (String f : cameraFolders) {
            out.add(f.startsWith("/") ? f : sharedStorage.replaceAll("/+$", "") + "/" + f);
        }
        return out;
    }

    /** The core's config file (same schema as the CLI's, src/config.rs). */
    public String toToml(Device d) {
        StringBuilder s = new StringBuilder();
        line(s, "store = " + q(d.filesDir + "/quarantine"));
        line(s, "cameras = " + qlist(absoluteCameraFolders(d.sharedStorage)));
        line(s, "reconcile_interval = " + q(reconcileMinutes + "m"));
        // Without ACCESS_MEDIA_LOCATION MediaProvider redacts GPS on read: the core must not
        // store (or delete an original on the strength of) altered bytes.
        line(s, "media_location_access = " + d.mediaLocationAccess);
        line(s, "backlog = " + q(backlog));
        line(s, "");
        line(s, "[policy]");
        if (caseThreshold != null) {
            line(s, "threshold = " + caseThreshold);
        }
        line(s, "");
        line(s, "[classifier]");
        if (d.modelFile != null && d.headFile != null) {
            line(s, "enabled = true");
            if (d.ortDylib != null) {
                // Bare soname: the dynamic linker finds it inside the APK (onnxruntime-android AAR).
                line(s, "ort_dylib = " + q(d.ortDylib));
            }
            line(s, "model = " + q(d.modelFile));
            line(s, "head = " + q(d.headFile));
        } else {
            line(s, "enabled = false");
        }
        line(s, "");
        line(s, "[retention]");
        line(s, "quarantined_days = " + retentionDays);
        line(s, "");
        line(s, "[privacy]");
        line(s, "keep_personal_decisions = " + q(keepPersonalDecisions));
        line(s, "keep_corrections = " + q(keepCorrections));
        line(s, "");
        line(s, "[duty]");
        line(s, "shifts = [");
        for (Shift sh : shifts) {
            line(s, "  { days = " + qlist(sh.days) + ", start = " + q(sh.start) + ", end = " + q(sh.end) + " },");
        }
        line(s, "]");
        for (Site site : workSites) {
            line(s, "");
            line(s, "[[work_sites]]");
            line(s, "name = " + q(site.name));
            line(s, "lat = " + site.lat);
            line(s, "lon = " + site.lon);
            line(s, "radius_m = " + site.radiusM);
        }
        return s.toString();
    }

    // ------------------------------------------------------------------ parsing

    private static final List<String> DAYS = Collections.unmodifiableList(Arrays.asList("mon", "tue", "wed", "thu", "fri", "sat", "sun"));
    private static final Pattern TIME = Pattern.compile("([01]?\\d|2[0-3]):[0-5]\\d|24:00");

    /**
     * "Mon-Fri 07:00-15:30; Sat 08:00-14:00" or "always". Empty: no shifts (never on duty by
     * schedule). An end before the start runs past midnight, as in the core.
     */
    private static void parseShifts(String schedule, Builder b) {
        String all = schedule.trim().toLowerCase(Locale.ROOT);
        if (all.isEmpty()) {
            return;
        }
        if (all.equals("always")) {
            b.shifts.add(new Shift(DAYS, "00:00", "24:00"));
            return;
        }
        for (String part : all.split(";")) {
            String p = part.trim();
            if (p.isEmpty()) {
                continue;
            }
            String[] words = p.split("\\s+");
            List<String> days = words.length == 2 ? days(words[0]) : null;
            String[] times = words.length == 2 ? words[1].split("-") : new String[0];
            if (days == null || days.isEmpty() || times.length != 2
                    || !TIME.matcher(times[0]).matches() || !TIME.matcher(times[1]).matches() || times[0].equals("24:00")) {
                b.problem("duty_schedule", "\"" + part.trim() + "\" is not like \"mon-fri 07:00-15:30\" (part skipped)");
                continue;
            }
            b.shifts.add(new Shift(days, pad(times[0]), pad(times[1])));
        }
    }

    /**
     * The agency head: a file on shared storage and the SHA-256 it must have. A file without a
     * usable pin (or a pin without a file) is a problem of that key, and the shipped head is
     * used; the file itself is checked when the app installs it ({@link AgencyHead}).
     */
    private static void parseHead(String file, String sha, Builder b) {
        String f = file == null ? "" : file.trim();
        String h = sha == null ? "" : sha.trim().toLowerCase(Locale.ROOT);
        if (f.isEmpty()) {
            if (!h.isEmpty()) {
                b.problem("case_head_sha256", "set without case_head_file (ignored; the shipped head is used)");
            }
            return;
        }
        if (f.contains("..") || f.endsWith("/")) {
            b.problem("case_head_file", "\"" + f + "\" is not a file path (the shipped head is used)");
            return;
        }
        if (!h.matches("[0-9a-f]{64}")) {
            b.problem("case_head_sha256", (h.isEmpty() ? "missing" : "\"" + sha.trim() + "\" is not a SHA-256 in hex")
                    + ": case_head_file needs its SHA-256 (`fotovakt head fit` prints it; the shipped head is used)");
            return;
        }
        b.headFile = f;
        b.headSha256 = h;
    }

    private static String pad(String t) {
        return t.length() == 4 ? "0" + t : t;
    }

    /** "mon-fri", "sat,sun", "mon,wed-fri" -> days; null if any part is unknown. */
    private static List<String> days(String spec) {
        List<String> out = new ArrayList<>();
        for (String d : spec.split(",")) {
            String[] range = d.split("-");
            if (range.length < 1 || range.length > 2) {
                return null;
            }
            int a = dayIndex(range[0]);
            int z = range.length == 2 ? dayIndex(range[1]) : a;
            if (a < 0 || z < 0) {
                return null;
            }
            for (int i = a; ; i = (i + 1) % 7) { // "fri-mon" wraps over the weekend
                if (!out.contains(DAYS.get(i))) {
                    out.add(DAYS.get(i));
                }
                if (i == z) {
                    break;
                }
            }
        }
        return out;
    }

    private static int dayIndex(String s) {
        return s.length() >= 3 ? DAYS.indexOf(s.substring(0, 3)) : -1;
    }

    /**
     * "name;lat;lon;radius_m". Coordinates may use a decimal comma ("59,9139", as Norwegian
     * and most European locales write them); a comma is never a separator inside a line.
     */
    private static void parseSite(String line, Builder b) {
        String[] f = line.split(";", -1);
        if (f.length != 4 || f[0].trim().isEmpty()) {
            b.problem("work_sites", "\"" + line + "\" is not name;lat;lon;radius_m (site skipped)");
            return;
        }
        Double lat = number(f[1]);
        Double lon = number(f[2]);
        Double r = number(f[3]);
        if (lat == null || lon == null || r == null) {
            b.problem("work_sites", "\"" + line + "\": lat, lon and radius must be numbers (site skipped)");
        } else if (lat < -90 || lat > 90 || lon < -180 || lon > 180) {
            b.problem("work_sites", "\"" + line + "\": lat/lon out of range (site skipped)");
        } else if (!(r > 0) || r > 100_000) {
            b.problem("work_sites", "\"" + line + "\": radius must be within (0, 100000] m (site skipped)");
        } else {
            b.sites.add(new Site(f[0].trim(), lat, lon, r));
        }
    }

    private static Double number(String s) {
        String t = s.trim();
        if (t.matches("[-+]?\\d+,\\d+")) {
            t = t.replace(',', '.');
        }
        if (!t.matches("[-+]?(\\d+\\.?\\d*|\\.\\d+)")) {
            return null;
        }
        try {
            double v = Double.parseDouble(t);
            return Double.isFinite(v) ? v : null;
        } catch (NumberFormatException e) {
            return null;
        }
    }

    private static String text(Map<String, ?> values, String key, Builder b) {
        Object v = values.get(key);
        if (v == null) {
            return null;
        }
        if (v instanceof String) {
            return (String) v;
        }
        b.problem(key, "expected text, got " + v.getClass().getSimpleName());
        return null;
    }

    private static List<String> list(String s) {
        if (s == null) {
            return null;
        }
        List<String> out = new ArrayList<>();
        for (String p : s.split("[,\\n\\r]+")) {
            if (!p.trim().isEmpty()) {
                out.add(p.trim());
            }
        }
        return out.isEmpty() ? null : out;
    }

    private static int integer(Map<String, ?> values, String key, int dflt, int min, int max, Builder b) {
        Object v = values.get(key);
        if (v == null) {
            return dflt;
        }
        Integer n = null;
        if (v instanceof Integer) {
            n = (Integer) v;
        } else if (v instanceof String && ((String) v).trim().matches("-?\\d{1,9}")) {
            n = Integer.valueOf(((String) v).trim());
        }
        if (n == null) {
            b.problem(key, "\"" + v + "\" is not a whole number (default " + dflt + " is used)");
            return dflt;
        }
        if (n < min || n > max) {
            int c = Math.max(min, Math.min(max, n));
            b.problem(key, n + " is outside " + min + ".." + max + " (" + c + " is used)");
            return c;
        }
        return n;
    }

    private static final Pattern DURATION_PART = Pattern.compile("(\\d{1,9})\\s*([smhdw])");
    private static final long MAX_DURATION_S = 36_500L * 86_400L;

    /**
     * A duration as the core reads it (humantime): one or more "number unit" parts, units s, m,
     * h, d, w ("7d", "12h", "1d 12h"), between 1 s and 100 years. Returned as "7d"-style text;
     * anything else is a problem and the default is used.
     */
    private static String duration(Map<String, ?> values, String key, String dflt, Builder b) {
        String text = text(values, key, b);
        if (text == null || text.trim().isEmpty()) {
            return dflt;
        }
        String t = text.trim().toLowerCase(Locale.ROOT);
        java.util.regex.Matcher m = DURATION_PART.matcher(t);
        StringBuilder out = new StringBuilder();
        long seconds = 0;
        int end = 0;
        while (m.find() && t.substring(end, m.start()).trim().isEmpty()) {
            long n = Long.parseLong(m.group(1));
            long unit = "s".equals(m.group(2)) ? 1 : "m".equals(m.group(2)) ? 60 : "h".equals(m.group(2)) ? 3_600
                    : "d".equals(m.group(2)) ? 86_400 : 604_800;
            seconds = Math.min(seconds + n * unit, MAX_DURATION_S + 1);
            out.append(out.length() == 0 ? "" : " ").append(n).append(m.group(2));
            end = m.end();
        }
        if (out.length() == 0 || !t.substring(end).trim().isEmpty()) {
            b.problem(key, "\"" + text + "\" is not a duration like 7d, 12h or 1d 12h (" + dflt + " is used)");
            return dflt;
        }
        if (seconds < 1 || seconds > MAX_DURATION_S) {
            b.problem(key, "\"" + text + "\" is not within 1s and 100 years (" + dflt + " is used)");
            return dflt;
        }
        return out.toString();
    }

    private static boolean bool(Map<String, ?> values, String key, boolean dflt, Builder b) {
        Object v = values.get(key);
        if (v == null) {
            return dflt;
        }
        if (v instanceof Boolean) {
            return (Boolean) v;
        }
        if (v instanceof String && ((String) v).trim().matches("(?i)true|false")) {
            return Boolean.parseBoolean(((String) v).trim());
        }
        b.problem(key, "\"" + v + "\" is not true or false (default " + dflt + " is used)");
        return dflt;
    }

    private static void line(StringBuilder s, String l) {
        s.append(l).append('\n');
    }

    private static String q(String s) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '\\': out.append("\\\\"); break;
                case '"': out.append("\\\""); break;
                case '\n': out.append("\\n"); break;
                case '\r': out.append("\\r"); break;
                case '\t': out.append("\\t"); break;
                default:
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
            }
        }
        return out.append('"').toString();
    }

    private static String qlist(List<String> items) {
        StringBuilder s = new StringBuilder("[");
        for (int i = 0; i < items.size(); i++) {
            s.append(i == 0 ? "" : ", ").append(q(items.get(i)));
        }
        return s.append(']').toString();
    }
}
