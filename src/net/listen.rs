//! Where the loop listens: TCP or unix-socket listeners, the sockets they accept, and the
//! `LISTEN` value that names them.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::net::sys;

/// Accept queue length asked of the kernel.
const BACKLOG: i32 = 4096;

/// Where to listen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address such as `0.0.0.0:9999`.
    Tcp(std::net::SocketAddr),
    /// A unix socket path; a stale socket file there is replaced.
    Unix(PathBuf),
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds `addr`. A unix path that holds a socket is removed first (a previous run that
    /// died leaves it behind); any other kind of file there is refused, never deleted. The
    /// new socket is made connectable by every user, since nginx runs under another one.
    pub(crate) fn bind(addr: &ListenAddr) -> io::Result<Listener> {
        let listener = match addr {
            ListenAddr::Tcp(a) => Listener::Tcp(TcpListener::bind(*a)?),
            ListenAddr::Unix(path) => {
                remove_stale_socket(path)?;
                let l = UnixListener::bind(path)?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
                Listener::Unix(l, path.clone())
            }
        };
        let fd = match &listener {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l, _) => l.as_raw_fd(),
        };
        sys::widen_backlog(fd, BACKLOG)?;
        Ok(listener)
    }

    /// Accepts one pending connection; `Ok(None)` when none is pending.
    pub(crate) fn accept(&self) -> io::Result<Option<Stream>> {
        let res = match self {
            Listener::Tcp(l) => l.accept().map(|(s, _)| {
                // Responses are single small writes; Nagle would only delay them.
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }),
            Listener::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
        };
        match res {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Listener::Tcp(l) => l,
            Listener::Unix(l, _) => l,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// An accepted socket, TCP or unix.
pub enum Stream {
    /// From a TCP listener.
    Tcp(TcpStream),
    /// From a unix socket listener (nginx in the compose topology).
    Unix(UnixStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream {
    pub(crate) fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }
}

fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket; refusing to replace it", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Parses `LISTEN`: comma-separated `host:port` or `unix:/path`.
pub fn parse_listen(value: &str) -> Result<Vec<ListenAddr>, String> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some(path) = item.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(format!("{item:?} names no socket path"));
            }
            out.push(ListenAddr::Unix(PathBuf::from(path)));
        } else {
            match item.parse() {
                Ok(addr) => out.push(ListenAddr::Tcp(addr)),
                Err(_) => {
                    return Err(format!(
                        "{item:?} is neither host:port (numeric, e.g. 0.0.0.0:9999) nor unix:/path.sock"
                    ))
                }
            }
        }
    }
    if out.is_empty() {
        return Err("no address given".into());
    }
    Ok(out)
}
