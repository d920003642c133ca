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

/// Whether the TLS handshake under `error` (anywhere in its chain of sources) failed on the
/// server's certificate: not trusted, expired, for another name.
pub fn certificate_refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut at: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = at {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return matches!(
                tls,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            );
        }
        // An I/O error's `source` skips the error it wraps: step into that one itself.
        at = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    false
}
