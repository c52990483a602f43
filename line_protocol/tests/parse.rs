//! Line protocol cases from the 1.x grammar; the error texts were checked against InfluxDB 1.6.7.

use std::borrow::Cow;

use line_protocol::{
    FieldValue, ParseOptions, Point, Precision, format_point, parse_body, parse_line,
};
use proptest::prelude::*;

fn one(line: &str) -> Result<Point<'_>, String> {
    match parse_line(line.as_bytes(), &ParseOptions::default()) {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err("skipped".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn err(line: &str) -> String {
    one(line).expect_err(line)
}

#[test]
fn basic_point() {
    let p = one("cpu,host=a,region=west value=1.5,count=3i,ok=t,msg=\"hi\" 1000").unwrap();
    assert_eq!(p.measurement, "cpu");
    assert_eq!(
        p.tags,
        vec![
            (Cow::from("host"), Cow::from("a")),
            (Cow::from("region"), Cow::from("west"))
        ]
    );
    assert_eq!(
        p.fields,
        vec![
            (Cow::from("value"), FieldValue::Float(1.5)),
            (Cow::from("count"), FieldValue::Integer(3)),
            (Cow::from("ok"), FieldValue::Boolean(true)),
            (Cow::from("msg"), FieldValue::String(Cow::from("hi"))),
        ]
    );
    assert_eq!(p.time, 1000);
}

#[test]
fn tags_are_sorted_into_the_series_key() {
    let p = one("cpu,z=1,a=2,m=3 v=1 1").unwrap();
    let keys: Vec<&str> = p.tags.iter().map(|(k, _)| k.as_ref()).collect();
    assert_eq!(keys, ["a", "m", "z"]);
}

#[test]
fn escapes() {
    let p = one(r#"c\,p\ u,t\ k\=1=v\,a\ l\=x f\ \,\=k="q\"uo\\te",g=1 5"#).unwrap();
    assert_eq!(p.measurement, "c,p u");
    assert_eq!(p.tags[0], (Cow::from("t k=1"), Cow::from("v,a l=x")));
    assert_eq!(
        p.fields[0],
        (
            Cow::from("f ,=k"),
            FieldValue::String(Cow::from("q\"uo\\te"))
        )
    );
    // other backslashes are literal, as in 1.x
    let p = one(r"cpu\x,tag=a\b v=1 1").unwrap();
    assert_eq!(p.measurement, r"cpu\x");
    assert_eq!(p.tags[0].1, r"a\b");
    // an equals sign in a measurement name needs no escape
    assert_eq!(one("a=b v=1 1").unwrap().measurement, "a=b");
}

#[test]
fn string_fields_may_hold_newlines_commas_and_spaces() {
    let body = b"log msg=\"line one\nline, two = x\" 1\nlog msg=\"b\" 2\n";
    let parsed = parse_body(body, &ParseOptions::default());
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert_eq!(parsed.points.len(), 2);
    assert_eq!(
        parsed.points[0].fields[0].1,
        FieldValue::String(Cow::from("line one\nline, two = x"))
    );
}

#[test]
fn numbers() {
    let f = |s: &str| one(&format!("m v={s} 1")).map(|p| p.fields[0].1.clone().into_owned());
    assert_eq!(f("1"), Ok(FieldValue::Float(1.0)));
    assert_eq!(f("-1.5"), Ok(FieldValue::Float(-1.5)));
    assert_eq!(f("1."), Ok(FieldValue::Float(1.0)));
    assert_eq!(f(".5"), Ok(FieldValue::Float(0.5)));
    assert_eq!(f("1e3"), Ok(FieldValue::Float(1000.0)));
    assert_eq!(f("1.5E-3"), Ok(FieldValue::Float(0.0015)));
    assert_eq!(f("-2e+2"), Ok(FieldValue::Float(-200.0)));
    assert_eq!(f("42i"), Ok(FieldValue::Integer(42)));
    assert_eq!(
        f("-9223372036854775808i"),
        Ok(FieldValue::Integer(i64::MIN))
    );
    assert_eq!(f("9223372036854775807i"), Ok(FieldValue::Integer(i64::MAX)));
    assert_eq!(
        err("m v=1e400"),
        "unable to parse 'm v=1e400': invalid float"
    );
    assert_eq!(err("m v=NaN"), "unable to parse 'm v=NaN': invalid number");
    assert_eq!(
        err("m v=1.1.1"),
        "unable to parse 'm v=1.1.1': invalid number"
    );
    assert_eq!(
        err("m v=1.5i"),
        "unable to parse 'm v=1.5i': invalid number"
    );
    assert_eq!(err("m v=9i9"), "unable to parse 'm v=9i9': invalid number");
    assert_eq!(err("m v=-"), "unable to parse 'm v=-': invalid number");
    assert_eq!(err("m v=-i"), "unable to parse 'm v=-i': invalid number");
    assert_eq!(err("m v=1u"), "unable to parse 'm v=1u': invalid number");
    assert_eq!(
        err("m v=99999999999999999999i"),
        "unable to parse 'm v=99999999999999999999i': unable to parse integer 99999999999999999999: strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
    );
}

#[test]
fn unsigned_behind_a_switch() {
    let opts = ParseOptions {
        allow_unsigned: true,
        ..Default::default()
    };
    let p = parse_line(b"m v=18446744073709551615u 1", &opts)
        .unwrap()
        .unwrap();
    assert_eq!(p.fields[0].1, FieldValue::UInteger(u64::MAX));
}

#[test]
fn booleans_in_every_spelling() {
    for (s, b) in [
        ("t", true),
        ("T", true),
        ("true", true),
        ("True", true),
        ("TRUE", true),
        ("f", false),
        ("F", false),
        ("false", false),
        ("False", false),
        ("FALSE", false),
    ] {
        assert_eq!(
            one(&format!("m v={s} 1")).unwrap().fields[0].1,
            FieldValue::Boolean(b),
            "{s}"
        );
    }
    for s in ["tru", "trueish", "fals", "yes", "tRUE"] {
        assert_eq!(
            err(&format!("m v={s}")),
            format!("unable to parse 'm v={s}': invalid boolean")
        );
    }
}

#[test]
fn structural_errors_read_like_1x() {
    let cases = [
        ("cpu", "missing fields"),
        (",tag=a value=1", "missing measurement"),
        ("cpu,=a value=1", "missing tag key"),
        ("cpu,a value=1", "missing tag value"),
        ("cpu,a= value=1", "missing tag value"),
        ("cpu,a=b=c value=1", "invalid tag format"),
        ("cpu,a=1,a=2 value=1", "duplicate tags"),
        ("cpu value=\"unterminated", "unbalanced quotes"),
        ("cpu a=1,b", "invalid field format"),
        ("bad line", "invalid field format"),
        ("cpu =1", "missing field key"),
        ("cpu a=1,=2", "missing field key"),
        ("cpu a=", "missing field value"),
        ("cpu a=,b=1", "missing field value"),
        ("( \0\0=0", "missing field key"),
        ("cpu value=1 123abc", "bad timestamp"),
        ("cpu value=1 5 6", "point is invalid"),
        (
            "cpu value=1 99999999999999999999",
            "strconv.ParseInt: parsing \"99999999999999999999\": value out of range",
        ),
        (
            "cpu value=1 9223372036854775807",
            "time outside range -9223372036854775806 - 9223372036854775806",
        ),
        (
            "cpu value=1 -",
            "strconv.ParseInt: parsing \"-\": invalid syntax",
        ),
    ];
    for (line, reason) in cases {
        assert_eq!(
            err(line),
            format!("unable to parse '{line}': {reason}"),
            "{line}"
        );
    }
}

#[test]
fn crlf_is_rejected_as_1x_does() {
    let parsed = parse_body(
        b"cpu value=1\r\ncpu value=2 5\r\n",
        &ParseOptions::default(),
    );
    assert!(parsed.points.is_empty());
    assert_eq!(
        parsed.error_text().unwrap(),
        "unable to parse 'cpu value=1\r': invalid number\nunable to parse 'cpu value=2 5\r': bad timestamp"
    );
}

#[test]
fn comments_blank_lines_and_whitespace() {
    let body = b"# a comment\n\n   \n  # indented comment\n\tcpu v=1 1\ncpu v=2 2   \n";
    let parsed = parse_body(body, &ParseOptions::default());
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert_eq!(
        parsed.points.iter().map(|p| p.time).collect::<Vec<_>>(),
        [1, 2]
    );
}

#[test]
fn good_lines_survive_bad_ones() {
    let parsed = parse_body(
        b"cpu value=1 1\nbad line\ncpu value=2 1000\n",
        &ParseOptions::default(),
    );
    assert_eq!(parsed.points.len(), 2);
    assert_eq!(parsed.errors.len(), 1);
}

#[test]
fn duplicate_field_keys_later_wins() {
    let p = one("cpu a=1,b=2,a=3 1").unwrap();
    assert_eq!(
        p.fields,
        vec![
            (Cow::from("a"), FieldValue::Float(3.0)),
            (Cow::from("b"), FieldValue::Float(2.0))
        ]
    );
}

#[test]
fn precision_and_default_time() {
    let opts = |p| ParseOptions {
        precision: p,
        default_time: 1_234_567_891_234_567_891,
        allow_unsigned: false,
    };
    let t = |line: &str, p| parse_line(line.as_bytes(), &opts(p)).unwrap().unwrap().time;
    assert_eq!(t("m v=1 5", Precision::Seconds), 5_000_000_000);
    assert_eq!(t("m v=1 5", Precision::Milliseconds), 5_000_000);
    assert_eq!(t("m v=1 5", Precision::Microseconds), 5_000);
    assert_eq!(t("m v=1 5", Precision::Minutes), 300_000_000_000);
    assert_eq!(t("m v=1 5", Precision::Hours), 18_000_000_000_000);
    assert_eq!(t("m v=1 -5", Precision::Seconds), -5_000_000_000);
    // server time is truncated to the precision
    assert_eq!(
        t("m v=1", Precision::Nanoseconds),
        1_234_567_891_234_567_891
    );
    assert_eq!(t("m v=1", Precision::Seconds), 1_234_567_891_000_000_000);
    assert_eq!(Precision::from_param("xyz"), Precision::Nanoseconds);
    assert_eq!(Precision::from_param("µ"), Precision::Microseconds);
    let e = parse_line(b"m v=1 99999999999999", &opts(Precision::Hours)).unwrap_err();
    assert_eq!(
        e.kind.to_string(),
        "time outside range -9223372036854775806 - 9223372036854775806"
    );
}

#[test]
fn max_key_length() {
    let long = "a".repeat(70_000);
    assert!(err(&format!("{long} v=1")).ends_with("max key length exceeded: 70000 > 65535"));
}

#[test]
fn invalid_utf8_is_an_error_not_a_panic() {
    let parsed = parse_body(b"cpu,h=\xff v=1 1\ncpu v=1 2\n", &ParseOptions::default());
    assert_eq!(parsed.points.len(), 1);
    assert!(parsed.errors[0].to_string().ends_with("invalid UTF-8"));
}

fn name() -> impl Strategy<Value = String> {
    // Names never end in a backslash: 1.x cannot round-trip those either.
    "[a-zA-Z0-9_ ,=\"é.\\-]{0,6}[a-zA-Z0-9_ ,=é.-]"
        .prop_filter("not a comment", |s| !s.starts_with('#'))
}

fn field_value() -> impl Strategy<Value = FieldValue<'static>> {
    prop_oneof![
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(FieldValue::Float),
        any::<i64>().prop_map(FieldValue::Integer),
        any::<bool>().prop_map(FieldValue::Boolean),
        "[ -~\n\té\\\\\"]{0,20}".prop_map(|s| FieldValue::String(Cow::Owned(s))),
    ]
}

fn point() -> impl Strategy<Value = Point<'static>> {
    (
        name(),
        proptest::collection::btree_map(name(), name(), 0..4),
        proptest::collection::btree_map(name(), field_value(), 1..4),
        line_protocol::MIN_NANO_TIME..=line_protocol::MAX_NANO_TIME,
    )
        .prop_filter(
            "measurement may not start with a space or comma",
            |(m, ..)| !m.starts_with([' ', ',', '\t']),
        )
        .prop_map(|(m, tags, fields, time)| Point {
            measurement: Cow::Owned(m),
            tags: tags
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k), Cow::Owned(v)))
                .collect(),
            fields: fields
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k), v))
                .collect(),
            time,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn format_then_parse_is_identity(p in point()) {
        let line = format_point(&p);
        let back = parse_line(line.as_bytes(), &ParseOptions::default());
        prop_assert_eq!(back, Ok(Some(p)), "line: {}", line);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_body(&bytes, &ParseOptions::default());
    }
}
