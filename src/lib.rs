//! fotovakt: keeps evidence photos out of personal cloud sync.
pub mod classify;
#[cfg(feature = "android")]
pub mod android;
