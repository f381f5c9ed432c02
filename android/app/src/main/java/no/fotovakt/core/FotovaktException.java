package no.fotovakt.core;

/**
 * Thrown by {@link NativeCore} when the Rust core returns an error, or when Rust code panicked.
 *
 * <p>Callers branch on {@link #getCode()}, never on the message: the code is stable and comes
 * from the Rust error's variant ({@code src/android/errors.rs} maps each one), the message is
 * for logs and people. A refusal (the core declined the request and changed nothing: a missing
 * case ID, an item that is not in the store, a destination it will not write to) arrives as the
 * subclass {@link RefusedException}, with a code starting {@code REFUSED_}.
 *
 * <p>The Rust side constructs both classes by name with the {@code (String, String)}
 * constructor, so they are kept by R8 (proguard-rules.pro). The host harness checks that every
 * code the core can send is a constant of {@link Code} ({@code NativeCore.errorCodes()}).
 */
public class FotovaktException extends RuntimeException {
    private static final long serialVersionUID = 2L;

    /** What went wrong, one constant per kind of failure the core reports. */
    public enum Code {
        /** The configuration is invalid (a bad value, an unknown key). */
        CONFIG,
        /** The store cannot be opened or used (placement, permissions, locking). */
        STORE,
        /** The ledger failed (SQLite, its head file). */
        LEDGER,
        /** No item matches the number or hash given. */
        NO_SUCH_ITEM,
        /** The hash prefix given matches more than one item. */
        AMBIGUOUS_ITEM,
        /** A move into or out of the store failed; the file is where the message says. */
        MOVE,
        /** A case package could not be written. */
        PACKAGE,
        /** A file could not be opened safely (a symlink, not a regular file, gone). */
        OPEN,
        /** An I/O operation failed. */
        IO,
        /** The classifier could not judge a keyframe handed in. */
        KEYFRAME,
        /** A file an officer tagged could not be quarantined; it stays where it is. */
        TAG_FAILED,
        /** A file offered for import (case camera, card) is not evidence the core can take. */
        NOT_EVIDENCE,
        /** Tag, session start and export need a case ID. */
        REFUSED_CASE_ID_REQUIRED,
        /** Release needs a reason for the custody log. */
        REFUSED_REASON_REQUIRED,
        /** Tag of a path outside every camera folder and the store. */
        REFUSED_OUTSIDE_CAMERAS,
        /** Release of a path that is not a file of the store. */
        REFUSED_NOT_A_STORE_PATH,
        /** A store file that no item names. */
        REFUSED_UNKNOWN_STORE_FILE,
        /** The item is not in the store now (released, purged, kept). */
        REFUSED_NOT_QUARANTINED,
        /** Tag of an item that is not in the store (tag the file by its path). */
        REFUSED_TAG_NOT_IN_STORE,
        /** A quarantined item without a store file (a damaged ledger: run verify). */
        REFUSED_NO_STORE_FILE,
        /** The item's original path does not match its intake event (run verify). */
        REFUSED_ORIGINAL_PATH_MISMATCH,
        /** The item's original path is inside the store. */
        REFUSED_ORIGINAL_IN_STORE,
        /** The item's original path is outside the camera folders. */
        REFUSED_ORIGINAL_OUTSIDE_CAMERAS,
        /** The folder a release would write to no longer exists. */
        REFUSED_ORIGINAL_FOLDER_GONE,
        /** A recovered item of unknown origin, and no camera folder to release it into. */
        REFUSED_RELEASE_NEEDS_CAMERA,
        /** A session that ended before it could be read back. */
        REFUSED_SESSION_ENDED,
        /** An export destination that already holds something. */
        REFUSED_TARGET_NOT_EMPTY,
        /** A package or report destination in a synced or media-indexed place. */
        REFUSED_OUTPUT_IN_SYNCED_PLACE,
        /** A package or report destination inside the store. */
        REFUSED_OUTPUT_IN_STORE,
        /** A report destination without a file name. */
        REFUSED_NOT_A_FILE_NAME,
        /** No item has this case ID. */
        REFUSED_UNKNOWN_CASE,
        /** None of the case's items is in the store. */
        REFUSED_NOTHING_IN_STORE,
        /** Every exported item of the case is already acknowledged. */
        REFUSED_ALREADY_ACKNOWLEDGED,
        /** Acknowledging a case that was never exported. */
        REFUSED_NOT_EXPORTED,
        /** The store has no usable device key: packages are not written unsigned (see health). */
        REFUSED_NO_DEVICE_KEY,
        /** Anchoring the ledger again while its head anchor is there and readable. */
        REFUSED_HEAD_PRESENT,
        /** An argument from Java is missing (null) or cannot be used. */
        ARGUMENT,
        /** The agent is stopped, or the handle names none. */
        NOT_RUNNING,
        /** The core cannot make a preview of this file (format, size): decode it on the platform. */
        PREVIEW_UNSUPPORTED,
        /** A JNI call failed (out of memory in the JVM, a pending exception). */
        JNI,
        /** A bug in the core (a panic, a result it could not encode). */
        INTERNAL,
        /** A code this version of the app does not know (a newer core). */
        UNKNOWN;

        /** The constant named {@code name}, or {@link #UNKNOWN}. */
        public static Code of(String name) {
            if (name != null) {
                for (Code c : values()) {
                    if (c.name().equals(name)) {
                        return c;
                    }
                }
            }
            return UNKNOWN;
        }

        /** Did the core decline the request, changing nothing? */
        public boolean isRefusal() {
            return name().startsWith("REFUSED_");
        }
    }

    private final Code code;

    /** As the Rust side throws it: the code's name and the message. */
    public FotovaktException(String code, String message) {
        this(Code.of(code), message);
    }

    public FotovaktException(Code code, String message) {
        super(message);
        this.code = code;
    }

    /** The stable code of the failure; branch on this, not on the message. */
    public Code getCode() {
        return code;
    }
}
