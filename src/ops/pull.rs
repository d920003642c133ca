//! Pulling an image into the artifacts directory: the registry resolves the manifest and
//! config (which give the archive's name); when the artifacts directory already has an archive
//! of that image, version and ID, nothing more is fetched; otherwise the registry fetches the
//! blobs and writes the archive.

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::Result;
use crate::lock::DirLock;
use crate::name::ArchiveName;
use crate::progress::Reporter;
use crate::registry::{self, Access, PullRequest, Registry};

/// What `pull` did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The archive: the one written, or the one already there.
    pub path: PathBuf,
    pub name: ArchiveName,
    /// The manifest's digest.
    pub digest: String,
    /// False when an archive of the same image, version and ID was already there.
    pub written: bool,
}

/// Pulls `req.reference` with `access` into the artifacts directory `lock` holds (see
/// [`registry::fetch`] for the archive written), unless an archive of the same image, version
/// and ID (in any known format) is already there.
pub async fn pull(
    lock: &DirLock,
    req: &PullRequest,
    access: &Access,
    reporter: Arc<dyn Reporter>,
) -> Result<Pulled> {
    let registry = Registry::for_reference(&req.reference, access)?;
    let resolved = registry::resolve(&registry, req).await?;
    let name = &resolved.name;
    let dir = lock.dir();
    let store = super::open_store(dir)?;
    if let Some(existing) = store
        .known_of(&name.image)
        .find(|a| a.name.version == name.version && a.name.id == name.id)
    {
        return Ok(Pulled {
            path: existing.path.clone(),
            name: existing.name.clone(),
            digest: resolved.digest,
            written: false,
        });
    }
    let path = registry::fetch(&registry, &resolved, dir, reporter).await?;
    Ok(Pulled {
        path,
        name: resolved.name,
        digest: resolved.digest,
        written: true,
    })
}
