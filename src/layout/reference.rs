//! A reference archive (`<image>_<version>_<id>.ref`): a small JSON file holding the OCI
//! descriptor (`mediaType`, `digest`, `size`) of the image's manifest, or of its index where the
//! engine's ID is an index's digest. Its blobs are in the layer store.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{LayoutError, Result};
use crate::commit::AtomicFile;
use crate::io_error::IoContext;
use crate::oci::{self, Descriptor};
use crate::regular;

/// A `.ref` file is read up to this size.
pub const REF_LIMIT: u64 = 64 << 10;

/// What a `.ref` file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefFile {
    pub media_type: String,
    #[serde(deserialize_with = "crate::digest::deserialize_sha256")]
    pub digest: String,
    #[serde(deserialize_with = "crate::digest::deserialize_size")]
    pub size: u64,
}

impl RefFile {
    /// Reads the `.ref` file at `path` (a regular file, never through a link).
    pub fn read(path: &Path) -> Result<RefFile> {
        let bad = |reason: String| LayoutError::BadRef {
            path: path.to_path_buf(),
            reason,
        };
        let bytes =
            regular::read(path, REF_LIMIT)?.ok_or_else(|| bad("the file does not exist".into()))?;
        RefFile::parse(&bytes, path)
    }

    /// Parses the bytes of a `.ref` file read from `source` (a path, or a URL as one).
    pub fn parse(bytes: &[u8], source: &Path) -> Result<RefFile> {
        let bad = |reason: String| LayoutError::BadRef {
            path: source.to_path_buf(),
            reason,
        };
        if bytes.len() as u64 > REF_LIMIT {
            return Err(bad(format!("it is larger than {REF_LIMIT} bytes")));
        }
        let parsed: RefFile = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if ![
            oci::OCI_MANIFEST,
            oci::OCI_INDEX,
            oci::DOCKER_MANIFEST,
            oci::DOCKER_LIST,
        ]
        .contains(&parsed.media_type.as_str())
        {
            return Err(bad(format!(
                "`{}` is not the media type of a manifest or an index",
                parsed.media_type
            )));
        }
        Ok(parsed)
    }

    /// Writes the file at `path` atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        let mut file = AtomicFile::create(path)?;
        file.write_all(&bytes).at(path)?;
        file.commit()?;
        Ok(())
    }

    /// The descriptor it holds.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
            platform: None,
            annotations: Default::default(),
        }
    }

    /// Whether the descriptor is an index's.
    pub fn is_index(&self) -> bool {
        is_index_type(&self.media_type)
    }
}

/// Whether a media type is an index's (or a manifest list's).
pub fn is_index_type(media_type: &str) -> bool {
    media_type == oci::OCI_INDEX || media_type == oci::DOCKER_LIST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_files_round_trip_and_refuse_what_is_not_a_descriptor() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("web_1_0123456789ab.ref");
        let r = RefFile {
            media_type: oci::OCI_MANIFEST.into(),
            digest: format!("sha256:{}", "0".repeat(64)),
            size: 10,
        };
        r.write(&path).unwrap();
        assert_eq!(RefFile::read(&path).unwrap(), r);
        for bad in [
            "{}",
            "not json",
            r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../x","size":1}"#,
            r#"{"mediaType":"text/plain","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}"#,
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(RefFile::read(&path).is_err(), "{bad}");
        }
    }
}
