//! TLS for every HTTP client of the program (registries, web servers).

use std::sync::Once;

/// Makes rustls's `ring` provider the process's default, once, before any HTTP client is
/// built (TLS is built without a provider of its own). A provider the program installed
/// first stays.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error means a provider is installed already: that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
