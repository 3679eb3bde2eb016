//! How [`RedisStore`] fails: unreachable or silent servers are `Unavailable` within the
//! connect timeout, and records that do not decode are `Corrupt`.

use std::time::{Duration, Instant};

use corral_model::PodKey;
use corral_store::redis::{RedisOptions, RedisStore};
use corral_store::{Store, StoreError};
use corral_testkit::store_contract::{desired, observed, unique};
use tokio::net::{TcpListener, TcpStream};
use tracing::Instrument;

fn redis_url() -> String {
    std::env::var("CORRAL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Upper bound on any failing connect in these tests; hitting it means the store hung.
const HANG: Duration = Duration::from_secs(15);

fn quick() -> RedisOptions {
    RedisOptions { connect_timeout: Duration::from_millis(500), response_timeout: Duration::from_millis(500) }
}

async fn connect_fails(url: &str) -> (Result<RedisStore, StoreError>, Duration) {
    let start = Instant::now();
    let result = tokio::time::timeout(HANG, RedisStore::connect_with(url, &unique("ns"), quick()))
        .await
        .expect("connect must give up by itself instead of hanging");
    (result, start.elapsed())
}

#[tokio::test]
async fn dead_port_is_unavailable_quickly() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        listener.local_addr().expect("local addr").port()
    };
    let (result, took) = connect_fails(&format!("redis://127.0.0.1:{port}")).await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "got {result:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

/// Accepts connections and never answers, like a stopped (SIGSTOP) server.
async fn hold_connections_silently(listener: TcpListener) {
    let mut held: Vec<TcpStream> = Vec::new();
    while let Ok((stream, _)) = listener.accept().await {
        held.push(stream);
    }
}

#[tokio::test]
async fn silent_server_is_unavailable_after_connect_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let server = tokio::spawn(hold_connections_silently(listener).instrument(tracing::info_span!("silent_server")));

    let (result, took) = connect_fails(&format!("redis://{addr}")).await;
    server.abort();
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "got {result:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[tokio::test]
async fn bad_url_is_rejected() {
    let result = RedisStore::connect("not a url", "ns").await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "got {result:?}");
}

/// Overwrites part of a stored pod behind the store's back; the key names follow the schema
/// documented on `corral_store::redis`.
async fn raw_write(args: &[&str]) {
    let client = redis::Client::open(redis_url()).expect("redis url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("raw connection to the test redis");
    redis::cmd(args[0]).arg(&args[1..]).exec_async(&mut conn).await.expect("raw write");
}

fn is_corrupt<T>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Corrupt(_)))
}

#[tokio::test]
async fn undecodable_records_are_corrupt() {
    let namespace = unique("corral-test");
    let store = RedisStore::connect(&redis_url(), &namespace).await.expect("connect to the test redis");
    let tenant = unique("tenant");
    let d = desired(&tenant, "pod-corrupt");
    let key = d.key();
    store.create_pod(&d, &observed(), 0).await.expect("create");
    let hash = format!("{namespace}:pod:{tenant}:pod-corrupt");

    raw_write(&["HSET", &hash, "o", "{not json"]).await;
    assert!(is_corrupt(&store.get_pod(&key).await), "bad JSON");
    assert!(is_corrupt(&store.list_tenant(&tenant).await), "bad JSON in a listing");

    store.create_pod(&desired(&tenant, "pod-bad-version"), &observed(), 0).await.expect("create");
    raw_write(&["HSET", &format!("{namespace}:pod:{tenant}:pod-bad-version"), "dv", "seven"]).await;
    assert!(is_corrupt(&store.get_pod(&PodKey::new(&tenant, "pod-bad-version")).await), "bad version");

    raw_write(&["SET", &format!("{hash}:actions"), "not a list"]).await;
    assert!(is_corrupt(&store.action_log(&key).await), "wrong key type");

    store.clear_namespace().await.expect("clear the test namespace");
}

#[tokio::test]
async fn clear_namespace_touches_only_its_namespace() {
    let url = redis_url();
    let mine = RedisStore::connect(&url, &unique("corral-test")).await.expect("connect");
    let theirs = RedisStore::connect(&url, &unique("corral-test")).await.expect("connect");
    let d = desired(&unique("tenant"), "pod-ns");
    mine.create_pod(&d, &observed(), 5).await.expect("create in mine");
    theirs.create_pod(&d, &observed(), 5).await.expect("same pod in theirs: namespaces are separate");

    assert!(mine.clear_namespace().await.expect("clear mine") >= 3, "pod hash, tenant and shard index");
    assert_eq!(mine.get_pod(&d.key()).await.expect("get"), None);
    assert!(theirs.get_pod(&d.key()).await.expect("get").is_some());
    assert_eq!(theirs.clear_namespace().await.expect("clear theirs"), 3);
}
