//! `export`: versions as one OCI image layout tar (a bundle `docker load` and skopeo read), or,
//! against base versions, a delta without the blobs the base holds.
//!
//! A `.ref` archive gives its blobs from its layer store as they are. A `.docker`, `.zip` or
//! `.zst` is first written into a temporary layout beside FILE by the same ingest as
//! `convert --to ref` (every digest and the ID checked as it streams; the engine's manifest
//! kept where the ID is its digest, else plain layers gzip-compressed as the store does), then
//! read from there; the temporary layout is removed afterwards. Reading a Docker 25 layout's
//! blobs straight out of the archive would save that copy, but not for the classic layout
//! (Docker 24 and older), whose layers have no blob of their own: one path for every format.

use std::collections::HashSet;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::archive::Archive;
use crate::commit::AtomicFile;
use crate::digest;
use crate::error::Result;
use crate::image::ingest::{Held, IngestError, IngestRequest, LayerCompression, ingest};
use crate::io_error::IoContext;
use crate::layout::archive::{self, BundleError, BundleFormat, BundleImage};
use crate::layout::{Layout, RefFile, graph};
use crate::name::Format;
use crate::oci::Descriptor;
use crate::progress::Reporter;

/// What `export` is asked for.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// The archives whose versions go into the tar.
    pub images: Vec<Archive>,
    /// The archives whose blobs are left out (a delta against them).
    pub since: Vec<Archive>,
    /// The tar to write (`.tar` or `.tar.zst`).
    pub dest: PathBuf,
    /// How plain layers of `.docker`, `.zip` and `.zst` archives are compressed.
    pub layers: LayerCompression,
}

/// What `export` wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub path: PathBuf,
    /// The size of the file.
    pub bytes: u64,
    /// The names (without extension) of the archives it holds.
    pub images: Vec<String>,
    /// The names of the archives it was made against.
    pub base: Vec<String>,
    /// The blobs in it, and the blobs left out (the base holds them).
    pub blobs: usize,
    pub left_out: usize,
}

/// A version read for the tar: its layout, descriptor and name.
struct Source {
    stem: String,
    tag: String,
    layout: Layout,
    root: Descriptor,
}

/// Writes the layout tar `req` asks for, atomically.
pub fn export(req: &ExportRequest, reporter: Arc<dyn Reporter>) -> Result<Exported> {
    let format = BundleFormat::of(&req.dest)?;
    let mut scratch = Scratch::beside(&req.dest);
    // The base first: a version in both is written into the temporary layout once.
    let mut base = Vec::new();
    for a in unique(&req.since) {
        base.push(source(a, &mut scratch, req.layers, reporter.as_ref())?);
    }
    let mut images = Vec::new();
    for a in unique(&req.images) {
        images.push(source(a, &mut scratch, req.layers, reporter.as_ref())?);
    }
    let mut left_out = HashSet::new();
    for b in &base {
        let needs = graph::needs(&b.layout, &b.root)?;
        left_out.extend(needs.digests().map(str::to_string));
    }
    let mut bundle = Vec::new();
    for s in &images {
        bundle.push(BundleImage {
            stem: s.stem.clone(),
            tag: s.tag.clone(),
            layout: s.layout.clone(),
            needs: graph::needs(&s.layout, &s.root)?,
        });
    }
    let base_names: Vec<String> = base.iter().map(|b| b.stem.clone()).collect();

    let mut file = AtomicFile::create(&req.dest)?;
    let written = {
        let out = BufWriter::with_capacity(1 << 20, &mut file);
        write_tar(&bundle, &left_out, &base_names, out, format, &req.dest)?
    };
    file.commit()?;
    drop(scratch);
    let bytes = fs::metadata(&req.dest).at(&req.dest)?.len();
    Ok(Exported {
        path: req.dest.clone(),
        bytes,
        images: images.into_iter().map(|s| s.stem).collect(),
        base: base_names,
        blobs: written.blobs,
        left_out: written.left_out,
    })
}

/// Writes the tar to `out`, through zstd for a `.tar.zst`.
fn write_tar<W: Write>(
    bundle: &[BundleImage],
    left_out: &HashSet<String>,
    base: &[String],
    mut out: W,
    format: BundleFormat,
    dest: &Path,
) -> Result<archive::Written> {
    let write_error = |source: std::io::Error| BundleError::Write {
        path: dest.to_path_buf(),
        source,
    };
    let written = match format {
        BundleFormat::Tar => archive::write(bundle, left_out, base, &mut out, dest)?,
        BundleFormat::TarZst => {
            let mut encoder =
                zstd::stream::write::Encoder::new(&mut out, 3).map_err(write_error)?;
            encoder
                .multithread(crate::codec::deflate::default_threads() as u32)
                .map_err(write_error)?;
            let written = archive::write(bundle, left_out, base, &mut encoder, dest)?;
            encoder.finish().map_err(write_error)?;
            written
        }
    };
    out.flush().map_err(write_error)?;
    Ok(written)
}

/// The archives, each once (by file name), in the order given.
fn unique(archives: &[Archive]) -> Vec<&Archive> {
    let mut seen = HashSet::new();
    archives
        .iter()
        .filter(|a| seen.insert(a.file_name()))
        .collect()
}

/// The layout and descriptor of `archive`: a `.ref`'s own, or those the ingest of any other
/// format into the temporary layout gives.
fn source(
    archive: &Archive,
    scratch: &mut Scratch,
    layers: LayerCompression,
    reporter: &dyn Reporter,
) -> Result<Source> {
    let name = &archive.name;
    let stem = name.with_format(Format::Ref).file_name();
    let stem = stem.strip_suffix(".ref").unwrap_or(&stem).to_string();
    let tag = format!(
        "{}:{}",
        name.image,
        crate::version::docker_tag(&name.version)?
    );
    if name.format == Format::Ref {
        return Ok(Source {
            stem,
            tag,
            layout: Layout::of_ref(&archive.path)?,
            root: RefFile::read(&archive.path)?.descriptor(),
        });
    }
    let layout = scratch.layout()?;
    // What the file holds decides whether its manifest is kept as it is (its name's ID is the
    // manifest's or index's digest) or a manifest of the store's own is written (the ID is the
    // config's), as `convert --to ref` does.
    let (info, _) = crate::image::read(archive)?;
    let as_is = !digest::hex_part(&info.id).starts_with(&name.id);
    let diff_ids: Vec<String> = info.layers.iter().map(|l| l.diff_id.clone()).collect();
    let held = Held::of(&layout, &scratch.roots);
    let mut guess = true;
    let ingested = loop {
        let req = IngestRequest {
            layout: &layout,
            name_id: &name.id,
            as_is,
            compression: layers,
            held: &held,
            diff_ids: &diff_ids,
            guess_by_size: guess,
            rewrite: false,
        };
        let attempt = crate::image::with_tar(archive, reporter, |tar| {
            ingest(tar, &req).map_err(crate::Error::from)
        });
        match attempt {
            Err(crate::Error::Ingest(IngestError::WrongGuess { .. })) if guess => guess = false,
            other => break other?,
        }
    };
    reporter.finish();
    let root = ingested.reference.descriptor();
    scratch.roots.push(root.clone());
    Ok(Source {
        stem,
        tag,
        layout,
        root,
    })
}

/// The temporary layout the archives that are not `.ref` are written into, made when first
/// needed, beside the tar (on its file system); removed when dropped, and when the run is
/// interrupted.
struct Scratch {
    parent: PathBuf,
    dir: Option<(tempfile::TempDir, crate::interrupt::Registered)>,
    /// The descriptors written into it so far.
    roots: Vec<Descriptor>,
}

impl Scratch {
    fn beside(dest: &Path) -> Scratch {
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Scratch {
            parent,
            dir: None,
            roots: Vec::new(),
        }
    }

    fn layout(&mut self) -> Result<Layout> {
        if self.dir.is_none() {
            let dir = tempfile::Builder::new()
                .prefix(".toolbox-export.")
                .tempdir_in(&self.parent)
                .at(&self.parent)?;
            let registered = crate::interrupt::empty_dir_on_stop(dir.path(), true);
            self.dir = Some((dir, registered));
        }
        let dir = self
            .dir
            .as_ref()
            .map(|(d, _)| d.path())
            .unwrap_or(&self.parent);
        Ok(Layout::create(dir)?)
    }
}
