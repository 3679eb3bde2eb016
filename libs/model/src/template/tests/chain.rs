use super::super::*;
use super::{T0, layer, tag};

const MIN: i64 = 60_000;

fn store() -> Vec<TemplateTag> {
    vec![
        tag("base", "latest", T0, r#"{"image":"old-base"}"#),
        tag("base", "latest", T0 + MIN, r#"{"image":"base-img","environment_variables":{"LEVEL":"base"}}"#),
        tag("mid", "latest", T0 + 2 * MIN, r#"{"template":"base","environment_variables":{"LEVEL":"mid"}}"#),
        tag("top", "v1", T0 + 3 * MIN, r#"{"template":"mid:latest","resources":{"gpus":1}}"#),
        tag("cyca", "latest", T0, r#"{"template":"cycb:v1"}"#),
        tag("cycb", "v1", T0, r#"{"template":"cyca"}"#),
        tag("loner", "latest", T0, r#"{"template":"loner:other"}"#),
        tag("loner", "other", T0, "{}"),
        tag("dangling", "latest", T0, r#"{"template":"nothere"}"#),
        tag("entry", "latest", T0, r#"{"template":"cyca"}"#),
        tag("badref", "latest", T0, r#"{"template":"x@y"}"#),
    ]
}

type Outcome = Result<(Option<&'static str>, &'static [&'static str]), &'static str>;

/// The pod's `template`, then either the pinned reference and layer labels (deepest first)
/// or the error message.
#[rustfmt::skip]
const ROWS: &[(Option<&str>, Outcome)] = &[
    (None, Ok((None, &["pod"]))),
    (Some(""), Ok((None, &["pod"]))),
    (Some("base"), Ok((Some("base:latest@2024-06-10-17:21:27"), &["template base:latest@2024-06-10-17:21:27", "pod"]))),
    (Some("base:latest@2024-06-10-17:20:27"), Ok((Some("base:latest@2024-06-10-17:20:27"), &["template base:latest@2024-06-10-17:20:27", "pod"]))),
    (Some("top:v1"), Ok((Some("top:v1@2024-06-10-17:23:27"), &[
        "template base:latest@2024-06-10-17:21:27",
        "template mid:latest@2024-06-10-17:22:27",
        "template top:v1@2024-06-10-17:23:27",
        "pod",
    ]))),
    (Some("nothere"), Err("template tag not found: 'nothere:latest'")),
    (Some("base:v9"), Err("template tag not found: 'base:v9'")),
    (Some("base:latest@2024-06-10-17:20:28"), Err("template tag not found: 'base:latest@2024-06-10-17:20:28'")),
    (Some("dangling"), Err("template tag not found: 'nothere:latest'")),
    (Some("cyca"), Err("template cycle: cyca:latest -> cycb:v1 -> cyca:latest")),
    (Some("cycb:v1"), Err("template cycle: cycb:v1 -> cyca:latest -> cycb:v1")),
    (Some("loner"), Err("template cycle: loner:latest -> loner:other")),
    (Some("entry"), Err("template cycle: cyca:latest -> cycb:v1 -> cyca:latest")),
    (Some("Bad"), Err("invalid template reference 'Bad': template id: must match")),
    (Some("badref"), Err("invalid template reference 'x@y': a timestamp needs a tag")),
];

#[test]
fn chain_table() {
    let tags = store();
    for (template, want) in ROWS {
        let pod = PodLayer { template: template.map(String::from), ..PodLayer::default() };
        let got = resolve(&pod, |r| select_tag(&tags, r).cloned());
        match (want, got) {
            (Ok((pinned, labels)), Ok((got_pinned, got_tags))) => {
                assert_eq!(got_pinned.map(|r| r.to_string()).as_deref(), *pinned, "{template:?}");
                let layers = layers_of(&got_tags, &pod);
                let got_labels: Vec<String> = layers.iter().map(|(s, _)| s.to_string()).collect();
                assert_eq!(got_labels, *labels, "{template:?}");
            }
            (Err(msg), Err(e)) => assert!(e.to_string().starts_with(msg), "{template:?}: {e}"),
            (want, got) => panic!("{template:?}: expected {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn self_reference_is_a_cycle() {
    let tags = vec![tag("selfish", "latest", T0, r#"{"template":"selfish:latest"}"#)];
    let pod = layer(r#"{"template":"selfish"}"#);
    let err = resolve(&pod, |r| select_tag(&tags, r).cloned()).expect_err("cycle");
    assert_eq!(err, ResolveError::Cycle { chain: vec!["selfish:latest".into(), "selfish:latest".into()] });
}

fn tower(levels: usize) -> Vec<TemplateTag> {
    (0..levels)
        .map(|i| {
            let def = if i + 1 < levels { format!(r#"{{"template":"tpl{}"}}"#, i + 1) } else { "{}".into() };
            tag(&format!("tpl{i}"), "latest", T0, &def)
        })
        .collect()
}

#[test]
fn depth_limit() {
    let pod = layer(r#"{"template":"tpl0"}"#);
    for (levels, ok) in [(MAX_TEMPLATE_DEPTH, true), (MAX_TEMPLATE_DEPTH + 1, false)] {
        let tags = tower(levels);
        let mut lookups = 0;
        let got = resolve(&pod, |r| {
            lookups += 1;
            select_tag(&tags, r).cloned()
        });
        assert!(lookups <= MAX_TEMPLATE_DEPTH, "{levels}: {lookups} lookups");
        match got {
            Ok((_, resolved)) => {
                assert!(ok, "{levels} levels must be too deep");
                assert_eq!(resolved.len(), levels);
                assert_eq!(
                    resolved.first().map(|t| t.template_id.as_str()),
                    Some(format!("tpl{}", levels - 1).as_str())
                );
            }
            Err(e) => {
                assert!(!ok, "{levels} levels: {e}");
                assert_eq!(e, ResolveError::TooDeep { limit: 32 });
                assert_eq!(e.to_string(), "templates are nested more than 32 levels deep");
            }
        }
    }
}

#[test]
fn stepping_a_chain_by_hand() {
    let tags = store();
    let pod = layer(r#"{"template":"mid","image":"mine"}"#);
    let mut chain = Chain::start(&pod).expect("valid reference");
    assert_eq!(chain.next_ref().map(ToString::to_string).as_deref(), Some("mid:latest"));
    assert_eq!(chain.pinned(), None);
    // A tag of another template never answers the reference.
    let wrong = select_tag(&tags, &TemplateRef::parse("base").expect("valid")).cloned();
    let mut bad = chain.clone();
    assert_eq!(bad.push(wrong), Err(ResolveError::NotFound { reference: "mid:latest".into() }));
    chain.push(select_tag(&tags, &TemplateRef::parse("mid").expect("valid")).cloned()).expect("mid resolves");
    assert_eq!(chain.pinned().map(|r| r.to_string()).as_deref(), Some("mid:latest@2024-06-10-17:22:27"));
    assert_eq!(chain.next_ref().map(ToString::to_string).as_deref(), Some("base:latest"));
    chain.push(select_tag(&tags, &TemplateRef::parse("base").expect("valid")).cloned()).expect("base resolves");
    assert!(chain.is_complete());
    let before = chain.clone();
    chain.push(None).expect("pushing into a complete chain is a no-op");
    assert_eq!(chain, before);

    let derived = merge("web1", &chain.layers(&pod));
    assert_eq!(derived.spec.template, "mid:latest@2024-06-10-17:22:27");
    assert_eq!(derived.spec.image, "mine");
    assert_eq!(derived.spec.environment_variables.get("LEVEL").map(String::as_str), Some("mid"));
    assert_eq!(derived.provenance["environment_variables.LEVEL"], "template mid:latest@2024-06-10-17:22:27");
    assert_eq!(derived.provenance["image"], "pod");
    assert_eq!(derived.provenance["template"], "pod");
}

#[test]
fn start_rejects_a_bad_pod_reference() {
    let err = Chain::start(&layer(r#"{"template":"a:b:c"}"#)).expect_err("bad reference");
    assert!(matches!(&err, ResolveError::BadReference { reference, .. } if reference == "a:b:c"), "{err}");
}
