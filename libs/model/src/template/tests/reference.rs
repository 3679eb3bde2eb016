use super::super::*;
use super::T0;

type Parsed = Result<(&'static str, &'static str, Option<&'static str>), &'static str>;

/// `input` parses to `(id, tag, timestamp)`, or fails with a message containing the text.
#[rustfmt::skip]
const ROWS: &[(&str, Parsed)] = &[
    ("base", Ok(("base", "latest", None))),
    ("base:v1", Ok(("base", "v1", None))),
    ("base:V1.2-rc", Ok(("base", "V1.2-rc", None))),
    ("base:latest@2024-06-10-17:20:27", Ok(("base", "latest", Some("2024-06-10-17:20:27")))),
    ("b42:x@2024-02-29-00:00:00", Ok(("b42", "x", Some("2024-02-29-00:00:00")))),
    ("", Err("empty")),
    ("base@2024-06-10-17:20:27", Err("a timestamp needs a tag")),
    ("base:a:b", Err("more than one ':'")),
    ("base:a:b@2024-06-10-17:20:27", Err("more than one ':'")),
    ("base:a@2024-06-10-17:20:27@x", Err("more than one '@'")),
    ("base:", Err("tag: must be 1 to 80")),
    ("base:a_b", Err("tag: must match ^[a-zA-Z0-9.-]+$")),
    ("base:a b", Err("tag: must match")),
    ("Base", Err("template id: must match ^[a-z][a-z0-9]*$")),
    ("1base", Err("starting with a letter")),
    ("ab", Err("template id: must be 3 to 64 characters long (got 2)")),
    ("my-base", Err("template id: must match")),
    ("tags", Err("'tags' is a reserved word")),
    (":v1", Err("template id: must be 3 to 64")),
    ("base:latest@", Err("timestamp: must be a UTC time")),
    ("base:latest@2024-06-10 17:20:27", Err("timestamp")),
    ("base:latest@2024-6-10-17:20:27", Err("timestamp")),
    ("base:latest@2024-02-30-00:00:00", Err("timestamp")),
    ("base:latest@2024-06-10-24:00:00", Err("timestamp")),
    ("base:latest@+024-06-10-17:20:27", Err("timestamp")),
    ("base:latest@2024-06-10T17:20:27", Err("timestamp")),
];

#[test]
fn parse_table() {
    for (input, expected) in ROWS {
        let got = TemplateRef::parse(input);
        match (expected, &got) {
            (Ok((id, tag, ts)), Ok(r)) => {
                let want =
                    TemplateRef { template_id: id.to_string(), tag: tag.to_string(), timestamp: ts.map(String::from) };
                assert_eq!(r, &want, "{input:?}");
            }
            (Err(fragment), Err(msg)) => {
                assert!(msg.contains(fragment), "{input:?}: {msg:?} lacks {fragment:?}");
                assert!(msg.starts_with(|c: char| c.is_ascii_lowercase()), "{input:?}: {msg:?} starts lowercase");
            }
            _ => panic!("{input:?}: expected {expected:?}, got {got:?}"),
        }
    }
}

#[test]
fn display_round_trips_and_pinning() {
    for (text, shown, pinned) in [
        ("base", "base:latest", false),
        ("base:v1", "base:v1", false),
        ("base:v1@2024-06-10-17:20:27", "base:v1@2024-06-10-17:20:27", true),
    ] {
        let r = TemplateRef::parse(text).expect("valid");
        assert_eq!((r.to_string().as_str(), r.is_pinned()), (shown, pinned), "{text}");
        assert_eq!(TemplateRef::parse(shown).expect("display parses"), r, "{text}");
        assert_eq!(r.unpinned().to_string(), shown.split('@').next().expect("head"), "{text}");
        assert!(!r.unpinned().is_pinned());
    }
}

#[test]
fn id_and_tag_rules() {
    let id_rows: &[(&str, bool)] = &[
        ("abc", true),
        ("a1b2", true),
        (&"a".repeat(64), true),
        (&"a".repeat(65), false),
        ("ab", false),
        ("tags", false),
        ("tag", true),
        ("aBc", false),
        ("a_c", false),
    ];
    for (id, ok) in id_rows {
        let mut out = Vec::new();
        validate_template_id("template_id", id, &mut out);
        assert_eq!(out.is_empty(), *ok, "{id}: {out:?}");
        assert!(out.iter().all(|e| e.field == "template_id"));
    }
    let tag_rows: &[(&str, bool)] = &[
        ("latest", true),
        ("V1.0-rc.2", true),
        ("x", true),
        ("", false),
        (&"a".repeat(80), true),
        (&"a".repeat(81), false),
        ("a@b", false),
        ("a:b", false),
        ("a/b", false),
    ];
    for (tag, ok) in tag_rows {
        let mut out = Vec::new();
        validate_tag_name("tag", tag, &mut out);
        assert_eq!(out.is_empty(), *ok, "{tag}: {out:?}");
    }
}

#[test]
fn tag_time_formatting() {
    #[rustfmt::skip]
    let rows: &[(i64, &str)] = &[
        (T0, "2024-06-10-17:20:27"),
        (T0 + 999, "2024-06-10-17:20:27"),
        (T0 + 1_000, "2024-06-10-17:20:28"),
        (0, "1970-01-01-00:00:00"),
        (-5_000, "1970-01-01-00:00:00"),
        (i64::MAX, "9999-12-31-23:59:59"),
    ];
    for (ms, text) in rows {
        assert_eq!(format_tag_time(*ms), *text, "{ms}");
        let back = parse_tag_time(text).expect("formatted time parses");
        assert_eq!(format_tag_time(back), *text);
    }
    assert_eq!(parse_tag_time("2024-06-10-17:20:27"), Some(T0));
}

#[test]
fn next_tag_time_is_whole_seconds_and_strictly_newer() {
    #[rustfmt::skip]
    let rows: &[(i64, Option<i64>, i64)] = &[
        (T0 + 400, None, T0),                      // truncated to the second
        (T0 + 400, Some(T0 - 5_000), T0),          // older tags don't matter
        (T0 + 400, Some(T0), T0 + 1_000),          // same second: bumped
        (T0 + 400, Some(T0 + 900), T0 + 1_000),    // newest not truncated in input
        (T0, Some(T0 + 3_000), T0 + 4_000),        // clock behind the newest tag
    ];
    for (now, newest, want) in rows {
        let got = next_tag_time(*now, *newest);
        assert_eq!(got, *want, "now {now} newest {newest:?}");
        if let Some(n) = newest {
            assert!(format_tag_time(got) > format_tag_time(*n), "distinct tag_timestamp");
        }
    }
}
