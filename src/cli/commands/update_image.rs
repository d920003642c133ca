//! `update-image`: save the engine's image into the artifacts directory when its ID changed.

use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use serde::Serialize;
use toolbox::Format;
use toolbox::config::LayerCompressionName;
use toolbox::ops::update::{self, Clean, UpdateOutcome, UpdateRequest};

use crate::cli::args::{CompressionArgs, PullArgs};
use crate::cli::context::{self, Context};
use crate::cli::exit::{Failure, Status};
use crate::cli::{output, printer};

/// `update-image IMAGE [--version V] [--clean] [--compress [--format F] [--level N]]
/// [--store [--layer-compression C]] [--pull POLICY] [--repository REPO] [--json]`.
#[derive(Debug, Args)]
pub struct UpdateImageArgs {
    /// The image name used in archive names
    image: String,
    /// The version, which gives the tag
    #[arg(long, value_name = "V", default_value = "latest")]
    version: String,
    /// Afterwards, remove what the archive supersedes: the image's archives that rank below it
    /// by the latest rule (a release that ranks above a dirty build stays)
    #[arg(long, conflicts_with = "clean_all")]
    clean: bool,
    /// Afterwards, remove every other archive of the image
    #[arg(long)]
    clean_all: bool,
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
    /// Write the version into the layer store (an OCI image layout in the artifacts directory,
    /// each layer once) as a small .ref archive [default: the config file's store]
    #[arg(long, conflicts_with = "compress")]
    store: bool,
    /// How the layer store compresses layers the engine gives uncompressed: gzip (read by every
    /// engine and by skopeo) or zstd (smaller and faster; Docker 20.10 cannot pull or load zstd
    /// layers, and Debian 12's skopeo cannot copy them into a Docker archive) [default: the
    /// config file's layer_compression, else gzip]
    #[arg(long, value_name = "C", value_parser = PossibleValuesParser::new(LayerCompressionName::NAMES).map(|s| s.parse::<LayerCompressionName>().unwrap_or_default()))]
    layer_compression: Option<LayerCompressionName>,
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
    kept: Vec<KeptJson>,
}

/// An archive `--clean` kept, and why.
#[derive(Serialize)]
struct KeptJson {
    path: String,
    reason: &'static str,
}

/// Saves the image under the artifacts directory's lock and says what was written and removed.
pub fn run(args: &UpdateImageArgs, cx: &Context) -> Result<Status, Failure> {
    let settings = cx.settings()?;
    let compression = args.compression.resolve(&settings)?;
    let repository = args
        .repository
        .clone()
        .or(settings.image(&args.image).repository);
    // An image, version or repository that cannot give a reference is wrong usage.
    update::reference(&args.image, repository.as_deref(), &args.version).map_err(Failure::usage)?;
    let request = UpdateRequest {
        image: args.image.clone(),
        version: args.version.clone(),
        repository,
        compress: args.compress.then_some(compression),
        clean: if args.clean_all {
            Clean::All
        } else if args.clean {
            Clean::Superseded
        } else {
            Clean::No
        },
        force: args.force,
        pull: args.pull.pull,
        store: (args.store || (!args.compress && settings.store_for(&args.image))).then(|| {
            args.layer_compression
                .or(settings.layer_compression)
                .unwrap_or_default()
                .compression()
        }),
    };
    let reporter = cx.reporter(&format!("saving {}:{}", args.image, args.version));
    let outcome = context::runtime()?.block_on(async {
        // The engine first: nothing is created or locked for a run that cannot save.
        let engine = cx.connect(&settings).await?;
        let lock = cx.lock_for_writing(&settings.artifacts_dir)?;
        Ok::<_, Failure>(update::update_image(&engine, &lock, &request, reporter).await?)
    })?;
    printer::show(args.json, &json(&outcome), |_| text(&outcome))?;
    Ok(Status::Success)
}

fn json(outcome: &UpdateOutcome) -> UpdateJson<'_> {
    UpdateJson {
        path: output::path_json(&outcome.path),
        image: &outcome.name.image,
        version: &outcome.name.version,
        id: &outcome.name.id,
        format: &outcome.name.format,
        written: outcome.written,
        removed: outcome
            .removed
            .iter()
            .map(|p| output::path_json(p))
            .collect(),
        kept: outcome
            .kept
            .iter()
            .map(|(p, reason)| KeptJson {
                path: output::path_json(p),
                reason,
            })
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
    for (path, reason) in &outcome.kept {
        text.push_str(&format!("kept {} ({reason})\n", output::path_text(path)));
    }
    text
}
