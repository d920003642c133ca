//! `load`: stream an archive into the engine, checking every digest of what streams (the
//! verifier's checks, in the same pass), and that the engine holds the image the name says.

use std::io::{self, Write};
use std::sync::Arc;

use crate::archive::Archive;
use crate::engine::{Engine, EngineError};
use crate::error::{Error, Result};
use crate::image::{self, ArchiveError, ImageError, Reading, TarIndex};
use crate::pipe::{self, Tee};
use crate::progress::Reporter;

/// Loads `archive` (either format; a ZIP streams out of the ZIP, with no temporary tar) into the
/// engine, checks that the engine holds the archive's image (see [`holds`]), and returns the
/// loaded reference and the engine's ID for it.
pub async fn load(
    engine: &Engine,
    archive: &Archive,
    reporter: Arc<dyn Reporter>,
) -> Result<Loaded> {
    let (writer, body) = pipe::from_writer();
    let source = archive.clone();
    let counter = reporter.clone();
    let reader = tokio::task::spawn_blocking(move || {
        // Progress counts what is read of the file (or of a ZIP's entry), against its size.
        image::with_tar(&source, counter.as_ref(), |tar| {
            let mut writer = writer;
            // Every byte the index reads (and hashes) goes on to the engine as it is read.
            let mut tee = Tee {
                inner: tar,
                out: &mut writer,
            };
            let indexed = TarIndex::read(&mut tee, Reading::Hashed);
            let drained = io::copy(&mut tee, &mut io::sink()).and_then(|_| writer.flush());
            let checked = match (drained, indexed) {
                (Err(e), _) => Err(Error::io(&source.path, e)),
                (Ok(()), Err(ImageError::Read { source: e, .. })) => {
                    Err(Error::io(&source.path, e))
                }
                (Ok(()), Err(e)) => Err(damaged(&source, e)),
                (Ok(()), Ok(index)) => {
                    image::verify::check(&index, &source.name.id).map_err(|e| damaged(&source, e))
                }
            };
            match checked {
                Ok(info) => writer
                    .finish()
                    .map(|()| info)
                    .map_err(|e| Error::io(&source.path, e)),
                Err(e) => {
                    // Stopping the stream before its end makes the engine give up the load.
                    writer.fail(io::Error::other(e.to_string()));
                    Err(e)
                }
            }
        })
    });
    let loaded = engine.import(body).await;
    let read = reader.await.map_err(|e| EngineError::Protocol {
        action: "loading the image".into(),
        reason: e.to_string(),
    })?;
    reporter.finish();
    // A file that could not be read explains a failed load better than the engine's answer.
    if let Err(e) = read {
        return Err(e);
    }
    let loaded = loaded?;

    let info = read?;
    let mut reference = None;
    for item in &loaded {
        let facts = engine.image(item).await?;
        let Some(facts) = facts else { continue };
        if !holds(&info, &facts) {
            return Err(Error::IdMismatch {
                path: archive.path.clone(),
                expected: archive.name.id.clone(),
                found: facts.id,
                compared: info.identities().join(", "),
            });
        }
        reference.get_or_insert_with(|| Loaded {
            reference: item.clone(),
            id: facts.id,
        });
    }
    reference
        .ok_or_else(|| EngineError::Protocol {
            action: format!("loading `{}`", archive.path.display()),
            reason: "the engine reported no loaded image".into(),
        })
        .map_err(Error::from)
}

/// What `load` loaded: the reference (a `repository:tag`, or the image ID when the archive has
/// no tag) and the ID the engine gives the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub reference: String,
    pub id: String,
}

/// Whether the engine's image `facts` is the archive's image `info`: its ID is one of the
/// archive's identities (config, manifest or index digest), or — when the engine computed an
/// ID of its own, as a containerd-store engine does for a classic archive — its layers (diff
/// IDs) and creation time are the archive's config's.
fn holds(info: &image::ImageInfo, facts: &crate::engine::ImageFacts) -> bool {
    if info.identities().contains(&facts.id.as_str()) {
        return true;
    }
    let diff_ids: Vec<&str> = info.layers.iter().map(|l| l.diff_id.as_str()).collect();
    let created = |t: Option<&str>| t.and_then(image::parse_time);
    !diff_ids.is_empty()
        && facts.layers.iter().map(String::as_str).eq(diff_ids)
        && created(facts.created.as_deref()) == created(info.created())
        && created(info.created()).is_some()
}

/// The error of an archive found damaged while it streamed into the engine.
fn damaged(archive: &Archive, source: ImageError) -> Error {
    Error::LoadedDamaged {
        archive: ArchiveError::Damaged {
            path: archive.path.clone(),
            source,
        },
    }
}
