//! Archive file names: `<image>_<version>_<id>.<archfmt>`, parsed and formatted exactly.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::version::VersionError;

/// A name that is not an archive name, or parts that cannot make one.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error(
        "`{name}` is not an archive name: expected <image>_<version>_<id>.<format>, \
         where <id> is 12 lower-case hex digits"
    )]
    NotAnArchiveName { name: String },

    #[error("cannot name an archive with {field} `{value}`: {reason}")]
    InvalidPart {
        field: &'static str,
        value: String,
        reason: String,
    },

    #[error(transparent)]
    Version(#[from] VersionError),
}

type Result<T> = std::result::Result<T, NameError>;
use crate::version;

/// The whole-name pattern of an archive, anchored at both ends. `image` is greedy, so it may
/// contain `_`. [`ArchiveName::parse`] implements exactly this pattern without a regex engine
/// (the tests check one against the other).
pub const PATTERN: &str =
    r"^(?P<image>.+)_(?P<version>[^_]*)_(?P<id>[0-9a-f]{12})\.(?P<archfmt>[^.]*)$";

/// The number of hex digits of an image ID that an archive name carries.
pub const ID_LEN: usize = 12;

/// What an archive file holds, from the extension of its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// An uncompressed `docker save` tar.
    Docker,
    /// A ZIP whose single entry is the `docker save` tar.
    Zip,
    /// The `docker save` tar compressed with zstd.
    Zst,
    /// A reference archive: the descriptor of the image's manifest (or index), whose blobs are
    /// in the layer store (the OCI image layout at or above the file's folder).
    Ref,
    /// Any other extension: listed, but never read, deleted or resolved.
    Foreign(String),
}

impl Format {
    /// The format named by an archive name's extension.
    pub fn from_extension(ext: &str) -> Format {
        match ext {
            "docker" => Format::Docker,
            "zip" => Format::Zip,
            "zst" => Format::Zst,
            "ref" => Format::Ref,
            other => Format::Foreign(other.to_string()),
        }
    }

    /// The extension, as it appears in a file name.
    pub fn extension(&self) -> &str {
        match self {
            Format::Docker => "docker",
            Format::Zip => "zip",
            Format::Zst => "zst",
            Format::Ref => "ref",
            Format::Foreign(ext) => ext,
        }
    }

    /// Whether toolbox reads and manages files of this format.
    pub fn is_known(&self) -> bool {
        !matches!(self, Format::Foreign(_))
    }

    /// Whether this is a compressed form of the `docker save` tar (`zip`, `zst`).
    pub fn is_compressed(&self) -> bool {
        matches!(self, Format::Zip | Format::Zst)
    }

    /// Whether the file holds the image itself (a `docker save` tar, plain or compressed),
    /// rather than a reference into the layer store.
    pub fn is_self_contained(&self) -> bool {
        matches!(self, Format::Docker | Format::Zip | Format::Zst)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

impl Serialize for Format {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.extension())
    }
}

/// The parts of an archive's file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArchiveName {
    pub image: String,
    pub version: String,
    /// The first 12 hex digits of the image ID.
    pub id: String,
    pub format: Format,
}

impl ArchiveName {
    /// Parses a whole file name; `None` when it is not an archive name.
    pub fn parse(file_name: &str) -> Option<ArchiveName> {
        // `archfmt` has no `.`, so the `.` before it is the last one in the name.
        let (stem, archfmt) = file_name.rsplit_once('.')?;
        // `_<id>` ends the stem: 12 lower-case hex digits (all ASCII, so slicing is safe).
        let bytes = stem.as_bytes();
        let id_start = bytes.len().checked_sub(ID_LEN)?;
        let sep = id_start.checked_sub(1)?;
        if bytes[sep] != b'_'
            || !bytes[id_start..]
                .iter()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        // `version` has no `_`, so the `_` before it is the last one; `image` is the rest,
        // at least one character, none a line feed (what `.` matches).
        let (image, version) = stem[..sep].rsplit_once('_')?;
        if image.is_empty() || image.contains('\n') {
            return None;
        }
        Some(ArchiveName {
            image: image.to_string(),
            version: version.to_string(),
            id: stem[id_start..].to_string(),
            format: Format::from_extension(archfmt),
        })
    }

    /// Like [`ArchiveName::parse`], with an error naming the input.
    pub fn parse_strict(file_name: &str) -> Result<ArchiveName> {
        Self::parse(file_name).ok_or_else(|| NameError::NotAnArchiveName {
            name: file_name.to_string(),
        })
    }

    /// Builds a name from its parts, refusing any that would not parse back to the same parts.
    pub fn new(image: &str, version: &str, id: &str, format: Format) -> Result<ArchiveName> {
        let name = ArchiveName {
            image: image.to_string(),
            version: version.to_string(),
            id: id.to_string(),
            format,
        };
        name.check()?;
        Ok(name)
    }

    /// Explains which part keeps this name from parsing back identically.
    fn check(&self) -> Result<()> {
        let bad = |field: &'static str, value: &str, reason: &str| NameError::InvalidPart {
            field,
            value: value.to_string(),
            reason: reason.to_string(),
        };
        check_image(&self.image)?;
        version::validate(&self.version)?;
        if self.id.len() != ID_LEN
            || !self
                .id
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(bad(
                "id",
                &self.id,
                "an id is exactly 12 lower-case hex digits",
            ));
        }
        let ext = self.format.extension();
        if ext.contains(['.', '/', '\0']) {
            return Err(bad("format", ext, "a format has no `.`, `/` or NUL"));
        }
        if Self::parse(&self.file_name()).as_ref() != Some(self) {
            return Err(bad(
                "image",
                &self.image,
                "the name would not parse back to these parts",
            ));
        }
        Ok(())
    }

    /// The same name in another format.
    pub fn with_format(&self, format: Format) -> ArchiveName {
        ArchiveName {
            format,
            ..self.clone()
        }
    }

    /// The file name, `<image>_<version>_<id>.<archfmt>`.
    pub fn file_name(&self) -> String {
        self.to_string()
    }

    /// Whether the version is a dirty build.
    pub fn is_dirty(&self) -> bool {
        version::is_dirty(&self.version)
    }
}

impl fmt::Display for ArchiveName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}_{}_{}.{}",
            self.image, self.version, self.id, self.format
        )
    }
}

/// Checks that `image` can stand as the image part of an archive name.
pub fn check_image(image: &str) -> Result<()> {
    let reason = if image.is_empty() {
        "an image name is not empty"
    } else if image.contains('/') {
        "an image name has no `/`: it names the archives, not the engine's repository; pass the \
         repository with --repository REPO (or `images.IMAGE.repository` in the config file)"
    } else if image.contains('\0') || image.contains('\n') {
        "an image name has no `/`, line feed or NUL"
    } else {
        return Ok(());
    };
    Err(NameError::InvalidPart {
        field: "image",
        value: image.to_string(),
        reason: reason.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(name: &str) -> Option<(String, String, String, String)> {
        ArchiveName::parse(name).map(|n| (n.image, n.version, n.id, n.format.to_string()))
    }

    fn p(i: &str, v: &str, id: &str, f: &str) -> Option<(String, String, String, String)> {
        Some((i.into(), v.into(), id.into(), f.into()))
    }

    #[test]
    fn parses_plain_names() {
        assert_eq!(
            parts("web_1.0_0123456789ab.zip"),
            p("web", "1.0", "0123456789ab", "zip")
        );
        assert_eq!(
            parts("web_1.0_0123456789ab.docker"),
            p("web", "1.0", "0123456789ab", "docker")
        );
    }

    #[test]
    fn image_is_greedy_and_may_hold_underscores() {
        assert_eq!(
            parts("my_app_1.2_0123456789ab.zip"),
            p("my_app", "1.2", "0123456789ab", "zip")
        );
        assert_eq!(
            parts("a_b_c_d_0123456789ab.zip"),
            p("a_b_c", "d", "0123456789ab", "zip")
        );
        assert_eq!(
            parts("a_b__0123456789ab.zip"),
            p("a_b", "", "0123456789ab", "zip")
        );
    }

    #[test]
    fn version_may_be_empty_and_format_foreign_or_empty() {
        assert_eq!(
            parts("web__0123456789ab.docker"),
            p("web", "", "0123456789ab", "docker")
        );
        assert_eq!(
            parts("web_1_0123456789ab.bak"),
            p("web", "1", "0123456789ab", "bak")
        );
        assert_eq!(
            parts("web_1_0123456789ab."),
            p("web", "1", "0123456789ab", "")
        );
        let n = ArchiveName::parse("web_1_0123456789ab.bak").unwrap();
        assert_eq!(n.format, Format::Foreign("bak".into()));
        assert!(!n.format.is_known());
    }

    #[test]
    fn rejects_non_archive_names() {
        for name in [
            "web_1.0_0123456789ab.docker.bak",
            "web_1.0_0123456789ab.tar.gz",
            "web_1.0_0123456789AB.zip",
            "web_1.0_0123456789a.zip",
            "web_1.0_0123456789abc.zip",
            "web_0123456789ab.zip",
            "_1.0_0123456789ab.zip",
            "web_1.0_0123456789ab",
            "web-1.0-0123456789ab.zip",
            "web\n_1.0_0123456789ab.zip",
            "",
        ] {
            assert_eq!(parts(name), None, "{name:?} must not parse");
        }
    }

    /// The parser agrees with the pattern on many generated names built from the characters
    /// that matter (separators, hex digits, upper case, line feeds, multi-byte characters).
    #[test]
    fn parser_agrees_with_the_pattern() {
        let re = regex::Regex::new(PATTERN).unwrap();
        let alphabet: Vec<char> = "a_.0f_9.b_Az\né_".chars().collect();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut matched = 0;
        for _ in 0..200_000 {
            let len = (next() % 8) as usize;
            let mut name: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            // Often end like an archive, so that the interesting paths are taken.
            if next() % 4 != 0 {
                let hex: String = (0..12)
                    .map(|_| "0123456789abcdef".as_bytes()[(next() % 16) as usize] as char)
                    .collect();
                let ext: String = (0..(next() % 4))
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect();
                name = format!("{name}_{hex}.{ext}");
            }
            let by_regex = re.captures(&name).map(|c| {
                (
                    c["image"].to_string(),
                    c["version"].to_string(),
                    c["id"].to_string(),
                    c["archfmt"].to_string(),
                )
            });
            assert_eq!(parts(&name), by_regex, "{name:?}");
            matched += usize::from(by_regex.is_some());
        }
        assert!(
            matched > 10_000,
            "the generator reaches matching names ({matched})"
        );
    }

    #[test]
    fn formatting_is_the_inverse_of_parsing() {
        for name in [
            "web_1.0_0123456789ab.zip",
            "my_app_1.2_0123456789ab.docker",
            "a_b__0123456789ab.zip",
            "web_1_0123456789ab.bak",
            "x_latest_ffffffffffff.docker",
            // Found by the fuzz target: a version may hold a line feed, and must round-trip.
            "é_\n_00aa00000a0a.",
        ] {
            let n = ArchiveName::parse(name).unwrap();
            assert_eq!(n.file_name(), name);
            let again = ArchiveName::new(&n.image, &n.version, &n.id, n.format.clone()).unwrap();
            assert_eq!(again, n);
        }
    }

    #[test]
    fn refuses_parts_that_would_not_parse_back() {
        let id = "0123456789ab";
        assert!(ArchiveName::new("web", "1_2", id, Format::Zip).is_err());
        assert!(ArchiveName::new("", "1", id, Format::Zip).is_err());
        assert!(ArchiveName::new("a/b", "1", id, Format::Zip).is_err());
        assert!(ArchiveName::new("web", "1", "0123456789AB", Format::Zip).is_err());
        assert!(ArchiveName::new("web", "1", "0123", Format::Zip).is_err());
        assert!(ArchiveName::new("web", "1", id, Format::Foreign("tar.gz".into())).is_err());
        assert!(ArchiveName::new("web", "1/2", id, Format::Zip).is_err());
        assert!(ArchiveName::new("my_app", "", id, Format::Docker).is_ok());
        let err = ArchiveName::new("web", "1_2", id, Format::Zip)
            .unwrap_err()
            .to_string();
        assert!(err.contains("1_2"), "{err}");
    }

    #[test]
    fn dirty_follows_the_version() {
        assert!(
            ArchiveName::parse("web_latest_0123456789ab.zip")
                .unwrap()
                .is_dirty()
        );
        assert!(
            !ArchiveName::parse("web_1.2.3_0123456789ab.zip")
                .unwrap()
                .is_dirty()
        );
    }
}
