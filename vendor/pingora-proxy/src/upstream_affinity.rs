// Copyright 2026 Cloudflare, Inc.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
// http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

//! The last released HTTP/1 upstream connection of each worker thread, kept
//! aside for the next request of that thread to the same peer (a portcullis
//! patch, see `PATCHED.md`; used by [`crate::InlineHttp1`]).
//!
//! Returning a connection to `pingora_core`'s pool and taking it back costs
//! a `Mutex` per connection, the pool's locks and hash lookups, a oneshot
//! channel and a spawned idle-watch task that is woken and finished when the
//! connection is taken: thousands of instructions per request, for the
//! common case where the very next request on the thread goes to the same
//! upstream. One slot per thread skips all of that. What the pool checks on
//! reuse is checked here too: the same peer (`reuse_hash`), the socket still
//! connected to that peer's address (`matches_fd`), nothing to read on it
//! (closed by the peer, or unexpected data: either way it is dropped), and,
//! when the peer sets one, the idle timeout. A connection that does not fit
//! the slot goes to the pool as before.
//!
//! The price: a slot is not watched while it waits, so a connection the
//! peer closes stays open on this side (one per worker thread at most)
//! until the thread's next upstream request finds it closed, or the process
//! ends. The pool would have closed it at once.

use super::*;
use pingora_core::protocols::http::v1::client::HttpSession as HttpSessionV1;
use pingora_core::protocols::ALPN;
use std::cell::RefCell;
use std::time::Instant;
use tokio::io::AsyncReadExt;

struct Parked {
    reuse_hash: u64,
    stream: Stream,
    /// When it expires, if the peer has an idle timeout.
    expires: Option<Instant>,
}

thread_local! {
    static SLOT: RefCell<Option<Parked>> = const { RefCell::new(None) };
}

/// This thread's parked connection, when it was parked for `peer` and is
/// still fit for a request.
pub(crate) fn take<P: Peer>(peer: &P) -> Option<HttpSessionV1> {
    if !h1_only(peer) {
        return None;
    }
    let hash = peer.reuse_hash();
    let parked = SLOT.with(|slot| {
        let mut slot = slot.borrow_mut();
        match slot.as_ref() {
            Some(p) if p.reuse_hash == hash => slot.take(),
            _ => None,
        }
    })?;
    if parked.expires.is_some_and(|at| Instant::now() >= at) {
        return None;
    }
    let mut stream = parked.stream;
    #[cfg(unix)]
    if !peer.matches_fd(stream.id()) {
        return None;
    }
    if !idle(&mut stream) {
        return None;
    }
    Some(HttpSessionV1::new_with_options(stream, peer))
}

/// Park a connection the request is done with, if the slot is free for it
/// (`respect_keepalive` and `reuse` decide whether it can be reused at all,
/// as for the pool). Returns the session when the slot already holds a
/// connection to the same peer: the caller releases it to the pool. A parked
/// connection to another peer is closed to make room (upstreams alternating
/// on one thread lose that connection, not correctness).
pub(crate) async fn park<P: Peer>(mut session: HttpSessionV1, peer: &P) -> Option<HttpSessionV1> {
    if !h1_only(peer) {
        return Some(session);
    }
    let reuse_hash = peer.reuse_hash();
    let same_peer_parked = SLOT.with(|slot| {
        slot.borrow()
            .as_ref()
            .is_some_and(|p| p.reuse_hash == reuse_hash)
    });
    if same_peer_parked {
        return Some(session);
    }
    session.respect_keepalive();
    let stream = session.reuse().await?;
    let expires = peer.idle_timeout().map(|t| Instant::now() + t);
    let parked = Parked {
        reuse_hash,
        stream,
        expires,
    };
    SLOT.with(|slot| *slot.borrow_mut() = Some(parked));
    None
}

/// No data and no end of stream waiting on an idle connection: the check
/// `pingora_core` makes on a pooled connection before reusing it.
fn idle(stream: &mut Stream) -> bool {
    let mut buf = [0u8; 1];
    // `unconstrained`: the read must not be refused for lack of budget.
    tokio::task::unconstrained(stream.read(&mut buf[..]))
        .now_or_never()
        .is_none()
}

/// A peer whose connections are only ever HTTP/1 (no h2, no custom ALPN):
/// the pool would hand it nothing else either.
fn h1_only<P: Peer>(peer: &P) -> bool {
    peer.get_peer_options()
        .is_none_or(|o| o.alpn.get_max_http_version() == 1 && !matches!(o.alpn, ALPN::Custom(_)))
}
