//! Progress bars on stderr, only when stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use toolbox::progress::{Reporter, Silent};

/// A byte-counting bar with a rate, drawn on stderr.
struct Bar {
    bar: ProgressBar,
}

impl Reporter for Bar {
    fn start(&self, total: Option<u64>) {
        if let Some(total) = total {
            self.bar.set_length(total);
        }
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A reporter for work described by `message`: a bar on a terminal, nothing otherwise.
pub fn reporter(message: &str) -> Box<dyn Reporter> {
    if !std::io::stderr().is_terminal() {
        return Box::new(Silent);
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message.to_string());
    Box::new(Bar { bar })
}
