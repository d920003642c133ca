//! Progress on stderr: a bar on a terminal, or plain lines for logs (`--progress`).

use std::io::IsTerminal;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use indicatif::{BinaryBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use toolbox::config::ProgressMode;
use toolbox::progress::{Reporter, Silent};

use crate::cli::printer;

/// Where every bar is drawn (stderr, only on a terminal), so that several at once (a build's
/// upload and its steps) share the screen instead of drawing over each other.
static SCREEN: LazyLock<MultiProgress> =
    LazyLock::new(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));

/// A new bar on the screen, without a length yet.
pub fn new_bar() -> ProgressBar {
    SCREEN.add(ProgressBar::no_length())
}

/// The bars on screen, so that an interrupted run can clear them.
static ACTIVE: Mutex<Vec<ProgressBar>> = Mutex::new(Vec::new());

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
                    "{spinner} {wide_msg} {binary_bytes} {binary_bytes_per_sec} {elapsed}",
                );
                if let Ok(style) = style {
                    self.bar.set_style(style);
                }
            }
        }
        // Drawn now and kept moving, even while the engine has sent nothing yet.
        self.bar.enable_steady_tick(Duration::from_millis(100));
        self.bar.tick();
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
        if let Ok(mut active) = ACTIVE.lock() {
            active.retain(|b| !b.is_finished());
        }
    }
}

/// Keeps `bar` among those an interrupted run clears.
pub fn track(bar: &ProgressBar) {
    if let Ok(mut active) = ACTIVE.lock() {
        active.push(bar.clone());
    }
}

/// Clears `bar` and forgets it.
pub fn untrack(bar: &ProgressBar) {
    bar.finish_and_clear();
    if let Ok(mut active) = ACTIVE.lock() {
        active.retain(|b| !b.is_finished());
    }
}

/// On Ctrl-C (SIGINT) or SIGTERM: waits for the entry being made to be complete, removes what
/// the run was writing (its temporary files and spools, what `extract` made in its directory),
/// clears the bars, says so in one line, and exits 130.
pub fn on_interrupt() {
    // Without the handler the run still stops, only less tidily: nothing to report.
    let _ = ctrlc::set_handler(|| {
        toolbox::interrupt::stop();
        if let Ok(active) = ACTIVE.lock() {
            for bar in active.iter() {
                bar.finish_and_clear();
            }
        }
        printer::notice(
            &"interrupted: nothing was half-written, and what this run had started is removed",
        );
        std::process::exit(130);
    });
}

/// A reporter for work described by `message`, as `mode` says: `auto` is a bar on a terminal
/// and nothing otherwise; `plain` is a line about every 10 % or 10 s.
pub fn reporter(mode: ProgressMode, message: &str) -> Arc<dyn Reporter> {
    match mode {
        ProgressMode::None => Arc::new(Silent),
        ProgressMode::Plain => Arc::new(Plain::new(message)),
        ProgressMode::Auto if !std::io::stderr().is_terminal() => Arc::new(Silent),
        ProgressMode::Auto | ProgressMode::Bar => bar(message),
    }
}

fn bar(message: &str) -> Arc<dyn Reporter> {
    let bar = new_bar();
    let style = ProgressStyle::with_template(
        "{spinner} {wide_msg} [{bar:20}] {percent:>3}% {binary_bytes}/{binary_total_bytes} \
         {binary_bytes_per_sec} eta {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message.to_string());
    if let Ok(mut active) = ACTIVE.lock() {
        active.push(bar.clone());
    }
    Arc::new(Bar { bar })
}

/// Plain lines on stderr, for logs: `saving web:1.2.3  45%  812.00 MiB/1.76 GiB  61.00 MiB/s`,
/// one about every 10 % (of a known total) or 10 s, and one at the end.
struct Plain {
    message: String,
    state: Mutex<PlainState>,
}

struct PlainState {
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_line: Instant,
    /// The next tenth (of the total) to report.
    next_tenth: u64,
}

impl Plain {
    const EVERY: Duration = Duration::from_secs(10);

    fn new(message: &str) -> Plain {
        let now = Instant::now();
        Plain {
            message: message.to_string(),
            state: Mutex::new(PlainState {
                total: None,
                done: 0,
                started: now,
                last_line: now,
                next_tenth: 1,
            }),
        }
    }

    fn line(&self, state: &PlainState, finished: bool) -> String {
        let secs = state.started.elapsed().as_secs_f64().max(0.001);
        let rate = BinaryBytes((state.done as f64 / secs) as u64);
        match state.total.filter(|&t| t > 0) {
            Some(total) => {
                // The total may be an estimate (an image's size): never 100 % before the end.
                let pct = if finished {
                    100
                } else {
                    (state.done.saturating_mul(100) / total).min(99)
                };
                format!(
                    "{}  {pct}%  {}/{}  {rate}/s",
                    self.message,
                    BinaryBytes(state.done),
                    BinaryBytes(total)
                )
            }
            None => format!("{}  {}  {rate}/s", self.message, BinaryBytes(state.done)),
        }
    }
}

impl Reporter for Plain {
    fn start(&self, total: Option<u64>) {
        if let Ok(mut state) = self.state.lock() {
            state.total = total;
            printer::notice(&self.line(&state, false));
        }
    }

    fn advance(&self, bytes: u64) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.done = state.done.saturating_add(bytes);
        let tenth = state
            .total
            .filter(|&t| t > 0)
            .map(|t| state.done.saturating_mul(10) / t);
        let due_tenth = tenth.is_some_and(|t| t >= state.next_tenth && t < 10);
        if due_tenth || state.last_line.elapsed() >= Self::EVERY {
            if let Some(t) = tenth {
                state.next_tenth = t + 1;
            }
            state.last_line = Instant::now();
            printer::notice(&self.line(&state, false));
        }
    }

    fn finish(&self) {
        if let Ok(state) = self.state.lock() {
            printer::notice(&format!(
                "{}  done in {:.1} s",
                self.line(&state, true),
                state.started.elapsed().as_secs_f64()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_count_tenths_and_never_say_100_before_the_end() {
        let plain = Plain::new("saving web:1");
        plain.start(Some(1000));
        let state = plain.state.lock().unwrap();
        assert_eq!(
            plain.line(&state, false),
            "saving web:1  0%  0 B/1000 B  0 B/s"
        );
        drop(state);
        plain.advance(1500);
        let state = plain.state.lock().unwrap();
        assert!(plain.line(&state, false).contains("  99%  "));
        assert!(plain.line(&state, true).contains("  100%  1.46 KiB/1000 B"));
    }
}
