//! What every example shares, as `zhelpers.h` does for the ZeroMQ Guide's
//! C examples. The map:
//!
//! What a learner reads:
//! - here: the original's ports, endpoint strings, the set-up of a
//!   server's and a client's socket, the errors of `bind` and `connect`
//!   that say which endpoint failed, and [`run`], the one `error: ...` exit;
//! - [`poller`]: waiting on several sockets, as pyzmq's `zmq.Poller`, and
//!   [`frames`], which counts the frames of a message;
//! - [`console`]: `say!` (`println!`, buffered) and `note!` (`eprintln!`).
//!
//! The hardening, which a learner may skip: each module says the trap it
//! handles, and each program calls it in one line from its flow.
//! - [`stop`]: Ctrl-C and SIGTERM as a flag that loops look at (all);
//! - [`cli`]: flags several programs share, and how they are parsed (all);
//! - [`link`]: watches a client's connection, says when it is lost, and
//!   connects a receiver again after an oversized message (reqrep_client,
//!   sub_client, computer, and the outbox);
//! - [`outbox`]: counts what a PUSH socket may still hold at exit
//!   (computer, faker);
//! - [`store`]: the SQLite database of `--store` (saver, mailbin).

pub mod cli;
pub mod console;
pub mod link;
pub mod outbox;
pub mod poller;
pub mod stop;
#[cfg(feature = "store")]
pub mod store;

use std::path::Path;
use std::process::ExitCode;
use std::sync::LazyLock;

use anyhow::{Context as _, Result, anyhow};

pub use link::{Link, Wait};
pub use outbox::{Delivery, Outbox};
pub use poller::{Incoming, Poller, frames};

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

/// Creates a socket of `kind` that a client connects (REQ, SUB, PUSH).
/// Its connection pings the server every second (ZMTP heartbeats) and
/// gives it up after 3 s of silence: a server that vanished without
/// closing (a host down, a cable pulled) sends no FIN, and TCP alone would
/// notice nothing for minutes. libzmq then connects again by itself.
pub fn client_socket(context: &zmq::Context, kind: zmq::SocketType) -> Result<zmq::Socket> {
    let socket = new_socket(context, kind)?;
    socket.set_heartbeat_ivl(1000)?;
    socket.set_heartbeat_timeout(3000)?;
    Ok(socket)
}

/// Creates a socket of `kind` that a server binds (REP, PUB, PULL).
///
/// Trap: a server that stops reading (its queue full behind a locked
/// store, a slow terminal) reads no heartbeat answers either. Were it to
/// give up the clients it no longer hears, it would drop their connections
/// and what they carried. So a server gives no client up: it keeps pinging
/// them, which tells them it is alive, and they, the side that connects
/// again, notice a dead link.
pub fn server_socket(context: &zmq::Context, kind: zmq::SocketType) -> Result<zmq::Socket> {
    let socket = new_socket(context, kind)?;
    socket.set_heartbeat_ivl(1000)?;
    socket.set_heartbeat_timeout(0)?;
    Ok(socket)
}

fn new_socket(context: &zmq::Context, kind: zmq::SocketType) -> Result<zmq::Socket> {
    context.socket(kind).with_context(|| format!("cannot create a {kind:?} socket"))
}

/// The error of `socket.bind(endpoint)`, saying which endpoint failed
/// (`cannot bind tcp://*:5556: Address already in use`):
/// `socket.bind(&endpoint).map_err(cannot_bind(&endpoint))?`.
pub fn cannot_bind(endpoint: &str) -> impl FnOnce(zmq::Error) -> anyhow::Error + '_ {
    move |error| match error {
        // libzmq reads what is not an IP address as an interface's name:
        // it resolves no host names when binding (`localhost` included).
        zmq::Error::ENODEV => anyhow!(
            "cannot bind {endpoint}: not an IP address, nor a network interface, of this machine (a bind takes no host names)"
        ),
        error => anyhow!("cannot bind {endpoint}: {error}"),
    }
}

/// The error of `socket.connect(endpoint)`, saying which endpoint failed.
/// (A server that is not running yet is no error: ZeroMQ connects in the
/// background, and again whenever the connection is lost.)
pub fn cannot_connect(endpoint: &str) -> impl FnOnce(zmq::Error) -> anyhow::Error + '_ {
    move |error| match error {
        zmq::Error::EINVAL => {
            anyhow!("cannot connect to {endpoint}: not a host name or address, and a port")
        }
        error => anyhow!("cannot connect to {endpoint}: {error}"),
    }
}

/// Unbinds every endpoint `socket` is bound to, for a clean stop: peers can
/// no longer connect or send, while what reached its queue can still be read.
pub fn stop_accepting(socket: &zmq::Socket) -> Result<()> {
    // A wildcard (`tcp://*:5558`) is unbound by the address it resolved to.
    let endpoint = socket
        .get_last_endpoint()
        .context("cannot read the bound endpoint")?
        .map_err(|bytes| anyhow!("bound to an endpoint that is not text: {bytes:?}"))?;
    socket.unbind(&endpoint).with_context(|| format!("cannot unbind {endpoint}"))
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

/// Runs a program's body: installs the Ctrl-C/SIGTERM handling first,
/// flushes stdout last, and turns an error into one `error: ...` line and
/// exit 1.
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
