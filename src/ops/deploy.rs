//! The deploy configuration: where each image's latest archive can be fetched, and its tag.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::name::Format;
use crate::store::{LatestRule, Skipped, Store};
use crate::version;

/// The deploy configuration of the latest archives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deployment {
    pub images: BTreeMap<String, DeployedImage>,
}

/// One image of a [`Deployment`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployedImage {
    /// The base URL and the archive's file name, joined with exactly one `/`.
    pub url: String,
    pub version: String,
    pub id: String,
    pub format: Format,
    /// `<image>:<docker tag of the version>`.
    pub tag: String,
}

/// Builds the deploy configuration of the latest archive of each of `images` (of every image
/// in `store` when empty) that passes the quick check; also returns the broken archives
/// skipped on the way.
pub fn deployment<'a>(
    store: &'a Store,
    images: &[String],
    base_url: &str,
    rule: LatestRule,
) -> Result<(Deployment, Vec<Skipped<'a>>)> {
    check_base_url(base_url)?;
    let base = base_url.trim_end_matches('/');
    let mut deployed = BTreeMap::new();
    let latest = store.latest_of(images, rule)?;
    for (image, archive) in latest.chosen {
        let name = &archive.name;
        let tag = version::docker_tag(&name.version)?;
        // Where the archive is below the artifacts directory, as the server serves it.
        let rel = archive
            .path
            .strip_prefix(store.dir())
            .ok()
            .and_then(|p| p.to_str())
            .filter(|p| !p.is_empty())
            .map_or_else(
                || name.file_name(),
                |p| p.replace(std::path::MAIN_SEPARATOR, "/"),
            );
        deployed.insert(
            image.clone(),
            DeployedImage {
                url: format!("{base}/{}", url_path(&rel)),
                version: name.version.clone(),
                id: name.id.clone(),
                format: name.format.clone(),
                tag: format!("{image}:{tag}"),
            },
        );
    }
    Ok((Deployment { images: deployed }, latest.skipped))
}

/// Checks that `base_url` is an `http://` or `https://` URL with a host, as `pull` takes.
pub fn check_base_url(base_url: &str) -> Result<()> {
    let bad = |reason: &str| Error::BadUrl {
        url: base_url.to_string(),
        reason: reason.to_string(),
    };
    if base_url.trim().is_empty() {
        return Err(bad("it is empty"));
    }
    let url = reqwest::Url::parse(base_url).map_err(|e| {
        bad(&format!(
            "{e}; give the scheme and host, as in https://{}",
            base_url.trim_start_matches('/')
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("only http:// and https:// URLs can be pulled from"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "it has a query or a fragment, which a file's URL cannot follow",
        ));
    }
    Ok(())
}

/// A relative path as a URL's path: each segment percent-encoded where a URL needs it.
fn url_path(rel: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'%')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'`')
        .add(b'{')
        .add(b'}');
    rel.split('/')
        .map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn urls_join_with_one_slash_and_tags_replace_plus() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("web_1.2.3+b7_0123456789ab.zip"), b"").unwrap();
        let store = Store::open(d.path(), std::sync::Arc::new(crate::store::NamesOnly)).unwrap();
        for base in [
            "https://host/path",
            "https://host/path/",
            "https://host/path//",
        ] {
            let (dep, _) = deployment(&store, &[], base, LatestRule::default()).unwrap();
            let web = &dep.images["web"];
            assert_eq!(web.url, "https://host/path/web_1.2.3+b7_0123456789ab.zip");
            assert_eq!(web.tag, "web:1.2.3-b7");
        }
        assert!(deployment(&store, &[], "", LatestRule::default()).is_err());
        for bad in ["cdn.example/x", "ftp://h/x", "https://h/x?a=1"] {
            let err = deployment(&store, &[], bad, LatestRule::default()).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn an_untaggable_version_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("web_.1_0123456789ab.zip"), b"").unwrap();
        let store = Store::open(d.path(), std::sync::Arc::new(crate::store::NamesOnly)).unwrap();
        let err = deployment(&store, &[], "https://h", LatestRule::default()).unwrap_err();
        assert!(err.to_string().contains("`.1`"), "{err}");
    }
}
