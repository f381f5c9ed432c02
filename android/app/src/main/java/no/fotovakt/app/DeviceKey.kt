package no.fotovakt.app

import android.content.Context
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import android.util.Log
import no.fotovakt.core.DeviceSigner
import no.fotovakt.core.FotovaktException
import no.fotovakt.core.NativeCore
import java.security.KeyPairGenerator
import java.security.KeyStore
import java.security.PrivateKey
import java.security.Signature
import java.security.spec.ECGenParameterSpec
import java.util.UUID

/**
 * The phone's device key: an EC P-256 signing key made once in the Android Keystore, in
 * StrongBox where the phone has one (else the TEE), never exportable. The core signs case
 * packages and ledger checkpoints with it through the bridge ([NativeCore.setDeviceSigner]): it
 * hands over the bytes, the Keystore signs. The key's attestation chain (made with a challenge
 * at creation) goes into every package, so a receiver can see that the key is hardware-backed,
 * which app holds it, and the verified-boot state.
 *
 * If the Keystore cannot give a key (a broken Keystore, a key lost with a credential reset), the
 * core signs with its own key file instead and says so (`provider` = `key_file`); the health
 * report flags it. A new key (the old one gone) is recorded in the ledger as a key change, and
 * its fingerprint must be registered again (README, "How secure is it").
 */
object DeviceKey {
    private const val TAG = "fotovakt"
    const val ALIAS = "fotovakt-device-key-v1"
    private const val PREFS = "fotovakt-device-key"

    /** Why the Keystore key is not in use (null while it is). */
    @Volatile
    var lastError: String? = null
        private set

    @Volatile
    private var installed = false

    /** Installs the Keystore signer in the core once per process, before the core starts. */
    @Synchronized
    fun install(context: Context) {
        if (installed) return
        val signer = signer(context.applicationContext)
        try {
            NativeCore.setDeviceSigner(signer)
            if (signer != null) {
                lastError = null
                installed = true
            }
        } catch (e: FotovaktException) {
            lastError = "the Keystore key does not sign: ${e.message}"
            Log.e(TAG, "device key: the Keystore key does not sign; the core signs with its key file${Logs.detail(e.message)}")
            NativeCore.setDeviceSigner(null)
        }
    }

    /** The Keystore signer, the key made on first use; null (and [lastError]) when the Keystore fails. */
    private fun signer(context: Context): DeviceSigner? = try {
        val ks = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }
        if (!ks.containsAlias(ALIAS)) generate(context)
        val key = ks.getKey(ALIAS, null) as PrivateKey
        val chain = ks.getCertificateChain(ALIAS)?.map { it.encoded } ?: emptyList()
        val public = ks.getCertificate(ALIAS).publicKey.encoded
        val strongbox = context.getSharedPreferences(PREFS, Context.MODE_PRIVATE).getBoolean("strongbox", false)
        KeystoreSigner(key, public, chain, strongbox)
    } catch (e: java.security.GeneralSecurityException) {
        failed(e)
    } catch (e: java.io.IOException) {
        failed(e)
    } catch (e: RuntimeException) { // ProviderException, a Keystore that is not there
        failed(e)
    }

    private fun failed(e: Exception): DeviceSigner? {
        lastError = "Android Keystore: ${e.javaClass.simpleName}: ${e.message}"
        Log.e(TAG, "device key: the Android Keystore failed (${Logs.of(e)}); the core signs with its key file")
        return null
    }

    private fun generate(context: Context) {
        // No attestation server here: the challenge binds the certificate to this key's making.
        val challenge = "fotovakt-device-key-v1:${UUID.randomUUID()}".toByteArray()
        fun spec(strongbox: Boolean) = KeyGenParameterSpec.Builder(ALIAS, KeyProperties.PURPOSE_SIGN)
            .setAlgorithmParameterSpec(ECGenParameterSpec("secp256r1"))
            .setDigests(KeyProperties.DIGEST_SHA256)
            .setAttestationChallenge(challenge)
            .setIsStrongBoxBacked(strongbox)
            .build()
        val kpg = KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, "AndroidKeyStore")
        val strongbox = try {
            kpg.initialize(spec(true))
            kpg.generateKeyPair()
            true
        } catch (e: StrongBoxUnavailableException) {
            kpg.initialize(spec(false))
            kpg.generateKeyPair()
            false
        }
        context.getSharedPreferences(PREFS, Context.MODE_PRIVATE).edit().putBoolean("strongbox", strongbox).apply()
        Log.i(TAG, "device key made in the Keystore (${if (strongbox) "StrongBox" else "TEE"})")
    }
}

/** Signs in the Keystore: the private key object is a handle, its bytes never leave. */
private class KeystoreSigner(
    private val key: PrivateKey,
    private val public: ByteArray,
    private val chain: List<ByteArray>,
    private val strongbox: Boolean,
) : DeviceSigner {
    override fun algorithm(): String = "ecdsa-p256-sha256"

    override fun publicKey(): ByteArray = public.clone()

    override fun sign(message: ByteArray): ByteArray =
        Signature.getInstance("SHA256withECDSA").run {
            initSign(key)
            update(message)
            sign()
        }

    override fun attestationChain(): Array<ByteArray> = chain.toTypedArray()

    override fun provider(): String = if (strongbox) "android_strongbox" else "android_keystore"
}
