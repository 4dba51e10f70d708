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
pub mod guard;
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

pub use guard::Guard;
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

/// Sets up a socket that a client connects (REQ, SUB, PUSH): how its
/// connection is watched (see [`heartbeats`]).
pub fn set_up_client(socket: &zmq::Socket) -> Result<()> {
    heartbeats(socket)
}

/// Sets up a socket that a server binds (REP, PUB, PULL): how its
/// connections are watched (see [`heartbeats`]), and who may make one
/// (`--allow`, see [`Guard`]).
pub fn set_up_server(socket: &zmq::Socket, guard: &Guard) -> Result<()> {
    heartbeats(socket)?;
    guard.protect(socket)
}

/// ZMTP heartbeats: the side of a connection that pings sends a PING every
/// second and gives the connection up after 3 s without an answer (it
/// connects again, if it is the client); with its pings goes a TTL, the
/// time after which its peer gives it up if it hears nothing. A peer that
/// vanished without closing (a host down, a cable pulled) sends no FIN,
/// and TCP alone would notice nothing for minutes.
///
/// Trap: libzmq 4.3.4 aborts (zeromq/libzmq#4841) when a socket pings over
/// a connection whose reader has stopped (its queue full behind a locked
/// store, a stdout nobody reads) and whose peer has gone. So a socket the
/// program reads a stream from (PULL, SUB, REP) never pings: its peer,
/// which only sends (PUSH, PUB, XPUB) or waits for one reply (REQ), pings
/// it, and it answers while it reads.
fn heartbeats(socket: &zmq::Socket) -> Result<()> {
    let ttl = match socket.get_socket_type()? {
        // A client's server lets it go after a minute without a word.
        zmq::PUSH | zmq::REQ => 60_000,
        // A subscriber lets its publisher go after 3 s without a word.
        zmq::PUB | zmq::XPUB => 3000,
        _ => return Ok(()),
    };
    socket.set_heartbeat_ivl(1000)?;
    socket.set_heartbeat_timeout(3000)?;
    socket.set_heartbeat_ttl(ttl)?;
    Ok(())
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

/// Runs a program's body: lifts its limit of open files and installs the
/// Ctrl-C/SIGTERM handling first, flushes stdout last, and turns an error
/// into one `error: ...` line and exit 1.
pub fn run(body: impl FnOnce() -> Result<ExitCode>) -> ExitCode {
    guard::raise_open_files_limit();
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
