//! `images`: the archives, by image, latest first.

use clap::Args;
use time::OffsetDateTime;
use toolbox::Archive;
use toolbox::codec::Broken;

use crate::cli::args::Selection;
use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};
use crate::cli::output::{self, ArchiveJson, Table};
use crate::cli::printer;

/// `images [IMAGE...] [--allow-dirty] [--json] [--created] [--check]`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[command(flatten)]
    selection: Selection,
    /// Show when each image was created (from its config)
    #[arg(long)]
    created: bool,
    /// Check the ends of each archive (quickly, as latest, config and clean do) and mark the
    /// broken ones (BROKEN in the CHECK column; "broken": true in JSON)
    #[arg(long)]
    check: bool,
}

/// Lists the archives of the selected images as a table or JSON.
pub fn run(args: &ImagesArgs, cx: &Context) -> Result<Status, Failure> {
    let store = cx.open()?;
    let sel = &args.selection;
    let names = store.resolve_images(&sel.images)?;
    let listing = store.listing(&names, sel.rule());
    // With --created, every creation time, read in one batch.
    let created = args.created.then(|| store.created_of(&listing));
    let checked: Option<Vec<Option<Broken>>> = args
        .check
        .then(|| listing.iter().map(|a| store.facts().broken(a)).collect());
    if sel.json {
        let items: Vec<ArchiveJson> = listing
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let json = ArchiveJson::new(a, created.as_ref().map(|c| c[i]));
                match &checked {
                    Some(checked) => json.checked(checked[i].as_ref()),
                    None => json,
                }
            })
            .collect();
        printer::json(&items)?;
    } else {
        printer::text(&table(&listing, created.as_deref(), checked.as_deref()))?;
    }
    Ok(Status::Success)
}

fn table(
    archives: &[&Archive],
    created: Option<&[Option<OffsetDateTime>]>,
    checked: Option<&[Option<Broken>]>,
) -> String {
    let mut header = vec!["IMAGE", "VERSION", "IMAGE ID", "FORMAT", "SIZE"];
    if created.is_some() {
        header.push("CREATED");
    }
    header.extend(["MODIFIED", "DIRTY"]);
    if checked.is_some() {
        header.push("CHECK");
    }
    let mut table = Table::new(header);
    for (i, a) in archives.iter().enumerate() {
        let mut row = vec![
            a.name.image.clone(),
            output::version_cell(&a.name.version),
            a.name.id.clone(),
            a.name.format.to_string(),
            output::human_size(a.size),
        ];
        if let Some(created) = created {
            row.push(created[i].map_or_else(|| "-".into(), output::rfc3339));
        }
        row.extend([
            output::rfc3339(a.modified),
            output::yes_no(a.is_dirty()).into(),
        ]);
        if let Some(checked) = checked {
            row.push(match &checked[i] {
                Some(_) => "BROKEN".into(),
                None if a.name.format.is_known() => "ok".into(),
                None => "-".into(),
            });
        }
        table.row(row);
    }
    table.render()
}
