#!/usr/bin/env bash
# Checks of the Android app shell and the JNI bridge that run without an Android SDK/NDK.
# Called by .ci/run on a fresh clone; installs its own prerequisites (idempotent) and caches
# downloads and the generated android.jar under build-check/ (git-ignored).
#
#   1. android.jar stubs from AOSP API signature files (+ chaquopy API 36 stubs), and a second
#      jar of exactly API 29 (minSdk) from Android 10's own API file
#   2. aapt2 links the manifest, resources and app_restrictions.xml; manifest rules; static
#      rules of the app's sources (permissions, guarded starts, MediaStore use, job IDs)
#   3. the app's Java (javac) and Kotlin (kotlinc, -Werror) sources compile: Platform.kt (the
#      only file with calls newer than API 29, each behind SDK_INT) against the newest stubs,
#      everything else against the API 29 jar ("minSdk 29"); negative controls prove both
#      jars reject what they must
#   4. cargo check --target aarch64-linux-android --features android
#   5. the bridge as a host cdylib: every `native` method has its Java_ symbol (javac -h vs nm -D),
#      and a host JVM harness calls every native method with real JPEGs, feeds managed
#      configurations through ManagedSettings -> TOML -> the core and checks its decisions, and
#      runs the shell's shared Java (no.fotovakt.core: AgentStarter, Backlog, IntakeMarks,
#      Backoff, ChangeBatcher, QuarantineTeller, AppStates) against the real core
#
# Exit status: non-zero on any real failure. Anything that cannot run here prints "SKIP: why".
# Closing line: "android-checks: N passed, N failed, N skipped".
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BC="$ROOT/build-check"
mkdir -p "$BC"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
START=$(date +%s)
PASS=0 FAIL=0 SKIP=0
FAILED=()

log() { printf '\n== %s\n' "$*"; }
ok() { PASS=$((PASS + 1)); echo "PASS: $*"; }
bad() { FAIL=$((FAIL + 1)); FAILED+=("$*"); echo "FAIL: $*"; }
skip() { SKIP=$((SKIP + 1)); echo "SKIP: $*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }

# ---------------------------------------------------------------- prerequisites
# Pinned inputs: Debian trixie's android-platform-frameworks-base 14~beta1 (AOSP API files).
AOSP_VER="14~beta1"
AOSP_TAR="android-platform-frameworks-base_${AOSP_VER}.orig.tar.xz"
AOSP_SHA="c1d64d78588fc7641923ad05b5ef12c3366f73b8bbca429f13f60c981e166d35"
# Debian bookworm's android-platform-frameworks-base 10.0.0+r36: Android 10 = API 29 = minSdk.
AOSP29_VER="10.0.0+r36"
AOSP29_TAR="android-platform-frameworks-base_${AOSP29_VER}.orig.tar.xz"
AOSP29_SHA="67251bc9a4152b0d4783653d9d45ec815349771f501f28a8f96479848cfee26b"
CHQ_VER="36.20260406"
KOTLIN_VER="2.4.20"
DL="$BC/dl"
mkdir -p "$DL"

need_apt=()
command -v javac >/dev/null || need_apt+=(openjdk-17-jdk-headless)
command -v aapt2 >/dev/null || need_apt+=(aapt)
[ -f /usr/share/android-framework-res/framework-res.apk ] || need_apt+=(android-framework-res)
command -v python3 >/dev/null || need_apt+=(python3)
command -v nm >/dev/null || need_apt+=(binutils)
# org.json for the host harness: Debian's build of AOSP libcore's org.json (Android 10's), the
# same library the app's shared Java (no.fotovakt.core) calls on a phone.
JSONJAR=/usr/share/java/com.android.json.jar
[ -f "$JSONJAR" ] || need_apt+=(libandroid-json-java)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  as_root apt-get update -qq >/dev/null 2>&1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null 2>&1 \
    || echo "warning: apt-get install ${need_apt[*]} failed"
fi

# One AOSP API signature file from a Debian source package's orig tarball (pinned by sha256):
#   fetch_api_file LABEL SUITE PACKAGE_VERSION TARBALL SHA256 DEST_DIR MEMBER
# apt runs with its own lists and cache under build-check/, so the system's apt state is not touched.
fetch_api_file() {
  local label="$1" suite="$2" pkgver="$3" tar="$4" sha="$5" dest="$6" member="$7"
  [ -s "$dest/$member" ] && return 0
  log "fetching $label (Debian $suite source package, $pkgver)"
  local apt="$BC/apt-$suite"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
  echo "deb-src http://deb.debian.org/debian $suite main" > "$apt/sources.list"
  local aopt=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
              -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache")
  if [ ! -s "$DL/$tar" ]; then
    apt-get "${aopt[@]}" update -qq >/dev/null 2>&1
    # Only the orig tarball is needed; the .dsc may be missing from a mirror snapshot.
    (cd "$DL" && apt-get "${aopt[@]}" source --download-only "android-platform-frameworks-base=$pkgver" >/dev/null 2>&1)
  fi
  if [ -s "$DL/$tar" ] && echo "$sha  $DL/$tar" | sha256sum -c --quiet; then
    mkdir -p "$dest"
    tar -xJf "$DL/$tar" -C "$dest" "$member"
  else
    rm -f "$DL/$tar"
  fi
}

API_TXT="$DL/t14/core/api/current.txt"
fetch_api_file "AOSP API signature files" trixie "1:$AOSP_VER-3" "$AOSP_TAR" "$AOSP_SHA" "$DL/t14" ./core/api/current.txt
API29_TXT="$DL/t10/api/current.txt"
fetch_api_file "the API 29 signature file" bookworm "1:$AOSP29_VER-10" "$AOSP29_TAR" "$AOSP29_SHA" "$DL/t10" api/current.txt

CHQ="$DL/chq"
if [ ! -d "$CHQ/android-stubs" ]; then
  log "fetching chaquopy-stubs-android $CHQ_VER (PyPI)"
  python3 -m pip download -q --no-deps "chaquopy-stubs-android==$CHQ_VER" -d "$DL" >/dev/null 2>&1
  whl=$(ls "$DL"/chaquopy_stubs_android-"$CHQ_VER"-*.whl 2>/dev/null | head -1)
  [ -n "$whl" ] && mkdir -p "$CHQ" && python3 -m zipfile -e "$whl" "$CHQ"
fi

KOTLINC="$BC/kotlinc/node_modules/kotlin-compiler/bin/kotlinc"
if [ ! -x "$KOTLINC" ] && command -v npm >/dev/null; then
  log "installing kotlin-compiler $KOTLIN_VER (npm)"
  mkdir -p "$BC/kotlinc"
  (cd "$BC/kotlinc" && npm install --no-audit --no-fund --silent "kotlin-compiler@$KOTLIN_VER" >/dev/null 2>&1)
  chmod +x "$BC"/kotlinc/node_modules/kotlin-compiler/bin/* 2>/dev/null
fi

# ---------------------------------------------------------------- 1. android.jar stubs
log "1. android.jar stubs"
STUBGEN=android/host-test/stubgen
JAR="$BC/stubs/android.jar"
if [ -s "$API_TXT" ] && [ -d "$CHQ/android-stubs" ]; then
  mkdir -p "$BC/stubs"
  key=$(cat "$STUBGEN"/*.py "$STUBGEN"/*.txt "$API_TXT" | sha256sum | cut -c1-16)-$CHQ_VER
  if [ ! -s "$JAR" ] || [ "$(cat "$BC/stubs/key" 2>/dev/null)" != "$key" ]; then
    if python3 "$STUBGEN/android_stubs.py" --api "$API_TXT" --api "$STUBGEN/androidx-enterprise-feedback.txt" \
        --chaquopy "$CHQ" --overrides "$STUBGEN/api-overrides.txt" --out "$JAR" | tee "$BC/stubs/summary.txt"; then
      echo "$key" > "$BC/stubs/key"
    else
      rm -f "$JAR"
    fi
  else
    cat "$BC/stubs/summary.txt"
  fi
  [ -s "$JAR" ] && ok "android.jar stubs ($(python3 -c "import zipfile,sys;print(len(zipfile.ZipFile(sys.argv[1]).namelist()))" "$JAR") classes)" \
    || bad "android.jar stub generation"
else
  skip "android.jar stubs: AOSP API file or chaquopy stubs could not be fetched (no registry access?)"
fi

# The minSdk jar: Android 10's API file alone (no newer sources, no overrides), plus the
# androidx enterprise-feedback library (a library, the same on every API level).
JAR29="$BC/stubs29/android.jar"
if [ -s "$API29_TXT" ]; then
  mkdir -p "$BC/stubs29"
  key29=$(cat "$STUBGEN"/*.py "$STUBGEN/androidx-enterprise-feedback.txt" "$API29_TXT" | sha256sum | cut -c1-16)
  if [ ! -s "$JAR29" ] || [ "$(cat "$BC/stubs29/key" 2>/dev/null)" != "$key29" ]; then
    if python3 "$STUBGEN/android_stubs.py" --api "$API29_TXT" --api "$STUBGEN/androidx-enterprise-feedback.txt" \
        --out "$JAR29" | tee "$BC/stubs29/summary.txt"; then
      echo "$key29" > "$BC/stubs29/key"
    else
      rm -f "$JAR29"
    fi
  else
    cat "$BC/stubs29/summary.txt"
  fi
  [ -s "$JAR29" ] && ok "API 29 android.jar stubs ($(python3 -c "import zipfile,sys;print(len(zipfile.ZipFile(sys.argv[1]).namelist()))" "$JAR29") classes)" \
    || bad "API 29 android.jar stub generation"
else
  skip "API 29 stubs: Android 10 API file could not be fetched (no registry access?)"
fi

# ---------------------------------------------------------------- 2. aapt2 + manifest rules
log "2. aapt2 link of manifest, resources and app_restrictions.xml"
MAN=android/app/src/main/AndroidManifest.xml
RES=android/app/src/main/res
FWRES=/usr/share/android-framework-res/framework-res.apk
A="$BC/aapt"
rm -rf "$A" && mkdir -p "$A/gen"
# Manifest rules the platform enforces only at install/run time on Android 14/15.
python3 - "$MAN" "$RES/xml/app_restrictions.xml" android/app/src/main/java <<'EOF' && ok "manifest rules (FGS type + subtype, exported explicit, immutable PendingIntents, restrictions keys)" || bad "manifest rules"
import os, re, sys, xml.etree.ElementTree as ET
A = "{http://schemas.android.com/apk/res/android}"
man, rx, src = sys.argv[1:4]
root = ET.parse(man).getroot()
app = root.find("application")
errs = []
perms = {p.get(A + "name") for p in root.findall("uses-permission")}
for svc in app.findall("service"):
    t = svc.get(A + "foregroundServiceType")
    if t:
        if t == "specialUse":
            props = {p.get(A + "name"): p.get(A + "value") for p in svc.findall("property")}
            if not props.get("android.app.PROPERTY_SPECIAL_USE_FGS_SUBTYPE"):
                errs.append(f"{svc.get(A+'name')}: specialUse without PROPERTY_SPECIAL_USE_FGS_SUBTYPE")
            if "android.permission.FOREGROUND_SERVICE_SPECIAL_USE" not in perms:
                errs.append("specialUse without FOREGROUND_SERVICE_SPECIAL_USE permission")
        if t == "dataSync":
            errs.append("dataSync FGS: capped at 6h/24h and not startable from BOOT_COMPLETED on Android 15")
for tag in ("activity", "service", "receiver", "provider"):
    for c in app.findall(tag):
        if c.get(A + "exported") is None:
            errs.append(f"{c.get(A+'name')}: android:exported not explicit")
        if c.get(A + "exported") == "true" and tag != "activity" and not c.get(A + "permission"):
            errs.append(f"{c.get(A+'name')}: exported without a permission")
if app.get(A + "allowBackup") != "false":
    errs.append("allowBackup must be false (the store holds evidence)")
md = {m.get(A + "name"): m.get(A + "resource") for m in app.findall("meta-data")}
if md.get("android.content.APP_RESTRICTIONS") != "@xml/app_restrictions":
    errs.append("APP_RESTRICTIONS meta-data missing")
keys = [r.get(A + "key") for r in ET.parse(rx).getroot()]
ms = open(os.path.join(src, "no/fotovakt/core/ManagedSettings.java")).read()
m = re.search(r"KEYS = Collections\.unmodifiableList\(Arrays\.asList\((.*?)\)\);", ms, re.S)
declared = re.findall(r'"([a-z0-9_]+)"', m.group(1)) if m else []
if declared != keys:
    errs.append(f"ManagedSettings.KEYS {declared} != app_restrictions.xml keys {keys} (same keys, same order)")
for k in keys:
    if len(re.findall(f'"{k}"', ms)) < 2:
        errs.append(f"restriction {k} is declared but never read by ManagedSettings.java")
if "android.permission.ACCESS_MEDIA_LOCATION" not in perms:
    errs.append("ACCESS_MEDIA_LOCATION not declared: MediaProvider would redact GPS on read (evidence altered)")
storage = {p.get(A + "name"): p.get(A + "maxSdkVersion") for p in root.findall("uses-permission")}
if storage.get("android.permission.WRITE_EXTERNAL_STORAGE", "absent") != "29":
    errs.append("WRITE_EXTERNAL_STORAGE (maxSdkVersion 29) not declared: Android 10 has no all-files access, legacy storage needs it")
for p in ("android.permission.READ_MEDIA_IMAGES", "android.permission.READ_MEDIA_VIDEO", "android.permission.READ_EXTERNAL_STORAGE"):
    if p not in storage:
        errs.append(f"{p} not declared: ACCESS_MEDIA_LOCATION is granted only with its photos and videos permissions")
if "android.permission.USE_BIOMETRIC" not in perms:
    errs.append("USE_BIOMETRIC not declared: the device-credential prompt before a release needs it")
for act in app.findall("activity"):
    if act.get(A + "name") in (".ReviewActivity", ".HandoffActivity", ".ItemActionActivity") and act.get(A + "excludeFromRecents") != "true":
        errs.append(f"{act.get(A + 'name')}: shows evidence or custody actions; must be excludeFromRecents")
for dp, _, fs in os.walk(src):
    for f in fs:
        text = open(os.path.join(dp, f)).read()
        for m in re.finditer(r"PendingIntent\.get(?:Activity|Broadcast|Service|ForegroundService)\(", text):
            call = text[m.start(): m.start() + 400]
            if "FLAG_IMMUTABLE" not in call:
                errs.append(f"{f}: PendingIntent without FLAG_IMMUTABLE")
        if re.search(r"setLargeIcon|BigPictureStyle|loadThumbnail|Thumbnails\.", text):
            errs.append(f"{f}: thumbnail/picture of evidence outside the app")
for e in errs:
    print("  " + e)
sys.exit(1 if errs else 0)
EOF
# Static rules of the sources for what the platform only enforces (or breaks) at run time.
python3 - android/app/src/main/java <<'EOF' && ok "source rules (media location to the core, guarded starts, getVersion with getGeneration, no MediaStore delete, no same-ID reschedule, API >29 only in Platform.kt, one opener with the model first, watcher after the backlog, access gate, item URIs, log lines, device credential, uncut keys)" || bad "source rules"
import os, re, sys
src = sys.argv[1]
files = {}
for dp, _, fs in os.walk(src):
    for f in fs:
        files[f] = open(os.path.join(dp, f)).read()
errs = []
def funcs(text):
    """(name, body) of each Kotlin `fun`, body up to the next `fun` (good enough for these files)."""
    parts = re.split(r"\n\s*(?:(?:private|internal|override|inline|@\w+(?:\([^)]*\))?)\s+)*fun ", text)
    return [(p.split("(", 1)[0].split("<")[-1].strip(), p) for p in parts[1:]]
app = {f: t for f, t in files.items() if f.endswith(".kt")}
# 1. the core is told whether ACCESS_MEDIA_LOCATION is granted
ms = files.get("ManagedSettings.java", "")
if "media_location_access = " not in ms:
    errs.append("ManagedSettings.java does not write media_location_access into the core's TOML")
plat = app.get("Platform.kt", "")
if "ACCESS_MEDIA_LOCATION" not in plat[plat.find("fun access("):][:400]:
    errs.append("Platform.access does not check ACCESS_MEDIA_LOCATION")
if "access().mediaLocation" not in files.get("AgentStarter.java", ""):
    errs.append("AgentStarter.java does not pass the ACCESS_MEDIA_LOCATION grant to the core's config")
# 2. every foreground start is guarded: startForeground only in Platform.kt; each call of it
#    and of startForegroundService sits in a try whose catches take IllegalStateException
for f, t in app.items():
    if f != "Platform.kt" and re.search(r"(?<![.\w])startForeground\(|\bthis\.startForeground\(", t):
        errs.append(f"{f}: startForeground outside Platform.kt")
    for m in re.finditer(r"Platform\.startForeground\(|\.startForegroundService\(", t):
        before, after = t[max(0, m.start() - 200): m.start()], t[m.end(): m.end() + 700]
        if "try" not in before or not re.search(r"catch \(e: IllegalStateException\)", after):
            errs.append(f"{f}: unguarded foreground start at offset {m.start()} (ForegroundServiceStartNotAllowedException)")
# 3. MediaStore: generations only with their version, per volume from getExternalVolumeNames
for f, t in app.items():
    if f == "Platform.kt":
        continue
    for m in re.finditer(r"Platform\.generation\(|MediaStore\.getGeneration\(", t):
        if "MediaStore.getVersion(" not in t[max(0, m.start() - 600): m.start()]:
            errs.append(f"{f}: generation read without MediaStore.getVersion just before it (generations reset with the version)")
        if "VOLUME_EXTERNAL" in t[m.start(): m.start() + 80]:
            errs.append(f"{f}: generation of VOLUME_EXTERNAL (needs a volume name from getExternalVolumeNames)")
    if re.search(r"Platform\.generation\(", t) and "getExternalVolumeNames(" not in t:
        errs.append(f"{f}: generations without MediaStore.getExternalVolumeNames")
# 4. never delete a MediaStore row (that deletes the file, maybe one the core left in place)
for f, t in list(app.items()) + [(k, v) for k, v in files.items() if k.endswith(".java")]:
    if re.search(r"contentResolver\.delete\(|ContentResolver\.delete\(|getContentResolver\(\)\.delete\(|\.delete\(\s*uri", t):
        errs.append(f"{f}: ContentResolver.delete (deletes the file; only scans of vanished paths drop rows)")
# 5. no schedule() with the ID of a job that may be running
for f, t in app.items():
    for name, body in funcs(t):
        for m in re.finditer(r"\bsubmit\([^,]+,\s*\w+,\s*(\w+)\s*[,)]", body):
            if f"getPendingJob({m.group(1)})" not in body:
                errs.append(f"{f}:{name}: schedules job {m.group(1)} without checking getPendingJob({m.group(1)})")
        if re.search(r"\.schedule\(", body) and name != "submit":
            errs.append(f"{f}:{name}: JobScheduler.schedule outside submit() (which its callers guard)")
        if name == "onStartJob" and re.search(r"submit\([^)]*params\.jobId", body):
            errs.append(f"{f}: onStartJob reschedules its own job ID (stops the running job)")
# 6. every function of Platform.kt tests SDK_INT; no full-resolution video frames
for part in re.split(r"\n    (?:@\w+(?:\([^)]*\))?\s+)*fun ", app.get("Platform.kt", ""))[1:]:
    name, body = part.split("(", 1)[0].strip(), part
    if "SDK_INT" not in body:
        errs.append(f"Platform.kt:{name}: no Build.VERSION.SDK_INT check")
for f, t in app.items():
    if re.search(r"\.getFrameAtTime\(", t):
        errs.append(f"{f}: getFrameAtTime decodes full resolution; use getScaledFrameAtTime")
# 7. evidence pixels stay in FLAG_SECURE windows
for f in ("ReviewActivity.kt", "HandoffActivity.kt", "ItemActionActivity.kt", "MainActivity.kt"):
    if "FLAG_SECURE" not in app.get(f, ""):
        errs.append(f"{f}: no FLAG_SECURE")
if re.search(r"FileProvider|getUriForFile", "".join(app.values())) or any(
        "content://" in t for f, t in app.items() if f != "CaseCamera.kt"):
    errs.append("a content URI for store files: previews are decoded in-app only")
# The case camera's provider only takes writes (the camera app's photo into app storage): it
# never serves a file to anyone.
cam = app.get("CaseCamera.kt", "")
if cam and "if (!mode.contains('w')) throw FileNotFoundException" not in cam:
    errs.append("CaseCamera.kt: CaptureProvider.openFile must refuse anything but writing")
# 8. nothing thrown from the core reaches a handler thread: the one opener catches
st = files.get("AgentStarter.java", "")
if "catch (RuntimeException e)" not in st or "catch (LinkageError e)" not in st:
    errs.append("AgentStarter.java: core start must catch RuntimeException and LinkageError")
# 9. one way to open the core, the model first: NativeCore.start only in AgentStarter.get
for f, t in files.items():
    if f not in ("AgentStarter.java", "NativeCore.java") and re.search(r"NativeCore\.start\(", t):
        errs.append(f"{f}: opens the core itself (NativeCore.start); every path goes through AgentStarter (model first)")
get = st[st.find("public synchronized NativeCore get()"):]
if not (0 <= get.find("ModelInstaller.install(") < get.find("NativeCore.start(")):
    errs.append("AgentStarter.get: the model must be installed before the core starts")
if "AgentStarter(" not in app.get("CoreHolder.kt", ""):
    errs.append("CoreHolder.kt does not open the core through AgentStarter")
# 10. the core's watcher starts only after the backlog (it reconciles the camera folders at once)
for f, t in files.items():
    if f not in ("AgentStarter.java", "NativeCore.java") and re.search(r"\.startWatcher\(", t):
        errs.append(f"{f}: starts the core's watcher; only AgentStarter does, after the first-run backlog")
if not re.search(r"Backlog\.State\.DONE\)\s*\{\s*core\.startWatcher\(\)", st):
    errs.append("AgentStarter: the watcher must start only once the backlog is DONE")
# 11. nothing passed over while access is missing; the observer takes the URIs it is handed
mi = app.get("MediaIntake.kt", "")
if "IntakeMarks.begin(" not in mi or "Platform.access(" not in mi or "canSeeCameraFiles()" not in mi:
    errs.append("MediaIntake.kt: passes must be gated on access (Platform.access, IntakeMarks.begin, canSeeCameraFiles)")
if "uris: Collection<Uri>" not in plat:
    errs.append("Platform.kt: the observer must take the item URIs of onChange(Boolean, Collection<Uri>, Int)")
# 12. log lines name no path, file name, case ID or core message, unless debuggable (Logs.detail)
for f, t in app.items():
    for line in t.splitlines():
        if re.search(r"\bLog\.[vdiwe]\(", line):
            bare = re.sub(r"Logs\.(detail|of)\([^)]*\)", "", line)
            if re.search(r"\$\{?(path|case|caseId|displayName|name|json|it)\b|\.message\b|absolutePath", bare):
                errs.append(f"{f}: a log line may name a path, file, case or core message: {line.strip()}")
# 13. the device credential before every custody action taken from the app's screens
for f in ("MainActivity.kt", "ItemActionActivity.kt", "HandoffActivity.kt"):
    t = app.get(f, "")
    for m in re.finditer(r"\.(sessionStart|sessionStop|tag|release|exportHandoff|ack)\(", t):
        if "confirmThen" in t[max(0, m.start() - 700): m.start()]:
            continue
        # Else the function it is in must be called only right after a confirmation.
        enclosing = re.findall(r"\bfun (\w+)\(", t[: m.start()])
        sites = [c for c in re.finditer(rf"(?<![.\w])(?<!fun ){enclosing[-1]}\(", t)] if enclosing else []
        if not sites or any("confirmThen" not in t[max(0, c.start() - 300): c.start()] for c in sites):
            errs.append(f"{f}: {m.group(1)} without the device credential (Officer.confirmThen)")
# 14. keyed app state keys are never cut to the limit (two cut keys could collide)
for f, t in app.items():
    if re.search(r"\.take\(KeyedAppState\.MAX_KEY_LENGTH\)", t):
        errs.append(f"{f}: a keyed app state key cut to the limit")
for e in errs:
    print("  " + e)
sys.exit(1 if errs else 0)
EOF
if command -v aapt2 >/dev/null && [ -f "$FWRES" ]; then
  # Debian's framework-res.apk is API 29; the few newer manifest features are substituted for
  # the link only (each is checked above in the real manifest): <property> (API 31),
  # android:dataExtractionRules (31), foregroundServiceType="specialUse" (34).
  sed -e 's#<manifest xmlns:android="http://schemas.android.com/apk/res/android">#<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="no.fotovakt.app">#' \
      -e 's#android:dataExtractionRules="@xml/data_extraction_rules"##' \
      -e 's#android:foregroundServiceType="specialUse"#android:foregroundServiceType="dataSync"#' "$MAN" |
    python3 -c "import re,sys; print(re.sub(r'<property\b.*?/>', '', sys.stdin.read(), flags=re.S))" > "$A/AndroidManifest.xml"
  if aapt2 compile --dir "$RES" -o "$A/res.zip" && \
     aapt2 link -I "$FWRES" --manifest "$A/AndroidManifest.xml" --min-sdk-version 29 --target-sdk-version 35 \
       --version-code 1 --version-name 0.1.0 --java "$A/gen" -o "$A/app.apk" "$A/res.zip"; then
    ok "aapt2 link ($(unzip -l "$A/res.zip" 2>/dev/null | tail -1 | awk '{print $2}') compiled resources, R.java generated)"
  else
    bad "aapt2 link"
  fi
else
  skip "aapt2 / android-framework-res not installed"
fi

# ---------------------------------------------------------------- 3. compile app sources
log "3. app sources against the stubs"
C="$BC/compile"
rm -rf "$C" && mkdir -p "$C/java" "$C/platform" "$C/kt" "$C/neg"
JAVA_SRC=(android/app/src/main/java/no/fotovakt/core/*.java)
KT_SRC=(android/app/src/main/java/no/fotovakt/app/*.kt)
PLATFORM_KT=android/app/src/main/java/no/fotovakt/app/Platform.kt
KT_REST=()
for f in "${KT_SRC[@]}"; do [ "$f" = "$PLATFORM_KT" ] || KT_REST+=("$f"); done
kotlinc_ok() { "$KOTLINC" -jvm-target 17 -Werror -nowarn "$@" 2>&1 | grep -v '^warning: unable to find kotlin-stdlib'; [ "${PIPESTATUS[0]}" = 0 ]; }
if [ -s "$JAR" ] && [ -f "$A/gen/no/fotovakt/app/R.java" ]; then
  # The core's Java (shared with the host harness) uses the Java 8 library only: Android 10
  # has no List.of or String.isBlank, and D8 does not backport every newer method.
  MINJAR="$JAR"; [ -s "$JAR29" ] && MINJAR="$JAR29"
  if javac -d "$C/java" -cp "$MINJAR" --release 8 -Xlint:all,-options -Werror "${JAVA_SRC[@]}" "$A/gen/no/fotovakt/app/R.java"; then
    ok "javac: ${#JAVA_SRC[@]} Java sources + R.java (--release 8, against $( [ "$MINJAR" = "$JAR29" ] && echo 'API 29' || echo 'API 36') stubs)"
  else
    bad "javac of the app's Java sources"
  fi
  if [ -x "$KOTLINC" ]; then
    t0=$(date +%s)
    # Platform.kt: the only file allowed to name API > 29 (each use behind SDK_INT, rule above).
    if kotlinc_ok -cp "$JAR:$C/java" -d "$C/platform" "$PLATFORM_KT"; then
      ok "kotlinc: Platform.kt against the API 36 stubs"
    else
      bad "kotlinc of Platform.kt"
    fi
    if [ -s "$JAR29" ]; then
      if kotlinc_ok -cp "$JAR29:$C/java:$C/platform" -d "$C/kt" "${KT_REST[@]}"; then
        ok "minSdk 29: ${#KT_REST[@]} Kotlin sources compile against the API 29 stubs (newer APIs only through Platform.kt), $(find "$C/kt" -name '*.class' | wc -l) classes ($(( $(date +%s) - t0 )) s)"
      else
        bad "minSdk 29: a Kotlin source outside Platform.kt uses an API newer than 29 (or does not compile)"
      fi
    else
      if kotlinc_ok -cp "$JAR:$C/java:$C/platform" -d "$C/kt" "${KT_REST[@]}"; then
        ok "kotlinc: ${#KT_REST[@]} Kotlin sources against the API 36 stubs (API 29 jar missing: minSdk not checked)"
      else
        bad "kotlinc of the app's Kotlin sources"
      fi
    fi
  else
    skip "kotlinc: npm kotlin-compiler not installed"
  fi
  # Negative control: the stubs must reject a misspelled method and a missing abstract override.
  mkdir -p "$C/neg/src/neg"
  cat > "$C/neg/src/neg/Broken.java" <<'EOF'
package neg;
public class Broken extends android.app.Service {   // no onBind: must fail
    void f(android.content.Context c) {
        new android.app.Notification.Builder(c, "x").setContentTitel("typo");   // must fail
        android.provider.MediaStore.getGenerashun(c, "external");              // must fail
    }
}
EOF
  neg=$(javac -d "$C/neg" -cp "$JAR" "$C/neg/src/neg/Broken.java" 2>&1 | grep -c "error:")
  if [ "$neg" -ge 3 ]; then ok "negative control: $neg/3 planted API errors rejected"; else bad "negative control: only $neg/3 planted errors rejected"; fi
  if [ -s "$JAR29" ]; then
    # The API 29 jar must reject the calls that crashed minSdk 29/30 phones, and accept their API 29 neighbours.
    cat > "$C/neg/src/neg/Newer.java" <<'EOF'
package neg;
public class Newer {
    void f(android.content.Context c, android.app.Notification.Builder b) {
        b.setForegroundServiceBehavior(1);                           // API 31: must fail
        android.provider.MediaStore.getGeneration(c, "external");    // API 30: must fail
        android.os.Environment.isExternalStorageManager();           // API 30: must fail
        android.provider.MediaStore.getVersion(c, "external");       // API 29: fine
        android.provider.MediaStore.getExternalVolumeNames(c);       // API 29: fine
    }
}
EOF
    neg29=$(javac -d "$C/neg" -cp "$JAR29" "$C/neg/src/neg/Newer.java" 2>&1 | grep -c "error:")
    if [ "$neg29" = 3 ]; then ok "negative control (API 29 jar): 3/3 newer calls rejected, API 29 calls accepted"
    else bad "negative control (API 29 jar): $neg29 errors, expected exactly 3"; fi
    if [ -x "$KOTLINC" ]; then
      # The same through kotlinc, which compiles the app: a direct API 30 call outside Platform.kt.
      printf '%s\n' 'package neg' 'fun f(): Boolean = android.os.Environment.isExternalStorageManager()' > "$C/neg/src/neg/Newer.kt"
      if "$KOTLINC" -jvm-target 17 -nowarn -cp "$JAR29" -d "$C/neg/kt" "$C/neg/src/neg/Newer.kt" > "$C/neg/kt.log" 2>&1; then
        bad "negative control (API 29 jar, kotlinc): an API 30 call compiled"
      elif grep -q "isExternalStorageManager" "$C/neg/kt.log"; then
        ok "negative control (API 29 jar, kotlinc): an API 30 call is rejected"
      else
        bad "negative control (API 29 jar, kotlinc): failed for another reason: $(head -c 300 "$C/neg/kt.log")"
      fi
    fi
  fi
else
  skip "app compile: stubs or R.java missing (see above)"
fi

# ---------------------------------------------------------------- 4. cargo check for Android
log "4. cargo check --target aarch64-linux-android --features android"
if [ ! -f src/android.rs ]; then
  skip "cargo check for Android: the bridge (src/android.rs) is not on this branch"
elif ! command -v cargo >/dev/null; then
  skip "cargo not installed"
elif rustup target list --installed 2>/dev/null | grep -q aarch64-linux-android || rustup target add aarch64-linux-android >/dev/null 2>&1; then
  # Build scripts (bundled SQLite via the cc crate) want the NDK's clang even for `cargo check`.
  # Without an NDK, a stand-in writes empty objects: Rust code is fully checked, the C parts
  # are not compiled for Android here (nothing is linked in check mode anyway).
  if ! command -v aarch64-linux-android29-clang >/dev/null && [ -z "${ANDROID_NDK_HOME:-}" ]; then
    FAKE="$BC/fake-ndk"
    mkdir -p "$FAKE"
    cat > "$FAKE/cc" <<'CC'
#!/bin/sh
# check-only stand-in for the NDK's clang: creates the requested output, compiles nothing.
# Fails the MSVC probe so the cc crate treats it as a GNU-style compiler.
[ "$1" = "-?" ] && exit 1
out=""
while [ $# -gt 0 ]; do
  case "$1" in -o) out="$2" ;; -Fo*) out="${1#-Fo}" ;; esac
  shift
done
[ -n "$out" ] && : > "$out"
exit 0
CC
    chmod +x "$FAKE/cc"
    export CC_aarch64_linux_android="$FAKE/cc" AR_aarch64_linux_android=ar
    echo "no NDK: C code of build scripts is stubbed for this check"
  fi
  if cargo check --quiet --lib --locked --target aarch64-linux-android --features android; then
    ok "cargo check aarch64-linux-android --features android (checked, not linked: no NDK)"
  else
    bad "cargo check --target aarch64-linux-android --features android"
  fi
else
  skip "rustup target add aarch64-linux-android failed (offline?)"
fi

# ---------------------------------------------------------------- 5. host cdylib: symbols + JVM harness
log "5. JNI bridge on the host JVM"
if [ ! -f src/android.rs ]; then
  skip "host JNI bridge: the bridge (src/android.rs) is not on this branch"
elif command -v cargo >/dev/null && cargo build --quiet --lib --locked --features android; then
  SO="$CARGO_TARGET_DIR/debug/libfotovakt.so"
  H="$BC/host"
  rm -rf "$H" && mkdir -p "$H/classes" "$H/headers"
  if javac -d "$H/classes" -h "$H/headers" --release 17 -cp "$JSONJAR" "${JAVA_SRC[@]}" \
       $(find android/host-test/src -name '*.java'); then
    grep -ho 'JNICALL Java_[A-Za-z0-9_]*' "$H/headers"/*.h | awk '{print $2}' | sort -u > "$H/declared.txt"
    nm -D --defined-only "$SO" | awk '{print $3}' | grep '^Java_' | sort -u > "$H/exported.txt"
    missing=$(comm -23 "$H/declared.txt" "$H/exported.txt")
    extra=$(comm -13 "$H/declared.txt" "$H/exported.txt")
    nd=$(wc -l < "$H/declared.txt"); ne=$(wc -l < "$H/exported.txt")
    if [ -z "$missing" ] && [ -z "$extra" ] && [ "$nd" -gt 0 ]; then
      ok "JNI symbols: $nd native methods declared (javac -h), $ne Java_ symbols exported (nm -D), all matched"
    else
      bad "JNI symbols: missing in .so: ${missing:-none}; exported without a declaration: ${extra:-none}"
    fi
    if timeout 300 java -Djava.library.path="$(dirname "$SO")" -cp "$H/classes:$JSONJAR" no.fotovakt.hosttest.BridgeHarness "$H/run" "$ROOT/models" | tee "$H/harness.log"; then
      ok "host JVM harness: $(tail -1 "$H/harness.log")"
    else
      bad "host JVM harness: $(tail -1 "$H/harness.log")"
    fi
  else
    bad "javac -h of NativeCore and the harness"
  fi
elif command -v cargo >/dev/null; then
  bad "cargo build --lib --features android (host cdylib)"
else
  skip "cargo not installed: host JVM harness"
fi

# ---------------------------------------------------------------- summary
echo
echo "Not checked here (needs a device or the SDK/NDK): APK packaging, R8, linking the .so for"
echo "Android, ONNX Runtime from the AAR, MediaStore/notifications/FGS behaviour. See android/README.md."
for f in "${FAILED[@]}"; do echo "FAILED: $f"; done
echo "android checks took $(( $(date +%s) - START )) s"
echo "android-checks: $PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" -eq 0 ]
