package no.fotovakt.core;

/**
 * The little state the shell keeps between runs (backlog done, MediaStore marks, which items
 * the officer was told of, model install). On a phone: {@code SharedPreferences}
 * ({@code Prefs.kt}, written with {@code commit()}); in the host harness: a map.
 */
public interface KeyValueStore {
    String getString(String key, String dflt);

    long getLong(String key, long dflt);

    boolean getBoolean(String key, boolean dflt);

    boolean contains(String key);

    /** Writes several values at once, durably before it returns. */
    void put(Edit edit);

    /** A batch of writes (a null value removes the key). */
    final class Edit {
        final java.util.Map<String, Object> values = new java.util.LinkedHashMap<>();

        public Edit putString(String key, String value) {
            values.put(key, value);
            return this;
        }

        public Edit putLong(String key, long value) {
            values.put(key, value);
            return this;
        }

        public Edit putBoolean(String key, boolean value) {
            values.put(key, value);
            return this;
        }

        public Edit remove(String key) {
            values.put(key, null);
            return this;
        }

        /** What to write: key to String, Long, Boolean, or null (remove). */
        public java.util.Map<String, Object> values() {
            return java.util.Collections.unmodifiableMap(values);
        }
    }

    /** An in-memory store (the host harness; a process that may keep nothing). */
    final class InMemory implements KeyValueStore {
        private final java.util.Map<String, Object> map = new java.util.HashMap<>();

        @Override
        public synchronized String getString(String key, String dflt) {
            Object v = map.get(key);
            return v instanceof String ? (String) v : dflt;
        }

        @Override
        public synchronized long getLong(String key, long dflt) {
            Object v = map.get(key);
            return v instanceof Long ? (Long) v : dflt;
        }

        @Override
        public synchronized boolean getBoolean(String key, boolean dflt) {
            Object v = map.get(key);
            return v instanceof Boolean ? (Boolean) v : dflt;
        }

        @Override
        public synchronized boolean contains(String key) {
            return map.containsKey(key);
        }

        @Override
        public synchronized void put(Edit edit) {
            for (java.util.Map.Entry<String, Object> e : edit.values.entrySet()) {
                if (e.getValue() == null) {
                    map.remove(e.getKey());
                } else {
                    map.put(e.getKey(), e.getValue());
                }
            }
        }
    }
}
