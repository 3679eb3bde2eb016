//! Bad documents: every problem is reported, each at its path.

use super::*;

struct Row {
    name: &'static str,
    text: &'static str,
    want: &'static [(&'static str, &'static str)],
}

/// A label, the `spec` section, and the expected `(path, message fragment)` problems.
type Case = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

const HEAD: &str = "api_version: v1\nkind: taskTemplate\nmetadata: {name: t}\n";

/// `HEAD` followed by `spec`.
fn with_spec(spec: &str) -> String {
    format!("{HEAD}spec:\n{spec}")
}

#[test]
fn issue_acceptance_table() {
    let rows = [
        Row {
            name: "unknown kind",
            text: "api_version: v1\nkind: podTemplate\nmetadata: {name: t}\nspec: {kernel: {image: img}}\n",
            want: &[("kind", "must be 'taskTemplate' or 'task_template'")],
        },
        Row {
            name: "missing image",
            text: "api_version: v1\nkind: taskTemplate\nmetadata: {name: t}\nspec: {kernel: {environ: {A: b}}}\n",
            want: &[("spec.kernel.image", "is required")],
        },
        Row {
            name: "bad resource strings",
            text: "api_version: v1\nkind: taskTemplate\nmetadata: {name: t}\nspec:\n  kernel: {image: img}\n  \
                   resources: {cpu: lots, mem: 4x, gpus: '-1'}\n",
            want: &[
                ("spec.resources.cpu", "must be a number of cores"),
                ("spec.resources.mem", "must be a size"),
                ("spec.resources.gpus", "must not be negative"),
            ],
        },
        Row {
            name: "unknown keys at several levels",
            text: "api_version: v1\nkind: taskTemplate\nextra: 1\nmetadata: {name: t, owner: me}\nspec:\n  kernel: \
                   {image: img, architecture: x86_64}\n  scaling_group: default\n",
            want: &[
                ("extra", "unknown key (expected one of: api_version, kind, metadata, spec)"),
                ("metadata.owner", "unknown key"),
                ("spec.kernel.architecture", "Backend.AI's 'architecture' is not supported"),
                ("spec.scaling_group", "Backend.AI's 'scaling_group' is not supported"),
            ],
        },
        Row {
            name: "alias conflict: startup and startupCommand",
            text: "api_version: v1\nkind: taskTemplate\nmetadata: {name: t}\nspec:\n  kernel:\n    image: img\n    \
                   run: {startup: a, startupCommand: b}\n",
            want: &[("spec.kernel.run.startupCommand", "conflicts with spec.kernel.run.startup")],
        },
    ];
    let mut all = Vec::new();
    for row in &rows {
        let got = problems(parse(row.text, Format::Yaml));
        assert_problems(row.name, &got, row.want);
        all.extend_from_slice(row.want);
    }
    // Everything at once: nothing hides anything else.
    let combined = "api_version: v1\nkind: podTemplate\nextra: 1\nmetadata: {name: t, owner: me}\nspec:\n  kernel:\n    \
                    architecture: x86_64\n    run: {startup: a, startupCommand: b}\n  scaling_group: default\n  \
                    resources: {cpu: lots, mem: 4x, gpus: '-1'}\n";
    let got = problems(parse(combined, Format::Yaml));
    assert_problems("combined", &got, &all);
}

#[test]
fn more_bad_documents() {
    let rows = [
        Row { name: "not a mapping", text: "- a\n- b\n", want: &[("document", "must be a mapping, not a list")] },
        Row { name: "empty", text: "", want: &[("document", "must be a mapping, not null")] },
        Row { name: "syntax", text: "a: [1, 2\n", want: &[("document", "is not valid YAML")] },
        Row {
            name: "everything missing",
            text: "{}",
            want: &[
                ("api_version", "is required"),
                ("kind", "is required"),
                ("metadata.name", "is required"),
                ("spec.kernel.image", "is required"),
            ],
        },
        Row {
            name: "wrong section types, no follow-on noise",
            text: "api_version: 6\nkind: taskTemplate\nmetadata: []\nspec: 5\n",
            want: &[
                ("api_version", "must be a string, not a number (quote it in YAML)"),
                ("metadata", "must be a mapping, not a list"),
                ("spec", "must be a mapping, not a number"),
            ],
        },
        Row {
            name: "duplicate and non-string keys",
            text: "api_version: v1\nkind: taskTemplate\nkind: taskTemplate\n1: x\nmetadata: {name: t}\nspec: \
                   {kernel: {image: img, environ: {A: b, A: c, 2: d}}}\n",
            want: &[
                ("kind", "duplicate key"),
                ("1", "key must be a string"),
                ("spec.kernel.environ.A", "duplicate key"),
                ("spec.kernel.environ.2", "key must be a string"),
            ],
        },
        Row {
            name: "unsupported kinds and session types",
            text: "api_version: v1\nkind: clusterTemplate\nmetadata: {name: t}\nspec: {type: inference, kernel: \
                   {image: img}}\n",
            want: &[
                ("kind", "cluster templates are not supported"),
                ("spec.type", "Backend.AI's 'inference' session type is not supported"),
            ],
        },
        Row {
            name: "unquoted YAML numbers where strings belong",
            text: "api_version: v1\nkind: taskTemplate\nmetadata: {name: 7}\nspec:\n  kernel:\n    image: img\n    \
                   environ: {A: 1, B: true}\n    git: {repository: /r.git, branch: 19.10}\n",
            want: &[
                ("metadata.name", "must be a string, not a number"),
                ("spec.kernel.environ.A", "must be a string, not a number"),
                ("spec.kernel.environ.B", "must be a string, not a boolean"),
                ("spec.kernel.git.branch", "must be a string, not a number"),
            ],
        },
    ];
    for row in &rows {
        assert_problems(row.name, &problems(parse(row.text, Format::Yaml)), row.want);
    }
    let json = problems(parse("{\"kind\": ", Format::Json));
    assert_problems("json syntax", &json, &[("document", "is not valid JSON")]);
    let big = format!("api_version: v1\n# {}\n", "x".repeat(MAX_DOCUMENT_BYTES));
    assert_problems("too big", &problems(parse(&big, Format::Yaml)), &[("document", "bytes long")]);
}

#[test]
fn bad_fields_and_combinations() {
    let rows: &[Case] = &[
        (
            "batch needs a startup command; timeouts are for batch",
            "  type: batch\n  batch_timeout: 0\n  kernel: {image: img}\n",
            &[
                ("spec.batch_timeout", "at least 1 second"),
                ("spec.kernel.run.startup_command", "is required for a batch session"),
            ],
        ),
        (
            "timeout on interactive",
            "  batch_timeout: 5\n  kernel: {image: img}\n",
            &[("spec.batch_timeout", "only applies to batch sessions")],
        ),
        (
            "negative timeout",
            "  type: batch\n  batch_timeout: -5\n  kernel: {image: img, run: {startup: x}}\n",
            &[("spec.batch_timeout", "must not be negative")],
        ),
        (
            "image, env names, empty scripts",
            "  kernel:\n    image: 'my image:1:2'\n    environ: {1A: x, B-C: y}\n    run: {bootstrap: '  '}\n",
            &[
                ("spec.kernel.image", "must not contain whitespace"),
                ("spec.kernel.environ.1A", "name must be letters"),
                ("spec.kernel.environ.B-C", "name must be letters"),
                ("spec.kernel.run.bootstrap", "must not be empty"),
            ],
        ),
        (
            "mounts: names, paths, two volumes at one path",
            "  kernel: {image: img}\n  mounts:\n    Bad_Name: /x\n    up: ../etc\n    sys: /proc/1\n    \
             root: /\n    one: /data\n    two: /data/\n",
            &[
                ("spec.mounts.Bad_Name", "volume name must be"),
                ("spec.mounts.up", "'.' or '..'"),
                ("spec.mounts.sys", "reserved system directory"),
                ("spec.mounts.root", "other than '/'"),
                ("spec.mounts.two", "is mounted at /data, like volume 'one'"),
            ],
        ),
        (
            "git: missing repository, bad commit and branch",
            "  kernel:\n    image: img\n    git: {commit: 10daee9, branch: -evil, destination_dir: a/../b}\n",
            &[
                ("spec.kernel.git.commit", "must be a full commit id"),
                ("spec.kernel.git.branch", "must not start with '-'"),
                ("spec.kernel.git.destination_dir", "'.' or '..'"),
                ("spec.kernel.git.repository", "is required"),
            ],
        ),
        (
            "git: the clone and a volume at one path",
            "  kernel:\n    image: img\n    git: {repository: /srv/data.git}\n  mounts: {data: null}\n",
            &[("spec.kernel.git.destination_dir", "default destination /home/work/data is also the mount path")],
        ),
        (
            "resources: units that make no sense",
            "  kernel: {image: img}\n  resources: {cpu: 0.0001, mem: 1k, gpus: 0.5, cuda.shares: 1}\n",
            &[
                ("spec.resources.cpu", "finer than a millicore"),
                ("spec.resources.mem", "whole number of MiB"),
                ("spec.resources.gpus", "fractional GPU shares are not supported"),
                ("spec.resources.cuda.shares", "Backend.AI's 'cuda.shares' is not supported"),
            ],
        ),
        (
            "resources: wrong types",
            "  kernel: {image: img}\n  resources: {cpu: true, mem: [1]}\n",
            &[("spec.resources.cpu", "not a boolean"), ("spec.resources.mem", "not a list")],
        ),
    ];
    for (name, spec, want) in rows {
        assert_problems(name, &problems(parse(&with_spec(spec), Format::Yaml)), want);
    }
}
