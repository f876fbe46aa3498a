//! The connection every store call goes through.

use super::target::Target;
use super::IO_TIMEOUT;
use crate::store::{StoreError, StoreResult};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{cmd, Cmd};
use std::sync::Arc;
use std::time::Duration;

/// The connection manager, plus one retry of a command that never left
/// because the connection was refused: the manager starts a fresh connection
/// on that error, so the first call after Redis comes back succeeds instead
/// of reporting the stale failure. With Sentinel, a lost primary (I/O
/// error, or `-READONLY` from a demoted one) is asked of the sentinels again
/// and the command retried once on the new primary.
///
/// With a cluster, the cluster connection routes each command by its key's
/// slot and follows the cluster by itself.
#[derive(Clone)]
pub(super) struct Conn {
    target: Arc<Target>,
    /// The current connection manager; with Sentinel, none until the primary
    /// is known, and replaced when the primary changed.
    manager: Arc<std::sync::Mutex<Option<ConnectionManager>>>,
    /// With a cluster: made at the first command that finds the cluster up.
    cluster: Arc<tokio::sync::OnceCell<ClusterConnection>>,
}

impl Conn {
    /// Needs the Redis runtime (the connection manager spawns on it).
    pub(super) fn new(target: Arc<Target>) -> StoreResult<Conn> {
        let manager = match &*target {
            Target::Fixed(client) => Some(
                Self::manager_for(client.clone())
                    .map_err(|e| StoreError::Unavailable(format!("redis connection manager: {e}")))?,
            ),
            Target::Sentinel(_) | Target::Cluster(_) => None,
        };
        Ok(Conn {
            target,
            manager: Arc::new(std::sync::Mutex::new(manager)),
            cluster: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    async fn cluster(&self) -> redis::RedisResult<Option<ClusterConnection>> {
        let Target::Cluster(c) = &*self.target else { return Ok(None) };
        let conn = self.cluster.get_or_try_init(|| c.client.get_async_connection()).await?;
        Ok(Some(conn.clone()))
    }

    /// Waits until `replicas` replicas have every write sent so far on the
    /// connection that wrote `key` (`WAIT`); how many confirmed within `limit`.
    pub(super) async fn wait_replicas(&self, key: &str, replicas: u32, limit: Duration) -> redis::RedisResult<u32> {
        let mut wait = cmd("WAIT");
        wait.arg(replicas).arg(limit.as_millis() as u64);
        if let Some(mut c) = self.cluster().await? {
            let route = SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
            let v = c.route_command(wait, RoutingInfo::SingleNode(route)).await?;
            return Ok(redis::from_redis_value(v)?);
        }
        wait.query_async(&mut self.clone()).await
    }

    fn manager_for(client: redis::Client) -> redis::RedisResult<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(IO_TIMEOUT))
            .set_response_timeout(Some(IO_TIMEOUT))
            .set_number_of_retries(0);
        ConnectionManager::new_lazy_with_config(client, config)
    }

    async fn current(&self) -> redis::RedisResult<ConnectionManager> {
        if let Some(m) = self.manager.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(m);
        }
        let m = Self::manager_for(self.target.client().await?)?;
        *self.manager.lock().unwrap_or_else(|p| p.into_inner()) = Some(m.clone());
        Ok(m)
    }

    /// Whether to ask the sentinels again and retry once: the primary is gone
    /// or has become a replica.
    fn primary_lost(&self, e: &redis::RedisError) -> bool {
        self.target.follows_failover()
            && (e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || left_behind(e.code()))
    }

    /// A demoted primary answers writes with `-READONLY` (as a value, not an `Err`).
    fn demoted(&self, answer: &redis::Value) -> bool {
        let readonly = |v: &redis::Value| matches!(v, redis::Value::ServerError(e) if left_behind(Some(e.code())));
        self.target.follows_failover()
            && match answer {
                redis::Value::Array(items) => items.iter().any(readonly),
                v => readonly(v),
            }
    }

    fn forget(&self) {
        *self.manager.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> redis::RedisFuture<'a, redis::Value> {
        Box::pin(async move {
            if let Some(mut c) = self.cluster().await? {
                return c.req_packed_command(cmd).await;
            }
            match self.current().await?.req_packed_command(cmd).await {
                Err(e) if e.is_connection_refusal() && !self.target.follows_failover() => {
                    self.current().await?.req_packed_command(cmd).await
                }
                Err(e) if self.primary_lost(&e) => {
                    self.forget();
                    self.current().await?.req_packed_command(cmd).await
                }
                Ok(v) if self.demoted(&v) => {
                    self.forget();
                    self.current().await?.req_packed_command(cmd).await
                }
                done => done,
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        Box::pin(async move {
            if let Some(mut c) = self.cluster().await? {
                return c.req_packed_commands(pipeline, offset, count).await;
            }
            match self.current().await?.req_packed_commands(pipeline, offset, count).await {
                Err(e) if e.is_connection_refusal() && !self.target.follows_failover() => {
                    self.current().await?.req_packed_commands(pipeline, offset, count).await
                }
                Err(e) if self.primary_lost(&e) => {
                    self.forget();
                    self.current().await?.req_packed_commands(pipeline, offset, count).await
                }
                Ok(v) if v.iter().any(|v| self.demoted(v)) => {
                    self.forget();
                    self.current().await?.req_packed_commands(pipeline, offset, count).await
                }
                done => done,
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.manager.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map_or(0, |m| m.get_db())
    }
}

/// A write refused by a server that is no longer (or about to stop being) the
/// primary: `-READONLY` from a demoted one; `-NOREPLICAS` from an old primary
/// that lost its replicas to a failover (`min-replicas-to-write`) and may
/// take the sentinels seconds to demote. Either way, ask the sentinels again.
fn left_behind(code: Option<&str>) -> bool {
    matches!(code, Some("READONLY" | "NOREPLICAS"))
}
