//! One outbound TCP connection registered with the loop: the socket calls a client pool
//! makes (connect, finish the connect, check an idle socket, change interest, close), so
//! that the pool above is a state machine over these few verbs and never names `mio`.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

/// What a connected socket waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// An answer, or the peer closing (an idle or a fully written connection).
    Read,
    /// An answer, and room to write the rest of a request.
    ReadWrite,
}

impl Want {
    fn interest(self) -> Interest {
        match self {
            Want::Read => Interest::READABLE,
            Want::ReadWrite => Interest::READABLE | Interest::WRITABLE,
        }
    }
}

/// A non-blocking TCP connection under `token`, and the interest it is registered with
/// (`None`: not registered), remembered so an unchanged set is never registered again.
pub struct Outbound {
    stream: TcpStream,
    token: Token,
    interest: Option<Interest>,
}

impl Outbound {
    /// Starts a non-blocking connect to `address` and registers it under `token`; the
    /// connect's end is announced as writability (mio's documented recipe), then
    /// [`Outbound::finish_connect`] tells how it ended.
    pub fn connect(registry: &Registry, address: SocketAddr, token: Token) -> io::Result<Outbound> {
        let mut stream = TcpStream::connect(address)?;
        registry.register(&mut stream, token, Interest::WRITABLE)?;
        Ok(Outbound {
            stream,
            token,
            interest: Some(Interest::WRITABLE),
        })
    }

    /// How a connect under way stands, as mio documents it: `take_error`, then `peer_addr`.
    /// `Ok(true)`: connected (and TCP_NODELAY set, since requests are single small writes
    /// that Nagle would only delay); `Ok(false)`: not yet; `Err`: failed.
    pub fn finish_connect(&mut self) -> io::Result<bool> {
        if let Some(e) = self.stream.take_error()? {
            return Err(e);
        }
        match self.stream.peer_addr() {
            Ok(_) => {
                let _ = self.stream.set_nodelay(true);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected || e.raw_os_error() == Some(libc::EINPROGRESS) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether an idle connection still looks usable: nothing to read, not even the end of
    /// the stream (one `peek`). A server that closed it, or sent bytes nobody asked for,
    /// makes it unusable.
    pub fn is_quiet(&self) -> bool {
        matches!(self.stream.peek(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Registers for `want`, or re-registers, unless that is already the interest.
    pub fn want(&mut self, registry: &Registry, want: Want) -> io::Result<()> {
        let want = want.interest();
        match self.interest {
            Some(have) if have == want => return Ok(()),
            Some(_) => registry.reregister(&mut self.stream, self.token, want)?,
            None => registry.register(&mut self.stream, self.token, want)?,
        }
        self.interest = Some(want);
        Ok(())
    }

    /// Removes the socket from the poll and closes it.
    pub fn close(mut self, registry: &Registry) {
        if self.interest.take().is_some() {
            let _ = registry.deregister(&mut self.stream);
        }
    }
}

impl Read for Outbound {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for Outbound {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
