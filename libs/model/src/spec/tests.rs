use super::*;

/// A valid spec every row starts from.
fn base() -> PodSpec {
    PodSpec { pod_id: "mypod".into(), image: "corral-test/busybox:latest".into(), ..PodSpec::default() }
}

fn net(port: u32) -> Networking {
    Networking { port, ..Networking::default() }
}

/// A spec edit and every error it must produce, as (field path, message fragment).
struct Row {
    name: &'static str,
    edit: fn(&mut PodSpec),
    errors: &'static [(&'static str, &'static str)],
}

#[rustfmt::skip]
fn rows() -> Vec<Row> {
    vec![
        Row { name: "base spec is valid", edit: |_| {}, errors: &[] },
        Row { name: "pod_id too short", edit: |s| s.pod_id = "ab".into(), errors: &[("pod_id", "3 to 64")] },
        Row { name: "pod_id of 3 is fine", edit: |s| s.pod_id = "abc".into(), errors: &[] },
        Row { name: "pod_id of 64 is fine", edit: |s| s.pod_id = "a".repeat(64), errors: &[] },
        Row { name: "pod_id too long", edit: |s| s.pod_id = "a".repeat(65), errors: &[("pod_id", "(got 65)")] },
        Row {
            name: "pod_id uppercase",
            edit: |s| s.pod_id = "myPod".into(),
            errors: &[("pod_id", "^[a-z][a-z0-9]*$")],
        },
        Row {
            name: "pod_id leading digit",
            edit: |s| s.pod_id = "1pod".into(),
            errors: &[("pod_id", "starting with a letter")],
        },
        Row { name: "pod_id with a dash", edit: |s| s.pod_id = "my-pod".into(), errors: &[("pod_id", "lowercase")] },
        Row {
            name: "pod_id reserved",
            edit: |s| s.pod_id = "images".into(),
            errors: &[("pod_id", "'images' is a reserved word")],
        },
        Row {
            name: "pod_id healthcheck reserved",
            edit: |s| s.pod_id = "healthcheck".into(),
            errors: &[("pod_id", "reserved")],
        },
        Row {
            name: "pod_id empty: length and pattern",
            edit: |s| s.pod_id = String::new(),
            errors: &[("pod_id", "(got 0)"), ("pod_id", "must match")],
        },
        Row {
            name: "image missing",
            edit: |s| s.image = String::new(),
            errors: &[("image", "required when no template")],
        },
        Row {
            name: "template instead of image",
            edit: |s| {
                s.image = String::new();
                s.template = "mytemplate".into();
            },
            errors: &[],
        },
        Row {
            name: "image with two colons",
            edit: |s| s.image = "a:b:c".into(),
            errors: &[("image", "at most one ':'")],
        },
        Row {
            name: "image with whitespace",
            edit: |s| s.image = "my image".into(),
            errors: &[("image", "whitespace")],
        },
        Row { name: "image too long", edit: |s| s.image = "i".repeat(256), errors: &[("image", "256 bytes")] },
        Row {
            name: "description non-ASCII",
            edit: |s| s.description = "café".into(),
            errors: &[("description", "ASCII")],
        },
        Row { name: "description of 255", edit: |s| s.description = "d".repeat(255), errors: &[] },
        Row {
            name: "description of 256",
            edit: |s| s.description = "d".repeat(256),
            errors: &[("description", "at most 255")],
        },
        Row {
            name: "env keys: good ones pass, bad ones are each named",
            edit: |s| {
                for k in ["GOOD_1", "_x", "1BAD", "BAD-KEY", "BAD KEY", ""] {
                    s.environment_variables.insert(k.into(), "v".into());
                }
            },
            errors: &[
                ("environment_variables.1BAD", "not start with a digit"),
                ("environment_variables.BAD-KEY", "letters, digits and '_'"),
                ("environment_variables.BAD KEY", "letters"),
                ("environment_variables.", "letters"),
            ],
        },
        Row {
            name: "env value too long",
            edit: |s| {
                s.environment_variables
                    .insert("BIG".into(), "v".repeat(16 * 1024 + 1));
            },
            errors: &[("environment_variables.BIG", "16385 bytes")],
        },
        Row {
            name: "command element too long and too many arguments",
            edit: |s| {
                s.command = Some(vec!["sh".into(), "c".repeat(16 * 1024 + 1)]);
                s.arguments = Some(vec!["a".into(); 257]);
            },
            errors: &[
                ("command[1]", "at most 16384"),
                ("arguments", "more than 256"),
            ],
        },
        Row {
            name: "ttl 100",
            edit: |s| s.time_to_stop_default = 100,
            errors: &[("time_to_stop_default", "(got 100)")],
        },
        Row {
            name: "ttl 299",
            edit: |s| s.time_to_stop_default = 299,
            errors: &[("time_to_stop_default", "at least 300")],
        },
        Row {
            name: "ttl -2",
            edit: |s| s.time_to_stop_default = -2,
            errors: &[("time_to_stop_default", "-1 (no limit)")],
        },
        Row { name: "ttl 0", edit: |s| s.time_to_stop_default = 0, errors: &[("time_to_stop_default", "(got 0)")] },
        Row { name: "ttl -1", edit: |s| s.time_to_stop_default = -1, errors: &[] },
        Row { name: "ttl 300", edit: |s| s.time_to_stop_default = 300, errors: &[] },
        Row { name: "instance ttl -1", edit: |s| s.time_to_stop_instance = Some(-1), errors: &[] },
        Row {
            name: "instance ttl 100",
            edit: |s| s.time_to_stop_instance = Some(100),
            errors: &[("time_to_stop_instance", "(got 100)")],
        },
        Row {
            name: "port 5",
            edit: |s| s.networking = [("default".into(), net(5))].into(),
            errors: &[("networking.default.port", "(got 5)")],
        },
        Row {
            name: "port 9",
            edit: |s| s.networking = [("default".into(), net(9))].into(),
            errors: &[("networking.default.port", "10 and 65535")],
        },
        Row {
            name: "port 10 and 65535",
            edit: |s| {
                s.networking = [("default".into(), net(10)), ("other".into(), net(65535))].into()
            },
            errors: &[],
        },
        Row {
            name: "port 65536",
            edit: |s| s.networking = [("default".into(), net(65536))].into(),
            errors: &[("networking.default.port", "(got 65536)")],
        },
        Row {
            name: "four networking entries are fine",
            edit: |s| {
                s.networking = ["default", "web", "api", "db5"]
                    .map(|n| (n.to_string(), net(8000)))
                    .into()
            },
            errors: &[],
        },
        Row {
            name: "five networking entries",
            edit: |s| {
                s.networking = ["default", "web", "api", "db5", "ssh"]
                    .map(|n| (n.to_string(), net(8000)))
                    .into()
            },
            errors: &[("networking", "at most 4")],
        },
        Row {
            name: "networking names: too short, uppercase, too long",
            edit: |s| {
                for n in ["ab".to_string(), "Web".into(), "n".repeat(65)] {
                    s.networking.insert(n, net(8000));
                }
            },
            errors: &[
                ("networking.ab", "3 to 64"),
                ("networking.Web", "lowercase"),
                (
                    "networking.nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn",
                    "3 to 64",
                ),
            ],
        },
        Row {
            name: "ip_allow_list: each bad entry is named",
            edit: |s| {
                let list = [
                    "10.0.0.0/8",
                    "192.168.1.7",
                    "0.0.0.0/0",
                    "*",
                    "10.0.0.1/33",
                    "300.1.1.1",
                    "10.0.0.1/",
                    "::1",
                ];
                s.networking.insert(
                    "default".into(),
                    Networking {
                        ip_allow_list: list.map(String::from).into(),
                        ..Networking::default()
                    },
                );
            },
            errors: &[
                ("networking.default.ip_allow_list", "'*'"),
                ("networking.default.ip_allow_list", "'10.0.0.1/33'"),
                ("networking.default.ip_allow_list", "'300.1.1.1'"),
                ("networking.default.ip_allow_list", "'10.0.0.1/'"),
                (
                    "networking.default.ip_allow_list",
                    "'::1' is not an IPv4 address or CIDR",
                ),
            ],
        },
        Row {
            name: "cors_max_age and return path",
            edit: |s| {
                let n = Networking {
                    cors_max_age: 101,
                    tapis_auth_return_path: "home".into(),
                    ..Networking::default()
                };
                s.networking.insert("default".into(), n);
            },
            errors: &[
                ("networking.default.cors_max_age", "0 and 100"),
                (
                    "networking.default.tapis_auth_return_path",
                    "start with '/'",
                ),
            ],
        },
        Row {
            name: "resources below and above bounds",
            edit: |s| {
                s.resources = Resources {
                    cpu_request: 249,
                    cpu_limit: 6001,
                    mem_request: 255,
                    mem_limit: 12289,
                    gpus: 0,
                }
            },
            errors: &[
                ("resources.cpu_request", "(got 249)"),
                ("resources.cpu_limit", "(got 6001)"),
                ("resources.mem_request", "(got 255)"),
                ("resources.mem_limit", "(got 12289)"),
            ],
        },
        Row {
            name: "resources at the bounds",
            edit: |s| {
                s.resources = Resources {
                    cpu_request: 250,
                    cpu_limit: 6000,
                    mem_request: 256,
                    mem_limit: 12288,
                    gpus: 1,
                }
            },
            errors: &[],
        },
        Row {
            name: "requests above limits",
            edit: |s| {
                s.resources = Resources {
                    cpu_request: 3000,
                    cpu_limit: 2000,
                    mem_request: 4000,
                    mem_limit: 3072,
                    gpus: 0,
                }
            },
            errors: &[
                (
                    "resources.cpu_request",
                    "must not exceed resources.cpu_limit",
                ),
                ("resources.mem_request", "must not exceed"),
            ],
        },
        Row {
            name: "request out of bounds and above its limit: both reported",
            edit: |s| s.resources.cpu_request = 7000,
            errors: &[
                ("resources.cpu_request", "(got 7000)"),
                ("resources.cpu_request", "must not exceed"),
            ],
        },
        Row {
            name: "gpus over max",
            edit: |s| s.resources.gpus = 2,
            errors: &[("resources.gpus", "at most 1 allowed (got 2)")],
        },
        Row {
            name: "three problems give three errors",
            edit: |s| {
                s.pod_id = "x".into();
                s.image = "a:b:c".into();
                s.time_to_stop_default = 100;
            },
            errors: &[
                ("pod_id", "3 to 64"),
                ("image", "one ':'"),
                ("time_to_stop_default", "at least 300"),
            ],
        },
    ]
}

/// Matches `got` against `want` as a multiset: every expected error once, nothing else.
fn mismatch(got: &[FieldError], want: &[(&str, &str)]) -> Option<String> {
    let mut left: Vec<&FieldError> = got.iter().collect();
    for (field, frag) in want {
        match left.iter().position(|e| e.field == *field && e.message.contains(frag)) {
            Some(i) => {
                left.remove(i);
            }
            None => return Some(format!("missing {field}: ..{frag}..")),
        }
    }
    (!left.is_empty()).then(|| format!("unexpected {left:?}"))
}

#[test]
fn validation_table() {
    let mut failures = Vec::new();
    for row in rows() {
        let mut spec = base();
        (row.edit)(&mut spec);
        let got = spec.validate(&Limits::default());
        if let Some(why) = mismatch(&got, row.errors) {
            failures.push(format!("{}: {why}\n  got {got:?}", row.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn limits_come_from_the_deployment() {
    let limits = Limits { max_gpus: 4, max_env_vars: 2, max_value_len: 8, ..Limits::default() };
    let mut spec = base();
    spec.resources.gpus = 4;
    spec.environment_variables =
        [("A", "12345678"), ("B", "123456789"), ("C", "")].map(|(k, v)| (k.into(), v.into())).into();
    let got = spec.validate(&limits);
    let want =
        [("environment_variables", "has 3 entries; at most 2"), ("environment_variables.B", "9 bytes long; at most 8")];
    assert_eq!(mismatch(&got, &want), None, "got {got:?}");
}

#[test]
fn every_reserved_word_is_refused() {
    for word in RESERVED_POD_IDS {
        let mut out = Vec::new();
        validate_pod_id("pod_id", word, &mut out);
        assert!(out.iter().any(|e| e.message.contains("reserved")), "{word}: {out:?}");
    }
}

#[test]
fn minimal_json_gets_tapis_defaults() {
    let spec: PodSpec = serde_json::from_str(r#"{"pod_id":"abc","image":"x"}"#).expect("minimal spec parses");
    let (name, default) = spec.default_port().expect("a default port");
    assert_eq!((name, default.protocol, default.port), ("default", Protocol::Http, 5000));
    assert_eq!(spec.networking.len(), 1);
    assert_eq!(default.tapis_auth_allowed_users, ["*"]);
    assert_eq!((default.tapis_auth_return_path.as_str(), default.cors_max_age), ("/", 100));
    let r = spec.resources;
    assert_eq!((r.cpu_request, r.cpu_limit, r.mem_request, r.mem_limit, r.gpus), (250, 2000, 256, 3072, 0));
    assert_eq!((spec.time_to_stop_default, spec.time_to_stop_instance), (43_200, None));
    assert_eq!((spec.compute_queue.as_str(), spec.template.as_str(), spec.command.as_ref()), ("default", "", None));
    assert_eq!(spec.validate(&Limits::default()), []);
}

#[test]
fn partial_nested_objects_are_filled_with_defaults() {
    let json = r#"{"pod_id":"abc","image":"x","networking":{"web":{"port":8080,"protocol":"local_only"}},"resources":{"gpus":1}}"#;
    let spec: PodSpec = serde_json::from_str(json).expect("partial spec parses");
    // A user-given networking map replaces the default entry, as in Tapis.
    assert_eq!(spec.default_port(), None);
    let web = &spec.networking["web"];
    assert_eq!((web.port, web.protocol, web.cors_max_age), (8080, Protocol::LocalOnly, 100));
    assert_eq!(spec.resources, Resources { gpus: 1, ..Resources::default() });
}

#[test]
fn serialisation_round_trips() {
    let mut spec = base();
    spec.time_to_stop_instance = Some(600);
    spec.environment_variables.insert("A".into(), "b".into());
    let json = serde_json::to_string(&spec).expect("serialises");
    assert_eq!(serde_json::from_str::<PodSpec>(&json).expect("parses back"), spec);
}

#[test]
fn unknown_fields_are_rejected_by_name() {
    let cases = [
        (r#"{"pod_id":"abc","image":"x","bogus":1}"#, "bogus"),
        (r#"{"pod_id":"abc","networking":{"default":{"prot":"http"}}}"#, "prot"),
        (r#"{"pod_id":"abc","resources":{"cpus":1}}"#, "cpus"),
    ];
    for (json, field) in cases {
        let err = serde_json::from_str::<PodSpec>(json).expect_err("unknown field must be rejected");
        let msg = err.to_string();
        assert!(msg.contains("unknown field") && msg.contains(&format!("`{field}`")), "{json}: {msg}");
    }
}

#[test]
fn wrong_types_are_rejected() {
    let cases = [
        r#"{"pod_id":5}"#,
        r#"{"pod_id":"abc","time_to_stop_default":"forever"}"#,
        r#"{"pod_id":"abc","time_to_stop_instance":1.5}"#,
        r#"{"pod_id":"abc","networking":{"default":{"port":-1}}}"#,
        r#"{"pod_id":"abc","networking":{"default":{"protocol":"udp"}}}"#,
        r#"{"pod_id":"abc","networking":{"default":{"protocol":"HTTP"}}}"#,
        r#"{"pod_id":"abc","resources":{"cpu_request":"1"}}"#,
        r#"{"pod_id":"abc","environment_variables":{"A":1}}"#,
        r#"{"pod_id":"abc","command":"sleep 1"}"#,
    ];
    for json in cases {
        assert!(serde_json::from_str::<PodSpec>(json).is_err(), "accepted {json}");
    }
}
