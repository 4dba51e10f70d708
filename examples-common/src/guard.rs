//! The guard of a server's sockets: who may connect (`--allow`), and the
//! server's open files. A tutorial reader may skip it.
//!
//! Strawhouse, from the ZeroMQ Guide's security chapter. ZeroMQ asks a ZAP
//! handler (its authentication protocol, a REP socket on
//! `inproc://zeromq.zap.01`) about every peer that greets a socket with a
//! ZAP domain. With `--allow`, the guard is that handler: it answers 200
//! for an address on the list and 400 for any other, and says each refused
//! address once on stderr. libzmq then closes the refused connection before
//! a message of it reaches the program. Without `--allow`, as the
//! original, anyone may connect and no one is asked about.
//!
//! What it does not do: encrypt, nor tell one process from another on an
//! allowed host (CURVE would, with a libzmq built with libsodium, which the
//! bundled one is not). A peer that connects and never greets is asked
//! nothing: the handshake timeout drops it.
//!
//! Trap: every connection holds a file descriptor, and at the process's
//! limit libzmq can accept no one: a client waits, and nothing says why.
//! [`raise_open_files_limit`] lifts the limit as high as the system lets
//! it, at start; the guard watches each socket's accepts (its monitor) and
//! says on stderr when the server is at the limit.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result};
use ipnet::IpNet;
use nix::sys::resource::{Resource, getrlimit, setrlimit};

use crate::{cli, note, program_name};

/// Where libzmq sends its ZAP requests (RFC 27).
const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";

/// The ZAP domain of every guarded socket: it only has to be set.
const DOMAIN: &str = "examples";

/// How long a peer has to greet after it connects before it is dropped:
/// long for a greeting (two round trips), short for a connection that
/// holds a file for nothing.
const HANDSHAKE: Duration = Duration::from_secs(2);

/// How many refused addresses are said one by one, at most.
const SAID_AT_MOST: usize = 1000;

/// The guard of a server's sockets: its thread, and what it lets in.
pub struct Guard {
    context: zmq::Context,
    allowed: Arc<[IpNet]>,
    /// The monitors of the sockets it guards, for its thread.
    monitors: Sender<zmq::Socket>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Guard {
    /// Starts the guard on `context`, before any socket is bound: with
    /// `--allow`, the ZAP handler is in place before the first peer
    /// greets. Dropped after the sockets it guards (declare it first).
    pub fn start(context: &zmq::Context, allow: &cli::Allow) -> Result<Guard> {
        let allowed: Arc<[IpNet]> = allow.allow.clone().into();
        let handler = match allowed.is_empty() {
            true => None,
            false => {
                let handler =
                    context.socket(zmq::REP).context("cannot create the ZAP handler's socket")?;
                handler.set_linger(0)?;
                handler.bind(ZAP_ENDPOINT).context("cannot start the ZAP handler")?;
                Some(handler)
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (monitors, new_monitors) = std::sync::mpsc::channel();
        let watch = Watch {
            allowed: Arc::clone(&allowed),
            stop: Arc::clone(&stop),
            refused: HashSet::new(),
            at_limit: false,
        };
        let thread = std::thread::Builder::new()
            .name("guard".to_owned())
            .spawn(move || watch.run(handler, &new_monitors))
            .context("cannot start the guard's thread")?;
        Ok(Guard {
            context: context.clone(),
            allowed,
            monitors,
            stop,
            thread: Some(thread),
        })
    }

    /// Puts a socket the server binds under the guard: a peer must greet
    /// within the handshake timeout, and, with `--allow`, come from an
    /// allowed address. Call it before `socket.bind(...)`.
    pub fn protect(&self, socket: &zmq::Socket) -> Result<()> {
        socket.set_handshake_ivl(HANDSHAKE.as_millis() as i32)?;
        if !self.allowed.is_empty() {
            socket.set_zap_domain(DOMAIN)?;
        }
        // Its accepts, watched from the guard's thread.
        let watched =
            zmq::SocketEvent::ACCEPTED.to_raw() | zmq::SocketEvent::ACCEPT_FAILED.to_raw();
        let monitor = crate::link::monitor(&self.context, socket, watched)?;
        self.monitors
            .send(monitor)
            .map_err(|_| anyhow::anyhow!("the guard's thread has stopped"))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the guard's thread keeps.
struct Watch {
    allowed: Arc<[IpNet]>,
    stop: Arc<AtomicBool>,
    /// The refused addresses said so far.
    refused: HashSet<IpAddr>,
    at_limit: bool,
}

impl Watch {
    fn run(mut self, handler: Option<zmq::Socket>, new_monitors: &Receiver<zmq::Socket>) {
        let mut monitors = Vec::new();
        let mut broken = false;
        while !self.stop.load(Ordering::SeqCst) {
            monitors.extend(new_monitors.try_iter());
            let mut items: Vec<zmq::PollItem> = handler
                .iter()
                .filter(|_| !broken)
                .chain(&monitors)
                .map(|socket| socket.as_poll_item(zmq::POLLIN))
                .collect();
            let slice = crate::stop::SLICE.as_millis() as i64;
            match zmq::poll(&mut items, slice) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(_) => {
                    std::thread::sleep(crate::stop::SLICE);
                    continue;
                }
            }
            if let (Some(handler), false) = (&handler, broken) {
                if let Err(error) = self.answer(handler) {
                    // Its socket stays, unanswered: a peer then waits, and
                    // is dropped at the handshake timeout, where with no
                    // handler at all libzmq would let it in unasked.
                    let program = program_name();
                    note!("{program}: the ZAP handler stopped, and lets no one in: {error:#}");
                    broken = true;
                }
            }
            for monitor in &monitors {
                self.read_accepts(monitor);
            }
        }
    }

    /// Answers the ZAP requests waiting.
    fn answer(&mut self, handler: &zmq::Socket) -> Result<()> {
        while let Ok(request) = handler.recv_multipart(zmq::DONTWAIT) {
            // version, request id, domain, address, identity, mechanism...
            let address = request.get(3).and_then(|frame| std::str::from_utf8(frame).ok());
            let status: &[u8] = match address.and_then(|text| text.parse::<IpAddr>().ok()) {
                Some(address) if self.allows(address) => b"200",
                Some(address) => {
                    self.say_refused(address);
                    b"400"
                }
                None => b"400",
            };
            let id: &[u8] = request.get(1).map_or(b"", Vec::as_slice);
            let reply: [&[u8]; 6] = [b"1.0", id, status, b"", b"", b""];
            handler.send_multipart(reply, 0).context("cannot answer a ZAP request")?;
        }
        Ok(())
    }

    fn allows(&self, address: IpAddr) -> bool {
        // An IPv4 peer of an IPv6 socket comes as ::ffff:a.b.c.d.
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        self.allowed.iter().any(|net| net.contains(&address))
    }

    fn say_refused(&mut self, address: IpAddr) {
        let program = program_name();
        if self.refused.len() < SAID_AT_MOST && self.refused.insert(address) {
            note!("{program}: refused a connection from {address}: not allowed (--allow)");
            if self.refused.len() == SAID_AT_MOST {
                note!("{program}: more refused addresses are not said, one by one");
            }
        }
    }

    /// Reads a socket's accepts: says once when one failed for want of
    /// files, and once more when it comes back to that after an accept.
    fn read_accepts(&mut self, monitor: &zmq::Socket) {
        // (An error here ends the watch of this socket's accepts, not the
        // program.)
        while let Ok(Some((event, errno))) = crate::link::next_event(monitor) {
            if event == zmq::SocketEvent::ACCEPTED {
                self.at_limit = false;
                continue;
            }
            let out_of_files = [nix::errno::Errno::EMFILE, nix::errno::Errno::ENFILE]
                .contains(&nix::errno::Errno::from_raw(errno as i32));
            if out_of_files && !self.at_limit {
                let limit = getrlimit(Resource::RLIMIT_NOFILE).map_or(0, |(soft, _)| soft);
                note!(
                    "{}: at its limit of {limit} open files: a new connection waits until another closes",
                    program_name()
                );
                self.at_limit = true;
            }
        }
    }
}

/// Raises this process's limit of open files to the most the system
/// allows it (the hard limit): each connection holds one.
pub fn raise_open_files_limit() {
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}
