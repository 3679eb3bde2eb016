//! Tables for each decision (accepted documents, aliases, bad documents, quantities,
//! credentials, overrides, mapping) and proptests for round-trips and override precedence.

mod accept;
mod aliases;
mod bad;
mod credentials;
mod mapping;
mod overrides;
mod props;
mod quantities;

use std::collections::BTreeMap;

use super::*;

/// The seed's example, with a local repository and the test image.
const SEED_YAML: &str = r"---
api_version: v1
kind: taskTemplate
metadata:
  name: template1234
  tag: example-tag
spec:
  kernel:
    environ:
      MYCONFIG: XXX
    git:
      branch: '19.09'
      commit: 10daee9e328876d75e6d0fa4998d4456711730db
      repository: /srv/git/backend.ai-agent.git
      destinationDir: /home/work/baiagent
    image: corral-test/busybox
  resources:
    cpu: '2'
    mem: 4g
  mounts:
    hostpath-test: /home/work/hostDesktop
    test-vfolder:
  sessionType: interactive
";

/// What [`SEED_YAML`] reads as.
fn seed() -> SessionTemplate {
    SessionTemplate {
        api_version: "v1".into(),
        kind: Kind::TaskTemplate,
        metadata: Metadata { name: "template1234".into(), tag: Some("example-tag".into()) },
        spec: Spec {
            session_type: SessionType::Interactive,
            kernel: Kernel {
                image: "corral-test/busybox".into(),
                environ: BTreeMap::from([("MYCONFIG".into(), "XXX".into())]),
                run: Run::default(),
                git: Some(Git {
                    repository: "/srv/git/backend.ai-agent.git".into(),
                    commit: Some("10daee9e328876d75e6d0fa4998d4456711730db".into()),
                    branch: Some("19.09".into()),
                    credential: None,
                    destination_dir: Some("/home/work/baiagent".into()),
                }),
            },
            mounts: BTreeMap::from([
                ("hostpath-test".into(), Some("/home/work/hostDesktop".into())),
                ("test-vfolder".into(), None),
            ]),
            resources: SessionResources { cpu: Cpu::from_millicores(2000), mem: Mem::from_mib(4096), gpus: None },
            batch_timeout: None,
        },
    }
}

/// The smallest valid template.
fn minimal() -> SessionTemplate {
    SessionTemplate {
        api_version: "v1".into(),
        kind: Kind::TaskTemplate,
        metadata: Metadata { name: "t".into(), tag: None },
        spec: Spec {
            session_type: SessionType::Interactive,
            kernel: Kernel { image: "img".into(), environ: BTreeMap::new(), run: Run::default(), git: None },
            mounts: BTreeMap::new(),
            resources: SessionResources::default(),
            batch_timeout: None,
        },
    }
}

fn yaml(text: &str) -> SessionTemplate {
    match parse(text, Format::Yaml) {
        Ok(t) => t,
        Err(errors) => panic!("document rejected: {errors:?}\n{text}"),
    }
}

/// `(path, message)` of every error, in order.
fn problems(result: Result<SessionTemplate, Vec<crate::FieldError>>) -> Vec<(String, String)> {
    match result {
        Ok(t) => panic!("accepted: {t:?}"),
        Err(errors) => errors.into_iter().map(|e| (e.field, e.message)).collect(),
    }
}

/// Asserts `got` holds exactly one error per `(path, message fragment)` of `want`, in any order.
#[track_caller]
fn assert_problems(label: &str, got: &[(String, String)], want: &[(&str, &str)]) {
    let mut unmatched: Vec<&(String, String)> = got.iter().collect();
    for (path, fragment) in want {
        let at = unmatched.iter().position(|(p, m)| p == path && m.contains(fragment));
        match at {
            Some(i) => {
                unmatched.remove(i);
            }
            None => panic!("{label}: no error at {path} containing {fragment:?}; got {got:#?}"),
        }
    }
    assert!(unmatched.is_empty(), "{label}: unexpected errors {unmatched:#?}");
}
