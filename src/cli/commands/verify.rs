//! `verify`: check archives fully.

use clap::Args;
use toolbox::ops::verify::{self, Outcome};

use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};
use crate::cli::{output, printer};

/// `verify [ARCHIVE|IMAGE[:VERSION]...]`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Archive files, or IMAGE[:VERSION] (its latest archive); all archives when none
    #[arg(value_name = "ARCHIVE|IMAGE[:VERSION]")]
    targets: Vec<String>,
}

/// One line per archive, `PATH: ok` or what is wrong (and `ARG: error` for an argument that
/// names no archive); exit 1 when any is bad.
pub fn run(args: &VerifyArgs, cx: &Context) -> Result<Status, Failure> {
    let mut archives = if args.targets.is_empty() {
        verify::every_archive(&cx.open()?)
    } else {
        Vec::new()
    };
    let mut bad = 0;
    for target in &args.targets {
        match cx.select(target, &[], "verify") {
            Ok(archive) => archives.push(archive),
            Err(e) => {
                printer::text(&format!("{target}: {e}\n"))?;
                bad += 1;
            }
        }
    }
    for (archive, outcome) in verify::verify(&archives) {
        bad += usize::from(!outcome.is_sound());
        let line = match outcome {
            Outcome::Sound => "ok".to_string(),
            Outcome::Damaged { reason } => reason,
            Outcome::Failed(e) => e.to_string(),
        };
        printer::text(&format!("{}: {line}\n", output::path_text(&archive.path)))?;
    }
    Ok(if bad == 0 {
        Status::Success
    } else {
        Status::Failure
    })
}
