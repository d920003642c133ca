//! Bounded pipes between async byte streams (the engine's HTTP bodies) and blocking readers and
//! writers (files, ZIP, tar), so that data streams through in fixed memory.
//!
//! An interrupted stream never looks like a complete one: a [`ChannelReader`] only reports the
//! end of its data after the sender said [`Sender::finish`]; a sender dropped before that makes
//! the reader fail.

use std::io::{self, Read, Write};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

/// How many chunks may wait in a pipe.
const DEPTH: usize = 16;
/// The size of the chunks a [`ChannelWriter`] sends.
const CHUNK: usize = 256 * 1024;

enum Message {
    Data(Bytes),
    End,
    Failed(io::Error),
}

/// The async end that feeds a [`ChannelReader`].
pub struct Sender {
    tx: mpsc::Sender<Message>,
}

impl Sender {
    /// Sends a chunk; `false` when the reader is gone (it failed or stopped).
    pub async fn send(&self, chunk: Bytes) -> bool {
        self.tx.send(Message::Data(chunk)).await.is_ok()
    }

    /// Says the data is complete.
    pub async fn finish(self) {
        let _ = self.tx.send(Message::End).await;
    }

    /// Makes the reader fail with `error`.
    pub async fn fail(self, error: io::Error) {
        let _ = self.tx.send(Message::Failed(error)).await;
    }
}

/// A blocking reader over the chunks a [`Sender`] sends.
pub struct ChannelReader {
    rx: mpsc::Receiver<Message>,
    current: Bytes,
    ended: bool,
}

/// A pipe from async code to a blocking reader.
pub fn to_reader() -> (Sender, ChannelReader) {
    let (tx, rx) = mpsc::channel(DEPTH);
    (
        Sender { tx },
        ChannelReader {
            rx,
            current: Bytes::new(),
            ended: false,
        },
    )
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Message::Data(chunk)) => self.current = chunk,
                Some(Message::End) => self.ended = true,
                Some(Message::Failed(e)) => return Err(e),
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the stream stopped before its end",
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A blocking writer whose bytes come out of an async stream, in chunks.
pub struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
    done: bool,
}

/// A pipe from a blocking writer to an async stream. The stream ends when the writer is
/// finished; a writer dropped without [`ChannelWriter::finish`] ends it with an error.
pub fn from_writer() -> (
    ChannelWriter,
    impl Stream<Item = io::Result<Bytes>> + Send + 'static,
) {
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(DEPTH);
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
            done: false,
        },
        stream,
    )
}

impl ChannelWriter {
    fn push(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the receiving end stopped reading",
            )
        })
    }

    /// Sends what is buffered and ends the stream cleanly.
    pub fn finish(mut self) -> io::Result<()> {
        self.push()?;
        // Dropping the sender after the last chunk ends the stream.
        self.done = true;
        Ok(())
    }

    /// Ends the stream with an error (the receiver sees a failed body, not a short one).
    pub fn fail(mut self, error: io::Error) {
        self.done = true;
        let _ = self.tx.blocking_send(Err(error));
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        if !self.done {
            let error = || Err(io::Error::other("the writer stopped before its end"));
            if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(error())
                && tokio::runtime::Handle::try_current().is_err()
            {
                let _ = self.tx.blocking_send(error());
            }
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.push()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reader_sees_all_data_then_end() {
        let (tx, mut reader) = to_reader();
        let read = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            reader.read_to_end(&mut out).map(|_| out)
        });
        for i in 0..100u8 {
            assert!(tx.send(Bytes::from(vec![i; 1000])).await);
        }
        tx.finish().await;
        let out = read.await.unwrap().unwrap();
        assert_eq!(out.len(), 100_000);
        assert_eq!(out[99_999], 99);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sender_dropped_early_is_an_error_not_an_end() {
        let (tx, mut reader) = to_reader();
        let read = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            reader.read_to_end(&mut out)
        });
        assert!(tx.send(Bytes::from_static(b"partial")).await);
        drop(tx);
        let err = read.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writer_streams_in_chunks_and_fails_loudly() {
        let (mut writer, stream) = from_writer();
        let write = tokio::task::spawn_blocking(move || {
            writer.write_all(&vec![7u8; 3 * CHUNK + 5])?;
            writer.finish()
        });
        let chunks: Vec<io::Result<Bytes>> = stream.collect().await;
        write.await.unwrap().unwrap();
        let total: usize = chunks.iter().map(|c| c.as_ref().unwrap().len()).sum();
        assert_eq!(total, 3 * CHUNK + 5);

        let (writer, stream) = from_writer();
        tokio::task::spawn_blocking(move || writer.fail(io::Error::other("disk on fire")));
        let chunks: Vec<io::Result<Bytes>> = stream.collect().await;
        assert!(chunks.last().unwrap().is_err());
    }
}
