//! An image found at a registry and ready to fetch: what `resolve` learns and `fetch` writes.

use bytes::Bytes;

use super::Reference;
use crate::name::ArchiveName;
use crate::oci::Document;

/// An image found at a registry, ready to fetch: its manifest and config, and the name of the
/// archive it becomes.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The reference pulled.
    pub reference: Reference,
    /// The archive's name: the image and version asked for (or defaulted), the ID from the
    /// config's digest, the format asked for.
    pub name: ArchiveName,
    /// The digest of the (platform's) manifest.
    pub digest: String,
    /// The manifest, parsed.
    pub(super) doc: Document,
    /// The manifest's bytes, as the registry gave them.
    pub(super) manifest_bytes: Bytes,
    /// The config's bytes, checked against its digest.
    pub(super) config_bytes: Vec<u8>,
}

impl Resolved {
    /// The manifest, parsed.
    pub fn manifest(&self) -> &Document {
        &self.doc
    }

    /// The manifest's bytes, as the registry gave them (their digest is [`Resolved::digest`]).
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_bytes
    }

    /// The config's bytes, checked against its digest.
    pub fn config_bytes(&self) -> &[u8] {
        &self.config_bytes
    }

    /// The bytes of the layers, as the registry stores them.
    pub fn layers_size(&self) -> u64 {
        self.doc
            .layers
            .iter()
            .fold(0u64, |t, l| t.saturating_add(l.size))
    }
}
