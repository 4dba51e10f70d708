//! What every example shares, as `zhelpers.h` does for the ZeroMQ Guide's
//! C examples. The map:
//!
//! - here: the original's ports, endpoint strings, socket set-up whose
//!   errors say what failed, and [`run`], the one `error: ...` exit (all);
//! - [`cli`]: flags several programs share (all);
//! - [`console`]: `say!` and `note!`, buffered stdout, one-line payloads (all);
//! - [`stop`]: Ctrl-C and SIGTERM as a flag that loops look at (all);
//! - [`poller`]: waiting on several sockets (reqrep_server, command, saver,
//!   mailbin), and `take`, which reads a whole message (those and computer);
//! - [`link`]: a connecting socket that says when its connection is lost,
//!   and a receive with a timeout (reqrep_client, sub_client, computer, and
//!   the outbox);
//! - [`outbox`]: what a PUSH socket may still hold at exit (computer, faker);
//! - [`store`]: the SQLite database of `--store` (saver, mailbin).
//!
//! A tutorial reader may skip the insides of the outbox and the store, and
//! the console's line stamps, which only the tour uses.

pub mod cli;
pub mod console;
pub mod link;
pub mod outbox;
pub mod poller;
pub mod stop;
#[cfg(feature = "store")]
pub mod store;

use std::net::ToSocketAddrs as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result, bail};

pub use link::{Link, Received};
pub use outbox::{Delivery, Outbox};
pub use poller::{Incoming, Poller, take};

/// Request-reply: the REP server listens here.
pub const REQREP_PORT: u16 = 5556;
/// Publish-subscribe: the weather publisher listens here.
pub const PUBSUB_PORT: u16 = 5556;
/// Voisietequi: `command` publishes configuration commands here.
pub const COMMAND_PORT: u16 = 5556;
/// Voisietequi: computers push their replies to commands here.
pub const REPLY_PORT: u16 = 5557;
/// Voisietequi: computers push their results to the saver here.
pub const SAVE_PORT: u16 = 5558;
/// Fake mail form: the mailbin collects form posts here.
pub const MAILBIN_PORT: u16 = 5558;

/// A TCP endpoint: `tcp("*", 5556)` to bind, `tcp("localhost", 5556)` to connect.
pub fn tcp(host: &str, port: u16) -> String {
    format!("tcp://{host}:{port}")
}

/// Creates a socket of `kind`. Its connections ping the peer every second
/// (ZMTP heartbeats) and give it up after 3 s of silence: a peer that
/// vanished without closing (a host down, a cable pulled) sends no FIN, and
/// TCP alone would notice nothing for minutes. (A bound socket gives no
/// peer up: see [`bind`].)
pub fn socket(context: &zmq::Context, kind: zmq::SocketType) -> Result<zmq::Socket> {
    let socket = context
        .socket(kind)
        .with_context(|| format!("cannot create a {kind:?} socket"))?;
    socket.set_heartbeat_ivl(1000)?;
    socket.set_heartbeat_timeout(3000)?;
    Ok(socket)
}

/// Creates a socket that receives, and refuses messages over
/// `--max-message-size`: no peer can make it allocate without bound
/// (libzmq drops the connection that sends one).
pub fn receiver(
    context: &zmq::Context,
    kind: zmq::SocketType,
    limit: &cli::ReceiveLimit,
) -> Result<zmq::Socket> {
    let socket = socket(context, kind)?;
    socket.set_maxmsgsize(limit.max_message_size)?;
    Ok(socket)
}

/// Binds `socket` to `endpoint`, saying which endpoint when that fails
/// (`cannot bind tcp://*:5556: Address already in use`).
///
/// Trap: a server that stops reading (its queue full behind a locked
/// store, a slow terminal) reads no heartbeat answers either. Were it to
/// give up the peers it no longer hears, it would drop their connections
/// and what they carried. So a bound socket gives no peer up: it keeps
/// pinging them, which tells them it is alive, and they, the side that
/// connects again, notice a dead link.
pub fn bind(socket: &zmq::Socket, endpoint: &str) -> Result<()> {
    socket.set_heartbeat_timeout(0)?;
    match socket.bind(endpoint) {
        // libzmq reads what is not an IP address as an interface's name:
        // it resolves no host names when binding (`localhost` included).
        Err(zmq::Error::ENODEV) => anyhow::bail!(
            "cannot bind {endpoint}: not an IP address, nor a network interface, of this machine (a bind takes no host names)"
        ),
        bound => bound.with_context(|| format!("cannot bind {endpoint}")),
    }
}

/// Sends one message, as `socket.send(message, flags)` does, but tries
/// again when a signal interrupted the call (the trap in [`stop`]): Ctrl-C
/// must not end a program with `error: Interrupted system call`, nor leave
/// a REP socket that never sent its reply, and so can never receive again.
pub fn send(socket: &zmq::Socket, message: &[u8], flags: i32) -> zmq::Result<()> {
    loop {
        match socket.send(message, flags) {
            Err(zmq::Error::EINTR) => {}
            sent => return sent,
        }
    }
}

/// Unbinds every endpoint `socket` is bound to, for a clean stop: peers can
/// no longer connect or send, while what reached its queue can still be read.
pub fn stop_accepting(socket: &zmq::Socket) -> Result<()> {
    // A wildcard (`tcp://*:5558`) is unbound by the address it resolved to.
    let endpoint = socket
        .get_last_endpoint()
        .context("cannot read the bound endpoint")?
        .map_err(|bytes| anyhow::anyhow!("bound to an endpoint that is not text: {bytes:?}"))?;
    socket
        .unbind(&endpoint)
        .with_context(|| format!("cannot unbind {endpoint}"))
}

/// Connects `socket` to `endpoint`. ZeroMQ connects in the background and
/// reconnects by itself, so a server that is not running yet is no error.
pub fn connect(socket: &zmq::Socket, endpoint: &str) -> Result<()> {
    match socket.connect(endpoint) {
        Ok(()) => {
            warn_if_unresolvable(endpoint);
            Ok(())
        }
        Err(zmq::Error::EINVAL) => {
            bail!("cannot connect to {endpoint}: not a host name or address, and a port")
        }
        Err(error) => Err(error).with_context(|| format!("cannot connect to {endpoint}")),
    }
}

/// Says once, on stderr, that a `tcp://` host name does not resolve:
/// ZeroMQ would keep trying it in silence, and a misspelt `--host` would
/// look like a server that does not answer.
fn warn_if_unresolvable(endpoint: &str) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let Some(address) = endpoint.strip_prefix("tcp://") else {
        return;
    };
    let resolves = address
        .to_socket_addrs()
        .is_ok_and(|mut found| found.next().is_some());
    if !resolves && !WARNED.swap(true, Ordering::Relaxed) {
        let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
        let program = program_name();
        note!("{program}: warning: cannot resolve host {host} (ZeroMQ keeps trying)");
    }
}

/// The name this program was started under (`reqrep_client`), which
/// starts the lines it writes on stderr about itself.
pub fn program_name() -> &'static str {
    static NAME: LazyLock<String> = LazyLock::new(|| {
        let argv0 = std::env::args_os().next().unwrap_or_default();
        match Path::new(&argv0).file_name() {
            Some(name) => name.to_string_lossy().into_owned(),
            None => "example".to_owned(),
        }
    });
    &NAME
}

/// Runs a program's body: installs the Ctrl-C/SIGTERM handler first, flushes
/// stdout last, and turns an error into one `error: ...` line and exit 1.
pub fn run(body: impl FnOnce() -> Result<ExitCode>) -> ExitCode {
    let outcome = stop::install().and_then(|()| body());
    console::flush();
    match outcome {
        Ok(code) => code,
        Err(error) => {
            console::note(format_args!("error: {error:#}"));
            ExitCode::FAILURE
        }
    }
}
