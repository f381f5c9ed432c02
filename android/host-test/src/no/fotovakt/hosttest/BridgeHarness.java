package no.fotovakt.hosttest;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import no.fotovakt.core.FotovaktException;
import no.fotovakt.core.NativeCore;

/**
 * Drives the JNI bridge (src/android.rs built for the host as a cdylib) through the very
 * NativeCore class the app ships, calling every native method and checking the results.
 *
 * Run: java -Djava.library.path=DIR_WITH_libfotovakt.so -cp CLASSES no.fotovakt.hosttest.BridgeHarness WORKDIR
 * Prints one line per check and a closing "N passed, N failed".
 */
public final class BridgeHarness {
    private int passed;
    private int failed;
    private final List<String> failures = new ArrayList<>();

    public static void main(String[] args) throws Exception {
        Path work = Path.of(args.length > 0 ? args[0] : "build-check/host-run");
        BridgeHarness h = new BridgeHarness();
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

        // Config as CoreConfig.kt writes it: store in filesDir, no model on the host.
        String toml = "store = \"" + files.resolve("quarantine") + "\"\n"
                + "cameras = [\"" + camera + "\"]\n"
                + "[classifier]\nenabled = false\n";
        expectThrows("start with a bad config", () -> NativeCore.start("cameras = 7", files.toString(), cache.toString(), ""));
        NativeCore core = NativeCore.start(toml, files.toString(), cache.toString(), "/nonexistent");
        check("start", core != null, "handle");

        // A case session makes every new photo case material, with no model needed.
        core.sessionStart("CASE-2024-001", 3600);
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
        expectThrows("export of an unknown case throws", () -> core.export("NO-SUCH-CASE", work.resolve("x.zip").toString(), null));
        String acked = core.ack("CASE-2024-002", "receiver-1");
        check("ack records the receipt", acked.contains("CASE-2024-002"), acked);
        String dry = core.purge(true);
        check("purge dry run reports, removes nothing", dry.contains("\"dry_run\":true") && !Files.exists(a), dry);
        String purged = core.purge(false);
        check("purge removes nothing before exported_days", purged.contains("\"items\":[]"), purged);

        String released = core.release(item, "private", "officer-17");
        check("release returns an outcome for the item", released.contains(item), released);
        expectThrows("release of an unknown item throws", () -> core.release("999999", "private", null));
        expectThrows("tag with a null case throws (no crash)", () -> core.tag(item, null, null, null));

        byte[] jpeg = Files.readAllBytes(writeJpeg(work.resolve("keyframe.jpg"), Color.GREEN));
        try {
            String assessment = core.classifyKeyframe(jpeg);
            check("classifyKeyframe without a model answers null or an assessment",
                    assessment.equals("null") || assessment.contains("case_score"), assessment);
        } catch (FotovaktException e) {
            check("classifyKeyframe without a model reports why", e.getMessage() != null && !e.getMessage().isEmpty(), e.getMessage());
        }
        expectThrows("classifyKeyframe(null) throws", () -> core.classifyKeyframe(null));
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
        expectThrows("calls after stop throw", () -> core.statsJson());

        NativeCore second = NativeCore.start(toml, files.toString(), cache.toString(), "");
        String stats2 = second.statsJson();
        check("restart reopens the same ledger", stats2.equals(stats) || stats2.contains("quarantined"), stats2);
        second.close();
    }

    private static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + name + "\"\\s*:\\s*(\"([^\"]*)\"|(-?[0-9.]+|null|true|false))").matcher(json);
        if (!m.find()) {
            return "";
        }
        return m.group(2) != null ? m.group(2) : m.group(3);
    }

    private static Path writeJpeg(Path path, Color color) throws IOException {
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

    private interface Body {
        void run() throws Exception;
    }

    private void expectThrows(String name, Body body) {
        try {
            body.run();
            fail(name, "no exception");
        } catch (FotovaktException e) {
            check(name, true, "FotovaktException: " + e.getMessage());
        } catch (Throwable t) {
            fail(name, "wrong exception " + t);
        }
    }

    private void check(String name, boolean ok, String detail) {
        if (ok) {
            passed++;
            System.out.println("ok   " + name);
        } else {
            fail(name, detail);
        }
    }

    private void fail(String name, String detail) {
        failed++;
        String d = detail == null ? "" : detail.length() > 400 ? detail.substring(0, 400) + "..." : detail;
        failures.add(name + ": " + d);
        System.out.println("FAIL " + name + ": " + d);
    }

    private static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (var s = Files.walk(p)) {
            s.sorted((x, y) -> y.compareTo(x)).map(Path::toFile).forEach(File::delete);
        }
    }
}
