//! Emails to users about their own account (`[notices]`, with `[mail]`): their
//! authenticator was revoked (and when they may enroll again), their account
//! was unlocked, a new approver device or entrance pass was added, one of their
//! certificates was set as expiring (and its date). In the user's language
//! (`lang` in the users file).
//!
//! A notice is sent in the background once its act is done: a mail that cannot
//! be sent never holds up or undoes the act; it is logged (`notice_not_sent`).

use crate::challenge::cooldown::LocalTime;
use crate::config::Config;

/// What happened to the user's account.
#[derive(Debug, Clone)]
pub enum Notice {
    TokenRevoked { ready_at: u64 },
    Unlocked,
    ApproverAdded { device: String },
    PassIssued { browser: String, address: String },
    CertExpiring { device: String, serial: String, until: u64 },
}

impl Notice {
    fn name(&self) -> &'static str {
        match self {
            Notice::TokenRevoked { .. } => "token_revoked",
            Notice::Unlocked => "unlocked",
            Notice::ApproverAdded { .. } => "approver_added",
            Notice::PassIssued { .. } => "entrance_pass",
            Notice::CertExpiring { .. } => "cert_expiring",
        }
    }

    fn wanted(&self, cfg: &Config) -> bool {
        let n = &cfg.notices;
        match self {
            Notice::TokenRevoked { .. } => n.token_revoked,
            Notice::Unlocked => n.unlocked,
            Notice::ApproverAdded { .. } => n.approver_added,
            Notice::PassIssued { .. } => n.entrance_pass,
            Notice::CertExpiring { .. } => n.cert_expiring,
        }
    }

    /// Subject and text in `lang` (`ja`, else English).
    fn text(&self, cfg: &Config, name: &str, lang: &str) -> (String, String) {
        let local = |t: u64| LocalTime(t, cfg.totp.utc_offset).to_string();
        let ja = lang == "ja";
        let (subject, line) = match (self, ja) {
            (Notice::TokenRevoked { ready_at }, false) => (
                "Your authenticator was revoked".to_string(),
                format!("An administrator revoked your authenticator app and signed you out everywhere. You may set up a new one from {}.", local(*ready_at)),
            ),
            (Notice::TokenRevoked { ready_at }, true) => (
                "認証アプリが失効しました".to_string(),
                format!("管理者があなたの認証アプリを失効し、すべてのセッションをサインアウトしました。{} 以降に新しく登録できます。", local(*ready_at)),
            ),
            (Notice::Unlocked, false) => (
                "Your account was unlocked".to_string(),
                "An administrator unlocked your account: you can sign in again.".to_string(),
            ),
            (Notice::Unlocked, true) => {
                ("アカウントのロックが解除されました".to_string(), "管理者があなたのアカウントのロックを解除しました。再びサインインできます。".to_string())
            }
            (Notice::ApproverAdded { device }, false) => (
                "A new approval device was added".to_string(),
                format!("The device \"{device}\" can now approve your sign-ins."),
            ),
            (Notice::ApproverAdded { device }, true) => {
                ("承認端末が追加されました".to_string(), format!("端末「{device}」でサインインを承認できるようになりました。"))
            }
            (Notice::PassIssued { browser, address }, false) => (
                "A new entrance pass was issued".to_string(),
                format!("A browser ({browser}, from {address}) received an entrance pass for your account."),
            ),
            (Notice::PassIssued { browser, address }, true) => (
                "入館証が発行されました".to_string(),
                format!("ブラウザー（{browser}、接続元 {address}）にあなたのアカウントの入館証が発行されました。"),
            ),
            (Notice::CertExpiring { device, serial, until }, false) => (
                "Your device certificate will stop working".to_string(),
                format!("The certificate of \"{device}\" (serial {serial}) was set as expiring: it stops working at {}.", local(*until)),
            ),
            (Notice::CertExpiring { device, serial, until }, true) => (
                "端末証明書の期限切れ予定".to_string(),
                format!("「{device}」の証明書（シリアル {serial}）が期限切れ予定に設定されました。{} に使えなくなります。", local(*until)),
            ),
        };
        let (hello, unexpected) = if ja {
            (format!("{name} 様"), "お心当たりがない場合は、すぐに管理者へご連絡ください。")
        } else {
            (format!("Hello {name},"), "If this was not expected, tell your administrator at once.")
        };
        let mut text = format!("{hello}\n\n{line}\n\n{unexpected}\n");
        if let Some(c) = cfg.portal.contact.as_deref() {
            text.push_str(&if ja { format!("お問い合わせ: {c}\n") } else { format!("Contact: {c}\n") });
        }
        (subject, text)
    }
}

/// Sends `notice` to `user` in the background, when mail is configured, the
/// notice is on, and the user has an email address.
pub fn notify(cfg: &Config, user: &str, notice: Notice) {
    let Some(u) = cfg.users.get(user) else { return };
    let (Some(_), Some(email)) = (cfg.mail.as_ref(), u.email.clone()) else { return };
    if !notice.wanted(cfg) {
        return;
    }
    let (subject, text) = notice.text(cfg, &u.display_name, u.lang.as_deref().unwrap_or("en"));
    let message = crate::mail::Message { to: email, to_name: Some(u.display_name.clone()), subject, text };
    let Some(mailer) = cfg.mail.as_ref().map(crate::mail::Mailer::new) else { return };
    let (user, kind) = (user.to_string(), notice.name());
    tokio::spawn(async move {
        match mailer.send(&message).await {
            Ok(()) => crate::audit!("notice_sent", user = %user, notice = kind),
            Err(e) => {
                tracing::warn!("notice `{kind}` to `{user}` not sent: {}", e.reason());
                crate::audit!("notice_not_sent", user = %user, notice = kind, reason = %e.reason());
            }
        }
    });
}

/// Sends one mail now and says why not (invitations, which must report it).
pub async fn deliver(
    cfg: &Config,
    to: &str,
    to_name: Option<String>,
    subject: String,
    text: String,
) -> Result<(), String> {
    let Some(settings) = cfg.mail.as_ref() else { return Err("mail is not configured ([mail])".into()) };
    let message = crate::mail::Message { to: to.to_string(), to_name, subject, text };
    crate::mail::Mailer::new(settings).send(&message).await.map_err(|e| e.reason())
}
