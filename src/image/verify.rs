//! `verify`: one streaming pass over an archive that checks everything — the container (ZIP
//! structure and CRC, or zstd checksum), the tar, the layout (classic or OCI), that the config's
//! sha256 is the image ID and begins with the ID in the file name, that every layer's sha256
//! matches the config's `diff_ids` (gzip layers hashed uncompressed), and that every OCI blob
//! matches its name.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::mpsc;
use std::thread;

use bytes::Bytes;

use super::index::{Reading, TarIndex};
use super::{ArchiveError, ImageError, ImageInfo, check_name};
use crate::archive::Archive;
use crate::codec;
use crate::progress::Silent;

/// Checks one archive fully; a damaged one is [`ArchiveError::Damaged`] with what is wrong.
/// Returns the image it holds.
pub fn verify(archive: &Archive) -> Result<ImageInfo, ArchiveError> {
    let damaged = |source| ArchiveError::Damaged {
        path: archive.path.clone(),
        source,
    };
    let index = super::with_tar(archive, &Silent, |tar| {
        read_whole(tar).map_err(|e| super::indexing(&archive.path, e))
    })?;
    check(&index, &archive.name.id).map_err(damaged)
}

/// Indexes a whole tar stream with every file hashed, then reads it to its end (so that the
/// container's own checks run): after the end-of-archive blocks only zero bytes may follow, up
/// to a whole number of 512-byte blocks, as a `.docker` must end to pass the quick check.
pub fn read_whole(tar: &mut dyn Read) -> Result<TarIndex, ImageError> {
    read_whole_as(tar, Reading::Hashed)
}

/// [`read_whole`], reading the files as `reading` says.
fn read_whole_as(tar: &mut dyn Read, reading: Reading) -> Result<TarIndex, ImageError> {
    let mut counted = Counted {
        inner: tar,
        n: 0,
        zeros: 0,
    };
    let index = TarIndex::read(&mut counted, reading)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match counted.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(ImageError::Read {
                    path: "the end of the tar".into(),
                    source,
                });
            }
        };
        if let Some(at) = buf[..n].iter().position(|&b| b != 0) {
            return Err(ImageError::AfterTheEnd {
                offset: counted.n - n as u64 + at as u64,
            });
        }
    }
    if !counted.n.is_multiple_of(512) {
        return Err(ImageError::NotWholeBlocks { size: counted.n });
    }
    if counted.zeros < 1024 {
        return Err(ImageError::NoEnd);
    }
    Ok(index)
}

/// A reader that counts the bytes it reads, and the zero bytes that end them.
struct Counted<'r> {
    inner: &'r mut dyn Read,
    n: u64,
    zeros: u64,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        match buf[..n].iter().rposition(|&b| b != 0) {
            Some(last) => self.zeros = (n - last - 1) as u64,
            None => self.zeros += n as u64,
        }
        Ok(n)
    }
}

/// The full check of a tar as it streams into an archive (compressing, decompressing), in the
/// same pass, on a thread of its own: the tar's structure, every digest, and the image ID
/// against `name_id`. Pieces travel through a bounded channel, so memory stays bounded.
pub struct StreamCheck {
    sender: Option<mpsc::SyncSender<Bytes>>,
    thread: Option<thread::JoinHandle<Result<ImageInfo, ImageError>>>,
    /// The image, once the check passed.
    pub image: Option<ImageInfo>,
}

impl StreamCheck {
    /// Starts checking a tar that should hold the image `name_id` names.
    pub fn start(name_id: &str) -> StreamCheck {
        StreamCheck::start_thin(name_id, BTreeMap::new())
    }

    /// Starts checking a tar that should hold the image `name_id` names, with the layer
    /// members `omitted` (path and size) left out (see [`check_thin`]).
    pub fn start_thin(name_id: &str, omitted: BTreeMap<String, u64>) -> StreamCheck {
        StreamCheck::starting(name_id, omitted, Reading::Hashed)
    }

    /// The check of a tar on its way into an engine, which checks each layer's diff ID itself
    /// as it unpacks it: as [`StreamCheck::start_thin`], but a compressed layer is checked by
    /// its blob digest alone, never decompressed (the engine's work is not done twice on the
    /// same cores).
    pub fn start_for_engine(name_id: &str, omitted: BTreeMap<String, u64>) -> StreamCheck {
        StreamCheck::starting(name_id, omitted, Reading::HashedAsStored)
    }

    fn starting(name_id: &str, omitted: BTreeMap<String, u64>, reading: Reading) -> StreamCheck {
        let (sender, receiver) = mpsc::sync_channel::<Bytes>(16);
        let name_id = name_id.to_string();
        let thread = thread::spawn(move || {
            let mut reader = Received {
                receiver,
                piece: Bytes::new(),
            };
            let index = read_whole_as(&mut reader, reading)?;
            check_thin(index, &name_id, &omitted)
        });
        StreamCheck {
            sender: Some(sender),
            thread: Some(thread),
            image: None,
        }
    }

    /// Passes on a piece of the tar; `false` when the check stopped (it found damage: see
    /// [`StreamCheck::outcome`]).
    pub fn send(&mut self, piece: Bytes) -> bool {
        match &self.sender {
            Some(sender) if sender.send(piece).is_ok() => true,
            _ => {
                self.sender = None;
                false
            }
        }
    }

    /// Ends the tar and waits for the check: the image, or what is wrong with the tar.
    pub fn outcome(&mut self) -> Result<ImageInfo, ImageError> {
        self.sender = None;
        match self.thread.take().map(thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(ImageError::Read {
                path: "the tar".into(),
                source: io::Error::other("the check of the tar stopped unexpectedly"),
            }),
        }
    }
}

impl codec::TarCheck for StreamCheck {
    fn update(&mut self, piece: &[u8]) {
        if piece.is_empty() {
            return;
        }
        // A check that stopped (it found damage) says so when finished.
        self.send(Bytes::copy_from_slice(piece));
    }

    fn finish(&mut self) -> Result<(), String> {
        self.sender = None;
        let result = match self.thread.take().map(thread::JoinHandle::join) {
            Some(Ok(result)) => result.map_err(|e| e.to_string()),
            Some(Err(_)) => Err("the check of the tar stopped unexpectedly".to_string()),
            None => Err("the tar was checked already".to_string()),
        };
        self.image = Some(result?);
        Ok(())
    }
}

/// The reading side of a [`StreamCheck`]'s channel.
struct Received {
    receiver: mpsc::Receiver<Bytes>,
    piece: Bytes,
}

impl Read for Received {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.piece.is_empty() {
            match self.receiver.recv() {
                Ok(piece) => self.piece = piece,
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.piece.len());
        buf[..n].copy_from_slice(&self.piece.split_to(n));
        Ok(n)
    }
}

/// The checks of a hashed index against the ID in the file name; returns the image the archive
/// is named after (the first).
pub fn check(index: &TarIndex, name_id: &str) -> std::result::Result<ImageInfo, ImageError> {
    check_except(index, name_id, &BTreeMap::new())
}

/// The checks of the hashed index of a thin tar, one whose layer members `omitted` (path and
/// size) were left out because the engine holds them: every member sent is checked as
/// [`check`] does; what was left out is taken as the documents say.
pub fn check_thin(
    mut index: TarIndex,
    name_id: &str,
    omitted: &BTreeMap<String, u64>,
) -> std::result::Result<ImageInfo, ImageError> {
    for (path, size) in omitted {
        index
            .members
            .entry(path.clone())
            .or_insert(super::Member::File {
                offset: 0,
                size: *size,
                digest: None,
            });
    }
    check_except(&index, name_id, omitted)
}

fn check_except(
    index: &TarIndex,
    name_id: &str,
    omitted: &BTreeMap<String, u64>,
) -> std::result::Result<ImageInfo, ImageError> {
    let images = index.images()?;
    for (n, image) in images.iter().enumerate() {
        for layer in image
            .layers
            .iter()
            .filter(|l| !omitted.contains_key(&l.path))
        {
            let found = index
                .file(&layer.path)
                .and_then(|f| f.digest)
                .ok_or_else(|| ImageError::LayerMissing(layer.path.clone()))?;
            if let Some(problem) = &found.layer_problem {
                return Err(ImageError::LayerRefused {
                    layer: layer.path.clone(),
                    problem: problem.clone(),
                });
            }
            // A compressed layer left compressed (a load: the engine checks its diff ID as it
            // unpacks it) is checked by its blob name's digest (see `check_blob_names`).
            let by_blob = found.left_compressed && layer.path.starts_with("blobs/sha256/");
            if !by_blob && found.diff_id() != layer.diff_id {
                return Err(ImageError::LayerDigest {
                    layer: layer.path.clone(),
                    found: found.diff_id().to_string(),
                    expected: layer.diff_id.clone(),
                });
            }
        }
        // The first image is the one the archive is named after.
        if n == 0 {
            check_name(image, name_id)?;
        }
    }
    check_blob_names(index)?;
    images.into_iter().next().ok_or(ImageError::NoImage)
}

/// Checks that every blob of a hashed index has the digest its name says.
pub(super) fn check_blob_names(index: &TarIndex) -> std::result::Result<(), ImageError> {
    for (path, digest) in index.digests() {
        if let Some(hex) = path.strip_prefix("blobs/sha256/")
            && digest.stored != format!("sha256:{hex}")
        {
            return Err(ImageError::BlobDigest {
                path: path.to_string(),
                found: digest.stored.clone(),
            });
        }
    }
    Ok(())
}
