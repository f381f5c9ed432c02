package no.fotovakt.hosttest;

import java.awt.Color;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import no.fotovakt.core.FotovaktException.Code;
import no.fotovakt.core.NativeCore;
import no.fotovakt.core.ReturnListener;

/**
 * The case camera and the stash through the bridge (issue 25): a photo the camera app wrote
 * into the app's own storage goes into the session's case with the camera package that wrote
 * it, moved into the store and verified; the camera app's gallery copy of the same bytes is
 * caught in the camera folder and linked to it by hash; a photo judged personal after the stash
 * is reported to the app's ReturnListener (the app asks MediaStore to scan it).
 */
final class CaptureChecks {
    private final BridgeHarness h;

    CaptureChecks(BridgeHarness h) {
        this.h = h;
    }

    void run(Path work) throws Exception {
        Path camera = Files.createDirectories(work.resolve("capture-phone/DCIM/Camera"));
        Path files = Files.createDirectories(work.resolve("capture-files"));
        Path captures = Files.createDirectories(files.resolve("capture"));
        // A work site far away: no photo here is shot inside it, but every one could be, so every
        // new photo goes out of sight before it is judged.
        String toml = "store = \"" + files.resolve("quarantine") + "\"\n"
                + "cameras = [\"" + camera + "\"]\n"
                + "[classifier]\nenabled = false\n"
                + "[[work_sites]]\nname = \"Far\"\nlat = 10.0\nlon = 10.0\nradius_m = 100\n";
        List<String> returned = new ArrayList<>();
        ReturnListener listener = path -> {
            synchronized (returned) {
                returned.add(path);
            }
        };
        NativeCore.setReturnListener(listener);
        NativeCore core = NativeCore.start(toml, files.toString(), "", "");
        try {
            h.expectThrows("importCapture without a session or case", Code.REFUSED_CASE_ID_REQUIRED,
                    () -> core.importCapture(BridgeHarness.writeJpeg(captures.resolve("x.jpg"), Color.GRAY).toString(), null, "com.cam", 1L));
            core.sessionStart("CASE-CAM-7", "officer-3", 3600);
            Path shot = BridgeHarness.writeJpeg(captures.resolve(UUID.randomUUID() + ".jpg"), Color.ORANGE);
            byte[] bytes = Files.readAllBytes(shot);
            long writtenAt = System.currentTimeMillis();
            String imported = core.importCapture(shot.toString(), null, "com.example.camera", writtenAt);
            String item = BridgeHarness.field(imported, "item");
            h.check("importCapture: an item of the session's case", item.matches("\\d+") && BridgeHarness.field(imported, "already").equals("false"), imported);
            h.check("importCapture: the capture left app storage for the store", !Files.exists(shot)
                    && BridgeHarness.field(imported, "source_removed").equals("true"), imported);
            String list = core.listJson(1);
            h.check("importCapture: listed in the case, quarantined", list.contains("\"id\":" + item) && list.contains("CASE-CAM-7"), list);
            String stored = core.itemFile(item);
            h.check("importCapture: verified in the store, byte for byte",
                    java.util.Arrays.equals(Files.readAllBytes(Path.of(stored)), bytes), stored);
            Path empty = Files.createFile(captures.resolve(UUID.randomUUID() + ".jpg"));
            h.expectThrows("importCapture of an empty file", Code.NOT_EVIDENCE,
                    () -> core.importCapture(empty.toString(), null, "com.example.camera", writtenAt));
            core.sessionStop();
            // The camera app also saved a gallery copy: caught in the camera folder (no session
            // now) and put into the same case, linked by its hash.
            Path copy = camera.resolve("IMG_20261207_101500.jpg");
            Files.write(copy, bytes);
            String caught = core.onMedia(copy.toString());
            h.check("gallery copy of a case-camera photo: quarantined into its case, linked by hash",
                    BridgeHarness.field(caught, "kind").equals("quarantined") && caught.contains("CASE-CAM-7")
                            && caught.contains("case-camera evidence #" + item), caught);
            // A personal photo: out of sight, judged, back at its name, and the app is told.
            Path personal = BridgeHarness.writeJpeg(camera.resolve("IMG_20261207_101600.jpg"), Color.GREEN);
            String kept = core.onMedia(personal.toString());
            boolean told;
            synchronized (returned) {
                told = returned.contains(personal.toString());
            }
            h.check("a photo judged personal is back at its name, and the ReturnListener is told",
                    BridgeHarness.field(kept, "kind").equals("kept") && Files.exists(personal) && told
                            && BridgeHarness.field(kept, "returned_to").equals(personal.toString()), kept + " " + returned);
        } finally {
            core.close();
            NativeCore.setReturnListener(null);
        }
    }
}
