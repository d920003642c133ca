//! A build's output on stderr: BuildKit's trace as `docker build --progress=plain` prints it,
//! or a compact live view on a terminal; the legacy builder's text as it comes.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};
use toolbox::config::ProgressMode;
use toolbox::engine::{BuildOutput, Builder, Discard, Step, Trace};

use crate::cli::progress;

/// The output `mode` asks for: `none` shows nothing (a failure still says what failed),
/// `plain` (and `auto` or `bar` off a terminal) prints lines, `auto` and `bar` on a terminal
/// show the compact view.
pub fn for_mode(mode: ProgressMode, image: &str) -> Box<dyn BuildOutput> {
    let terminal = std::io::stderr().is_terminal();
    match mode {
        ProgressMode::None => Box::new(Discard),
        ProgressMode::Plain => Box::new(Plain::new(std::io::stderr())),
        ProgressMode::Auto | ProgressMode::Bar if !terminal => {
            Box::new(Plain::new(std::io::stderr()))
        }
        ProgressMode::Auto | ProgressMode::Bar => Box::new(Compact::new(image)),
    }
}

/// What is known of a step: its number (in order of appearance) and whether its first line
/// and its end were printed.
#[derive(Debug, Clone, Default)]
struct Seen {
    number: usize,
    name: String,
    started: Option<SystemTime>,
    opened: bool,
    closed: bool,
}

/// The steps of a trace, numbered as they appear.
#[derive(Debug, Default)]
struct Steps {
    seen: HashMap<String, Seen>,
}

impl Steps {
    fn get(&mut self, digest: &str) -> &mut Seen {
        let next = self.seen.len() + 1;
        self.seen.entry(digest.to_string()).or_insert_with(|| Seen {
            number: next,
            ..Seen::default()
        })
    }
}

/// How a finished step ended: `DONE 0.4s`, `CACHED` or `ERROR: …`.
fn ending(step: &Step) -> String {
    if let Some(error) = &step.error {
        format!("ERROR: {error}")
    } else if step.cached {
        "CACHED".to_string()
    } else {
        let took = match (step.started, step.completed) {
            (Some(s), Some(c)) => c.duration_since(s).unwrap_or_default(),
            _ => Duration::ZERO,
        };
        format!("DONE {:.1}s", took.as_secs_f64())
    }
}

/// Bytes as BuildKit prints them (`88B`, `1.50kB`, `2.10MB`).
fn size(n: i64) -> String {
    let n = n.max(0) as f64;
    match n {
        n if n < 1e3 => format!("{n}B"),
        n if n < 1e6 => format!("{:.2}kB", n / 1e3),
        n if n < 1e9 => format!("{:.2}MB", n / 1e6),
        n => format!("{:.2}GB", n / 1e9),
    }
}

/// `docker build --progress=plain`: `#N name`, its statuses, its output lines with the
/// seconds since it started, and `#N DONE 0.4s`, `#N CACHED` or `#N ERROR: …`; a blank line
/// before another step's lines.
pub struct Plain<W: Write + Send> {
    out: W,
    steps: Steps,
    current: Option<String>,
    /// Each step's output after its last whole line.
    partial: HashMap<String, String>,
}

impl<W: Write + Send> Plain<W> {
    pub fn new(out: W) -> Self {
        Plain {
            out,
            steps: Steps::default(),
            current: None,
            partial: HashMap::new(),
        }
    }

    /// Starts `digest`'s lines (with a blank line when another step printed last).
    fn switch_to(&mut self, digest: &str) {
        let seen = self.steps.get(digest).clone();
        if !seen.opened {
            if self.current.is_some() {
                let _ = writeln!(self.out);
            }
            let _ = writeln!(self.out, "#{} {}", seen.number, seen.name);
            self.steps.get(digest).opened = true;
        } else if self.current.as_deref() != Some(digest) {
            let _ = writeln!(self.out);
        }
        self.current = Some(digest.to_string());
    }
}

impl<W: Write + Send> BuildOutput for Plain<W> {
    fn text(&mut self, fragment: &str) {
        let _ = self.out.write_all(fragment.as_bytes());
        let _ = self.out.flush();
    }

    fn trace(&mut self, trace: &Trace) {
        // Step by step, in the order they appear: the step's first line, its statuses and
        // output, then its end.
        let mut order: Vec<&str> = Vec::new();
        let digests = trace
            .steps
            .iter()
            .map(|s| s.digest.as_str())
            .chain(trace.statuses.iter().map(|s| s.step.as_str()))
            .chain(trace.logs.iter().map(|l| l.step.as_str()));
        for digest in digests {
            if !order.contains(&digest) {
                order.push(digest);
            }
        }
        for digest in order {
            let step = trace.steps.iter().find(|s| s.digest == digest);
            if let Some(step) = step {
                let seen = self.steps.get(digest);
                seen.name = step.name.clone();
                if seen.started.is_none() {
                    seen.started = step.started;
                }
                let visible = step.started.is_some() || step.cached || step.completed.is_some();
                if visible && !seen.opened {
                    self.switch_to(digest);
                }
            }
            for status in trace.statuses.iter().filter(|s| s.step == digest) {
                if !status.completed {
                    continue;
                }
                self.switch_to(digest);
                let number = self.steps.get(digest).number;
                let amount = match (status.current, status.total) {
                    (0, 0) => String::new(),
                    (c, t) if t > 0 => format!(" {} / {}", size(c), size(t)),
                    (c, _) => format!(" {}", size(c)),
                };
                let _ = writeln!(self.out, "#{number} {}{amount} done", status.id);
            }
            for log in trace.logs.iter().filter(|l| l.step == digest) {
                self.switch_to(digest);
                let seen = self.steps.get(digest).clone();
                let at = match (seen.started, log.at) {
                    (Some(s), Some(a)) => a.duration_since(s).unwrap_or_default().as_secs_f64(),
                    _ => 0.0,
                };
                // Output arrives in pieces: whole lines are printed, the rest waits.
                let partial = self.partial.entry(digest.to_string()).or_default();
                partial.push_str(&String::from_utf8_lossy(&log.data));
                while let Some(end) = partial.find('\n') {
                    let line: String = partial.drain(..=end).collect();
                    let _ = writeln!(self.out, "#{} {at:.3} {}", seen.number, line.trim_end());
                }
            }
            if let Some(step) = step
                && step.completed.is_some()
                && !self.steps.get(digest).closed
            {
                self.switch_to(digest);
                let number = self.steps.get(digest).number;
                if let Some(rest) = self.partial.remove(digest)
                    && !rest.is_empty()
                {
                    let _ = writeln!(self.out, "#{number} {rest}");
                }
                let _ = writeln!(self.out, "#{number} {}", ending(step));
                self.steps.get(digest).closed = true;
            }
        }
        for warning in &trace.warnings {
            let _ = writeln!(self.out, "WARNING: {warning}");
        }
        let _ = self.out.flush();
    }
}

/// On a terminal: one line per finished step (`#5 [2/3] RUN make  DONE 1.2s`) above a
/// spinner naming the steps that run; steps' output is not shown (a failure repeats its last
/// lines).
pub struct Compact {
    bar: ProgressBar,
    image: String,
    steps: Steps,
    running: Vec<String>,
    partial: String,
}

impl Compact {
    fn new(image: &str) -> Self {
        let bar = progress::new_bar();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {wide_msg} {elapsed}") {
            bar.set_style(style);
        }
        bar.set_message(format!("building {image}"));
        bar.enable_steady_tick(Duration::from_millis(100));
        progress::track(&bar);
        Compact {
            bar,
            image: image.to_string(),
            steps: Steps::default(),
            running: Vec::new(),
            partial: String::new(),
        }
    }
}

impl Drop for Compact {
    fn drop(&mut self) {
        if !self.partial.trim().is_empty() {
            self.bar.println(self.partial.trim_end());
        }
        progress::untrack(&self.bar);
    }
}

impl BuildOutput for Compact {
    fn builder(&mut self, builder: Builder) {
        self.image = format!("{} ({})", self.image, builder.as_str());
        self.bar.set_message(format!("building {}", self.image));
    }

    fn text(&mut self, fragment: &str) {
        self.partial.push_str(fragment);
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            self.bar.println(line.trim_end());
        }
    }

    fn trace(&mut self, trace: &Trace) {
        for step in &trace.steps {
            let seen = self.steps.get(&step.digest);
            seen.name = step.name.clone();
            if step.completed.is_some() && !seen.closed {
                seen.closed = true;
                let line = format!("#{} {}  {}", seen.number, step.name, ending(step));
                self.running.retain(|d| d != &step.digest);
                self.bar.println(line);
            } else if step.started.is_some() && !seen.closed && !self.running.contains(&step.digest)
            {
                self.running.push(step.digest.clone());
            }
        }
        let names: Vec<String> = self
            .running
            .iter()
            .filter_map(|d| self.steps.seen.get(d).map(|s| format!("#{}", s.number)))
            .collect();
        let last = self
            .running
            .last()
            .and_then(|d| self.steps.seen.get(d))
            .map(|s| s.name.clone())
            .unwrap_or_default();
        self.bar.set_message(match names.len() {
            0 => format!("building {}", self.image),
            _ => format!("building {}: {} {last}", self.image, names.join(" ")),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolbox::engine::{StepLog, StepStatus};

    fn at(ms: u64) -> Option<SystemTime> {
        Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms))
    }

    fn step(digest: &str, name: &str) -> Step {
        Step {
            digest: digest.into(),
            name: name.into(),
            cached: false,
            started: None,
            completed: None,
            error: None,
        }
    }

    #[test]
    fn plain_output_reads_like_dockers() {
        let mut out = Vec::new();
        {
            let mut plain = Plain::new(&mut out);
            plain.trace(&Trace {
                steps: vec![Step {
                    started: at(0),
                    ..step("a", "[internal] load build definition from Dockerfile")
                }],
                ..Trace::default()
            });
            plain.trace(&Trace {
                steps: vec![Step {
                    started: at(0),
                    completed: at(40),
                    ..step("a", "[internal] load build definition from Dockerfile")
                }],
                statuses: vec![StepStatus {
                    step: "a".into(),
                    id: "transferring dockerfile:".into(),
                    current: 88,
                    total: 0,
                    completed: true,
                }],
                ..Trace::default()
            });
            plain.trace(&Trace {
                steps: vec![
                    Step {
                        cached: true,
                        started: at(50),
                        completed: at(50),
                        ..step("b", "[1/2] COPY a /a")
                    },
                    Step {
                        started: at(100),
                        ..step("c", "[2/2] RUN make")
                    },
                ],
                logs: vec![
                    StepLog {
                        step: "c".into(),
                        at: at(400),
                        data: b"compiling\nlin".to_vec(),
                    },
                    StepLog {
                        step: "c".into(),
                        at: at(400),
                        data: b"king\n".to_vec(),
                    },
                ],
                ..Trace::default()
            });
            plain.trace(&Trace {
                steps: vec![Step {
                    started: at(100),
                    completed: at(1300),
                    error: Some("exit code: 2".into()),
                    ..step("c", "[2/2] RUN make")
                }],
                ..Trace::default()
            });
        }
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "#1 [internal] load build definition from Dockerfile\n\
             #1 transferring dockerfile: 88B done\n\
             #1 DONE 0.0s\n\
             \n\
             #2 [1/2] COPY a /a\n\
             #2 CACHED\n\
             \n\
             #3 [2/2] RUN make\n\
             #3 0.300 compiling\n\
             #3 0.300 linking\n\
             #3 ERROR: exit code: 2\n"
        );
    }

    #[test]
    fn sizes_read_like_buildkits() {
        assert_eq!(size(88), "88B");
        assert_eq!(size(1500), "1.50kB");
        assert_eq!(size(2_100_000), "2.10MB");
    }
}
