//! `pull URL`: an archive from a static web server that serves an artifacts directory (nginx,
//! an S3 bucket, a CDN; no registry). A `.ref` archive comes with only the blobs the local
//! layer store lacks, from the `blobs/sha256/` of the layout the URL's folder (or the nearest
//! folder above it) holds: documents first (each checked against its digest), then the layers,
//! several at a time, each checked as it streams; the `.ref` is written last, so the store never
//! holds one whose blobs are not all there. Any other archive is downloaded whole into a
//! temporary file, put through `verify`'s checks, and only then given its name.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::{StreamExt, TryStreamExt};
use reqwest::Url;

use crate::archive::Archive;
use crate::commit::AtomicFile;
use crate::error::{Error, Result};
use crate::image::ArchiveError;
use crate::io_error::IoContext;
use crate::layout::graph::{self, Kind};
use crate::layout::{DOCUMENT_LIMIT, Layout, RefFile};
use crate::lock::DirLock;
use crate::name::{ArchiveName, Format};
use crate::oci::Descriptor;
use crate::progress::Reporter;
use crate::web::{self, Web, WebError};

use super::{Downloaded, PARALLEL};

/// How many bytes of `oci-layout` are read.
const MARKER_LIMIT: u64 = 4 << 10;

/// The archive name `url` ends in.
pub fn archive_name(url: &Url) -> Result<ArchiveName> {
    let file = web::file_name(url)?;
    let parsed = ArchiveName::parse_strict(&file)?;
    // The parts must stand on their own: no `/` in the image, a valid version.
    let name = ArchiveName::new(&parsed.image, &parsed.version, &parsed.id, parsed.format)?;
    if !name.format.is_known() {
        return Err(WebError::BadUrl {
            url: url.to_string(),
            reason: format!(
                "`{file}` is not an archive toolbox reads (.ref, .docker, .zip or .zst)"
            ),
        }
        .into());
    }
    Ok(name)
}

/// Downloads the archive `url` names into the artifacts directory `lock` holds, unless an
/// archive of the same image, version and ID is there already.
pub async fn pull_url(
    lock: &DirLock,
    url: &Url,
    web: &Web,
    reporter: Arc<dyn Reporter>,
) -> Result<Downloaded> {
    let name = archive_name(url)?;
    let dir = lock.dir();
    if let Some(existing) = super::already_there(dir, &name)? {
        return Ok(Downloaded::existing(existing));
    }
    if name.format == Format::Ref {
        pull_ref(dir, url, name, web, reporter).await
    } else {
        pull_file(dir, url, name, web, reporter).await
    }
}

/// A whole archive file: downloaded beside its name, verified, then renamed.
async fn pull_file(
    dir: &Path,
    url: &Url,
    name: ArchiveName,
    web: &Web,
    reporter: Arc<dyn Reporter>,
) -> Result<Downloaded> {
    let dest = dir.join(name.file_name());
    let mut file = AtomicFile::create(&dest)?;
    reporter.start(None);
    let progress = |n: u64| reporter.advance(n);
    let downloaded = web
        .download(url, file.file_mut(), None, false, &progress)
        .await?;
    file.file_mut().sync_all().at(file.temp_path())?;
    let temp = Archive {
        name: name.clone(),
        path: file.temp_path().to_path_buf(),
        size: downloaded,
        modified: SystemTime::now(),
    };
    let checked = tokio::task::spawn_blocking(move || crate::image::verify(&temp).map(|_| ()))
        .await
        .map_err(|e| Error::io(&dest, std::io::Error::other(e)))?;
    if let Err(e) = checked {
        // The temporary file goes with `file`; the message names the URL, not the temp file.
        let reason = match e {
            ArchiveError::Damaged { source, .. } => source.to_string(),
            other => other
                .to_string()
                .replace(&file.temp_path().display().to_string(), url.as_str()),
        };
        return Err(WebError::Damaged {
            url: url.to_string(),
            reason,
        }
        .into());
    }
    let path = file.commit()?;
    reporter.finish();
    Ok(Downloaded {
        path,
        name,
        written: true,
        downloaded,
        reused: 0,
    })
}

/// The layout serving `url`'s `.ref`: the nearest folder at or above the URL's own that has
/// an `oci-layout` file.
async fn remote_layout(web: &Web, url: &Url) -> Result<Url> {
    for folder in web::folders_up(url) {
        let marker = folder
            .join("oci-layout")
            .map_err(|e| bad_url(url, &e.to_string()))?;
        if let Some(bytes) = web.small(&marker, MARKER_LIMIT).await? {
            let version = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("imageLayoutVersion").cloned());
            if version.is_some() {
                return Ok(folder);
            }
        }
    }
    Err(WebError::NoLayout {
        url: url.to_string(),
    }
    .into())
}

fn bad_url(url: &Url, reason: &str) -> Error {
    WebError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    }
    .into()
}

/// The URL of blob `digest` in the layout at `base`.
fn blob_url(base: &Url, digest: &str) -> Result<Url> {
    base.join(&format!("blobs/sha256/{}", crate::digest::hex_part(digest)))
        .map_err(|e| bad_url(base, &e.to_string()))
}

/// A `.ref` archive and the blobs the store lacks.
async fn pull_ref(
    dir: &Path,
    url: &Url,
    name: ArchiveName,
    web: &Web,
    reporter: Arc<dyn Reporter>,
) -> Result<Downloaded> {
    let layout = crate::ops::update::own_layout(dir)?;
    let bytes = web
        .small(url, crate::layout::reference::REF_LIMIT)
        .await?
        .ok_or_else(|| WebError::NotFound {
            url: url.to_string(),
        })?;
    let mut downloaded = bytes.len() as u64;
    let reference = RefFile::parse(&bytes, Path::new(url.as_str()))?;
    let root = reference.descriptor();
    let base = remote_layout(web, url).await?;

    // The documents, level by level: each walk names the ones the next needs read.
    let mut absent: HashSet<String> = HashSet::new();
    let needs = loop {
        let needs = graph::so_far(&layout, &root).map_err(|e| served_damage(e, url, &base))?;
        let wanted: Vec<&graph::Need> = needs
            .blobs
            .iter()
            .filter(|b| !b.present && b.kind != Kind::Layer)
            .filter(|b| !absent.contains(&b.descriptor.digest))
            .collect();
        if wanted.is_empty() {
            break needs;
        }
        for need in wanted {
            let d = &need.descriptor;
            let from = blob_url(&base, &d.digest)?;
            if d.size > DOCUMENT_LIMIT {
                return Err(WebError::TooLarge {
                    url: from.to_string(),
                    limit: DOCUMENT_LIMIT,
                }
                .into());
            }
            let mut bytes = Vec::new();
            match web
                .download(&from, &mut bytes, Some(d.size), true, &|_| {})
                .await
            {
                Ok(_) => {}
                Err(WebError::NotFound { .. }) if !need.required => {
                    // An index may name manifests the server never had (other platforms).
                    absent.insert(d.digest.clone());
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            check_digest(&from, d, &bytes)?;
            if need.kind == Kind::Document
                && let Err(e) = crate::oci::Document::parse(&bytes)
            {
                return Err(WebError::Damaged {
                    url: from.to_string(),
                    reason: format!("it is not a manifest or an index: {e}"),
                }
                .into());
            }
            downloaded += bytes.len() as u64;
            layout.put(&bytes)?;
        }
    };

    // The layers the store lacks, several at a time.
    let missing: Vec<Descriptor> = needs
        .blobs
        .iter()
        .filter(|b| !b.present && b.kind == Kind::Layer)
        .map(|b| b.descriptor.clone())
        .collect();
    let total: u64 = missing.iter().map(|d| d.size).sum();
    reporter.start(Some(total));
    let fetched: Vec<u64> = futures_util::stream::iter(missing.into_iter().map(|d| {
        let (layout, base, reporter) = (&layout, &base, reporter.clone());
        async move { fetch_blob(web, layout, base, &d, reporter).await }
    }))
    .buffer_unordered(PARALLEL)
    .try_collect()
    .await?;
    downloaded += fetched.iter().sum::<u64>();
    reporter.finish();

    let (dest, stored) = super::write_ref(dir, &layout, &name, &reference)?;
    let reused = stored.saturating_sub(downloaded - bytes.len() as u64);
    Ok(Downloaded {
        path: dest,
        name,
        written: true,
        downloaded,
        reused,
    })
}

/// What the walk of the documents found wrong in what the server sent, said of the server's
/// URLs (the store only holds what was checked against its digest).
fn served_damage(e: crate::layout::LayoutError, url: &Url, base: &Url) -> Error {
    use crate::layout::LayoutError;
    match e {
        LayoutError::TooLarge { reason, .. } => WebError::Damaged {
            url: url.to_string(),
            reason: format!("the image it names is too deep or too wide to read: {reason}"),
        }
        .into(),
        LayoutError::DamagedBlob {
            digest, problem, ..
        } => WebError::Damaged {
            url: blob_url(base, &digest).map_or_else(|_| url.to_string(), |u| u.to_string()),
            reason: problem,
        }
        .into(),
        other => other.into(),
    }
}

/// One blob into the layer store, checked against its digest as it streams. Returns the bytes
/// downloaded.
async fn fetch_blob(
    web: &Web,
    layout: &Layout,
    base: &Url,
    d: &Descriptor,
    reporter: Arc<dyn Reporter>,
) -> Result<u64> {
    let from = blob_url(base, &d.digest)?;
    let mut writer = layout.blob_writer()?;
    let progress = |n: u64| reporter.advance(n);
    let got = web
        .download(&from, &mut writer, Some(d.size), true, &progress)
        .await?;
    let (found, size) = writer.digest();
    if found != d.digest || size != d.size {
        return Err(WebError::DigestMismatch {
            url: from.to_string(),
            expected: d.digest.clone(),
            found,
        }
        .into());
    }
    writer.commit(Some(&d.digest))?;
    Ok(got)
}

/// Checks a document's bytes against its descriptor.
fn check_digest(url: &Url, d: &Descriptor, bytes: &[u8]) -> Result<()> {
    let found = crate::digest::sha256(bytes);
    if found != d.digest || bytes.len() as u64 != d.size {
        return Err(WebError::DigestMismatch {
            url: url.to_string(),
            expected: d.digest.clone(),
            found,
        }
        .into());
    }
    Ok(())
}
