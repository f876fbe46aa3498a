//! The console's texts, English and Japanese side by side: one line per key,
//! so a key without both is a compile error.

use crate::challenge::pages::Lang;

macro_rules! console_texts {
    ($($name:ident => $en:literal, $ja:literal;)*) => {
        /// Every user-visible text of the admin console.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum T {
            $($name,)*
        }

        impl T {
            /// Every key, in declaration order.
            pub const ALL: &'static [T] = &[$(T::$name,)*];

            pub fn get(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((T::$name, Lang::En) => $en, (T::$name, Lang::Ja) => $ja,)*
                }
            }
        }
    };
}

console_texts! {
    Console => "Administration", "管理";
    SignedInAs => "Signed in as {user} ({role})", "{user} としてサインイン中（{role}）";
    BackToPortal => "My account", "マイアカウント";
    NavUsers => "Users", "ユーザー";
    NavLocked => "Locked users", "ロック中のユーザー";
    NavRevoke => "Token revocation", "トークンの失効";
    NavInvitations => "Invitations", "招待";
    NavCerts => "Device certificates", "端末証明書";
    NavPolicy => "Policy", "ポリシー";
    NavAudit => "Audit log", "監査ログ";

    ForbiddenTitle => "Administrators only", "管理者専用";
    ForbiddenText => "This page is for administrators. Your account has no administrator role.", "このページは管理者専用です。あなたのアカウントには管理者の役割がありません。";
    NeedSecondFactor => "The console needs a sign-in with your second factor. Sign out and sign in again.", "管理画面には二要素目まで済んだサインインが必要です。サインアウトしてからもう一度サインインしてください。";
    FormExpired => "This form has expired or was sent from another site. Nothing was changed: reload the page and try again.", "このフォームは期限切れか、別のサイトから送信されました。何も変更していません。ページを再読み込みしてやり直してください。";
    NotFound => "There is no such page in the console.", "管理画面にそのようなページはありません。";
    StoreDown => "The store did not answer; nothing was changed. Try again in a moment.", "ストアが応答しませんでした。何も変更していません。しばらくしてからもう一度お試しください。";

    UsersTitle => "Users", "ユーザー";
    SearchLabel => "Search by name or email", "名前またはメールアドレスで検索";
    SearchButton => "Search", "検索";
    ColUser => "User", "ユーザー";
    ColName => "Name", "氏名";
    ColRole => "Role", "役割";
    ColGroup => "Policy group", "ポリシーグループ";
    ColFactors => "Second factors", "二要素目";
    ColLocked => "Locked", "ロック";
    ColSince => "Since", "開始";
    ColUntil => "Until", "解除予定";
    ColReason => "Reason", "理由";
    ColWait => "May enroll again", "再登録できる日時";
    ColSelect => "Select", "選択";
    Yes => "Yes", "はい";
    No => "No", "いいえ";
    UntilUnlocked => "until unlocked", "解除されるまで";
    TotpEnrolled => "authenticator", "認証アプリ";
    TotpPending => "authenticator (not confirmed)", "認証アプリ（未確認）";
    RecoveryLeft => "{n} recovery codes", "リカバリーコード {n} 個";
    Approvers => "{n} approver devices", "承認端末 {n} 台";
    Certs => "{n} certificates", "証明書 {n} 枚";
    NoFactor => "none", "なし";
    CoolingDown => "cooling down until {time}", "{time} まで再登録待ち";
    Truncated => "More users match: narrow the search.", "さらに該当するユーザーがいます。検索を絞り込んでください。";
    NoUsers => "No users match.", "該当するユーザーはいません。";
    RoleUser => "user", "一般ユーザー";
    RoleAdmin => "admin", "管理者";
    RoleMaster => "master", "マスター";

    LockedTitle => "Locked users", "ロック中のユーザー";
    LockedIntro => "Check the users to unlock, confirm with your password, and unlock them together.", "ロックを解除するユーザーを選び、パスワードで確認してまとめて解除します。";
    NobodyLocked => "Nobody is locked.", "ロック中のユーザーはいません。";
    UnknownSlots => "{n} records of unknown user names are locked too (guesses at names that do not exist); they unlock by themselves.", "存在しないユーザー名への試行の記録 {n} 件もロック中です（自動で解除されます）。";
    YouAreLocked => "This is you: another administrator must unlock you.", "あなた自身です。ほかの管理者に解除を依頼してください。";
    NoOtherAdmin => "No other administrator exists: contact {contact}, or unlock with the admin token: portcullis admin unlock {user}", "ほかに管理者がいません。{contact} に連絡するか、管理トークンで解除してください: portcullis admin unlock {user}";
    OtherAdmins => "Administrators who can: {names}", "解除できる管理者: {names}";
    UnlockButton => "Unlock selected users", "選択したユーザーのロックを解除";
    ConfirmLabel => "Your password (to confirm)", "あなたのパスワード（確認用）";
    ConfirmHint => "Unlock, revocation and certificate changes ask for your password again.", "ロック解除・失効・証明書の変更には、もう一度パスワードが必要です。";

    RevokeTitle => "Token revocation", "トークンの失効";
    RevokeIntro => "Revoke the authenticator of users who lost their phone: they are signed out everywhere, their approver devices are removed, and they may enroll again after the cooldown shown.", "スマートフォンを紛失したユーザーの認証アプリを失効します。すべてのセッションがサインアウトされ、承認端末も削除されます。再登録は表示の日時以降にできます。";
    RevokeButton => "Revoke the selected users' authenticators", "選択したユーザーの認証アプリを失効";
    SignOutTitle => "Sign out everywhere", "すべてのセッションをサインアウト";
    SignOutIntro => "End every session of the selected users (their authenticators stay).", "選択したユーザーのすべてのセッションを終了します（認証アプリはそのままです）。";
    SignOutButton => "Sign the selected users out everywhere", "選択したユーザーをすべてサインアウト";
    NoTotpUsers => "No user has an authenticator to revoke.", "失効できる認証アプリを持つユーザーはいません。";

    ResultTitle => "Result", "結果";
    ResultIntro => "What happened, user by user:", "ユーザーごとの結果:";
    ColResult => "Result", "結果";
    ResUnlocked => "unlocked", "ロックを解除しました";
    ResNotLocked => "was not locked", "ロックされていませんでした";
    ResRevoked => "authenticator revoked; may enroll again after {time}", "認証アプリを失効しました。{time} 以降に再登録できます";
    ResSignedOut => "signed out everywhere", "すべてのセッションをサインアウトしました";
    ResDone => "done", "完了しました";
    ResYourself => "refused: nobody acts on their own account; ask another administrator", "拒否: 自分自身には操作できません。ほかの管理者に依頼してください";
    ResMasterOnly => "refused: only a master may do this to an administrator", "拒否: 管理者に対するこの操作はマスターのみが行えます";
    ResUnavailable => "not done: the store did not answer", "未実行: ストアが応答しませんでした";
    WrongConfirmation => "The confirmation password is wrong. Nothing was changed.", "確認用パスワードが違います。何も変更していません。";
    ConfirmMissing => "Enter your password to confirm. Nothing was changed.", "確認のためパスワードを入力してください。何も変更していません。";
    ConfirmLocked => "Too many wrong passwords: your account is now locked. Nothing was changed.", "パスワードの誤りが多すぎるため、あなたのアカウントはロックされました。何も変更していません。";
    NothingSelected => "Select at least one. Nothing was changed.", "1 つ以上選択してください。何も変更していません。";
    BackLink => "Back", "戻る";
    Refused => "Refused: {message}", "拒否されました: {message}";

    CertsTitle => "Device certificates", "端末証明書";
    CertsNotConfigured => "Device certificates are not configured (add [device_certificates] to the config).", "端末証明書は設定されていません（設定に [device_certificates] を追加してください）。";
    UsageTitle => "License usage", "ライセンスの使用状況";
    UsageContracted => "Contracted", "契約数";
    UsageActive => "Active (counts against the license)", "有効（ライセンスを消費）";
    UsageExpiring => "Set as expiring (no license consumed)", "期限切れ予定（ライセンスを消費しない）";
    UsageExpired => "Expired", "期限切れ";
    UsageRevoked => "Revoked", "失効";
    UsageAllowance => "Replacement allowance (set-expiring uses in 350 days)", "入れ替え枠（350 日間の期限切れ予定設定）";
    UsageAllowanceValue => "{used} used of {allowed}; {left} left", "{allowed} 回中 {used} 回使用、残り {left} 回";
    UsageCanIssue => "Can be issued now", "今すぐ発行できる数";
    ColSerial => "Serial", "シリアル";
    ColDevice => "Device", "端末";
    ColStatus => "Status", "状態";
    ColIssued => "Issued", "発行日時";
    ColStops => "Stops working", "使えなくなる日時";
    CertActionsHint => "Set as expiring: the certificate works for 90 more days and consumes no license meanwhile (for a replacement). Expire: it stops now. Revoke: it stops now and for good.", "期限切れ予定: 90 日後に使えなくなり、その間ライセンスを消費しません（入れ替え用）。期限切れ: 今すぐ使えなくなります。失効: 今すぐ、恒久的に使えなくなります。";
    CertAction => "Action", "操作";
    CertSetExpiring => "Set as expiring", "期限切れ予定にする";
    CertExpire => "Expire now", "今すぐ期限切れにする";
    CertRevoke => "Revoke", "失効する";
    CertApply => "Apply to the selected certificates", "選択した証明書に適用";
    NoCerts => "No certificates have been issued.", "発行済みの証明書はありません。";
    IssueTitle => "Issue a certificate", "証明書を発行";
    IssueUser => "User", "ユーザー";
    IssueDevice => "Device name", "端末名";
    IssueButton => "Issue and make a download link", "発行してダウンロードリンクを作成";
    IssuedTitle => "Certificate issued", "証明書を発行しました";
    IssuedText => "Certificate {serial} for {user} ({device}). Send the download link to the device; it works once.", "{user}（{device}）の証明書 {serial} を発行しました。ダウンロードリンクを端末に送ってください。リンクは 1 回だけ使えます。";
    IssuedLink => "Download link", "ダウンロードリンク";
    IssuedPassword => "Bundle password (tell the user; it is shown only now)", "バンドルのパスワード（ユーザーに伝えてください。表示は今回限りです）";
    IssueRefused => "Not issued: {message}", "発行できませんでした: {message}";
    StatusActive => "active", "有効";
    StatusExpiring => "expiring", "期限切れ予定";
    StatusExpired => "expired", "期限切れ";
    StatusRevoked => "revoked", "失効";

    // Policy and audit pages.
    PolicyTitle => "Policy", "ポリシー";
    PolicyIntro => "The configuration in use, read-only. To change it, edit the config file and reload.", "現在使われている設定です（閲覧のみ）。変更するには設定ファイルを編集し、再読み込みしてください。";
    NetworksTitle => "Networks", "ネットワーク";
    NoNetworks => "No networks are defined.", "ネットワークは定義されていません。";
    ColNetwork => "Network", "ネットワーク";
    ColPrefixes => "Addresses", "アドレス";
    GroupsTitle => "Policy groups", "ポリシーグループ";
    ColAllow => "Access allowed when (allow)", "アクセスを許可する条件（allow）";
    ColOtpSkip => "No one-time password when (otp_skip)", "ワンタイムパスワードを省略する条件（otp_skip）";
    ColEnrollWhen => "May enroll an authenticator when (enroll_when)", "認証アプリを登録できる条件（enroll_when）";
    ColSession => "Session lifetime / idle timeout", "セッションの有効期間 / 無操作タイムアウト";
    FactorPush => "push approval", "プッシュ承認";
    AppsTitle => "Apps", "アプリ";
    ColApp => "App", "アプリ";
    ColHosts => "Hosts", "ホスト";
    ColGroups => "Policy groups", "ポリシーグループ";
    ColBypass => "No sign-in needed when (bypass)", "サインイン不要の条件（bypass）";
    ColDeviceCert => "Device certificate", "端末証明書";
    DeviceCertOff => "not asked for", "要求しない";
    DeviceCertRequest => "asked for (optional)", "要求する（任意）";
    DeviceCertRequire => "required", "必須";
    PassTitle => "Entrance passes", "入館証";
    PassOff => "Entrance passes are not configured: none are issued and none count.", "入館証は設定されていません。発行されず、判定にも使われません。";
    PassIssueWhen => "Issued at sign-in when (issue_when)", "サインイン時に発行する条件（issue_when）";
    PassLifetime => "Lifetime", "有効期間";
    PassRenew => "Renewed on use", "使用時に延長";
    WhatIfTitle => "What would happen?", "どう判定されるか確認";
    WhatIfIntro => "Ask the policy in use what it would do with a request. Nothing is changed and nothing reaches the app.", "現在のポリシーがリクエストをどう扱うかを確認します。何も変更されず、アプリにも届きません。";
    WhatIfHost => "Host", "ホスト";
    WhatIfAddress => "Client address", "接続元アドレス";
    WhatIfUser => "Signed-in user (empty: no session)", "サインイン中のユーザー（空欄: セッションなし）";
    WhatIfSecondFactor => "The session has completed a second factor", "セッションは二要素目まで完了している";
    WhatIfPass => "The browser holds an entrance pass", "ブラウザーが入館証を持っている";
    WhatIfCert => "The device presents a device certificate", "端末が端末証明書を提示している";
    WhatIfButton => "Check", "確認";
    AnswerTitle => "Answer", "判定結果";
    AnsAction => "Action", "動作";
    AnsRule => "Deciding rule", "判定を決めたルール";
    AnsNetworks => "Networks matched", "該当するネットワーク";
    AnsNone => "none", "なし";
    AnsOtp => "One-time password required", "ワンタイムパスワードが必要";
    AnsNoSession => "no session: depends on the user", "セッションなし（ユーザーによる）";
    ActForward => "forward to the app", "アプリへ転送";
    ActDeny => "deny (403)", "拒否（403）";
    ActLogin => "ask to sign in", "サインインを求める";
    ActSecondFactor => "ask for the second factor", "二要素目を求める";
    DecideRefused => "Cannot answer: {message}", "判定できません: {message}";
    AuditTitle => "Audit log", "監査ログ";
    AuditIntro => "The audit file, newest lines first. Each filter matches a whole value (any case); leave it empty to match everything.", "監査ファイルの内容を新しい順に表示します。絞り込みは値全体との一致です（大文字・小文字は区別しません）。空欄はすべてに一致します。";
    AuditNotConfigured => "There is no audit file: set [log] audit_file in the config and reload.", "監査ファイルがありません。設定ファイルで [log] audit_file を指定し、再読み込みしてください。";
    AuditUnreadable => "The audit file could not be read: {message}", "監査ファイルを読めませんでした: {message}";
    FilterActor => "Actor (who acted)", "実行者（操作した人）";
    FilterAction => "Action", "操作";
    FilterTarget => "Target (whom it was about)", "対象（操作された人・証明書）";
    FilterResult => "Result", "結果";
    FilterButton => "Filter", "絞り込む";
    ColTime => "Time", "日時";
    ColEvent => "Event", "イベント";
    ColActor => "Actor", "実行者";
    ColAction => "Action", "操作";
    ColTarget => "Target", "対象";
    ColFrom => "From", "接続元";
    NoAuditLines => "No lines match.", "該当する行はありません。";
    AuditTruncated => "The newest {n} matching lines are shown; narrow the filters to see older ones.", "該当する行のうち新しい {n} 行を表示しています。古い行を見るには条件を絞り込んでください。";
    AuditOlderUnread => "Only the newest part of the audit file was searched; older lines are in the file itself.", "監査ファイルの新しい部分だけを検索しました。それより古い行はファイルを直接確認してください。";

    InvTitle => "Invitations by email", "メールでの招待";
    InvIntro => "Send a user a single-use link by email. Tell them the activation PIN in person or by phone: they need the link, their password and the PIN to enroll, from anywhere.", "ユーザーに 1 回限りのリンクをメールで送ります。アクティベーション PIN は対面または電話で伝えてください。リンク・パスワード・PIN がそろえば、どこからでも登録できます。";
    InvMailOff => "Mail is not configured: add [mail] to the config to send invitations.", "メールが設定されていません。招待を送るには設定に [mail] を追加してください。";
    InvUser => "User", "ユーザー";
    InvEmail => "Email address (default: the users file's)", "メールアドレス（省略時はユーザーファイルのもの）";
    InvPin => "Activation PIN (4–8 digits)", "アクティベーション PIN（4〜8 桁）";
    InvPinAgain => "The PIN again", "PIN（確認）";
    InvKind => "Enroll", "登録するもの";
    InvKindTotp => "an authenticator app", "認証アプリ";
    InvKindApprover => "an approver device", "承認端末";
    InvLang => "Language of the mail", "メールの言語";
    InvSend => "Send the invitation", "招待を送信";
    InvNone => "No invitations.", "招待はありません。";
    ColEmail => "Email", "メールアドレス";
    ColState => "State", "状態";
    ColExpires => "Expires", "有効期限";
    ColMail => "Mail", "メール";
    ColBy => "Invited by", "招待者";
    InvStatePending => "pending", "未使用";
    InvStateUsed => "used", "使用済み";
    InvStateExpired => "expired", "期限切れ";
    InvStateVoided => "voided (3 wrong PINs)", "無効（PIN を 3 回誤り）";
    InvMailSent => "sent", "送信済み";
    InvMailNotSent => "mail not sent: {reason}", "メール未送信: {reason}";
    InvResend => "Resend", "再送";
    InvCancel => "Cancel", "取り消し";
    InvPinsDiffer => "The two PINs differ. Nothing was sent.", "2 つの PIN が一致しません。何も送信していません。";
    InvSent => "Invitation for {user} sent to {email}; it works until {time}. Tell {user} the PIN in person or by phone.", "{user} への招待を {email} に送信しました（{time} まで有効）。PIN は対面または電話で伝えてください。";
    InvNotSent => "The invitation for {user} is pending, but the mail was not sent: {reason}. Resend it from the list once mail works.", "{user} への招待は作成しましたが、メールを送信できませんでした: {reason}。メールが使えるようになったら一覧から再送してください。";
    InvResent => "A new link for {user} was sent to {email}.", "{user} の新しいリンクを {email} に送信しました。";
    InvCancelled => "The invitation for {user} was cancelled.", "{user} への招待を取り消しました。";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_has_both_languages_and_the_same_placeholders() {
        for &t in T::ALL {
            let (en, ja) = (t.get(Lang::En), t.get(Lang::Ja));
            assert!(!en.is_empty() && !ja.is_empty(), "{t:?}");
            let names = |s: &str| {
                let mut v: Vec<String> =
                    s.split('{').skip(1).filter_map(|p| p.split_once('}')).map(|(n, _)| n.into()).collect();
                v.sort();
                v.dedup();
                v
            };
            assert_eq!(names(en), names(ja), "{t:?}");
        }
    }
}
