//! `push`: where an archive goes in a registry.

use crate::error::Result;
use crate::registry::{self, Reference};
use crate::store::Archive;
use crate::version;

/// The reference to push `archive` to: `text` (`HOST[:PORT]/REPO[:TAG]`), with the archive's
/// version as its tag when it names none.
pub fn reference(text: &str, archive: &Archive) -> Result<Reference> {
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
