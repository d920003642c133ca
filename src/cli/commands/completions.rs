//! `completions`: the shell completion script of toolbox, on stdout.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;
use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};

/// `completions bash|zsh|fish|powershell`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, powershell or elvish
    #[arg(value_name = "SHELL")]
    shell: Shell,
}

/// Writes the completion script for the shell (for bash: `toolbox completions bash >
/// /etc/bash_completion.d/toolbox`, or `source <(toolbox completions bash)`).
pub fn run(args: &CompletionsArgs, _: &Context) -> Result<Status, Failure> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "toolbox", &mut out);
    crate::cli::printer::text(&String::from_utf8_lossy(&out))?;
    Ok(Status::Success)
}
