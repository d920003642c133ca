//! `registry`: commands that talk to a registry alone, one module per verb.

pub mod catalog;
pub mod check;
pub mod copy;
pub mod delete;
pub mod tags;

use clap::Subcommand;

use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};

/// The registry commands.
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// List the tags of a repository (HOST[:PORT]/REPO)
    Tags(tags::TagsArgs),
    /// List the repositories of a registry
    Catalog(catalog::CatalogArgs),
    /// Delete the manifest a reference names (a tag is resolved to its digest)
    Delete(delete::DeleteArgs),
    /// Copy an image (or manifest list) to another tag, repository or registry
    Copy(copy::CopyArgs),
    /// Check that a manifest and every blob it names are in the registry (exit 1 if not)
    Check(check::CheckArgs),
}

/// Runs one registry command.
pub fn run(command: &RegistryCommand, cx: &Context) -> Result<Status, Failure> {
    match command {
        RegistryCommand::Tags(args) => tags::run(args, cx),
        RegistryCommand::Catalog(args) => catalog::run(args, cx),
        RegistryCommand::Delete(args) => delete::run(args, cx),
        RegistryCommand::Copy(args) => copy::run(args, cx),
        RegistryCommand::Check(args) => check::run(args, cx),
    }
}
