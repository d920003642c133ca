//! `verify`: one streaming pass over an archive that checks everything — the container (ZIP
//! structure and CRC, or zstd checksum), the tar, the layout (classic or OCI), that the config's
//! sha256 is the image ID and begins with the ID in the file name, that every layer's sha256
//! matches the config's `diff_ids` (gzip layers hashed uncompressed), and that every OCI blob
//! matches its name.

use std::io::{self, Read};
use std::sync::mpsc;
use std::thread;

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
    let mut counted = Counted {
        inner: tar,
        n: 0,
        zeros: 0,
    };
    let index = TarIndex::read(&mut counted, Reading::Hashed)?;
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
    sender: Option<mpsc::SyncSender<Vec<u8>>>,
    thread: Option<thread::JoinHandle<Result<ImageInfo, ImageError>>>,
    /// The image, once the check passed.
    pub image: Option<ImageInfo>,
}

impl StreamCheck {
    /// Starts checking a tar that should hold the image `name_id` names.
    pub fn start(name_id: &str) -> StreamCheck {
        let (sender, receiver) = mpsc::sync_channel::<Vec<u8>>(16);
        let name_id = name_id.to_string();
        let thread = thread::spawn(move || {
            let mut reader = Received {
                receiver,
                piece: Vec::new(),
                at: 0,
            };
            let index = read_whole(&mut reader)?;
            check(&index, &name_id)
        });
        StreamCheck {
            sender: Some(sender),
            thread: Some(thread),
            image: None,
        }
    }
}

impl codec::TarCheck for StreamCheck {
    fn update(&mut self, piece: &[u8]) {
        if piece.is_empty() {
            return;
        }
        // A check that stopped (it found damage) says so when finished.
        if let Some(sender) = &self.sender
            && sender.send(piece.to_vec()).is_err()
        {
            self.sender = None;
        }
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
    receiver: mpsc::Receiver<Vec<u8>>,
    piece: Vec<u8>,
    at: usize,
}

impl Read for Received {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.piece.len() {
            match self.receiver.recv() {
                Ok(piece) => {
                    self.piece = piece;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.piece.len() - self.at);
        buf[..n].copy_from_slice(&self.piece[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The checks of a hashed index against the ID in the file name; returns the image the archive
/// is named after (the first).
pub fn check(index: &TarIndex, name_id: &str) -> std::result::Result<ImageInfo, ImageError> {
    let images = index.images()?;
    for (n, image) in images.iter().enumerate() {
        for layer in &image.layers {
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
            if found.diff_id() != layer.diff_id {
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
