//! Requests that depend on the revocation and certificate snapshot wait,
//! briefly, while it may be behind. When the store's change feed is lost
//! ([`Change::FeedLost`](crate::store::Change)), or a subscriber fell behind,
//! the snapshot may miss a revocation made meanwhile on another instance; it
//! is re-read in full once the feed is back ([`Change::Resync`]). A request
//! that arrives in between waits for that re-read, for at most [`HOLD`] after
//! the loss: a failover (Sentinel promotes a replica in about a second) costs
//! those requests a pause, not an error and not a stale answer. A longer
//! outage is served from the snapshot as it is (nobody can revoke anything
//! while the store is down), until the re-read catches up.
//!
//! The request path pays one atomic load while the feed is healthy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The longest a request waits for the snapshot to catch up after a loss.
pub const HOLD: Duration = Duration::from_secs(3);

pub struct CatchUp {
    epoch: Instant,
    /// Milliseconds after `epoch` (plus one) when the gap began; 0 = none.
    since: AtomicU64,
    done: Notify,
}

impl Default for CatchUp {
    fn default() -> CatchUp {
        CatchUp { epoch: Instant::now(), since: AtomicU64::new(0), done: Notify::new() }
    }
}

impl CatchUp {
    /// The feed was lost (or fell behind): from now on the snapshot may be behind.
    pub fn lost(&self) {
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        let _ = self.since.compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The snapshot was re-read in full after the feed was back.
    pub fn caught_up(&self) {
        self.since.store(0, Ordering::Release);
        self.done.notify_waiters();
    }

    pub fn behind(&self) -> bool {
        self.since.load(Ordering::Acquire) != 0
    }

    /// Returns at once when the snapshot is current; otherwise when it has
    /// caught up, or [`HOLD`] after the loss at the latest.
    pub async fn wait(&self) {
        loop {
            let since = self.since.load(Ordering::Acquire);
            if since == 0 {
                return;
            }
            let deadline = self.epoch + Duration::from_millis(since - 1) + HOLD;
            let notified = self.done.notified();
            tokio::pin!(notified);
            // Registered before the second look, so a catch-up in between is not missed.
            notified.as_mut().enable();
            if self.since.load(Ordering::Acquire) == 0 {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn current_snapshot_passes_at_once() {
        let c = CatchUp::default();
        tokio::time::timeout(Duration::from_millis(50), c.wait()).await.expect("no wait while current");
        c.lost();
        c.caught_up();
        tokio::time::timeout(Duration::from_millis(50), c.wait()).await.expect("no wait once caught up");
    }

    #[tokio::test]
    async fn a_request_in_a_gap_waits_for_the_catch_up() {
        let c = Arc::new(CatchUp::default());
        c.lost();
        assert!(c.behind());
        let waiter = tokio::spawn({
            let c = c.clone();
            async move {
                let t0 = Instant::now();
                c.wait().await;
                t0.elapsed()
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished(), "still waiting while behind");
        c.caught_up();
        let waited = waiter.await.unwrap();
        assert!(waited >= Duration::from_millis(90) && waited < HOLD, "{waited:?}");
    }

    #[tokio::test]
    async fn the_wait_ends_hold_after_the_loss() {
        let c = CatchUp { epoch: Instant::now() - HOLD, ..CatchUp::default() };
        // A loss that began HOLD ago (at the epoch): nothing left to wait.
        c.since.store(1, Ordering::Release);
        tokio::time::timeout(Duration::from_millis(50), c.wait()).await.expect("the hold is over");
        assert!(c.behind(), "still behind: served from the snapshot until it catches up");
    }
}
