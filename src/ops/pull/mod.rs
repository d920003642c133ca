//! Pulling an image into the artifacts directory: the registry resolves the manifest and
//! config (which give the archive's name); when the artifacts directory already has an archive
//! of that image, version and ID, nothing more is fetched; otherwise the registry fetches the
//! blobs and writes the archive.

pub mod store;
pub mod web;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::codec::{self, Body};
use crate::engine::EngineError;
use crate::pipe;
use crate::registry::Resolved;

use crate::error::Result;
use crate::lock::DirLock;
use crate::name::ArchiveName;
use crate::progress::Reporter;
use crate::registry::{self, Access, PullRequest, Registry};

/// How many blobs download at once (`pull URL`, `pull REF --store`).
const PARALLEL: usize = 4;

/// What `pull URL` and `pull REF --store` did.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// The archive: the one written, or the one already there.
    pub path: PathBuf,
    pub name: ArchiveName,
    /// False when an archive of the same image, version and ID was already there.
    pub written: bool,
    /// The bytes downloaded.
    pub downloaded: u64,
    /// The bytes of the image's blobs the layer store already held (for a `.ref`).
    pub reused: u64,
}

impl Downloaded {
    /// The archive already there: nothing downloaded.
    fn existing(archive: crate::archive::Archive) -> Downloaded {
        Downloaded {
            path: archive.path,
            name: archive.name,
            written: false,
            downloaded: 0,
            reused: 0,
        }
    }
}

/// Names an image whose blobs are now all in `layout`: checks that every blob `reference`
/// needs is there and whole, writes the `.ref` archive `name` in `dir` (last, so that the store
/// never holds a `.ref` whose blobs are not all there) and lists it in `index.json`. Returns
/// its path and the bytes the image's blobs take in the store.
fn write_ref(
    dir: &Path,
    layout: &crate::layout::Layout,
    name: &ArchiveName,
    reference: &crate::layout::RefFile,
) -> Result<(PathBuf, u64)> {
    let complete = crate::layout::graph::needs(layout, &reference.descriptor())?;
    let dest = dir.join(name.file_name());
    reference.write(&dest)?;
    super::update::rewrite_index(dir, layout, &[])?;
    Ok((dest, complete.size()))
}

/// The archive of `name`'s image, version and ID (in any known format) in the artifacts
/// directory `dir`, if there is one.
fn already_there(dir: &Path, name: &ArchiveName) -> Result<Option<crate::archive::Archive>> {
    let store = super::open_store(dir)?;
    Ok(store
        .known_of(&name.image)
        .find(|a| a.name.version == name.version && a.name.id == name.id)
        .cloned())
}

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
    if let Some(existing) = already_there(dir, name)? {
        return Ok(Pulled {
            path: existing.path,
            name: existing.name,
            digest: resolved.digest,
            written: false,
        });
    }
    let level = req.compress.as_ref().map_or(0, |c| c.level);
    let path = fetch(&registry, &resolved, dir, level, reporter).await?;
    Ok(Pulled {
        path,
        name: resolved.name,
        digest: resolved.digest,
        written: true,
    })
}

/// Fetches the image `resolved` names into the directory `dir` as a `docker load`-able
/// archive: the tar the registry client streams (Docker 25's layout: the blobs as the registry
/// stores them, each checked against its digest) written atomically as `dir/<resolved.name>`
/// (compressed at `level` when the name says so). Returns its path.
async fn fetch(
    registry: &Registry,
    resolved: &Resolved,
    dir: &Path,
    level: u32,
    reporter: Arc<dyn Reporter>,
) -> Result<PathBuf> {
    let dest = dir.join(resolved.name.file_name());
    reporter.start(Some(resolved.layers_size()));
    let (tx, mut reader) = pipe::to_reader();
    let source = PathBuf::from(resolved.reference.whole());
    let writer = tokio::task::spawn_blocking(move || {
        let body = Body {
            source: &source,
            modified: SystemTime::now(),
            comment: None,
        };
        codec::write_archive(&mut reader, body, &dest, level)
    });
    let name = &resolved.name;
    let tag = format!(
        "{}:{}",
        name.image,
        crate::version::docker_tag(&name.version)?
    );
    let result = registry::send_layout(registry, resolved, &tx, &tag, reporter.as_ref()).await;
    match &result {
        Ok(()) => tx.finish().await,
        Err(e) => tx.fail(io::Error::other(e.to_string())).await,
    }
    let written = writer.await.map_err(|e| EngineError::Protocol {
        action: "writing the archive".into(),
        reason: e.to_string(),
    })?;
    result?;
    let path = written?;
    reporter.finish();
    Ok(path)
}
