//! The login's push steps (see `crate::push`): after the first factor, a
//! user whose group allows `push` and who has an approver device is offered
//! it (`Step::NeedPush`), the TOTP form staying one click away; an approved
//! push finishes the login like a right code.

use super::{attempt_key, Attempt, LoginService, Stage, Step, StepResult};
use crate::config::{Config, SecondFactor, User};
use crate::store::UserRecord;

impl LoginService {
    /// Whether `user` may finish with a push: the group allows it and the
    /// user has an approver device.
    pub(super) async fn push_offered(&self, cfg: &Config, user: &User) -> StepResult<bool> {
        let group = &cfg.groups[user.policy_group];
        if !group.second_factors.contains(&SecondFactor::Push) {
            return Ok(false);
        }
        Ok(!crate::push::approver::list(self.store.as_ref(), &user.username).await?.is_empty())
    }

    /// The stage a login waiting on a push is recorded with: TOTP when the
    /// user has an authenticator (either may finish it), else push alone.
    pub(super) fn push_stage(rec: &UserRecord) -> Stage {
        if rec.totp.as_ref().is_some_and(|t| t.confirmed) {
            Stage::Totp
        } else {
            Stage::Push
        }
    }

    /// The login in progress for this browser that a push may finish.
    pub async fn push_attempt(&self, flow: &str) -> StepResult<Attempt> {
        match self.attempt(flow, Stage::Push).await {
            Err(Step::NoAttempt) => self.attempt(flow, Stage::Totp).await,
            other => other,
        }
    }

    /// A push approved for `approved_user` finishes the login (both
    /// factors) when it is that user's login and the group allows push.
    pub async fn push_approved(&self, cfg: &Config, flow: &str, approved_user: &str) -> Step {
        let result: StepResult<Step> = async {
            let attempt = self.push_attempt(flow).await?;
            if attempt.user != approved_user {
                return Err(Step::NoAttempt);
            }
            let (user, rec) = self.checked_user(cfg, &attempt).await?;
            if !cfg.groups[user.policy_group].second_factors.contains(&SecondFactor::Push) {
                return Err(Step::NoAttempt);
            }
            self.finish(cfg, user, &attempt, flow, &rec, crate::identity::session::Factors::PUSH).await
        }
        .await;
        result.unwrap_or_else(|s| s)
    }

    /// A wrong number or "this wasn't me" counts as a failed login.
    pub async fn count_push_failure(&self, cfg: &Config, user: &str) {
        let lock = self.lock(cfg, "push approval");
        if let Err(e) = self.store.record_failure(user, cfg.lockout.max_failures, lock).await {
            tracing::warn!("a failed push approval of `{user}` was not counted: {e}");
        }
    }

    /// A new attempt forgets the flow's push request.
    pub(super) async fn forget_push(&self, flow: &str) -> StepResult<()> {
        Ok(self.store.delete_challenge(&crate::push::request::flow_key(flow)).await?)
    }

    /// Drops the attempt (the push was denied: the login starts over).
    pub async fn drop_attempt(&self, flow: &str) {
        let _ = self.store.delete_challenge(&attempt_key(flow)).await;
    }
}
