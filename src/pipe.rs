//! Bounded pipes between async byte streams (the engine's HTTP bodies) and blocking readers and
//! writers (files, ZIP, tar), so that data streams through in fixed memory.
//!
//! An interrupted stream never looks like a complete one, in either direction: the end of the
//! data is a message of its own, sent only by an explicit `finish`. A producing side that goes
//! away in any other way (dropped, its task panicked or was cancelled, an error returned before
//! `finish`) closes the pipe without that message, and the consuming side then fails with an
//! [`io::Error`] instead of seeing a clean end.

use std::io::{self, Read, Write};
use std::task::Poll;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

/// How many chunks may wait in a pipe.
const DEPTH: usize = 16;
/// The size of the chunks a [`ChannelWriter`] sends.
const CHUNK: usize = 256 * 1024;

/// What travels through a pipe: the end of the data is a message, never the channel closing.
enum Message {
    Data(Bytes),
    End,
    Failed(io::Error),
}

/// The error of a pipe whose producing side went away without saying the data was complete.
fn stopped(side: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the {side} stopped before the end of the data"),
    )
}

/// An error as the consuming side reports it: one that `Read` callers would retry
/// ([`io::ErrorKind::Interrupted`]) is wrapped, so that a failure is never taken for a pause.
fn reported(error: io::Error) -> io::Error {
    if error.kind() == io::ErrorKind::Interrupted {
        io::Error::other(error)
    } else {
        error
    }
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

    /// Says the data is complete: the only way the reader sees a clean end.
    pub async fn finish(self) {
        let _ = self.tx.send(Message::End).await;
    }

    /// Makes the reader fail with `error`.
    pub async fn fail(self, error: io::Error) {
        let _ = self.tx.send(Message::Failed(error)).await;
    }
}

/// A blocking reader over the chunks a [`Sender`] sends. It reports the end of the data
/// (`Ok(0)`) only after [`Sender::finish`]; a sender gone without it makes every read fail.
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
                Some(Message::Failed(e)) => return Err(reported(e)),
                None => return Err(stopped("sender")),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A blocking writer whose bytes come out of an async stream, in chunks.
pub struct ChannelWriter {
    tx: mpsc::Sender<Message>,
    buf: Vec<u8>,
}

/// A pipe from a blocking writer to an async stream. The stream ends cleanly only after
/// [`ChannelWriter::finish`]; a writer gone without it (dropped, or its thread panicked) ends
/// the stream with an error.
pub fn from_writer() -> (
    ChannelWriter,
    impl Stream<Item = io::Result<Bytes>> + Send + 'static,
) {
    let (tx, mut rx) = mpsc::channel::<Message>(DEPTH);
    let mut over = false;
    let stream = futures_util::stream::poll_fn(move |cx| {
        if over {
            return Poll::Ready(None);
        }
        let item = match rx.poll_recv(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(Message::Data(chunk))) => return Poll::Ready(Some(Ok(chunk))),
            Poll::Ready(Some(Message::End)) => None,
            Poll::Ready(Some(Message::Failed(e))) => Some(Err(reported(e))),
            Poll::Ready(None) => Some(Err(stopped("writer"))),
        };
        over = true;
        rx.close();
        Poll::Ready(item)
    });
    (
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        },
        stream,
    )
}

impl ChannelWriter {
    fn send(&self, message: Message) -> io::Result<()> {
        self.tx.blocking_send(message).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the receiving end stopped reading",
            )
        })
    }

    fn push(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.send(Message::Data(chunk))
    }

    /// Sends what is buffered, then `chunk` as it is (no copy).
    pub fn send_chunk(&mut self, chunk: Bytes) -> io::Result<()> {
        self.push()?;
        if chunk.is_empty() {
            return Ok(());
        }
        self.send(Message::Data(chunk))
    }

    /// Sends what is buffered and ends the stream cleanly: the only way the stream ends
    /// without an error. Fails when the receiving end stopped before the last chunk.
    pub fn finish(mut self) -> io::Result<()> {
        self.push()?;
        // A receiving end already gone has no use for the end: everything was sent.
        let _ = self.send(Message::End);
        Ok(())
    }

    /// Ends the stream with an error (the receiver sees a failed body, not a short one).
    pub fn fail(self, error: io::Error) {
        // Should the error not get through, dropping the writer still fails the stream.
        let _ = self.send(Message::Failed(error));
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

/// A reader that passes on to `out` every byte read through it (what is read is also written,
/// in the same call).
pub struct Tee<'a, R: ?Sized> {
    pub inner: &'a mut R,
    pub out: &'a mut dyn Write,
}

impl<R: Read + ?Sized> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    /// Reads everything in a blocking task, as the archive writers do.
    fn read_all(
        mut reader: ChannelReader,
    ) -> tokio::task::JoinHandle<(Vec<u8>, io::Result<usize>)> {
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let result = reader.read_to_end(&mut out);
            (out, result)
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reader_sees_all_data_then_end() {
        let (tx, mut reader) = to_reader();
        let read = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let result = reader.read_to_end(&mut out).map(|_| out);
            // The end stays the end.
            let again = reader.read(&mut [0u8; 8]);
            (result, again)
        });
        for i in 0..100u8 {
            assert!(tx.send(Bytes::from(vec![i; 1000])).await);
        }
        tx.finish().await;
        let (out, again) = read.await.unwrap();
        let out = out.unwrap();
        assert_eq!(out.len(), 100_000);
        assert_eq!(out[99_999], 99);
        assert_eq!(again.unwrap(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sender_dropped_early_is_an_error_not_an_end() {
        let (tx, mut reader) = to_reader();
        let read = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let first = reader.read_to_end(&mut out);
            let second = reader.read(&mut [0u8; 8]);
            (first, second)
        });
        assert!(tx.send(Bytes::from_static(b"partial")).await);
        drop(tx);
        let (first, second) = read.await.unwrap();
        assert_eq!(first.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert!(second.is_err(), "a failed pipe never turns into an end");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sender_task_that_panics_is_an_error() {
        let (tx, reader) = to_reader();
        let read = read_all(reader);
        let producer = tokio::spawn(async move {
            assert!(tx.send(Bytes::from_static(b"partial")).await);
            panic!("the producer broke");
        });
        assert!(producer.await.unwrap_err().is_panic());
        let (out, result) = read.await.unwrap();
        assert_eq!(out, b"partial");
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_sender_is_an_error() {
        // Aborted as a task.
        let (tx, reader) = to_reader();
        let read = read_all(reader);
        let producer = tokio::spawn(async move {
            assert!(tx.send(Bytes::from_static(b"partial")).await);
            std::future::pending::<()>().await;
            tx.finish().await;
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        producer.abort();
        assert!(producer.await.unwrap_err().is_cancelled());
        let (_, result) = read.await.unwrap();
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);

        // Dropped by a timeout.
        let (tx, reader) = to_reader();
        let read = read_all(reader);
        let producer = async move {
            assert!(tx.send(Bytes::from_static(b"partial")).await);
            std::future::pending::<()>().await;
            tx.finish().await;
        };
        let timed = tokio::time::timeout(std::time::Duration::from_millis(20), producer).await;
        assert!(timed.is_err());
        let (_, result) = read.await.unwrap();
        assert!(result.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sender_that_returns_an_error_before_finishing_is_an_error() {
        async fn produce(tx: Sender) -> io::Result<()> {
            tx.send(Bytes::from_static(b"partial")).await;
            Err(io::Error::other("the source broke"))?;
            tx.finish().await;
            Ok(())
        }
        let (tx, reader) = to_reader();
        let read = read_all(reader);
        assert!(produce(tx).await.is_err());
        let (_, result) = read.await.unwrap();
        assert!(result.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_reaches_the_reader_even_when_retryable() {
        let (tx, reader) = to_reader();
        let read = read_all(reader);
        tx.send(Bytes::from_static(b"partial")).await;
        tx.fail(io::Error::new(io::ErrorKind::Interrupted, "disk on fire"))
            .await;
        let (_, result) = read.await.unwrap();
        let error = result.unwrap_err();
        assert_ne!(error.kind(), io::ErrorKind::Interrupted);
        assert!(error.to_string().contains("disk on fire"), "{error}");
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
        let error = chunks.last().unwrap().as_ref().unwrap_err();
        assert!(error.to_string().contains("disk on fire"), "{error}");
    }

    /// Fills the pipe to the brim from a blocking task (nothing reads it yet), then does `end`
    /// with the writer; returns what the stream gives afterwards.
    async fn full_then(end: fn(ChannelWriter)) -> Vec<io::Result<Bytes>> {
        let (mut writer, stream) = from_writer();
        let write = tokio::task::spawn_blocking(move || {
            writer.write_all(&vec![1u8; DEPTH * CHUNK]).unwrap();
            end(writer);
        });
        let _ = write.await;
        stream.collect().await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_dropped_with_a_full_pipe_is_an_error_not_an_end() {
        let chunks = full_then(drop).await;
        assert_eq!(chunks.len(), DEPTH + 1);
        let error = chunks.last().unwrap().as_ref().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert!(chunks[..DEPTH].iter().all(Result::is_ok));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_thread_that_panics_is_an_error() {
        let chunks = full_then(|_writer| panic!("the writer broke")).await;
        assert!(chunks.last().unwrap().is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_dropped_anywhere_is_an_error() {
        // On a thread outside the runtime, with room in the pipe.
        let (mut writer, stream) = from_writer();
        std::thread::spawn(move || {
            writer.write_all(b"partial").unwrap();
            writer.flush().unwrap();
        })
        .join()
        .unwrap();
        let chunks: Vec<io::Result<Bytes>> = stream.collect().await;
        assert_eq!(chunks.len(), 2);
        assert!(chunks[1].is_err());

        // In async code, where nothing may block.
        let (writer, stream) = from_writer();
        tokio::spawn(async move { drop(writer) }).await.unwrap();
        let chunks: Vec<io::Result<Bytes>> = stream.collect().await;
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].is_err());

        // Returning an error before finishing.
        fn produce(mut writer: ChannelWriter) -> io::Result<()> {
            writer.write_all(b"partial")?;
            Err(io::Error::other("the source broke"))?;
            writer.finish()
        }
        let (writer, stream) = from_writer();
        let produced = tokio::task::spawn_blocking(move || produce(writer));
        let chunks: Vec<io::Result<Bytes>> = stream.collect().await;
        assert!(produced.await.unwrap().is_err());
        assert!(chunks.last().unwrap().is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_stream_ends_after_its_error_and_keeps_retryable_errors_fatal() {
        let (writer, stream) = from_writer();
        tokio::task::spawn_blocking(move || {
            writer.fail(io::Error::new(io::ErrorKind::Interrupted, "disk on fire"))
        })
        .await
        .unwrap();
        let mut stream = std::pin::pin!(stream);
        let error = stream.next().await.unwrap().unwrap_err();
        assert_ne!(error.kind(), io::ErrorKind::Interrupted);
        assert!(stream.next().await.is_none());
        assert!(stream.next().await.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_empty_finished_writer_is_a_clean_empty_stream() {
        let (writer, stream) = from_writer();
        tokio::task::spawn_blocking(move || writer.finish())
            .await
            .unwrap()
            .unwrap();
        let chunks: Vec<io::Result<Bytes>> = stream.collect().await;
        assert!(chunks.is_empty());
    }
}
