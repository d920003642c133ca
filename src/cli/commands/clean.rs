//! `clean`: remove old archives, keeping the latest of each image.

use clap::Args;
use toolbox::ops::{
    self,
    clean::{Cleaned, Removal},
};

use crate::cli::args::Selection;
use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};
use crate::cli::output::{self, ArchiveJson};
use crate::cli::printer;

/// `clean [IMAGE...] [--keep N] [--dry-run] [--allow-dirty] [--json]`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    #[command(flatten)]
    selection: Selection,
    /// How many (version, id) pairs to keep per image
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = keep_count)]
    keep: u64,
    /// Print what would be removed, and remove nothing
    #[arg(long)]
    dry_run: bool,
}

/// Removes (or with `--dry-run`, only lists) the archives past the ones kept, and prints what
/// was removed, even when a removal failed part way.
pub fn run(args: &CleanArgs, cx: &Context) -> Result<Status, Failure> {
    let lock = if args.dry_run {
        None
    } else {
        Some(cx.lock(&cx.settings()?.artifacts_dir)?)
    };
    let store = if args.dry_run {
        cx.open_quietly()?
    } else {
        cx.open()?
    };
    let sel = &args.selection;
    let keep = usize::try_from(args.keep).unwrap_or(usize::MAX);
    let images = store.resolve_images(&sel.images)?;
    let Cleaned {
        removed: done,
        skipped,
        error,
        freed,
    } = ops::clean::clean(
        &store,
        &images,
        keep,
        sel.rule(),
        lock.as_ref().map_or(Removal::DryRun, Removal::Remove),
    );
    printer::skipped(&skipped);
    for e in &freed.errors {
        printer::warning(&format!("the layer store was not collected: {e}"));
    }
    if freed.errors.is_empty() && (freed.blobs > 0 || !store.layer_stores().is_empty()) {
        let verb = if args.dry_run { "would free" } else { "freed" };
        printer::notice(&format!(
            "{verb} {} in the layer store ({} unused blob{})",
            output::human_size(freed.bytes),
            freed.blobs,
            if freed.blobs == 1 { "" } else { "s" }
        ));
    }
    if sel.json {
        let items: Vec<ArchiveJson> = done.into_iter().map(Into::into).collect();
        printer::json(&items)?;
    } else {
        printer::paths(done.iter().map(|a| a.path.as_path()))?;
    }
    match error {
        Some(e) => Err(e.into()),
        None => Ok(Status::Success),
    }
}

/// `--keep N`: a whole number, at least 1 (keeping none would remove every archive).
fn keep_count(text: &str) -> Result<u64, BadKeep> {
    match text.parse::<u64>() {
        Ok(0) => Err(BadKeep::Zero),
        Ok(n) => Ok(n),
        Err(_) => Err(BadKeep::NotANumber(text.to_string())),
    }
}

/// A `--keep` that keeps nothing, or is no number.
#[derive(Debug, thiserror::Error)]
enum BadKeep {
    #[error("keep at least 1: --keep 0 would remove every archive of the image")]
    Zero,
    #[error("`{0}` is not a whole number (keep at least 1)")]
    NotANumber(String),
}
