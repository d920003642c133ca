//! Writing a `docker save` stream into the layer store, in one pass: every layer is hashed as it
//! streams; a layer the store already holds is only hashed, a new one is written as a blob —
//! as it arrives when it is compressed (the containerd image store's layers), or compressed
//! here (gzip on all cores, or zstd when asked) when it is a plain tar (the classic store's).
//! The documents are kept in memory (bounded), and once the stream has ended and everything
//! checks (the diff IDs, the blob names, the image ID against the name), the blobs are
//! committed, then the config and manifest; the caller writes the `.ref` last.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Read};

use serde_json::json;

use super::extract::GZIP_MAGIC;
use super::index::{FileDigest, Member, SMALL, TarIndex, normalize, stored_blob};
use super::{ImageError, ImageInfo};
use crate::codec::deflate;
use crate::digest::{self, HashingReader};
use crate::layout::graph::{self, Kind};
use crate::layout::{BlobWriter, Layout, LayoutError, RefFile};
use crate::oci::{self, Descriptor, Document};

/// The annotation of a layer descriptor toolbox writes that gives the layer's uncompressed
/// size: a later save of the same layer from an engine whose `docker save` names layers by
/// neither digest (Docker 24 and older) knows it by its size before reading it.
pub const UNCOMPRESSED_SIZE: &str = "io.toolbox.layer.uncompressed-size";
/// The documents one stream may hold, in all.
const KEPT: u64 = 32 << 20;

pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// How the store compresses the plain layers it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    /// `tar+gzip` (every engine and skopeo read it).
    Gzip { level: u32 },
    /// `tar+zstd` (Docker 20.10 cannot pull or load it; Docker 26 can).
    Zstd { level: i32 },
}

impl Default for LayerCompression {
    fn default() -> Self {
        LayerCompression::Gzip { level: 6 }
    }
}

/// Why a stream could not be written into the store.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the saved image is damaged: {0}")]
    Image(#[from] ImageError),

    #[error(transparent)]
    Layout(#[from] LayoutError),

    #[error("writing the layer `{path}` into the store: {source}")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },

    /// A layer was only hashed because a layer of its size is held, but it is another layer:
    /// the stream must be read again without that shortcut.
    #[error("the layer `{path}` was taken for one the store holds, and is not")]
    WrongGuess { path: String },
}

/// The layers the store holds, by diff ID: the blob and, where known, the uncompressed size.
#[derive(Debug, Default, Clone)]
pub struct Held {
    by_diff_id: HashMap<String, (Descriptor, Option<u64>)>,
}

impl Held {
    /// The layers the manifests that `roots` lead to hold (a root that cannot be read adds
    /// nothing).
    pub fn of(layout: &Layout, roots: &[Descriptor]) -> Held {
        let mut held = Held::default();
        for root in roots {
            let Ok(needs) = graph::needs(layout, root) else {
                continue;
            };
            for need in needs.blobs.iter().filter(|n| n.kind == Kind::Document) {
                let Some(doc) = needs
                    .documents
                    .get(&need.descriptor.digest)
                    .and_then(|b| Document::parse(b).ok())
                else {
                    continue;
                };
                let Some(config) = doc.config.as_ref() else {
                    continue;
                };
                let Some(diff_ids) = needs
                    .documents
                    .get(&config.digest)
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                    .and_then(|c| c["rootfs"]["diff_ids"].as_array().cloned())
                else {
                    continue;
                };
                if diff_ids.len() != doc.layers.len() {
                    continue;
                }
                for (layer, diff_id) in doc.layers.iter().zip(diff_ids) {
                    let Some(diff_id) = diff_id.as_str() else {
                        continue;
                    };
                    let size = layer
                        .annotations
                        .get(UNCOMPRESSED_SIZE)
                        .and_then(|s| s.parse().ok());
                    let entry = held
                        .by_diff_id
                        .entry(diff_id.to_string())
                        .or_insert((layer.clone(), size));
                    if entry.1.is_none() {
                        entry.1 = size;
                    }
                }
            }
        }
        held
    }

    /// The blob of the layer `diff_id`, when the store holds it.
    pub fn get(&self, diff_id: &str) -> Option<&Descriptor> {
        self.by_diff_id.get(diff_id).map(|(d, _)| d)
    }

    /// The uncompressed sizes of the held layers among `diff_ids`.
    fn sizes_among(&self, diff_ids: &[String]) -> HashSet<u64> {
        diff_ids
            .iter()
            .filter_map(|d| self.by_diff_id.get(d).and_then(|(_, s)| *s))
            .collect()
    }
}

/// What to write.
pub struct IngestRequest<'a> {
    pub layout: &'a Layout,
    /// The 12 hex digits the archive's name gives.
    pub name_id: &'a str,
    /// Keep the engine's manifest (or index) and every blob as they are: the engine's ID is
    /// the manifest's digest (the containerd image store).
    pub as_is: bool,
    pub compression: LayerCompression,
    pub held: &'a Held,
    /// The image's diff IDs, as the engine gave them before the save started.
    pub diff_ids: &'a [String],
    /// Take a plain layer whose size is that of a held layer among `diff_ids` for it (only
    /// hashing it); a wrong guess fails with [`IngestError::WrongGuess`].
    pub guess_by_size: bool,
    /// Write every blob again, even those the store holds (`--force`: a damaged blob of the
    /// right size is replaced by the stream's bytes).
    pub rewrite: bool,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// What the `.ref` archive is to hold.
    pub reference: RefFile,
    pub info: ImageInfo,
    /// The bytes of the blobs written (the layers new to the store, the documents).
    pub written: u64,
    /// The layers the store already held.
    pub reused: usize,
}

/// What became of one file of the stream.
struct Written {
    /// The blob being written (committed once everything checks).
    blob: Option<BlobWriter>,
    /// The blob's descriptor (media type, digest, size), once written.
    descriptor: Option<Descriptor>,
}

/// Reads the `docker save` stream `tar` into the store.
pub fn ingest(tar: &mut dyn Read, req: &IngestRequest) -> Result<Ingested, IngestError> {
    let mut archive = tar::Archive::new(tar);
    let entries = archive.entries().map_err(ImageError::NotATar)?;
    let mut index = TarIndex::default();
    let mut kept_total = 0u64;
    let mut written: HashMap<String, Written> = HashMap::new();
    // Plain layers only hashed because a held layer has their size.
    let mut guessed: HashSet<String> = HashSet::new();
    // Compressed blobs the store holds under their name (only their stored digest is taken),
    // with their media type.
    let mut known: HashMap<String, &'static str> = HashMap::new();
    let guess_sizes = if req.guess_by_size && !req.as_is {
        req.held.sizes_among(req.diff_ids)
    } else {
        HashSet::new()
    };
    for entry in entries {
        let mut entry = entry.map_err(ImageError::Damaged)?;
        let path = entry.path().map_err(ImageError::Damaged)?.into_owned();
        let key = normalize(&path)?;
        let kind = entry.header().entry_type();
        if let Some(resolved) = super::index::link_target(&entry, &key)? {
            index.members.insert(key, Member::Link(resolved));
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let size = entry.size();
        let read_error = |e: io::Error| ImageError::Read {
            path: key.clone(),
            source: e,
        };
        let mut reader = BufReader::with_capacity(1 << 20, &mut entry);
        let head = reader.fill_buf().map_err(read_error)?.to_vec();
        let document = key.ends_with(".json") || key == "oci-layout" || key == "repositories";
        if size <= SMALL && (document || head.first() == Some(&b'{')) {
            let mut bytes = Vec::with_capacity(size as usize);
            reader.read_to_end(&mut bytes).map_err(read_error)?;
            kept_total += bytes.len() as u64;
            if kept_total > KEPT {
                return Err(ImageError::TooMuchJson { limit: KEPT }.into());
            }
            let stored = digest::sha256(&bytes);
            index.small.insert(key.clone(), bytes);
            index.members.insert(key, file_member(size, stored, None));
            continue;
        }
        let compressed = super::extract::is_compressed(&head);
        let named = stored_blob(&key);
        // A blob held under its name is only hashed where it is kept as it is (compressed, or
        // the engine's manifest kept); a plain layer the store compresses is held by diff ID.
        let held_by_name = !req.rewrite
            && (compressed || req.as_is)
            && named
                .as_ref()
                .is_some_and(|d| req.layout.blob_size(d) == Some(size));
        let plain_held = !req.rewrite
            && !compressed
            && !req.as_is
            && (named.as_ref().is_some_and(|d| req.held.get(d).is_some())
                || (named.is_none() && guess_sizes.contains(&size)));
        let write_error = |e: io::Error| IngestError::Write {
            path: key.clone(),
            source: e,
        };
        if held_by_name || plain_held {
            // Only hashed as it streams past.
            let mut hashing = HashingReader::new(reader);
            io::copy(&mut hashing, &mut io::sink()).map_err(read_error)?;
            let (stored, _) = hashing.finish();
            if compressed {
                let media_type = if head.starts_with(GZIP_MAGIC) {
                    LAYER_GZIP
                } else {
                    LAYER_ZSTD
                };
                known.insert(key.clone(), media_type);
            } else if named.is_none() {
                guessed.insert(key.clone());
            }
            index.members.insert(key, file_member(size, stored, None));
            continue;
        }
        let mut blob = req.layout.blob_writer()?;
        let (digest, media_type) = if compressed || req.as_is {
            // Written as it arrives; a gzip layer's content is hashed too (its diff ID).
            let mut reader = reader;
            let mut tee = crate::pipe::Tee {
                inner: &mut reader,
                out: &mut blob,
            };
            let mut hashing = HashingReader::new(&mut tee);
            let uncompressed = if head.starts_with(GZIP_MAGIC) {
                let mut plain = HashingReader::new(flate2::read::MultiGzDecoder::new(&mut hashing));
                match io::copy(&mut plain, &mut io::sink()) {
                    Ok(_) => Some(plain.digest()),
                    Err(e) if e.kind() == io::ErrorKind::InvalidData => None,
                    Err(e) => return Err(read_error(e).into()),
                }
            } else {
                None
            };
            io::copy(&mut hashing, &mut io::sink()).map_err(read_error)?;
            let (stored, _) = hashing.finish();
            let media_type = if head.starts_with(GZIP_MAGIC) {
                LAYER_GZIP
            } else if compressed {
                LAYER_ZSTD
            } else {
                LAYER_TAR
            };
            (
                file_member(size, stored, uncompressed),
                media_type.to_string(),
            )
        } else {
            // A plain layer, compressed into its blob as it streams.
            let mut hashing = HashingReader::new(reader);
            let media_type = match req.compression {
                LayerCompression::Gzip { level } => {
                    deflate::gzip(&mut hashing, &mut blob, level, deflate::default_threads())
                        .map_err(|e| match e {
                            deflate::PipelineError::Read(e) => IngestError::from(read_error(e)),
                            deflate::PipelineError::Write(e) => write_error(e),
                        })?;
                    LAYER_GZIP
                }
                LayerCompression::Zstd { level } => {
                    let mut encoder =
                        zstd::stream::write::Encoder::new(&mut blob, level).map_err(write_error)?;
                    encoder
                        .multithread(deflate::default_threads() as u32)
                        .map_err(write_error)?;
                    encoder
                        .set_parameter(zstd::stream::raw::CParameter::JobSize(8 << 20))
                        .map_err(write_error)?;
                    io::copy(&mut hashing, &mut encoder).map_err(write_error)?;
                    encoder.finish().map_err(write_error)?;
                    LAYER_ZSTD
                }
            };
            let (stored, _) = hashing.finish();
            (file_member(size, stored, None), media_type.to_string())
        };
        let (blob_digest, blob_size) = blob.digest();
        let mut descriptor = Descriptor {
            media_type,
            digest: blob_digest,
            size: blob_size,
            platform: None,
            annotations: Default::default(),
        };
        if !compressed && !req.as_is {
            descriptor
                .annotations
                .insert(UNCOMPRESSED_SIZE.into(), size.to_string());
        }
        index.members.insert(key.clone(), digest);
        written.insert(
            key,
            Written {
                blob: Some(blob),
                descriptor: Some(descriptor),
            },
        );
    }

    // Everything is in: check it as verify would, before anything is committed.
    let info = index.image()?;
    for layer in &info.layers {
        let found = index
            .file(&layer.path)
            .ok_or_else(|| ImageError::LayerMissing(layer.path.clone()))?;
        let Some(digest) = found.digest else {
            return Err(ImageError::LayerMissing(layer.path.clone()).into());
        };
        let path = found.path.to_string();
        if known.contains_key(&path) {
            // A compressed blob the store holds: its name is checked below.
            continue;
        }
        if digest.diff_id() != layer.diff_id {
            if guessed.contains(&path) {
                return Err(IngestError::WrongGuess { path });
            }
            return Err(ImageError::LayerDigest {
                layer: layer.path.clone(),
                found: digest.diff_id().to_string(),
                expected: layer.diff_id.clone(),
            }
            .into());
        }
    }
    super::verify::check_blob_names(&index)?;
    super::check_name(&info, req.name_id)?;

    let layout = req.layout;
    let mut bytes_written = 0u64;
    let mut reused = 0usize;
    // The identity the name gives: the outermost manifest or index whose digest it begins
    // (kept as the engine wrote it), else the config (a manifest of toolbox's own).
    let chain_root = info
        .manifests
        .iter()
        .find(|m| digest::hex_part(&m.digest).starts_with(req.name_id));
    let reference = match chain_root {
        Some(root) if req.as_is || !digest::hex_part(&info.id).starts_with(req.name_id) => {
            // Every blob of the layout, as it was: layers first, then the documents.
            let paths: Vec<String> = written.keys().cloned().collect();
            for path in paths {
                bytes_written += commit(&path, &mut written)?.1;
            }
            for (path, bytes) in &index.small {
                if path.starts_with("blobs/sha256/") {
                    let (_, size) = layout.put(bytes)?;
                    bytes_written += size;
                }
            }
            reused = known.len();
            let size = index
                .file(&crate::image::blob_path(&root.digest))
                .map(|f| f.size)
                .unwrap_or_default();
            RefFile {
                media_type: root.media_type.clone(),
                digest: root.digest.clone(),
                size,
            }
        }
        _ => {
            // A manifest of the store's own: the config as it is, each layer as written here or
            // as the store holds it.
            let mut layers = Vec::new();
            for layer in &info.layers {
                let path = index
                    .file(&layer.path)
                    .map(|f| f.path.to_string())
                    .unwrap_or_default();
                let (descriptor, size) = commit(&path, &mut written)?;
                bytes_written += size;
                match descriptor {
                    Some(d) => layers.push(d),
                    None => {
                        let held = req
                            .held
                            .get(&layer.diff_id)
                            .filter(|d| layout.has(d))
                            .cloned()
                            .or_else(|| {
                                // A compressed blob the store holds under its name.
                                let media_type = known.get(&path)?;
                                let digest = stored_blob(&path)?;
                                let size = layout.blob_size(&digest)?;
                                Some(Descriptor {
                                    media_type: media_type.to_string(),
                                    digest,
                                    size,
                                    platform: None,
                                    annotations: Default::default(),
                                })
                            });
                        match held {
                            Some(d) => {
                                reused += 1;
                                layers.push(d);
                            }
                            None if guessed.contains(&path) => {
                                return Err(IngestError::WrongGuess { path });
                            }
                            None => {
                                return Err(LayoutError::MissingBlob {
                                    root: layout.root().to_path_buf(),
                                    digest: layer.diff_id.clone(),
                                    needed_by: format!(" (layer `{}`)", layer.path),
                                }
                                .into());
                            }
                        }
                    }
                }
            }
            let (config, config_size) = layout.put(&info.config_bytes)?;
            bytes_written += config_size;
            let manifest = serde_json::to_vec_pretty(&json!({
                "schemaVersion": 2,
                "mediaType": oci::OCI_MANIFEST,
                "config": {
                    "mediaType": OCI_CONFIG,
                    "digest": config,
                    "size": config_size,
                },
                "layers": layers,
            }))
            .unwrap_or_default();
            let (digest, size) = layout.put(&manifest)?;
            bytes_written += size;
            RefFile {
                media_type: oci::OCI_MANIFEST.into(),
                digest,
                size,
            }
        }
    };
    Ok(Ingested {
        reference,
        info,
        written: bytes_written,
        reused,
    })
}

/// Commits the blob written for the file at `path`, if any; returns its descriptor and the
/// bytes committed now.
fn commit(
    path: &str,
    written: &mut HashMap<String, Written>,
) -> Result<(Option<Descriptor>, u64), IngestError> {
    let Some(w) = written.get_mut(path) else {
        return Ok((None, 0));
    };
    let mut size = 0;
    if let Some(blob) = w.blob.take() {
        size = blob.commit(None)?.1;
    }
    Ok((w.descriptor.clone(), size))
}

fn file_member(size: u64, stored: String, uncompressed: Option<String>) -> Member {
    Member::File {
        offset: 0,
        size,
        digest: Some(FileDigest {
            stored,
            uncompressed,
            layer_problem: None,
            left_compressed: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::tests::classic_tar;

    fn layer(text: &[u8]) -> Vec<u8> {
        crate::image::tests::tar_of(&[("file".into(), text.repeat(2000))])
    }

    fn run(
        tar: &[u8],
        layout: &Layout,
        id: &str,
        held: &Held,
        diff_ids: &[String],
        guess: bool,
    ) -> Result<Ingested, IngestError> {
        let req = IngestRequest {
            layout,
            name_id: &digest::hex_part(id)[..12],
            as_is: false,
            compression: LayerCompression::default(),
            held,
            diff_ids,
            guess_by_size: guess,
            rewrite: false,
        };
        ingest(&mut &tar[..], &req)
    }

    #[test]
    fn plain_layers_are_compressed_once_and_the_composed_tar_verifies() {
        let d = tempfile::tempdir().unwrap();
        let layout = Layout::create(d.path()).unwrap();
        let (base, app1, app2) = (layer(b"base"), layer(b"one"), layer(b"two"));
        let (tar1, id1) = classic_tar(&[&base, &app1], false);
        let first = run(&tar1, &layout, &id1, &Held::default(), &[], true).unwrap();
        assert_eq!(first.info.id, id1);
        let after_first = layout.blobs().unwrap();
        // config, manifest, two gzip layers
        assert_eq!(after_first.len(), 4);
        let held = Held::of(&layout, &[first.reference.descriptor()]);
        let diff_ids = vec![crate::digest::sha256(&base), crate::digest::sha256(&app2)];
        let (tar2, id2) = classic_tar(&[&base, &app2], false);
        let second = run(&tar2, &layout, &id2, &held, &diff_ids, true).unwrap();
        assert_eq!(second.reused, 1, "the base layer is only hashed");
        assert_eq!(
            layout.blobs().unwrap().len(),
            7,
            "one layer, config, manifest more"
        );
        // The manifest written names gzip layers with their uncompressed size.
        let needs = graph::needs(&layout, &second.reference.descriptor()).unwrap();
        let layers: Vec<_> = needs
            .blobs
            .iter()
            .filter(|n| n.kind == Kind::Layer)
            .collect();
        assert_eq!(layers.len(), 2);
        for l in layers {
            assert_eq!(l.descriptor.media_type, LAYER_GZIP);
            assert!(l.descriptor.annotations.contains_key(UNCOMPRESSED_SIZE));
        }
        // The tar composed from the blobs is the image the name says, every digest checked.
        let path = d
            .path()
            .join(format!("web_1.1_{}.ref", &digest::hex_part(&id2)[..12]));
        second.reference.write(&path).unwrap();
        let archive = crate::archive::Archive::from_path(&path).unwrap();
        let info = crate::image::verify(&archive).unwrap();
        assert_eq!(info.id, id2);
        assert_eq!(info.layers.len(), 2);
    }

    #[test]
    fn a_wrong_guess_by_size_is_said_and_nothing_is_taken_for_it() {
        let d = tempfile::tempdir().unwrap();
        let layout = Layout::create(d.path()).unwrap();
        let (one, two) = (layer(b"aaaa"), layer(b"bbbb"));
        assert_eq!(one.len(), two.len());
        let (tar1, id1) = classic_tar(&[&one], false);
        let first = run(&tar1, &layout, &id1, &Held::default(), &[], true).unwrap();
        let held = Held::of(&layout, &[first.reference.descriptor()]);
        // The engine says the image holds `one`'s diff ID, but the stream's layer of that size
        // is `two`.
        let (tar2, id2) = classic_tar(&[&two], false);
        let claimed = vec![crate::digest::sha256(&one)];
        let err = run(&tar2, &layout, &id2, &held, &claimed, true).unwrap_err();
        assert!(matches!(err, IngestError::WrongGuess { .. }), "{err}");
        // Without the shortcut, it is written.
        let second = run(&tar2, &layout, &id2, &held, &claimed, false).unwrap();
        assert_eq!(second.reused, 0);
        assert!(graph::needs(&layout, &second.reference.descriptor()).is_ok());
    }

    #[test]
    fn a_stream_that_is_not_its_name_writes_no_ref() {
        let d = tempfile::tempdir().unwrap();
        let layout = Layout::create(d.path()).unwrap();
        let (tar, _) = classic_tar(&[&layer(b"x")], false);
        let other = format!("sha256:{}", "0".repeat(64));
        let err = run(&tar, &layout, &other, &Held::default(), &[], true).unwrap_err();
        assert!(err.to_string().contains("file name says"), "{err}");
        assert!(layout.blobs().unwrap().is_empty(), "no blob committed");
    }
}
