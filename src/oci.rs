//! The OCI image and Docker distribution documents: media types, descriptors, platforms, and
//! manifests, manifest lists and indexes, as archives and registries hold them.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// A platform that is not `OS/ARCH[/VARIANT]`.
#[derive(Debug, thiserror::Error)]
#[error("`{text}` is not a valid platform: {reason}")]
pub struct PlatformError {
    pub text: String,
    pub reason: String,
}

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// A content descriptor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    /// `sha256:` and 64 hex digits: a descriptor naming anything else is refused when parsed.
    #[serde(deserialize_with = "crate::digest::deserialize_sha256")]
    pub digest: String,
    #[serde(default, deserialize_with = "crate::digest::deserialize_size")]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// A platform of a manifest list entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `OS/ARCH[/VARIANT]`.
    pub fn parse(text: &str) -> Result<Platform, PlatformError> {
        let mut parts = text.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(os), Some(arch), variant, None) if !os.is_empty() && !arch.is_empty() => {
                Ok(Platform {
                    os: os.to_string(),
                    architecture: arch.to_string(),
                    variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
                })
            }
            _ => Err(PlatformError {
                text: text.to_string(),
                reason: "a platform is OS/ARCH or OS/ARCH/VARIANT, such as linux/amd64".into(),
            }),
        }
    }

    /// The host's platform, in Go's names.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: None,
        }
    }

    /// Whether an entry for `other` serves this platform (no variant here: any variant).
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A manifest, or a manifest list / index.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
}

impl Document {
    /// Parses a manifest, manifest list or index.
    pub fn parse(bytes: &[u8]) -> Result<Document, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The media type, from the document itself or, when it has none, from its shape.
    pub fn media_type(&self) -> &str {
        match &self.media_type {
            Some(t) => t,
            None if self.manifests.is_some() => OCI_INDEX,
            None => OCI_MANIFEST,
        }
    }
}
