//! What every program owes its command line: `--help` that names it and
//! explains it, `--version`, and clap's usage error (exit 2) for a bad flag.

use tests::{Program, WAIT};

const PROGRAMS: [&str; 11] = [
    "reqrep_server",
    "reqrep_client",
    "pub_server",
    "sub_client",
    "command",
    "computer",
    "saver",
    "faker",
    "mailbin",
    "tour",
    "bench",
];

#[test]
fn every_program_explains_itself_and_says_its_version() {
    for program in PROGRAMS {
        let help = Program::start(program, &["--help"]).finish(WAIT);
        assert!(help.success(), "{program} --help");
        assert!(
            !help.stdout[0].is_empty(),
            "{program} --help has no description"
        );
        let usage = format!("Usage: {program}");
        assert!(
            help.stdout.iter().any(|line| line.starts_with(&usage)),
            "{program}: {:?}",
            help.stdout
        );

        let version = Program::start(program, &["--version"]).finish(WAIT);
        assert!(version.success());
        assert_eq!(
            version.stdout,
            [format!("{program} {}", env!("CARGO_PKG_VERSION"))]
        );
    }
}

#[test]
fn an_unknown_flag_gets_a_usage_error() {
    for program in PROGRAMS {
        let finished = Program::start(program, &["--no-such-flag"]).finish(WAIT);
        assert_eq!(finished.code(), Some(2), "{program}");
        assert!(
            finished.stderr[0].starts_with("error: unexpected argument '--no-such-flag'"),
            "{program}"
        );
    }
}
