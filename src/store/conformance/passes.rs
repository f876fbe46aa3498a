//! Entrance passes on every backend: listed newest first with the latest
//! use merged in, touches only ever move `last_seen` forwards, a revocation
//! marks the record and voids the pass everywhere exactly as a session's
//! revocation does, and passes move with export/import.

use super::{as_json_sorted, next_change, race, RACERS};
use crate::store::{Change, Exported, PassRecord, SharedStore};
use std::time::Duration;

/// 2026-12-01T00:00:00Z.
const T0: u64 = 1_796_083_200;
/// 2096: a revocation still in force whenever this runs.
const FAR: u64 = 4_000_000_000;

/// `pass` + 22 base64url characters, as issued.
fn id(tag: &str) -> String {
    format!("pass{tag:_>22}")
}

fn pass(tag: &str, user: &str, issued_at: u64) -> PassRecord {
    PassRecord {
        id: id(tag),
        user: user.into(),
        issued_at,
        issued_from: "192.0.2.7".into(),
        browser: "Firefox 133 on Linux".into(),
        last_seen: issued_at,
        expires_at: issued_at + 30 * 86_400,
        revoked: false,
    }
}

fn ids(passes: &[PassRecord]) -> Vec<String> {
    passes.iter().map(|p| p.id.clone()).collect()
}

pub(super) async fn passes_are_listed_newest_first(s: SharedStore) {
    assert_eq!(s.passes(None).await.unwrap(), vec![], "no passes yet");
    let (a, b, c, d) =
        (pass("a", "ann", T0 + 10), pass("b", "bob", T0 + 20), pass("c", "ann", T0), pass("d", "ann", T0 + 10));
    for p in [&d, &c, &b, &a] {
        s.put_pass(p).await.unwrap();
    }
    let all = s.passes(None).await.unwrap();
    assert_eq!(all, vec![b.clone(), a.clone(), d.clone(), c.clone()], "issued_at descending, then id");
    assert_eq!(s.passes(Some("ann")).await.unwrap(), vec![a.clone(), d.clone(), c.clone()], "one user's");
    assert_eq!(s.passes(Some("bob")).await.unwrap(), vec![b], "one user's");
    assert_eq!(s.passes(Some("an")).await.unwrap(), vec![], "user names match exactly");
    assert_eq!(s.passes(Some("nobody")).await.unwrap(), vec![]);

    // A put of a known id replaces the record.
    let renewed = PassRecord { expires_at: a.expires_at + 60, ..a.clone() };
    s.put_pass(&renewed).await.unwrap();
    assert_eq!(s.passes(Some("ann")).await.unwrap(), vec![renewed, d, c]);
}

pub(super) async fn touches_only_move_last_seen_forwards(s: SharedStore) {
    let (a, b) = (pass("ta", "ann", T0), pass("tb", "bob", T0 + 500));
    s.put_pass(&a).await.unwrap();
    s.put_pass(&b).await.unwrap();
    s.touch_passes(&[]).await.unwrap();

    let batch = [(id("ta"), T0 + 100), (id("unknown"), T0 + 900), (id("tb"), T0 + 400)];
    s.touch_passes(&batch).await.unwrap();
    let last_seen = |passes: Vec<PassRecord>| passes.iter().map(|p| (p.id.clone(), p.last_seen)).collect::<Vec<_>>();
    assert_eq!(
        last_seen(s.passes(None).await.unwrap()),
        vec![(id("tb"), T0 + 500), (id("ta"), T0 + 100)],
        "raised, never lowered below the record's own, unknown ids ignored"
    );

    s.touch_passes(&[(id("ta"), T0 + 50)]).await.unwrap();
    assert_eq!(s.passes(Some("ann")).await.unwrap()[0].last_seen, T0 + 100, "an older touch changes nothing");
    s.touch_passes(&[(id("ta"), T0 + 300), (id("ta"), T0 + 200), (id("tb"), T0 + 600)]).await.unwrap();
    assert_eq!(last_seen(s.passes(None).await.unwrap()), vec![(id("tb"), T0 + 600), (id("ta"), T0 + 300)]);
    assert_eq!(ids(&s.passes(None).await.unwrap()), vec![id("tb"), id("ta")], "a touch is not an issue: order holds");

    let a_now = &s.passes(Some("ann")).await.unwrap()[0];
    assert_eq!(a_now, &PassRecord { last_seen: T0 + 300, ..a }, "a touch changes nothing else");
}

/// Touches from many instances at once: the latest wins, whatever the order.
pub(super) async fn touches_race_to_the_latest(s: SharedStore) {
    s.put_pass(&pass("r", "ann", T0)).await.unwrap();
    let next = std::sync::atomic::AtomicU64::new(1);
    race(&s, RACERS, |s| {
        let at = T0 + next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move { s.touch_passes(&[(id("r"), at)]).await.unwrap() }
    })
    .await;
    assert_eq!(s.passes(None).await.unwrap()[0].last_seen, T0 + RACERS as u64);
}

pub(super) async fn revoking_a_pass_voids_it_like_a_session(s: SharedStore) {
    let (a, b) = (pass("va", "ann", T0), pass("vb", "ann", T0 + 1));
    s.put_pass(&a).await.unwrap();
    s.put_pass(&b).await.unwrap();
    s.touch_passes(&[(id("va"), T0 + 70)]).await.unwrap();
    let mut rx = s.subscribe();

    let before = s.revoke_pass(&id("va"), FAR).await.unwrap();
    let seen_a = PassRecord { last_seen: T0 + 70, ..a.clone() };
    assert_eq!(before, Some(seen_a.clone()), "the record as it was, with its latest use");
    assert_eq!(next_change(&mut rx).await, Change::SessionRevoked { id: id("va"), until: FAR });
    let revoked_a = PassRecord { revoked: true, ..seen_a };
    assert_eq!(s.passes(None).await.unwrap(), vec![b.clone(), revoked_a.clone()], "marked; the other pass untouched");
    let rev = s.revocations().await.unwrap();
    assert!(rev.revoked_sessions.contains(&id("va")), "in the revoked-sessions set");
    assert!(!rev.revoked_sessions.contains(&id("vb")));
    assert!(!rev.allows("ann", &id("va"), T0 + 1_000), "the pass no longer works");
    assert!(rev.allows("ann", &id("vb"), T0 + 1_000));
    let mut pruned = rev.revoked_sessions.clone();
    assert_eq!(pruned.prune(FAR - 1), 0, "kept until `until`...");
    assert_eq!(pruned.prune(FAR), 1, "...and no longer");

    // Touches after the revocation still only move `last_seen`.
    s.touch_passes(&[(id("va"), T0 + 80)]).await.unwrap();
    let revoked_a = PassRecord { last_seen: T0 + 80, ..revoked_a };
    assert_eq!(s.passes(Some("ann")).await.unwrap()[1], revoked_a, "still revoked");

    // Twice: fine, the record comes back already revoked.
    assert_eq!(s.revoke_pass(&id("va"), FAR).await.unwrap(), Some(revoked_a.clone()));
    assert_eq!(next_change(&mut rx).await, Change::SessionRevoked { id: id("va"), until: FAR });
    assert_eq!(s.passes(Some("ann")).await.unwrap()[1], revoked_a);

    // Unknown: nothing written, nothing published (the next change is a later one).
    assert_eq!(s.revoke_pass(&id("nope"), FAR).await.unwrap(), None);
    assert!(tokio::time::timeout(Duration::from_millis(200), rx.recv()).await.is_err(), "nothing published");
    s.revoke_session("sid-after", FAR).await.unwrap();
    assert_eq!(next_change(&mut rx).await, Change::SessionRevoked { id: "sid-after".into(), until: FAR });
    let rev = s.revocations().await.unwrap();
    assert!(!rev.revoked_sessions.contains(&id("nope")), "an unknown id is not voided");
    assert_eq!(rev.revoked_sessions.len(), 2, "{:?}", rev.revoked_sessions);
    assert_eq!(s.passes(None).await.unwrap(), vec![b, revoked_a], "an unknown id writes no record");
}

/// Passes move with `store export`/`import`, latest use and revocation included.
pub(super) async fn passes_move_with_export_and_import(from: SharedStore, into: SharedStore) {
    for p in [pass("ea", "ann", T0), pass("eb", "bob", T0 + 5), pass("ec", "ann", T0 + 9)] {
        from.put_pass(&p).await.unwrap();
    }
    from.touch_passes(&[(id("ea"), T0 + 40), (id("eb"), T0 + 50)]).await.unwrap();
    from.revoke_pass(&id("eb"), FAR).await.unwrap().unwrap();
    let listed = from.passes(None).await.unwrap();

    let exported = from.export().await.unwrap();
    let mut passes: Vec<PassRecord> = exported
        .iter()
        .filter_map(|e| match e {
            Exported::EntrancePass { pass } => Some(pass.clone()),
            _ => None,
        })
        .collect();
    passes.sort_by_key(|p| std::cmp::Reverse(p.issued_at));
    assert_eq!(passes, listed, "every pass, with its latest use and revocation");
    assert!(exported.contains(&Exported::RevokedSession { id: id("eb"), until: FAR }), "its voiding too");

    // The target knows one of them already, with a later use: import replaces it.
    into.put_pass(&pass("ea", "ann", T0)).await.unwrap();
    into.touch_passes(&[(id("ea"), T0 + 99)]).await.unwrap();
    into.import(exported.clone()).await.unwrap();
    assert_eq!(into.passes(None).await.unwrap(), listed);
    assert_eq!(as_json_sorted(into.export().await.unwrap()), as_json_sorted(exported));
    let rev = into.revocations().await.unwrap();
    assert!(!rev.allows("bob", &id("eb"), T0 + 100), "a revoked pass stays void after the move");
    into.touch_passes(&[(id("ea"), T0 + 41)]).await.unwrap();
    assert_eq!(into.passes(Some("ann")).await.unwrap()[1].last_seen, T0 + 41, "touches go on from the imported use");
}
