//! Registries (the Docker Registry HTTP API v2, the OCI distribution API) without an engine:
//! push an archive, pull one, copy, list tags and repositories, delete and check — one file
//! per verb.
//!
//! The HTTP side is `oci-client` (authentication challenges, uploads, verified blob streams)
//! over rustls with the `ring` provider; what it lacks (deleting a manifest) is a plain request
//! with the same credentials. Layers are gzip-compressed on the way up, on all cores; every
//! byte that comes down is checked against its digest as it streams, and archives are written
//! atomically.
//!
//! The registry reads neither the environment nor the artifacts directory: the Docker config
//! directory ([`Access::docker_config`]) and the pushed-layers record (the `layer_cache` of
//! [`push()`]) are the caller's to name, and whether an archive is already there is the
//! caller's question (the pull use case asks the store).

mod blob;
mod check;
mod client;
mod copy;
mod delete;
mod download;
mod error;
mod layer_cache;
mod layers;
mod layout;
mod list;
mod login;
mod manifest;
mod pull;
mod push;
mod resolved;
mod retry;
mod stream;

use std::str::FromStr;

pub use oci_client::Reference;

pub use check::{Checked, check};
pub use client::{Access, Notify, Registry, is_loopback};
pub use copy::copy;
pub use delete::delete;
pub use download::{Sink, WriteSink, download_blob};
pub use error::RegistryError;
pub use layout::send_layout;
pub use list::{catalog, tags};
pub use login::verify as verify_login;
pub use pull::{PullRequest, resolve};
pub use push::{Pushed, push};
pub use resolved::Resolved;

/// Parses `HOST[:PORT]/REPO[:TAG|@DIGEST]`.
pub fn parse_reference(text: &str) -> Result<Reference, RegistryError> {
    Reference::from_str(text).map_err(|source| RegistryError::BadReference {
        reference: text.to_string(),
        source,
    })
}

/// Whether a reference text names a tag or digest (the part after the last `/` holds `:` or
/// `@`).
pub fn names_tag(text: &str) -> bool {
    let last = text.rsplit('/').next().unwrap_or(text);
    text.contains('/') && (last.contains(':') || last.contains('@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_in_reference_texts() {
        assert!(names_tag("127.0.0.1:5000/web:1.0"));
        assert!(names_tag("127.0.0.1:5000/web@sha256:abc"));
        assert!(!names_tag("127.0.0.1:5000/web"));
        assert!(!names_tag("127.0.0.1:5000/team/web"));
    }

    #[test]
    fn bad_references_are_named() {
        let e = parse_reference("Bad Ref").unwrap_err();
        assert!(matches!(e, RegistryError::BadReference { .. }), "{e:?}");
        assert!(e.to_string().contains("`Bad Ref`"), "{e}");
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(
            parse_reference("127.0.0.1:5000/team/web:1.0")
                .unwrap()
                .repository(),
            "team/web"
        );
    }
}
