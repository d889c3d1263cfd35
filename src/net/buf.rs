//! Per-connection byte buffers and the only loops that drain a socket.
//!
//! mio readiness is edge-triggered: after an event the socket must be read (or written) until
//! it says `WouldBlock`, or the remaining bytes wait for an event that never comes. These
//! loops are written once, here. A read stops early only when the buffer reaches its cap,
//! which the caller sees as [`ReadEnd::Full`] and must answer by consuming and reading again.

use std::io::{self, Read, Write};

/// Why a read loop stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// The socket has nothing more for now.
    WouldBlock,
    /// The buffer reached its cap; the socket may hold more.
    Full,
    /// The peer closed its side (a read returned 0) or the socket failed.
    Closed,
}

/// Bytes read but not yet consumed by the parser. The storage is allocated once, at the
/// first read, and never zeroed again; consumed bytes are dropped lazily so a pipelined batch
/// is parsed without moving memory after every request.
pub struct ReadBuf {
    data: Box<[u8]>,
    start: usize,
    end: usize,
    cap: usize,
}

impl ReadBuf {
    /// A buffer that never holds more than `cap` unconsumed bytes.
    pub fn new(cap: usize) -> ReadBuf {
        ReadBuf {
            data: Box::default(),
            start: 0,
            end: 0,
            cap,
        }
    }

    /// The unconsumed bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    /// True when no unconsumed byte is buffered.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// True when the unconsumed bytes fill the cap.
    pub fn is_full(&self) -> bool {
        self.end - self.start >= self.cap
    }

    /// Marks the first `n` unconsumed bytes as used.
    pub fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads from `src` until it would block, closes, fails or the cap is reached; returns
    /// the number of bytes added and why it stopped. `Interrupted` is retried.
    pub fn fill_from<R: Read>(&mut self, src: &mut R) -> (usize, ReadEnd) {
        if self.data.is_empty() {
            self.data = vec![0; self.cap].into_boxed_slice();
        }
        if self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let mut total = 0;
        loop {
            if self.end == self.cap {
                return (total, ReadEnd::Full);
            }
            match src.read(&mut self.data[self.end..]) {
                Ok(0) => return (total, ReadEnd::Closed),
                Ok(n) => {
                    self.end += n;
                    total += n;
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => return (total, ReadEnd::WouldBlock),
                    io::ErrorKind::Interrupted => {}
                    _ => return (total, ReadEnd::Closed),
                },
            }
        }
    }
}

/// Why a write loop stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteEnd {
    /// Everything buffered was written.
    Drained,
    /// The socket is full; wait for WRITABLE.
    WouldBlock,
    /// The peer is gone or the socket failed.
    Closed,
}

/// Bytes waiting to be written; the written prefix is dropped once all of it is out.
#[derive(Default)]
pub struct WriteBuf {
    data: Vec<u8>,
    sent: usize,
}

impl WriteBuf {
    /// An empty buffer.
    pub fn new() -> WriteBuf {
        WriteBuf::default()
    }

    /// The vector responses are appended to.
    pub fn out(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Bytes still to be written.
    pub fn pending(&self) -> usize {
        self.data.len() - self.sent
    }

    /// Drops everything not yet written (a connection given up half-way through a request),
    /// keeping the allocation.
    pub fn clear(&mut self) {
        self.data.clear();
        self.sent = 0;
    }

    /// Writes to `dst` until drained, blocked or failed; `Interrupted` is retried.
    pub fn flush_to<W: Write>(&mut self, dst: &mut W) -> WriteEnd {
        while self.sent < self.data.len() {
            match dst.write(&self.data[self.sent..]) {
                Ok(0) => return WriteEnd::Closed,
                Ok(n) => self.sent += n,
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => return WriteEnd::WouldBlock,
                    io::ErrorKind::Interrupted => {}
                    _ => return WriteEnd::Closed,
                },
            }
        }
        self.data.clear();
        self.sent = 0;
        WriteEnd::Drained
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake socket: yields scripted chunks, then WouldBlock or EOF.
    struct Script {
        chunks: Vec<io::Result<Vec<u8>>>,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.chunks.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            match self.chunks.remove(0) {
                Ok(mut c) => {
                    let n = c.len().min(buf.len());
                    buf[..n].copy_from_slice(&c[..n]);
                    if n < c.len() {
                        self.chunks.insert(0, Ok(c.split_off(n)));
                    }
                    Ok(n)
                }
                Err(e) => Err(e),
            }
        }
    }

    #[test]
    fn reads_until_would_block_retrying_interrupts() {
        let mut s = Script {
            chunks: vec![
                Ok(b"ab".to_vec()),
                Err(io::ErrorKind::Interrupted.into()),
                Ok(b"cd".to_vec()),
            ],
        };
        let mut b = ReadBuf::new(100);
        assert_eq!(b.fill_from(&mut s), (4, ReadEnd::WouldBlock));
        assert_eq!(b.bytes(), b"abcd");
        b.consume(3);
        assert_eq!(b.bytes(), b"d");
        b.consume(1);
        assert!(b.is_empty());
    }

    #[test]
    fn stops_at_cap_and_reports_eof() {
        let mut s = Script {
            chunks: vec![Ok(b"0123456789".to_vec()), Ok(Vec::new())],
        };
        let mut b = ReadBuf::new(4);
        assert_eq!(b.fill_from(&mut s), (4, ReadEnd::Full));
        assert!(b.is_full());
        b.consume(4);
        assert_eq!(b.fill_from(&mut s), (4, ReadEnd::Full));
        b.consume(2);
        assert_eq!(b.fill_from(&mut s), (2, ReadEnd::Full));
        assert_eq!(b.bytes(), b"6789");
        b.consume(4);
        assert_eq!(b.fill_from(&mut s), (0, ReadEnd::Closed));
    }

    struct Sink {
        accept: Vec<usize>,
        got: Vec<u8>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            match self.accept.first().copied() {
                None => Err(io::ErrorKind::WouldBlock.into()),
                Some(n) => {
                    self.accept.remove(0);
                    let n = n.min(buf.len());
                    self.got.extend_from_slice(&buf[..n]);
                    Ok(n)
                }
            }
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn clear_drops_a_half_written_request() {
        let mut w = WriteBuf::new();
        w.out().extend_from_slice(b"POST /payments");
        let mut s = Sink {
            accept: vec![4],
            got: Vec::new(),
        };
        assert_eq!(w.flush_to(&mut s), WriteEnd::WouldBlock);
        w.clear();
        assert_eq!(w.pending(), 0);
        w.out().extend_from_slice(b"GET");
        s.accept = vec![100];
        assert_eq!(w.flush_to(&mut s), WriteEnd::Drained);
        assert_eq!(s.got, b"POSTGET");
    }

    #[test]
    fn short_writes_resume_where_they_stopped() {
        let mut w = WriteBuf::new();
        w.out().extend_from_slice(b"hello world");
        let mut s = Sink {
            accept: vec![3, 2],
            got: Vec::new(),
        };
        assert_eq!(w.flush_to(&mut s), WriteEnd::WouldBlock);
        assert_eq!(w.pending(), 6);
        s.accept = vec![100];
        assert_eq!(w.flush_to(&mut s), WriteEnd::Drained);
        assert_eq!(s.got, b"hello world");
        assert_eq!(w.pending(), 0);
    }
}
