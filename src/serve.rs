//! `fotovakt serve-metrics`: a deliberately small HTTP/1.x server for Prometheus scrapes.
//! `GET /metrics` (or `HEAD`) answers the statistics, collected afresh per scrape, as
//! OpenMetrics when the `Accept` header asks for it and as the classic text format otherwise;
//! every other path is 404. One connection, one request; requests are bounded in size and
//! time, and a bad one is answered (or dropped) without stopping the server. Requests are
//! answered one at a time, which is plenty for a scrape a minute. It listens on
//! loopback only unless the caller allows a remote address.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::stats::{self, Stats};

/// The most bytes of request head the server reads.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// How long a client may take to send its request or read the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "{addr} is not a loopback address: the counts would be readable from the network \
         (pass --allow-remote to allow it)"
    )]
    NotLoopback { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("metrics listener: {0}")]
    Io(#[from] io::Error),
}

/// A bound metrics listener.
pub struct Server {
    listener: TcpListener,
}

/// What one request asked for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Metrics { head_only: bool, openmetrics: bool },
    NotFound,
    MethodNotAllowed,
    Bad(&'static str),
}

impl Server {
    /// Bind `addr`; a non-loopback address only with `allow_remote`.
    pub fn bind(addr: SocketAddr, allow_remote: bool) -> Result<Server, ServeError> {
        if !addr.ip().is_loopback() && !allow_remote {
            return Err(ServeError::NotLoopback { addr });
        }
        let listener = TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr, source })?;
        listener.set_nonblocking(true)?;
        Ok(Server { listener })
    }

    /// The address actually bound (port 0 picks a free one).
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        Ok(self.listener.local_addr()?)
    }

    /// Serve until `stop` is set; `collect` takes fresh numbers for each scrape. Returns how
    /// many scrapes were answered.
    pub fn run<E: std::fmt::Display>(
        &self,
        stop: &AtomicBool,
        mut collect: impl FnMut() -> Result<Stats, E>,
    ) -> Result<u64, ServeError> {
        info!(addr = %self.local_addr()?, "serving metrics at /metrics");
        let mut scrapes = 0;
        while !stop.load(Ordering::Relaxed) {
            match self.listener.accept() {
                Ok((stream, peer)) => match handle(stream, &mut collect) {
                    Ok(served) => scrapes += served as u64,
                    Err(e) => debug!(%peer, error = %e, "metrics connection ended early"),
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(25)),
                Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted) => {}
                Err(e) => {
                    // Out of descriptors and the like: back off, keep serving.
                    warn!(error = %e, "accept failed");
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        info!(scrapes, "metrics server stopped");
        Ok(scrapes)
    }
}

/// Read the request head: up to the blank line, at most [`MAX_REQUEST_BYTES`], within
/// [`IO_TIMEOUT`] in all (a client dribbling a byte at a time does not hold the server longer).
fn read_head(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "request head not complete in time"));
        }
        stream.set_read_timeout(Some(left))?;
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(buf));
        }
        if buf.len() >= MAX_REQUEST_BYTES {
            return Ok(None);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(Some(buf));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn parse(head: &[u8]) -> Request {
    let Ok(text) = std::str::from_utf8(head) else {
        return Request::Bad("request is not UTF-8");
    };
    let mut lines = text.lines();
    let mut first = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(version), None) = (first.next(), first.next(), first.next(), first.next())
    else {
        return Request::Bad("malformed request line");
    };
    if !version.starts_with("HTTP/1.") {
        return Request::Bad("not HTTP/1.x");
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Request::MethodNotAllowed,
    };
    let path = target.split('?').next().unwrap_or("");
    if path != "/metrics" {
        return Request::NotFound;
    }
    let openmetrics = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("accept"))
        .any(|(_, v)| v.to_ascii_lowercase().contains("application/openmetrics-text"));
    Request::Metrics { head_only, openmetrics }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    extra: &str,
    body: &str,
    head_only: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&out)?;
    stream.flush()
}

/// Answer one connection; `Ok(true)` when it was a metrics scrape.
fn handle<E: std::fmt::Display>(
    mut stream: TcpStream,
    collect: &mut impl FnMut() -> Result<Stats, E>,
) -> io::Result<bool> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    const TEXT: &str = "text/plain; charset=utf-8";
    let Some(head) = read_head(&mut stream)? else {
        respond(&mut stream, "431 Request Header Fields Too Large", TEXT, "", "request too large\n", false)?;
        return Ok(false);
    };
    match parse(&head) {
        Request::Metrics { head_only, openmetrics } => match collect() {
            Ok(s) => {
                let (body, ct) = if openmetrics {
                    (stats::openmetrics(&s), stats::OPENMETRICS_CONTENT_TYPE)
                } else {
                    (stats::prometheus_text(&s), stats::PROMETHEUS_TEXT_CONTENT_TYPE)
                };
                respond(&mut stream, "200 OK", ct, "", &body, head_only)?;
                debug!(openmetrics, bytes = body.len(), "scrape answered");
                Ok(true)
            }
            Err(e) => {
                warn!(error = %e, "collecting statistics for a scrape failed");
                respond(&mut stream, "500 Internal Server Error", TEXT, "", "statistics unavailable\n", head_only)?;
                Ok(false)
            }
        },
        Request::NotFound => {
            respond(&mut stream, "404 Not Found", TEXT, "", "only /metrics is served\n", false).map(|_| false)
        }
        Request::MethodNotAllowed => {
            respond(&mut stream, "405 Method Not Allowed", TEXT, "Allow: GET, HEAD\r\n", "GET /metrics\n", false)
                .map(|_| false)
        }
        Request::Bad(why) => {
            debug!(why, "bad request");
            respond(&mut stream, "400 Bad Request", TEXT, "", &format!("{why}\n"), false).map(|_| false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_strictly() {
        let om = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n";
        assert_eq!(parse(om.as_bytes()), Request::Metrics { head_only: false, openmetrics: true });
        let plain = "GET /metrics?x=1 HTTP/1.0\r\nAccept: text/plain\r\n\r\n";
        assert_eq!(parse(plain.as_bytes()), Request::Metrics { head_only: false, openmetrics: false });
        assert_eq!(parse(b"HEAD /metrics HTTP/1.1\r\n\r\n"), Request::Metrics { head_only: true, openmetrics: false });
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(parse(b"POST /metrics HTTP/1.1\r\n\r\n"), Request::MethodNotAllowed);
        assert!(matches!(parse(b"\x00\xff garbage\r\n\r\n"), Request::Bad(_)));
        assert!(matches!(parse(b"GET /metrics\r\n\r\n"), Request::Bad(_)));
    }

    #[test]
    fn non_loopback_needs_permission() {
        let addr: SocketAddr = "0.0.0.0:0".parse().expect("addr");
        assert!(matches!(Server::bind(addr, false), Err(ServeError::NotLoopback { .. })));
    }
}
