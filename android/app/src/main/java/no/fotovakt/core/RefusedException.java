package no.fotovakt.core;

/**
 * The core declined the request and changed nothing: its {@link #getCode()} says which rule or
 * missing thing stopped it (a {@code REFUSED_} code). An officer can act on it (give a case ID,
 * choose another folder); it is not a fault of the device.
 */
public class RefusedException extends FotovaktException {
    private static final long serialVersionUID = 1L;

    /** As the Rust side throws it: the code's name and the message. */
    public RefusedException(String code, String message) {
        super(code, message);
    }
}
