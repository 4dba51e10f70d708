//! The computer's exit: what the main task leaves behind, the wait for
//! what is still queued, and the summary. A tutorial reader may skip it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use examples_common::{Delivery, Outbox, console, note};

use crate::Args;

/// What the main task did: how many results it computed, its socket and
/// the outbox that counts what the socket may still hold, and, with
/// --ack-port, how many results were never acknowledged.
pub struct Computed {
    pub results: u64,
    pub save_sender: zmq::Socket,
    pub outbox: Outbox,
    pub unacknowledged: Option<u64>,
}

/// Waits for the results still queued for a saver, deliberately, or drops
/// them and says how many; then says what the computer did and picks the
/// exit code.
pub fn finish(
    args: &Args,
    unit: u16,
    context: zmq::Context,
    computed: Computed,
    answered: u64,
) -> Result<ExitCode> {
    let Computed {
        results,
        save_sender,
        outbox,
        unacknowledged,
    } = computed;
    // With acknowledgements that wait is over already.
    let linger = match unacknowledged {
        Some(0) | None => args.linger,
        Some(_) => Some(Duration::ZERO),
    };
    let delivery = outbox.finish(save_sender, context, linger)?;
    let acknowledged = match unacknowledged {
        Some(unacknowledged) => format!(", {} acknowledged", results - unacknowledged),
        None => String::new(),
    };
    note!(
        "computer: unit {unit} computed {}, answered {}{acknowledged}",
        console::count(results, ["result", "results"]),
        console::count(answered, ["command", "commands"])
    );
    match (unacknowledged, delivery) {
        (Some(0), _) | (None, Delivery::Sent) => Ok(ExitCode::SUCCESS),
        (Some(unacknowledged), _) => {
            let unacknowledged = console::count(unacknowledged, ["result", "results"]);
            note!("computer: {unacknowledged} not acknowledged");
            Ok(ExitCode::FAILURE)
        }
        (None, Delivery::Dropped(dropped)) => {
            note!("computer: {dropped}");
            Ok(ExitCode::FAILURE)
        }
    }
}
