//! Round-trips and override precedence over generated valid templates.

use proptest::collection::btree_map;
use proptest::option::of;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;

/// Free text, including what YAML would misread if left unquoted.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,12}",
        prop::sample::select(vec!["yes", "null", "~", "1.0", "0x1F", "- a", "a: b", "#x", "'q'", "\"", "@x"])
            .prop_map(String::from),
        "[a-z \n\t]{1,12}",
    ]
}

fn label() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9 _.-]{0,15}"
}

fn env_name() -> impl Strategy<Value = String> {
    "[A-Z_][A-Z0-9_]{0,5}"
}

fn volume() -> impl Strategy<Value = String> {
    "[a-e][a-e0-9-]{1,3}"
}

fn git() -> impl Strategy<Value = Git> {
    (
        prop::sample::select(vec!["/srv/git/a.git", "https://example.test/org/b", "git@example.test:c.git"]),
        of("[0-9a-f]{40}"),
        of("[a-z][a-z0-9]{0,3}(/[a-z0-9]{1,3})?"),
        of("[a-z][a-z0-9-]{0,10}"),
        of("/opt/[a-z]{1,6}"),
    )
        .prop_map(|(repository, commit, branch, credential, destination_dir)| Git {
            repository: repository.to_string(),
            commit,
            branch,
            credential: credential.and_then(|c| CredentialRef::parse(&c).ok()),
            destination_dir,
        })
}

fn resources() -> impl Strategy<Value = SessionResources> {
    (of(1u32..10_000_000), of(1u32..10_000_000), of(0u32..8)).prop_map(|(cpu, mem, gpus)| SessionResources {
        cpu: cpu.and_then(Cpu::from_millicores),
        mem: mem.and_then(Mem::from_mib),
        gpus,
    })
}

prop_compose! {
    fn template()(
        api_version in prop::sample::select(vec!["v1", "6", "1.0"]),
        name in label(),
        tag in of(label()),
        batch in any::<bool>(),
        timeout in of(1..=MAX_BATCH_TIMEOUT),
        image in "[a-z][a-z0-9/._-]{0,10}(:[a-z0-9.]{1,5})?",
        environ in btree_map(env_name(), text(), 0..4),
        bootstrap in of(text().prop_filter("not blank", |s| !s.trim().is_empty())),
        startup in of(text().prop_filter("not blank", |s| !s.trim().is_empty())),
        git in of(git()),
        mounts in btree_map(volume(), of("/mnt/[a-z]{1,4}"), 0..4),
        resources in resources(),
    ) -> SessionTemplate {
        let session_type = if batch { SessionType::Batch } else { SessionType::Interactive };
        // Batch sessions need a command; timeouts belong to batch sessions only.
        let startup_command = if batch { Some(startup.unwrap_or_else(|| "true".into())) } else { startup };
        // Two volumes at one path are refused; keep the first of each path.
        let mut seen = std::collections::BTreeSet::new();
        let mounts = mounts.into_iter().filter(|(_, p)| p.is_none() || seen.insert(p.clone())).collect();
        SessionTemplate {
            api_version: api_version.into(),
            kind: Kind::TaskTemplate,
            metadata: Metadata { name, tag },
            spec: Spec {
                session_type,
                kernel: Kernel { image, environ, run: Run { bootstrap, startup_command }, git },
                mounts,
                resources,
                batch_timeout: if batch { timeout } else { None },
            },
        }
    }
}

/// Per environment variable a new value or `null`; for cpu, mem and gpus: untouched,
/// `null`, or a new value.
type Overrides = (BTreeMap<String, Option<String>>, [Option<Option<u32>>; 3]);

fn overrides() -> impl Strategy<Value = Overrides> {
    let slot = || of(of(1u32..100_000));
    (btree_map(env_name(), of(text()), 0..4), [slot(), slot(), slot()])
}

proptest! {
    #[test]
    fn parse_of_render_is_identity(t in template()) {
        prop_assert_eq!(t.validate(), Ok(()));
        for format in [Format::Yaml, Format::Json] {
            let text = t.render(format).expect("valid in this test");
            prop_assert_eq!(parse(&text, format), Ok(t.clone()), "{:?}:\n{}", format, text);
        }
        let value = serde_json::to_value(&t).expect("valid in this test");
        prop_assert_eq!(serde_json::from_value::<SessionTemplate>(value).expect("valid in this test"), t);
    }

    #[test]
    fn override_keys_win_and_untouched_keys_survive(t in template(), (env, res) in overrides(), image in of("[a-z]{1,6}")) {
        let environ: Map<String, Value> = env.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let values = [
            res[0].map(|v| v.map(|n| json!(format!("{n}m")))),
            res[1].map(|v| v.map(|n| json!(format!("{n}m")))),
            res[2].map(|v| v.map(|n| json!(n % 4))),
        ];
        let mut resources = Map::new();
        for (key, slot) in ["cpu", "mem", "gpus"].into_iter().zip(values) {
            if let Some(v) = slot {
                resources.insert(key.into(), v.unwrap_or(Value::Null));
            }
        }
        let mut kernel = json!({"environ": environ});
        if let Some(image) = &image {
            kernel["image"] = json!(image);
        }
        let over = json!({"spec": {"kernel": kernel, "resources": resources}});
        let got = apply_overrides(&t, &over).expect("valid in this test");

        for (k, v) in &t.spec.kernel.environ {
            if !env.contains_key(k) {
                prop_assert_eq!(got.spec.kernel.environ.get(k), Some(v), "untouched {} survives", k);
            }
        }
        for (k, v) in &env {
            prop_assert_eq!(got.spec.kernel.environ.get(k), v.as_ref(), "override of {} wins", k);
        }
        let want_cpu = match res[0] { None => t.spec.resources.cpu, Some(v) => v.and_then(Cpu::from_millicores) };
        let want_mem = match res[1] { None => t.spec.resources.mem, Some(v) => v.and_then(Mem::from_mib) };
        let want_gpus = match res[2] { None => t.spec.resources.gpus, Some(v) => v.map(|n| n % 4) };
        prop_assert_eq!(got.spec.resources, SessionResources { cpu: want_cpu, mem: want_mem, gpus: want_gpus });
        prop_assert_eq!(&got.spec.kernel.image, image.as_ref().unwrap_or(&t.spec.kernel.image));

        // Everything not mentioned is exactly as it was.
        let mut rest = got.clone();
        rest.spec.kernel.environ = t.spec.kernel.environ.clone();
        rest.spec.resources = t.spec.resources;
        rest.spec.kernel.image = t.spec.kernel.image.clone();
        prop_assert_eq!(rest, t);
    }

    #[test]
    fn interactive_templates_round_trip_through_pod_layers(t in template()) {
        let mut t = t;
        t.api_version = "v1".into();
        t.metadata.tag = None;
        t.spec.session_type = SessionType::Interactive;
        t.spec.batch_timeout = None;
        t.spec.kernel.run.bootstrap = None;
        t.spec.kernel.git = None;
        let back = from_pod_layer(&t.metadata.name, &to_pod_layer(&t).layer).expect("valid in this test");
        prop_assert_eq!(back.template, t);
        prop_assert!(back.dropped.is_empty());
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        let _ = parse(&s, Format::Yaml);
        let _ = parse(&s, Format::Json);
    }
}
