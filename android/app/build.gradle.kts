import org.jetbrains.kotlin.gradle.dsl.JvmTarget
import java.security.MessageDigest

plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "no.fotovakt.app"
    compileSdk = 35

    defaultConfig {
        applicationId = "no.fotovakt.app"
        minSdk = 29
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        ndk {
            // The ABIs cargo-ndk builds below; onnxruntime-android ships the same three (and x86).
            abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64")
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = true
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    sourceSets["main"].assets.srcDir(layout.buildDirectory.dir("generated/fotovakt-assets"))
    androidResources {
        // The model is read as it is packed; no point deflating an int8 ONNX file.
        noCompress += listOf("onnx")
    }
    packaging {
        // Keep .so files uncompressed and page-aligned in the APK so dlopen("libonnxruntime.so")
        // from Rust (ort::init_from with a bare soname) finds them without extraction.
        jniLibs.useLegacyPackaging = false
    }
}

kotlin {
    compilerOptions { jvmTarget.set(JvmTarget.JVM_17) }
}

dependencies {
    implementation(libs.onnxruntime.android)
    implementation(libs.enterprise.feedback)
}

// ---- The classifier in the APK -------------------------------------------------------------
// Copies the int8 model and the head from the repository's models/ into the assets, with a
// manifest of their SHA-256 computed here, from the very bytes packed. ModelAssets.kt copies
// them to filesDir/models at the first start and after every update and refuses to load a file
// whose hash differs. Nothing is hard-coded: a new model or head in models/ gets new hashes.
val modelFiles = listOf("efficientnet_lite0.int8.onnx", "case_head.json")
val modelAssets by tasks.registering {
    group = "build"
    description = "Packs models/ (int8 model + head) into the assets with a SHA-256 manifest."
    val from = File(rootProject.projectDir.parentFile, "models")
    val into = layout.buildDirectory.dir("generated/fotovakt-assets/models")
    modelFiles.forEach { inputs.file(File(from, it)) }
    outputs.dir(into)
    doLast {
        val out = into.get().asFile.apply { deleteRecursively(); mkdirs() }
        val hashes = modelFiles.map { name ->
            val src = File(from, name)
            require(src.isFile && src.length() > 0) { "models/$name is missing: the classifier must travel in the APK" }
            src.copyTo(File(out, name), overwrite = true)
            val md = MessageDigest.getInstance("SHA-256")
            src.inputStream().use { input ->
                val buf = ByteArray(1 shl 16)
                while (true) {
                    val n = input.read(buf)
                    if (n < 0) break
                    md.update(buf, 0, n)
                }
            }
            name to md.digest().joinToString("") { "%02x".format(it) }
        }
        val json = buildString {
            append("{\n  \"model\": \"${modelFiles[0]}\",\n  \"head\": \"${modelFiles[1]}\",\n  \"sha256\": {\n")
            append(hashes.joinToString(",\n") { (n, h) -> "    \"$n\": \"$h\"" })
            append("\n  }\n}\n")
        }
        File(out, "manifest.json").writeText(json)
    }
}
tasks.named("preBuild") { dependsOn(modelAssets) }

// ---- Rust core: cargo-ndk builds libfotovakt.so for each ABI into src/main/jniLibs ----------
// 16 KB pages (Android 15+ devices, required by Google Play for new apps from Nov 2025): the
// linker flag `-z max-page-size=16384` for every Android target is in ../../.cargo/config.toml,
// so cargo-ndk and a plain `cargo build --target ...` produce the same ELF alignment. Check with
// `llvm-readelf -l libfotovakt.so` (every LOAD segment Align 0x4000). libonnxruntime.so from the
// AAR is 16 KB aligned from ONNX Runtime 1.20 on (the AAR pinned here is 1.22).
// Needs ANDROID_NDK_HOME (or the SDK's ndk/<version>) and `cargo install cargo-ndk`, plus
// `rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android`.
val rustRoot = rootProject.projectDir.parentFile
val jniLibsDir = layout.projectDirectory.dir("src/main/jniLibs")
val cargoNdk by tasks.registering(Exec::class) {
    group = "build"
    description = "Builds the Rust core (feature android) for arm64-v8a, armeabi-v7a and x86_64."
    workingDir = rustRoot
    val release = providers.gradleProperty("rustDebug").map { false }.orElse(true)
    // A debug Rust build logs paths and case IDs (src/android/logging.rs): never in a release APK.
    doFirst {
        val releaseTask = gradle.startParameter.taskNames.any { it.contains("Release", ignoreCase = true) }
        check(release.get() || !releaseTask) { "-PrustDebug is for debug builds only: a release APK needs the release library (its logs name no paths or case IDs)" }
    }
    inputs.dir(File(rustRoot, "src"))
    inputs.file(File(rustRoot, "Cargo.toml"))
    inputs.file(File(rustRoot, "Cargo.lock"))
    outputs.dir(jniLibsDir)
    commandLine(
        buildList {
            addAll(listOf("cargo", "ndk", "--platform", "29"))
            listOf("arm64-v8a", "armeabi-v7a", "x86_64").forEach { addAll(listOf("-t", it)) }
            addAll(listOf("-o", jniLibsDir.asFile.absolutePath, "build", "--lib", "--features", "android", "--locked"))
            if (release.get()) add("--release")
        },
    )
}
tasks.named("preBuild") { dependsOn(cargoNdk) }
