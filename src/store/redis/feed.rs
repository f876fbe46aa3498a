//! The Redis change feed: one pub/sub connection per store, reopened
//! whenever it is lost. Every (re)subscription after the store was handed out
//! sends `Change::Resync`, because whatever was published while the
//! connection was down is gone: subscribers then re-read the state in full.

use super::target::Target;
use super::{unavailable, FEED_PING_EVERY, FEED_RETRY_DELAY, IO_TIMEOUT};
use crate::store::{Change, StoreError, StoreResult};
use redis::aio::MultiplexedConnection;
use redis::{cmd, AsyncConnectionConfig, PushInfo, PushKind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};
use tokio::time::timeout;

/// The change feed: one pub/sub connection, reopened whenever it is lost.
pub(super) struct Feed {
    /// With Sentinel, each (re)subscription asks for the current primary.
    pub(super) target: Arc<Target>,
    pub(super) channel: String,
    pub(super) changes: broadcast::Sender<Change>,
    /// Set once `connect` returned: from then on a new subscription may have missed changes.
    pub(super) handed_out: Arc<AtomicBool>,
}

impl Feed {
    pub(super) async fn run(self, first_try: std::sync::mpsc::SyncSender<()>) {
        let mut first_try = Some(first_try);
        let mut lost = false;
        loop {
            match self.open().await {
                Ok((conn, pushes)) => {
                    if self.handed_out.load(Ordering::SeqCst) {
                        let _ = self.changes.send(Change::Resync);
                    }
                    if lost {
                        tracing::info!("redis change feed: subscribed again");
                    }
                    first_try.take().map(|t| t.send(()));
                    self.listen(conn, pushes).await;
                    // Requests that depend on the snapshot wait for the catch-up (see `catch_up`).
                    let _ = self.changes.send(Change::FeedLost);
                    tracing::warn!("redis change feed: connection lost, reconnecting");
                }
                Err(e) => {
                    first_try.take().map(|t| t.send(()));
                    if !lost {
                        tracing::warn!("redis change feed: {e}; retrying");
                    }
                }
            }
            lost = true;
            tokio::time::sleep(FEED_RETRY_DELAY).await;
        }
    }

    async fn open(&self) -> StoreResult<(MultiplexedConnection, mpsc::UnboundedReceiver<PushInfo>)> {
        let (tx, pushes) = mpsc::unbounded_channel();
        let config = AsyncConnectionConfig::new()
            .set_push_sender(tx)
            .set_connection_timeout(Some(IO_TIMEOUT))
            .set_response_timeout(Some(IO_TIMEOUT));
        let opened = async {
            let client = self.target.client().await?;
            let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
            conn.subscribe(&self.channel).await?;
            Ok(conn)
        };
        match timeout(IO_TIMEOUT * 2, opened).await {
            Ok(Ok(conn)) => Ok((conn, pushes)),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(StoreError::Unavailable("redis: no answer while subscribing".into())),
        }
    }

    /// Forwards changes until the connection is gone or stops answering.
    async fn listen(&self, mut conn: MultiplexedConnection, mut pushes: mpsc::UnboundedReceiver<PushInfo>) {
        let mut ping = tokio::time::interval(FEED_PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                push = pushes.recv() => match push {
                    Some(PushInfo { kind: PushKind::Message, data }) => self.forward(data),
                    Some(PushInfo { kind: PushKind::Disconnection, .. }) | None => return,
                    Some(_) => {}
                },
                _ = ping.tick() => {
                    let pong = timeout(IO_TIMEOUT, cmd("PING").query_async::<redis::Value>(&mut conn)).await;
                    if !matches!(pong, Ok(Ok(_))) {
                        return;
                    }
                }
            }
        }
    }

    fn forward(&self, data: Vec<redis::Value>) {
        let payload = data.into_iter().nth(1).and_then(|v| redis::from_redis_value::<Vec<u8>>(v).ok());
        match payload.map(|p| serde_json::from_slice::<Change>(&p)) {
            Some(Ok(change)) => {
                // An error only means nobody is subscribed right now.
                let _ = self.changes.send(change);
            }
            _ => tracing::warn!("redis change feed: ignored an unreadable message on {}", self.channel),
        }
    }
}
