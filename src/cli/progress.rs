//! Progress bars on stderr, only when stderr is a terminal.

use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use toolbox::progress::{Reporter, Silent};

/// A byte-counting bar with a rate, drawn on stderr.
struct Bar {
    bar: ProgressBar,
}

impl Reporter for Bar {
    fn start(&self, total: Option<u64>) {
        match total {
            Some(total) => self.bar.set_length(total),
            None => {
                let style = ProgressStyle::with_template(
                    "{spinner} {msg} {bytes} {binary_bytes_per_sec} {elapsed}",
                );
                if let Ok(style) = style {
                    self.bar.set_style(style);
                }
                self.bar
                    .enable_steady_tick(std::time::Duration::from_millis(200));
            }
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
pub fn reporter(message: &str) -> Arc<dyn Reporter> {
    if !std::io::stderr().is_terminal() {
        return Arc::new(Silent);
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message.to_string());
    Arc::new(Bar { bar })
}
