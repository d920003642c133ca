//! `convert`: an archive into another format in place — into the layer store (a `.ref`), or
//! out of it as a self-contained `.docker`, `.zip` or `.zst` — checked in full as it streams
//! (every digest, the image ID against the name), the source removed only once the new archive
//! is committed, and kept with `keep`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::archive::Archive;
use crate::codec::{self, Body, Compression};
use crate::digest;
use crate::error::Result;
use crate::image::ingest::{self, IngestRequest, LayerCompression};
use crate::image::verify::StreamCheck;
use crate::layout::Layout;
use crate::lock::DirLock;
use crate::meta::{self, Summary};
use crate::name::Format;
use crate::progress::Reporter;

/// What `convert` was asked for.
#[derive(Debug, Clone)]
pub struct ConvertRequest {
    pub to: Format,
    /// The level of a `.zip` or `.zst` written.
    pub compression: Option<Compression>,
    /// How a `.ref` written compresses plain layers.
    pub layers: LayerCompression,
    /// Keep the source.
    pub keep: bool,
}

/// What `convert` did.
#[derive(Debug, Clone)]
pub struct Converted {
    pub path: PathBuf,
    /// False when the archive was in that format already.
    pub written: bool,
    /// Whether the source was removed.
    pub removed: bool,
}

/// Converts `src` into `req.to` beside it. `lock` is the artifacts directory's lock (none for
/// an archive outside it, whose own folder then holds a `.ref`'s layer store).
pub fn convert(
    lock: Option<&DirLock>,
    src: &Archive,
    req: &ConvertRequest,
    reporter: Arc<dyn Reporter>,
) -> Result<Converted> {
    if src.name.format == req.to {
        return Ok(Converted {
            path: src.path.clone(),
            written: false,
            removed: false,
        });
    }
    let dest = src
        .path
        .with_file_name(src.name.with_format(req.to.clone()).file_name());
    let path = match req.to {
        Format::Ref => into_store(lock, src, &dest, req.layers, reporter.as_ref())?,
        _ => {
            let level = req.compression.as_ref().map_or(0, |c| c.level);
            let comment = crate::image::inspect(src)
                .ok()
                .map(|info| Summary::of(&info, &src.name.id).zip_comment());
            let mut check = StreamCheck::start(&src.name.id);
            let body = Body {
                source: &src.path,
                modified: SystemTime::now(),
                comment: comment.as_deref(),
            };
            crate::image::with_tar(src, reporter.as_ref(), |tar| {
                codec::write_checked_archive(tar, body, &dest, level, Some(&mut check))
                    .map_err(crate::Error::from)
            })?;
            super::compress::remember(&dest, &check);
            dest
        }
    };
    reporter.finish();
    if !req.keep {
        remove_source(src)?;
    }
    Ok(Converted {
        path,
        written: true,
        removed: !req.keep,
    })
}

/// Writes `src` into the layer store its `.ref` at `dest` will use (the nearest at or above its
/// folder, else one made at the artifacts directory's root, or in the file's folder outside
/// it), then the `.ref`, then `index.json`.
fn into_store(
    lock: Option<&DirLock>,
    src: &Archive,
    dest: &Path,
    layers: LayerCompression,
    reporter: &dyn Reporter,
) -> Result<PathBuf> {
    // The store of the artifacts directory (or of the file's folder outside it): never one
    // above it, whose other archives this run does not see.
    let home = lock.map_or_else(|| parent(dest), |l| l.dir());
    let layout = match Layout::of_ref(dest) {
        Ok(layout) if layout.root().starts_with(Layout::at(home).root()) => layout,
        _ => super::update::own_layout(home)?,
    };
    let held = super::update::held_layers(layout.root(), &layout)?;
    // What the file holds decides whether its manifest is kept as it is (its name's ID is the
    // manifest's or index's digest) or the store writes its own (the ID is the config's).
    let (info, _) = crate::image::read(src)?;
    let as_is = !digest::hex_part(&info.id).starts_with(&src.name.id);
    let req = IngestRequest {
        layout: &layout,
        name_id: &src.name.id,
        as_is,
        compression: layers,
        held: &held,
        diff_ids: &[],
        guess_by_size: false,
        rewrite: false,
    };
    let ingested = crate::image::with_tar(src, reporter, |tar| {
        ingest::ingest(tar, &req).map_err(crate::Error::from)
    })?;
    ingested.reference.write(dest)?;
    if let Ok(written) = Archive::from_path(dest) {
        meta::remember_verified(&written, &ingested.info);
    }
    super::update::rewrite_index(layout.root(), &layout, &[])?;
    Ok(dest.to_path_buf())
}

/// Removes the source archive; a `.ref` leaves its blobs (for `clean` to collect) and
/// `index.json` is rewritten without it.
fn remove_source(src: &Archive) -> Result<()> {
    let (_, error) = crate::store::remove(&[src]);
    if let Some(e) = error {
        return Err(e.into());
    }
    if src.name.format == Format::Ref
        && let Ok(layout) = Layout::of_ref(&src.path)
    {
        super::update::rewrite_index(layout.root(), &layout, &[src.path.as_path()])?;
    }
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
