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

//! The last few released HTTP/1 upstream connections of each worker thread,
//! kept aside for the next requests of that thread to the same peer (a
//! portcullis patch, see `PATCHED.md`; used by [`crate::InlineHttp1`]).
//!
//! Returning a connection to `pingora_core`'s pool and taking it back costs
//! a `Mutex` per connection, the pool's locks and hash lookups, a oneshot
//! channel and a spawned idle-watch task that is woken and finished when the
//! connection is taken: thousands of instructions per request, for the
//! common case where the next requests on the thread go to the same
//! upstream. A few slots per thread skip all of that. What the pool checks on
//! reuse is checked here too: the same peer (`reuse_hash`), the socket still
//! connected to that peer's address (`matches_fd`), nothing to read on it
//! (closed by the peer, or unexpected data: either way it is dropped), and,
//! when the peer sets one, the idle timeout. A connection for which there
//! is no free slot goes to the pool as before.
//!
//! The price: a slot is not watched while it waits, so a connection the
//! peer closes stays open on this side (at most `SLOTS` per worker thread)
//! until a request of the thread finds it closed, or the process ends. The
//! pool would have closed it at once.

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

/// Connections kept per thread: enough for the requests a busy thread has
/// in flight at once to find one each, few enough that the unwatched ones
/// stay a handful.
const SLOTS: usize = 8;

thread_local! {
    /// Most recently parked last.
    static PARKED: RefCell<Vec<Parked>> = const { RefCell::new(Vec::new()) };
}

/// The most recently parked connection of this thread to `peer` that is
/// still fit for a request (one that is not is closed, and the next tried).
pub(crate) fn take<P: Peer>(peer: &P) -> Option<HttpSessionV1> {
    if !h1_only(peer) {
        return None;
    }
    let hash = peer.reuse_hash();
    loop {
        let parked = PARKED.with(|parked| {
            let mut parked = parked.borrow_mut();
            let at = parked.iter().rposition(|p| p.reuse_hash == hash)?;
            Some(parked.remove(at))
        })?;
        if let Some(stream) = fit(parked, peer) {
            return Some(HttpSessionV1::new_with_options(stream, peer));
        }
    }
}

/// The checks the pool makes before it hands a connection out again.
fn fit<P: Peer>(parked: Parked, peer: &P) -> Option<Stream> {
    if parked.expires.is_some_and(|at| Instant::now() >= at) {
        return None;
    }
    let mut stream = parked.stream;
    #[cfg(unix)]
    if !peer.matches_fd(stream.id()) {
        return None;
    }
    idle(&mut stream).then_some(stream)
}

/// Park a connection the request is done with (`respect_keepalive` and
/// `reuse` decide whether it can be reused at all, as for the pool). When
/// this thread's slots are all taken by connections to this peer, the
/// session is returned and the caller releases it to the pool; a full set
/// holding connections to other peers gives up its oldest such one (closed:
/// upstreams alternating on one thread lose a connection, not correctness).
pub(crate) async fn park<P: Peer>(mut session: HttpSessionV1, peer: &P) -> Option<HttpSessionV1> {
    if !h1_only(peer) {
        return Some(session);
    }
    let reuse_hash = peer.reuse_hash();
    let room = PARKED.with(|parked| {
        let mut parked = parked.borrow_mut();
        if parked.len() < SLOTS {
            return true;
        }
        match parked.iter().position(|p| p.reuse_hash != reuse_hash) {
            Some(other) => {
                parked.remove(other);
                true
            }
            None => false,
        }
    });
    if !room {
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
    // `reuse` only awaits when it closes the connection, so no other task of
    // this thread parked in between; if one ever did, this one is closed.
    PARKED.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < SLOTS {
            p.push(parked);
        }
    });
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
