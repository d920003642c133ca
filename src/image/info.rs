//! An image as its archive describes it, and the `docker inspect`-shaped view of it.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::archive::Archive;

/// An image as its archive describes it.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// `sha256:` and the 64 hex digits of the config's digest.
    pub id: String,
    pub repo_tags: Vec<String>,
    /// The image config, parsed.
    pub config: std::sync::Arc<Value>,
    /// Where the config is in the tar.
    pub config_path: String,
    /// The image config's bytes, as stored (their sha256 is the ID).
    pub config_bytes: std::sync::Arc<[u8]>,
    /// The layers, bottom first.
    pub layers: Vec<LayerInfo>,
    /// The manifests and indexes of the archive's OCI layout that lead to this image,
    /// outermost first (empty for a classic archive): on a containerd-store engine the image's
    /// ID is the digest of the outermost one.
    pub manifests: Vec<ManifestRef>,
}

/// A manifest or index that leads to an image, as the archive's `index.json` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRef {
    /// `sha256:` and 64 hex digits.
    pub digest: String,
    pub media_type: String,
    /// `os/architecture[/variant]`, when the descriptor says.
    pub platform: Option<String>,
    /// Whether it is an index (a manifest list) rather than an image manifest.
    pub is_index: bool,
    /// The other image manifests of the index this one is listed in, that toolbox does not
    /// read (other platforms), and the attestation manifests beside it.
    pub siblings: usize,
    pub attestations: usize,
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// The digest of the uncompressed layer tar (the config's `diff_id`).
    pub diff_id: String,
    /// The layer's size as stored in the archive.
    pub size: u64,
    /// Where the layer is inside the archive.
    pub path: String,
}

/// Parses an RFC 3339 time.
pub fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

impl ImageInfo {
    /// Every digest the image is known by: its config digest (its ID on a classic engine and in
    /// a registry), then the manifests and indexes that lead to it (its ID on a
    /// containerd-store engine).
    pub fn identities(&self) -> Vec<&str> {
        std::iter::once(self.id.as_str())
            .chain(self.manifests.iter().map(|m| m.digest.as_str()))
            .collect()
    }

    /// The `created` string of the config.
    pub fn created(&self) -> Option<&str> {
        self.config.get("created").and_then(Value::as_str)
    }

    /// The creation time, when the config has a valid one.
    pub fn created_time(&self) -> Option<OffsetDateTime> {
        parse_time(self.created()?)
    }

    /// A top-level string of the config (`architecture`, `os`, `author`, …).
    pub fn field(&self, key: &str) -> Option<&str> {
        self.config.get(key).and_then(Value::as_str)
    }

    /// The runtime configuration (`config` in the image config), when there is one.
    pub fn runtime(&self) -> Option<&serde_json::Map<String, Value>> {
        self.config.get("config").and_then(Value::as_object)
    }

    /// Which image of an index toolbox reads, and why, when the archive's index offers more
    /// than one (platforms, attestation manifests); `None` when there was no choice.
    pub fn reading(&self) -> Option<String> {
        let chosen = self.manifests.last()?;
        if chosen.siblings == 0 && chosen.attestations == 0 {
            return None;
        }
        let platform = chosen.platform.as_deref().unwrap_or("its platform");
        let mut why = format!(
            "the image manifest {} for {platform}: the image the archive's manifest.json (or the \
             first entry of its index) names",
            chosen.digest
        );
        if chosen.siblings > 0 {
            why.push_str(&format!(
                "; {} other platform manifest(s) are not read",
                chosen.siblings
            ));
        }
        if chosen.attestations > 0 {
            why.push_str(&format!(
                "; {} attestation manifest(s) (provenance, SBOM) are not images",
                chosen.attestations
            ));
        }
        Some(why)
    }

    /// The total size of the layers as stored.
    pub fn size(&self) -> u64 {
        (self.layers.iter()).fold(0, |total, l| total.saturating_add(l.size))
    }

    /// The image as `inspect --json` prints it: `docker inspect`'s field names (`Id`,
    /// `RepoTags`, `Created`, `Author`, `Architecture`, `Os`, `Config`, `RootFS`, `Size`), and
    /// the archive's own facts (`Archive`, `Format`, `ArchiveSize`, `Layers` with each layer's
    /// digest and size as stored). `Size` is the layers' total size as stored.
    pub fn docker_json(&self, archive: &Archive) -> Value {
        let mut config = self.runtime().cloned().unwrap_or_default();
        // `docker inspect` shows these keys even when the image does not set them.
        for key in ["User", "WorkingDir"] {
            config.entry(key).or_insert_with(|| Value::from(""));
        }
        for key in ["Env", "Cmd", "Entrypoint", "Volumes", "OnBuild", "Labels"] {
            config.entry(key).or_insert(Value::Null);
        }
        let mut out = serde_json::Map::new();
        // `Id` as the saving engine showed it: the identity the name's ID begins.
        let id = self
            .identities()
            .into_iter()
            .find(|id| crate::digest::hex_part(id).starts_with(&archive.name.id))
            .unwrap_or(&self.id);
        out.insert("Id".into(), id.into());
        out.insert("ConfigDigest".into(), self.id.clone().into());
        out.insert(
            "ManifestDigests".into(),
            self.manifests
                .iter()
                .map(|m| {
                    serde_json::json!({
                        "Digest": m.digest,
                        "MediaType": m.media_type,
                        "Kind": if m.is_index { "index" } else { "manifest" },
                        "Platform": m.platform,
                    })
                })
                .collect(),
        );
        if let Some(why) = self.reading() {
            out.insert("Reads".into(), why.into());
        }
        out.insert("RepoTags".into(), self.repo_tags.clone().into());
        out.insert("Created".into(), self.created().into());
        for (key, field) in [
            ("Author", "author"),
            ("DockerVersion", "docker_version"),
            ("Architecture", "architecture"),
            ("Variant", "variant"),
            ("Os", "os"),
            ("OsVersion", "os.version"),
        ] {
            match self.field(field) {
                Some(v) => out.insert(key.into(), v.into()),
                None if matches!(key, "Variant" | "OsVersion") => None,
                None => out.insert(key.into(), "".into()),
            };
        }
        out.insert("Config".into(), Value::Object(config));
        out.insert(
            "RootFS".into(),
            serde_json::json!({
                "Type": "layers",
                "Layers": self.layers.iter().map(|l| l.diff_id.as_str()).collect::<Vec<_>>(),
            }),
        );
        out.insert("Size".into(), self.size().into());
        // Said in the output too: this is not the unpacked size `docker inspect` shows.
        out.insert(
            "SizeNote".into(),
            "Size is the layers' total as stored in the archive, not docker's unpacked size".into(),
        );
        out.insert(
            "Layers".into(),
            self.layers
                .iter()
                .map(|l| serde_json::json!({"Digest": l.diff_id, "Size": l.size}))
                .collect(),
        );
        out.insert(
            "Archive".into(),
            archive.path.to_string_lossy().into_owned().into(),
        );
        out.insert("Format".into(), archive.name.format.to_string().into());
        out.insert("ArchiveSize".into(), archive.size.into());
        Value::Object(out)
    }
}
