//! Pulling in two steps: [`resolve`] finds the manifest for a platform and its config, which
//! give the archive's name; [`fetch`] streams every blob, checked against its digest, into a
//! `docker load`-able archive written atomically. Whether an archive of that name is already
//! there is the caller's question (the pull use case asks the store).

use bytes::Bytes;

use super::error::RegistryError;
use super::manifest::parse_document;
use super::resolved::Resolved;
use super::{Reference, Registry};
use crate::codec::Compression;
use crate::name::{ArchiveName, Format};
use crate::oci::{DOCKER_LIST, Document, OCI_INDEX, Platform};

/// What `pull` was asked for.
#[derive(Debug, Clone)]
pub struct PullRequest {
    pub reference: Reference,
    /// The image name [default: the repository's last component].
    pub image: Option<String>,
    /// The version [default: the tag].
    pub version: Option<String>,
    /// The platform chosen from a manifest list or index.
    pub platform: Platform,
    /// Write a compressed archive (its format and level); `None`: a `.docker` archive.
    pub compress: Option<Compression>,
}

/// Resolves `req.reference` to the manifest for `req.platform` and fetches its config
/// (checked against its digest): nothing else is fetched.
pub async fn resolve(registry: &Registry, req: &PullRequest) -> Result<Resolved, RegistryError> {
    let reference = &req.reference;
    let (doc, manifest_bytes, digest) =
        resolve_manifest(registry, reference, &req.platform).await?;
    let config = doc.config.clone().ok_or_else(|| RegistryError::NoConfig {
        reference: reference.to_string(),
    })?;
    let config_bytes = registry.small_blob(reference, &config.digest).await?;
    let image = match &req.image {
        Some(i) => i.clone(),
        None => reference
            .repository()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    let version = match (&req.version, reference.tag()) {
        (Some(v), _) => v.clone(),
        (None, Some(tag)) => tag.to_string(),
        (None, None) => {
            return Err(RegistryError::NoVersion {
                reference: reference.to_string(),
            });
        }
    };
    let hex = config
        .digest
        .strip_prefix("sha256:")
        .unwrap_or(&config.digest);
    let id = crate::digest::short_id(hex).ok_or_else(|| RegistryError::NotAnImageId {
        digest: hex.to_string(),
    })?;
    let format = req
        .compress
        .as_ref()
        .map_or(Format::Docker, |c| c.format.clone());
    let name = ArchiveName::new(&image, &version, &id, format)?;
    Ok(Resolved {
        reference: reference.clone(),
        name,
        digest,
        doc,
        manifest_bytes,
        config_bytes,
    })
}

/// Resolves a manifest list or index to the manifest for `platform`.
async fn resolve_manifest(
    registry: &Registry,
    reference: &Reference,
    platform: &Platform,
) -> Result<(Document, Bytes, String), RegistryError> {
    let (mut bytes, mut digest) = registry.manifest(reference).await?;
    let mut doc = parse_document(&bytes, &format!("the manifest of {reference}"))?;
    for _ in 0..4 {
        if !matches!(doc.media_type(), DOCKER_LIST | OCI_INDEX) {
            return Ok((doc, bytes, digest));
        }
        let entries = doc.manifests.clone().unwrap_or_default();
        let chosen = entries
            .iter()
            .find(|m| m.platform.as_ref().is_some_and(|p| platform.matches(p)))
            .ok_or_else(|| RegistryError::NoPlatform {
                reference: reference.to_string(),
                platform: platform.to_string(),
                offered: entries
                    .iter()
                    .filter_map(|m| m.platform.as_ref().map(ToString::to_string))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let child = reference.clone_with_digest(chosen.digest.clone());
        (bytes, digest) = registry.manifest(&child).await?;
        doc = parse_document(&bytes, &format!("the manifest of {child}"))?;
    }
    Err(RegistryError::TooDeep {
        reference: reference.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/amd64/x/y").is_err());
        let any_variant = Platform::parse("linux/arm64").unwrap();
        assert!(any_variant.matches(&p));
        assert!(!p.matches(&any_variant));
    }
}
