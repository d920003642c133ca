//! `verify`: check archives fully.

use clap::Args;
use serde::Serialize;
use toolbox::ops::verify::{self, Outcome};

use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};
use crate::cli::{output, printer};

/// `verify [ARCHIVE|IMAGE[:VERSION]...] [--json]`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Archive files, or IMAGE[:VERSION] (its latest archive); all archives when none
    #[arg(value_name = "ARCHIVE|IMAGE[:VERSION]")]
    targets: Vec<String>,
    /// Print a JSON array on stdout: {"path","ok","problem"} per archive (problem is null when
    /// ok)
    #[arg(long)]
    json: bool,
}

/// One archive's verdict, as `verify --json` shows it.
#[derive(Serialize)]
struct VerdictJson {
    /// The archive's path (or, for an argument that names no archive, the argument).
    path: String,
    ok: bool,
    problem: Option<String>,
}

/// One line per archive, `PATH: ok` or what is wrong (and `ARG: error` for an argument that
/// names no archive); exit 1 when any is bad.
pub fn run(args: &VerifyArgs, cx: &Context) -> Result<Status, Failure> {
    let mut archives = if args.targets.is_empty() {
        verify::every_archive(&cx.open()?)
    } else {
        Vec::new()
    };
    let mut verdicts = Vec::new();
    for target in &args.targets {
        match cx.select(target, &[], "verify") {
            Ok(archive) => archives.push(archive),
            Err(e) => verdicts.push(VerdictJson {
                path: target.clone(),
                ok: false,
                problem: Some(e.to_string()),
            }),
        }
    }
    if !args.json {
        for v in &verdicts {
            printer::text(&format!(
                "{}: {}\n",
                v.path,
                v.problem.as_deref().unwrap_or("")
            ))?;
        }
    }
    for (archive, outcome) in verify::verify(&archives) {
        let problem = match outcome {
            Outcome::Sound => None,
            Outcome::Damaged { reason } => Some(reason),
            Outcome::Failed(e) => Some(e.to_string()),
        }
        .map(|p| without_path(&p, &archive.path));
        let path = output::path_text(&archive.path);
        if !args.json {
            let line = problem.as_deref().unwrap_or("ok");
            printer::text(&format!("{path}: {line}\n"))?;
        }
        verdicts.push(VerdictJson {
            path,
            ok: problem.is_none(),
            problem,
        });
    }
    if args.json {
        printer::json(&verdicts)?;
    }
    let bad = verdicts.iter().filter(|v| !v.ok).count();
    Ok(if bad == 0 {
        Status::Success
    } else {
        Status::Failure
    })
}

/// `problem` without the archive's path at its start: the line (or the JSON row) names the path
/// already, and a path is printed once.
fn without_path(problem: &str, path: &std::path::Path) -> String {
    let p = path.display();
    [
        format!("`{p}` is "),
        format!("`{p}`: "),
        format!("`{p}` "),
        format!("{p}: "),
    ]
    .iter()
    .find_map(|prefix| problem.strip_prefix(prefix.as_str()))
    .unwrap_or(problem)
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_said_once() {
        let p = std::path::Path::new("./a/web_1_0123456789ab.zip");
        assert_eq!(
            without_path(
                "`./a/web_1_0123456789ab.zip` is not a valid ZIP archive: x",
                p
            ),
            "not a valid ZIP archive: x"
        );
        assert_eq!(
            without_path("./a/web_1_0123456789ab.zip: the zstd data is damaged", p),
            "the zstd data is damaged"
        );
        assert_eq!(without_path("the tar is damaged", p), "the tar is damaged");
    }
}
