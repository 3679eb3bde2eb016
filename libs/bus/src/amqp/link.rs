//! The connection to the broker and its supervisor, which notices a dead connection and
//! reconnects with capped exponential backoff while operations fail fast as `Unavailable`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use lapin::options::ConfirmSelectOptions;
use lapin::{Channel, Connection, ConnectionProperties, Event};
use rand::Rng;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::convert::classify;
use crate::BusError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Safety net for closes that produce no connection event; a status check is a memory read.
const HEALTH_CHECK: Duration = Duration::from_millis(500);
/// AMQP reply code for a connection closed on purpose by an administrator.
const CONNECTION_FORCED: u16 = 320;

/// Which shared publishing channel a publish goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Publisher confirms on: every publish waits for the broker to take the message.
    Confirmed,
    /// No confirms: hints (pod events) that may be lost, so neither the broker nor the
    /// client spends a confirm on them.
    Hints,
}

/// One live AMQP connection with its publishing channels.
pub(crate) struct Live {
    pub(crate) conn: Connection,
    publisher: Mutex<Channel>,
    hints: Mutex<Channel>,
}

impl Live {
    fn lane(&self, lane: Lane) -> &Mutex<Channel> {
        match lane {
            Lane::Confirmed => &self.publisher,
            Lane::Hints => &self.hints,
        }
    }
}

enum State {
    Up(Arc<Live>),
    Down(String),
}

/// Shared by the bus, its consumers and their ackers.
pub(crate) struct Link {
    url: String,
    pub(crate) namespace: String,
    state: Mutex<State>,
    /// Kicks the supervisor to check the connection now.
    wake: Arc<Notify>,
    shutdown: CancellationToken,
    /// Serialises re-opening the publishing channel after a channel error.
    channel_gate: tokio::sync::Mutex<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

type Events = BoxStream<'static, Event>;

async fn open(url: &str) -> Result<(Arc<Live>, Events), BusError> {
    let props = ConnectionProperties::default().with_connection_name("corral".into());
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(url, props))
        .await
        .map_err(|_| BusError::Unavailable(format!("connecting to the broker timed out after {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| BusError::Unavailable(format!("cannot connect to the broker: {e}")))?;
    let events = conn.events_listener().boxed();
    let publisher = open_publisher(&conn, Lane::Confirmed).await?;
    let hints = open_publisher(&conn, Lane::Hints).await?;
    Ok((Arc::new(Live { conn, publisher: Mutex::new(publisher), hints: Mutex::new(hints) }), events))
}

async fn open_publisher(conn: &Connection, lane: Lane) -> Result<Channel, BusError> {
    let channel = conn.create_channel().await.map_err(|e| classify(&e).0)?;
    if lane == Lane::Confirmed {
        channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(|e| classify(&e).0)?;
    }
    Ok(channel)
}

/// `{namespace}.{name}`; the default exchange ("") and the empty namespace stay as they are.
fn physical_name(namespace: &str, name: &str) -> String {
    if name.is_empty() || namespace.is_empty() { name.to_owned() } else { format!("{namespace}.{name}") }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Link {
    /// Connects once (failing if the broker is not there) and starts the supervisor.
    pub(crate) async fn connect(url: &str, namespace: &str) -> Result<Arc<Self>, BusError> {
        let (live, events) = open(url).await?;
        let link = Arc::new(Self {
            url: url.to_owned(),
            namespace: namespace.to_owned(),
            state: Mutex::new(State::Up(live)),
            wake: Arc::new(Notify::new()),
            shutdown: CancellationToken::new(),
            channel_gate: tokio::sync::Mutex::new(()),
        });
        let span = info_span!("amqp_supervisor", namespace = %namespace);
        tokio::spawn(
            supervise_connection(Arc::downgrade(&link), link.wake.clone(), link.shutdown.clone(), events)
                .instrument(span),
        );
        Ok(link)
    }

    /// Physical broker name of a logical exchange or queue name.
    pub(crate) fn physical(&self, name: &str) -> String {
        physical_name(&self.namespace, name)
    }

    /// The current connection, or `Unavailable` while the supervisor reconnects.
    pub(crate) fn live(&self) -> Result<Arc<Live>, BusError> {
        let live = match &*lock(&self.state) {
            State::Up(live) => live.clone(),
            State::Down(reason) => {
                return Err(BusError::Unavailable(format!("reconnecting to the broker: {reason}")));
            }
        };
        if live.conn.status().connected() {
            Ok(live)
        } else {
            self.wake.notify_one();
            Err(BusError::Unavailable("connection to the broker is down; reconnecting".into()))
        }
    }

    /// The publishing channel of `lane`, re-opened if a channel error closed it. Publishers
    /// share it and await their confirms (if any) concurrently.
    pub(crate) async fn publisher(&self, lane: Lane) -> Result<Channel, BusError> {
        let live = self.live()?;
        let current = lock(live.lane(lane)).clone();
        if current.status().connected() {
            return Ok(current);
        }
        let _gate = self.channel_gate.lock().await;
        let current = lock(live.lane(lane)).clone();
        if current.status().connected() {
            return Ok(current);
        }
        let fresh = open_publisher(&live.conn, lane).await.inspect_err(|_| self.wake.notify_one())?;
        *lock(live.lane(lane)) = fresh.clone();
        debug!(?lane, "re-opened a publishing channel");
        Ok(fresh)
    }

    /// Maps a lapin error, kicking the supervisor when the connection looks gone.
    pub(crate) fn error(&self, err: &lapin::Error) -> BusError {
        let (mapped, connection_suspect) = classify(err);
        if connection_suspect {
            self.wake.notify_one();
        }
        mapped
    }

    /// Closes the connection as if the broker had dropped it.
    pub(crate) async fn force_close(&self) {
        let live = match &*lock(&self.state) {
            State::Up(live) => Some(live.clone()),
            State::Down(_) => None,
        };
        if let Some(live) = live
            && let Err(e) = live.conn.close(CONNECTION_FORCED, "closed by test".into()).await
        {
            debug!(error = %e, "forced close reported an error");
        }
        self.wake.notify_one();
    }

    fn is_up(&self) -> bool {
        matches!(&*lock(&self.state), State::Up(live) if live.conn.status().connected())
    }

    fn set(&self, state: State) {
        *lock(&self.state) = state;
    }
}

/// Watches the connection and replaces it when it dies. Holds only a weak reference so the
/// bus can be dropped; `shutdown` stops it then.
async fn supervise_connection(link: Weak<Link>, wake: Arc<Notify>, shutdown: CancellationToken, mut events: Events) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = wake.notified() => {}
            event = events.next() => {
                match event {
                    Some(event) => debug!(?event, "connection event"),
                    // The connection is gone for good; its end is seen by the status check.
                    None => events = futures::stream::pending().boxed(),
                }
            }
            () = tokio::time::sleep(HEALTH_CHECK) => {}
        }
        let Some(current) = link.upgrade() else {
            return;
        };
        if current.is_up() {
            continue;
        }
        warn!("connection to the broker lost; reconnecting");
        current.set(State::Down("connection lost".into()));
        let url = current.url.clone();
        drop(current);
        match reconnect(&url, &shutdown).await {
            Some((live, new_events)) => {
                let Some(current) = link.upgrade() else {
                    return;
                };
                current.set(State::Up(live));
                events = new_events;
                info!("reconnected to the broker");
            }
            None => return,
        }
    }
}

/// Retries until connected (or shut down), doubling the delay up to [`MAX_BACKOFF`] with
/// jitter so that many services do not reconnect in lockstep after a broker restart.
async fn reconnect(url: &str, shutdown: &CancellationToken) -> Option<(Arc<Live>, Events)> {
    let mut delay = FIRST_BACKOFF;
    loop {
        let attempt = tokio::select! {
            () = shutdown.cancelled() => return None,
            attempt = open(url) => attempt,
        };
        match attempt {
            Ok(opened) => return Some(opened),
            Err(e) => warn!(error = %e, retry_in = ?delay, "reconnect failed"),
        }
        let jittered = delay.mul_f64(rand::rng().random_range(0.5..1.0));
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(jittered) => {}
        }
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::physical_name;

    #[test]
    fn physical_names_carry_the_namespace() {
        assert_eq!(physical_name("t1", "corral.shard.3"), "t1.corral.shard.3");
        assert_eq!(physical_name("", "corral.shard.3"), "corral.shard.3");
        assert_eq!(physical_name("t1", ""), "");
    }
}
