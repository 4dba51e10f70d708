//! `--help` names every flag of this crate's programs. The smoke tests of
//! what the programs do are in the workspace's `tests` crate; cargo builds a
//! crate's programs before its own integration tests run, so this file also
//! has them built before those smoke tests start.

#[test]
fn help_lists_every_flag() {
    tests::assert_help_lists(
        "command",
        "--pub-port --reply-port --bind --topic --response-channel --settle --quiet-after --expect --timeout --max-message-size --allow",
    );
    tests::assert_help_lists(
        "computer",
        "--server-host --cmd-port --reply-port --save-port --topic --unit --interval --results --linger --ack-port --window --ack-timeout --max-message-size",
    );
    tests::assert_help_lists(
        "saver",
        "--port --bind --count --store --ack-port --max-message-size --allow",
    );
}
