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
    pub config: Value,
    /// Where the config is in the tar.
    pub config_path: String,
    /// The image config's bytes, as stored (their sha256 is the ID).
    pub config_bytes: Vec<u8>,
    /// The layers, bottom first.
    pub layers: Vec<LayerInfo>,
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
        out.insert("Id".into(), self.id.clone().into());
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
