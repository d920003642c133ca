//! What is inside a `docker save` tar, read in one streaming pass: the classic layout
//! (`manifest.json`, `<config>.json`, `<layer>/layer.tar`) and the OCI layout of Docker 25 and
//! later (`oci-layout`, `index.json`, `blobs/sha256/…` beside `manifest.json`). Every file is
//! hashed as it streams; gzip-compressed layers are hashed compressed and uncompressed. Only small
//! files (the JSON documents) are kept in memory.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Component, Path};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::codec;
use crate::error::{Error, Result};
use crate::progress::Silent;
use crate::store::Archive;

/// Files up to this size are kept in memory (manifests, configs, indexes).
const SMALL: u64 = 4 << 20;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// One image in `manifest.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManifestEntry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

/// The digests of one file of the tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    /// `sha256:<hex>` of the bytes as stored.
    pub stored: String,
    /// `sha256:<hex>` of the bytes after gzip decompression, for gzip-compressed files.
    pub uncompressed: Option<String>,
    pub size: u64,
}

impl FileDigest {
    /// The digest a layer's `diff_id` is compared with.
    pub fn diff_id(&self) -> &str {
        self.uncompressed.as_deref().unwrap_or(&self.stored)
    }
}

/// What a `docker save` tar holds.
#[derive(Debug, Default)]
pub struct Contents {
    /// Every regular file's digests, by path.
    pub files: HashMap<String, FileDigest>,
    /// The small files' bytes, by path.
    pub small: HashMap<String, Vec<u8>>,
    /// Links (`docker save` links a layer that appears twice to its first copy), by path: the
    /// path they lead to.
    pub links: HashMap<String, String>,
}

impl Contents {
    /// Reads a `docker save` tar; an unsafe path (absolute, or with `..`) is an error.
    pub fn read(reader: &mut dyn Read) -> std::result::Result<Contents, String> {
        let mut archive = tar::Archive::new(reader);
        let mut contents = Contents::default();
        let entries = archive.entries().map_err(|e| format!("not a tar: {e}"))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| format!("the tar is damaged: {e}"))?;
            let path = entry
                .path()
                .map_err(|e| format!("the tar is damaged: {e}"))?
                .into_owned();
            check_path(&path)?;
            let key = normalize(&path);
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                if let Ok(Some(target)) = entry.link_name() {
                    // A symbolic link is relative to its folder; a hard link to the tar's root.
                    let base = match Path::new(&key).parent() {
                        Some(parent) if kind.is_symlink() => parent.join(target),
                        _ => target.into_owned(),
                    };
                    contents
                        .links
                        .insert(key, crate::inspect::normalize(&base)?);
                }
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let size = entry.header().size().unwrap_or(0);
            let mut kept = (size <= SMALL).then(Vec::new);
            let digest = hash_file(&mut entry, kept.as_mut())
                .map_err(|e| format!("reading `{key}`: {e}"))?;
            if let Some(bytes) = kept {
                contents.small.insert(key.clone(), bytes);
            }
            contents.files.insert(key, digest);
        }
        Ok(contents)
    }

    /// The digests of the file at `path`, following links.
    pub fn file(&self, path: &str) -> Option<&FileDigest> {
        let mut key = normalize(Path::new(path));
        for _ in 0..16 {
            match self.links.get(&key) {
                Some(target) => key = target.clone(),
                None => return self.files.get(&key),
            }
        }
        None
    }

    /// The images listed in `manifest.json`.
    pub fn manifest(&self) -> std::result::Result<Vec<ManifestEntry>, String> {
        let bytes = self
            .small
            .get("manifest.json")
            .ok_or("no manifest.json: this is not a `docker save` archive")?;
        serde_json::from_slice(bytes).map_err(|e| format!("manifest.json is not valid: {e}"))
    }
}

/// Checks everything `verify` checks of one archive: the container (ZIP structure and CRC, or
/// zstd checksum), the tar, `manifest.json`, that the config's sha256 is the image ID and that
/// its first 12 hex digits are the ID in the file name, that every layer's sha256 matches the
/// config's `diff_ids`, and that every OCI blob matches its name.
pub fn verify(archive: &Archive) -> Result<()> {
    let corrupt = |reason: String| Error::Corrupt {
        path: archive.path.clone(),
        reason,
    };
    let contents = codec::with_tar_reader(archive, &Silent, |tar| {
        let contents = Contents::read(tar);
        // Drain what the tar reader left (padding), so that the container's checks run.
        io::copy(tar, &mut io::sink()).map_err(|e| Error::io(&archive.path, e))?;
        Ok(contents)
    })?
    .map_err(corrupt)?;
    check_contents(&contents, &archive.name.id).map_err(corrupt)
}

fn check_contents(contents: &Contents, name_id: &str) -> std::result::Result<(), String> {
    let manifest = contents.manifest()?;
    if manifest.is_empty() {
        return Err("manifest.json lists no image".into());
    }
    for (index, entry) in manifest.iter().enumerate() {
        let key = normalize(Path::new(&entry.config));
        let missing = || {
            format!(
                "the config `{}` named by manifest.json is missing",
                entry.config
            )
        };
        let config = contents.files.get(&key).ok_or_else(missing)?;
        // Only files up to SMALL are kept: a larger "config" is no image config.
        let bytes = contents.small.get(&key).ok_or_else(|| {
            format!(
                "the config `{}` is {} bytes, too large for an image config",
                entry.config, config.size
            )
        })?;
        #[derive(Deserialize)]
        struct RootFs {
            #[serde(default)]
            diff_ids: Vec<String>,
        }
        #[derive(Deserialize)]
        struct Config {
            rootfs: RootFs,
        }
        let parsed: Config = serde_json::from_slice(bytes)
            .map_err(|e| format!("the config `{}` is not valid: {e}", entry.config))?;
        if parsed.rootfs.diff_ids.len() != entry.layers.len() {
            return Err(format!(
                "manifest.json lists {} layers, the config {} diff_ids",
                entry.layers.len(),
                parsed.rootfs.diff_ids.len()
            ));
        }
        for (layer, diff_id) in entry.layers.iter().zip(&parsed.rootfs.diff_ids) {
            let found = contents
                .file(layer)
                .ok_or_else(|| format!("the layer `{layer}` named by manifest.json is missing"))?;
            if found.diff_id() != diff_id {
                return Err(format!(
                    "the layer `{layer}` has digest {}, the config says {diff_id}",
                    found.diff_id()
                ));
            }
        }
        // The first image is the one the archive is named after.
        if index == 0 {
            let id = config
                .stored
                .strip_prefix("sha256:")
                .unwrap_or(&config.stored);
            if !id.starts_with(name_id) {
                return Err(format!(
                    "the image ID is sha256:{id}, but the file name says {name_id}"
                ));
            }
        }
    }
    for (path, digest) in &contents.files {
        if let Some(hex) = path.strip_prefix("blobs/sha256/")
            && digest.stored != format!("sha256:{hex}")
        {
            return Err(format!("the blob `{path}` has digest {}", digest.stored));
        }
    }
    Ok(())
}

/// Refuses absolute paths and `..` components.
fn check_path(path: &Path) -> std::result::Result<(), String> {
    for c in path.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "the tar holds an absolute path `{}`",
                    path.display()
                ));
            }
            Component::ParentDir => {
                return Err(format!(
                    "the tar holds a path that escapes with `..`: `{}`",
                    path.display()
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A tar path as manifests name it: no leading `./`.
fn normalize(path: &Path) -> String {
    let parts: Vec<_> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_string_lossy()),
            _ => None,
        })
        .collect();
    parts.join("/")
}

/// Hashes a file as it streams (and its gzip-decompressed content when it is gzip), keeping
/// its bytes in `keep` when asked.
fn hash_file(reader: &mut dyn Read, keep: Option<&mut Vec<u8>>) -> io::Result<FileDigest> {
    let mut first = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match reader.read(&mut first[got..])? {
            0 => break,
            n => got += n,
        }
    }
    let head = &first[..got];
    let mut tee = HashingReader {
        inner: io::Cursor::new(head.to_vec()).chain(reader),
        hasher: Sha256::new(),
        size: 0,
        keep,
    };
    let uncompressed = if head == GZIP_MAGIC {
        let mut plain = Sha256::new();
        let mut decoder = flate2::read::MultiGzDecoder::new(&mut tee);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match decoder.read(&mut buf)? {
                0 => break,
                n => plain.update(&buf[..n]),
            }
        }
        Some(hex(plain))
    } else {
        None
    };
    io::copy(&mut tee, &mut io::sink())?;
    Ok(FileDigest {
        stored: hex(tee.hasher),
        uncompressed,
        size: tee.size,
    })
}

struct HashingReader<'a, R> {
    inner: R,
    hasher: Sha256,
    size: u64,
    keep: Option<&'a mut Vec<u8>>,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        if let Some(keep) = self.keep.as_deref_mut() {
            keep.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

/// `sha256:<hex>` of a finished hash.
pub(crate) fn hex(hasher: Sha256) -> String {
    let digest = hasher.finalize();
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in digest.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// `sha256:<hex>` of some bytes.
pub fn sha256(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    hex(h)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// A classic `docker save` tar of one image with the given layers; returns the tar and the
    /// image ID.
    pub fn classic_tar(layers: &[&[u8]], gzip_layers: bool) -> (Vec<u8>, String) {
        let mut diff_ids = Vec::new();
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut names = Vec::new();
        for (i, layer) in layers.iter().enumerate() {
            diff_ids.push(sha256(layer));
            let stored = if gzip_layers {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(layer).unwrap();
                gz.finish().unwrap()
            } else {
                layer.to_vec()
            };
            let name = format!("layer{i}/layer.tar");
            files.push((name.clone(), stored));
            names.push(name);
        }
        let config = serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}});
        let config = serde_json::to_vec(&config).unwrap();
        let id = sha256(&config);
        let config_name = format!("{}.json", &id[7..]);
        files.push((config_name.clone(), config));
        let manifest =
            serde_json::json!([{"Config": config_name, "RepoTags": ["web:1.0"], "Layers": names}]);
        files.push((
            "manifest.json".into(),
            serde_json::to_vec(&manifest).unwrap(),
        ));
        (tar_of(&files), id)
    }

    pub fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            // Write the name raw, so that hostile names reach the reader as they are.
            header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_cksum();
            builder.append(&header, data.as_slice()).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn check(tar: &[u8], name_id: &str) -> std::result::Result<(), String> {
        let contents = Contents::read(&mut &tar[..])?;
        check_contents(&contents, name_id)
    }

    #[test]
    fn a_good_image_passes_in_both_layer_encodings() {
        for gzip in [false, true] {
            let (tar, id) = classic_tar(&[b"first layer", &vec![7u8; 300_000]], gzip);
            assert_eq!(check(&tar, &id[7..19]), Ok(()), "gzip {gzip}");
        }
    }

    #[test]
    fn problems_are_named() {
        let (tar, id) = classic_tar(&[b"first layer", b"second layer"], false);
        let err = check(&tar, "ffffffffffff").unwrap_err();
        assert!(
            err.contains("ffffffffffff") && err.contains(&id[7..]),
            "{err}"
        );

        let mut flipped = tar.clone();
        let at = flipped
            .windows(12)
            .position(|w| w == b"second layer")
            .unwrap();
        flipped[at] ^= 1;
        let err = check(&flipped, &id[7..19]).unwrap_err();
        assert!(err.contains("layer1/layer.tar"), "{err}");

        let err = check(&tar_of(&[("x".into(), b"y".to_vec())]), "0123456789ab").unwrap_err();
        assert!(err.contains("manifest.json"), "{err}");
        for hostile in ["/etc/passwd", "../escape", "a/../../b"] {
            let err =
                Contents::read(&mut &tar_of(&[(hostile.into(), b"x".to_vec())])[..]).unwrap_err();
            assert!(err.contains(hostile), "{err}");
        }
        let err = check(&tar[..tar.len() / 2], &id[7..19]).unwrap_err();
        assert!(!err.is_empty());
    }

    #[test]
    fn an_oversized_config_is_an_error_not_a_panic() {
        let config_name = format!("{}.json", "a".repeat(64));
        let manifest = serde_json::json!([{"Config": config_name, "Layers": []}]);
        let tar = tar_of(&[
            (config_name.clone(), vec![b' '; SMALL as usize + 1]),
            (
                "manifest.json".into(),
                serde_json::to_vec(&manifest).unwrap(),
            ),
        ]);
        let err = check(&tar, "aaaaaaaaaaaa").unwrap_err();
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn oci_blobs_must_match_their_names() {
        let blob = b"a blob".to_vec();
        let name = format!("blobs/sha256/{}", &sha256(&blob)[7..]);
        let contents = Contents::read(&mut &tar_of(&[(name.clone(), blob)])[..]).unwrap();
        assert_eq!(contents.files[&name].stored[7..], name[13..]);
        let wrong = format!("blobs/sha256/{}", "0".repeat(64));
        let (tar, id) = classic_tar(&[b"l"], false);
        let mut contents = Contents::read(&mut &tar[..]).unwrap();
        contents.files.insert(
            wrong,
            FileDigest {
                stored: sha256(b"x"),
                uncompressed: None,
                size: 1,
            },
        );
        assert!(
            check_contents(&contents, &id[7..19])
                .unwrap_err()
                .contains("blobs/sha256/000")
        );
    }
}
