//! What every program owes its command line: `--help` that names it and
//! explains it, `--version`, and clap's usage error (exit 2) for a bad flag.

use tests::{Program, WAIT, free_port};

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

        let version = Program::start(program, &["--version"]).finish_successfully();
        assert_eq!(
            version.stdout,
            [format!("{program} {}", env!("CARGO_PKG_VERSION"))]
        );
    }
}

#[test]
fn an_unknown_flag_gets_a_usage_error() {
    for program in PROGRAMS {
        let said = tests::usage_error(program, &["--no-such-flag"]);
        assert!(
            said.starts_with("error: unexpected argument '--no-such-flag'"),
            "{program}: {said}"
        );
    }
}

/// Every duration flag of every program, as (program, flag, its help).
fn duration_flags() -> Vec<(&'static str, String, String)> {
    let mut flags = Vec::new();
    for program in PROGRAMS {
        let help = Program::start(program, &["--help"]).finish(WAIT);
        let lines = &help.stdout;
        for (at, line) in lines.iter().enumerate() {
            let Some((before, _)) = line.split_once(" <DURATION>") else {
                continue;
            };
            let flag = before.trim_start().trim_start_matches("-h, ").to_owned();
            // The help is beside the flag, or on the next line when long.
            let next = lines.get(at + 1).map_or("", String::as_str);
            flags.push((program, flag, format!("{line} {next}")));
        }
    }
    // --delay, --interval (3), --timeout (4), --settle, --quiet-after,
    // --linger (2), --ack-timeout
    assert!(
        flags.len() >= 13,
        "only {} duration flags found",
        flags.len()
    );
    flags
}

#[test]
fn every_duration_flag_says_how_a_duration_is_written() {
    for (program, flag, help) in duration_flags() {
        assert!(
            help.contains("(a duration: 250ms, 1s, 2m"),
            "{program} {flag}: {help}"
        );
    }
}

#[test]
fn a_duration_too_long_for_the_clock_is_a_usage_error() {
    for (program, flag, _) in duration_flags() {
        let said = tests::usage_error(program, &[&flag, "18446744073709551615s"]);
        assert!(
            said.ends_with("longer than 100 years, the most a duration flag takes"),
            "{program} {flag}: {said}"
        );
    }
}

#[test]
fn a_host_that_does_not_resolve_gets_one_warning_and_zeromq_keeps_trying() {
    // The .invalid top-level domain never resolves (RFC 6761).
    const HOST: &str = "nosuchhost.invalid";
    let port = free_port().to_string();
    let runs: [(&str, Vec<&str>); 4] = [
        (
            "reqrep_client",
            vec![&port, "--host", HOST, "--timeout", "200ms"],
        ),
        (
            "sub_client",
            vec![&port, "--host", HOST, "--timeout", "200ms"],
        ),
        // The computer connects three sockets to the host: one warning still.
        (
            "computer",
            vec!["--server-host", HOST, "--results", "1", "--linger", "0s"],
        ),
        (
            "faker",
            vec![
                "--host", HOST, "--port", &port, "--count", "1", "--linger", "0s",
            ],
        ),
    ];
    for (program, args) in runs {
        let finished = Program::start(program, &args).finish(WAIT);
        let warning =
            format!("{program}: warning: cannot resolve host {HOST} (ZeroMQ keeps trying)");
        let warnings: Vec<&String> =
            finished.stderr.iter().filter(|line| line.contains("cannot resolve")).collect();
        assert_eq!(warnings, [&warning], "{program}: {:?}", finished.stderr);
        // Not an error: the program went on, until its own deadline.
        assert!(!finished.stderr[0].starts_with("error:"), "{program}");
    }
}

#[test]
fn a_host_that_is_not_a_host_name_is_an_error_and_nothing_more() {
    let port = free_port().to_string();
    for program in ["reqrep_client", "sub_client"] {
        let finished = Program::start(program, &[&port, "--host", "bad host!"]).finish(WAIT);
        assert_eq!(finished.code(), Some(1), "{program}: {finished:?}");
        // ZeroMQ refuses the endpoint at once: no "keeps trying" warning.
        assert_eq!(
            finished.stderr,
            [format!(
                "error: cannot connect to tcp://bad host!:{port}: not a host name or address, and a port"
            )],
            "{program}"
        );
    }
}
