package no.fotovakt.hosttest;

import java.awt.Color;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.zip.ZipFile;
import no.fotovakt.core.Access;
import no.fotovakt.core.AgentStarter;
import no.fotovakt.core.AppStates;
import no.fotovakt.core.Backlog;
import no.fotovakt.core.Backoff;
import no.fotovakt.core.ChangeBatcher;
import no.fotovakt.core.FotovaktException.Code;
import no.fotovakt.core.IntakeMarks;
import no.fotovakt.core.KeyValueStore;
import no.fotovakt.core.ManagedSettings;
import no.fotovakt.core.ModelInstaller;
import no.fotovakt.core.NativeCore;
import no.fotovakt.core.QuarantineTeller;
import org.json.JSONArray;
import org.json.JSONObject;

/**
 * The shell's own logic (the plain-Java classes of no.fotovakt.core that the Kotlin app calls)
 * against the real core through JNI: how every path opens the core, what happens while access
 * is missing, retries, the leading-edge observer, telling the officer, the hand-off folder and
 * the keyed app states. Each check names the issue-24 (or issue-25 item 4) promise it holds.
 */
final class ShellChecks {
    private final BridgeHarness h;
    private final Path models;

    ShellChecks(BridgeHarness h, Path models) {
        this.h = h;
        this.models = models;
    }

    void run(Path work) throws Exception {
        modelOnEveryPath(work.resolve("model"));
        accessAndBacklog(work.resolve("access"));
        retries();
        leadingEdge();
        toldOnce(work.resolve("told"));
        handoff(work.resolve("handoff"));
        appStates(work.resolve("states"));
        NativeCore.setOutcomeListener(null);
    }

    /** The platform, as AndroidEnv gives it to AgentStarter; access can change under the running app. */
    static final class HostEnv implements AgentStarter.Env {
        final Path files;
        final Path shared;
        final Path assets;
        final KeyValueStore store = new KeyValueStore.InMemory();
        volatile Access access = new Access(true, true, true);
        volatile ManagedSettings settings = ManagedSettings.defaults();
        long installedAtMs = System.currentTimeMillis();
        long version = 1;

        HostEnv(Path root, Path assets) throws IOException {
            this.files = Files.createDirectories(root.resolve("files"));
            this.shared = Files.createDirectories(root.resolve("storage/emulated/0"));
            Files.createDirectories(shared.resolve("DCIM/Camera"));
            this.assets = assets;
        }

        Path camera() {
            return shared.resolve("DCIM/Camera");
        }

        @Override
        public ManagedSettings settings() {
            return settings;
        }

        @Override
        public File filesDir() {
            return files.toFile();
        }

        @Override
        public String cacheDir() {
            return "";
        }

        @Override
        public String nativeLibDir() {
            return "";
        }

        @Override
        public String sharedStorage() {
            return shared.toString();
        }

        @Override
        public Access access() {
            return access;
        }

        @Override
        public ModelInstaller.Assets assets() {
            return name -> Files.newInputStream(assets.resolve(name));
        }

        @Override
        public long appVersion() {
            return version;
        }

        @Override
        public long installedAtMs() {
            return installedAtMs;
        }

        @Override
        public KeyValueStore store() {
            return store;
        }

        @Override
        public String ortDylib() {
            return null; // the host finds ONNX Runtime the CLI's way (pip's wheel or ORT_DYLIB_PATH)
        }

        @Override
        public long nowMs() {
            return System.currentTimeMillis();
        }
    }

    /** The APK's assets as Gradle's modelAssets task packs them: the model, the head, a SHA-256 manifest. */
    private Path apkAssets(Path dir, boolean corruptHead) throws IOException {
        Path m = Files.createDirectories(dir.resolve(ModelInstaller.DIR));
        Map<String, String> hashes = new LinkedHashMap<>();
        for (String name : new String[] {"efficientnet_lite0.int8.onnx", "case_head.json"}) {
            Path src = models == null ? null : models.resolve(name);
            if (src == null || !Files.isRegularFile(src)) {
                Files.write(m.resolve(name), ("missing " + name).getBytes());
            } else {
                Files.copy(src, m.resolve(name), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            }
            try (InputStream in = Files.newInputStream(m.resolve(name))) {
                hashes.put(name, ModelInstaller.sha256(in));
            }
        }
        if (corruptHead) {
            Files.write(m.resolve("case_head.json"), "{}".getBytes()); // packed bytes no longer match the manifest
        }
        JSONObject manifest = new JSONObject();
        try {
            manifest.put("model", "efficientnet_lite0.int8.onnx").put("head", "case_head.json").put("sha256", new JSONObject(hashes));
        } catch (org.json.JSONException e) {
            throw new IOException(e);
        }
        Files.write(dir.resolve(ModelInstaller.MANIFEST), manifest.toString().getBytes());
        return dir;
    }

    /**
     * Issue 24 item 1: a process the content job started (nothing else ran in it) opens the
     * core through AgentStarter, which installs and loads the shipped model first.
     */
    private void modelOnEveryPath(Path work) throws Exception {
        if (models == null || !Files.isRegularFile(models.resolve("efficientnet_lite0.int8.onnx"))) {
            h.fail("model on every path", "no models dir with efficientnet_lite0.int8.onnx given: the classifier cannot be checked");
            return;
        }
        HostEnv env = new HostEnv(work.resolve("job"), apkAssets(work.resolve("apk"), false));
        env.settings = ManagedSettings.parse(BridgeHarness.map("duty_schedule", "always"));
        // MediaJobService.onStartJob -> MediaIntake.scanNew -> CoreHolder.get -> AgentStarter.get, in a fresh process:
        AgentStarter job = new AgentStarter(env, null, null);
        NativeCore core = job.get();
        h.check("job path: the core opens", core != null, String.valueOf(job.lastError()));
        if (core == null) {
            return;
        }
        String health = core.healthJson();
        h.check("job path: the shipped model is installed, verified and loaded before the first decision",
                job.model() != null && job.model().ok() && health.contains("\"model_loaded\":true")
                        && Files.isRegularFile(env.files.resolve("models/efficientnet_lite0.int8.onnx"))
                        && ModelInstaller.sha256(env.files.resolve("models/efficientnet_lite0.int8.onnx").toFile()).equals(job.model().modelSha256),
                health + " " + (job.model() == null ? "" : job.model().error));
        Path photo = BridgeHarness.writeJpeg(env.camera().resolve("IMG_JOB1.jpg"), Color.LIGHT_GRAY);
        String o = core.onMedia(photo.toString());
        h.check("job path: its decision is the classifier's (a score), not context alone",
                !BridgeHarness.field(o, "score").isEmpty() && !BridgeHarness.field(o, "score").equals("null"), o);
        job.stop();

        HostEnv bad = new HostEnv(work.resolve("bad"), apkAssets(work.resolve("apk-bad"), true));
        AgentStarter badJob = new AgentStarter(bad, null, null);
        NativeCore badCore = badJob.get();
        AppStates.Facts f = new AppStates.Facts();
        f.access = bad.access;
        f.model = badJob.model();
        f.coreHealth = badCore == null ? null : badCore.healthJson();
        AppStates.State model = state(AppStates.health(f), "fotovakt.health.model");
        h.check("a model that fails its SHA-256 check is an ERROR state, never a silent fallback",
                badCore != null && !badJob.model().ok() && badJob.model().error.contains("case_head.json")
                        && f.coreHealth.contains("\"model_loaded\":false") && !model.ok() && model.message.contains("not loaded"),
                String.valueOf(model));
        badJob.stop();
    }

    /**
     * Issue 24 item 2: while access is missing nothing is marked done, no mark moves and the
     * watcher (which would decide the pre-install roll as new) does not start; the admin sees
     * "waiting for access". When access comes, the pre-install roll is recorded as backlog and
     * a photo taken after the install (while access was missing) is decided as new.
     */
    private void accessAndBacklog(Path work) throws Exception {
        HostEnv env = new HostEnv(work, apkAssets(work.resolve("apk"), false));
        env.settings = ManagedSettings.parse(BridgeHarness.map("duty_schedule", "always"));
        env.access = new Access(false, false, true);
        Path old1 = BridgeHarness.writeJpeg(env.camera().resolve("IMG_OLD1.jpg"), Color.PINK);
        Path old2 = BridgeHarness.writeJpeg(env.camera().resolve("IMG_OLD2.jpg"), Color.MAGENTA);
        long before = System.currentTimeMillis() - 3_600_000;
        Files.setLastModifiedTime(old1, FileTime.fromMillis(before));
        Files.setLastModifiedTime(old2, FileTime.fromMillis(before));
        env.installedAtMs = System.currentTimeMillis() - 60_000;
        Recorder told = new Recorder();
        AgentStarter starter = new AgentStarter(env, null, new QuarantineTeller(env.store, told));
        NativeCore core = starter.get();
        h.check("no access: the core runs, the backlog waits and is not marked done",
                core != null && starter.backlog().state == Backlog.State.WAITING_FOR_ACCESS && !Backlog.done(env.store), String.valueOf(starter.backlog()));
        if (core == null) {
            return;
        }
        h.check("no access: the MediaStore mark neither starts nor moves",
                IntakeMarks.begin(env.store, "external_primary", "v1", env.access, Backlog.done(env.store)) == -1
                        && !env.store.contains("mark.external_primary") && !env.store.contains("version.external_primary"), "");
        AppStates.Facts f = new AppStates.Facts();
        f.access = env.access;
        f.backlog = starter.backlog().state;
        f.coreHealth = core.healthJson();
        AppStates.State access = state(AppStates.health(f), "fotovakt.health.access");
        h.check("no access: the admin sees \"waiting for access\" (ERROR, structured data)",
                !access.ok() && new JSONObject(access.data).getBoolean("waiting_for_access")
                        && new JSONObject(access.data).getString("backlog").equals("waiting_for_access") && access.message.startsWith("waiting for access"),
                access.toString());
        Path taken = BridgeHarness.writeJpeg(env.camera().resolve("IMG_AFTER_INSTALL.jpg"), Color.ORANGE);
        Thread.sleep(1_500); // a watcher, had it been started, would have reconciled by now
        h.check("no access: the core's watcher is not started (it would decide the pre-install roll as new)",
                core.healthJson().contains("\"watching\":false") && Files.exists(old1) && Files.exists(old2) && Files.exists(taken), core.healthJson());

        env.access = new Access(true, true, true); // the policy's grant arrives
        Backlog.Result r = starter.catchUp();
        h.check("access arrives: the backlog runs once, records the pre-install roll as kept, and is marked done",
                r.state == Backlog.State.DONE && Backlog.done(env.store) && r.backlog == 2 && Files.exists(old1) && Files.exists(old2), r.toString());
        h.check("access arrives: a photo taken after the install, while access was missing, is decided as new (on duty: quarantined)",
                r.decidedAsNew == 1 && !Files.exists(taken) && told.items.size() == 1, r + " told " + told.items);
        h.check("access arrives: then the core's watcher starts", core.healthJson().contains("\"watching\":true"), core.healthJson());
        h.check("access arrives: the MediaStore mark starts at 0 (every row once; the backlog answers from the ledger)",
                IntakeMarks.begin(env.store, "external_primary", "v1", env.access, true) == 0
                        && IntakeMarks.begin(env.store, "external_primary", "v1", env.access, true) == 0, "");
        String rec = core.reconcile();
        h.check("after the backlog, reconcile leaves the pre-install roll alone", Files.exists(old1) && Files.exists(old2) && !rec.contains("quarantined"), rec);
        h.check("the backlog runs once per installation", starter.catchUp().state == Backlog.State.DONE && starter.catchUp().backlog == 0, "");
        starter.stop();
    }

    /** Issue 24 item 2: retries after a bounded backoff; a mark held at the first row not taken. */
    private void retries() {
        Backoff b = new Backoff(2_000, 300_000);
        List<Long> delays = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            delays.add(b.failed());
        }
        h.check("retry backoff doubles from 2 s and is bounded at 5 min",
                delays.equals(Arrays.asList(2_000L, 4_000L, 8_000L, 16_000L, 32_000L, 64_000L, 128_000L, 256_000L, 300_000L, 300_000L)), delays.toString());
        b.succeeded();
        h.check("a pass that took everything starts the backoff over", b.failed() == 2_000 && b.failures() == 1, "");
        long mark = IntakeMarks.advance(10, new long[] {11, 12, 13, 14}, new boolean[] {true, true, false, true}, 20);
        h.check("the mark stops before the first row the core did not take (retry)", mark == 12, "" + mark);
        h.check("the mark moves to the volume's generation only if every row was taken",
                IntakeMarks.advance(10, new long[] {11, 12}, new boolean[] {true, true}, 20) == 20, "");
    }

    /** Issue 25 item 4: the observer's batcher reacts on the leading edge, with a maximum wait, on the URIs it was given. */
    private void leadingEdge() {
        FakeClock clock = new FakeClock();
        List<long[]> runs = new ArrayList<>();
        List<ChangeBatcher.Batch> batches = new ArrayList<>();
        Map<String, Long> offeredAt = new TreeMap<>();
        ChangeBatcher batcher = new ChangeBatcher(clock, clock, batch -> {
            batches.add(batch);
            runs.add(new long[] {clock.now});
        }, 100, 250);
        batcher.offer(Collections.singletonList("content://media/external/images/media/1"), false);
        h.check("the first change is handled at once (leading edge)", batches.size() == 1 && runs.get(0)[0] == 0
                && batches.get(0).uris.contains("content://media/external/images/media/1") && !batches.get(0).everything, "" + batches.size());
        // A burst: a change every 20 ms for 1 s (a burst shot's inserts and updates).
        for (int i = 2; i <= 51; i++) {
            clock.advance(20);
            String uri = "content://media/external/images/media/" + i;
            offeredAt.put(uri, clock.now);
            batcher.offer(Collections.singletonList(uri), false);
        }
        clock.advance(1_000);
        Map<String, Long> handledAt = new TreeMap<>();
        for (int i = 1; i < batches.size(); i++) {
            for (String u : batches.get(i).uris) {
                handledAt.put(u, runs.get(i)[0]);
            }
        }
        long worst = 0;
        for (Map.Entry<String, Long> e : offeredAt.entrySet()) {
            worst = Math.max(worst, handledAt.getOrDefault(e.getKey(), Long.MAX_VALUE) - e.getValue());
        }
        h.check("a burst is handled in batches, every change within the 250 ms maximum wait, each URI once",
                handledAt.keySet().equals(offeredAt.keySet()) && worst <= 250 && batches.size() >= 4 && batches.size() <= 8,
                batches.size() + " runs, worst wait " + worst + " ms");
        int n = batches.size();
        batcher.offer(Collections.singletonList("content://media/external/images/media/99"), false);
        h.check("after a quiet spell the next change is handled at once again", batches.size() == n + 1 && runs.get(n)[0] == clock.now, "");
        clock.advance(30);
        batcher.offer(Collections.<String>emptyList(), true);
        clock.advance(100);
        h.check("a notification without item URIs asks for a full pass, after the quiet time",
                batches.size() == n + 2 && batches.get(n + 1).everything && runs.get(n + 1)[0] == clock.now, "");
    }

    /** Issue 24 item 3: quarantines by the watcher, onMedia (service and job), reconcile and the backlog are each told once. */
    private void toldOnce(Path work) throws Exception {
        Path shared = Files.createDirectories(work.resolve("storage/emulated/0"));
        Path camera = Files.createDirectories(shared.resolve("DCIM/Camera"));
        Path files = Files.createDirectories(work.resolve("files"));
        KeyValueStore store = new KeyValueStore.InMemory();
        Recorder officer = new Recorder();
        NativeCore.setOutcomeListener(new QuarantineTeller(store, officer));
        ManagedSettings s = ManagedSettings.parse(BridgeHarness.map("duty_schedule", "always", "backlog", "quarantine"));
        Path old = BridgeHarness.writeJpeg(camera.resolve("IMG_BACKLOG.jpg"), Color.GRAY);
        NativeCore core = NativeCore.start(s.toToml(new ManagedSettings.Device(files.toString(), shared.toString(), true, null, null)),
                files.toString(), "", "");
        String backlog = core.recordBacklog();
        h.check("a backlog quarantine is told", officer.names.contains("IMG_BACKLOG.jpg") && !Files.exists(old), backlog + " " + officer.names);

        Path viaMedia = BridgeHarness.writeJpeg(camera.resolve("IMG_MEDIASTORE.jpg"), Color.BLUE);
        String o = core.onMedia(viaMedia.toString());
        h.check("a quarantine by the MediaStore pass or the content job (onMedia) is told",
                officer.names.contains("IMG_MEDIASTORE.jpg") && officer.items.contains(BridgeHarness.field(o, "item")), officer.names.toString());

        Path viaReconcile = BridgeHarness.writeJpeg(camera.resolve("IMG_RECONCILE.jpg"), Color.CYAN);
        Files.setLastModifiedTime(viaReconcile, FileTime.fromMillis(System.currentTimeMillis() - 60_000));
        core.reconcile();
        h.check("a quarantine by reconcile is told", officer.names.contains("IMG_RECONCILE.jpg"), officer.names.toString());

        core.startWatcher();
        Path viaWatcher = BridgeHarness.writeJpeg(camera.resolve("IMG_WATCHER.jpg"), Color.GREEN);
        for (int i = 0; i < 100 && !officer.names.contains("IMG_WATCHER.jpg"); i++) {
            Thread.sleep(100);
        }
        h.check("a quarantine by the core's own watcher is told (from its thread)", officer.names.contains("IMG_WATCHER.jpg") && !Files.exists(viaWatcher),
                officer.names.toString());
        int before = officer.items.size();
        String again = core.onMedia(viaWatcher.toString());
        h.check("the MediaStore pass seeing the watcher's \"already quarantined\" photo does not tell it twice",
                BridgeHarness.field(again, "kind").equals("quarantined") && officer.items.size() == before, again + " " + officer.items);
        h.check("each item is told exactly once", new HashSet<>(officer.items).size() == officer.items.size() && officer.items.size() == 4,
                officer.items.toString());
        // A process that died after the decision but before the notification: told on the next outcome.
        Recorder second = new Recorder();
        QuarantineTeller fresh = new QuarantineTeller(new KeyValueStore.InMemory(), second);
        fresh.offer(again);
        h.check("an \"already quarantined\" outcome no one told yet is told (the officer still gets the prompt)",
                second.items.equals(Collections.singletonList(BridgeHarness.field(again, "item"))), second.items.toString());
        QuarantineTeller restarted = new QuarantineTeller(store, second);
        h.check("which items were told survives a restart", restarted.offer(again) == 0 && restarted.told(Long.parseLong(BridgeHarness.field(again, "item"))), "");
        h.check("the officer's notification text carries the file name only, never the path",
                officer.names.stream().noneMatch(n -> n.contains("/")), officer.names.toString());
        // The watcher thread and a core call on another thread offer at once; the officer is
        // called outside the teller's lock (it may wait on something that waits on the teller).
        Recorder slow = new Recorder() {
            @Override
            public void tell(String itemId, String displayName, String caseId) {
                try {
                    Thread.sleep(5);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                super.tell(itemId, displayName, caseId);
            }
        };
        QuarantineTeller concurrent = new QuarantineTeller(new KeyValueStore.InMemory(), slow);
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < 8; t++) {
            Thread th = new Thread(() -> {
                for (int i = 0; i < 40; i++) {
                    concurrent.offer("{\"kind\":\"quarantined\",\"item\":" + (1000 + i) + ",\"path\":\"/x/IMG_" + i + ".jpg\",\"case_id\":null}");
                }
            });
            threads.add(th);
            th.start();
        }
        for (Thread th : threads) {
            th.join(10_000);
        }
        h.check("8 threads offering the same 40 quarantines at once: each told exactly once",
                slow.items.size() == 40 && new HashSet<>(slow.items).size() == 40 && threads.stream().noneMatch(Thread::isAlive),
                slow.items.size() + " told");
        core.close();
        NativeCore.setOutcomeListener(null);
    }

    /** Issue 24 item 4: packages leave on ack and on purge, re-export replaces, nothing outlives retention. */
    private void handoff(Path work) throws Exception {
        Path camera = Files.createDirectories(work.resolve("DCIM/Camera"));
        Path files = Files.createDirectories(work.resolve("files"));
        Path dir = Files.createDirectories(work.resolve("Android/data/no.fotovakt.app/files/handoff"));
        Files.createFile(dir.resolve(".nomedia"));
        String toml = "store = \"" + files.resolve("quarantine") + "\"\ncameras = [\"" + camera + "\"]\n"
                + "[classifier]\nenabled = false\n[retention]\nquarantined_days = 90\nexported_days = 0\n";
        NativeCore core = NativeCore.start(toml, files.toString(), "", "");
        String d = dir.toString();
        List<String> h1 = quarantine(core, camera, "CASE-H1", 2);
        String first = core.exportHandoff("CASE-H1", d, "officer-1", PLAIN);
        Path pkg = dir.resolve("CASE-H1.zip");
        h.check("export writes the case's one package into the hand-off folder",
                Files.isRegularFile(pkg) && BridgeHarness.field(first, "path").equals(pkg.toString()) && zipFiles(pkg) == 2, first);
        List<String> more = quarantine(core, camera, "CASE-H1", 1);
        String second = core.exportHandoff("CASE-H1", d, "officer-1", PLAIN);
        h.check("re-exporting a case replaces its older package cleanly (same name, new content, nothing left over)",
                zipFiles(pkg) == 3 && !BridgeHarness.field(second, "package_sha256").equals(BridgeHarness.field(first, "package_sha256"))
                        && listing(dir).equals(Arrays.asList(".nomedia", ".staging", "CASE-H1.zip")) && listing(dir.resolve(".staging")).isEmpty(),
                listing(dir) + " " + second);
        h.expectThrows("a failed export leaves the older package alone", Code.REFUSED_UNKNOWN_CASE, () -> core.exportHandoff("NO-SUCH", d, null, PLAIN));
        h.check("… and the older package is still whole", zipFiles(pkg) == 3, "");
        Files.write(dir.resolve("stray.zip"), "not a package".getBytes());
        String kept = core.sweepHandoff(d, System.currentTimeMillis());
        h.check("a sweep keeps the waiting package and removes what is no package of a case",
                kept.contains("CASE-H1.zip") && !Files.exists(dir.resolve("stray.zip")) && Files.exists(dir.resolve(".nomedia")), kept);

        core.ack("CASE-H1", "receiver-1");
        String afterAck = core.sweepHandoff(d, System.currentTimeMillis());
        h.check("on ack the package leaves the hand-off folder", !Files.exists(pkg) && afterAck.contains("CASE-H1.zip"), afterAck);

        quarantine(core, camera, "CASE-H2", 1);
        core.exportHandoff("CASE-H2", d, null, PLAIN);
        core.ack("CASE-H2", null); // the app died before it swept
        String purged = core.purge(false);
        String afterPurge = core.sweepHandoff(d, System.currentTimeMillis());
        h.check("on purge the package leaves the hand-off folder (even if the sweep after ack never ran)",
                !Files.exists(dir.resolve("CASE-H2.zip")) && purged.contains("\"reason\"") && afterPurge.contains("CASE-H2.zip"), purged + " " + afterPurge);

        List<String> h3 = quarantine(core, camera, "CASE-H3", 2);
        core.exportHandoff("CASE-H3", d, null, PLAIN);
        core.release(h3.get(0), "private", "officer-1");
        core.sweepHandoff(d, System.currentTimeMillis());
        h.check("a package holding an item that left the store (released) leaves too", !Files.exists(dir.resolve("CASE-H3.zip")), listing(dir).toString());

        quarantine(core, camera, "case-h4", 1);
        String h4 = core.exportHandoff("case-h4", d, null, PLAIN);
        Path p4 = Path.of(BridgeHarness.field(h4, "path"));
        long day = 86_400_000L;
        String at89 = core.sweepHandoff(d, System.currentTimeMillis() + 89 * day);
        String at91 = core.sweepHandoff(d, System.currentTimeMillis() + 91 * day);
        h.check("no package outlives the item's retention (kept at 89 days, gone after 90)",
                at89.contains(p4.getFileName().toString()) && at91.contains(p4.getFileName().toString()) && !Files.exists(p4), at89 + " " + at91);
        h.check("a lower-case case ID gets its own name (shared storage is case-insensitive)",
                p4.getFileName().toString().matches("case-h4-[0-9a-f]{12}\\.zip"), p4.toString());

        // Issue 26: with handoff_recipients the package is CASE.zip.age; the sweep knows it too.
        List<String> recipients = Collections.singletonList("age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p");
        quarantine(core, camera, "CASE-H5", 1);
        core.exportHandoff("CASE-H5", d, null, PLAIN);
        String h5 = core.exportHandoff("CASE-H5", d, null, recipients);
        Path sealed = dir.resolve("CASE-H5.zip.age");
        byte[] head = Arrays.copyOf(Files.readAllBytes(sealed), 21);
        h.check("with recipients the hand-off package is CASE.zip.age (age-encrypted), and replaces the plain one",
                BridgeHarness.field(h5, "path").equals(sealed.toString()) && !Files.exists(dir.resolve("CASE-H5.zip"))
                        && new String(head, java.nio.charset.StandardCharsets.ISO_8859_1).equals("age-encryption.org/v1"),
                listing(dir) + " " + h5);
        String sweptSealed = core.sweepHandoff(d, System.currentTimeMillis());
        h.check("a sweep keeps a waiting encrypted package", Files.exists(sealed) && sweptSealed.contains("CASE-H5.zip.age"), sweptSealed);
        core.ack("CASE-H5", null);
        String ackedSealed = core.sweepHandoff(d, System.currentTimeMillis());
        h.check("on ack the encrypted package leaves the hand-off folder too", !Files.exists(sealed) && ackedSealed.contains("CASE-H5.zip.age"), ackedSealed);
        core.close();
    }

    /** No recipients: a plain package. */
    private static final List<String> PLAIN = Collections.emptyList();

    /** Issue 24 item 6: the keyed app states are few, structured, within the limits, and never cut. */
    private void appStates(Path work) throws Exception {
        Path camera = Files.createDirectories(work.resolve("DCIM/Camera"));
        Path files = Files.createDirectories(work.resolve("files"));
        NativeCore core = NativeCore.start("store = \"" + files.resolve("quarantine") + "\"\ncameras = [\"" + camera + "\"]\n[classifier]\nenabled = false\n",
                files.toString(), "", "");
        quarantine(core, camera, "CASE-STATS-1", 2);
        List<AppStates.State> stats = AppStates.stats(core.statsStates());
        int counters = numericLeaves(new JSONObject(core.statsJson()));
        Set<String> keys = new HashSet<>();
        boolean structured = true;
        for (AppStates.State s : stats) {
            keys.add(s.key);
            structured &= s.key.startsWith("fotovakt.stats") && s.key.length() <= AppStates.MAX_KEY_LENGTH && s.data.length() <= AppStates.MAX_DATA_LENGTH
                    && new JSONObject(s.data).length() > 0 && !s.data.contains("CASE-STATS") && !s.data.contains("/");
        }
        h.check("statistics go out as a few keyed app states (" + stats.size() + ", not " + counters + " counters), each structured JSON within the limits",
                structured && keys.size() == stats.size() && stats.size() <= 10 && counters > stats.size()
                        && new JSONObject(state(stats, "fotovakt.stats.items").data).getInt("quarantined") == 2, stats.toString());

        Map<String, String> problems = new LinkedHashMap<>();
        for (int i = 0; i < 30; i++) {
            problems.put("an_unknown_key_that_an_emm_console_sent_with_a_very_long_name_" + i, "unknown key (ignored)");
        }
        AppStates.State config = AppStates.config(problems);
        h.check("config problems are one state whose data is whole JSON, however many keys (no truncated keys colliding)",
                config.key.equals("fotovakt.config") && !config.ok() && config.data.length() <= AppStates.MAX_DATA_LENGTH
                        && new JSONObject(config.data).length() == 1 && config.message.length() <= AppStates.MAX_MESSAGE_LENGTH, config.toString());
        h.check("a fixed configuration clears its error (the same key, INFO)", AppStates.config(Collections.<String, String>emptyMap()).ok(), "");

        AppStates.Facts f = new AppStates.Facts();
        f.access = new Access(true, true, true);
        f.backlog = Backlog.State.DONE;
        f.coreHealth = core.healthJson();
        f.installedAtMs = 1;
        f.firstStartMs = 2;
        List<AppStates.State> health = AppStates.health(f);
        Set<String> hk = new HashSet<>();
        boolean ok = true;
        for (AppStates.State s : health) {
            hk.add(s.key);
            ok &= s.key.length() <= AppStates.MAX_KEY_LENGTH && s.data.length() <= AppStates.MAX_DATA_LENGTH && new JSONObject(s.data).length() > 0;
        }
        h.check("health is one fixed key per check, structured data", ok && hk.size() == AppStates.HEALTH_KEYS.size() && health.size() == hk.size(), hk.toString());
        AppStates.State started = state(health, "fotovakt.health.started");
        f.forceStoppedBefore = true;
        h.check("\"started\" reports install and first start, and says when the app had been force-stopped",
                started.ok() && new JSONObject(started.data).getLong("installed_at_ms") == 1
                        && !state(AppStates.health(f), "fotovakt.health.started").ok(), started.toString());
        try {
            AppStates.stats("[{\"key\":\"" + "k".repeat(101) + "\",\"message\":\"m\",\"data\":\"{}\"}]");
            h.fail("a key over the limit is refused, never cut", "accepted");
        } catch (IllegalArgumentException e) {
            h.check("a key over the limit is refused, never cut", e.getMessage().contains("longer than"), e.getMessage());
        }
        core.close();
    }

    // ------------------------------------------------------------------ helpers

    /** Quarantines {@code n} new photos as material of {@code caseId} (a session); returns their item numbers. */
    private static List<String> quarantine(NativeCore core, Path camera, String caseId, int n) throws IOException {
        core.sessionStart(caseId, "officer-1", 600);
        List<String> items = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Path p = BridgeHarness.writeJpeg(camera.resolve("IMG_" + caseId.replaceAll("\\W", "") + "_" + System.nanoTime() + ".jpg"),
                    new Color((int) (System.nanoTime() & 0xffffff)));
            items.add(BridgeHarness.field(core.onMedia(p.toString()), "item"));
        }
        core.sessionStop();
        return items;
    }

    private static int zipFiles(Path zip) throws IOException {
        try (ZipFile z = new ZipFile(zip.toFile())) {
            return (int) z.stream().filter(e -> e.getName().startsWith("files/")).count();
        }
    }

    private static List<String> listing(Path dir) throws IOException {
        List<String> names = new ArrayList<>();
        if (Files.isDirectory(dir)) {
            try (var s = Files.list(dir)) {
                s.forEach(p -> names.add(p.getFileName().toString()));
            }
        }
        Collections.sort(names);
        return names;
    }

    private static int numericLeaves(JSONObject o) throws org.json.JSONException {
        int n = 0;
        for (java.util.Iterator<String> it = o.keys(); it.hasNext();) {
            Object v = o.get(it.next());
            if (v instanceof Number) {
                n++;
            } else if (v instanceof JSONObject) {
                n += numericLeaves((JSONObject) v);
            } else if (v instanceof JSONArray) {
                JSONArray a = (JSONArray) v;
                for (int i = 0; i < a.length(); i++) {
                    if (a.get(i) instanceof JSONObject) {
                        n += numericLeaves(a.getJSONObject(i));
                    }
                }
            }
        }
        return n;
    }

    private static AppStates.State state(List<AppStates.State> states, String key) {
        for (AppStates.State s : states) {
            if (s.key.equals(key)) {
                return s;
            }
        }
        throw new IllegalStateException("no state " + key + " in " + states);
    }

    /** The officer, as the app's notifications: records what it was told. */
    static class Recorder implements QuarantineTeller.Officer {
        final List<String> items = Collections.synchronizedList(new ArrayList<>());
        final List<String> names = Collections.synchronizedList(new ArrayList<>());

        @Override
        public void tell(String itemId, String displayName, String caseId) {
            items.add(itemId);
            names.add(displayName);
        }
    }

    /** A clock and a handler for ChangeBatcher: time moves only when the test says so. */
    static final class FakeClock implements java.util.function.LongSupplier, ChangeBatcher.Scheduler {
        long now;
        private final List<Object[]> tasks = new ArrayList<>();

        @Override
        public long getAsLong() {
            return now;
        }

        @Override
        public void schedule(Runnable task, long delayMs) {
            tasks.add(new Object[] {now + delayMs, task});
        }

        @Override
        public void cancel(Runnable task) {
            tasks.removeIf(t -> t[1] == task);
        }

        /** Moves time forward by {@code ms}, running each task when its time comes. */
        void advance(long ms) {
            long end = now + ms;
            while (true) {
                Object[] next = null;
                for (Object[] t : tasks) {
                    if ((long) t[0] <= end && (next == null || (long) t[0] < (long) next[0])) {
                        next = t;
                    }
                }
                if (next == null) {
                    break;
                }
                tasks.remove(next);
                now = Math.max(now, (long) next[0]);
                ((Runnable) next[1]).run();
            }
            now = end;
        }
    }
}
