//! `update-image`: make sure the artifacts directory holds the archive of the image the engine
//! has now, saving it only when its ID changed.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::StreamExt;

use crate::archive::Archive;
use crate::codec::{self, Body, Compression};
use crate::digest;
use crate::engine::{Engine, EngineError, ImageFacts, PullPolicy};
use crate::error::{Error, Result};
use crate::image::ingest::{Held, IngestError, IngestRequest, Ingested, LayerCompression, ingest};
use crate::layout::{Layout, RefFile};
use crate::lock::DirLock;
use crate::meta::Summary;
use crate::name::{self, ArchiveName, Format, NameError};
use crate::pipe;
use crate::progress::Reporter;
use crate::store::{self, LatestRule, Store};
use crate::version;

/// What `update-image` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    /// The image name used in archive names.
    pub image: String,
    pub version: String,
    /// The engine repository, when it is not the image name.
    pub repository: Option<String>,
    /// Write (or turn an existing `.docker` into) a compressed archive, of this format and level.
    pub compress: Option<Compression>,
    /// What to remove afterwards.
    pub clean: Clean,
    pub pull: PullPolicy,
    /// Save again even when the archive is current, replacing it atomically.
    pub force: bool,
    /// Write the version into the layer store as a `.ref` archive, compressing plain layers so.
    pub store: Option<LayerCompression>,
}

/// What `update-image` did.
#[derive(Debug, Clone)]
pub struct UpdateOutcome {
    /// The archive that is current now.
    pub path: PathBuf,
    pub name: ArchiveName,
    /// Whether a file was written (false: the archive was already current).
    pub written: bool,
    /// The other archives of the image removed by `clean`.
    pub removed: Vec<PathBuf>,
    /// The archives `--clean` kept because they rank above the one written, and why.
    pub kept: Vec<(PathBuf, &'static str)>,
}

/// What `update-image` removes once the archive is current.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clean {
    /// Nothing.
    #[default]
    No,
    /// `--clean`: what the archive supersedes — the image's archives that rank below it by the
    /// latest rule, and its twins in other formats; a release that ranks above it stays.
    Superseded,
    /// `--clean-all`: every other archive of the image.
    All,
}

/// The engine reference of an image at a version: `<repository>:<docker tag>`.
pub fn reference(image: &str, repository: Option<&str>, version: &str) -> Result<String> {
    name::check_image(image)?;
    version::validate(version)?;
    let tag = version::docker_tag(version)?;
    let (field, repository) = match repository {
        Some(r) => ("repository", r),
        None => ("image", image),
    };
    if repository.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(NameError::InvalidPart {
            field,
            value: repository.to_string(),
            reason: format!(
                "engine references are lower-case: use `{}`, or keep this name for the archives \
                 and pass the engine's repository with --repository REPO",
                repository.to_ascii_lowercase()
            ),
        }
        .into());
    }
    Ok(format!("{repository}:{tag}"))
}

/// The 12 hex digits of a full image ID (`sha256:<64 hex>`) that archive names carry.
pub fn short_id(full: &str) -> Result<String> {
    digest::short_id(full)
        .ok_or_else(|| EngineError::Protocol {
            action: "reading the image ID".into(),
            reason: format!("`{full}` is not an image ID"),
        })
        .map_err(Error::from)
}

/// Brings the artifacts directory `lock` holds up to date with the engine's image.
pub async fn update_image(
    engine: &Engine,
    lock: &DirLock,
    req: &UpdateRequest,
    reporter: Arc<dyn Reporter>,
) -> Result<UpdateOutcome> {
    let dir = lock.dir();
    let reference = reference(&req.image, req.repository.as_deref(), &req.version)?;
    // Read the directory before asking anything of the engine; the lock keeps it as it is
    // until the archive is written.
    let store = super::open_store(dir)?;
    let present = match req.pull {
        PullPolicy::Never => None,
        PullPolicy::IfNotPresent => engine.image_id(&reference).await?,
        PullPolicy::Always => None,
    };
    if req.pull == PullPolicy::Always || (req.pull == PullPolicy::IfNotPresent && present.is_none())
    {
        engine.pull(&reference).await?;
    }
    let facts = match engine.image(&reference).await? {
        Some(facts) => facts,
        None => return Err(EngineError::ImageNotFound { reference }.into()),
    };
    let full_id = facts.id.clone();
    let id = short_id(&full_id)?;
    let docker_name = ArchiveName::new(&req.image, &req.version, &id, Format::Docker)?;

    // The answer comes from the ID and the file names alone: no byte is read when current.
    let twins: Vec<&Archive> = store
        .all()
        .iter()
        .filter(|a| a.name.image == req.image && a.name.version == req.version && a.name.id == id)
        .collect();
    if let Some(foreign) = twins.iter().find(|a| !a.name.format.is_known()) {
        return Err(Error::ForeignTwin {
            path: foreign.path.clone(),
            format: foreign.name.format.to_string(),
        });
    }
    // A compressed archive of the requested format is preferred, then any compressed one.
    let wanted = req.compress.as_ref().map(|c| &c.format);
    let compressed = twins
        .iter()
        .filter(|a| a.name.format.is_compressed())
        .max_by_key(|a| Some(&a.name.format) == wanted)
        .copied();
    let tar = twins
        .iter()
        .find(|a| a.name.format == Format::Docker)
        .copied();
    let (path, format, written) = match (compressed, tar, &req.compress) {
        _ if req.store.is_some() => {
            let source = compressed.or(tar).cloned();
            into_store(
                engine,
                dir,
                &reference,
                req,
                &twins,
                source,
                &docker_name,
                reporter,
                &facts,
            )
            .await?
        }
        _ if req.force => {
            let (format, level) = req
                .compress
                .as_ref()
                .map_or((Format::Docker, 0), |c| (c.format.clone(), c.level));
            // The archive of this format is replaced where it is (the old one stays whole until
            // the new one is committed); else the new one goes beside the others.
            let dest = twins
                .iter()
                .find(|a| a.name.format == format)
                .map(|a| a.path.clone())
                .unwrap_or_else(|| dir.join(docker_name.with_format(format.clone()).file_name()));
            (
                save(engine, &reference, &dest, level, reporter, &facts).await?,
                format,
                true,
            )
        }
        (Some(done), _, _) => (done.path.clone(), done.name.format.clone(), false),
        (None, Some(tar), None) => (tar.path.clone(), Format::Docker, false),
        (None, Some(tar), Some(c)) => {
            let comment = summary(&facts).zip_comment();
            let mut check = crate::image::verify::StreamCheck::start(&tar.name.id);
            let path = codec::compress_checked(
                tar,
                c,
                Some(&comment),
                reporter.as_ref(),
                Some(&mut check),
            )?;
            super::compress::remember(&path, &check);
            (path, c.format.clone(), true)
        }
        // A `.ref` of this ID is current too, when no other format is asked for.
        (None, None, None) if let Some(r) = twins.iter().find(|a| a.name.format == Format::Ref) => {
            (r.path.clone(), Format::Ref, false)
        }
        (None, None, compress) => {
            let (format, level) = compress
                .as_ref()
                .map_or((Format::Docker, 0), |c| (c.format.clone(), c.level));
            let dest = dir.join(docker_name.with_format(format.clone()).file_name());
            (
                save(engine, &reference, &dest, level, reporter, &facts).await?,
                format,
                true,
            )
        }
    };
    let name = docker_name.with_format(format);

    let mut removed = Vec::new();
    let mut kept = Vec::new();
    if req.clean != Clean::No {
        let store = super::facts::open_store_quietly(dir)?;
        let others: Vec<&Archive> = match req.clean {
            Clean::All => store
                .known_of(&req.image)
                .filter(|a| a.path != path)
                .collect(),
            _ => {
                let (doomed, above) = superseded(&store, &name, &path);
                kept = above;
                doomed
            }
        };
        let (gone, error) = store::remove(&others);
        // The blobs only the `.ref` archives removed needed go too.
        let removed_archives: Vec<&Archive> = others
            .iter()
            .copied()
            .filter(|a| gone.contains(&a.path))
            .collect();
        if removed_archives
            .iter()
            .any(|a| a.name.format == Format::Ref)
        {
            let freed = super::clean::collect_garbage(&store, &removed_archives, false);
            for e in freed.errors {
                crate::warn::warn(format!("the layer store was not collected: {e}"));
            }
        }
        removed = gone;
        if let Some(e) = error {
            return Err(e.into());
        }
    }
    Ok(UpdateOutcome {
        path,
        name,
        written,
        removed,
        kept,
    })
}

/// Writes the version into the layer store at the root of `dir` as a `.ref` archive, unless
/// one of this ID is there (and not `--force`): from a full archive of the same ID when there is
/// one (no engine stream), else from the engine's `docker save`. Blobs first, the `.ref` last,
/// then `index.json`.
#[allow(clippy::too_many_arguments)]
async fn into_store(
    engine: &Engine,
    dir: &Path,
    reference: &str,
    req: &UpdateRequest,
    twins: &[&Archive],
    source: Option<Archive>,
    name: &ArchiveName,
    reporter: Arc<dyn Reporter>,
    facts: &ImageFacts,
) -> Result<(PathBuf, Format, bool)> {
    let existing = twins.iter().find(|a| a.name.format == Format::Ref);
    if let Some(existing) = existing
        && !req.force
    {
        // A run killed between the `.ref` and `index.json` left it out: put it in.
        if let Ok(layout) = Layout::of_ref(&existing.path)
            && !crate::layout::index::lists(&layout, &existing.file_name())
        {
            rewrite_index(dir, &layout, &[])?;
        }
        return Ok((existing.path.clone(), Format::Ref, false));
    }
    let compression = req.store.unwrap_or_default();
    let layout = own_layout(dir)?;
    let dest = existing
        .map(|a| a.path.clone())
        .unwrap_or_else(|| dir.join(name.with_format(Format::Ref).file_name()));
    let held = Arc::new(held_layers(dir, &layout)?);
    let mut guess = true;
    let ingested = loop {
        let job = Job {
            layout: layout.clone(),
            name_id: name.id.clone(),
            compression,
            held: Arc::clone(&held),
            diff_ids: facts.layers.clone(),
            guess_by_size: guess,
            rewrite: req.force,
        };
        let attempt = match (&source, req.force) {
            (Some(file), false) => {
                let (file, reporter) = (file.clone(), Arc::clone(&reporter));
                tokio::task::spawn_blocking(move || {
                    // What the file holds decides, as the engine's store does for a save.
                    let (info, _) = crate::image::read(&file)?;
                    let as_is = !digest::hex_part(&info.id).starts_with(&file.name.id);
                    crate::image::with_tar(&file, reporter.as_ref(), |tar| job.run(tar, as_is))
                })
                .await
                .map_err(|e| EngineError::Protocol {
                    action: format!("reading `{}`", name.file_name()),
                    reason: e.to_string(),
                })?
            }
            _ => {
                let as_is = engine.uses_containerd_store().await?;
                export_into(
                    engine,
                    reference,
                    Arc::clone(&reporter),
                    facts,
                    move |tar| job.run(tar, as_is),
                )
                .await
            }
        };
        match attempt {
            Err(Error::Ingest(IngestError::WrongGuess { .. })) if guess => guess = false,
            other => break other?,
        }
    };
    reporter.finish();
    ingested.reference.write(&dest)?;
    if let Ok(written) = Archive::from_path(&dest) {
        crate::meta::remember_verified(&written, &ingested.info);
    }
    rewrite_index(dir, &layout, &[])?;
    Ok((dest, Format::Ref, true))
}

/// The layer store at the root of the artifacts directory `dir`, made when missing; refused
/// when `dir` is inside another store (that store's other archives are not under this lock).
pub(crate) fn own_layout(dir: &Path) -> Result<Layout> {
    let here = Layout::at(dir);
    if let Ok(outer) = Layout::of_ref(&dir.join("x.ref"))
        && outer != here
    {
        return Err(crate::layout::LayoutError::InsideAnotherStore {
            dir: dir.to_path_buf(),
            root: outer.root().to_path_buf(),
        }
        .into());
    }
    Ok(Layout::create(dir)?)
}

/// The layers the `.ref` archives under `dir` that use `layout` hold.
pub(crate) fn held_layers(dir: &Path, layout: &Layout) -> Result<Held> {
    let store = super::open_store_quietly(dir)?;
    let roots: Vec<_> = store
        .layer_store(layout)
        .map(|s| s.refs)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| RefFile::read(&a.path).ok().map(|r| r.descriptor()))
        .collect();
    Ok(Held::of(layout, &roots))
}

/// Rewrites the `index.json` of `layout` from the `.ref` archives under `dir` that use it,
/// leaving out `gone`.
pub(crate) fn rewrite_index(dir: &Path, layout: &Layout, gone: &[&Path]) -> Result<()> {
    if let Some(s) = super::open_store_quietly(dir)?.layer_store(layout) {
        s.rewrite_index(&gone.iter().copied().collect())?;
    }
    Ok(())
}

/// One ingest into the store, with what it needs owned (it runs on a blocking thread).
struct Job {
    layout: Layout,
    name_id: String,
    compression: LayerCompression,
    held: Arc<Held>,
    diff_ids: Vec<String>,
    guess_by_size: bool,
    rewrite: bool,
}

impl Job {
    fn run(self, tar: &mut dyn io::Read, as_is: bool) -> Result<Ingested> {
        let req = IngestRequest {
            layout: &self.layout,
            name_id: &self.name_id,
            as_is,
            compression: self.compression,
            held: &self.held,
            diff_ids: &self.diff_ids,
            guess_by_size: self.guess_by_size,
            rewrite: self.rewrite,
        };
        Ok(ingest(tar, &req)?)
    }
}

/// Streams `docker save` of `reference` into the archive `dest` (its format from its name),
/// atomically: the engine's stream goes through a bounded pipe to the writer, never whole in
/// memory, and a stream that fails midway leaves nothing under `dest`.
pub async fn save(
    engine: &Engine,
    reference: &str,
    dest: &Path,
    level: u32,
    reporter: Arc<dyn Reporter>,
    facts: &ImageFacts,
) -> Result<PathBuf> {
    // The ID and creation time go into a ZIP's comment, for `images --created`.
    let comment = Some(summary(facts).zip_comment());
    let (writer_dest, source) = (dest.to_path_buf(), PathBuf::from(reference));
    export_into(engine, reference, reporter, facts, move |reader| {
        let body = Body {
            source: &source,
            modified: SystemTime::now(),
            comment: comment.as_deref(),
        };
        codec::write_archive(reader, body, &writer_dest, level).map_err(Error::from)
    })
    .await
}

/// Streams `docker save` of `reference` into `consume`, which reads it on a blocking thread
/// through a bounded pipe (never whole in memory); a stream that fails or stops early makes
/// the reader fail, and is the error returned.
async fn export_into<T: Send + 'static>(
    engine: &Engine,
    reference: &str,
    reporter: Arc<dyn Reporter>,
    facts: &ImageFacts,
    consume: impl FnOnce(&mut pipe::ChannelReader) -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, mut reader) = pipe::to_reader();
    let writer = tokio::task::spawn_blocking(move || consume(&mut reader));
    reporter.start(facts.size);
    let mut stream = pin!(engine.export(reference));
    let mut failure = None;
    let mut tail = TarTail::default();
    let mut writer_stopped = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => {
                reporter.advance(chunk.len() as u64);
                tail.push(&chunk);
                if !tx.send(chunk).await {
                    writer_stopped = true;
                    break;
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    // A stream that stopped early but cleanly must not become an archive.
    if failure.is_none() && !writer_stopped && !tail.is_end_of_archive() {
        failure = Some(EngineError::Protocol {
            action: format!("saving `{reference}`"),
            reason: "the engine's stream ended before the end of the tar".into(),
        });
    }
    match &failure {
        Some(e) => tx.fail(io::Error::other(e.to_string())).await,
        None => tx.finish().await,
    }
    let written = writer.await.map_err(|e| EngineError::Protocol {
        action: format!("saving `{reference}`"),
        reason: e.to_string(),
    })?;
    reporter.finish();
    match failure {
        Some(e) => Err(e.into()),
        None => written,
    }
}

/// What the archive at `path` (named `name`) supersedes among its image's archives: those that
/// rank below it by the latest rule, and its twins (same version and ID, other formats). The
/// others rank above it, and stay: they are returned with the reason.
fn superseded<'a>(
    store: &'a Store,
    name: &ArchiveName,
    path: &Path,
) -> (Vec<&'a Archive>, Vec<(PathBuf, &'static str)>) {
    let ordered = store.ordered(
        store.by_image(std::slice::from_ref(&name.image)),
        LatestRule::default(),
    );
    let archives = ordered.into_values().next().unwrap_or_default();
    let at = archives.iter().position(|a| a.path == path);
    let mut doomed = Vec::new();
    let mut kept = Vec::new();
    for (i, a) in archives.into_iter().enumerate() {
        let twin = a.name.version == name.version && a.name.id == name.id;
        // A `.zip` or `.zst` twin of a `.ref` written is a file made for shipping: it stays.
        let shipping = twin && name.format == Format::Ref && a.name.format.is_compressed();
        if a.path == path || shipping {
            continue;
        } else if twin || at.is_some_and(|at| i > at) {
            doomed.push(a);
        } else {
            kept.push((a.path.clone(), why_above(a, name)));
        }
    }
    (doomed, kept)
}

/// Why `a` ranks above the archive named `written`, in the latest rule's words.
fn why_above(a: &Archive, written: &ArchiveName) -> &'static str {
    match (a.is_dirty(), written.is_dirty()) {
        (false, true) => "a clean build ranks above the dirty one written",
        _ => match (
            version::Version::parse(&a.name.version),
            version::Version::parse(&written.version),
        ) {
            (Some(x), Some(y)) if x > y => "a newer version",
            (Some(_), None) => "a version that parses ranks above one that does not",
            _ if a.name.version == written.version => "a newer build of the same version",
            _ => "it ranks above the archive written",
        },
    }
}

/// What a ZIP's comment says of the engine's image.
fn summary(facts: &ImageFacts) -> Summary {
    Summary {
        id: facts.id.clone(),
        created: facts.created.clone(),
    }
}

/// The last bytes of a tar stream, to check that it ends with tar's end-of-archive marker (two
/// zero blocks), as every `docker save` does.
#[derive(Default)]
struct TarTail {
    last: Vec<u8>,
}

impl TarTail {
    const MARKER: usize = 1024;

    fn push(&mut self, chunk: &[u8]) {
        self.last
            .extend_from_slice(&chunk[chunk.len().saturating_sub(Self::MARKER)..]);
        let excess = self.last.len().saturating_sub(Self::MARKER);
        self.last.drain(..excess);
    }

    fn is_end_of_archive(&self) -> bool {
        self.last.len() == Self::MARKER && self.last.iter().all(|&b| b == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_tail_needs_two_zero_blocks_at_the_end() {
        let mut tail = TarTail::default();
        tail.push(&[1u8; 700]);
        tail.push(&[0u8; 1000]);
        assert!(!tail.is_end_of_archive());
        tail.push(&[0u8; 24]);
        assert!(tail.is_end_of_archive());
        tail.push(&[0, 0, 7]);
        assert!(!tail.is_end_of_archive());
        assert!(!TarTail::default().is_end_of_archive());
    }

    #[test]
    fn references_and_short_ids() {
        assert_eq!(reference("web", None, "1.2+b").unwrap(), "web:1.2-b");
        assert_eq!(
            reference("web", Some("registry.local/team/web"), "latest").unwrap(),
            "registry.local/team/web:latest"
        );
        assert!(reference("web", None, "").is_err());
        assert!(reference("a/b", None, "1").is_err());
        let err = reference("Web", None, "1").unwrap_err().to_string();
        assert!(err.contains("lower-case") && err.contains("`web`"), "{err}");
        assert_eq!(reference("Web", Some("web"), "1").unwrap(), "web:1");
        let full = format!("sha256:{}", "0123456789abcdef".repeat(4));
        assert_eq!(short_id(&full).unwrap(), "0123456789ab");
        assert!(short_id("sha256:xyz").is_err());
    }
}
