use super::super::*;
use super::{T0, tag};

fn store() -> Vec<TemplateTag> {
    vec![
        tag("alpha", "latest", T0, r#"{"image":"a1"}"#),
        tag("alpha", "latest", T0 + 60_000, r#"{"image":"a2"}"#),
        tag("alpha", "v1", T0 + 120_000, r#"{"image":"a-v1"}"#),
        // Another template's versions, including a newer `latest` and the same time as alpha's.
        tag("beta", "latest", T0 + 600_000, r#"{"image":"b-new"}"#),
        tag("beta", "latest", T0, r#"{"image":"b-same-second"}"#),
        tag("beta", "v1", T0 + 30_000, r#"{"image":"b-v1"}"#),
    ]
}

#[test]
fn select_table() {
    #[rustfmt::skip]
    let rows: &[(&str, Option<&str>)] = &[
        ("alpha", Some("a2")),                                  // newest latest
        ("alpha:latest", Some("a2")),
        ("alpha:latest@2024-06-10-17:20:27", Some("a1")),       // pinned exact, not newest
        ("alpha:latest@2024-06-10-17:21:27", Some("a2")),
        ("alpha:latest@2024-06-10-17:20:28", None),             // no version at that second
        ("alpha:v1", Some("a-v1")),
        ("alpha:v1@2024-06-10-17:20:27", None),                 // that time belongs to latest
        ("alpha:v2", None),
        ("beta", Some("b-new")),                                // never alpha's
        ("beta:latest@2024-06-10-17:20:27", Some("b-same-second")),
        ("beta:v1", Some("b-v1")),
        ("gamma", None),                                        // no cross-template fallback
        ("gamma:latest@2024-06-10-17:20:27", None),
    ];
    let tags = store();
    for (text, want) in rows {
        let r = TemplateRef::parse(text).expect("valid ref");
        let got = select_tag(&tags, &r);
        assert_eq!(got.and_then(|t| t.pod_definition.image.as_deref()), *want, "{text}");
        if let Some(t) = got {
            assert_eq!(t.template_id, r.template_id, "{text}");
            assert_eq!(t.tag, r.tag, "{text}");
        }
    }
}

#[test]
fn tag_timestamp_and_pinned_ref() {
    let t = tag("alpha", "v1", T0 + 500, "{}");
    assert_eq!(t.tag_timestamp, "v1@2024-06-10-17:20:27");
    assert_eq!(t.pinned_ref().to_string(), "alpha:v1@2024-06-10-17:20:27");
    assert_eq!(select_tag(std::slice::from_ref(&t), &t.pinned_ref()), Some(&t));
    // A stored tag without a time part falls back to creation_ts.
    let odd = TemplateTag { tag_timestamp: "v1".into(), ..t.clone() };
    assert_eq!(odd.pinned_ref(), t.pinned_ref());
}

#[test]
fn tag_serialises_sparse_definition() {
    let t = tag("alpha", "v1", T0, r#"{"image":"x","environment_variables":{"GONE":null}}"#);
    let json = serde_json::to_value(&t).expect("serialises");
    assert_eq!(json["pod_definition"], serde_json::json!({"image":"x","environment_variables":{"GONE":null}}));
    assert_eq!(serde_json::from_value::<TemplateTag>(json).expect("parses back"), t);
}
