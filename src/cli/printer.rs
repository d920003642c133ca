//! The one printer: results on stdout (text for people, JSON with `--json`); errors, warnings
//! and notices on stderr, one line each, prefixed `toolbox:`. Progress bars are drawn on stderr
//! too (see `progress`).

use std::fmt::Display;
use std::io::{self, Write};

use serde::Serialize;

/// Prints `value` as JSON when `json`, else the text `text` renders.
pub fn show<T: Serialize + ?Sized>(
    json: bool,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> io::Result<()> {
    if json {
        self::json(value)
    } else {
        self::text(&text(value))
    }
}

/// Prints `value` as pretty JSON, with a final newline.
pub fn json<T: Serialize + ?Sized>(value: &T) -> io::Result<()> {
    text(&json_text(value))
}

/// Prints text as it is; a closed pipe (`| head`) is not an error.
pub fn text(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Prints bytes as they are; a closed pipe (`| head`) is not an error.
pub fn bytes(bytes: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Prints paths one per line, for scripts (see [`crate::cli::output::path_bytes`]).
pub fn paths<'p>(paths: impl IntoIterator<Item = &'p std::path::Path>) -> io::Result<()> {
    let mut out = Vec::new();
    for path in paths {
        out.extend(crate::cli::output::path_bytes(path));
        out.push(b'\n');
    }
    bytes(&out)
}

/// Prints the lines, each followed by a newline.
pub fn lines<T: Display>(lines: impl IntoIterator<Item = T>) -> io::Result<()> {
    text(
        &lines
            .into_iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
}

/// `toolbox: error: ...` on stderr.
pub fn error(message: &dyn Display) {
    eprintln!("toolbox: error: {}", one_line(message));
}

/// `toolbox: warning: ...` on stderr.
pub fn warning(message: &dyn Display) {
    eprintln!("toolbox: warning: {}", one_line(message));
}

/// One warning line per broken archive the quick check skipped, naming it and the check.
pub fn skipped(skipped: &[toolbox::store::Skipped<'_>]) {
    for s in skipped {
        warning(&format_args!(
            "skipping `{}`, which is broken: {}",
            s.archive.path.display(),
            s.broken
        ));
    }
}

/// `toolbox: ...` on stderr: what the run is doing besides its work.
pub fn notice(message: &dyn Display) {
    eprintln!("toolbox: {}", one_line(message));
}

/// A message as it is printed: whatever it quotes from an archive or a file name (an escape
/// sequence, a carriage return) is shown escaped, and every line after the first is indented
/// (a build's last lines of output), so that nothing in it can pass for a line of its own.
fn one_line(message: &dyn Display) -> String {
    message
        .to_string()
        .split('\n')
        .enumerate()
        .map(|(i, line)| {
            let line = crate::cli::output::printable(line);
            if i == 0 || line.starts_with(' ') {
                line.into_owned()
            } else {
                format!("  {line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// JSON, pretty-printed, with a final newline.
fn json_text<T: Serialize + ?Sized>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("\"{e}\""));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_pretty_with_a_final_newline() {
        assert_eq!(json_text(&["a", "b"]), "[\n  \"a\",\n  \"b\"\n]\n");
    }
}
