//! A TCP relay between a program and its peer, on 127.0.0.1, that a test
//! can freeze (a silent partition: nothing passes, nothing is closed, as
//! when a host vanishes) and cut (every connection closed at once). Faults
//! of the network, without root.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How often the relay's threads look at what the test asked.
const TICK: Duration = Duration::from_millis(5);

#[derive(Default)]
struct Switches {
    frozen: AtomicBool,
    /// Bumped by [`Relay::cut`]: connections of an older generation close.
    generation: AtomicU64,
    closed: AtomicBool,
}

/// Relays every connection made to [`Relay::port`] to a target port.
pub struct Relay {
    port: u16,
    switches: Arc<Switches>,
}

impl Relay {
    /// Listens on a free port, and relays to `target` on 127.0.0.1.
    pub fn start(target: u16) -> Relay {
        Relay::listen(target, None)
    }

    /// A relay whose connections take in only a few KiB at a time: frozen,
    /// it holds up what is sent to it almost at once, and the kernel
    /// cannot make room for more later (as it may for a stopped process,
    /// whose receive buffers it compacts under memory pressure).
    pub fn narrow(target: u16) -> Relay {
        Relay::listen(target, Some(4096))
    }

    fn listen(target: u16, receive_buffer: Option<usize>) -> Relay {
        let port = crate::free_port();
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|error| panic!("the relay cannot listen on {port}: {error}"));
        if let Some(bytes) = receive_buffer {
            // Accepted connections take the listener's buffer size.
            nix::sys::socket::setsockopt(&listener, nix::sys::socket::sockopt::RcvBuf, &bytes)
                .unwrap_or_else(|error| panic!("the relay cannot set its buffer: {error}"));
        }
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|error| panic!("the relay cannot listen: {error}"));
        let switches = Arc::new(Switches::default());
        let shared = Arc::clone(&switches);
        std::thread::spawn(move || accept(&listener, target, &shared));
        Relay { port, switches }
    }

    /// The port programs connect to instead of the target's.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Nothing passes from now on, and nothing is closed.
    pub fn freeze(&self) {
        self.switches.frozen.store(true, Ordering::SeqCst);
    }

    /// Traffic passes again.
    pub fn thaw(&self) {
        self.switches.frozen.store(false, Ordering::SeqCst);
    }

    /// Closes every connection made so far; new ones may come.
    pub fn cut(&self) {
        self.switches.generation.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.switches.closed.store(true, Ordering::SeqCst);
        self.cut();
    }
}

fn accept(listener: &TcpListener, target: u16, switches: &Arc<Switches>) {
    while !switches.closed.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(TICK);
                continue;
            }
            Err(_) => return,
        };
        // A frozen network lets no new connection through either.
        while switches.frozen.load(Ordering::SeqCst) && !switches.closed.load(Ordering::SeqCst) {
            std::thread::sleep(TICK);
        }
        let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
            continue;
        };
        let generation = switches.generation.load(Ordering::SeqCst);
        for (from, to) in [(&client, &server), (&server, &client)] {
            let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) else {
                continue;
            };
            let switches = Arc::clone(switches);
            std::thread::spawn(move || pump(from, to, generation, &switches));
        }
    }
}

/// Copies bytes one way until either side closes or the connection is cut.
fn pump(mut from: TcpStream, mut to: TcpStream, generation: u64, switches: &Switches) {
    let _ = from.set_read_timeout(Some(TICK));
    let mut buffer = vec![0; 64 * 1024];
    loop {
        if switches.generation.load(Ordering::SeqCst) != generation {
            // Cut: reset both sides, as a dead link's timeout would.
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
        if switches.frozen.load(Ordering::SeqCst) {
            std::thread::sleep(TICK);
            continue;
        }
        match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => {
                if to.write_all(&buffer[..read]).is_err() {
                    break;
                }
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
