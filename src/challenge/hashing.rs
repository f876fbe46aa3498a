//! Password hashing on a bounded pool. An argon2id verification costs about
//! 19 MiB and tens of milliseconds of one core, and anyone can ask for one by
//! posting a login form; unbounded, 400 parallel logins would want 7.6 GiB.
//! So verifications run on a fixed number of workers (one per core) with a
//! short queue in front, and a login that finds the queue full is turned
//! away at once (503 with `Retry-After`) before any work or store write.
//!
//! A place in the queue is a [`Ticket`], taken with [`HashPool::admit`]
//! before anything else; it is held until the hash is done, even when the
//! client went away meanwhile, so the bound holds for work already started.

use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Waiting places per worker: at ~50 ms a hash, a full queue waits ~200 ms.
const QUEUE_PER_WORKER: usize = 4;

pub struct HashPool {
    /// Workers plus waiting places: a login takes one or is turned away.
    admitted: Arc<Semaphore>,
    workers: Arc<Semaphore>,
    dummy: Arc<DummyHash>,
}

/// A place in the pool's queue; [`Ticket::verify`] runs the hash.
pub struct Ticket {
    place: OwnedSemaphorePermit,
    workers: Arc<Semaphore>,
    dummy: Arc<DummyHash>,
}

impl HashPool {
    pub fn new(workers: usize, queue: usize) -> HashPool {
        let workers = workers.max(1);
        HashPool {
            admitted: Arc::new(Semaphore::new(workers + queue)),
            workers: Arc::new(Semaphore::new(workers)),
            dummy: Arc::default(),
        }
    }

    /// One worker per core, with a short queue.
    pub fn for_this_machine() -> HashPool {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        HashPool::new(cores, cores * QUEUE_PER_WORKER)
    }

    /// A place in the queue, or `None` when it is full (answer "busy").
    pub fn admit(&self) -> Option<Ticket> {
        match Arc::clone(&self.admitted).try_acquire_owned() {
            Ok(place) => Some(Ticket { place, workers: Arc::clone(&self.workers), dummy: Arc::clone(&self.dummy) }),
            Err(_) => {
                crate::metrics::count_hashing_busy();
                None
            }
        }
    }
}

impl Ticket {
    /// Whether `password` matches the PHC string `phc`, on a pool worker.
    pub async fn verify(self, phc: String, password: String) -> bool {
        self.run(move || verify_phc(&phc, &password)).await
    }

    /// The work of checking `password` for a user that does not exist: a
    /// dummy hash with the parameters of `like` (a real user's PHC string),
    /// so an unknown name costs what a known one does. Always false.
    pub async fn verify_nobody(self, like: Option<String>, password: String) -> bool {
        let dummy = Arc::clone(&self.dummy);
        self.run(move || {
            verify_phc(&dummy.like(like.as_deref()), &password);
            false
        })
        .await
    }

    /// Runs `work` on a pool worker once one is free, holding the place until it is done.
    async fn run(self, work: impl FnOnce() -> bool + Send + 'static) -> bool {
        let Ok(worker) = Arc::clone(&self.workers).acquire_owned().await else { return false };
        let place = self.place;
        tokio::task::spawn_blocking(move || {
            let _held = (place, worker);
            work()
        })
        .await
        .unwrap_or(false)
    }
}

fn verify_phc(phc: &str, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    crate::metrics::count_password_hash();
    PasswordHash::new(phc).is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// The dummy hash, made once per parameter set (users are checked at load
/// to hold argon2id hashes; an odd one out gets argon2's defaults).
#[derive(Default)]
struct DummyHash(Mutex<Option<Dummy>>);

/// A dummy hash and the costs (m, t, p) it was made with.
struct Dummy {
    costs: (u32, u32, u32),
    hash: String,
}

impl DummyHash {
    fn like(&self, like: Option<&str>) -> String {
        let params = like.and_then(params_of).unwrap_or_default();
        let costs = (params.m_cost(), params.t_cost(), params.p_cost());
        let mut cached = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match cached.as_ref() {
            Some(d) if d.costs == costs => d.hash.clone(),
            _ => {
                let hash = make_dummy(params);
                *cached = Some(Dummy { costs, hash: hash.clone() });
                hash
            }
        }
    }
}

/// The cost parameters of an argon2 PHC string.
fn params_of(phc: &str) -> Option<argon2::Params> {
    let hash = argon2::password_hash::PasswordHash::new(phc).ok()?;
    argon2::Params::try_from(&hash).ok()
}

fn make_dummy(params: argon2::Params) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(&[7u8; 16]).expect("16 bytes encode");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    argon.hash_password(b"not a password", &salt).map(|h| h.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$ew2XREgJJ/KSvmyjUGd9lg$0L4bmN+TdB6ufRDxKH+vUdnmjA0dGQP95mMedCgwR78";

    #[tokio::test]
    async fn verifies_and_refuses() {
        let pool = HashPool::new(1, 1);
        assert!(pool.admit().unwrap().verify(HASH.into(), "portcullis-demo".into()).await);
        assert!(!pool.admit().unwrap().verify(HASH.into(), "wrong".into()).await);
        assert!(!pool.admit().unwrap().verify("not a phc".into(), "x".into()).await);
    }

    #[tokio::test]
    async fn a_full_queue_turns_logins_away_until_a_place_frees() {
        let pool = HashPool::new(1, 2);
        let tickets: Vec<Ticket> = (0..3).map(|_| pool.admit().expect("within the bound")).collect();
        assert!(pool.admit().is_none(), "worker plus two waiting: the fourth is turned away");
        drop(tickets);
        assert!(pool.admit().is_some(), "places come back");
    }

    #[tokio::test]
    async fn a_place_is_held_until_the_hash_is_done() {
        let pool = HashPool::new(1, 0);
        let ticket = pool.admit().unwrap();
        let running = tokio::spawn(ticket.verify(HASH.into(), "wrong".into()));
        assert!(pool.admit().is_none(), "the one place is taken while hashing");
        assert!(!running.await.unwrap());
        assert!(pool.admit().is_some());
    }

    #[test]
    fn the_dummy_hash_has_the_users_parameters() {
        let dummy = DummyHash::default();
        let cheap = "$argon2id$v=19$m=8,t=1,p=1$ew2XREgJJ/KSvmyjUGd9lg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(dummy.like(Some(cheap)).starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(dummy.like(Some(HASH)).starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(dummy.like(None).starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "argon2's defaults");
    }

    #[tokio::test]
    async fn nobody_matches_and_costs_a_hash() {
        let pool = HashPool::new(1, 0);
        let before = crate::metrics::render();
        assert!(!pool.admit().unwrap().verify_nobody(Some(HASH.into()), "not a password".into()).await);
        assert!(!pool.admit().unwrap().verify_nobody(None, String::new()).await);
        assert_ne!(before, crate::metrics::render(), "the hashes were counted");
    }
}
