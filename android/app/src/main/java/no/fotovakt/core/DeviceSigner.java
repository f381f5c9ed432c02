package no.fotovakt.core;

/**
 * The phone's device key as the core sees it: the core hands over the bytes to sign and gets
 * the signature back; the key itself never leaves its keystore. The app installs one before
 * starting the core ({@link NativeCore#setDeviceSigner}); on Android it is an EC P-256 key in
 * the Android Keystore ({@code DeviceKey.kt}, StrongBox where the phone has one), and the host
 * harness installs a JCA key that signs the same way.
 *
 * <p>Plain Java, no Android imports (compiled into the app and the host harness). Methods may
 * be called from any thread: a checkpoint is signed on the core's watcher thread, an export on
 * the caller's.
 */
public interface DeviceSigner {
    /** "ecdsa-p256-sha256" (the Keystore's SHA256withECDSA) or "ed25519". */
    String algorithm();

    /** The public key as X.509 SubjectPublicKeyInfo DER ({@code PublicKey.getEncoded()}). */
    byte[] publicKey();

    /** The signature over {@code message}: DER-encoded ECDSA for "ecdsa-p256-sha256". */
    byte[] sign(byte[] message) throws Exception;

    /** The key's attestation chain, DER certificates, leaf first; empty when there is none. */
    byte[][] attestationChain();

    /** Where the key lives: "android_strongbox", "android_keystore" (TEE), or "key_file". */
    String provider();
}
