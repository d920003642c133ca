//! Deflate on all cores into ONE raw deflate stream, as pigz does for gzip: the input is cut
//! into chunks, each compressed independently (primed with the previous chunk's last 32 KiB as a
//! dictionary, so the ratio stays that of a single stream) and ended with a sync flush, which
//! leaves it byte-aligned and not final; the chunks are written in order and one empty final
//! block closes the stream.
//!
//! Reading, compressing and writing overlap: the caller's thread reads, worker threads
//! compress, a writer thread writes. Memory is bounded by a fixed number of chunks in flight.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use flate2::{Compress, Compression, FlushCompress};

/// The size of the chunks compressed independently.
pub const CHUNK: usize = 1 << 20;
/// The deflate window: how much of the previous chunk primes the next.
const WINDOW: usize = 32 * 1024;
/// An empty final fixed-Huffman block: the end of the stream.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// What was compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deflated {
    pub crc: u32,
    pub uncompressed: u64,
    pub compressed: u64,
}

/// Which side of the pipeline failed.
#[derive(Debug)]
pub enum PipelineError {
    Read(io::Error),
    Write(io::Error),
}

struct Job {
    seq: u64,
    data: Vec<u8>,
    len: usize,
    dictionary: Option<Vec<u8>>,
}

struct Done {
    seq: u64,
    input: Vec<u8>,
    output: io::Result<Vec<u8>>,
    crc: crc32fast::Hasher,
    len: usize,
}

/// The number of threads to compress on.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Compresses everything `input` gives into one raw deflate stream written to `output`, at
/// `level` (1-9), on `threads` worker threads. Returns the CRC-32 and the sizes.
pub fn deflate<R: Read + ?Sized, W: Write + Send>(
    input: &mut R,
    output: &mut W,
    level: u32,
    threads: usize,
) -> Result<Deflated, PipelineError> {
    let threads = threads.max(1);
    // Chunks in flight (read, compressing, or waiting to be written): the memory bound.
    let in_flight = (2 * threads + 2).min(16);
    let (pool_tx, pool_rx) = sync_channel::<Vec<u8>>(in_flight);
    for _ in 0..in_flight {
        pool_tx.send(vec![0u8; CHUNK]).expect("the pool has room");
    }
    let (job_tx, job_rx) = sync_channel::<Job>(in_flight);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (done_tx, done_rx) = sync_channel::<Done>(in_flight);

    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (jobs, done) = (Arc::clone(&job_rx), done_tx.clone());
            scope.spawn(move || compress_jobs(&jobs, &done, level));
        }
        // Only the workers hold the job queue's receiver: when they stop, sending fails.
        drop(job_rx);
        drop(done_tx);
        let writer = scope.spawn(move || write_in_order(done_rx, output, &pool_tx));
        let read = read_chunks(input, &pool_rx, &job_tx);
        drop(job_tx);
        let written = writer
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        // A write error stops the reader (its pool runs dry), so report that first.
        let deflated = written.map_err(PipelineError::Write)?;
        let chunks = read.map_err(PipelineError::Read)?;
        debug_assert_eq!(chunks, deflated.1);
        Ok(deflated.0)
    })
}

/// Writes everything `input` gives as one gzip member (RFC 1952: no name, no time) to `output`,
/// deflated at `level` on `threads` threads, as `deflate` does.
pub fn gzip<R: Read + ?Sized, W: Write + Send>(
    input: &mut R,
    output: &mut W,
    level: u32,
    threads: usize,
) -> Result<Deflated, PipelineError> {
    const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    output.write_all(&HEADER).map_err(PipelineError::Write)?;
    let done = deflate(input, output, level, threads)?;
    let mut trailer = [0u8; 8];
    trailer[..4].copy_from_slice(&done.crc.to_le_bytes());
    trailer[4..].copy_from_slice(&(done.uncompressed as u32).to_le_bytes());
    output.write_all(&trailer).map_err(PipelineError::Write)?;
    Ok(Deflated {
        compressed: done.compressed + 18,
        ..done
    })
}

/// Reads chunks into buffers from the pool and hands them out; returns how many.
fn read_chunks<R: Read + ?Sized>(
    input: &mut R,
    pool: &Receiver<Vec<u8>>,
    jobs: &SyncSender<Job>,
) -> io::Result<u64> {
    let mut seq = 0;
    let mut tail: Option<Vec<u8>> = None;
    loop {
        // No buffer comes back once the writer has stopped: that ends reading too.
        let Ok(mut data) = pool.recv() else {
            return Ok(seq);
        };
        let len = fill(input, &mut data)?;
        if len == 0 {
            return Ok(seq);
        }
        let dictionary = tail.take();
        tail = Some(data[len.saturating_sub(WINDOW)..len].to_vec());
        if jobs
            .send(Job {
                seq,
                data,
                len,
                dictionary,
            })
            .is_err()
        {
            return Ok(seq);
        }
        seq += 1;
        if len < CHUNK {
            return Ok(seq);
        }
    }
}

/// Reads until `buf` is full or the input ends.
fn fill<R: Read + ?Sized>(input: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = 0;
    while len < buf.len() {
        match input.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(len)
}

fn compress_jobs(jobs: &Mutex<Receiver<Job>>, done: &SyncSender<Done>, level: u32) {
    let mut compress = Compress::new(Compression::new(level), false);
    let mut probe = Compress::new(Compression::fast(), false);
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let chunk = &job.data[..job.len];
        let mut crc = crc32fast::Hasher::new();
        crc.update(chunk);
        let output = if incompressible(&mut probe, chunk) {
            Ok(stored_blocks(chunk))
        } else {
            compress_chunk(&mut compress, chunk, job.dictionary.as_deref())
        };
        let result = Done {
            seq: job.seq,
            input: job.data,
            output,
            crc,
            len: job.len,
        };
        if done.send(result).is_err() {
            return;
        }
    }
}

/// Whether a chunk is already compressed (or random): samples of it do not shrink at the
/// fastest level. Deflating such data costs the most time and gains nothing.
fn incompressible(probe: &mut Compress, chunk: &[u8]) -> bool {
    const SAMPLE: usize = 8 * 1024;
    if chunk.len() < 4 * SAMPLE {
        return false;
    }
    let mut out = Vec::with_capacity(SAMPLE + 1024);
    (0..4).all(|i| {
        let start = i * (chunk.len() - SAMPLE) / 3;
        probe.reset();
        out.clear();
        let sample = &chunk[start..start + SAMPLE];
        match probe.compress_vec(sample, &mut out, FlushCompress::Sync) {
            // Unfinished output means it did not even fit in the sample's size plus 1 KiB.
            Ok(_) => {
                probe.total_in() as usize == SAMPLE && out.len() * 100 >= SAMPLE * 97
                    || out.len() == out.capacity()
            }
            Err(_) => false,
        }
    })
}

/// A chunk as stored (uncompressed) deflate blocks, none final: each is byte-aligned, so it
/// joins the stream like a sync-flushed chunk.
fn stored_blocks(chunk: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk.len() + chunk.len() / 65535 * 5 + 5);
    for block in chunk.chunks(65535) {
        let len = block.len() as u16;
        out.push(0x00); // BFINAL=0, BTYPE=00, padding to the byte
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out
}

/// One chunk as raw deflate blocks ending with a sync flush (byte-aligned, not final).
fn compress_chunk(
    compress: &mut Compress,
    chunk: &[u8],
    dictionary: Option<&[u8]>,
) -> io::Result<Vec<u8>> {
    compress.reset();
    if let Some(dictionary) = dictionary {
        compress
            .set_dictionary(dictionary)
            .map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(chunk.len() / 2 + 1024);
    loop {
        let consumed = compress.total_in() as usize;
        compress
            .compress_vec(&chunk[consumed..], &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        // The flush is complete once all input is in and output space was left over.
        if compress.total_in() as usize == chunk.len() && out.len() < out.capacity() {
            return Ok(out);
        }
        out.reserve(out.capacity().max(64 * 1024));
    }
}

/// Writes compressed chunks in order, returning their buffers to the pool; ends the stream.
fn write_in_order<W: Write>(
    done: Receiver<Done>,
    output: &mut W,
    pool: &SyncSender<Vec<u8>>,
) -> io::Result<(Deflated, u64)> {
    let mut waiting: BTreeMap<u64, Done> = BTreeMap::new();
    let mut next = 0u64;
    let mut crc = crc32fast::Hasher::new();
    let mut total = Deflated::default();
    for item in done {
        waiting.insert(item.seq, item);
        while let Some(item) = waiting.remove(&next) {
            let compressed = item.output?;
            output.write_all(&compressed)?;
            crc.combine(&item.crc);
            total.uncompressed += item.len as u64;
            total.compressed += compressed.len() as u64;
            let _ = pool.send(item.input);
            next += 1;
        }
    }
    output.write_all(&FINAL_BLOCK)?;
    total.compressed += FINAL_BLOCK.len() as u64;
    total.crc = crc.finalize();
    Ok((total, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_members_read_back() {
        for len in [0usize, 10, 3 * CHUNK + 17] {
            let data: Vec<u8> = (0..len)
                .map(|i| (i % 251) as u8 ^ (i >> 12) as u8)
                .collect();
            let mut out = Vec::new();
            let done = gzip(&mut data.as_slice(), &mut out, 6, 2).unwrap();
            assert_eq!(done.compressed, out.len() as u64);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(out.as_slice())
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "{len}");
        }
    }
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        // Text-like and repetitive, with some noise: compressible across chunk borders.
        let words = [
            "layer", "sha256", "manifest", "config", "docker", "toolbox", "\n", " ",
        ];
        let mut state = 12345u64;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            out.extend_from_slice(words[(state >> 60) as usize % words.len()].as_bytes());
            if state.is_multiple_of(7) {
                out.push((state >> 24) as u8);
            }
        }
        out.truncate(len);
        out
    }

    fn inflate(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn one_valid_stream_whatever_the_size() {
        for len in [0, 1, 1000, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12345] {
            let data = sample(len);
            let mut out = Vec::new();
            let d = deflate(&mut data.as_slice(), &mut out, 6, 3).unwrap();
            assert_eq!(inflate(&out), data, "len {len}");
            assert_eq!(d.uncompressed, len as u64);
            assert_eq!(d.compressed, out.len() as u64);
            assert_eq!(d.crc, crc32fast::hash(&data));
        }
    }

    #[test]
    fn incompressible_chunks_are_stored_and_the_stream_stays_valid() {
        // Text, then random bytes, then text again: chunks of each kind in one stream.
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut data = sample(CHUNK + 100);
        data.extend((0..2 * CHUNK).map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        }));
        data.extend(sample(CHUNK / 2));
        let mut out = Vec::new();
        let d = deflate(&mut data.as_slice(), &mut out, 6, 2).unwrap();
        assert_eq!(inflate(&out), data);
        assert_eq!(d.crc, crc32fast::hash(&data));
        // The random part costs its size plus block headers, no more.
        assert!(out.len() < 2 * CHUNK + CHUNK / 2, "{} bytes", out.len());

        let mut probe = Compress::new(Compression::fast(), false);
        assert!(incompressible(
            &mut probe,
            &data[CHUNK + 100..2 * CHUNK + 100]
        ));
        assert!(!incompressible(&mut probe, &data[..CHUNK]));
    }

    #[test]
    fn ratio_close_to_a_single_stream() {
        let data = sample(6 * CHUNK);
        let mut parallel = Vec::new();
        deflate(&mut data.as_slice(), &mut parallel, 6, 4).unwrap();
        let mut single = flate2::write::DeflateEncoder::new(Vec::new(), Compression::new(6));
        single.write_all(&data).unwrap();
        let single = single.finish().unwrap();
        let ratio = parallel.len() as f64 / single.len() as f64;
        assert!(
            ratio < 1.01,
            "parallel {} vs single {} bytes",
            parallel.len(),
            single.len()
        );
    }

    #[test]
    fn errors_say_which_side_failed() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("source broke"))
            }
        }
        let mut out = Vec::new();
        assert!(matches!(
            deflate(&mut Failing, &mut out, 6, 2),
            Err(PipelineError::Read(_))
        ));

        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::StorageFull, "no space"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let data = sample(5 * CHUNK);
        assert!(matches!(
            deflate(&mut data.as_slice(), &mut Full, 6, 2),
            Err(PipelineError::Write(_))
        ));
    }
}
