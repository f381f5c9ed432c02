import org.jetbrains.kotlin.gradle.dsl.JvmTarget

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

// ---- Rust core: cargo-ndk builds libfotovakt.so for each ABI into src/main/jniLibs ----------
// Needs ANDROID_NDK_HOME (or the SDK's ndk/<version>) and `cargo install cargo-ndk`, plus
// `rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android`.
val rustRoot = rootProject.projectDir.parentFile
val jniLibsDir = layout.projectDirectory.dir("src/main/jniLibs")
val cargoNdk by tasks.registering(Exec::class) {
    group = "build"
    description = "Builds the Rust core (feature android) for arm64-v8a, armeabi-v7a and x86_64."
    workingDir = rustRoot
    val release = providers.gradleProperty("rustDebug").map { false }.orElse(true)
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
