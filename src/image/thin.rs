//! Thin loads: the `docker save` tar of an archive with the layers an engine already holds
//! left out, in the form the engine accepts.
//!
//! - A classic image store looks each layer up by its chain (the diff IDs up to it) before it
//!   opens the layer's file: the layers of the longest prefix of the image's diff IDs that an
//!   image of the engine starts with can be left out ([`held_prefix`], [`classic_omissions`]).
//! - The containerd image store refuses that tar, but loads an OCI image layout (`oci-layout`,
//!   `index.json`, blobs) whose missing blobs its content store holds under the same digests
//!   ([`reached`], [`oci_omissions`], [`oci_documents`]).
//!
//! [`TarFilter`] makes the thin tar out of the whole one as it streams: members left out are
//! skipped (seeked over, where the source can), documents replaced are dropped and the new
//! ones written before the end.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::io::{self, BufRead, Read, Seek};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde_json::json;

use super::index::{TarIndex, normalize, stored_blob};
use super::info::ImageInfo;
use super::write::{padding, qualified, tar_member};
use crate::layout::index::REF_NAME;
use crate::oci::{Descriptor, Document, OCI_INDEX};

/// How deep indexes may nest in a walk of [`reached`].
const MAX_DEPTH: usize = 16;
/// How many descriptors one walk of [`reached`] may meet.
const MAX_DESCRIPTORS: usize = 10_000;
/// The largest tar header extension (a PAX record set, a GNU long name) passed on.
const MAX_EXTENSION: u64 = 1 << 20;

/// How many of `diff_ids`, from the bottom, some image the engine holds starts with (each of
/// `held` is one image's diff IDs, bottom first): the layers a classic store has, by chain.
pub fn held_prefix(diff_ids: &[String], held: &[Vec<String>]) -> usize {
    held.iter()
        .map(|layers| {
            diff_ids
                .iter()
                .zip(layers)
                .take_while(|(a, b)| a == b)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// The members of the tar to leave out when the engine holds the image's first `prefix`
/// layers: those layers' files (the path `manifest.json` names, and where its links lead),
/// except a file that a layer above the prefix uses too. Each comes with its size.
pub fn classic_omissions(
    info: &ImageInfo,
    index: &TarIndex,
    prefix: usize,
) -> BTreeMap<String, u64> {
    let paths = |layer: &super::LayerInfo| -> Vec<(String, u64)> {
        let mut out = vec![(layer.path.clone(), layer.size)];
        if let Some(file) = index.file(&layer.path)
            && file.path != layer.path
        {
            out.push((file.path.to_string(), file.size));
        }
        out
    };
    let kept: HashSet<String> = info
        .layers
        .iter()
        .skip(prefix)
        .flat_map(|l| paths(l).into_iter().map(|(p, _)| p))
        .collect();
    info.layers
        .iter()
        .take(prefix)
        .flat_map(paths)
        .filter(|(p, _)| !kept.contains(p))
        .collect()
}

/// The blobs (configs, layers, nested manifests) the manifest or index `root` leads to, with
/// `root` itself, as far as `fetch` gives their documents (the bytes of a digest, checked
/// against it). The walk is bounded in depth and breadth; what it cannot read is passed over.
pub fn reached(root: &str, mut fetch: impl FnMut(&str) -> Option<Vec<u8>>) -> HashSet<String> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut todo: Vec<(String, usize)> = vec![(root.to_string(), 0)];
    seen.insert(root.to_string());
    while let Some((digest, depth)) = todo.pop() {
        if depth > MAX_DEPTH {
            continue;
        }
        let Some(bytes) = fetch(&digest) else {
            continue;
        };
        if crate::digest::sha256(&bytes) != digest {
            continue;
        }
        let Ok(doc) = Document::parse(&bytes) else {
            continue;
        };
        let children = doc
            .manifests
            .iter()
            .flatten()
            .map(|m| (m, true))
            .chain(doc.config.iter().map(|c| (c, false)))
            .chain(doc.layers.iter().map(|l| (l, false)));
        for (child, walk) in children {
            if seen.len() >= MAX_DESCRIPTORS {
                return seen;
            }
            if seen.insert(child.digest.clone()) && walk {
                todo.push((child.digest.clone(), depth + 1));
            }
        }
    }
    seen
}

/// The layer blobs of the image to leave out of an OCI layout tar, when the engine's content
/// store holds the blobs `known`: each layer stored as `blobs/sha256/<digest>` whose digest is
/// known, with its size.
pub fn oci_omissions(info: &ImageInfo, known: &HashSet<String>) -> BTreeMap<String, u64> {
    info.layers
        .iter()
        .filter(|l| stored_blob(&l.path).is_some_and(|d| known.contains(&d)))
        .map(|l| (l.path.clone(), l.size))
        .collect()
}

/// The documents of the OCI layout tar a containerd store loads: `oci-layout` and an
/// `index.json` naming the image's root manifest or index as `tag` (`REPOSITORY:TAG`), as
/// containerd names images. `None` when the archive is no OCI layout of one image.
pub fn oci_documents(
    info: &ImageInfo,
    index: &TarIndex,
    tag: &str,
) -> Option<Vec<(String, Vec<u8>)>> {
    let root = info.manifests.first()?;
    let top = Document::parse(index.document("index.json")?).ok()?;
    let listed = top.manifests?;
    let [descriptor] = listed.as_slice() else {
        return None;
    };
    if descriptor.digest != root.digest {
        return None;
    }
    let mut descriptor: Descriptor = descriptor.clone();
    let ann = &mut descriptor.annotations;
    let name = ann
        .get("io.containerd.image.name")
        .cloned()
        .unwrap_or_else(|| qualified(tag));
    let ref_name = ann
        .get(REF_NAME)
        .cloned()
        .unwrap_or_else(|| tag.rsplit(':').next().unwrap_or_default().to_string());
    ann.insert("io.containerd.image.name".into(), name);
    ann.insert(REF_NAME.into(), ref_name);
    let document = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor],
    }))
    .ok()?;
    Some(vec![
        (
            crate::layout::MARKER.to_string(),
            crate::layout::MARKER_BYTES.to_vec(),
        ),
        ("index.json".to_string(), document),
    ])
}

/// The members the containerd store's tar drops from an archive's tar: the classic documents
/// (whose layer paths it would try to resolve) and those [`oci_documents`] replaces.
pub const OCI_DROPPED: [&str; 4] = ["manifest.json", "repositories", "index.json", "oci-layout"];

/// What [`TarFilter`] changes in a tar.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Members left out (paths as [`normalize`] gives them).
    pub omit: HashSet<String>,
    /// Members written before the end of the tar (name, bytes).
    pub extra: Vec<(String, Vec<u8>)>,
}

impl Filter {
    /// Whether the filter changes nothing.
    pub fn is_empty(&self) -> bool {
        self.omit.is_empty() && self.extra.is_empty()
    }
}

/// A source of tar bytes that can pass over bytes it need not read.
pub trait Source: Read {
    /// Passes over the next `n` bytes.
    fn skip(&mut self, n: u64) -> io::Result<()>;
}

/// A [`Source`] that reads what it passes over (a decompressed stream).
pub struct Streamed<R>(pub R);

impl<R: Read> Read for Streamed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> Source for Streamed<R> {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let passed = io::copy(&mut (&mut self.0).take(n), &mut io::sink())?;
        if passed < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the tar ended inside a member",
            ));
        }
        Ok(())
    }
}

/// A [`Source`] that seeks over what it passes over (a `.docker` file), counting both in
/// `counted` (called with each number of bytes read or passed over).
pub struct Seeking<R, F> {
    pub inner: io::BufReader<R>,
    pub counted: F,
}

impl<R: Read, F: FnMut(u64)> Read for Seeking<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.counted)(n as u64);
        Ok(n)
    }
}

impl<R: Read + Seek, F: FnMut(u64)> Source for Seeking<R, F> {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let buffered = self.inner.buffer().len() as u64;
        if n <= buffered {
            self.inner.consume(n as usize);
        } else {
            let far = i64::try_from(n).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a member too large to pass over",
                )
            })?;
            self.inner.seek_relative(far)?;
        }
        (self.counted)(n);
        Ok(())
    }
}

/// Where a [`TarFilter`] is in its tar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a header.
    Header,
    /// Inside a member passed on: this many bytes of data and padding are left.
    Data(u64),
    /// After the first end block: the rest is passed on as it is.
    Tail,
    Done,
}

/// A tar with the members a [`Filter`] leaves out passed over (never read, when the source can
/// seek) and its extra members written before the end. Counts the bytes of the whole tar it
/// went through ([`TarFilter::whole`]) and of the tar it gave ([`TarFilter::sent`]).
pub struct TarFilter<S> {
    source: S,
    filter: Filter,
    state: State,
    out: Vec<u8>,
    at: usize,
    whole: u64,
    sent: u64,
}

impl<S: Source> TarFilter<S> {
    pub fn new(source: S, filter: Filter) -> TarFilter<S> {
        TarFilter {
            source,
            filter,
            state: State::Header,
            out: Vec::new(),
            at: 0,
            whole: 0,
            sent: 0,
        }
    }

    /// The bytes of the source's tar gone through (read or passed over).
    pub fn whole(&self) -> u64 {
        self.whole
    }

    /// The bytes given.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Reads exactly `buf`; `false` when the source ended before its first byte.
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        let mut got = 0;
        while got < buf.len() {
            match self.source.read(&mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the tar ended inside a header",
                    ));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.whole += buf.len() as u64;
        Ok(true)
    }

    /// Reads headers up to the next member passed on (or the end), and queues what is given
    /// of it.
    fn next_member(&mut self) -> io::Result<()> {
        let mut pending: Vec<u8> = Vec::new();
        let mut long_name: Option<Vec<u8>> = None;
        loop {
            let mut block = [0u8; 512];
            if !self.fill(&mut block)? {
                // A tar without its end blocks: the check of what was sent says so.
                self.out = pending;
                self.at = 0;
                self.state = State::Done;
                return Ok(());
            }
            if block.iter().all(|&b| b == 0) {
                let mut out = pending;
                for (name, bytes) in &self.filter.extra {
                    out.extend_from_slice(&tar_member(name, bytes));
                }
                out.extend_from_slice(&block);
                self.out = out;
                self.at = 0;
                self.state = State::Tail;
                return Ok(());
            }
            let header = tar::Header::from_byte_slice(&block);
            let size = header.entry_size()?;
            let whole = size + padding(size) as u64;
            let kind = header.entry_type();
            if kind.is_pax_local_extensions()
                || kind.is_pax_global_extensions()
                || kind.is_gnu_longname()
                || kind.is_gnu_longlink()
            {
                if whole > MAX_EXTENSION {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("a tar header extension of {size} bytes"),
                    ));
                }
                let mut data = vec![0u8; whole as usize];
                if !self.fill(&mut data)? {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the tar ended inside a header",
                    ));
                }
                let body = &data[..size as usize];
                if kind.is_gnu_longname() {
                    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
                    long_name = Some(body[..end].to_vec());
                } else if kind.is_pax_local_extensions() {
                    for ext in tar::PaxExtensions::new(body).flatten() {
                        if ext.key_bytes() == b"path" {
                            long_name = Some(ext.value_bytes().to_vec());
                        }
                    }
                }
                pending.extend_from_slice(&block);
                pending.extend_from_slice(&data);
                continue;
            }
            let name = long_name
                .take()
                .unwrap_or_else(|| header.path_bytes().to_vec());
            let key = normalize(Path::new(OsStr::from_bytes(&name))).ok();
            if key.is_some_and(|k| self.filter.omit.contains(&k)) {
                self.source.skip(whole)?;
                self.whole += whole;
                pending.clear();
                continue;
            }
            pending.extend_from_slice(&block);
            self.out = pending;
            self.at = 0;
            self.state = State::Data(whole);
            return Ok(());
        }
    }
}

impl<S: Source> Read for TarFilter<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.at < self.out.len() {
                let n = buf.len().min(self.out.len() - self.at);
                buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
                self.at += n;
                self.sent += n as u64;
                return Ok(n);
            }
            match self.state {
                State::Data(0) => self.state = State::Header,
                State::Data(left) => {
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = self.source.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the tar ended inside a member",
                        ));
                    }
                    self.state = State::Data(left - n as u64);
                    self.whole += n as u64;
                    self.sent += n as u64;
                    return Ok(n);
                }
                State::Tail => {
                    let n = self.source.read(buf)?;
                    if n == 0 {
                        self.state = State::Done;
                    }
                    self.whole += n as u64;
                    self.sent += n as u64;
                    return Ok(n);
                }
                State::Done => return Ok(0),
                State::Header => self.next_member()?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::index::{Member, Reading};
    use crate::image::write::TAR_END;

    fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data) in members {
            out.extend_from_slice(&tar_member(name, data));
        }
        out.extend_from_slice(&TAR_END);
        out
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_prefix_is_the_longest_any_held_image_starts_with() {
        let image = ids(&["a", "b", "c"]);
        assert_eq!(held_prefix(&image, &[]), 0);
        assert_eq!(held_prefix(&image, &[ids(&["b", "a"])]), 0);
        assert_eq!(
            held_prefix(&image, &[ids(&["a", "x"]), ids(&["a", "b"])]),
            2
        );
        // A layer held in another position is no chain the engine has.
        assert_eq!(held_prefix(&image, &[ids(&["x", "b", "c"])]), 0);
        assert_eq!(held_prefix(&image, &[ids(&["a", "b", "c", "d"])]), 3);
    }

    fn layer(path: &str, diff: &str) -> super::super::LayerInfo {
        super::super::LayerInfo {
            diff_id: diff.into(),
            size: 10,
            path: path.into(),
        }
    }

    #[test]
    fn a_file_a_layer_above_the_prefix_uses_is_kept() {
        let mut index = TarIndex::default();
        for p in ["l1/layer.tar", "l2/layer.tar"] {
            index.members.insert(
                p.into(),
                Member::File {
                    offset: 0,
                    size: 10,
                    digest: None,
                },
            );
        }
        // The third layer is the first's file again, through a link.
        index
            .members
            .insert("l3/layer.tar".into(), Member::Link("l1/layer.tar".into()));
        let info = ImageInfo {
            id: String::new(),
            repo_tags: vec![],
            config: Default::default(),
            config_path: String::new(),
            config_bytes: std::sync::Arc::from(&b""[..]),
            layers: vec![
                layer("l1/layer.tar", "a"),
                layer("l2/layer.tar", "b"),
                layer("l3/layer.tar", "a"),
            ],
            manifests: vec![],
        };
        let omitted = classic_omissions(&info, &index, 2);
        assert_eq!(
            omitted.keys().collect::<Vec<_>>(),
            vec!["l2/layer.tar"],
            "l1's file is l3's too"
        );
        assert!(classic_omissions(&info, &index, 0).is_empty());
        let all = classic_omissions(&info, &index, 3);
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn the_filter_leaves_out_members_and_adds_documents_before_the_end() {
        let big = vec![7u8; 3000];
        let tar = tar_of(&[
            ("base/layer.tar", &big),
            ("top/layer.tar", b"top"),
            ("manifest.json", b"[]"),
        ]);
        let filter = Filter {
            omit: ["base/layer.tar".to_string(), "manifest.json".to_string()].into(),
            extra: vec![("index.json".into(), b"{}".to_vec())],
        };
        for seeking in [false, true] {
            let mut out = Vec::new();
            let (whole, sent) = if seeking {
                let mut counted = 0u64;
                let source = Seeking {
                    inner: io::BufReader::with_capacity(1024, io::Cursor::new(tar.clone())),
                    counted: |n| counted += n,
                };
                let mut f = TarFilter::new(source, filter.clone());
                f.read_to_end(&mut out).unwrap();
                (f.whole(), f.sent())
            } else {
                let mut f = TarFilter::new(Streamed(tar.as_slice()), filter.clone());
                f.read_to_end(&mut out).unwrap();
                (f.whole(), f.sent())
            };
            assert_eq!(whole, tar.len() as u64);
            assert_eq!(sent, out.len() as u64);
            let index = TarIndex::read(&mut out.as_slice(), Reading::Hashed).unwrap();
            let mut names: Vec<&String> = index.members.keys().collect();
            names.sort();
            assert_eq!(names, vec!["index.json", "top/layer.tar"]);
            assert_eq!(index.document("index.json"), Some(&b"{}"[..]));
            assert!(out.len() < tar.len() - 3000);
            assert!(out.ends_with(&TAR_END) && out.len() % 512 == 0);
        }
    }

    #[test]
    fn long_names_are_filtered_by_their_whole_name() {
        let long = format!("{}/layer.tar", "d".repeat(120));
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in [(long.as_str(), &b"gone"[..]), ("kept", &b"here"[..])] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, name, data).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let filter = Filter {
            omit: [long.clone()].into(),
            extra: vec![],
        };
        let mut out = Vec::new();
        TarFilter::new(Streamed(tar.as_slice()), filter)
            .read_to_end(&mut out)
            .unwrap();
        let index = TarIndex::read(&mut out.as_slice(), Reading::Hashed).unwrap();
        assert_eq!(index.members.keys().collect::<Vec<_>>(), vec!["kept"]);
    }

    #[test]
    fn the_walk_reaches_what_a_manifest_names_and_stops_at_what_it_cannot_read() {
        let config = b"{\"rootfs\":{}}".to_vec();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "config": {"mediaType": "c", "digest": crate::digest::sha256(&config), "size": config.len()},
            "layers": [{"mediaType": "l", "digest": format!("sha256:{}", "1".repeat(64)), "size": 3}],
        }))
        .unwrap();
        let root = crate::digest::sha256(&manifest);
        let found = reached(&root, |d| (d == root).then(|| manifest.clone()));
        assert!(found.contains(&root));
        assert!(found.contains(&format!("sha256:{}", "1".repeat(64))));
        assert_eq!(found.len(), 3);
        // Bytes that are not the digest's are not read.
        let other = reached(&root, |_| Some(b"{}".to_vec()));
        assert_eq!(other.len(), 1);
    }
}
