//! `load`: stream an archive into the engine and check that it holds the image its name says.

use std::io::{self, Write};
use std::sync::Arc;

use futures_util::StreamExt;

use crate::archive::Archive;
use crate::codec;
use crate::engine::{Engine, EngineError};
use crate::error::{Error, Result};
use crate::ops::update::short_id;
use crate::pipe;
use crate::progress::{Reporter, Silent};

/// Loads `archive` (either format; a ZIP streams out of the ZIP, with no temporary tar) into the
/// engine, checks that the loaded image ID starts with the ID in the archive's name, and returns
/// the loaded reference (a `repository:tag`, or the image ID when the archive has no tag).
pub async fn load(
    engine: &Engine,
    archive: &Archive,
    reporter: Arc<dyn Reporter>,
) -> Result<String> {
    let (writer, body) = pipe::from_writer();
    let source = archive.clone();
    let reader = tokio::task::spawn_blocking(move || {
        codec::with_tar_reader(&source, &Silent, |tar| {
            let mut writer = writer;
            match io::copy(tar, &mut writer).and_then(|_| writer.flush()) {
                Ok(()) => writer.finish().map_err(|e| Error::io(&source.path, e)),
                Err(e) => {
                    let message = e.to_string();
                    writer.fail(e);
                    Err(Error::io(&source.path, io::Error::other(message)))
                }
            }
        })
    });
    reporter.start(Some(archive.size));
    let counter = reporter.clone();
    let body = body.inspect(move |chunk| {
        if let Ok(chunk) = chunk {
            counter.advance(chunk.len() as u64);
        }
    });
    let loaded = engine.import(body).await;
    let read = reader.await.map_err(|e| EngineError::Protocol {
        action: "loading the image".into(),
        reason: e.to_string(),
    })?;
    reporter.finish();
    // A file that could not be read explains a failed load better than the engine's answer.
    read?;
    let loaded = loaded?;

    let mut reference = None;
    for item in &loaded {
        let id = if item.starts_with("sha256:") {
            item.clone()
        } else {
            engine.image_id(item).await?.unwrap_or_default()
        };
        let found = short_id(&id).unwrap_or(id);
        if found != archive.name.id {
            return Err(Error::IdMismatch {
                path: archive.path.clone(),
                expected: archive.name.id.clone(),
                found,
            });
        }
        reference.get_or_insert_with(|| item.clone());
    }
    reference
        .ok_or_else(|| EngineError::Protocol {
            action: format!("loading `{}`", archive.path.display()),
            reason: "the engine reported no loaded image".into(),
        })
        .map_err(Error::from)
}
