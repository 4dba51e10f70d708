//! Fake mail form: `faker` and `mailbin`, as in the README, `faker` read by a
//! test-side PULL socket, and `mailbin` fed by a test-side PUSH socket with
//! forms good and bad.

// A test fails by panicking: unwrap says "this must work".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;

use chrono::{Datelike as _, Days, Local, NaiveDate};
use serde_json::{Map, Value, json};
use tests::{Finished, Program, Signal, WAIT, assert_port_taken, free_port};

const FIELDS: [&str; 7] = [
    "first_name",
    "last_name",
    "email",
    "created_at",
    "ip",
    "user_agent",
    "service_uri",
];

fn mailbin(port: &str, extra: &[&str]) -> Program {
    Program::start("mailbin", &tests::listener_args(port, extra))
}

fn faker(port: &str, extra: &[&str]) -> Program {
    let args = [
        &["--port", port, "--host", "127.0.0.1", "--interval", "0s"],
        extra,
    ]
    .concat();
    Program::start("faker", &args)
}

/// A mailbin that is ready: its socket is bound once it says it listens.
fn listening_mailbin(port: &str, extra: &[&str]) -> Program {
    let mut mailbin = mailbin(port, extra);
    mailbin.wait_for_stdout("Mailbin listening on", WAIT);
    mailbin
}

/// Runs `faker --count <count> --seed <seed>` into a test-side PULL socket
/// and returns the forms received, with what the faker printed.
fn forms_from_faker(seed: &str, count: usize) -> (Vec<Map<String, Value>>, Finished) {
    let port = free_port().to_string();
    let receiver = tests::bound(zmq::PULL, &port);
    let faker = faker(&port, &["--count", &count.to_string(), "--seed", seed]);
    let forms = (0..count)
        .map(|_| {
            let message = receiver.recv_bytes(0).expect("no form from faker");
            match serde_json::from_slice(&message).unwrap() {
                Value::Object(form) => form,
                other => panic!("not a JSON object: {other}"),
            }
        })
        .collect();
    (forms, faker.finish(WAIT))
}

/// The pretty-printed forms a faker wrote on stdout, one JSON object after another.
fn printed_forms(faker: &Finished) -> Vec<Map<String, Value>> {
    let text = faker.stdout.join("\n");
    serde_json::Deserializer::from_str(&text)
        .into_iter::<Map<String, Value>>()
        .map(Result::unwrap)
        .collect()
}

fn first_of_month(day: NaiveDate) -> NaiveDate {
    day - Days::new(u64::from(day.day0()))
}

/// A valid form, short enough to be shown whole in a rejection. Its date
/// is fixed: any real day is valid, whatever today is.
fn form() -> Map<String, Value> {
    let form = json!({
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.org",
        "created_at": "20130315",
        "ip": "192.0.2.1",
        "user_agent": "Mozilla/5.0",
        "service_uri": "http://www.voisietequi.it/",
    });
    match form {
        Value::Object(form) => form,
        _ => unreachable!(),
    }
}

/// A valid form with one field changed or added.
fn form_with(field: &str, value: Value) -> Vec<u8> {
    let mut form = form();
    form.insert(field.to_owned(), value);
    serde_json::to_vec(&form).unwrap()
}

#[test]
fn faker_pushes_forms_of_seven_strings_with_the_right_shapes() {
    let before = Local::now().date_naive();
    let (forms, faker) = forms_from_faker("7", 5);
    let after = Local::now().date_naive();
    assert!(faker.success(), "{faker:?}");
    // With no pause, forms may be pushed before the connection is made:
    // then the faker says it waits for them to go out, and they do.
    assert_eq!(faker.stderr, ["faker: 5 forms made"]);
    assert!(!faker.stderr.iter().any(|line| line.contains("dropped")));
    // What it printed is what it pushed.
    assert_eq!(printed_forms(&faker), forms);

    for form in &forms {
        let mut keys: Vec<&str> = form.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut expected = FIELDS;
        expected.sort_unstable();
        assert_eq!(keys, expected, "{form:?}");
        let field = |name: &str| form[name].as_str().expect("a string field");

        assert!(!field("first_name").is_empty(), "{form:?}");
        assert!(!field("last_name").is_empty(), "{form:?}");
        let (local, domain) = field("email").split_once('@').unwrap();
        assert!(!local.is_empty() && !domain.is_empty(), "{form:?}");
        assert!(!domain.contains('@') && !field("email").contains(char::is_whitespace));
        let created_at = NaiveDate::parse_from_str(field("created_at"), "%Y%m%d").unwrap();
        assert_eq!(field("created_at").len(), 8, "{form:?}");
        // A day of this month up to today, even if the month turned meanwhile.
        assert!(
            (first_of_month(before)..=after).contains(&created_at),
            "{form:?}"
        );
        field("ip").parse::<Ipv4Addr>().unwrap();
        // A browser's "product/version (...)", as Mozilla/5.0 or Opera/9.80.
        let (product, version) = field("user_agent").split_once('/').unwrap();
        assert!(!product.is_empty() && product.chars().all(char::is_alphabetic));
        assert!(
            version.starts_with(|c: char| c.is_ascii_digit()),
            "{form:?}"
        );
        assert_eq!(field("service_uri"), "http://www.voisietequi.it/");
    }
}

#[test]
fn the_same_seed_gives_the_same_forms_and_another_seed_others() {
    let (first, _) = forms_from_faker("7", 3);
    let (again, _) = forms_from_faker("7", 3);
    let (other, _) = forms_from_faker("8", 3);
    assert_eq!(first, again);
    assert_ne!(first, other);
}

#[test]
fn mailbin_receives_every_form_of_the_real_faker() {
    let port = free_port().to_string();
    let mailbin = listening_mailbin(&port, &["--count", "5"]);
    let faker = faker(&port, &["--count", "5"]).finish_successfully();
    let mailbin = mailbin.finish_successfully();

    let mut expected = vec![format!("Mailbin listening on tcp://127.0.0.1:{port}")];
    for form in printed_forms(&faker) {
        expected.push(format!(
            "Mailbin received a form from {} {} {}",
            form["first_name"].as_str().unwrap(),
            form["last_name"].as_str().unwrap(),
            form["email"].as_str().unwrap(),
        ));
    }
    assert_eq!(mailbin.stdout, expected);
    assert_eq!(mailbin.stderr, ["mailbin: 5 forms received, 0 rejected"]);
}

#[test]
fn mailbin_rejects_each_bad_form_and_accepts_each_good_one() {
    let port = free_port().to_string();
    let mailbin = listening_mailbin(&port, &["--count", "3"]);
    let sender = tests::pusher(&port);

    const EMAIL: &str = r#"form field "email" is not an address local@domain"#;
    const DATE: &str = r#"form field "created_at" is not a date YYYYMMDD"#;
    const IP: &str = r#"form field "ip" is not an IPv4 or IPv6 address"#;
    const NOT_JSON: &str = "not a JSON object";
    let mut missing_ip = form();
    missing_ip.remove("ip");

    // Each message, and what the mailbin should find wrong with it.
    let twice = br#"{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org",
        "email": "eve@example.org", "created_at": "20130315", "ip": "192.0.2.7",
        "user_agent": "Mozilla/5.0", "service_uri": "http://www.voisietequi.it/"}"#;
    let messages: [(Vec<u8>, Option<&str>); 14] = [
        (serde_json::to_vec(&form()).unwrap(), None),
        (form_with("email", json!("ada.example.org")), Some(EMAIL)),
        (form_with("email", json!("ada@ex ample.org")), Some(EMAIL)),
        (form_with("created_at", json!("20230231")), Some(DATE)),
        (form_with("created_at", json!("2013-03-15")), Some(DATE)),
        // Extra keys are allowed.
        (form_with("referrer", json!(42)), None),
        (form_with("ip", json!("300.1.2.3")), Some(IP)),
        (
            serde_json::to_vec(&missing_ip).unwrap(),
            Some(r#"form field "ip" is missing"#),
        ),
        (
            form_with("first_name", json!(7)),
            Some(r#"form field "first_name" is not a string"#),
        ),
        (b"first_name=Ada".to_vec(), Some(NOT_JSON)),
        (b"[\"Ada\"]".to_vec(), Some(NOT_JSON)),
        (b"{\"first_name\": \"Ad\xff\"}".to_vec(), Some(NOT_JSON)),
        // Which of two emails would be the sender's? Neither.
        (twice.to_vec(), Some(r#"form field "email" appears twice"#)),
        (form_with("ip", json!("2001:db8::1")), None),
    ];
    for (message, _) in &messages {
        sender.send(message, 0).unwrap();
    }

    let mailbin = mailbin.finish_successfully();
    let received = "Mailbin received a form from Ada Lovelace ada@example.org";
    assert_eq!(mailbin.stdout[1..], [received; 3]);

    let problems: Vec<&str> = messages.iter().filter_map(|(_, problem)| *problem).collect();
    let (summary, rejections) = mailbin.stderr.split_last().unwrap();
    assert_eq!(rejections.len(), problems.len(), "{rejections:#?}");
    for (line, problem) in rejections.iter().zip(problems) {
        assert!(
            line.starts_with(&format!("rejected: {problem}: ")),
            "{line}"
        );
    }
    // The payload is shown on the same line, its invalid byte escaped.
    assert!(rejections[9].ends_with(r#"{"first_name": "Ad\xff"}"#));
    assert_eq!(summary, "mailbin: 3 forms received, 11 rejected");
}

#[test]
fn mailbin_accepts_a_form_of_any_real_calendar_date() {
    // A form queued at the end of a month and read the next is still a
    // form: the date only has to be a real day.
    let port = free_port().to_string();
    let mailbin = listening_mailbin(&port, &["--count", "3"]);
    let sender = tests::pusher(&port);
    for day in ["20130315", "20240229", "19991231"] {
        sender.send(form_with("created_at", json!(day)), 0).unwrap();
    }

    let mailbin = mailbin.finish_successfully();
    assert_eq!(mailbin.stderr, ["mailbin: 3 forms received, 0 rejected"]);
}

#[test]
fn faker_keeps_its_forms_until_a_mailbin_starts() {
    let port = free_port().to_string();
    let mut faker = faker(&port, &["--count", "3"]);
    faker.wait_for_stderr(
        &format!("faker: waiting for a mailbin at tcp://127.0.0.1:{port} to take 3 queued forms (Ctrl-C or SIGTERM drops them)"),
        WAIT,
    );
    let mailbin = mailbin(&port, &["--count", "3"]).finish_successfully();
    assert_eq!(mailbin.stdout.len(), 4, "{mailbin:?}");
    assert_eq!(mailbin.stderr, ["mailbin: 3 forms received, 0 rejected"]);
    faker.finish_successfully();
}

#[test]
fn faker_with_linger_and_no_mailbin_says_what_it_dropped() {
    let port = free_port().to_string();
    let faker = faker(&port, &["--count", "3", "--linger", "200ms"]).finish(WAIT);
    assert_eq!(faker.code(), Some(1), "{faker:?}");
    assert_eq!(
        faker.stderr,
        [
            format!(
                "faker: waiting for a mailbin at tcp://127.0.0.1:{port} to take 3 queued forms (Ctrl-C or SIGTERM drops them, and so does --linger 200ms)"
            ),
            "faker: 3 forms made".to_owned(),
            "faker: up to 3 forms dropped (never sent)".to_owned(),
        ]
    );
}

#[test]
fn mailbin_on_a_taken_port_says_so() {
    let port = free_port().to_string();
    let _first = listening_mailbin(&port, &[]);
    let second = mailbin(&port, &[]).finish(WAIT);
    assert_port_taken(&second, &port);
}

#[test]
fn bad_flags_get_a_usage_error() {
    for (program, args) in [
        ("faker", &["--seed", "-1"][..]),
        ("faker", &["--count", "0"][..]),
        ("faker", &["--linger", "later"][..]),
        ("mailbin", &["--port", "0"][..]),
        ("mailbin", &["--count", "0"][..]),
    ] {
        let said = tests::usage_error(program, args);
        assert!(said.starts_with("error: "), "{program} {args:?}: {said}");
    }
}

#[test]
fn mailbin_stops_cleanly_on_sigint_and_sigterm() {
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let port = free_port().to_string();
        let mut mailbin = listening_mailbin(&port, &[]);
        let sender = tests::pusher(&port);
        sender.send("not a form", 0).unwrap();
        sender.send(serde_json::to_vec(&form()).unwrap(), 0).unwrap();
        mailbin.wait_for_stdout("Mailbin received a form from Ada", WAIT);
        mailbin.stop_cleanly(signal, "mailbin: 1 form received, 1 rejected");
    }
}

#[test]
fn faker_stops_cleanly_on_sigint_and_sigterm() {
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let port = free_port().to_string();
        let mut mailbin = listening_mailbin(&port, &[]);
        let mut faker = Program::start(
            "faker",
            &["--port", &port, "--host", "127.0.0.1", "--interval", "10ms"],
        );
        mailbin.wait_for_stdout("Mailbin received a form from", WAIT);
        faker.wait_for_stdout("service_uri", WAIT);
        let finished = faker.stop_cleanly(signal, "made");
        assert!(
            !finished.stderr.iter().any(|line| line.contains("dropped")),
            "{finished:?}"
        );
    }
}

#[test]
fn a_faker_stopped_while_its_queue_is_full_says_the_last_form_shown_was_not_sent() {
    // No mailbin: the queue fills at its high-water mark (1000) and the
    // next send waits, until Ctrl-C ends it.
    let port = free_port().to_string();
    let mut faker = faker(&port, &[]);
    tests::wait_until_asleep(faker.id());
    faker.signal(Signal::SIGINT);
    faker.wait_for_stderr("faker: waiting for a mailbin", WAIT);
    let faker = faker.stop(Signal::SIGINT, WAIT);
    assert_eq!(faker.code(), Some(1), "{:?}", faker.stderr);
    assert_eq!(printed_forms(&faker).len(), 1001);
    let stderr = &faker.stderr;
    assert_eq!(
        stderr[0],
        "faker: stopped before the form shown last was sent"
    );
    assert_eq!(
        stderr[stderr.len() - 2..],
        [
            "faker: 1000 forms made",
            "faker: up to 1000 forms dropped (never sent)"
        ]
    );
}
