//! Git credentials are references; literal secrets are refused and never repeated.

use serde_json::json;

use super::*;

fn doc_with_git(git: &str) -> String {
    format!(
        "api_version: v1\nkind: taskTemplate\nmetadata: {{name: t}}\nspec:\n  kernel:\n    image: img\n    git: {git}\n"
    )
}

#[test]
fn credential_reference_table() {
    let long = "a".repeat(129);
    let max = "a".repeat(128);
    let rows: &[(&str, Option<&str>)] = &[
        ("my-github-token", None),
        ("team.deploy_key-2", None),
        (&max, None),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", Some("literal access token")),
        ("github_pat_11ABCDEFG0123", Some("literal access token")),
        ("glpat-xxxxxxxxxxxxxxxxxxxx", Some("literal access token")),
        ("GLPAT-XXXXXXXXXXXXXXXXXXXX", Some("literal access token")),
        ("alice:s3cret@example.test", Some("literal credentials")),
        ("https://example.test/x", Some("literal credentials")),
        (&long, Some("longer than 128")),
        ("hunter2!", Some("must be a secret name")),
        ("-leading", Some("must be a secret name")),
        ("", Some("must be a secret name")),
        ("with space", Some("must be a secret name")),
    ];
    for (value, want) in rows {
        match (CredentialRef::parse(value), want) {
            (Ok(r), None) => assert_eq!(r.name(), *value),
            (Err(message), Some(fragment)) => {
                assert!(message.contains(fragment), "{value}: {message}");
                if !value.is_empty() {
                    assert!(!message.contains(*value), "error repeats the value: {message}");
                }
            }
            (got, _) => panic!("{value}: unexpected {got:?}"),
        }
    }
}

#[test]
fn literal_secrets_in_documents_are_refused_without_echo() {
    let secret = "ghp_S3cretTokenValue0123456789abcdefABCD";
    let rows = [
        (format!("{{repository: /r.git, credential: {secret}}}"), "spec.kernel.git.credential", "literal access token"),
        (
            format!("{{repository: /r.git, credential: {{username: alice, password: {secret}}}}}"),
            "spec.kernel.git.credential",
            "literal credentials (username/password) are not accepted",
        ),
        (
            format!("{{repository: 'https://alice:{secret}@example.test/r.git'}}"),
            "spec.kernel.git.repository",
            "access token",
        ),
        (
            "{repository: 'https://alice:hunter2@example.test/r.git'}".to_string(),
            "spec.kernel.git.repository",
            "must not contain credentials",
        ),
    ];
    for (git, path, fragment) in rows {
        let doc = doc_with_git(&git);
        let got = problems(parse(&doc, Format::Yaml));
        assert_problems(&git, &got, &[(path, fragment)]);
        let shown = format!("{got:?}");
        assert!(!shown.contains(secret) && !shown.contains("hunter2"), "secret echoed: {shown}");
    }
    // Overrides get the same treatment.
    let over = json!({"spec": {"kernel": {"git": {"repository": "/r.git", "credential": secret}}}});
    let got = apply_overrides(&minimal(), &over).expect_err("rejected in this test");
    assert_eq!(got.len(), 1);
    assert!(!format!("{got:?}").contains(secret));
}

#[test]
fn debug_output_hides_credential_references() {
    let t = yaml(&doc_with_git("{repository: /r.git, credential: my-github-token}"));
    let git = t.spec.kernel.git.as_ref().expect("valid in this test");
    assert_eq!(git.credential.as_ref().map(CredentialRef::name), Some("my-github-token"));
    for shown in [format!("{t:?}"), format!("{git:?}"), format!("{:?}", to_pod_layer(&t))] {
        assert!(!shown.contains("my-github-token"), "{shown}");
        assert!(shown.contains("CredentialRef(<redacted>)"), "{shown}");
    }
    // The reference itself is part of the stored form: it names the secret, it is not the secret.
    assert_eq!(
        serde_json::to_value(&t).expect("valid in this test")["spec"]["kernel"]["git"]["credential"],
        json!("my-github-token")
    );
}
