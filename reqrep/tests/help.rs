//! `--help` names every flag of this crate's programs. The smoke tests of
//! what the programs do are in the workspace's `tests` crate; cargo builds a
//! crate's programs before its own integration tests run, so this file also
//! has them built before those smoke tests start.

#[test]
fn help_lists_every_flag() {
    tests::assert_help_lists(
        "reqrep_server",
        "[PORT] --bind --delay --count --max-message-size --allow --version",
    );
    tests::assert_help_lists(
        "reqrep_client",
        "[PORT] --host --requests --timeout --max-message-size",
    );
}
