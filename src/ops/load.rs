//! `load`: stream an archive into the engine, checking every digest of what streams (the
//! verifier's checks, on a thread of their own beside the one that reads), and that the engine
//! holds the image the name says.
//!
//! A thin load leaves out the layers the engine already holds, where the engine accepts that
//! ([`crate::image::thin`]): a classic store skips a layer whose chain it has, so the layers of
//! the longest prefix of the image's diff IDs some engine image starts with are left out; a
//! containerd store loads an OCI layout whose other blobs its content store holds, known by
//! the engine's image IDs (manifest and index digests) that the layer stores, the archive's
//! own layout or other archives of the image hold. An engine that refuses the thin tar gets the
//! whole image.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::sync::Arc;

use bytes::Bytes;

use crate::archive::Archive;
use crate::engine::{Engine, EngineError};
use crate::error::{Error, Result};
use crate::image::thin::{self, Filter, Seeking, Streamed, TarFilter};
use crate::image::verify::StreamCheck;
use crate::image::write::Composed;
use crate::image::{self, ArchiveError, ImageError, blob_path};
use crate::io_error::IoContext;
use crate::layout::Layout;
use crate::name::Format;
use crate::oci::Descriptor;
use crate::pipe::{self, ChannelWriter};
use crate::progress::{ProgressReader, Reporter};
use crate::store::Store;

/// How many of the engine's images are looked at (inspected, on a classic store) to find the
/// layers it holds.
const MAX_ENGINE_IMAGES: usize = 256;
/// How many other archives of the image are read to find the blobs of an engine's image.
const MAX_OTHER_ARCHIVES: usize = 4;
/// The size of the pieces sent to the engine and to the check.
const CHUNK: usize = 256 * 1024;

/// What `load` loaded: the reference (a `repository:tag`, or the image ID when the archive has
/// no tag), the ID the engine gives the image, and what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub reference: String,
    pub id: String,
    /// The bytes of the tar sent to the engine.
    pub sent: u64,
    /// The bytes of the whole image's tar (what a full load sends).
    pub total: u64,
    /// The image's layers, and how many of them were left out because the engine held them.
    pub layers: usize,
    pub held: usize,
}

/// Where the blobs of the engine's images may be read: the layer stores and the other archives
/// of the image.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub layouts: Vec<Layout>,
    pub archives: Vec<Archive>,
}

impl Sources {
    /// The layer stores of `store` and its archives of `archive`'s image (but `archive`), and
    /// `archive`'s own layout.
    pub fn of(store: Option<&Store>, archive: &Archive) -> Sources {
        let mut layouts: Vec<Layout> = Vec::new();
        if archive.name.format == Format::Ref
            && let Ok(own) = Layout::of_ref(&archive.path)
        {
            layouts.push(own);
        }
        let mut archives = Vec::new();
        if let Some(store) = store {
            for s in store.layer_stores() {
                if !layouts.contains(&s.layout) {
                    layouts.push(s.layout);
                }
            }
            archives = store
                .all()
                .iter()
                .filter(|a| a.name.image == archive.name.image && a.path != archive.path)
                .filter(|a| a.name.format != Format::Ref)
                .cloned()
                .collect();
        }
        Sources { layouts, archives }
    }
}

/// What a thin load leaves out, and what it changes in the tar.
#[derive(Debug, Clone, Default)]
struct Plan {
    filter: Filter,
    /// The layer members left out, with their sizes.
    omitted: BTreeMap<String, u64>,
    held: usize,
}

/// Loads `archive` (any format; a ZIP streams out of the ZIP, with no temporary tar) into the
/// engine, leaving out the layers the engine holds where it accepts that (`sources` say where
/// the blobs of its images may be read), checks that the engine holds the archive's image (see
/// [`holds`]), and returns the loaded reference, the engine's ID for it and what was sent.
pub async fn load(
    engine: &Engine,
    archive: &Archive,
    sources: Sources,
    reporter: Arc<dyn Reporter>,
) -> Result<Loaded> {
    // What cannot be planned is loaded whole: a damaged archive is then found by the load's
    // own checks, with their words.
    let plan = self::plan(engine, archive, sources).await.ok().flatten();
    let thin = plan.is_some();
    let attempt = send(engine, archive, plan, reporter.clone()).await;
    let sent = match attempt {
        Err(Failure::Engine(e)) if thin => {
            crate::warn::warn(format!(
                "the engine refused the tar without the layers it holds ({e}); loading the whole \
                 image"
            ));
            send(engine, archive, None, reporter.clone()).await
        }
        other => other,
    };
    reporter.finish();
    let (names, sent) = sent.map_err(Failure::into_error)?;
    confirm(engine, archive, &names, sent).await
}

/// Why sending failed: the archive (it could not be read, or is damaged), or the engine.
enum Failure {
    Archive(Error),
    Engine(Error),
}

impl Failure {
    fn into_error(self) -> Error {
        match self {
            Failure::Archive(e) | Failure::Engine(e) => e,
        }
    }
}

/// What the reading side sent.
struct Sent {
    info: image::ImageInfo,
    sent: u64,
    total: u64,
    held: usize,
}

/// Sends the archive's tar (with what `plan` leaves out) to the engine; returns what the
/// engine said it loaded and what was sent.
async fn send(
    engine: &Engine,
    archive: &Archive,
    plan: Option<Plan>,
    reporter: Arc<dyn Reporter>,
) -> std::result::Result<(Vec<String>, Sent), Failure> {
    let (writer, body) = pipe::from_writer();
    let source = archive.clone();
    let reader = tokio::task::spawn_blocking(move || {
        read_into(&source, plan.unwrap_or_default(), writer, reporter)
    });
    let loaded = engine.import(body).await;
    let read = reader.await.map_err(|e| {
        Failure::Archive(
            EngineError::Protocol {
                action: "loading the image".into(),
                reason: e.to_string(),
            }
            .into(),
        )
    })?;
    // A file that could not be read explains a failed load better than the engine's answer;
    // an engine that stopped reading explains itself.
    let sent = match read {
        Err(e) => return Err(Failure::Archive(e)),
        Ok(Err(gone)) => {
            return Err(Failure::Engine(match loaded {
                Err(e) => e.into(),
                Ok(_) => Error::io(&archive.path, gone),
            }));
        }
        Ok(Ok(sent)) => sent,
    };
    let names = loaded.map_err(|e| Failure::Engine(e.into()))?;
    Ok((names, sent))
}

/// Checks that the engine holds the archive's image under each name it reported loading, and
/// says what was loaded.
async fn confirm(
    engine: &Engine,
    archive: &Archive,
    names: &[String],
    sent: Sent,
) -> Result<Loaded> {
    let mut loaded = None;
    for item in names {
        let facts = engine.image(item).await?;
        let Some(facts) = facts else { continue };
        if !holds(&sent.info, &facts) {
            return Err(Error::IdMismatch {
                path: archive.path.clone(),
                expected: archive.name.id.clone(),
                found: facts.id,
                compared: sent.info.identities().join(", "),
            });
        }
        loaded.get_or_insert_with(|| Loaded {
            reference: item.clone(),
            id: facts.id,
            sent: sent.sent,
            total: sent.total,
            layers: sent.info.layers.len(),
            held: sent.held,
        });
    }
    loaded
        .ok_or_else(|| EngineError::Protocol {
            action: format!("loading `{}`", archive.path.display()),
            reason: "the engine reported no loaded image".into(),
        })
        .map_err(Error::from)
}

/// What to leave out of the archive's tar for this engine; `None` for a full load (the engine
/// holds none of the image's layers, or none it would accept a tar without).
async fn plan(engine: &Engine, archive: &Archive, sources: Sources) -> Result<Option<Plan>> {
    let containerd = engine.uses_containerd_store().await?;
    let ids = engine
        .image_ids(&archive.name.image, MAX_ENGINE_IMAGES)
        .await?;
    if ids.is_empty() {
        return Ok(None);
    }
    let mut held_layers = Vec::new();
    if !containerd {
        for id in &ids {
            if let Some(facts) = engine.image(id).await? {
                held_layers.push(facts.layers);
            }
        }
        if held_layers.iter().all(Vec::is_empty) {
            return Ok(None);
        }
    }
    let archive = archive.clone();
    tokio::task::spawn_blocking(move || -> Result<Option<Plan>> {
        let (info, index) = image::read(&archive)?;
        let (filter, omitted) = if containerd {
            let known = known_blobs(&ids, &sources);
            let omitted = thin::oci_omissions(&info, &known);
            let tag = format!(
                "{}:{}",
                archive.name.image,
                crate::version::docker_tag(&archive.name.version)
                    .unwrap_or_else(|_| "latest".to_string())
            );
            let Some(documents) = thin::oci_documents(&info, &index, &tag) else {
                return Ok(None);
            };
            let mut omit: HashSet<String> = omitted.keys().cloned().collect();
            omit.extend(thin::OCI_DROPPED.iter().map(|s| s.to_string()));
            let filter = Filter {
                omit,
                extra: documents,
            };
            (filter, omitted)
        } else {
            let diff_ids: Vec<String> = info.layers.iter().map(|l| l.diff_id.clone()).collect();
            let prefix = thin::held_prefix(&diff_ids, &held_layers);
            let omitted = thin::classic_omissions(&info, &index, prefix);
            let filter = Filter {
                omit: omitted.keys().cloned().collect(),
                extra: Vec::new(),
            };
            (filter, omitted)
        };
        if omitted.is_empty() {
            return Ok(None);
        }
        let held = info
            .layers
            .iter()
            .filter(|l| omitted.contains_key(&l.path))
            .count();
        Ok(Some(Plan {
            filter,
            omitted,
            held,
        }))
    })
    .await
    .map_err(|e| {
        Error::from(EngineError::Protocol {
            action: "planning the load".into(),
            reason: e.to_string(),
        })
    })?
}

/// The blobs the engine's images `ids` (manifest and index digests, on a containerd store)
/// lead to, as far as `sources` hold their documents.
fn known_blobs(ids: &[String], sources: &Sources) -> HashSet<String> {
    let mut known = HashSet::new();
    let mut archives_read = 0;
    for id in ids.iter().filter(|id| crate::digest::is_sha256(id)) {
        let in_layout = sources.layouts.iter().find_map(|layout| {
            layout.blob_size(id)?;
            Some(thin::reached(id, |d| {
                let size = layout.blob_size(d)?;
                let descriptor = Descriptor {
                    media_type: String::new(),
                    digest: d.to_string(),
                    size,
                    platform: None,
                    annotations: Default::default(),
                };
                layout.read_document(&descriptor).ok()
            }))
        });
        if let Some(found) = in_layout {
            known.extend(found);
            continue;
        }
        let hex = crate::digest::hex_part(id);
        for other in sources
            .archives
            .iter()
            .filter(|a| hex.starts_with(&a.name.id))
        {
            if archives_read >= MAX_OTHER_ARCHIVES {
                break;
            }
            archives_read += 1;
            let Ok((_, index)) = image::read(other) else {
                continue;
            };
            let found = thin::reached(id, |d| index.document(&blob_path(d)).map(<[u8]>::to_vec));
            if found.len() > 1 {
                known.extend(found);
                break;
            }
        }
    }
    known
}

/// Reads the archive's tar, leaves out what `plan` says, and sends the rest to the engine
/// through `writer` and to the check; the stream ends cleanly only when the check passed.
/// `Ok(Err(_))` when the engine stopped reading.
fn read_into(
    archive: &Archive,
    plan: Plan,
    writer: ChannelWriter,
    reporter: Arc<dyn Reporter>,
) -> Result<std::result::Result<Sent, io::Error>> {
    let mut writer = writer;
    let mut check = StreamCheck::start_for_engine(&archive.name.id, plan.omitted.clone());
    let held = plan.held;
    let outcome = match archive.name.format {
        Format::Ref => {
            let composed = Composed::of(archive).map_err(ArchiveError::from)?;
            let total = composed.tar_size();
            let thin = composed.without(&plan.omitted.keys().cloned().collect());
            reporter.start(Some(thin.tar_size()));
            let source = Streamed(ProgressReader::new(thin.reader(), reporter.as_ref()));
            let mut filter = TarFilter::new(source, plan.filter);
            let pumped = pump(&mut filter, &mut writer, &mut check);
            (pumped, Some(total), filter.sent())
        }
        Format::Docker => {
            let file = File::open(&archive.path).at(&archive.path)?;
            let size = file.metadata().at(&archive.path)?.len();
            reporter.start(Some(size));
            let source = Seeking {
                inner: BufReader::with_capacity(1 << 20, file),
                counted: |n| reporter.advance(n),
            };
            let mut filter = TarFilter::new(source, plan.filter);
            let pumped = pump(&mut filter, &mut writer, &mut check);
            (pumped, Some(filter.whole()), filter.sent())
        }
        _ => image::with_tar(archive, reporter.as_ref(), |tar| -> Result<_> {
            let mut filter = TarFilter::new(Streamed(tar), plan.filter);
            let pumped = pump(&mut filter, &mut writer, &mut check);
            Ok((pumped, Some(filter.whole()), filter.sent()))
        })?,
    };
    let (pumped, total, sent) = outcome;
    match pumped {
        Err(Stop::EngineGone(e)) => return Ok(Err(e)),
        Err(Stop::Read(e)) => {
            writer.fail(io::Error::other(e.to_string()));
            return Err(Error::io(&archive.path, e));
        }
        Err(Stop::Checked) | Ok(()) => {}
    }
    match check.outcome() {
        Ok(info) => {
            writer.finish().map_err(|e| Error::io(&archive.path, e))?;
            Ok(Ok(Sent {
                info,
                sent,
                total: total.unwrap_or(sent),
                held,
            }))
        }
        Err(ImageError::Read { source: e, .. }) => {
            writer.fail(io::Error::other(e.to_string()));
            Err(Error::io(&archive.path, e))
        }
        Err(e) => {
            let e = damaged(archive, e);
            // Stopping the stream before its end makes the engine give up the load.
            writer.fail(io::Error::other(e.to_string()));
            Err(e)
        }
    }
}

/// Why [`pump`] stopped before the end of the tar.
enum Stop {
    /// The tar could not be read.
    Read(io::Error),
    /// The engine stopped reading.
    EngineGone(io::Error),
    /// The check stopped: it found damage, which it says.
    Checked,
}

/// Passes the whole of `tar` to the engine and to the check, piece by piece: the check hashes
/// on its own thread while this one reads.
fn pump(
    tar: &mut dyn Read,
    writer: &mut ChannelWriter,
    check: &mut StreamCheck,
) -> std::result::Result<(), Stop> {
    loop {
        let mut buf = vec![0u8; CHUNK];
        let mut got = 0;
        while got < CHUNK {
            match tar.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Stop::Read(e)),
            }
        }
        if got == 0 {
            return Ok(());
        }
        buf.truncate(got);
        let piece = Bytes::from(buf);
        if !check.send(piece.clone()) {
            return Err(Stop::Checked);
        }
        writer.send_chunk(piece).map_err(Stop::EngineGone)?;
    }
}

/// Whether the engine's image `facts` is the archive's image `info`: its ID is one of the
/// archive's identities (config, manifest or index digest), or — when the engine computed an
/// ID of its own, as a containerd-store engine does for a classic archive — its layers (diff
/// IDs) and creation time are the archive's config's.
fn holds(info: &image::ImageInfo, facts: &crate::engine::ImageFacts) -> bool {
    if info.identities().contains(&facts.id.as_str()) {
        return true;
    }
    let diff_ids: Vec<&str> = info.layers.iter().map(|l| l.diff_id.as_str()).collect();
    let created = |t: Option<&str>| t.and_then(image::parse_time);
    !diff_ids.is_empty()
        && facts.layers.iter().map(String::as_str).eq(diff_ids)
        && created(facts.created.as_deref()) == created(info.created())
        && created(info.created()).is_some()
}

/// The error of an archive found damaged while it streamed into the engine.
fn damaged(archive: &Archive, source: ImageError) -> Error {
    Error::LoadedDamaged {
        archive: ArchiveError::Damaged {
            path: archive.path.clone(),
            source,
        },
    }
}
