package no.fotovakt.core;

/**
 * Thrown by {@link NativeCore} when the Rust core returns an error, or when Rust code panicked
 * (the message then starts with {@code "panic: "}). The Rust side constructs it by class name,
 * so the name and the (String) constructor are kept by R8 (proguard-rules.pro).
 */
public class FotovaktException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public FotovaktException(String message) {
        super(message);
    }
}
