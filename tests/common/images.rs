//! Image archives made by the tests themselves, without an engine: the classic `docker save`
//! layout (`manifest.json`, `<id>.json`, `<layer>/layer.tar`) and the OCI layout Docker 25 and
//! later write (`oci-layout`, `index.json`, `blobs/sha256/…`, plus `manifest.json`), optionally
//! with the image's own index nested under `index.json` (as a containerd-store engine saves) and
//! gzip-compressed layers. Every digest is computed here, with `sha2`, not by the crate.

use sha2::Digest;

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    let hex: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The path of a blob in an OCI layout.
pub fn blob(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

/// One entry of a layer.
#[derive(Debug, Clone)]
pub enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

/// A layer: a tar of `entries` (modes 0755 / 0644, a fixed modification time).
pub fn layer(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        match entry {
            Entry::Dir(path) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, path, &[][..]).unwrap();
            }
            Entry::File(path, data) => {
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, *data).unwrap();
            }
            Entry::Symlink(path, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target).unwrap();
            }
            Entry::Hardlink(path, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_link(&mut h, path, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// A tar of `members` (regular files, in this order).
pub fn tar_of(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

/// How the archive is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `docker save` of a classic store (Docker before 25).
    Classic,
    /// Docker 25 and later: an OCI layout with `manifest.json`; `nested`: `index.json` names
    /// the image's own index, which names the manifest (a containerd store); `gzip`: the
    /// layers are stored gzip-compressed.
    Oci { nested: bool, gzip: bool },
}

/// An image archive's tar, as its members, and what it holds.
#[derive(Debug, Clone)]
pub struct ImageArchive {
    /// The tar's members in order: path and contents.
    pub members: Vec<(String, Vec<u8>)>,
    /// The config's digest (`sha256:…`): the image ID on a classic store.
    pub config_digest: String,
    /// The manifest's digest (OCI layouts).
    pub manifest_digest: Option<String>,
    /// The nested index's digest (nested OCI layouts).
    pub index_digest: Option<String>,
    /// The layers' diff IDs (digests of the uncompressed tars).
    pub diff_ids: Vec<String>,
    /// The layers as stored: path in the archive and size.
    pub layers: Vec<(String, u64)>,
}

impl ImageArchive {
    /// The archive's `docker save` tar.
    pub fn tar(&self) -> Vec<u8> {
        tar_of(&self.members)
    }

    /// The 12 hex digits an archive name carries: the config digest's.
    pub fn short_id(&self) -> String {
        self.config_digest[7..19].to_string()
    }
}

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// An image of `layers` (uncompressed layer tars, bottom first) tagged `repo_tag`, created at
/// `created` (RFC 3339), laid out as `layout`.
pub fn image_archive(
    layout: Layout,
    repo_tag: &str,
    created: &str,
    layers: &[Vec<u8>],
) -> ImageArchive {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "author": "the tests",
        "config": {
            "Env": ["PATH=/usr/bin:/bin", "GREETING=hello"],
            "Cmd": ["/bin/sh"],
            "WorkingDir": "/srv",
            "Labels": {"team": "tests"},
            "ExposedPorts": {"8080/tcp": {}},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().map(|_| serde_json::json!({"created": created, "created_by": "COPY"})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let config_digest = sha256(&config);
    let config_hex = config_digest.trim_start_matches("sha256:").to_string();
    match layout {
        Layout::Classic => {
            let mut members = Vec::new();
            let mut stored = Vec::new();
            for (layer, diff_id) in layers.iter().zip(&diff_ids) {
                let path = format!("{}/layer.tar", diff_id.trim_start_matches("sha256:"));
                members.push((path.clone(), layer.clone()));
                stored.push((path, layer.len() as u64));
            }
            members.push((format!("{config_hex}.json"), config));
            let manifest = serde_json::to_vec(&serde_json::json!([{
                "Config": format!("{config_hex}.json"),
                "RepoTags": [repo_tag],
                "Layers": stored.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
            }]))
            .unwrap();
            let (repo, tag) = repo_tag.rsplit_once(':').unwrap_or((repo_tag, "latest"));
            let top = diff_ids
                .last()
                .map_or("", |d| d.trim_start_matches("sha256:"));
            let repositories =
                serde_json::to_vec(&serde_json::json!({ repo: { tag: top } })).unwrap();
            members.push(("manifest.json".to_string(), manifest));
            members.push(("repositories".to_string(), repositories));
            ImageArchive {
                members,
                config_digest,
                manifest_digest: None,
                index_digest: None,
                diff_ids,
                layers: stored,
            }
        }
        Layout::Oci { nested, gzip } => {
            let mut members = Vec::new();
            let mut descriptors = Vec::new();
            let mut stored = Vec::new();
            for layer in layers {
                let (bytes, media_type) = if gzip {
                    use std::io::Write;
                    let mut gz =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    gz.write_all(layer).unwrap();
                    (
                        gz.finish().unwrap(),
                        "application/vnd.oci.image.layer.v1.tar+gzip",
                    )
                } else {
                    (layer.clone(), "application/vnd.oci.image.layer.v1.tar")
                };
                let digest = sha256(&bytes);
                descriptors.push(serde_json::json!({
                    "mediaType": media_type, "digest": digest, "size": bytes.len(),
                }));
                stored.push((blob(&digest), bytes.len() as u64));
                members.push((blob(&digest), bytes));
            }
            let manifest = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
                "layers": descriptors,
            }))
            .unwrap();
            let manifest_digest = sha256(&manifest);
            let manifest_descriptor = serde_json::json!({
                "mediaType": OCI_MANIFEST,
                "digest": manifest_digest,
                "size": manifest.len(),
                "platform": {"architecture": "amd64", "os": "linux"},
            });
            members.push((blob(&config_digest), config));
            members.push((blob(&manifest_digest), manifest));
            let (repo, tag) = repo_tag.rsplit_once(':').unwrap_or((repo_tag, "latest"));
            let annotations = serde_json::json!({
                "io.containerd.image.name": format!("docker.io/library/{repo}:{tag}"),
                "org.opencontainers.image.ref.name": tag,
            });
            let (top, index_digest) = if nested {
                let index = serde_json::to_vec(&serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": OCI_INDEX,
                    "manifests": [manifest_descriptor],
                }))
                .unwrap();
                let digest = sha256(&index);
                let top = serde_json::json!({
                    "mediaType": OCI_INDEX, "digest": digest, "size": index.len(),
                    "annotations": annotations,
                });
                members.push((blob(&digest), index));
                (top, Some(digest))
            } else {
                let mut top = manifest_descriptor;
                top["annotations"] = annotations;
                (top, None)
            };
            let index = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [top],
            }))
            .unwrap();
            let manifest_json = serde_json::to_vec(&serde_json::json!([{
                "Config": blob(&config_digest),
                "RepoTags": [repo_tag],
                "Layers": stored.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
            }]))
            .unwrap();
            members.push(("index.json".to_string(), index));
            members.push(("manifest.json".to_string(), manifest_json));
            members.push((
                "oci-layout".to_string(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ));
            ImageArchive {
                members,
                config_digest,
                manifest_digest: Some(manifest_digest),
                index_digest,
                diff_ids,
                layers: stored,
            }
        }
    }
}

/// Two layers with a bit of everything `extract` makes: folders, files, a symbolic and a hard
/// link, and a second layer that replaces a file and deletes one with a whiteout.
pub fn sample_layers(tag: &str) -> Vec<Vec<u8>> {
    let note = format!("made for {tag}\n");
    vec![
        layer(&[
            Entry::Dir("srv"),
            Entry::File("srv/app.txt", note.as_bytes()),
            Entry::File("srv/old.txt", b"to be deleted\n"),
            Entry::Symlink("srv/link", "app.txt"),
            Entry::Hardlink("srv/hard", "srv/app.txt"),
            Entry::Dir("etc"),
            Entry::File("etc/motd", b"hello\n"),
        ]),
        layer(&[
            Entry::Dir("srv"),
            Entry::File("srv/.wh.old.txt", b""),
            Entry::File("etc/motd", b"hello again\n"),
        ]),
    ]
}

/// A small sound image (one layer) tagged `repo_tag`: its classic `docker save` tar and the 12
/// hex digits archive names carry.
pub fn small_image(repo_tag: &str) -> (Vec<u8>, String) {
    let archive = image_archive(
        Layout::Classic,
        repo_tag,
        "2024-01-02T03:04:05Z",
        &[layer(&[Entry::File("hello", repo_tag.as_bytes())])],
    );
    (archive.tar(), archive.short_id())
}

/// The bytes of the archive `file_name` (its format from its name: a `.zip` or `.zst` of `tar`,
/// or `tar` itself), as toolbox writes it.
pub fn archive_bytes(tar: &[u8], file_name: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let body = toolbox::codec::Body {
        source: std::path::Path::new("test"),
        modified: std::time::SystemTime::now(),
        comment: None,
    };
    let path =
        toolbox::codec::write_archive(&mut &tar[..], body, &dir.path().join(file_name), 3).unwrap();
    std::fs::read(path).unwrap()
}

/// `n` bytes that do not compress (xorshift from `seed`): a layer whose blob is about its own
/// size.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
