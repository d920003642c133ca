//! What can be wrong with an image archive's contents.

use std::io;
use std::path::PathBuf;

use crate::codec::CodecError;
use crate::io_error::IoError;

/// Why an archive's `docker save` tar is not a readable image; the caller names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("not a tar: {0}")]
    NotATar(#[source] io::Error),

    #[error("the tar is damaged: {0}")]
    Damaged(#[source] io::Error),

    #[error("reading `{path}`: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },

    #[error("the tar holds a path that escapes with `..`: `{0}`")]
    EscapingPath(String),

    #[error("the tar holds an absolute path `{0}`")]
    AbsolutePath(String),

    #[error("the link `{0}` has no target")]
    LinkWithoutTarget(String),

    #[error("no manifest.json and no index.json: this is not a `docker save` archive")]
    NotAnImage,

    #[error("manifest.json is not valid: {0}")]
    BadManifest(#[source] serde_json::Error),

    #[error("`{path}`: not a manifest: {source}")]
    BadOciDocument {
        path: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("the config `{path}` is not valid: {source}")]
    BadConfig {
        path: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("`{0}` is missing")]
    MissingDocument(String),

    #[error("`{path}` is {size} bytes, more than a manifest or index may be (4 MiB): refused")]
    DocumentTooLarge { path: String, size: u64 },

    #[error("manifest.json lists no image")]
    NoImage,

    #[error("the OCI index lists no manifest")]
    EmptyIndex,

    #[error("the OCI index nests too deeply")]
    TooDeep,

    #[error("the OCI indexes list more than {0} descriptors in all: refused")]
    TooManyDescriptors(usize),

    #[error("the blob `{path}` is {found} bytes, its descriptor says {declared}")]
    BlobSize {
        path: String,
        declared: u64,
        found: u64,
    },

    #[error(
        "the archive's JSON documents are more than {limit} bytes in all (no image has that \
         many): refused"
    )]
    TooMuchJson { limit: u64 },

    #[error("the config `{0}` named by the manifest is missing")]
    MissingConfig(String),

    #[error("the config `{path}` is {size} bytes, too large for an image config")]
    ConfigTooLarge { path: String, size: u64 },

    #[error("the layer `{0}` named by manifest.json is missing")]
    MissingLayer(String),

    #[error("the layer `{0}` is missing")]
    LayerMissing(String),

    #[error("the manifest lists {layers} layers, the config {diff_ids} diff_ids")]
    LayerCount { layers: usize, diff_ids: usize },

    #[error("the layer `{layer}` has digest {found}, the config says {expected}")]
    LayerDigest {
        layer: String,
        found: String,
        expected: String,
    },

    #[error("bytes that are not zero follow the end of the tar (at offset {offset})")]
    AfterTheEnd { offset: u64 },

    #[error("the tar has no end-of-archive blocks (1,024 zero bytes): truncated")]
    NoEnd,

    #[error("the tar is {size} bytes, not a whole number of 512-byte blocks")]
    NotWholeBlocks { size: u64 },

    #[error("the layer `{layer}` holds what no engine applies: {problem}")]
    LayerRefused { layer: String, problem: String },

    #[error("the blob `{path}` has digest {found}")]
    BlobDigest { path: String, found: String },

    #[error(
        "the file name says {name_id}, but the image is config {id}{others}: none of its \
         identities begins with it"
    )]
    IdMismatch {
        id: String,
        /// `, manifest sha256:…` for each manifest or index that leads to the image.
        others: String,
        name_id: String,
    },
}

/// Why an archive's image could not be read, verified or extracted.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("`{}` is damaged: {source}", path.display())]
    Damaged {
        path: PathBuf,
        #[source]
        source: ImageError,
    },

    #[error(
        "`{}`: {}{refusal}",
        path.display(),
        layer.as_ref().map(|(n, diff_id)| format!("layer {n} ({diff_id}): ")).unwrap_or_default()
    )]
    Refused {
        path: PathBuf,
        /// The layer (its number from 1, and its diff_id) that holds the refused entry.
        layer: Option<(usize, String)>,
        #[source]
        refusal: Refusal,
    },

    #[error(
        "`{}` is not empty: extract writes into an empty or missing directory",
        path.display()
    )]
    NotEmpty { path: PathBuf },

    #[error("`{path}` is not in the image of `{}`", archive.display())]
    NotInImage { path: String, archive: PathBuf },

    #[error(transparent)]
    Codec(#[from] CodecError),

    #[error(transparent)]
    Layout(#[from] crate::layout::LayoutError),

    #[error(transparent)]
    Io(#[from] IoError),
}

/// Why `extract` refuses an entry of a layer (or the `--path` asked for): it would write outside
/// the directory, or it cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the layer is damaged: {0}")]
    Damaged(#[source] io::Error),

    #[error("the path `{0}` climbs out of the root with `..`: refused")]
    Climbs(String),

    #[error("`{0}` has no target")]
    NoTarget(String),

    #[error("`{0}` holds a NUL byte")]
    Nul(String),

    #[error("the whiteout `{0}` would remove a folder above it: refused")]
    WhiteoutAbove(String),

    #[error("the hard link `{link}` leads to `{target}`, which is not a file of the image")]
    LinkOutside { link: String, target: String },

    #[error("a path of {0} bytes is longer than a path may be (4,095 bytes): refused")]
    TooLong(usize),

    #[error("`/{0}` goes through too many symbolic links (a loop, or a link to itself): refused")]
    LinkLoop(String),
}
