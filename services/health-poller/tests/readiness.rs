//! Readiness probes: started by pod events or by the resync, `Ready` only for a TCP
//! connect or an HTTP answer below 500.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};

use corral_model::{PodStatus, Protocol};
use corral_protocol::{Observation, ProbeKind};
use corral_runtime::Runtime;
use corral_testkit::MemoryStore;
use support::runtime::WatchedRuntime;
use support::{Poller, WAIT, config, container_spec, creating_event, loopback, pod_key, store_pod};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// No store records here, so only the pod event can start the probe.
const NO_RESYNC_SOON: u64 = 3_600_000;

#[tokio::test]
async fn tcp_endpoint_becomes_ready_after_a_creating_event() {
    // The kernel completes connects into the backlog: nothing needs to accept.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let poller = Poller::start(config(NO_RESYNC_SOON), Arc::new(MemoryStore::new()), WatchedRuntime::new(false)).await;
    let pod = pod_key("tcp");
    let mut shard = poller.shard_reader(&pod).await;

    poller.publish_event_when_subscribed(&creating_event(&pod, "c-tcp", loopback(port), ProbeKind::Tcp)).await;

    assert_eq!(shard.next().await, (pod, "c-tcp".to_string(), Observation::Ready));
    poller.stop().await;
}

/// An HTTP server answering every request with the current `status`, counting requests.
struct HttpServer {
    port: u16,
    status: Arc<AtomicU16>,
    requests: Arc<AtomicUsize>,
}

impl HttpServer {
    async fn start(status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let status = Arc::new(AtomicU16::new(status));
        let requests = Arc::new(AtomicUsize::new(0));
        tokio::spawn(serve(listener, status.clone(), requests.clone()));
        Self { port, status, requests }
    }
}

async fn serve(listener: TcpListener, status: Arc<AtomicU16>, requests: Arc<AtomicUsize>) {
    while let Ok((mut conn, _)) = listener.accept().await {
        let mut request = Vec::new();
        let mut buf = [0u8; 512];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let code = status.load(Ordering::SeqCst);
        let answer = format!("HTTP/1.0 {code} Whatever\r\nContent-Length: 0\r\n\r\n");
        let _ = conn.write_all(answer.as_bytes()).await;
        requests.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn http_probe_needs_an_answer_below_500() {
    let server = HttpServer::start(500).await;
    let poller = Poller::start(config(NO_RESYNC_SOON), Arc::new(MemoryStore::new()), WatchedRuntime::new(false)).await;
    let pod = pod_key("http");
    let mut shard = poller.shard_reader(&pod).await;
    poller.publish_event_when_subscribed(&creating_event(&pod, "c-http", loopback(server.port), ProbeKind::Http)).await;

    // A probe stops after publishing Ready, so a third request proves the first two 500s
    // did not count as ready.
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.requests.load(Ordering::SeqCst) < 3 {
        assert!(tokio::time::Instant::now() < deadline, "the probe keeps asking while the answer is 500");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    server.status.store(200, Ordering::SeqCst);
    let answered_500 = server.requests.load(Ordering::SeqCst);

    assert_eq!(shard.next().await, (pod, "c-http".to_string(), Observation::Ready));
    assert!(server.requests.load(Ordering::SeqCst) > answered_500, "ready only after a 200 answer");
    poller.stop().await;
}

#[tokio::test]
async fn resync_starts_the_probe_when_the_creating_event_was_lost() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let runtime = WatchedRuntime::new(false);
    let store = Arc::new(MemoryStore::new());
    let pod = pod_key("lost");
    let container = runtime.spawn(&container_spec(&pod)).await.expect("spawn");
    store_pod(&store, &pod, PodStatus::Creating, &container.id, Some(loopback(port)), Protocol::Tcp).await;

    let poller = Poller::start(config(100), store, runtime).await;
    let mut shard = poller.shard_reader(&pod).await;

    assert_eq!(shard.next().await, (pod, container.id, Observation::Ready));
    poller.stop().await;
}
