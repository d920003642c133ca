//! `update-image`: save the engine's image into the artifacts directory when its ID changed.

use clap::Args;
use serde::Serialize;
use toolbox::Format;
use toolbox::ops::update::{self, UpdateOutcome, UpdateRequest};

use crate::cli::args::{CompressionArgs, PullArgs};
use crate::cli::context::{self, Context};
use crate::cli::exit::{Failure, Status};
use crate::cli::{output, printer, progress};

/// `update-image IMAGE [--version V] [--clean] [--compress [--format F] [--level N]]
/// [--pull POLICY] [--repository REPO] [--json]`.
#[derive(Debug, Args)]
pub struct UpdateImageArgs {
    /// The image name used in archive names
    image: String,
    /// The version, which gives the tag
    #[arg(long, value_name = "V", default_value = "latest")]
    version: String,
    /// Remove every other archive of the image afterwards
    #[arg(long)]
    clean: bool,
    /// Write a compressed archive (turning an existing .docker of the same ID into one)
    #[arg(long)]
    compress: bool,
    #[command(flatten)]
    compression: CompressionArgs,
    #[command(flatten)]
    pull: PullArgs,
    /// The engine repository [default: the config file's images.IMAGE.repository, else IMAGE]
    #[arg(long, value_name = "REPO")]
    repository: Option<String>,
    /// Save again even when the archive is current, replacing it atomically
    #[arg(long)]
    force: bool,
    /// Print JSON on stdout
    #[arg(long)]
    json: bool,
}

/// The outcome as `update-image --json` shows it.
#[derive(Serialize)]
struct UpdateJson<'a> {
    path: String,
    image: &'a str,
    version: &'a str,
    id: &'a str,
    format: &'a Format,
    written: bool,
    removed: Vec<String>,
}

/// Saves the image under the artifacts directory's lock and says what was written and removed.
pub fn run(args: &UpdateImageArgs, cx: &Context) -> Result<Status, Failure> {
    let settings = cx.settings()?;
    let compression = args.compression.resolve(&settings)?;
    let request = UpdateRequest {
        image: args.image.clone(),
        version: args.version.clone(),
        repository: args
            .repository
            .clone()
            .or(settings.image(&args.image).repository),
        compress: args.compress.then_some(compression),
        clean: args.clean,
        force: args.force,
        pull: args.pull.pull,
    };
    let reporter = progress::reporter(&format!("saving {}:{}", args.image, args.version));
    let lock = cx.lock_for_writing(&settings.artifacts_dir)?;
    let outcome = context::runtime()?.block_on(async {
        let engine = context::connect(&settings).await?;
        update::update_image(&engine, &lock, &request, reporter).await
    })?;
    printer::show(args.json, &json(&outcome), |_| text(&outcome))?;
    Ok(Status::Success)
}

fn json(outcome: &UpdateOutcome) -> UpdateJson<'_> {
    UpdateJson {
        path: output::path_text(&outcome.path),
        image: &outcome.name.image,
        version: &outcome.name.version,
        id: &outcome.name.id,
        format: &outcome.name.format,
        written: outcome.written,
        removed: outcome
            .removed
            .iter()
            .map(|p| output::path_text(p))
            .collect(),
    }
}

fn text(outcome: &UpdateOutcome) -> String {
    let mut text = format!(
        "{}: {}\n",
        output::path_text(&outcome.path),
        output::written(outcome.written)
    );
    for path in &outcome.removed {
        text.push_str(&format!("removed {}\n", output::path_text(path)));
    }
    text
}
