//! RabbitMQ restarted while pods are requested: no accepted request is lost. (Its own test
//! binary, because it stops the shared broker; cargo runs test binaries one at a time.)

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Spawners, Stack, eventually, httpd_pod};

struct BrokerGuard;

impl Drop for BrokerGuard {
    // Whatever happens, leave the broker running for the next test binary.
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").args(["-q", "start_app"]).status();
        let _ = Command::new("rabbitmqctl").args(["-q", "await_startup"]).status();
    }
}

fn rabbitmqctl(args: &[&str]) {
    let st = Command::new("rabbitmqctl").args(args).status().expect("rabbitmqctl runs");
    assert!(st.success(), "rabbitmqctl {args:?} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rabbitmq_restart_loses_no_accepted_request() {
    let stack = Stack::start(Spawners { in_process: 1, processes: 0 }).await;
    let _guard = BrokerGuard;
    let mut accepted = Vec::new();
    for i in 0..30 {
        if i == 8 {
            tokio::task::spawn_blocking(|| rabbitmqctl(&["-q", "stop_app"])).await.expect("stop_app");
        }
        if i == 18 {
            tokio::task::spawn_blocking(|| rabbitmqctl(&["-q", "start_app"])).await.expect("start_app");
        }
        let id = format!("br{i}");
        let (code, v) = stack.call(reqwest::Method::POST, "/v3/pods", Some(httpd_pod(&id))).await;
        if code == 200 {
            accepted.push(id);
        } else {
            assert!(code >= 500, "only an outage may refuse a request: {code} {v}");
        }
    }
    assert!(accepted.len() >= 20, "the store was up throughout, so requests are accepted: {accepted:?}");
    eventually("every accepted pod AVAILABLE", Duration::from_secs(90), || async {
        let (_, v) = stack.get("/v3/pods").await;
        let pods = v["result"].as_array()?.clone();
        let ok =
            accepted.iter().all(|id| pods.iter().any(|p| p["pod_id"] == id.as_str() && p["status"] == "AVAILABLE"));
        ok.then_some(())
    })
    .await;
    stack.shutdown().await;
}
