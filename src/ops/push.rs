//! Pushing an archive to a registry: the reference pushed to (the archive's version as the
//! tag when it names none), then the registry's push.

use std::path::Path;
use std::sync::Arc;

use crate::error::Result;
use crate::progress::Reporter;
use crate::registry::{self, Access, Pushed, Reference, Registry};
use crate::store::Archive;
use crate::version;

/// The reference to push `archive` to: `text` (`HOST[:PORT]/REPO[:TAG|@DIGEST]`), with the
/// archive's version (its docker tag) as the tag when it names none.
pub fn target_reference(text: &str, archive: &Archive) -> Result<Reference> {
    let reference = registry::parse_reference(text)?;
    if registry::names_tag(text) {
        return Ok(reference);
    }
    Ok(Reference::with_tag(
        reference.registry().to_string(),
        reference.repository().to_string(),
        version::docker_tag(&archive.name.version)?,
    ))
}

/// Pushes the image of `archive` to `reference` (see [`target_reference`]) with `access`;
/// `layer_cache` is the file recording which blob each pushed layer became (`None`: none).
pub async fn push(
    archive: &Archive,
    reference: &str,
    access: &Access,
    layer_cache: Option<&Path>,
    reporter: Arc<dyn Reporter>,
) -> Result<Pushed> {
    let target = target_reference(reference, archive)?;
    let registry = Registry::for_reference(&target, access)?;
    Ok(registry::push(&registry, archive, &target, layer_cache, reporter).await?)
}
