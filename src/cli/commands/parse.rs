//! `parse`: the parts of archive names.

use clap::Args;
use toolbox::ArchiveName;

use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};
use crate::cli::output::{self, NameJson, Table};
use crate::cli::printer;

/// `parse NAME... [--json]`.
#[derive(Debug, Args)]
pub struct ParseArgs {
    #[arg(value_name = "NAME", required = true)]
    names: Vec<String>,
    /// Print JSON on stdout
    #[arg(long)]
    json: bool,
}

/// Prints the parts of each name; when any is not an archive name, says so for each and prints
/// nothing else.
pub fn run(args: &ParseArgs, _: &Context) -> Result<Status, Failure> {
    let mut parsed = Vec::new();
    let mut failed = false;
    for name in &args.names {
        // A path is accepted: its file name is what is parsed.
        let file_name = name.rsplit('/').next().unwrap_or(name);
        match ArchiveName::parse_strict(file_name) {
            Ok(n) => parsed.push((name, n)),
            Err(e) => {
                printer::error(&e);
                failed = true;
            }
        }
    }
    if failed {
        return Ok(Status::Failure);
    }
    if args.json {
        let items: Vec<NameJson> = parsed.iter().map(|(_, n)| n.into()).collect();
        printer::json(&items)?;
    } else {
        let mut table = Table::new(vec![
            "NAME", "IMAGE", "VERSION", "IMAGE ID", "FORMAT", "DIRTY",
        ]);
        for (name, n) in &parsed {
            table.row(vec![
                name.to_string(),
                n.image.clone(),
                output::version_cell(&n.version),
                n.id.clone(),
                n.format.to_string(),
                output::yes_no(n.is_dirty()).into(),
            ]);
        }
        printer::text(&table.render())?;
    }
    Ok(Status::Success)
}
