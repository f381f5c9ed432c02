package no.fotovakt.hosttest;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import no.fotovakt.core.AgencyHead;
import no.fotovakt.core.DeviceSigner;
import no.fotovakt.core.FotovaktException;
import no.fotovakt.core.FotovaktException.Code;
import no.fotovakt.core.FrameSource;
import no.fotovakt.core.ManagedSettings;
import no.fotovakt.core.NativeCore;
import no.fotovakt.core.RefusedException;

/**
 * Drives the JNI bridge (src/android.rs built for the host as a cdylib) through the very
 * NativeCore class the app ships, calling every native method and checking the results.
 *
 * Run: java -Djava.library.path=DIR_WITH_libfotovakt.so -cp CLASSES no.fotovakt.hosttest.BridgeHarness WORKDIR [MODELS_DIR]
 * (with MODELS_DIR, the repository's models/, the frame-source checks run the real classifier)
 * Prints one line per check and a closing "N passed, N failed".
 */
public final class BridgeHarness {
    private int passed;
    private int failed;
    private final List<String> failures = new ArrayList<>();

    public static void main(String[] args) throws Exception {
        Path work = Path.of(args.length > 0 ? args[0] : "build-check/host-run");
        BridgeHarness h = new BridgeHarness();
        h.models = args.length > 1 ? Path.of(args[1]) : null;
        try {
            h.run(work);
        } catch (Throwable t) {
            h.fail("harness", "unexpected " + t);
            t.printStackTrace();
        }
        System.out.println();
        for (String f : h.failures) {
            System.out.println("FAILED: " + f);
        }
        System.out.println(h.passed + " passed, " + h.failed + " failed");
        System.exit(h.failed == 0 ? 0 : 1);
    }

    private void run(Path work) throws Exception {
        deleteTree(work);
        Path camera = Files.createDirectories(work.resolve("camera/DCIM/Camera"));
        Path files = Files.createDirectories(work.resolve("files"));
        Path cache = Files.createDirectories(work.resolve("cache"));

        String version = NativeCore.version();
        check("version", version != null && version.matches("\\d+\\.\\d+\\.\\d+.*"), version);
        checkErrorCodes();

        // Config as CoreConfig.kt writes it: store in filesDir, no model on the host.
        String toml = "store = \"" + files.resolve("quarantine") + "\"\n"
                + "cameras = [\"" + camera + "\"]\n"
                + "[classifier]\nenabled = false\n";
        expectThrows("start with a bad config", Code.CONFIG, () -> NativeCore.start("cameras = 7", files.toString(), cache.toString(), ""));
        NativeCore core = NativeCore.start(toml, files.toString(), cache.toString(), "/nonexistent");
        check("start", core != null, "handle");

        // A case session makes every new photo case material, with no model needed.
        core.sessionStart("CASE-2024-001", "officer-17", 3600);
        check("sessionStart", true, "no exception");

        Path a = writeJpeg(camera.resolve("IMG_0001.jpg"), Color.RED);
        String outA = core.onMedia(a.toString());
        check("onMedia quarantines a real JPEG", field(outA, "kind").equals("quarantined"), outA);
        check("onMedia moved the original out of the camera folder", !Files.exists(a), a.toString());
        check("onMedia outcome carries the session case", outA.contains("CASE-2024-001"), outA);
        String item = field(outA, "item");
        check("onMedia outcome names the item", item.matches("\\d+"), outA);
        check("store is below filesDir", Files.isDirectory(files.resolve("quarantine")), files.toString());

        String again = core.onMedia(a.toString());
        check("onMedia again answers the same item (idempotent, whichever handler came first)",
                field(again, "item").equals(item) && field(again, "kind").equals("quarantined"), again);

        core.sessionStop();
        check("sessionStop", true, "no exception");

        Path b = writeJpeg(camera.resolve("IMG_0002.jpg"), Color.BLUE);
        String outB = core.onMedia(b.toString());
        check("onMedia after the session returns an outcome", !field(outB, "kind").isEmpty(), outB);

        String tagged = core.tag(item, "CASE-2024-002", "officer-17", "seized phone");
        check("tag returns the item with the new case", tagged.contains("CASE-2024-002"), tagged);

        String list = core.listJson(7);
        check("listJson lists the quarantined item", list.startsWith("[") && list.contains("\"id\":" + item), list);
        check("listJson carries no image data", !list.contains("\"bytes\"") && list.length() < 100_000, "" + list.length());

        String before = core.statsJson();
        check("statsJson counts the quarantine", Pattern.compile("\"[a-z_]*quarantin[a-z_]*\"\\s*:\\s*[1-9]").matcher(before).find(), before);

        // Hand-off: a case package, the receiver's acknowledgement, and a retention pass.
        Path pkg = work.resolve("handoff/CASE-2024-002.zip");
        Files.createDirectories(pkg.getParent());
        String exported = core.export("CASE-2024-002", pkg.toString(), "officer-17");
        check("export writes a case package", Files.isRegularFile(pkg) && exported.contains("package_sha256"), exported);
        expectThrows("export of an unknown case is refused", Code.REFUSED_UNKNOWN_CASE, () -> core.export("NO-SUCH-CASE", work.resolve("x.zip").toString(), null));
        String acked = core.ack("CASE-2024-002", "receiver-1");
        check("ack records the receipt", acked.contains("CASE-2024-002"), acked);
        String dry = core.purge(true);
        check("purge dry run reports, removes nothing", dry.contains("\"dry_run\":true") && !Files.exists(a), dry);
        String purged = core.purge(false);
        check("purge removes nothing before exported_days", purged.contains("\"items\":[]"), purged);

        // Officer's in-app preview, decoded by the core from the store (no content URI).
        byte[] preview = core.previewJpeg(item, 160);
        BufferedImage shown = ImageIO.read(new java.io.ByteArrayInputStream(preview));
        check("previewJpeg returns a JPEG of the stored item, scaled to the asked size",
                preview.length > 3 && (preview[0] & 0xff) == 0xff && (preview[1] & 0xff) == 0xd8 && shown != null
                        && Math.max(shown.getWidth(), shown.getHeight()) <= 160 && shown.getWidth() >= 100,
                shown == null ? "undecodable" : shown.getWidth() + "x" + shown.getHeight());
        String stored = core.itemFile(item);
        check("itemFile names the app-private store file", Files.isRegularFile(Path.of(stored))
                && Path.of(stored).toRealPath().startsWith(files.resolve("quarantine").toRealPath()), stored);
        expectThrows("previewJpeg of an unknown item throws", Code.NO_SUCH_ITEM, () -> core.previewJpeg("999999", 160));
        String health = core.healthJson();
        check("healthJson: model state, media location, backlog, last intake, store health",
                health.contains("\"model_loaded\":false") && health.contains("\"model_error\":\"") && health.contains("\"media_location_access\":true")
                        && health.contains("\"backlog\":\"record\"") && field(health, "last_decided_ms").matches("\\d{13}")
                        && health.contains("\"store\":{\"store\":\"ok\""), health);

        String released = core.release(item, "private", "officer-17");
        check("release returns an outcome for the item", released.contains(item), released);
        expectThrows("previewJpeg after release is refused (no longer in the store)", Code.REFUSED_NOT_QUARANTINED, () -> core.previewJpeg(item, 160));
        expectThrows("release of an unknown item throws", Code.NO_SUCH_ITEM, () -> core.release("999999", "private", null));
        expectThrows("release again is refused (not in the store)", Code.REFUSED_NOT_QUARANTINED, () -> core.release(item, "again", null));
        expectThrows("tag with a null case throws (no crash)", Code.ARGUMENT, () -> core.tag(item, null, null, null));
        expectThrows("tag with a blank case is refused", Code.REFUSED_CASE_ID_REQUIRED, () -> core.tag(item, "  ", null, null));
        expectThrows("a session without a case is refused", Code.REFUSED_CASE_ID_REQUIRED, () -> core.sessionStart(" ", null, 60));

        byte[] jpeg = Files.readAllBytes(writeJpeg(work.resolve("keyframe.jpg"), Color.GREEN));
        try {
            String assessment = core.classifyKeyframe(jpeg);
            check("classifyKeyframe without a model answers null or an assessment",
                    assessment.equals("null") || assessment.contains("case_score"), assessment);
        } catch (FotovaktException e) {
            check("classifyKeyframe without a model reports why", e.getMessage() != null && !e.getMessage().isEmpty(), e.getMessage());
        }
        expectThrows("classifyKeyframe(null) throws", Code.ARGUMENT, () -> core.classifyKeyframe(null));
        Path video = camera.resolve("VID_0001.mp4");
        byte[] mp4 = new byte[4096];
        System.arraycopy("\0\0\0\030ftypisom".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1), 0, mp4, 0, 12);
        Files.write(video, mp4);
        String vid = core.onVideo(video.toString(), jpeg);
        check("onVideo with a keyframe returns an outcome for the video", vid.contains("VID_0001.mp4") && !field(vid, "kind").isEmpty(), vid);

        String reconcile = core.reconcile();
        check("reconcile returns a JSON array", reconcile.startsWith("["), reconcile);

        String stats = core.statsJson();
        check("statsJson is a JSON object", stats.startsWith("{") && stats.endsWith("}"), stats);
        check("statsJson changes after release", !stats.equals(before), stats);
        check("statsJson has no paths or case IDs", !stats.contains("IMG_0001") && !stats.contains("CASE-2024"), stats);

        core.close();
        check("stop", true, "no exception");
        core.close();
        check("stop is idempotent", true, "no exception");
        expectThrows("calls after stop throw", Code.NOT_RUNNING, () -> core.statsJson());

        NativeCore second = NativeCore.start(toml, files.toString(), cache.toString(), "");
        String stats2 = second.statsJson();
        check("restart reopens the same ledger", stats2.equals(stats) || stats2.contains("quarantined"), stats2);
        second.close();

        managedConfig(work.resolve("managed"));
        backlog(work.resolve("backlog"));
        deviceKey(work.resolve("device-key"));
        ShellChecks shell = new ShellChecks(this, models);
        shell.run(work.resolve("shell"));
        new CaptureChecks(this).run(work.resolve("capture"));
        if (models != null) {
            frames(work.resolve("frames"));
            agencyHead(work.resolve("agency-head"));
        } else {
            System.out.println("skip frame-source checks: no models dir given");
        }
    }

    /**
     * A device key as the Keystore makes one: EC P-256, SHA256withECDSA, DER signatures (the
     * JCA calls KeystoreSigner makes, minus the AndroidKeyStore provider the host has not).
     */
    private static final class JcaSigner implements DeviceSigner {
        final java.security.KeyPair pair;
        final java.security.PrivateKey signingKey;
        final List<String> calls = java.util.Collections.synchronizedList(new ArrayList<>());

        JcaSigner(java.security.KeyPair pair, java.security.PrivateKey signingKey) {
            this.pair = pair;
            this.signingKey = signingKey;
        }

        static java.security.KeyPair p256() throws Exception {
            java.security.KeyPairGenerator g = java.security.KeyPairGenerator.getInstance("EC");
            g.initialize(new java.security.spec.ECGenParameterSpec("secp256r1"));
            return g.generateKeyPair();
        }

        @Override public String algorithm() { return "ecdsa-p256-sha256"; }
        @Override public byte[] publicKey() { return pair.getPublic().getEncoded(); }
        @Override public String provider() { return "android_strongbox"; }
        @Override public byte[][] attestationChain() {
            return new byte[][] {"leaf-certificate".getBytes(java.nio.charset.StandardCharsets.US_ASCII), "root-certificate".getBytes(java.nio.charset.StandardCharsets.US_ASCII)};
        }
        @Override public byte[] sign(byte[] message) throws Exception {
            calls.add(Thread.currentThread().getName());
            java.security.Signature s = java.security.Signature.getInstance("SHA256withECDSA");
            s.initSign(signingKey);
            s.update(message);
            return s.sign();
        }
    }

    private static String sha256Hex(byte[] bytes) throws Exception {
        StringBuilder hex = new StringBuilder();
        for (byte b : java.security.MessageDigest.getInstance("SHA-256").digest(bytes)) {
            hex.append(String.format("%02x", b));
        }
        return hex.toString();
    }

    private static boolean verifies(java.security.PublicKey key, String message, String base64Signature) throws Exception {
        java.security.Signature s = java.security.Signature.getInstance("SHA256withECDSA");
        s.initVerify(key);
        s.update(message.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        return s.verify(java.util.Base64.getDecoder().decode(base64Signature));
    }

    /** The device key through the bridge: install, sign packages and checkpoints, encrypted hand-off. */
    private void deviceKey(Path work) throws Exception {
        Path camera = Files.createDirectories(work.resolve("camera/DCIM/Camera"));
        Path files = Files.createDirectories(work.resolve("files"));
        java.security.KeyPair pair = JcaSigner.p256();
        expectThrows("a device signer that signs with another key than its public one is refused", Code.IO,
                () -> NativeCore.setDeviceSigner(new JcaSigner(pair, JcaSigner.p256().getPrivate())));
        JcaSigner signer = new JcaSigner(pair, pair.getPrivate());
        String fp = NativeCore.setDeviceSigner(signer);
        check("setDeviceSigner answers the key's fingerprint: SHA-256 of its SubjectPublicKeyInfo",
                fp.equals(sha256Hex(pair.getPublic().getEncoded())), fp);
        NativeCore.setAutoTime(false);
        String toml = "store = \"" + files.resolve("quarantine") + "\"\ncameras = [\"" + camera + "\"]\n[classifier]\nenabled = false\n";
        NativeCore core = NativeCore.start(toml, files.toString(), "", "");
        core.sessionStart("CASE-K", "officer-17", 600);
        String out = core.onMedia(writeJpeg(camera.resolve("IMG_K1.jpg"), Color.ORANGE).toString());
        check("a photo quarantined with the Keystore-style key installed", field(out, "kind").equals("quarantined"), out);
        String health = core.healthJson();
        check("healthJson names the device key the shell installed",
                health.contains("\"fingerprint\":\"" + fp + "\"") && health.contains("\"provider\":\"android_strongbox\"")
                        && health.contains("\"algorithm\":\"ecdsa-p256-sha256\""), health);
        Matcher cp = Pattern.compile("\"checkpoint\":\\{\"format\":\"fotovakt-checkpoint-v1\",\"seq\":(\\d+),\"hash\":\"([0-9a-f]{64})\",\"at_ms\":(\\d+).*?\"signature\":\"([^\"]+)\"").matcher(health);
        check("healthJson carries the newest checkpoint, signed in the Keystore: it verifies with the public key in Java",
                cp.find() && verifies(pair.getPublic(), "fotovakt-checkpoint-v1\n" + cp.group(1) + "\n" + cp.group(2) + "\n" + cp.group(3) + "\n" + fp + "\n", cp.group(4)),
                health);
        check("the core asked the shell to sign (the key never left it)", !signer.calls.isEmpty(), "" + signer.calls);
        String stats = core.statsJson();
        check("statsJson: device key fingerprint and automatic time off, as the shell said",
                stats.contains(fp) && Pattern.compile("\"auto_time\"\\s*:\\s*false").matcher(stats).find(), stats);

        Path pkg = work.resolve("handoff/CASE-K.zip");
        Files.createDirectories(pkg.getParent());
        String exported = core.exportTo("CASE-K", pkg.toString(), "officer-17", java.util.Collections.<String>emptyList());
        check("exportTo without recipients: a plain package, signed by the device key", exported.contains("\"signer\":\"" + fp + "\""), exported);
        try (java.util.zip.ZipFile z = new java.util.zip.ZipFile(pkg.toFile())) {
            String sig = new String(z.getInputStream(z.getEntry("package.sig")).readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
            String digest = new String(z.getInputStream(z.getEntry("package.sha256")).readAllBytes(), java.nio.charset.StandardCharsets.UTF_8).trim();
            check("package.sig: the Keystore's signature over the package digest verifies in Java, with the attestation chain carried",
                    verifies(pair.getPublic(), "fotovakt-package-signature-v1\n" + digest + "\n", field(sig, "signature"))
                            && field(sig, "algorithm").equals("ecdsa-p256-sha256") && field(sig, "digest").equals(digest)
                            && sig.contains(java.util.Base64.getEncoder().encodeToString("leaf-certificate".getBytes(java.nio.charset.StandardCharsets.US_ASCII))),
                    sig);
        }

        // The hand-off screen's recipients come from managed configuration.
        String good = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
        ManagedSettings ms = ManagedSettings.parse(map("handoff_recipients", good + ",\nage1nope"));
        check("handoff_recipients: age keys kept, a bad one reported and left out",
                ms.handoffRecipients.equals(java.util.Collections.singletonList(good)) && ms.problems.containsKey("handoff_recipients"),
                ms.handoffRecipients + " " + ms.problems);
        check("handoff_recipients: none by default", ManagedSettings.defaults().handoffRecipients.isEmpty(), "");
        Path sealed = work.resolve("handoff/CASE-K.zip.age");
        String enc = core.exportTo("CASE-K", sealed.toString(), "officer-17", ms.handoffRecipients);
        byte[] head = java.util.Arrays.copyOf(Files.readAllBytes(sealed), 32);
        check("exportTo with the managed recipients: an age file, the ledger records them",
                new String(head, java.nio.charset.StandardCharsets.ISO_8859_1).startsWith("age-encryption.org/v1\n-> X25519 ")
                        && enc.contains(good) && field(enc, "sealed_sha256").equals(sha256Hex(Files.readAllBytes(sealed))), enc);
        expectThrows("exportTo with a recipient that is not an age key throws", Code.ARGUMENT,
                () -> core.exportTo("CASE-K", work.resolve("handoff/x.zip.age").toString(), null, java.util.Collections.singletonList("age1nope")));

        // A lost head anchor: reported by verify, cleared by an officer with an audited event.
        expectThrows("anchor while the head is there is refused", Code.REFUSED_HEAD_PRESENT, () -> core.anchor("nothing wrong", null));
        Files.delete(files.resolve("quarantine/ledger.head"));
        String anchored = core.anchor("restored from a backup without its head", "officer-17");
        check("anchor records the re-anchoring", anchored.contains("\"found\":\"missing\""), anchored);
        check("anchor wrote a new head", Files.isRegularFile(files.resolve("quarantine/ledger.head")), "");
        core.close();
        NativeCore.setDeviceSigner(null);
        NativeCore.setAutoTime(null);
    }

    /** Repository models/ (argument 2), for the checks that need the real classifier. */
    private Path models;

    private static ManagedSettings.Device device(Path files, Path shared, boolean location) {
        return new ManagedSettings.Device(files.toString(), shared.toString(), location, null, null);
    }

    static Map<String, Object> map(Object... kv) {
        Map<String, Object> m = new HashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    /**
     * Managed configuration as the EMM sends it (a restrictions Bundle, here the same map the
     * app builds from it) -> ManagedSettings (the app's own code) -> TOML -> the real core:
     * what the managed-config text promises must be what the core does.
     */
    private void managedConfig(Path work) throws Exception {
        Path shared = Files.createDirectories(work.resolve("storage/emulated/0"));
        Path camera = Files.createDirectories(shared.resolve("DCIM/Camera"));
        Path files = Files.createDirectories(work.resolve("files"));

        ManagedSettings d = ManagedSettings.defaults();
        String eff = NativeCore.checkConfig(d.toToml(device(files, shared, true)), files.toString());
        check("defaults: no problems, and the core reads them as documented",
                d.problems.isEmpty() && eff.contains("\"shifts\":[]") && eff.contains("\"media_location_access\":true")
                        && eff.contains("\"backlog\":\"record\"") && eff.contains(camera.toString()) && !eff.contains("Pictures"), eff);
        // The core writes durations in humantime's words: 90 days are "2months 29days 2h 52m 48s".
        check("privacy defaults reach the core: personal decisions 7 days, corrections 90 days",
                field(eff, "keep_personal_decisions").equals("7days")
                        && field(eff, "keep_corrections").equals("2months 29days 2h 52m 48s"), eff);
        ManagedSettings priv = ManagedSettings.parse(map("keep_personal_decisions", "1D 12h", "keep_corrections", "forever"));
        String effPriv = NativeCore.checkConfig(priv.toToml(device(files, shared, true)), files.toString());
        check("keep_personal_decisions from the EMM reaches the core; a bad keep_corrections is reported, its default used",
                field(effPriv, "keep_personal_decisions").equals("1day 12h")
                        && field(effPriv, "keep_corrections").equals(field(eff, "keep_corrections"))
                        && priv.problems.containsKey("keep_corrections") && !priv.problems.containsKey("keep_personal_decisions"),
                effPriv + " " + priv.problems);
        String noLocation = NativeCore.checkConfig(d.toToml(device(files, shared, false)), files.toString());
        check("ACCESS_MEDIA_LOCATION missing -> media_location_access = false in the core",
                noLocation.contains("\"media_location_access\":false"), noLocation);

        // Empty schedule: never on duty (the core's default), so an unjudged photo is kept.
        NativeCore never = NativeCore.start(d.toToml(device(files, shared, true)), files.toString(), "", "");
        Path p1 = writeJpeg(camera.resolve("IMG_E1.jpg"), Color.ORANGE);
        String o1 = never.onMedia(p1.toString());
        check("empty duty_schedule: off duty, unjudged photo kept where it is",
                field(o1, "kind").equals("kept") && field(o1, "source").equals("default") && Files.exists(p1), o1);
        never.close();

        // keep_personal_decisions through the bridge: the personal photo gets no item number, and
        // once the time is up the reconcile tick forgets the decision; the photo is not judged again.
        NativeCore brief = NativeCore.start(ManagedSettings.parse(map("keep_personal_decisions", "1s"))
                .toToml(device(files, shared, true)), files.toString(), "", "");
        Path p3 = writeJpeg(camera.resolve("IMG_P1.jpg"), Color.MAGENTA);
        String kept = brief.onMedia(p3.toString());
        check("a personal photo: kept, a keyed record only (no item number)",
                field(kept, "kind").equals("kept") && field(kept, "item").equals("null") && Files.exists(p3), kept);
        Thread.sleep(2_200);
        String tick = brief.reconcile();
        String again = brief.onMedia(p3.toString());
        check("after keep_personal_decisions the reconcile tick forgets it, and it is not decided again",
                tick.equals("[]") && field(again, "kind").equals("kept") && field(again, "rule").contains("forgotten"), tick + " " + again);
        brief.close();

        // "always": on duty around the clock, so the same kind of photo is quarantined.
        ManagedSettings always = ManagedSettings.parse(map("duty_schedule", "always"));
        String effAlways = NativeCore.checkConfig(always.toToml(device(files, shared, true)), files.toString());
        check("duty_schedule \"always\" -> one all-week 00:00-24:00 shift",
                effAlways.contains("\"start\":\"00:00\",\"end\":\"24:00\"") && effAlways.contains("\"sun\""), effAlways);
        NativeCore onDuty = NativeCore.start(always.toToml(device(files, shared, true)), files.toString(), "", "");
        Path p2 = writeJpeg(camera.resolve("IMG_A1.jpg"), Color.CYAN);
        String o2 = onDuty.onMedia(p2.toString());
        check("duty_schedule always: unjudged photo quarantined by duty hours",
                field(o2, "kind").equals("quarantined") && field(o2, "source").equals("duty_hours") && !Files.exists(p2), o2);
        onDuty.close();

        ManagedSettings weekly = ManagedSettings.parse(map("duty_schedule", "Mon-Fri 07:00-15:30; sat 22:00-06:00"));
        String effWeekly = NativeCore.checkConfig(weekly.toToml(device(files, shared, true)), files.toString());
        check("weekly schedule with an overnight shift reaches the core intact",
                weekly.problems.isEmpty() && effWeekly.contains("\"days\":[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"],\"start\":\"07:00\",\"end\":\"15:30\"")
                        && effWeekly.contains("\"days\":[\"sat\"],\"start\":\"22:00\",\"end\":\"06:00\""), effWeekly);

        // Work sites: decimal commas (as Norwegian admins write them) are decimals, not separators.
        ManagedSettings sites = ManagedSettings.parse(map("work_sites",
                "Politihuset;59,9139;10,7522;150\nGardermoen;60.1976;11.1004;2000|Bad;95;10;100\nnot a site"));
        String effSites = NativeCore.checkConfig(sites.toToml(device(files, shared, true)), files.toString());
        check("work sites with decimal commas reach the core as numbers",
                effSites.contains("\"name\":\"Politihuset\",\"lat\":59.9139,\"lon\":10.7522,\"radius_m\":150.0")
                        && effSites.contains("\"name\":\"Gardermoen\",\"lat\":60.1976"), effSites);
        check("bad work sites are reported (and left out), good ones kept",
                sites.workSites.size() == 2 && sites.problems.containsKey("work_sites")
                        && sites.problems.get("work_sites").contains("Bad;95") && sites.problems.get("work_sites").contains("not a site"),
                String.valueOf(sites.problems));

        // Bad values come back per key (keyed app-state errors), defaults used, the core still starts.
        ManagedSettings bad = ManagedSettings.parse(map(
                "case_threshold", "1.5", "reconcile_minutes", 2, "retention_days", "ninety", "backlog", "delete",
                "duty_schedule", "mon-fri 7-15; sat 08:00-14:00", "report_stats", "yes", "camera_folders", "../etc, DCIM/Camera",
                "camera_packages", "not a package", "keep_personal_decisions", "0s", "surprise", "x"));
        check("bad values reported per key", bad.problems.keySet().containsAll(java.util.Arrays.asList(
                "case_threshold", "reconcile_minutes", "retention_days", "backlog", "duty_schedule", "report_stats",
                "camera_folders", "camera_packages", "keep_personal_decisions", "surprise")), String.valueOf(bad.problems));
        check("bad values fall back to the defaults (clamped where a range applies)",
                bad.caseThreshold == null && bad.reconcileMinutes == 5 && bad.retentionDays == 90 && bad.backlog.equals("record")
                        && bad.reportStats && bad.shifts.size() == 1 && bad.cameraFolders.equals(java.util.Collections.singletonList("DCIM/Camera")),
                bad.reconcileMinutes + " " + bad.retentionDays + " " + bad.shifts.size() + " " + bad.cameraFolders);
        String effBad = NativeCore.checkConfig(bad.toToml(device(files, shared, true)), files.toString());
        check("the core accepts the TOML of a config with bad values", effBad.contains("\"reconcile_interval\""), effBad);
        ManagedSettings good = ManagedSettings.parse(map("case_threshold", "0,35", "officer_id", " officer-42 ", "camera_folders",
                "DCIM/Camera, /storage/1234-5678/DCIM/Camera", "reconcile_minutes", "30"));
        String effGood = NativeCore.checkConfig(good.toToml(device(files, shared, true)), files.toString());
        check("threshold with a decimal comma, SD-card folder, officer",
                good.problems.isEmpty() && effGood.contains("\"threshold\":0.35") && effGood.contains("/storage/1234-5678/DCIM/Camera")
                        && "officer-42".equals(good.officerId) && effGood.contains("\"reconcile_interval\":\"30m\""), effGood + " " + good.problems);
        expectThrows("the core itself rejects an out-of-range work site (a second line of defence)", Code.CONFIG,
                () -> NativeCore.checkConfig("[[work_sites]]\nname = \"x\"\nlat = 95.0\nlon = 0.0\nradius_m = 1.0\n", files.toString()));
        expectThrows("checkConfig reports an unknown key", Code.CONFIG, () -> NativeCore.checkConfig("surprise = 1\n", files.toString()));
    }

    /**
     * An agency's own head through managed configuration: the pinned file on shared storage is
     * installed into filesDir and the real core decides with it; a wrong pin, a missing file and
     * a head fitted for another model are refused, and the core keeps running without the
     * classifier, saying why in healthJson.
     */
    private void agencyHead(Path work) throws Exception {
        Path shared = Files.createDirectories(work.resolve("storage/emulated/0"));
        Path camera = Files.createDirectories(shared.resolve("DCIM/Camera"));
        Path files = Files.createDirectories(work.resolve("files"));
        Path pushed = Files.createDirectories(shared.resolve("Download/fotovakt")).resolve("agency_head.json");
        Files.copy(models.resolve("case_head.json"), pushed);
        String sha = AgencyHead.sha256(pushed.toFile());
        String model = models.resolve("efficientnet_lite0.int8.onnx").toString();

        ManagedSettings noPin = ManagedSettings.parse(map("case_head_file", "Download/fotovakt/agency_head.json"));
        check("case_head_file without its SHA-256: reported, the shipped head is used",
                noPin.caseHeadFile == null && noPin.problems.containsKey("case_head_sha256"), String.valueOf(noPin.problems));
        ManagedSettings s = ManagedSettings.parse(map("case_head_file", "Download/fotovakt/agency_head.json", "case_head_sha256", sha.toUpperCase()));
        check("case_head_file with its SHA-256 parses", s.problems.isEmpty() && sha.equals(s.caseHeadSha256), String.valueOf(s.problems));
        AgencyHead.Result r = AgencyHead.install(s.caseHeadFile, s.caseHeadSha256, shared.toString(), files.toString());
        check("the pinned agency head is installed into filesDir/models",
                r.ok() && r.path.equals(files.resolve("models/" + AgencyHead.INSTALLED).toString()) && AgencyHead.sha256(new File(r.path)).equals(sha),
                r.error);
        String toml = s.toToml(new ManagedSettings.Device(files.toString(), shared.toString(), true, model, r.path))
                .replace("ort_dylib = \"libonnxruntime.so\"\n", "");
        NativeCore core = NativeCore.start(toml, files.toString(), "", "");
        String health = core.healthJson();
        check("the core loads the agency head", health.contains("\"model_loaded\":true"), health);
        core.close();

        Files.delete(pushed);
        AgencyHead.Result kept = AgencyHead.install(s.caseHeadFile, s.caseHeadSha256, shared.toString(), files.toString());
        check("the shared file gone: the copy installed with the same pin is used", kept.ok(), kept.error);
        AgencyHead.Result other = AgencyHead.install(s.caseHeadFile, "ab".repeat(32), shared.toString(), files.toString());
        check("another pin and no such file: refused, never another head", !other.ok() && other.error.contains("not found"), other.error);
        Files.write(pushed, "{\"tampered\":true}".getBytes(java.nio.charset.StandardCharsets.UTF_8));
        AgencyHead.Result tampered = AgencyHead.install(s.caseHeadFile, s.caseHeadSha256, shared.toString(), files.toString());
        check("a changed file on shared storage: refused, both hashes named",
                !tampered.ok() && tampered.error.contains(sha) && tampered.error.contains("head refused"), tampered.error);

        // A head fitted for another model: the core refuses it and runs on without the classifier.
        String text = new String(Files.readAllBytes(models.resolve("case_head.json")), java.nio.charset.StandardCharsets.UTF_8);
        String modelSha = AgencyHead.sha256(new File(model));
        Files.write(pushed, text.replace(modelSha, "0".repeat(64)).getBytes(java.nio.charset.StandardCharsets.UTF_8));
        String otherSha = AgencyHead.sha256(pushed.toFile());
        ManagedSettings s2 = ManagedSettings.parse(map("case_head_file", pushed.toString(), "case_head_sha256", otherSha));
        AgencyHead.Result r2 = AgencyHead.install(s2.caseHeadFile, s2.caseHeadSha256, shared.toString(), files.toString());
        check("an absolute case_head_file is installed", r2.ok(), r2.error);
        String toml2 = s2.toToml(new ManagedSettings.Device(files.toString(), shared.toString(), true, model, r2.path))
                .replace("ort_dylib = \"libonnxruntime.so\"\n", "");
        NativeCore refused = NativeCore.start(toml2, files.toString(), "", "");
        String h2 = refused.healthJson();
        check("a head for another model: refused by the core with both hashes, the agent keeps running",
                h2.contains("\"model_loaded\":false") && h2.contains("0".repeat(64)) && h2.contains(modelSha) && h2.contains("head refused"), h2);
        Path photo = writeJpeg(camera.resolve("IMG_H1.jpg"), Color.GREEN);
        String o = refused.onMedia(photo.toString());
        check("without the classifier the photo is decided by context", field(o, "score").equals("null") && !field(o, "kind").isEmpty(), o);
        refused.close();
    }

    /** First run: what was in the camera folder before install is recorded, and nothing moves. */
    private void backlog(Path work) throws Exception {
        Path shared = Files.createDirectories(work.resolve("storage/emulated/0"));
        Path camera = Files.createDirectories(shared.resolve("DCIM/Camera"));
        Path files = Files.createDirectories(work.resolve("files"));
        Path old1 = writeJpeg(camera.resolve("IMG_OLD1.jpg"), Color.PINK);
        Path old2 = writeJpeg(camera.resolve("IMG_OLD2.jpg"), Color.MAGENTA);
        // On duty around the clock: without the backlog policy these would all be quarantined.
        ManagedSettings s = ManagedSettings.parse(map("duty_schedule", "always"));
        NativeCore core = NativeCore.start(s.toToml(device(files, shared, true)), files.toString(), "", "");
        String out = core.recordBacklog();
        check("backlog = record: every file recorded as kept by the backlog rule, none moved",
                out.split("\"kind\":\"kept\"", -1).length - 1 == 2 && out.contains("backlog") && Files.exists(old1) && Files.exists(old2), out);
        String rec = core.reconcile();
        check("reconcile after the backlog leaves the recorded files alone", Files.exists(old1) && Files.exists(old2) && !rec.contains("quarantined"), rec);
        Path fresh = writeJpeg(camera.resolve("IMG_NEW1.jpg"), Color.YELLOW);
        String o = core.onMedia(fresh.toString());
        check("a photo taken after install is decided as usual (on duty: quarantined)", field(o, "kind").equals("quarantined"), o);
        check("recordBacklog again finds nothing new", core.recordBacklog().equals("[]"), "");
        core.close();

        Path work2 = work.resolve("q");
        Path shared2 = Files.createDirectories(work2.resolve("storage/emulated/0"));
        Path camera2 = Files.createDirectories(shared2.resolve("DCIM/Camera"));
        Path files2 = Files.createDirectories(work2.resolve("files"));
        Path old3 = writeJpeg(camera2.resolve("IMG_OLD3.jpg"), Color.GRAY);
        ManagedSettings q = ManagedSettings.parse(map("duty_schedule", "always", "backlog", "quarantine"));
        NativeCore core2 = NativeCore.start(q.toToml(device(files2, shared2, true)), files2.toString(), "", "");
        String out2 = core2.recordBacklog();
        check("backlog = quarantine: old photos decided like new ones", out2.contains("\"kind\":\"quarantined\"") && !Files.exists(old3), out2);
        core2.close();
    }

    /** A FrameSource as the app's PlatformFrames: records calls, answers a JPEG, nothing, or throws. */
    private static final class Frames implements FrameSource {
        final List<String> calls = java.util.Collections.synchronizedList(new ArrayList<>());
        final byte[] jpeg;

        Frames(byte[] jpeg) {
            this.jpeg = jpeg;
        }

        @Override
        public byte[] frame(String path, String kind) {
            // Out of sight first: a new file is judged where it waits, in the staging folder, as
            // `<inode>-<name>`; the call is recorded under its camera name, marked staged.
            Path p = Path.of(path);
            String name = p.getFileName().toString();
            boolean staged = p.getParent() != null && p.getParent().getFileName().toString().equals(".fotovakt-staging");
            if (staged) {
                name = name.replaceFirst("^\\d+-", "");
            }
            calls.add(kind + " " + name + (staged ? " (staged)" : "") + " " + Thread.currentThread().getName());
            if (path.contains("THROW")) {
                throw new IllegalStateException("decoder broke");
            }
            return path.contains("NOFRAME") ? null : jpeg;
        }
    }

    /**
     * Videos and HEIC with the real classifier: the core asks the frame source after hashing,
     * on every path that finds the file (onMedia, reconcile, the core's watcher thread).
     */
    private void frames(Path work) throws Exception {
        Path shared = Files.createDirectories(work.resolve("storage/emulated/0"));
        Path camera = Files.createDirectories(shared.resolve("DCIM/Camera"));
        Path files = Files.createDirectories(work.resolve("files"));
        byte[] jpeg = Files.readAllBytes(writeJpeg(work.resolve("frame.jpg"), Color.DARK_GRAY));
        Frames source = new Frames(jpeg);
        NativeCore.setFrameSource(source);
        ManagedSettings s = ManagedSettings.defaults();
        ManagedSettings.Device dev = new ManagedSettings.Device(files.toString(), shared.toString(), true,
                models.resolve("efficientnet_lite0.int8.onnx").toString(), models.resolve("case_head.json").toString());
        // The host finds ONNX Runtime the CLI's way (no ort_dylib line: pip's onnxruntime or ORT_DYLIB_PATH).
        String toml = s.toToml(dev).replace("ort_dylib = \"libonnxruntime.so\"\n", "");
        NativeCore core = NativeCore.start(toml, files.toString(), "", "");
        String health = core.healthJson();
        if (!health.contains("\"model_loaded\":true")) {
            System.out.println("skip frame-source checks: classifier not loadable on this host: " + health);
            core.close();
            NativeCore.setFrameSource(null);
            return;
        }
        check("healthJson: model loaded", health.contains("\"model_error\":null"), health);

        Path video = writeMp4(camera.resolve("VID_F1.mp4"));
        String v = core.onMedia(video.toString());
        check("onMedia of a video: the core asked the frame source and scored the frame",
                source.calls.stream().anyMatch(c -> c.startsWith("video VID_F1.mp4")) && !field(v, "score").isEmpty() && !field(v, "score").equals("null"), v + " " + source.calls);
        Path heic = camera.resolve("IMG_F2.heic");
        byte[] h = new byte[2048];
        System.arraycopy("\0\0\0\030ftypheic\0\0\0\0".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1), 0, h, 0, 16);
        Files.write(heic, h);
        String hv = core.onMedia(heic.toString());
        check("onMedia of a HEIC photo: platform frame asked for (kind heif) and scored",
                source.calls.stream().anyMatch(c -> c.startsWith("heif IMG_F2.heic")) && !field(hv, "score").equals("null") && !field(hv, "score").isEmpty(), hv);
        String none = core.onMedia(writeMp4(camera.resolve("VID_NOFRAME.mp4")).toString());
        check("no frame from the platform: decided by context, no score", field(none, "score").equals("null") && !field(none, "kind").isEmpty(), none);
        String threw = core.onMedia(writeMp4(camera.resolve("VID_THROW.mp4")).toString());
        check("a frame source that throws: cleared, decided by context, no crash", field(threw, "score").equals("null") && !field(threw, "kind").isEmpty(), threw);
        check("the bridge is still usable after a Java exception in a callback", core.statsJson().startsWith("{"), "");

        // Found by reconcile: same frame-based decision.
        NativeCore.setFrameSource(null);
        core.close();
        Path late = writeMp4(camera.resolve("VID_F3.mp4"));
        Files.setLastModifiedTime(late, java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() - 60_000));
        NativeCore.setFrameSource(source);
        NativeCore again = NativeCore.start(toml, files.toString(), "", "");
        source.calls.clear();
        String rec = again.reconcile();
        check("reconcile of a video: frame asked for and scored",
                source.calls.stream().anyMatch(c -> c.startsWith("video VID_F3.mp4")) && rec.contains("VID_F3.mp4") && !rec.contains("\"score\":null,\"handle_ms\"") , rec + " " + source.calls);

        // Found by the core's own watcher (a Rust thread, attached to the JVM for the call),
        // which the shell starts once the backlog is done.
        check("the core's watcher starts on request", again.startWatcher() && again.healthJson().contains("\"watching\":true"), again.healthJson());
        source.calls.clear();
        Path watched = writeMp4(camera.resolve("VID_W1.mp4"));
        String watchedCall = null;
        for (int i = 0; i < 100 && watchedCall == null; i++) {
            Thread.sleep(100);
            synchronized (source.calls) {
                watchedCall = source.calls.stream().filter(c -> c.startsWith("video VID_W1.mp4")).findFirst().orElse(null);
            }
        }
        String mainThread = Thread.currentThread().getName();
        check("the core's watcher asks the frame source from its own thread",
                watchedCall != null && !watchedCall.endsWith(" " + mainThread), watchedCall + " (main: " + mainThread + ")");
        String list = again.listJson(1);
        again.close();
        NativeCore.setFrameSource(null);
        check("the watched video is decided (ledger has it)", list.contains("VID_W1.mp4") || list.startsWith("["), list.length() + " chars");
    }

    static Path writeMp4(Path path) throws IOException {
        byte[] mp4 = new byte[4096];
        System.arraycopy("\0\0\0\030ftypisom".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1), 0, mp4, 0, 12);
        mp4[100] = (byte) path.getFileName().toString().hashCode(); // distinct content per file
        mp4[101] = (byte) (path.getFileName().toString().hashCode() >> 8);
        Files.write(path, mp4);
        return path;
    }

    static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + name + "\"\\s*:\\s*(\"([^\"]*)\"|(-?[0-9.]+|null|true|false))").matcher(json);
        if (!m.find()) {
            return "";
        }
        return m.group(2) != null ? m.group(2) : m.group(3);
    }

    static Path writeJpeg(Path path, Color color) throws IOException {
        BufferedImage img = new BufferedImage(320, 240, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setColor(color);
        g.fillRect(0, 0, 320, 240);
        g.setColor(Color.WHITE);
        g.drawString(path.getFileName().toString(), 20, 120);
        g.dispose();
        if (!ImageIO.write(img, "jpg", path.toFile())) {
            throw new IOException("no JPEG writer");
        }
        return path;
    }

    interface Body {
        void run() throws Exception;
    }

    /**
     * {@code body} throws a FotovaktException with {@code code}, as a RefusedException exactly
     * when the code is a refusal: the app branches on these, so they are the bridge's contract.
     */
    void expectThrows(String name, Code code, Body body) {
        try {
            body.run();
            fail(name, "no exception");
        } catch (FotovaktException e) {
            boolean refused = e instanceof RefusedException;
            check(name, e.getCode() == code && refused == code.isRefusal() && e.getMessage() != null && !e.getMessage().isEmpty(),
                    e.getClass().getSimpleName() + " " + e.getCode() + " (expected " + code + "): " + e.getMessage());
        } catch (Throwable t) {
            fail(name, "wrong exception " + t);
        }
    }

    /** Every code the core can throw is a Code constant, and every constant but UNKNOWN is one. */
    private void checkErrorCodes() {
        java.util.Set<String> rust = new java.util.LinkedHashSet<>(java.util.Arrays.asList(NativeCore.errorCodes().split("\n")));
        java.util.Set<String> java = new java.util.LinkedHashSet<>();
        for (Code c : Code.values()) {
            if (c != Code.UNKNOWN) {
                java.add(c.name());
            }
        }
        check("error codes: the core's " + rust.size() + " codes are exactly FotovaktException.Code's", rust.equals(java),
                "core " + rust + " java " + java);
        check("error codes: an unknown name reads as UNKNOWN", Code.of("NO_SUCH_CODE") == Code.UNKNOWN && Code.of(null) == Code.UNKNOWN, "");
    }

    void check(String name, boolean ok, String detail) {
        if (ok) {
            passed++;
            System.out.println("ok   " + name);
        } else {
            fail(name, detail);
        }
    }

    void fail(String name, String detail) {
        failed++;
        String d = detail == null ? "" : detail.length() > 400 ? detail.substring(0, 400) + "..." : detail;
        failures.add(name + ": " + d);
        System.out.println("FAIL " + name + ": " + d);
    }

    static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (var s = Files.walk(p)) {
            s.sorted((x, y) -> y.compareTo(x)).map(Path::toFile).forEach(File::delete);
        }
    }
}
