use super::super::*;

fn fields(errors: &[crate::FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.field.as_str()).collect()
}

#[test]
fn new_template_table() {
    #[rustfmt::skip]
    let rows: &[(&str, &[&str])] = &[
        (r#"{"template_id":"jupyter","description":"notebooks","metatags":["a"],"archive_message":""}"#, &[]),
        (r#"{"template_id":"jupyter"}"#, &[]),
        (r#"{}"#, &["template_id", "template_id"]),
        (r#"{"template_id":"tags"}"#, &["template_id"]),
        (r#"{"template_id":"Jupyter"}"#, &["template_id"]),
        (r#"{"template_id":"jupyter","description":"caf\u00e9"}"#, &["description"]),
    ];
    for (json, want) in rows {
        let body: NewTemplate = serde_json::from_str(json).expect("parses");
        assert_eq!(fields(&body.validate()), *want, "{json}");
    }
    let long = NewTemplate { template_id: "abc".into(), description: "x".repeat(1601), ..NewTemplate::default() };
    assert_eq!(fields(&long.validate()), ["description"]);
    let max = NewTemplate { description: "x".repeat(1600), ..long };
    assert!(max.validate().is_empty());
    assert!(serde_json::from_str::<NewTemplate>(r#"{"template_id":"abc","owner":"x"}"#).is_err());
}

#[test]
fn template_create_and_update() {
    let body: NewTemplate = serde_json::from_str(r#"{"template_id":"jupyter","description":"d"}"#).expect("parses");
    let mut t = body.into_template("tacc", "alice", 10);
    assert_eq!((t.tenant.as_str(), t.owner.as_str(), t.creation_ts, t.update_ts), ("tacc", "alice", 10, 10));
    let same: UpdateTemplate = serde_json::from_str(r#"{"description":"d"}"#).expect("parses");
    assert!(!same.apply(&mut t, 20));
    assert_eq!(t.update_ts, 10);
    let change: UpdateTemplate =
        serde_json::from_str(r#"{"metatags":["gpu"],"archive_message":"old"}"#).expect("parses");
    assert!(change.validate().is_empty());
    assert!(change.apply(&mut t, 30));
    assert_eq!(
        (t.description.as_str(), t.metatags.clone(), t.archive_message.as_str(), t.update_ts),
        ("d", vec!["gpu".to_string()], "old", 30)
    );
    let bad = UpdateTemplate { description: Some("x".repeat(1601)), ..UpdateTemplate::default() };
    assert_eq!(fields(&bad.validate()), ["description"]);
    assert!(serde_json::from_str::<UpdateTemplate>(r#"{"template_id":"x"}"#).is_err());
    // Stored templates may grow fields (permissions) without breaking older readers.
    let stored = r#"{"template_id":"jupyter","tenant":"tacc","permissions":["alice:ADMIN"]}"#;
    assert_eq!(serde_json::from_str::<Template>(stored).expect("parses").template_id, "jupyter");
}

#[test]
fn new_template_tag_table() {
    #[rustfmt::skip]
    let rows: &[(&str, Result<&[&str], ()>)] = &[
        (r#"{"pod_definition":{"image":"x"},"commit_message":"first"}"#, Ok(&[])),
        (r#"{"pod_definition":{},"commit_message":"m","tag":"v1.0"}"#, Ok(&[])),
        (r#"{"pod_definition":{},"commit_message":"m","tag":"v 1"}"#, Ok(&["tag"])),
        (r#"{"pod_definition":{},"commit_message":"m","tag":""}"#, Ok(&["tag"])),
        (r#"{"pod_definition":{},"commit_message":"caf\u00e9"}"#, Ok(&["commit_message"])),
        (r#"{"pod_definition":{"image":"a:b:c","networking":{"web":{"port":1}}},"commit_message":"m"}"#, Ok(&["pod_definition.image", "pod_definition.networking.web.port"])),
        (r#"{"commit_message":"m"}"#, Err(())),
        (r#"{"pod_definition":{}}"#, Err(())),
        (r#"{"pod_definition":{},"commit_message":"m","extra":1}"#, Err(())),
        (r#"{"pod_definition":{"bogus":1},"commit_message":"m"}"#, Err(())),
    ];
    for (json, want) in rows {
        match (serde_json::from_str::<NewTemplateTag>(json), want) {
            (Ok(body), Ok(want)) => assert_eq!(fields(&body.validate()), *want, "{json}"),
            (Err(_), Err(())) => {}
            (got, _) => panic!("{json}: unexpected {got:?}"),
        }
    }
    let body: NewTemplateTag = serde_json::from_str(r#"{"pod_definition":{},"commit_message":"m"}"#).expect("parses");
    assert_eq!(body.tag, "latest");
    let long = NewTemplateTag { commit_message: "x".repeat(256), ..body };
    assert_eq!(fields(&long.validate()), ["commit_message"]);
}

#[test]
fn new_template_tag_from_pod_table() {
    #[rustfmt::skip]
    let rows: &[(&str, Result<&[&str], ()>)] = &[
        (r#"{"template_id":"jupyter","commit_message":"m"}"#, Ok(&[])),
        (r#"{"template_id":"jupyter","commit_message":"m","tag":"v2"}"#, Ok(&[])),
        (r#"{"template_id":"tags","commit_message":"m","tag":"a:b"}"#, Ok(&["template_id", "tag"])),
        (r#"{"commit_message":"m"}"#, Err(())),
        (r#"{"template_id":"jupyter"}"#, Err(())),
        (r#"{"template_id":"jupyter","commit_message":"m","pod_id":"x"}"#, Err(())),
    ];
    for (json, want) in rows {
        match (serde_json::from_str::<NewTemplateTagFromPod>(json), want) {
            (Ok(body), Ok(want)) => {
                assert_eq!(fields(&body.validate()), *want, "{json}");
                assert!(!body.tag.is_empty());
            }
            (Err(_), Err(())) => {}
            (got, _) => panic!("{json}: unexpected {got:?}"),
        }
    }
}
