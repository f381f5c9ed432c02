//! `fotovakt serve-metrics`: a deliberately small HTTP/1.x server for Prometheus scrapes.
//! `GET /metrics` (or `HEAD`) answers the statistics, collected afresh per scrape, as
//! OpenMetrics when the `Accept` header asks for it and as the classic text format otherwise;
//! every other path is 404. One connection, one request; requests are bounded in size and
//! time, and a bad one is answered (or dropped) without stopping the server. Connections are
//! served concurrently by one thread over non-blocking sockets, each with its own deadline,
//! and their number is bounded, so silent or slow clients delay nobody else's scrape and
//! cannot use up memory, descriptors or threads. It listens on loopback only unless the
//! caller allows a remote address.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use tracing::{debug, info, warn};

use crate::stats::{self, Stats};

/// The most bytes of request head the server reads.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// How long a client may take, from connecting, to send its request and read the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The most connections open at once; a new one past this closes the oldest (the one most
/// likely to be idle), so a flood of silent clients cannot lock scrapes out.
pub const MAX_CONNECTIONS: usize = 256;
/// How often the loop looks at the stop flag when nothing happens.
const TICK: Duration = Duration::from_millis(100);
const LISTENER: Token = Token(0);

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
    listener: std::net::TcpListener,
}

/// What one request asked for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Metrics { head_only: bool, openmetrics: bool },
    NotFound,
    MethodNotAllowed,
    Bad(&'static str),
}

/// One open connection: reading its request head, then writing the answer, all before
/// `deadline`.
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    deadline: Instant,
    state: State,
}

enum State {
    Reading(Vec<u8>),
    Writing { out: Vec<u8>, sent: usize, scrape: bool },
}

/// What driving a connection as far as it goes without blocking came to.
enum Step {
    /// Waits for the client (more request, or room to write).
    Pending,
    /// Answered; `true` when it was a metrics scrape. The connection is closed.
    Done(bool),
}

impl Server {
    /// Bind `addr`; a non-loopback address only with `allow_remote`.
    pub fn bind(addr: SocketAddr, allow_remote: bool) -> Result<Server, ServeError> {
        if !addr.ip().is_loopback() && !allow_remote {
            return Err(ServeError::NotLoopback { addr });
        }
        let listener = std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr, source })?;
        listener.set_nonblocking(true)?;
        Ok(Server { listener })
    }

    /// The address actually bound (port 0 picks a free one).
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        Ok(self.listener.local_addr()?)
    }

    /// Serve until `stop` is set; `collect` takes fresh numbers for each scrape. Returns how
    /// many scrapes were answered.
    ///
    /// One thread, non-blocking sockets (mio): every connection is read and written as far as
    /// it goes without waiting, so a client that sends nothing, or reads nothing, holds only
    /// its own socket until its [`IO_TIMEOUT`] runs out, never the others' scrapes.
    pub fn run<E: std::fmt::Display>(
        &self,
        stop: &AtomicBool,
        mut collect: impl FnMut() -> Result<Stats, E>,
    ) -> Result<u64, ServeError> {
        info!(addr = %self.local_addr()?, "serving metrics at /metrics");
        let mut poll = Poll::new()?;
        let mut listener = mio::net::TcpListener::from_std(self.listener.try_clone()?);
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let mut events = Events::with_capacity(256);
        // Keyed by arrival order, so the first entry is the oldest connection.
        let mut conns: BTreeMap<usize, Conn> = BTreeMap::new();
        let mut next = LISTENER.0 + 1;
        let mut scrapes = 0;
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let timeout = conns.values().map(|c| c.deadline.saturating_duration_since(now)).min().unwrap_or(TICK);
            if let Err(e) = poll.poll(&mut events, Some(timeout.min(TICK))) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            for event in events.iter() {
                if event.token() == LISTENER {
                    accept_all(&listener, &poll, &mut conns, &mut next);
                    continue;
                }
                let key = event.token().0;
                let Some(conn) = conns.get_mut(&key) else { continue };
                match drive(conn, &poll, Token(key), &mut collect) {
                    Ok(Step::Pending) => {}
                    Ok(Step::Done(served)) => {
                        scrapes += u64::from(served);
                        close(&poll, conns.remove(&key));
                    }
                    Err(e) => {
                        debug!(peer = %conn.peer, error = %e, "metrics connection ended early");
                        close(&poll, conns.remove(&key));
                    }
                }
            }
            let now = Instant::now();
            let expired: Vec<usize> = conns.iter().filter(|(_, c)| c.deadline <= now).map(|(k, _)| *k).collect();
            for key in expired {
                if let Some(c) = conns.get(&key) {
                    debug!(peer = %c.peer, "metrics connection timed out");
                }
                close(&poll, conns.remove(&key));
            }
        }
        info!(scrapes, "metrics server stopped");
        Ok(scrapes)
    }
}

/// Take every connection waiting to be accepted; past [`MAX_CONNECTIONS`] the oldest goes.
fn accept_all(listener: &mio::net::TcpListener, poll: &Poll, conns: &mut BTreeMap<usize, Conn>, next: &mut usize) {
    loop {
        match listener.accept() {
            Ok((mut stream, peer)) => {
                if conns.len() >= MAX_CONNECTIONS {
                    if let Some((&oldest, _)) = conns.iter().next() {
                        debug!(max = MAX_CONNECTIONS, "too many metrics connections; closing the oldest");
                        close(poll, conns.remove(&oldest));
                    }
                }
                let key = *next;
                *next += 1;
                if let Err(e) = poll.registry().register(&mut stream, Token(key), Interest::READABLE) {
                    warn!(error = %e, "cannot watch a metrics connection; closed");
                    continue;
                }
                let deadline = Instant::now() + IO_TIMEOUT;
                conns.insert(key, Conn { stream, peer, deadline, state: State::Reading(Vec::with_capacity(1024)) });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted) => {}
            Err(e) => {
                // Out of descriptors and the like: keep the open ones, try again next round.
                warn!(error = %e, "accept failed");
                return;
            }
        }
    }
}

fn close(poll: &Poll, conn: Option<Conn>) {
    if let Some(mut c) = conn {
        let _ = poll.registry().deregister(&mut c.stream);
    }
}

/// Is the request head complete (a blank line seen)?
fn head_complete(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n")
}

/// Read the request head (up to the blank line, at most [`MAX_REQUEST_BYTES`]), answer it,
/// and write the answer, each as far as it goes without blocking.
fn drive<E: std::fmt::Display>(
    conn: &mut Conn,
    poll: &Poll,
    token: Token,
    collect: &mut impl FnMut() -> Result<Stats, E>,
) -> io::Result<Step> {
    if let State::Reading(buf) = &mut conn.state {
        let mut chunk = [0u8; 1024];
        loop {
            if head_complete(buf) || buf.len() >= MAX_REQUEST_BYTES {
                break;
            }
            match conn.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Pending),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let head = (head_complete(buf) || buf.len() < MAX_REQUEST_BYTES).then_some(&buf[..]);
        let (out, scrape) = answer(head, collect);
        conn.state = State::Writing { out, sent: 0, scrape };
        poll.registry().reregister(&mut conn.stream, token, Interest::WRITABLE)?;
    }
    if let State::Writing { out, sent, scrape } = &mut conn.state {
        while *sent < out.len() {
            match conn.stream.write(&out[*sent..]) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => *sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Pending),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(Step::Done(*scrape));
    }
    Ok(Step::Pending)
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

fn response(status: &str, content_type: &str, extra: &str, body: &str, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// The answer to one request head (`None`: too large); `true` when it is a metrics scrape.
fn answer<E: std::fmt::Display>(
    head: Option<&[u8]>,
    collect: &mut impl FnMut() -> Result<Stats, E>,
) -> (Vec<u8>, bool) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let Some(head) = head else {
        return (response("431 Request Header Fields Too Large", TEXT, "", "request too large\n", false), false);
    };
    match parse(head) {
        Request::Metrics { head_only, openmetrics } => match collect() {
            Ok(s) => {
                let (body, ct) = if openmetrics {
                    (stats::openmetrics(&s), stats::OPENMETRICS_CONTENT_TYPE)
                } else {
                    (stats::prometheus_text(&s), stats::PROMETHEUS_TEXT_CONTENT_TYPE)
                };
                debug!(openmetrics, bytes = body.len(), "scrape answered");
                (response("200 OK", ct, "", &body, head_only), true)
            }
            Err(e) => {
                warn!(error = %e, "collecting statistics for a scrape failed");
                (response("500 Internal Server Error", TEXT, "", "statistics unavailable\n", head_only), false)
            }
        },
        Request::NotFound => (response("404 Not Found", TEXT, "", "only /metrics is served\n", false), false),
        Request::MethodNotAllowed => {
            (response("405 Method Not Allowed", TEXT, "Allow: GET, HEAD\r\n", "GET /metrics\n", false), false)
        }
        Request::Bad(why) => {
            debug!(why, "bad request");
            (response("400 Bad Request", TEXT, "", &format!("{why}\n"), false), false)
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
