//! The spawn-latency baseline: the same container started straight through the Docker API,
//! with the limits Corral sets, and the same readiness check (HTTP answer below 500 on the
//! published loopback port).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Label marking the baseline's containers with the run they belong to (for cleanup).
pub const RUN_LABEL: &str = "corral-load.run";
/// Per-attempt bound of the readiness check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
const BYTES_PER_MIB: i64 = 1024 * 1024;

/// What the baseline container looks like; mirrors a Corral pod with default resources.
#[derive(Debug, Clone)]
pub struct RawSpec {
    pub image: String,
    pub command: Vec<String>,
    pub container_port: u16,
    pub cpu_millis: i64,
    pub mem_mib: i64,
    pub pids_limit: i64,
}

/// Timings of one baseline start, all from the create call.
#[derive(Debug, Clone, Copy)]
pub struct RawSample {
    pub create: Duration,
    pub start: Duration,
    /// Until the host port is known (inspect).
    pub inspected: Duration,
    /// Until a TCP connect first succeeded (docker-proxy accepts before the server listens).
    pub tcp: Duration,
    /// Until an HTTP answer below 500: the figure compared with Corral.
    pub ready: Duration,
    pub remove: Duration,
}

/// Creates baseline containers for one run.
pub struct RawDocker {
    docker: Docker,
    spec: RawSpec,
    run: String,
    pub poll: Duration,
    pub timeout: Duration,
}

impl RawDocker {
    pub fn new(docker: Docker, spec: RawSpec, run: String, poll: Duration, timeout: Duration) -> Self {
        Self { docker, spec, run, poll, timeout }
    }

    fn body(&self) -> ContainerCreateBody {
        let port_key = format!("{}/tcp", self.spec.container_port);
        let binding = PortBinding { host_ip: Some("127.0.0.1".into()), host_port: Some(String::new()) };
        let memory = Some(self.spec.mem_mib * BYTES_PER_MIB);
        ContainerCreateBody {
            image: Some(self.spec.image.clone()),
            entrypoint: Some(self.spec.command.clone()),
            labels: Some(HashMap::from([(RUN_LABEL.to_string(), self.run.clone())])),
            exposed_ports: Some(vec![port_key.clone()]),
            host_config: Some(HostConfig {
                nano_cpus: Some(self.spec.cpu_millis * 1_000_000),
                memory,
                memory_swap: memory,
                pids_limit: Some(self.spec.pids_limit),
                privileged: Some(false),
                security_opt: Some(vec!["no-new-privileges".into()]),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::NO),
                    maximum_retry_count: None,
                }),
                port_bindings: Some(HashMap::from([(port_key, Some(vec![binding]))])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Creates, starts and waits for the container `n` to answer, then removes it.
    pub async fn once(&self, n: usize) -> anyhow::Result<RawSample> {
        let (id, t0, create) = self.create(n).await?;
        let result = self.start_and_wait(&id, t0).await;
        let remove = self.remove(&id).await?;
        let (start, inspected, tcp, ready) = result?;
        Ok(RawSample { create, start, inspected, tcp, ready, remove })
    }

    /// Creates container `n`: its id, when the create call was sent, and how long it took.
    pub async fn create(&self, n: usize) -> anyhow::Result<(String, Instant, Duration)> {
        let name = format!("corral-load-{}-{n}", self.run);
        let t0 = Instant::now();
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = self.docker.create_container(Some(options), self.body()).await.context("creating")?;
        Ok((created.id, t0, t0.elapsed()))
    }

    /// Removes a container (forced, with its volumes); how long that took.
    pub async fn remove(&self, id: &str) -> anyhow::Result<Duration> {
        let t_rm = Instant::now();
        let rm = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        self.docker.remove_container(id, Some(rm)).await.context("removing the baseline container")?;
        Ok(t_rm.elapsed())
    }

    /// Starts a created container and waits until it answers HTTP: times since `t0` of the
    /// start call's answer, the inspect, the first TCP connect and the first HTTP answer.
    pub async fn start_and_wait(
        &self,
        id: &str,
        t0: Instant,
    ) -> anyhow::Result<(Duration, Duration, Duration, Duration)> {
        self.docker.start_container(id, None).await.context("starting")?;
        let start = t0.elapsed();
        let info = self.docker.inspect_container(id, None).await.context("inspecting")?;
        let inspected = t0.elapsed();
        let port = host_port(&info, self.spec.container_port).context("the container port is not published")?;
        let mut tcp = None;
        loop {
            match check(port).await {
                Check::Ready => {
                    let ready = t0.elapsed();
                    return Ok((start, inspected, tcp.unwrap_or(ready), ready));
                }
                Check::Connected => {
                    tcp.get_or_insert_with(|| t0.elapsed());
                }
                Check::Refused => {}
            }
            anyhow::ensure!(t0.elapsed() < self.timeout, "the container did not answer within {:?}", self.timeout);
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Removes every container this run left behind (after an error).
    pub async fn remove_leftovers(&self) -> anyhow::Result<()> {
        let filters = HashMap::from([("label", vec![format!("{RUN_LABEL}={}", self.run)])]);
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        for c in self.docker.list_containers(Some(options)).await.context("listing baseline containers")? {
            if let Some(id) = c.id {
                let rm = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
                self.docker.remove_container(&id, Some(rm)).await.context("removing a baseline container")?;
            }
        }
        Ok(())
    }
}

fn host_port(info: &bollard::models::ContainerInspectResponse, container_port: u16) -> Option<u16> {
    let ports = info.network_settings.as_ref()?.ports.as_ref()?;
    let bindings = ports.get(&format!("{container_port}/tcp"))?.as_ref()?;
    bindings.iter().find_map(|b| b.host_port.as_deref()?.parse().ok())
}

enum Check {
    Refused,
    /// Connected, but no HTTP answer below 500 (yet).
    Connected,
    Ready,
}

/// One readiness check on 127.0.0.1:`port`: connect, `GET /`, read the status line.
async fn check(port: u16) -> Check {
    let Ok(Ok(mut stream)) = tokio::time::timeout(CHECK_TIMEOUT, TcpStream::connect(("127.0.0.1", port))).await else {
        return Check::Refused;
    };
    let exchange = async {
        let request = format!("GET / HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = Vec::with_capacity(64);
        let mut chunk = [0u8; 128];
        while !head.contains(&b'\n') && head.len() < 1024 {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        status_code(&head)
    };
    match tokio::time::timeout(CHECK_TIMEOUT, exchange).await {
        Ok(Some(code)) if code < 500 => Check::Ready,
        _ => Check::Connected,
    }
}

/// The status code of an answer starting `HTTP/1.x NNN`.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let text = std::str::from_utf8(line).ok()?;
    let mut parts = text.split_whitespace();
    parts.next().filter(|p| p.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::status_code;

    #[test]
    fn status_lines_are_parsed() {
        assert_eq!(status_code(b"HTTP/1.0 404 Not Found\r\n"), Some(404));
        assert_eq!(status_code(b"HTTP/1.1 200"), Some(200));
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_code(b""), None);
    }
}
