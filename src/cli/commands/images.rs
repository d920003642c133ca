//! `images`: the archives, by image, latest first.

use clap::Args;
use toolbox::{Archive, inspect};

use crate::cli::args::Selection;
use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};
use crate::cli::output::{self, ArchiveJson, Table};
use crate::cli::printer;

/// `images [IMAGE...] [--allow-dirty] [--json] [--created]`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[command(flatten)]
    selection: Selection,
    /// Show when each image was created (from its config)
    #[arg(long)]
    created: bool,
}

/// Lists the archives of the selected images as a table or JSON.
pub fn run(args: &ImagesArgs, cx: &Context) -> Result<Status, Failure> {
    let store = cx.open()?;
    let sel = &args.selection;
    let names = store.resolve_images(&sel.images)?;
    if args.created {
        let wanted: Vec<&Archive> = store
            .all()
            .iter()
            .filter(|a| a.name.format.is_known())
            .filter(|a| names.is_empty() || names.contains(&a.name.image))
            .collect();
        inspect::prime_created(&wanted);
    }
    let listing = store.listing(&names, sel.rule());
    if sel.json {
        let items: Vec<ArchiveJson> = listing
            .into_iter()
            .map(|a| ArchiveJson::new(a, args.created))
            .collect();
        printer::json(&items)?;
    } else {
        printer::text(&table(listing, args.created))?;
    }
    Ok(Status::Success)
}

fn table<'a>(archives: impl IntoIterator<Item = &'a Archive>, created: bool) -> String {
    let mut header = vec!["IMAGE", "VERSION", "IMAGE ID", "FORMAT", "SIZE"];
    if created {
        header.push("CREATED");
    }
    header.extend(["MODIFIED", "DIRTY"]);
    let mut table = Table::new(header);
    for a in archives {
        let mut row = vec![
            a.name.image.clone(),
            output::version_cell(&a.name.version),
            a.name.id.clone(),
            a.name.format.to_string(),
            output::human_size(a.size),
        ];
        if created {
            row.push(a.created().map_or_else(|| "-".into(), output::rfc3339));
        }
        row.extend([
            output::rfc3339(a.modified),
            output::yes_no(a.is_dirty()).into(),
        ]);
        table.row(row);
    }
    table.render()
}
