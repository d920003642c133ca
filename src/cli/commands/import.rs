//! `import`: the versions of a layout tar (`export`'s) into the layer store as `.ref` archives.

use std::path::PathBuf;

use clap::Args;
use toolbox::ops::import;

use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};
use crate::cli::{output, printer};

/// `import FILE [--json]`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A layout tar that `toolbox export` wrote (.tar or .tar.zst)
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Print JSON on stdout
    #[arg(long)]
    json: bool,
}

/// Imports the file under the artifacts directory's lock and prints each `.ref` archive.
pub fn run(args: &ImportArgs, cx: &Context) -> Result<Status, Failure> {
    let settings = cx.settings()?;
    let lock = cx.lock_for_writing(&settings.artifacts_dir)?;
    let done = import::import(&lock, &args.file)?;
    let archives: Vec<serde_json::Value> = done
        .archives
        .iter()
        .map(|a| {
            serde_json::json!({
                "path": output::path_json(&a.path),
                "image": a.name.image,
                "version": a.name.version,
                "id": a.name.id,
                "written": a.written,
            })
        })
        .collect();
    let json = serde_json::json!({
        "archives": archives,
        "blobs": done.blobs,
        "bytes": done.bytes,
        "reused": done.reused,
        "base": done.base,
    });
    printer::show(args.json, &json, |_| {
        let mut text = String::new();
        for a in &done.archives {
            text.push_str(&format!(
                "{}: {}\n",
                output::path_text(&a.path),
                output::written(a.written)
            ));
        }
        text
    })?;
    Ok(Status::Success)
}
