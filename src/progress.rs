//! Progress reporting: library code calls a [`Reporter`]; the command line decides how (or
//! whether) to show it.

use std::io::{self, Read};

/// Receives progress of a long piece of work, in bytes.
pub trait Reporter: Send + Sync {
    /// Work starts; `total` bytes when known.
    fn start(&self, _total: Option<u64>) {}
    /// `bytes` more bytes were processed.
    fn advance(&self, _bytes: u64) {}
    /// Work ended.
    fn finish(&self) {}
}

/// A reporter that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Reporter for Silent {}

/// A reader that reports the bytes read through it.
pub struct ProgressReader<'a, R> {
    inner: R,
    reporter: &'a dyn Reporter,
}

impl<'a, R: Read> ProgressReader<'a, R> {
    pub fn new(inner: R, reporter: &'a dyn Reporter) -> Self {
        ProgressReader { inner, reporter }
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.reporter.advance(n as u64);
        Ok(n)
    }
}
