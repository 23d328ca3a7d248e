//! Tests of the segment rule language: parsing, binding, evaluation on journey rows, error
//! messages.

use std::sync::LazyLock;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stepstone_dataflows::event::JourneyId;
use stepstone_dataflows::row::JourneyRow;
use stepstone_dataflows::rules::{Rule, RuleError};
use stepstone_dataflows::symbols::{Sym, Symbols};

/// The table that interns the test rows' strings and binds the rules, as one table does for the
/// event data and the segment rules of a pipeline.
static SYMBOLS: LazyLock<Symbols> = LazyLock::new(Symbols::new);

fn sym(name: &str) -> Sym {
    SYMBOLS.intern(name)
}

/// A converted journey with two sessions over web and email.
fn row() -> JourneyRow {
    let mut channel_events = vec![(sym("email"), 1), (sym("web"), 4)];
    channel_events.sort();
    JourneyRow {
        journey: JourneyId { customer: sym("alice"), anonymous: false, key: Some(sym("k1")) },
        first_time: 1_000,
        last_time: 61_000,
        events: 5,
        sessions: 2,
        session_start: 31_000,
        session_events: 3,
        path: vec![sym("home"), sym("pricing"), sym("checkout")],
        channel_events,
        conversions: 1,
        last_conversion_time: Some(60_000),
        value: 12_500_000,
    }
}

/// An unconverted one-event journey without key or channels (a path is never empty).
fn empty_row() -> JourneyRow {
    JourneyRow {
        journey: JourneyId::customer(sym("bob")),
        first_time: 0,
        last_time: 0,
        events: 1,
        sessions: 1,
        session_start: 0,
        session_events: 1,
        path: vec![sym("home")],
        channel_events: vec![],
        conversions: 0,
        last_conversion_time: None,
        value: 0,
    }
}

fn parse(rule: &str) -> Rule {
    Rule::parse(rule).unwrap_or_else(|e| panic!("{rule:?} does not parse: {e}"))
}

fn check(rule: &str, row: &JourneyRow) -> bool {
    parse(rule).bind(&SYMBOLS).matches(row)
}

fn assert_rules(row: &JourneyRow, yes: &[&str], no: &[&str]) {
    for rule in yes {
        assert!(check(rule, row), "{rule:?} should match {row:?}");
    }
    for rule in no {
        assert!(!check(rule, row), "{rule:?} should not match {row:?}");
    }
}

fn error(rule: &str) -> RuleError {
    match Rule::parse(rule) {
        Ok(parsed) => panic!("{rule:?} should not parse, got {parsed:?}"),
        Err(e) => e,
    }
}

#[test]
fn numeric_fields_and_operators() {
    let row = row();
    assert_rules(
        &row,
        &[
            "events == 5",
            "events != 4",
            "events < 6",
            "events <= 5",
            "events > 4",
            "events >= 5",
            "events>=5",
            "sessions == 2",
            "session_events == 3",
            "conversions == 1",
            "value == 12.5",
            "value > 12",
            "value < 12.6",
            "value >= -1",
            "session_duration_ms == 30000",
            "first_time == 1000",
            "last_time == 61000",
            "session_start == 31000",
            "last_conversion_time == 60000",
            "last_conversion_time >= 6e4",
            "events == 5.0",
            "events > 4.5",
            "first_time > -1",
            "channel_events.web >= 2",
            "channel_events.email == 1",
            "channel_events.app == 0",
        ],
        &[
            "events == 4",
            "events != 5",
            "events < 5",
            "events <= 4",
            "events > 5",
            "events >= 6",
            "value == 12",
            "value < -0.5",
            "session_duration_ms > 30000",
            "last_conversion_time < 60000",
            "events < 4.5",
            "channel_events.web > 4",
            "channel_events.app >= 1",
        ],
    );
}

#[test]
fn missing_last_conversion_time_is_false_except_not_equal() {
    let row = empty_row();
    assert_rules(
        &row,
        &["last_conversion_time != 0", "last_conversion_time != 5"],
        &[
            "last_conversion_time == 0",
            "last_conversion_time < 0",
            "last_conversion_time <= 0",
            "last_conversion_time > 0",
            "last_conversion_time >= 0",
            "last_conversion_time > -1000",
        ],
    );
}

#[test]
fn boolean_fields() {
    assert_rules(
        &row(),
        &["converted", "converted == true", "converted != false", "not converted == false", "!!converted"],
        &["not converted", "!converted", "converted == false", "converted != true"],
    );
    assert_rules(&empty_row(), &["not converted", "converted == false"], &["converted"]);
}

#[test]
fn string_fields() {
    let row = row();
    assert_rules(
        &row,
        &[
            "customer == \"alice\"",
            "customer == 'alice'",
            "customer != 'bob'",
            "journey_key == \"k1\"",
            "journey_key != \"k2\"",
            "last_contact_point == \"checkout\"",
            "last_contact_point in [\"pricing\", \"checkout\"]",
            "last_contact_point in ['checkout',]",
            "customer in [\"bob\", \"alice\"]",
            "journey_key in [\"k1\"]",
        ],
        &[
            "customer == \"bob\"",
            "customer != \"alice\"",
            "journey_key == \"k2\"",
            "last_contact_point == \"pricing\"",
            "last_contact_point in [\"home\", \"pricing\"]",
            "last_contact_point in []",
        ],
    );
    // A missing journey key is never equal to anything.
    let empty = empty_row();
    assert_rules(
        &empty,
        &[
            "journey_key != \"\"",
            "journey_key != \"k1\"",
            "last_contact_point == \"home\"",
            "last_contact_point != \"\"",
        ],
        &["journey_key == \"\"", "journey_key == \"k1\"", "journey_key in [\"\", \"k1\"]"],
    );
}

#[test]
fn string_escapes() {
    let mut row = row();
    row.journey.customer = sym("say \"hi\" it's \\ ok");
    assert_rules(
        &row,
        &[r#"customer == "say \"hi\" it's \\ ok""#, r#"customer == 'say "hi" it\'s \\ ok'"#],
        &[r#"customer == "say hi""#],
    );
    row.journey.customer = sym("tab\there\nnewline");
    assert!(check(r#"customer == "tab\there\nnewline""#, &row));
}

#[test]
fn list_fields() {
    let row = row();
    assert_rules(
        &row,
        &[
            "channels contains \"email\"",
            "channels contains 'web'",
            "path contains \"pricing\"",
            "path contains \"home\"",
            "not channels contains \"app\"",
        ],
        &["channels contains \"app\"", "path contains \"cart\"", "path contains \"Pricing\""],
    );
    assert_rules(&empty_row(), &["path contains \"home\""], &["channels contains \"web\"", "path contains \"\""]);
}

#[test]
fn keywords_and_symbols() {
    let row = row();
    assert_rules(
        &row,
        &[
            "events == 5 and converted",
            "events == 5 AND converted",
            "events == 5 && converted",
            "events == 4 or converted",
            "events == 4 OR converted",
            "events == 4 || converted",
            "NOT events == 4",
            "!(events == 4)",
            "! events == 4",
        ],
        &["events == 5 and not converted", "events == 4 || !converted", "not (events == 5)"],
    );
}

#[test]
fn precedence_and_parentheses() {
    let row = row(); // converted, events == 5
    // `and` binds tighter than `or`: true or (false and false) = true.
    assert!(check("converted or events == 1 and events == 2", &row));
    // (true or false) and false = false.
    assert!(!check("(converted or events == 1) and events == 2", &row));
    // false and false or true = (false and false) or true = true.
    assert!(check("events == 1 and events == 2 or converted", &row));
    assert!(!check("events == 1 and (events == 2 or converted)", &row));
    // `not` binds tighter than `and` and `or`.
    assert!(!check("not converted and events == 5", &row));
    assert!(check("not (converted and events == 4)", &row));
    assert!(check("not converted or events == 5", &row));
    assert!(!check("not (converted or events == 4)", &row));
    // Nesting, long chains, redundant parentheses.
    assert!(check("((((converted))))", &row));
    assert!(check("(events == 1 or (events == 2 or (events == 5))) and ((sessions == 2))", &row));
    assert!(check("events == 1 or events == 2 or events == 3 or events == 5", &row));
    assert!(!check("events >= 1 and events >= 2 and events >= 6 and events >= 3", &row));
    assert!(check("not not converted", &row));
}

#[test]
fn error_unknown_field() {
    let e = error("events >= 1 and colour == \"red\"");
    assert_eq!(e.offset, 16);
    assert!(e.message.starts_with("unknown field `colour`; known fields: events, sessions"), "{e}");
    for field in ["last_conversion_time", "journey_key", "channels", "path", "channel_events.<channel>"] {
        assert!(e.message.contains(field), "{e}");
    }
    assert_eq!(error("channel_events. >= 1").offset, 0);
}

#[test]
fn error_type_mismatch() {
    let e = error("events == \"x\"");
    assert_eq!(e.to_string(), "events is a number, compared with a string at offset 10");
    assert_eq!(e, RuleError { message: "events is a number, compared with a string".into(), offset: 10 });
    assert_eq!(error("events == true").message, "events is a number, compared with a boolean");
    assert_eq!(error("customer == 3").to_string(), "customer is a string, compared with a number at offset 12");
    assert_eq!(error("converted == 'yes'").message, "converted is a boolean, compared with a string");
    let e = error("converted < true");
    assert_eq!((e.message.as_str(), e.offset), ("converted is a boolean; only == and != apply", 10));
    let e = error("customer > 'a'");
    assert_eq!((e.message.as_str(), e.offset), ("customer is a string; only ==, != and `in` apply", 9));
    let e = error("channels == 'web'");
    assert_eq!((e.message.as_str(), e.offset), ("channels is a list; use `channels contains \"…\"`", 9));
    let e = error("customer contains 'a'");
    assert!(e.message.starts_with("customer is a string; `contains` applies to the lists"), "{e}");
    assert_eq!(e.offset, 9);
    let e = error("events in ['a']");
    assert!(e.message.starts_with("events is a number; `in` applies to the strings"), "{e}");
    let e = error("events");
    assert_eq!(
        e.to_string(),
        "expected a comparison (==, !=, <, <=, >, >=) after the number events, found the end of the rule at offset 6"
    );
    assert!(error("path and converted").message.starts_with("expected `contains` after the list path"));
    assert!(error("customer").message.starts_with("expected ==, != or `in` after the string customer"));
    assert!(error("last_contact_point in ['a', 3]").message.starts_with("expected a string or `]` in the list"));
    assert!(error("last_contact_point in 'a'").message.starts_with("expected `[`"));
    assert!(error("channels contains 3").message.starts_with("expected a string after `contains`"));
}

#[test]
fn error_unterminated_string() {
    let e = error("converted and customer == \"alice");
    assert_eq!(e.to_string(), "unterminated string at offset 26");
    assert_eq!(error("customer == 'alice\\'").offset, 12);
    assert_eq!(error("customer == \"a\\").message, "unterminated string");
    assert!(error("customer == \"a\\q\"").message.starts_with("unknown escape `\\q`"));
}

#[test]
fn error_trailing_garbage() {
    let e = error("events >= 3 converted");
    assert_eq!(e.to_string(), "expected `and`, `or` or the end of the rule, found `converted` at offset 12");
    let e = error("(events >= 3))");
    assert_eq!((e.message.as_str(), e.offset), ("expected `and`, `or` or the end of the rule, found `)`", 13));
    let e = error("converted == true false");
    assert_eq!(e.offset, 18);
}

#[test]
fn error_syntax() {
    let e = error("");
    assert_eq!(
        e.to_string(),
        "expected a condition (a field name, `not` or `(`), found the end of the rule at offset 0"
    );
    assert_eq!(error("   ").offset, 3);
    let e = error("(converted and events > 1");
    assert_eq!(e.to_string(), "expected `)` to close the `(` at offset 0, found the end of the rule at offset 25");
    assert_eq!(error("converted and").offset, 13);
    assert_eq!(error("converted or or converted").offset, 13);
    assert_eq!(error("events = 3").message, "expected `==`, found a single `=`");
    assert_eq!(error("converted & converted").message, "expected `&&`, found a single `&`");
    assert_eq!(error("converted | converted").message, "expected `||`, found a single `|`");
    assert_eq!(
        error("events >= ").message,
        "expected a value (number, string, true or false) after `>=`, found the end of the rule"
    );
    assert_eq!(error("events >= sessions").offset, 10);
    assert_eq!(error("events >= 3x").offset, 10);
    assert_eq!(error("events >= -").message, "expected a number");
    assert_eq!(error("events >= 1e").offset, 10);
    assert_eq!(error("events >= 1e999").message, "number 1e999 is out of range");
    assert_eq!(error("events # 3").message, "unexpected character '#'");
    // Offsets count characters, not bytes.
    assert_eq!(error("customer == 'é' and nope").offset, 20);
}

#[test]
fn from_str_display_and_string_round_trip() {
    let text = "events >= 3 and (channels contains \"email\" or not converted)";
    let rule: Rule = text.parse().unwrap();
    assert_eq!(rule, Rule::parse(text).unwrap());
    assert_eq!(rule.to_string(), text);
    assert_eq!(String::from(rule.clone()), text);
    assert_eq!(Rule::try_from(text.to_string()).unwrap(), rule);
    assert!(Rule::try_from("events >=".to_string()).is_err());
    assert!("nope".parse::<Rule>().is_err());
    let e: Box<dyn std::error::Error> = Box::new(error("nope"));
    assert!(e.to_string().ends_with("at offset 0"));
}

#[test]
fn literals_absent_from_the_data_match_nothing() {
    // A table of its own, so that the literals below are interned by `bind` only.
    let symbols = Symbols::new();
    let intern = |name: &str| symbols.intern(name);
    let row = JourneyRow {
        journey: JourneyId { customer: intern("alice"), anonymous: false, key: Some(intern("k1")) },
        path: vec![intern("home"), intern("pricing")],
        channel_events: vec![(intern("web"), 2)],
        ..empty_row()
    };
    let yes = [
        "customer != \"carol\"",
        "journey_key != \"k9\"",
        "not last_contact_point in [\"faq\", \"cart\"]",
        "not channels contains \"sms\"",
        "not path contains \"faq\"",
        "channel_events.sms == 0",
        "customer == \"alice\" and channel_events.web == 2",
    ];
    let no = [
        "customer == \"carol\"",
        "journey_key == \"k9\"",
        "last_contact_point in [\"faq\", \"cart\"]",
        "channels contains \"sms\"",
        "path contains \"faq\"",
        "channel_events.sms >= 1",
    ];
    for name in ["carol", "k9", "faq", "cart", "sms"] {
        assert_eq!(symbols.get(name), None, "{name:?} is not in the data");
    }
    for rule in yes {
        assert!(parse(rule).bind(&symbols).matches(&row), "{rule:?} should match {row:?}");
    }
    for rule in no {
        assert!(!parse(rule).bind(&symbols).matches(&row), "{rule:?} should not match {row:?}");
    }
    // Binding interned the literals; binding again reuses their ids.
    assert!(symbols.get("carol").is_some());
    let len = symbols.len();
    let rule = parse("customer in ['carol', 'alice'] and channel_events.sms == 0 or path contains 'faq'");
    let bound = rule.bind(&symbols);
    assert_eq!(rule.bind(&symbols), bound);
    assert_eq!(symbols.len(), len);
    assert!(bound.matches(&row));
}

const CHANNELS: [&str; 3] = ["web", "email", "app"];
const POINTS: [&str; 4] = ["home", "pricing", "checkout", "cart"];

fn random_row(rng: &mut StdRng) -> JourneyRow {
    let first_time = rng.random_range(0..1_000);
    let session_start = first_time + rng.random_range(0..1_000);
    let last_time = session_start + rng.random_range(0..1_000);
    let mut channel_events = Vec::new();
    for channel in CHANNELS {
        if rng.random_bool(0.5) {
            channel_events.push((sym(channel), rng.random_range(1..5)));
        }
    }
    channel_events.sort();
    let path_len = rng.random_range(1..4);
    let conversions = rng.random_range(0..3);
    JourneyRow {
        journey: JourneyId {
            customer: sym(["alice", "bob"][rng.random_range(0..2)]),
            anonymous: false,
            key: rng.random_bool(0.5).then(|| sym(["k1", "k2"][rng.random_range(0..2)])),
        },
        first_time,
        last_time,
        events: rng.random_range(1..10),
        sessions: rng.random_range(1..4),
        session_start,
        session_events: rng.random_range(1..5),
        path: (0..path_len).map(|_| sym(POINTS[rng.random_range(0..POINTS.len())])).collect(),
        channel_events,
        conversions,
        last_conversion_time: (conversions > 0).then(|| rng.random_range(first_time..=last_time)),
        value: rng.random_range(-5..20) * 500_000,
    }
}

/// A random condition or small compound rule.
fn random_rule(rng: &mut StdRng, depth: u32) -> String {
    if depth > 0 && rng.random_bool(0.3) {
        let a = random_rule(rng, depth - 1);
        let b = random_rule(rng, depth - 1);
        let op = ["and", "or", "&&", "||"][rng.random_range(0..4)];
        return format!("({a} {op} {b})");
    }
    let num_fields = [
        "events",
        "sessions",
        "session_events",
        "conversions",
        "value",
        "session_duration_ms",
        "first_time",
        "last_time",
        "session_start",
        "last_conversion_time",
        "channel_events.web",
    ];
    let ops = ["==", "!=", "<", "<=", ">", ">="];
    match rng.random_range(0..6) {
        0 => {
            let field = num_fields[rng.random_range(0..num_fields.len())];
            let op = ops[rng.random_range(0..ops.len())];
            let bound = if field.ends_with("time") || field.ends_with("start") || field.ends_with("_ms") {
                rng.random_range(-10..3_000)
            } else {
                rng.random_range(-2..10)
            };
            format!("{field} {op} {bound}")
        }
        1 => ["converted", "converted == false", "!converted"][rng.random_range(0..3)].into(),
        2 => format!("last_contact_point == \"{}\"", POINTS[rng.random_range(0..POINTS.len())]),
        3 => format!("channels contains \"{}\"", CHANNELS[rng.random_range(0..CHANNELS.len())]),
        4 => format!("path contains '{}'", POINTS[rng.random_range(0..POINTS.len())]),
        _ => format!("journey_key in [\"k1\", \"{}\"]", ["k2", "k3"][rng.random_range(0..2)]),
    }
}

#[test]
fn randomized_de_morgan() {
    let mut rng = StdRng::seed_from_u64(0x5e6_3e47);
    let mut seen = [0usize; 2];
    for _ in 0..2_000 {
        let a = random_rule(&mut rng, 2);
        let b = random_rule(&mut rng, 2);
        let bind = |rule: &str| parse(rule).bind(&SYMBOLS);
        let lhs = bind(&format!("not ({a} and {b})"));
        let rhs = bind(&format!("(not {a}) or (not {b})"));
        let rhs_symbols = bind(&format!("!{a} || !{b}"));
        let ra = bind(&a);
        let rb = bind(&b);
        for _ in 0..5 {
            let row = random_row(&mut rng);
            let expected = !(ra.matches(&row) && rb.matches(&row));
            assert_eq!(lhs.matches(&row), expected, "not ({a} and {b}) on {row:?}");
            assert_eq!(rhs.matches(&row), expected, "(not {a}) or (not {b}) on {row:?}");
            assert_eq!(rhs_symbols.matches(&row), expected, "!{a} || !{b} on {row:?}");
            seen[expected as usize] += 1;
        }
    }
    // Both outcomes are exercised.
    assert!(seen[0] > 500 && seen[1] > 500, "{seen:?}");
}
