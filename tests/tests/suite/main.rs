//! The smoke tests: each module acts out one section of the README (or the
//! faults of SPEC.md) with the real binaries. They make one test program,
//! so that `cargo test` runs them all side by side: most of their time is
//! spent waiting for the examples, not computing.

mod acks;
mod allow;
mod bench;
mod cli;
mod disk;
mod faults;
mod fixtures;
mod flood;
mod mailbin;
mod pubsub;
mod reqrep;
mod shared;
mod store;
mod tour;
mod vsq;
