//! `verify`: every check an archive can be put through, one outcome per archive.

use crate::error::Error;
use crate::image::{self, ArchiveError};
use crate::layout::LayoutError;
use crate::store::{Archive, LatestRule, Store};

/// What verifying one archive found.
#[derive(Debug)]
pub enum Outcome {
    /// Every check passed.
    Sound,
    /// The archive is damaged; `reason` says how.
    Damaged { reason: String },
    /// The archive could not be checked (it cannot be read, or is not an archive at all).
    Failed(Error),
}

impl Outcome {
    /// Whether every check passed.
    pub fn is_sound(&self) -> bool {
        matches!(self, Outcome::Sound)
    }
}

/// The archives `verify` checks when it is named none: every archive of a known format in the
/// store, by image, latest first.
pub fn every_archive(store: &Store) -> Vec<Archive> {
    store
        .listing(&[], LatestRule::default())
        .into_iter()
        .filter(|a| a.name.format.is_known())
        .cloned()
        .collect()
}

/// Verifies the archives one after the other, as the outcomes are asked for.
pub fn verify(archives: &[Archive]) -> impl Iterator<Item = (&Archive, Outcome)> {
    archives.iter().map(|archive| (archive, check(archive)))
}

/// Verifies one archive in full; when it is sound and `remember`, the cache beside it keeps
/// that this very file was verified (see [`crate::meta::known_verified`]).
pub(crate) fn verify_remembering(
    archive: &Archive,
    remember: bool,
) -> Result<crate::image::ImageInfo, ArchiveError> {
    let info = image::verify(archive)?;
    if remember {
        crate::meta::remember_verified(archive, &info);
    }
    Ok(info)
}

/// For a damaged blob of a `.ref` archive's layer store: every archive that uses it (all of them
/// lose their image with it).
fn blob_users(archive: &Archive, problem: &crate::image::ImageError) -> String {
    use crate::image::ImageError;
    let path = match problem {
        ImageError::BlobDigest { path, .. } => path,
        ImageError::LayerDigest { layer, .. } => layer,
        _ => return String::new(),
    };
    match path.strip_prefix("blobs/sha256/") {
        Some(hex) => users_of(archive, hex),
        None => String::new(),
    }
}

/// The archives that use the blob `hex` of the layer store `archive` (a `.ref`) uses, said as
/// the end of a message.
fn users_of(archive: &Archive, hex: &str) -> String {
    if archive.name.format != crate::name::Format::Ref {
        return String::new();
    }
    let Ok(layout) = crate::layout::Layout::of_ref(&archive.path) else {
        return String::new();
    };
    let Ok(store) = super::open_store_quietly(layout.root()) else {
        return String::new();
    };
    let users: Vec<String> = store
        .layer_stores()
        .into_iter()
        .filter(|s| s.layout == layout)
        .flat_map(|s| s.users(&format!("sha256:{hex}")))
        .map(|p| p.display().to_string())
        .collect();
    if users.is_empty() {
        return String::new();
    }
    format!(
        " (blob {} of the layer store `{}`, used by {}): restore the blob, or write those \
         versions again",
        format_args!("sha256:{hex}"),
        layout.root().display(),
        users.join(", ")
    )
}

/// Verifies one archive.
pub fn check(archive: &Archive) -> Outcome {
    match verify_remembering(archive, true) {
        Ok(_) => Outcome::Sound,
        Err(ArchiveError::Damaged { source, .. }) => Outcome::Damaged {
            reason: format!("{source}{}", blob_users(archive, &source)),
        },
        // What is wrong in the layer store is damage too (not a failure to read).
        Err(ArchiveError::Layout(
            e @ (LayoutError::MissingBlob { .. }
            | LayoutError::DamagedBlob { .. }
            | LayoutError::BadRef { .. }
            | LayoutError::TooLarge { .. }
            | LayoutError::NoLayout { .. }
            | LayoutError::NotAFolder { .. }),
        )) => {
            let users = match &e {
                LayoutError::DamagedBlob { digest, .. }
                | LayoutError::MissingBlob { digest, .. } => {
                    users_of(archive, crate::digest::hex_part(digest))
                }
                _ => String::new(),
            };
            Outcome::Damaged {
                reason: format!("{e}{users}"),
            }
        }
        Err(e) => Outcome::Failed(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn unreadable_archives_are_damaged_and_foreign_files_are_skipped() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("web_1.0_0123456789ab.docker"), b"not a tar").unwrap();
        fs::write(d.path().join("web_1.0_0123456789ab.tgz"), b"foreign").unwrap();
        let store = super::super::open_store(d.path()).unwrap();
        let archives = every_archive(&store);
        assert_eq!(archives.len(), 1, "{archives:?}");
        let outcomes: Vec<_> = verify(&archives).collect();
        assert_eq!(outcomes.len(), 1);
        assert!(!outcomes[0].1.is_sound(), "{:?}", outcomes[0].1);
    }
}
