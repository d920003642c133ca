//! Versions: dirty detection, parsing and ordering, and the docker tag of a version.

use std::cmp::Ordering;
use std::sync::LazyLock;

use regex::Regex;
use semver::{BuildMetadata, Prerelease};

/// A version that cannot name an archive or give a docker tag.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error("invalid version `{version}`: {reason}")]
    Invalid { version: String, reason: String },

    #[error(
        "version `{version}` gives the docker tag `{tag}`, which is not valid: a tag is 1 to 128 \
         letters, digits, `_`, `.` or `-`, and does not start with `.` or `-`"
    )]
    InvalidTag { version: String, tag: String },
}

type Result<T> = std::result::Result<T, VersionError>;

static DIRTY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(latest|dev|.*[.+]dirty|\d+\.\d+\.\d+\.0)$").expect("the dirty pattern is valid")
});

static TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").expect("the tag pattern is valid")
});

/// Whether a version is a dirty build: `latest`, `dev`, `….dirty`, `…+dirty`, or `a.b.c.0`.
pub fn is_dirty(version: &str) -> bool {
    DIRTY.is_match(version)
}

/// Checks that a version can stand in an archive name (it may be empty): anything the name
/// pattern's `[^_]*` reads back identically and a file name can hold.
pub fn validate(version: &str) -> Result<()> {
    if version.contains('_') {
        return Err(VersionError::Invalid {
            version: version.to_string(),
            reason: "a version has no `_`, which separates the parts of an archive name \
                     (<image>_<version>_<id>); use `-` or `.` instead"
                .to_string(),
        });
    }
    if version.contains(['/', '\0']) {
        return Err(VersionError::Invalid {
            version: version.to_string(),
            reason: "a version has no `_`, `/` or NUL".to_string(),
        });
    }
    Ok(())
}

/// The docker tag of a version: `+` becomes `-`, and the result must be a valid tag.
pub fn docker_tag(version: &str) -> Result<String> {
    let tag = version.replace('+', "-");
    if TAG.is_match(&tag) {
        Ok(tag)
    } else {
        Err(VersionError::InvalidTag {
            version: version.to_string(),
            tag,
        })
    }
}

/// A version that parses: dotted numbers with an optional leading `v`, an optional
/// `-prerelease` and optional `+build` metadata.
///
/// Versions compare numerically field by field with missing fields counting as 0
/// (`1.2` = `1.2.0`, `1.10` > `1.9`); a pre-release ranks below its release by the semver rules;
/// build metadata is ignored.
#[derive(Debug, Clone)]
pub struct Version {
    /// Release numbers without leading zeros, trailing zero fields dropped.
    release: Vec<String>,
    pre: Prerelease,
}

impl Version {
    /// Parses a version; `None` when it is not of the form above.
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.strip_prefix('v').unwrap_or(text);
        // Build metadata has no `+`, so the first `+` starts it; the release has no `-`, so the
        // first `-` before that starts the pre-release. Each part, when present, is not empty.
        let (text, build) = split_part(text, '+')?;
        let (release, pre) = split_part(text, '-')?;
        if let Some(build) = build {
            BuildMetadata::new(build).ok()?;
        }
        let pre = match pre {
            Some(pre) => Prerelease::new(pre).ok()?,
            None => Prerelease::EMPTY,
        };
        if !release
            .split('.')
            .all(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        let mut release: Vec<String> = release
            .split('.')
            .map(|field| {
                let digits = field.trim_start_matches('0');
                if digits.is_empty() { "0" } else { digits }.to_string()
            })
            .collect();
        while release.len() > 1 && release.last().is_some_and(|f| f == "0") {
            release.pop();
        }
        Some(Version { release, pre })
    }
}

/// Splits `text` at the first `sep`; `None` when the part after it is empty.
fn split_part(text: &str, sep: char) -> Option<(&str, Option<&str>)> {
    match text.split_once(sep) {
        Some((_, "")) => None,
        Some((head, tail)) => Some((head, Some(tail))),
        None => Some((text, None)),
    }
}

/// Compares two runs of decimal digits without leading zeros as numbers, whatever their length.
fn cmp_digits(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let fields = self.release.len().max(other.release.len());
        (0..fields)
            .map(|i| {
                let a = self.release.get(i).map_or("0", String::as_str);
                let b = other.release.get(i).map_or("0", String::as_str);
                cmp_digits(a, b)
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then_with(|| self.pre.cmp(&other.pre))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Version {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_versions() {
        for v in [
            "1.2.3.0",
            "1.2.3+dirty",
            "1.2.3.dirty",
            "latest",
            "dev",
            "0.0.0.0",
            "x.dirty",
            "+dirty",
        ] {
            assert!(is_dirty(v), "{v} is dirty");
        }
        for v in [
            "1.2.3.00",
            "1.2.3",
            "1.2.3-dirty",
            "Latest",
            "develop",
            "v1.2.3.0",
            "1.2.3.4",
            "",
            "dirty",
            "1.2.0",
            "1.2.3.0.0",
        ] {
            assert!(!is_dirty(v), "{v} is clean");
        }
    }

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap_or_else(|| panic!("{text} parses"))
    }

    #[test]
    fn parseable_versions() {
        for text in [
            "1",
            "1.2",
            "1.2.3",
            "1.2.3.45",
            "v2.0.0-rc.1",
            "1.2.3+dirty",
            "1.2.3.0",
            "v1",
            "1.0-rc-1+b.7",
        ] {
            assert!(Version::parse(text).is_some(), "{text} parses");
        }
        for text in [
            "latest",
            "dev",
            "",
            "v",
            "1.",
            ".1",
            "1..2",
            "1.2.3.dirty",
            "1.2-",
            "1.2+",
            "V1.2",
            "1.2-rc..1",
            "1.2-rc.01",
            "1,2",
        ] {
            assert!(Version::parse(text).is_none(), "{text} does not parse");
        }
    }

    #[test]
    fn numeric_ordering_with_missing_fields_as_zero() {
        assert_eq!(v("1.2"), v("1.2.0"));
        assert_eq!(v("1"), v("1.0.0.0"));
        assert_eq!(v("v1.2"), v("1.2"));
        assert_eq!(v("01.2"), v("1.2"));
        assert!(v("1.10") > v("1.9"));
        assert!(v("1.2.3.10") > v("1.2.3.9"));
        assert!(v("1.2.3.1") > v("1.2.3"));
        assert!(v("2") > v("1.999.999"));
        assert!(v("100000000000000000000000000001") > v("99999999999999999999999999999"));
    }

    #[test]
    fn prerelease_below_release_and_build_ignored() {
        assert!(v("2.0.0-rc.1") < v("2.0.0"));
        assert!(v("2.0.0-rc.2") > v("2.0.0-rc.1"));
        assert!(v("2.0.0-rc.10") > v("2.0.0-rc.9"));
        assert!(v("2.0.0-alpha") < v("2.0.0-alpha.1"));
        assert!(v("2.0.0-alpha.beta") > v("2.0.0-alpha.1"));
        assert!(v("2.0.0-rc.1") > v("1.9.9"));
        assert_eq!(v("1.2.3+a"), v("1.2.3+b"));
        assert_eq!(v("1.2.3+dirty"), v("1.2.3"));
    }

    #[test]
    fn docker_tags() {
        assert_eq!(docker_tag("1.2.3+dirty").unwrap(), "1.2.3-dirty");
        assert_eq!(docker_tag("latest").unwrap(), "latest");
        assert_eq!(docker_tag("_x").unwrap(), "_x");
        assert!(docker_tag("").is_err());
        assert!(docker_tag(".1").is_err());
        assert!(docker_tag("-1").is_err());
        assert!(docker_tag("+1").is_err());
        assert!(docker_tag("a b").is_err());
        assert!(docker_tag(&"a".repeat(128)).is_ok());
        assert!(docker_tag(&"a".repeat(129)).is_err());
        let err = docker_tag("1 2").unwrap_err().to_string();
        assert!(err.contains("`1 2`"), "{err}");
    }

    #[test]
    fn validation() {
        assert!(validate("").is_ok());
        assert!(validate("1.2+dirty").is_ok());
        assert!(validate("1_2").is_err());
        assert!(validate("1/2").is_err());
        assert!(validate("1\u{0}2").is_err());
        // Odd, but a name holding it parses back identically.
        assert!(validate("1\n2").is_ok());
    }
}
