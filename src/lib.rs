//! fotovakt: keeps evidence photos out of personal cloud sync.
pub mod classify;
