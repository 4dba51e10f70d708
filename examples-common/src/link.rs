//! Watching a client's connection. libzmq's socket monitor reports, as
//! messages on an inproc socket, when a connection is made (its handshake
//! done) or lost; a [`Link`] reads them and says on stderr when its
//! connection is lost and when it is made again.
//!
//! Trap: a message over a receiver's size limit (`ZMQ_MAXMSGSIZE`) is a
//! protocol error to libzmq: it drops the connection and, unlike after a
//! network error, never connects again. A SUB or REQ socket would wait for
//! ever: the link connects it again.

use std::net::ToSocketAddrs as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::Poller;

/// The connection of one connecting socket, watched through its monitor.
pub struct Link {
    pub(crate) endpoint: String,
    /// Who is at the other end, as the lines on stderr say it.
    pub(crate) peer: String,
    /// For a PUSH socket, what waits in its queue while the link is down
    /// (`results`).
    pub(crate) queued: Option<&'static str>,
    events: zmq::Socket,
    connected: bool,
    lost: bool,
    /// Whether a lost connection was made again since
    /// [`Link::reconnected`] last said so.
    again: bool,
}

/// How [`Link::wait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A message is waiting: receive it.
    Ready,
    /// The timeout passed with nothing to read.
    TimedOut,
    /// Ctrl-C or SIGTERM came.
    Stopped,
    /// The connection was lost and made again: a request sent before it may
    /// need sending again.
    Reconnected,
}

impl Link {
    /// Watches the connection `socket` is about to make to `endpoint`:
    /// call it before `socket.connect(endpoint)`, so that the first
    /// handshake is seen too.
    pub fn watch(context: &zmq::Context, socket: &zmq::Socket, endpoint: &str) -> Result<Link> {
        let watched = zmq::SocketEvent::HANDSHAKE_SUCCEEDED.to_raw()
            | zmq::SocketEvent::DISCONNECTED.to_raw();
        let events = monitor(context, socket, watched)?;
        warn_if_unresolvable(endpoint);
        Ok(Link {
            endpoint: endpoint.to_owned(),
            peer: endpoint.to_owned(),
            queued: None,
            events,
            connected: false,
            lost: false,
            again: false,
        })
    }

    /// True while the connection is up (its handshake done).
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// True once after a lost connection was made again: what was on the
    /// old one may be lost.
    pub fn reconnected(&mut self) -> bool {
        std::mem::take(&mut self.again)
    }

    /// Reads the monitor's news about the receiving `socket`, without
    /// waiting. Says when the connection is lost (and connects it again)
    /// or made again. True if a connection was made since the last check,
    /// even one lost again since.
    pub fn check(&mut self, socket: &zmq::Socket) -> Result<bool> {
        self.read_events(Some(socket))
    }

    /// Like [`Link::check`], for a socket that sends: what it sends waits
    /// in its queue while the connection is down, and libzmq connects
    /// again by itself.
    pub(crate) fn check_sender(&mut self) -> Result<bool> {
        self.read_events(None)
    }

    fn read_events(&mut self, receiver: Option<&zmq::Socket>) -> Result<bool> {
        let mut made = false;
        while let Some((event, _)) = next_event(&self.events)? {
            let program = crate::program_name();
            let peer = &self.peer;
            if event == zmq::SocketEvent::HANDSHAKE_SUCCEEDED {
                if std::mem::take(&mut self.lost) {
                    crate::note!("{program}: connected to {peer} again");
                    self.again = true;
                }
                (self.connected, made) = (true, true);
                continue;
            }
            (self.connected, self.lost) = (false, true);
            let Some(socket) = receiver else {
                let what = self.queued.unwrap_or("messages");
                crate::note!(
                    "{program}: lost the connection to {peer}; {what} wait in the queue until it is back"
                );
                continue;
            };
            let limit = socket.get_maxmsgsize().unwrap_or(-1);
            crate::note!(
                "{program}: lost the connection to {peer} (the peer went away, or sent a message over {limit} bytes); connecting again"
            );
            // libzmq may be connecting again already (after a network
            // error) or not (after a protocol error): start over.
            match socket.disconnect(&self.endpoint) {
                Ok(()) | Err(zmq::Error::ENOENT) => {}
                Err(error) => return Err(error).context("cannot disconnect"),
            }
            socket
                .connect(&self.endpoint)
                .with_context(|| format!("cannot connect to {}", self.endpoint))?;
        }
        Ok(made)
    }

    /// Waits until `socket` has a message to receive, as a blocking `recv`
    /// would, but gives up after `timeout` (`None`: never), on Ctrl-C, and
    /// when a lost connection was made again.
    pub fn wait(&mut self, socket: &zmq::Socket, timeout: Option<Duration>) -> Result<Wait> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        loop {
            let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            let mut poller = Poller::new();
            let message = poller.register(socket);
            poller.register(&self.events);
            let woke = poller.poll(left)?;
            if woke && poller.is_readable(message) {
                return Ok(Wait::Ready);
            }
            self.check(socket)?;
            if self.reconnected() {
                return Ok(Wait::Reconnected);
            }
            if !woke {
                return Ok(match crate::stop::requested() {
                    true => Wait::Stopped,
                    false => Wait::TimedOut,
                });
            }
        }
    }
}

/// Starts libzmq's monitor of `socket` for `events` (a mask of
/// [`zmq::SocketEvent`]s): returns the socket its events come on.
pub(crate) fn monitor(
    context: &zmq::Context,
    socket: &zmq::Socket,
    events: u16,
) -> Result<zmq::Socket> {
    static MONITORS: AtomicUsize = AtomicUsize::new(0);
    let endpoint = format!(
        "inproc://monitor-{}",
        MONITORS.fetch_add(1, Ordering::Relaxed)
    );
    socket
        .monitor(&endpoint, i32::from(events))
        .context("cannot monitor a socket")?;
    let monitor = context.socket(zmq::PAIR).context("cannot create a socket for a monitor")?;
    monitor.set_linger(0)?;
    monitor.connect(&endpoint).context("cannot read a socket's events")?;
    Ok(monitor)
}

/// The next event waiting on a `monitor`, without waiting: the event and
/// its value (an errno, a file descriptor); None when none waits.
pub(crate) fn next_event(monitor: &zmq::Socket) -> Result<Option<(zmq::SocketEvent, u32)>> {
    loop {
        let frames = match monitor.recv_multipart(zmq::DONTWAIT) {
            Ok(frames) => frames,
            Err(zmq::Error::EAGAIN) => return Ok(None),
            Err(error) => return Err(error).context("cannot read a socket's events"),
        };
        // An event is two frames: 2 bytes of event number and 4 of value,
        // then the peer's endpoint.
        if let Some(&[low, high, a, b, c, d]) = frames.first().and_then(|frame| frame.get(..6)) {
            let event = zmq::SocketEvent::from_raw(u16::from_ne_bytes([low, high]));
            return Ok(Some((event, u32::from_ne_bytes([a, b, c, d]))));
        }
    }
}

/// Says once, on stderr, that a `tcp://` host name does not resolve:
/// ZeroMQ would keep trying it in silence, and a misspelt `--host` would
/// look like a server that does not answer. (A host that is no host name
/// at all, `bad host!`, is for `connect` to refuse.)
fn warn_if_unresolvable(endpoint: &str) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let Some(address) = endpoint.strip_prefix("tcp://") else {
        return;
    };
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    let name_like = host
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || b".-_[]:".contains(&byte));
    if !name_like {
        return;
    }
    let resolves = address.to_socket_addrs().is_ok_and(|mut found| found.next().is_some());
    if !resolves && !WARNED.swap(true, Ordering::Relaxed) {
        let program = crate::program_name();
        crate::note!("{program}: warning: cannot resolve host {host} (ZeroMQ keeps trying)");
    }
}
