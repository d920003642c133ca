//! The `toolbox` command: parses arguments, calls the library, renders the outcome.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
