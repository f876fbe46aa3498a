//! The behaviour every [`Store`] backend must show, checked through the trait
//! only, so the Redis backend runs exactly the same suite as the embedded one
//! and "two backends that pass the same conformance tests" (DESIGN.md) stays true.
//!
//! Races are checked with many tasks released together by a barrier: a
//! backend that is not atomic fails them most of the time, not once in a blue
//! moon. TTLs are wall-clock in real stores, so the suite sleeps once for them.

mod devices;
mod passes;

use super::{Change, Exported, Lock, SharedStore, Store, TotpRecord};
use devices::{
    issuance_is_bounded_by_the_license, issuance_races_for_the_last_slot, set_expiring_allowance_holds_under_race,
    set_expiring_expire_and_revoke,
};
use passes::{
    passes_are_listed_newest_first, passes_move_with_export_and_import, revoking_a_pass_voids_it_like_a_session,
    touches_only_move_last_seen_forwards, touches_race_to_the_latest,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, Barrier};

/// Makes a fresh, empty store. Each check gets its own.
pub type MakeStore = dyn Fn() -> Pin<Box<dyn Future<Output = SharedStore> + Send>>;

const RACERS: usize = 16;
/// Concurrent failures against a limit of 5.
const FAILURES: usize = 10;
/// Concurrent guesses against a limit of 5 (issue 16: "60 parallel wrong codes").
const GUESSES: usize = 60;
const SHORT_TTL: Duration = Duration::from_millis(300);
const PAST_SHORT_TTL: Duration = Duration::from_millis(400);
const LONG_TTL: Duration = Duration::from_secs(60);

/// Runs every check, each against its own store from `make`, all at once (the
/// suite then takes about as long as its one TTL sleep). Must be called inside
/// a tokio runtime. Panics with the name of the first check that failed.
#[doc(hidden)]
pub async fn run_all(make: &MakeStore) {
    macro_rules! spawn_checks {
        ($($check:ident),* $(,)?) => {
            vec![$((stringify!($check), {
                let store = make();
                tokio::spawn(async move { $check(store.await).await })
            })),*]
        };
    }
    let mut checks = spawn_checks![
        challenges,
        challenge_values_are_bytes_and_keys_are_apart,
        take_is_single_use_under_race,
        counters,
        state_with_ttl_expires,
        unknown_user_has_default_record,
        user_names_are_opaque,
        totp_enrollment_and_replay,
        totp_step_is_single_use_under_race,
        recovery_codes,
        recovery_code_is_single_use_under_race,
        failures_lock_exactly_once_under_race,
        guesses_are_reserved_before_they_are_checked,
        reserved_guesses_settle_release_and_reset,
        reservation_after_a_timed_lock_leaves_one_guess,
        a_reset_does_not_erase_other_reservations,
        unsettled_reservations_expire_and_refusals_are_visible_locks,
        counters_are_given_back,
        reset_failures_and_unlock,
        locked_lists_current_locks,
        revoke_totp,
        invitation_tries_are_bounded_under_race,
        sign_out_everywhere,
        revoked_sessions,
        subscribers_see_every_change,
        settings_are_shared_and_announced,
        issuance_is_bounded_by_the_license,
        issuance_races_for_the_last_slot,
        set_expiring_expire_and_revoke,
        set_expiring_allowance_holds_under_race,
        passes_are_listed_newest_first,
        touches_only_move_last_seen_forwards,
        touches_race_to_the_latest,
        revoking_a_pass_voids_it_like_a_session,
    ];
    let (from, into) = (make(), make());
    checks.push((
        "export_then_import_into_a_fresh_store",
        tokio::spawn(async move { export_then_import_into_a_fresh_store(from.await, into.await).await }),
    ));
    let (from, into) = (make(), make());
    checks.push((
        "passes_move_with_export_and_import",
        tokio::spawn(async move { passes_move_with_export_and_import(from.await, into.await).await }),
    ));
    for (name, task) in checks {
        if let Err(e) = task.await {
            eprintln!("store conformance check `{name}` failed");
            match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("store conformance check `{name}` did not finish: {e}"),
            }
        }
    }
}

fn totp(created_at: u64) -> TotpRecord {
    TotpRecord { secret_sealed: vec![1, 2, 3, 4], confirmed: false, last_step: 0, created_at, period: 30 }
}

fn admin_lock(at: u64) -> Lock {
    Lock { at, until: None, reason: "too many failed codes".into() }
}

fn hashes(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Starts `n` copies of `f` at the same moment and returns their results.
async fn race<T, F, Fut>(store: &SharedStore, n: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(SharedStore) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let run = f(Arc::clone(store));
            tokio::spawn(async move {
                barrier.wait().await;
                run.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("racing task panicked"));
    }
    out
}

async fn enrolled(store: &dyn Store, user: &str, step: u64, recovery: &[&str]) {
    store.set_pending_totp(user, totp(1_000)).await.unwrap();
    assert!(store.confirm_totp(user, step, hashes(recovery)).await.unwrap());
}

async fn next_change(rx: &mut broadcast::Receiver<Change>) -> Change {
    tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("no change published within 2 s")
        .expect("change feed closed or lagged")
}

async fn challenges(s: SharedStore) {
    assert_eq!(s.get_challenge("missing").await.unwrap(), None);
    s.put_challenge("c", b"one", LONG_TTL).await.unwrap();
    assert_eq!(s.get_challenge("c").await.unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(s.get_challenge("c").await.unwrap().as_deref(), Some(&b"one"[..]), "get does not consume");
    s.put_challenge("c", b"two", LONG_TTL).await.unwrap();
    assert_eq!(s.get_challenge("c").await.unwrap().as_deref(), Some(&b"two"[..]), "put replaces");

    assert_eq!(s.take_challenge("c").await.unwrap().as_deref(), Some(&b"two"[..]));
    assert_eq!(s.take_challenge("c").await.unwrap(), None, "take is single-use");
    assert_eq!(s.get_challenge("c").await.unwrap(), None);

    s.put_challenge("d", b"x", LONG_TTL).await.unwrap();
    s.delete_challenge("d").await.unwrap();
    assert_eq!(s.get_challenge("d").await.unwrap(), None);
    s.delete_challenge("never-there").await.unwrap();
}

/// Challenge values are opaque bytes; a challenge and a counter never share a key.
async fn challenge_values_are_bytes_and_keys_are_apart(s: SharedStore) {
    let bytes = [0u8, 255, 10, 13, 0x80, b'"'];
    s.put_challenge("bin", &bytes, LONG_TTL).await.unwrap();
    assert_eq!(s.get_challenge("bin").await.unwrap().as_deref(), Some(&bytes[..]));
    s.put_challenge("empty", b"", LONG_TTL).await.unwrap();
    assert_eq!(s.take_challenge("empty").await.unwrap().as_deref(), Some(&b""[..]), "empty is not missing");

    s.put_challenge("shared", b"v", LONG_TTL).await.unwrap();
    assert_eq!(s.count("shared", LONG_TTL).await.unwrap(), 1, "a counter is not a challenge");
    assert_eq!(s.get_challenge("shared").await.unwrap().as_deref(), Some(&b"v"[..]));
}

async fn take_is_single_use_under_race(s: SharedStore) {
    s.put_challenge("code", b"secret", LONG_TTL).await.unwrap();
    let got = race(&s, RACERS, |s| async move { s.take_challenge("code").await.unwrap() }).await;
    let winners: Vec<_> = got.into_iter().flatten().collect();
    assert_eq!(winners, vec![b"secret".to_vec()], "exactly one taker gets the value");
}

async fn counters(s: SharedStore) {
    for expected in 1..=3 {
        assert_eq!(s.count("ip:a", LONG_TTL).await.unwrap(), expected);
    }
    assert_eq!(s.count("ip:b", LONG_TTL).await.unwrap(), 1, "counters are per key");
}

/// Challenges and counters expire after their TTL (one sleep for both).
async fn state_with_ttl_expires(s: SharedStore) {
    s.put_challenge("short", b"v", SHORT_TTL).await.unwrap();
    assert!(s.get_challenge("short").await.unwrap().is_some());
    s.put_challenge("long", b"v", LONG_TTL).await.unwrap();
    assert_eq!(s.count("n", SHORT_TTL).await.unwrap(), 1);
    assert_eq!(s.count("n", SHORT_TTL).await.unwrap(), 2);

    tokio::time::sleep(PAST_SHORT_TTL).await;

    assert_eq!(s.get_challenge("short").await.unwrap(), None, "expired challenge is invisible");
    assert_eq!(s.take_challenge("short").await.unwrap(), None, "expired challenge cannot be taken");
    assert!(s.get_challenge("long").await.unwrap().is_some(), "unexpired challenge stays");
    assert_eq!(s.count("n", SHORT_TTL).await.unwrap(), 1, "counter restarts after its window");
}

async fn unknown_user_has_default_record(s: SharedStore) {
    assert_eq!(s.user("nobody").await.unwrap(), Default::default());
    assert!(!s.use_totp_step("nobody", 5).await.unwrap());
    assert!(!s.use_recovery_code("nobody", "h").await.unwrap());
    assert!(!s.confirm_totp("nobody", 5, hashes(&["h"])).await.unwrap());
    assert!(!s.unlock("nobody").await.unwrap());
    assert_eq!(s.user("nobody").await.unwrap(), Default::default(), "refused steps change nothing");
}

/// User names are exact strings: punctuation, glob characters and non-ASCII
/// are names like any other, and never run into each other.
async fn user_names_are_opaque(s: SharedStore) {
    let names = ["a", "a:b", "a*", "[a]", "ünï cödé", "a b"];
    for (i, name) in names.iter().enumerate() {
        s.sign_out_everywhere(name, 1_000 + i as u64).await.unwrap();
    }
    let rev = s.revocations().await.unwrap();
    for (i, name) in names.iter().enumerate() {
        assert_eq!(rev.not_before.get(*name), Some(&(1_000 + i as u64)), "{name}");
        assert_eq!(s.user(name).await.unwrap().sessions_not_before, 1_000 + i as u64, "{name}");
    }
    assert_eq!(rev.not_before.len(), names.len());
}

async fn totp_enrollment_and_replay(s: SharedStore) {
    s.record_failure("alice", 5, admin_lock(1)).await.unwrap();
    assert!(s.set_pending_totp("alice", totp(1_000)).await.unwrap());
    assert!(!s.use_totp_step("alice", 100).await.unwrap(), "a pending authenticator signs nothing in");

    assert!(s.confirm_totp("alice", 100, hashes(&["r1", "r2"])).await.unwrap());
    let r = s.user("alice").await.unwrap();
    let t = r.totp.expect("authenticator kept");
    assert!(t.confirmed);
    assert_eq!((t.last_step, t.created_at, t.period), (100, 1_000, 30));
    assert_eq!(t.secret_sealed, vec![1, 2, 3, 4]);
    assert_eq!(r.recovery, hashes(&["r1", "r2"]));
    assert_eq!(r.failures, 0, "confirming resets failures");
    assert!(!s.confirm_totp("alice", 101, hashes(&["x"])).await.unwrap(), "confirm only once");
    assert!(
        !s.set_pending_totp("alice", totp(2_000)).await.unwrap(),
        "enrollment never replaces a confirmed authenticator"
    );
    assert!(s.user("alice").await.unwrap().totp.unwrap().confirmed);

    assert!(!s.use_totp_step("alice", 100).await.unwrap(), "the confirming code is used");
    assert!(!s.use_totp_step("alice", 99).await.unwrap(), "older step refused");
    assert!(s.use_totp_step("alice", 101).await.unwrap(), "newer step accepted");
    assert!(!s.use_totp_step("alice", 101).await.unwrap(), "replay refused");
    assert_eq!(s.user("alice").await.unwrap().totp.unwrap().last_step, 101);

    // Revoked while enrolling: the pending authenticator is gone.
    s.set_pending_totp("bob", totp(1_000)).await.unwrap();
    s.revoke_totp("bob", 2_000).await.unwrap();
    assert!(!s.confirm_totp("bob", 100, hashes(&["r"])).await.unwrap());
    assert!(!s.confirm_totp("carol", 100, hashes(&["r"])).await.unwrap(), "nothing pending");
}

async fn totp_step_is_single_use_under_race(s: SharedStore) {
    enrolled(&*s, "dave", 100, &[]).await;
    let accepted = race(&s, RACERS, |s| async move { s.use_totp_step("dave", 200).await.unwrap() }).await;
    assert_eq!(accepted.iter().filter(|&&ok| ok).count(), 1, "one code, one login");
    assert_eq!(s.user("dave").await.unwrap().totp.unwrap().last_step, 200);
}

async fn recovery_codes(s: SharedStore) {
    s.set_recovery_codes("erin", hashes(&["a", "b", "c"])).await.unwrap();
    assert!(s.use_recovery_code("erin", "b").await.unwrap());
    assert!(!s.use_recovery_code("erin", "b").await.unwrap(), "used once");
    assert!(!s.use_recovery_code("erin", "zzz").await.unwrap(), "unknown code");
    assert!(!s.use_recovery_code("frank", "a").await.unwrap(), "another user's code");
    assert_eq!(s.user("erin").await.unwrap().recovery, hashes(&["a", "c"]));
    s.set_recovery_codes("erin", hashes(&["n"])).await.unwrap();
    assert_eq!(s.user("erin").await.unwrap().recovery, hashes(&["n"]), "set replaces");
}

async fn recovery_code_is_single_use_under_race(s: SharedStore) {
    s.set_recovery_codes("gina", hashes(&["a", "b"])).await.unwrap();
    let used = race(&s, RACERS, |s| async move { s.use_recovery_code("gina", "a").await.unwrap() }).await;
    assert_eq!(used.iter().filter(|&&ok| ok).count(), 1, "one code, one login");
    assert_eq!(s.user("gina").await.unwrap().recovery, hashes(&["b"]));
}

async fn failures_lock_exactly_once_under_race(s: SharedStore) {
    let outcomes =
        race(&s, FAILURES, |s| async move { s.record_failure("hank", 5, admin_lock(1_000)).await.unwrap() }).await;
    let mut counts: Vec<u32> = outcomes.iter().map(|o| o.failures).collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=FAILURES as u32).collect::<Vec<_>>(), "every failure counted once");
    assert_eq!(outcomes.iter().filter(|o| o.locked_now).count(), 1, "locked exactly once");
    assert!(outcomes.iter().all(|o| o.locked_now == (o.failures == 5)), "locks at max_failures");

    let r = s.user("hank").await.unwrap();
    assert_eq!(r.failures, FAILURES as u32);
    assert_eq!(r.lock, Some(admin_lock(1_000)));
    assert!(r.is_locked(u64::MAX));

    let below = s.record_failure("ivan", 3, admin_lock(1)).await.unwrap();
    assert_eq!((below.failures, below.locked_now), (1, false));
    assert_eq!(s.user("ivan").await.unwrap().lock, None, "no lock below max");
}

/// Of many parallel guesses, only `max_failures` are let through to be
/// checked; the rest are refused before any check, across the whole store.
async fn guesses_are_reserved_before_they_are_checked(s: SharedStore) {
    let granted =
        race(&s, GUESSES, |s| async move { s.reserve_guess("rose", 5, admin_lock(1_000)).await.unwrap() }).await;
    assert_eq!(granted.iter().filter(|&&g| g).count(), 5, "exactly max_failures guesses may be checked");
    let r = s.user("rose").await.unwrap();
    assert_eq!((r.failures, r.guessing.len()), (0, 5), "each let-through guess is in flight");
    let settled = race(&s, 5, |s| async move { s.settle_failure("rose", 5, admin_lock(1_000)).await.unwrap() }).await;
    assert_eq!(settled.iter().filter(|o| o.locked_now).count(), 1, "locked exactly once");
    let mut counts: Vec<u32> = settled.iter().map(|o| o.failures).collect();
    counts.sort_unstable();
    assert_eq!(counts, vec![1, 2, 3, 4, 5], "each settled guess counts once");
    let r = s.user("rose").await.unwrap();
    assert_eq!((r.failures, r.guessing.len(), r.lock), (5, 0, Some(admin_lock(1_000))));
    assert!(!s.reserve_guess("rose", 5, admin_lock(2_000)).await.unwrap(), "a locked user gets no guess");
    assert!(s.reserve_guess("other", 5, admin_lock(2_000)).await.unwrap(), "per user");
}

async fn reserved_guesses_settle_release_and_reset(s: SharedStore) {
    assert!(s.reserve_guess("saul", 3, admin_lock(1_000)).await.unwrap());
    assert!(s.reserve_guess("saul", 3, admin_lock(1_000)).await.unwrap());
    s.release_guess("saul").await.unwrap();
    let r = s.user("saul").await.unwrap();
    assert_eq!((r.failures, r.guessing.len()), (0, 1), "a right guess that finished nothing is given back");
    let o = s.settle_failure("saul", 3, admin_lock(1_000)).await.unwrap();
    assert_eq!((o.failures, o.locked_now), (1, false), "below max: no lock");
    s.reset_failures("saul").await.unwrap();
    assert_eq!(s.user("saul").await.unwrap().failures, 0, "a finished login resets");
    s.release_guess("saul").await.unwrap();
    assert_eq!(s.user("saul").await.unwrap(), Default::default(), "never below zero");
    for _ in 0..3 {
        assert!(s.reserve_guess("saul", 3, admin_lock(1_000)).await.unwrap());
    }
    assert!(!s.reserve_guess("saul", 3, admin_lock(1_000)).await.unwrap(), "three in flight: the fourth waits");
    for _ in 0..3 {
        s.settle_failure("saul", 3, admin_lock(1_000)).await.unwrap();
    }
    assert!(s.user("saul").await.unwrap().is_locked(1_000));
    assert!(s.unlock("saul").await.unwrap());
    assert!(s.reserve_guess("saul", 3, admin_lock(1_000)).await.unwrap(), "unlock gives the guesses back");
}

/// A success (or an unlock) while other guesses are being checked resets the
/// failures, not their reservations: a release afterwards takes back only
/// its own, and the limit still counts the others.
async fn a_reset_does_not_erase_other_reservations(s: SharedStore) {
    assert!(s.reserve_guess("uma", 2, admin_lock(1_000)).await.unwrap(), "guess A");
    assert!(s.reserve_guess("uma", 2, admin_lock(1_000)).await.unwrap(), "guess B");
    s.reset_failures("uma").await.unwrap();
    s.release_guess("uma").await.unwrap();
    assert_eq!(s.user("uma").await.unwrap().guessing.len(), 1, "B is still being checked");
    assert!(s.reserve_guess("uma", 2, admin_lock(1_000)).await.unwrap(), "one place left");
    assert!(!s.reserve_guess("uma", 2, admin_lock(1_000)).await.unwrap(), "B still counts");
    s.unlock("uma").await.unwrap();
    assert!(!s.reserve_guess("uma", 2, admin_lock(1_000)).await.unwrap(), "an unlock does not erase them either");
}

/// A reservation never settled (store timeout, dropped request, crash) stops
/// counting after `RESERVATION_SECS`, so it cannot leave an invisible lock;
/// failures that reach the limit without a lock (e.g. `max_failures`
/// lowered) are locked by the reservation that finds them, visibly.
async fn unsettled_reservations_expire_and_refusals_are_visible_locks(s: SharedStore) {
    for _ in 0..3 {
        assert!(s.reserve_guess("vera", 3, admin_lock(1_000)).await.unwrap());
    }
    let soon = 1_000 + super::RESERVATION_SECS - 1;
    assert!(!s.reserve_guess("vera", 3, admin_lock(soon)).await.unwrap(), "still in flight");
    assert!(s.locked(soon).await.unwrap().is_empty(), "in flight is not locked");
    let later = 1_000 + super::RESERVATION_SECS;
    assert!(s.reserve_guess("vera", 3, admin_lock(later)).await.unwrap(), "abandoned reservations ran out");
    assert_eq!(s.user("vera").await.unwrap().guessing.len(), 1);

    let mut rx = s.subscribe();
    for _ in 0..3 {
        s.record_failure("walt", 5, admin_lock(1_000)).await.unwrap();
    }
    assert!(!s.reserve_guess("walt", 3, admin_lock(2_000)).await.unwrap(), "at the (lowered) limit: refused");
    assert_eq!(s.locked(2_000).await.unwrap(), vec![("walt".into(), admin_lock(2_000))], "and locked, visibly");
    assert_eq!(rx.recv().await.unwrap(), Change::Locked { user: "walt".into() });
    assert!(s.unlock("walt").await.unwrap(), "an administrator can lift it");
    assert!(s.reserve_guess("walt", 3, admin_lock(2_000)).await.unwrap());
}

async fn counters_are_given_back(s: SharedStore) {
    assert_eq!(s.count("ip:c", LONG_TTL).await.unwrap(), 1);
    assert_eq!(s.count("ip:c", LONG_TTL).await.unwrap(), 2);
    s.uncount("ip:c").await.unwrap();
    assert_eq!(s.count("ip:c", LONG_TTL).await.unwrap(), 2, "one taken back");
    for _ in 0..3 {
        s.uncount("ip:c").await.unwrap();
    }
    assert_eq!(s.count("ip:c", LONG_TTL).await.unwrap(), 1, "never below zero");
    s.uncount("ip:none").await.unwrap();
    assert_eq!(s.count("ip:none", LONG_TTL).await.unwrap(), 1, "an absent counter stays absent");
}

async fn reservation_after_a_timed_lock_leaves_one_guess(s: SharedStore) {
    let timed = |at| Lock { at, until: Some(at + 600), reason: "failed codes".into() };
    for _ in 0..2 {
        assert!(s.reserve_guess("tess", 2, timed(1_000)).await.unwrap());
    }
    s.settle_failure("tess", 2, timed(1_000)).await.unwrap();
    assert!(s.settle_failure("tess", 2, timed(1_000)).await.unwrap().locked_now);
    assert!(!s.reserve_guess("tess", 2, timed(1_599)).await.unwrap(), "locked until 1600");
    let after = race(&s, RACERS, |s| async move { s.reserve_guess("tess", 2, timed(1_600)).await.unwrap() }).await;
    assert_eq!(after.iter().filter(|&&g| g).count(), 1, "one guess after a timed lock ran out");
    let o = s.settle_failure("tess", 2, timed(1_600)).await.unwrap();
    assert!(o.locked_now, "and its failure locks again");
    assert!(s.user("tess").await.unwrap().is_locked(2_199));
}

async fn reset_failures_and_unlock(s: SharedStore) {
    for _ in 0..3 {
        s.record_failure("jill", 3, admin_lock(1_000)).await.unwrap();
    }
    s.reset_failures("jill").await.unwrap();
    let r = s.user("jill").await.unwrap();
    assert_eq!(r.failures, 0);
    assert!(r.is_locked(2_000), "reset_failures does not lift a lock");

    assert!(s.unlock("jill").await.unwrap());
    let r = s.user("jill").await.unwrap();
    assert_eq!((r.failures, r.lock), (0, None));
    assert!(!s.unlock("jill").await.unwrap(), "nothing left to unlock");

    let again = s.record_failure("jill", 3, admin_lock(3_000)).await.unwrap();
    assert_eq!((again.failures, again.locked_now), (1, false), "unlock clears the count");

    s.record_failure("kate", 9, admin_lock(1)).await.unwrap();
    s.unlock("kate").await.unwrap();
    assert_eq!(s.user("kate").await.unwrap().failures, 0, "unlock clears failures");
}

async fn locked_lists_current_locks(s: SharedStore) {
    let timed = Lock { at: 1_000, until: Some(1_600), reason: "failed codes".into() };
    s.record_failure("lena", 1, timed.clone()).await.unwrap();
    s.record_failure("mike", 1, admin_lock(1_000)).await.unwrap();
    s.record_failure("nina", 2, admin_lock(1_000)).await.unwrap();

    let mut now = s.locked(1_599).await.unwrap();
    now.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(now, vec![("lena".into(), timed.clone()), ("mike".into(), admin_lock(1_000))]);
    let later = s.locked(1_600).await.unwrap();
    assert_eq!(later, vec![("mike".into(), admin_lock(1_000))], "timed lock over at `until`");
    assert!(!s.user("lena").await.unwrap().is_locked(1_600));

    // A failure after a timed lock ran out, without a success in between, locks again.
    let relock = Lock { at: 2_000, until: Some(2_600), reason: "failed codes".into() };
    let o = s.record_failure("lena", 1, relock.clone()).await.unwrap();
    assert!(o.locked_now);
    assert_eq!(s.user("lena").await.unwrap().lock, Some(relock));
}

/// Three PIN tries at most, however many run at once; a right one starts
/// again, a used link stays used; the invitation moves with export/import.
async fn invitation_tries_are_bounded_under_race(s: SharedStore) {
    use super::{Invitation, InvitationKind, InvitationTry};
    let inv = Invitation {
        code_hash: "code".into(),
        pin_hash: "$argon2id$…".into(),
        kind: InvitationKind::Totp,
        email: "quinn@example.com".into(),
        lang: "ja".into(),
        invited_by: "mia".into(),
        created_at: 1_000,
        expires_at: 9_000,
        tries: 0,
        used_at: None,
        mail_error: None,
    };
    s.set_invitation("quinn", Some(inv.clone())).await.unwrap();
    assert_eq!(s.user("quinn").await.unwrap().invitation.as_deref(), Some(&inv));
    let tries = race(&s, RACERS, |s| async move { s.try_invitation("quinn", "code", 2_000).await.unwrap() }).await;
    let counted = tries.iter().filter(|t| matches!(t, InvitationTry::Counted(_))).count();
    assert_eq!(counted, super::invitation::MAX_PIN_TRIES as usize, "{tries:?}");
    assert!(tries.iter().all(|t| matches!(t, InvitationTry::Counted(_) | InvitationTry::Voided)), "{tries:?}");
    // A new invitation replaces a voided one; a right PIN then a use.
    s.set_invitation("quinn", Some(Invitation { code_hash: "new".into(), ..inv.clone() })).await.unwrap();
    assert_eq!(s.try_invitation("quinn", "code", 2_000).await.unwrap(), InvitationTry::Unknown);
    assert!(matches!(s.try_invitation("quinn", "new", 2_000).await.unwrap(), InvitationTry::Counted(_)));
    s.settle_invitation("quinn", "new", Some(2_001)).await.unwrap();
    assert_eq!(s.try_invitation("quinn", "new", 2_002).await.unwrap(), InvitationTry::Used);
    assert_eq!(s.try_invitation("quinn", "new", 9_500).await.unwrap(), InvitationTry::Used);
    let exported = s.export().await.unwrap();
    s.set_invitation("quinn", None).await.unwrap();
    assert_eq!(s.user("quinn").await.unwrap().invitation, None);
    s.import(exported).await.unwrap();
    assert_eq!(s.user("quinn").await.unwrap().invitation.unwrap().used_at, Some(2_001));
}

async fn revoke_totp(s: SharedStore) {
    let mut rx = s.subscribe();
    enrolled(&*s, "olga", 100, &["r1", "r2"]).await;
    s.revoke_totp("olga", 5_000).await.unwrap();
    let r = s.user("olga").await.unwrap();
    assert_eq!(r.totp, None, "authenticator gone");
    assert!(r.recovery.is_empty(), "recovery codes gone");
    assert_eq!(r.totp_revoked_at, Some(5_000));
    assert_eq!(r.sessions_not_before, 5_000);
    assert!(!s.use_totp_step("olga", 101).await.unwrap());
    assert!(!s.use_recovery_code("olga", "r1").await.unwrap());
    let change = Change::SessionsNotBefore { user: "olga".into(), at: 5_000 };
    assert_eq!(next_change(&mut rx).await, change);
    assert!(!s.revocations().await.unwrap().allows("olga", "sid", 4_999));

    // Never moves "not before" back.
    s.sign_out_everywhere("pete", 9_000).await.unwrap();
    s.revoke_totp("pete", 5_000).await.unwrap();
    let r = s.user("pete").await.unwrap();
    assert_eq!((r.sessions_not_before, r.totp_revoked_at), (9_001, Some(5_000)), "past the earlier bar");
}

async fn sign_out_everywhere(s: SharedStore) {
    let mut rx = s.subscribe();
    enrolled(&*s, "quin", 100, &["r"]).await;
    assert_eq!(s.sign_out_everywhere("quin", 7_000).await.unwrap(), 7_000);
    let change = Change::SessionsNotBefore { user: "quin".into(), at: 7_000 };
    assert_eq!(next_change(&mut rx).await, change);
    // Never moves back, and always past the earlier bar: a session stamped
    // with it (a login right after that sign-out) is voided too.
    assert_eq!(s.sign_out_everywhere("quin", 6_000).await.unwrap(), 7_001);
    assert_eq!(next_change(&mut rx).await, Change::SessionsNotBefore { user: "quin".into(), at: 7_001 });
    assert_eq!(s.sign_out_everywhere("quin", 7_001).await.unwrap(), 7_002, "twice within one second");
    next_change(&mut rx).await;
    let r = s.user("quin").await.unwrap();
    assert_eq!(r.sessions_not_before, 7_002);
    assert!(r.totp.is_some_and(|t| t.confirmed), "authenticator kept");
    assert_eq!(r.recovery, hashes(&["r"]));

    s.record_failure("rita", 5, admin_lock(1)).await.unwrap();
    let rev = s.revocations().await.unwrap();
    assert_eq!(rev.not_before.get("quin"), Some(&7_002));
    assert!(!rev.not_before.contains_key("rita"), "only users signed out");
    assert!(!rev.allows("quin", "sid", 7_001), "issued before: void");
    assert!(rev.allows("quin", "sid", 7_002));
    assert!(rev.allows("rita", "sid", 1));
}

async fn revoked_sessions(s: SharedStore) {
    let mut rx = s.subscribe();
    let far = 4_000_000_000; // 2096: still valid whenever this runs
    s.revoke_session("sid-1", far).await.unwrap();
    let change = Change::SessionRevoked { id: "sid-1".into(), until: far };
    assert_eq!(next_change(&mut rx).await, change);
    s.revoke_session("sid-old", 1).await.unwrap();
    s.revoke_session("sid-1", 1).await.unwrap();

    let rev = s.revocations().await.unwrap();
    assert!(rev.revoked_sessions.contains("sid-1"), "the later `until` is kept");
    assert!(!rev.revoked_sessions.contains("sid-old"), "a session expired anyway needs no revocation");
    let mut pruned = rev.revoked_sessions.clone();
    assert_eq!(pruned.prune(far - 1), 0, "each revocation is read back with its `until`...");
    assert_eq!(pruned.prune(far), 1, "...so it is forgotten when the session would have expired");
    assert!(!rev.allows("sam", "sid-1", 10), "revoked session refused");
    assert!(rev.allows("sam", "sid-2", 10), "other sessions unaffected");
}

async fn subscribers_see_every_change(s: SharedStore) {
    let mut rx = s.subscribe();
    let mut second = s.subscribe();
    for _ in 0..2 {
        s.record_failure("tina", 2, admin_lock(1)).await.unwrap();
    }
    let locked = Change::Locked { user: "tina".into() };
    assert_eq!(next_change(&mut rx).await, locked);
    assert!(s.unlock("tina").await.unwrap());
    let unlocked = Change::Unlocked { user: "tina".into() };
    assert_eq!(next_change(&mut rx).await, unlocked);
    s.revoke_session("sid-9", 4_000_000_000).await.unwrap();
    assert!(matches!(next_change(&mut rx).await, Change::SessionRevoked { id, .. } if id == "sid-9"));
    assert_eq!(next_change(&mut second).await, locked, "every subscriber gets every change");

    // The snapshot the fast path keeps: full read plus the changes applied.
    let mut snapshot = s.revocations().await.unwrap();
    s.sign_out_everywhere("tina", 8_000).await.unwrap();
    loop {
        let c = next_change(&mut rx).await;
        snapshot.apply(&c);
        if matches!(c, Change::SessionsNotBefore { .. }) {
            break;
        }
    }
    assert!(!snapshot.allows("tina", "sid-x", 7_999));
    assert!(!snapshot.allows("tina", "sid-9", 8_000));
    assert!(snapshot.allows("tina", "sid-x", 8_000));
}

/// Everything durable moves from one store to a fresh one (`portcullis admin
/// store export/import`, also between backends): used codes stay used,
/// lockouts and revocations hold, and subscribers are told to reload.
async fn settings_are_shared_and_announced(s: SharedStore) {
    let mut rx = s.subscribe();
    assert_eq!(s.setting("keys").await.unwrap(), None);
    assert!(s.put_setting("keys", b"\x00one", true).await.unwrap(), "absent: written");
    assert_eq!(next_change(&mut rx).await, Change::SettingChanged { name: "keys".into() });
    assert!(!s.put_setting("keys", b"two", true).await.unwrap(), "present: not written");
    assert_eq!(s.setting("keys").await.unwrap().as_deref(), Some(&b"\x00one"[..]));
    assert!(s.put_setting("keys", b"three", false).await.unwrap());
    assert_eq!(s.setting("keys").await.unwrap().as_deref(), Some(&b"three"[..]));
    assert_eq!(next_change(&mut rx).await, Change::SettingChanged { name: "keys".into() });
}

async fn export_then_import_into_a_fresh_store(from: SharedStore, into: SharedStore) {
    enrolled(&*from, "uma", 100, &["r1", "r2"]).await;
    assert!(from.use_totp_step("uma", 101).await.unwrap());
    assert!(from.use_recovery_code("uma", "r1").await.unwrap());
    for _ in 0..2 {
        from.record_failure("vic", 2, admin_lock(1_000)).await.unwrap();
    }
    from.sign_out_everywhere("walt", 7_000).await.unwrap();
    let far = 4_000_000_000;
    from.revoke_session("sid-live", far).await.unwrap();
    from.revoke_session("sid-dead", 1).await.unwrap();
    assert!(!from.use_totp_step("nobody", 5).await.unwrap());
    from.put_challenge("c", b"v", LONG_TTL).await.unwrap();
    from.put_device_cert(devices::cert("e1", "uma"), 2, 1).await.unwrap().unwrap();
    from.update_device_cert(&format!("{:0>32}", "e1"), crate::devices::registry::CertUpdate::SetExpiring, 2, 2)
        .await
        .unwrap()
        .unwrap();

    let exported = from.export().await.unwrap();
    let mut users: Vec<&str> = exported
        .iter()
        .filter_map(|e| match e {
            Exported::User { user, .. } => Some(user.as_str()),
            Exported::RevokedSession { .. } | Exported::DeviceCert { .. } | Exported::EntrancePass { .. } => None,
        })
        .collect();
    users.sort_unstable();
    assert_eq!(users, ["uma", "vic", "walt"], "users with state, and only those (a refused step writes nothing)");
    let sessions: Vec<_> = exported.iter().filter(|e| matches!(e, Exported::RevokedSession { .. })).collect();
    assert_eq!(sessions, [&Exported::RevokedSession { id: "sid-live".into(), until: far }], "live revocations only");

    // The target knows "uma" already: import replaces her record.
    into.record_failure("uma", 9, admin_lock(1)).await.unwrap();
    let mut rx = into.subscribe();
    into.import(exported.clone()).await.unwrap();
    assert_eq!(next_change(&mut rx).await, Change::Resync, "import tells subscribers to reload");

    for user in ["uma", "vic", "walt", "nobody"] {
        assert_eq!(into.user(user).await.unwrap(), from.user(user).await.unwrap(), "{user}");
    }
    assert_eq!(as_json_sorted(into.export().await.unwrap()), as_json_sorted(exported));
    assert_eq!(into.locked(2_000).await.unwrap(), vec![("vic".to_string(), admin_lock(1_000))]);
    let rev = into.revocations().await.unwrap();
    assert_eq!(rev.not_before.get("walt"), Some(&7_000));
    assert!(rev.revoked_sessions.contains("sid-live") && !rev.revoked_sessions.contains("sid-dead"));
    assert!(!into.use_totp_step("uma", 101).await.unwrap(), "a used code stays used after the move");
    assert!(!into.use_recovery_code("uma", "r1").await.unwrap());
    assert!(into.use_recovery_code("uma", "r2").await.unwrap());
    assert_eq!(into.get_challenge("c").await.unwrap(), None, "challenge state does not move");
    assert_eq!(into.device_certs().await.unwrap(), from.device_certs().await.unwrap(), "device certificates move");
    assert_eq!(into.device_certs().await.unwrap()[0].set_expiring_at, Some(2), "with their set-expiring use");
}

fn as_json_sorted(items: Vec<Exported>) -> Vec<String> {
    let mut out: Vec<String> = items.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    out.sort_unstable();
    out
}
