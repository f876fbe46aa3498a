//! The Japanese catalog (日本語).

use super::Text;

pub(super) fn text(t: Text) -> &'static str {
    match t {
        Text::LanguageName => "日本語",
        Text::LanguageSwitchLabel => "言語",
        Text::ContactPrefix => "お問い合わせ先:",
        Text::SigningInTo => "{app} へのログイン",
        Text::SigningInAs => "{app} に {user} としてログイン中",
        Text::SignedInTo => "{app} に {user} としてログイン済み",

        Text::LoginTitle => "ログイン",
        Text::InviteTitle => "サインインの設定",
        Text::InviteIntro => {
            "2 段階認証の設定に招待されています。パスワードと、管理者から伝えられたアクティベーション PIN（メールには書かれていません）を入力してください。"
        }
        Text::PinLabel => "アクティベーション PIN",
        Text::PinHint => "4〜8 桁の数字です。3 回間違えるとこの招待は使えなくなります。",
        Text::InviteButton => "次へ",
        Text::ErrWrongPin => "PIN が違います。あと {left} 回間違えるとこの招待は使えなくなります。",
        Text::InviteUsed => "この招待はすでに使われています。通常どおりログインするか、管理者に新しい招待を依頼してください。",
        Text::InviteExpired => "この招待は有効期限が切れています。管理者に再送を依頼してください。",
        Text::InviteVoided => "PIN を 3 回間違えたため、この招待は使えなくなりました。管理者に新しい招待を依頼してください。",
        Text::InviteUnknown => "この招待リンクは無効です（新しい招待で置き換えられた可能性があります）。最新のメールのリンクを使ってください。",
        Text::InviteAlreadyEnrolled => "認証アプリはすでに登録されています。通常どおりログインしてください。",
        Text::LoginIntro => "続行するには、ユーザー名とパスワードを入力してログインしてください。",
        Text::UsernameLabel => "ユーザー名",
        Text::PasswordLabel => "パスワード",
        Text::SignInButton => "ログイン",

        Text::TotpTitle => "2段階認証",
        Text::TotpIntro => "認証アプリに表示されている6桁のワンタイムパスワードを入力してください。",
        Text::CodeLabel => "ワンタイムパスワード（6桁）",
        Text::VerifyButton => "確認",
        Text::ClockHint => {
            "コードが受け付けられない場合は、認証アプリをお使いの端末で日付と時刻が\
             自動設定になっているかご確認ください。"
        }
        Text::UseRecoveryCodeLink => "認証アプリを使用できない場合は、リカバリーコードを使用",
        Text::RecoveryTitle => "リカバリーコードの使用",
        Text::RecoveryIntro => {
            "2段階認証の設定時に保管したリカバリーコードを1つ入力してください。\
             各コードは1回のみ使用できます。"
        }
        Text::RecoveryCodeLabel => "リカバリーコード",
        Text::UseAuthenticatorLink => "認証アプリのワンタイムパスワードを使用する",

        Text::EnrollTitle => "2段階認証の設定",
        Text::EnrollStep1 => "ステップ 1/3: 認証アプリにアカウントを追加",
        Text::EnrollScanQr => {
            "スマートフォンの認証アプリ（Google Authenticator など）でこのQRコードを読み取ってください。"
        }
        Text::QrCaption => "認証アプリにアカウントを追加するためのQRコード",
        Text::EnrollKeyIntro => {
            "パソコンの認証アプリ（WinAuth、OTP Manager など）をお使いの場合は、代わりに次のキーを入力してください:"
        }
        Text::EnrollKeyLabel => "キー",
        Text::EnrollKeyDetails => "種類: 時間ベース（TOTP）、6桁、{period}秒ごとに更新",
        Text::NextButton => "次へ",
        Text::EnrollStep2 => "ステップ 2/3: ワンタイムパスワードで確認",
        Text::EnrollConfirmIntro => {
            "認証アプリにこのアカウント用として表示されている6桁のワンタイムパスワードを入力してください。"
        }
        Text::RecoveryCodesTitle => "リカバリーコード",
        Text::RecoveryCodesIntro => {
            "認証アプリを使用できなくなった場合、以下の各コードで1回ずつログインできます。\
             書き留めるか印刷して、安全な場所に保管してください。"
        }
        Text::RecoveryCodesOnce => "このページを離れると、これらのコードは二度と表示されません。",
        Text::ContinueLink => "続行",
        Text::EnrollBackLink => "QRコードに戻る",
        Text::CopyCodesButton => "コードをコピー",
        Text::CodesCopied => "コピーしました。安全な場所に貼り付けて保管してください。",
        Text::CodesSelected => "コードを選択しました。Ctrl+C（Macでは⌘C）でコピーしてください。",
        Text::DownloadCodesLink => "テキストファイルでダウンロード",
        Text::BackToApp => "{app} に戻る",

        Text::DashboardTitle => "アカウント",
        Text::SignedInAs => "{name}（{username}）としてログインしています。",
        Text::SessionLevel => "このセッションの認証方法: {level}",
        Text::LevelBothFactors => "パスワードとワンタイムパスワード",
        Text::LevelFirstFactor => "パスワード（この場所ではワンタイムパスワード不要）",
        Text::SecondFactorsHeading => "2段階認証",
        Text::TotpEnrolled => "認証アプリ: 設定済み",
        Text::TotpNotEnrolled => "認証アプリ: 未設定",
        Text::RecoveryCodesLeft => "未使用のリカバリーコード: {count}個",
        Text::RegenerateButton => "リカバリーコードを再発行",
        Text::RegenerateNote => "再発行すると、現在のリカバリーコードは使用できなくなります。",
        Text::CertsHeading => "デバイス証明書",
        Text::CertsNone => "お客様に発行されたデバイス証明書はありません。",
        Text::CertActive => "有効: {date}まで使用できます",
        Text::CertExpiring => "置き換え中: {date}に使用できなくなります",
        Text::CertExpired => "期限切れ: {date}に使用できなくなりました",
        Text::CertRevoked => "失効: 使用できません",
        Text::CertDetails => "シリアル番号 {serial}、発行日時 {date}",
        Text::CertStopsSoon => {
            "端末「{device}」の証明書は{date}に使用できなくなります。\
             それまでに新しい端末の証明書を入手してください。"
        }
        Text::SignOutHeading => "ログアウト",
        Text::SignOutButton => "ログアウト",
        Text::SignOutEverywhereButton => "すべての端末からログアウト",
        Text::SignOutEverywhereNote => "紛失した端末や共用のパソコンでログインしたままの場合にご利用ください。",

        Text::LockedTitle => "アカウントがロックされています",
        Text::LockedBody => {
            "認証に規定回数以上失敗したため、アカウントがロックされました。\
             ロックの解除については管理者にお問い合わせください。"
        }
        Text::DeniedTitle => "アクセスが拒否されました",
        Text::DeniedBody => {
            "現在のネットワークまたは端末からは、このアプリケーションにアクセスできません。\
             お心当たりがない場合は、管理者にお問い合わせください。"
        }
        Text::AskAdminTitle => "2段階認証が設定されていません",
        Text::AskAdminBody => {
            "ログインするには、先に2段階認証の設定が必要です。\
             設定用のリンクについては管理者にお問い合わせください。"
        }
        Text::CooldownTitle => "しばらくお待ちください",
        Text::CooldownBody => {
            "お使いのアカウントから認証アプリの登録が解除されました。\
             {until}以降に、再度設定してログインできます。"
        }
        Text::UnavailableTitle => "ログインを一時的にご利用いただけません",
        Text::UnavailableBody => "現在、ログインを一時的にご利用いただけません。1分ほどしてから再度お試しください。",
        Text::TooManyTitle => "試行回数の上限を超えました",
        Text::TooManyBody => {
            "お使いのネットワークからのログイン試行が多すぎます。\
             数分待ってから、再度お試しください。"
        }
        Text::TryAgainLink => "再試行",
        Text::SignedOutTitle => "ログアウトしました",
        Text::SignedOutBody => "ログアウトしました。共用のパソコンをお使いの場合は、ブラウザを閉じてください。",
        Text::SignInAgainLink => "再度ログイン",
        Text::ErrorTitle => "エラーが発生しました",
        Text::StartOverLink => "最初からやり直す",

        Text::ErrBadCredentials => "ユーザー名またはパスワードが正しくありません。",
        Text::ErrMissingCredentials => "ユーザー名とパスワードを入力してください。",
        Text::ErrCodeFormat => "6桁の数字を入力してください。",
        Text::ErrWrongCode => {
            "ワンタイムパスワードが正しくありません。認証アプリに現在表示されているコードを入力してください。"
        }
        Text::ErrCodeUsed => {
            "このワンタイムパスワードはすでに使用されています。次のコードが表示されてから入力してください。"
        }
        Text::ErrWrongRecoveryCode => "リカバリーコードが正しくないか、すでに使用されています。",
        Text::ErrSessionExpired => "セッションの有効期限が切れました。最初からやり直してください。",
        Text::ErrBadForm => "フォームの有効期限が切れていました。もう一度お試しください。",
        Text::ErrLocked => "アカウントがロックされています。管理者にお問い合わせください。",
        Text::ErrTooMany => "試行回数が多すぎます。数分待ってから、再度お試しください。",
        Text::ErrUnavailable => "現在、ログインを一時的にご利用いただけません。1分ほどしてから再度お試しください。",
        Text::ErrNotFound => "お探しのページは見つかりません。",

        Text::OtpauthLink => "このスマートフォンで設定する場合は、認証アプリで開く",
        Text::PushTitle => "デバイスでログインを承認",
        Text::PushIntro => "承認デバイスにサインイン要求を送信しました。デバイスを開き、下の数字を選んで［承認］をタップしてください。",
        Text::PushNumberLabel => "デバイスで選ぶ数字",
        Text::PushWaiting => "承認を待っています…",
        Text::PushContinueButton => "承認しました：続行",
        Text::PushSendAgainButton => "もう一度送信",
        Text::PushUseTotpLink => "代わりに認証アプリのコードを使う",
        Text::PushUseRecoveryLink => "代わりにリカバリーコードを使う",
        Text::PushNoDevice => "このアカウントには承認デバイスが設定されていないため、要求を送信できませんでした。",
        Text::PushTooMany => "最近サインイン要求が多すぎました。{time}以降にもう一度送信できます。",
        Text::PushBlocked => "最近の要求がデバイスで拒否されたため、{time}まで要求は送信されません。心当たりがない場合は管理者に連絡してください。",
        Text::PushDenied => "サインインはデバイスで拒否されました。",
        Text::PushWrongNumber => "デバイスで選んだ数字が一致しませんでした。新しい要求を送信し、ここに表示される数字を選んでください。",
        Text::PushExpired => "要求は応答される前に期限切れになりました。もう一度送信するか、別の方法でサインインしてください。",
        Text::ApproversTitle => "承認デバイス",
        Text::ApproversIntro => "コードの代わりにワンタップでサインインを承認するスマートフォンやコンピューター。",
        Text::ApproversNone => "承認デバイスはまだありません。",
        Text::ApproverAddButton => "承認デバイスを追加",
        Text::ApproverLinkIntro => "追加するスマートフォンで10分以内にこのコードを読み取る（またはリンクを開く）と追加されます。一度だけ使えます。",
        Text::ApproverRemoveButton => "削除",
        Text::ApproversLink => "承認デバイス",
        Text::AdminConsoleLink => "管理画面",
        Text::PassesHeading => "信頼済みブラウザー（入館証）",
        Text::PassesIntro => "これらのブラウザーでは、組織が許可している場合にワンタイムパスワードを省略できます。使わなくなったものや心当たりのないものは取り消してください。",
        Text::PassesNone => "あなたの入館証を持つブラウザーはありません。",
        Text::PassDetails => "{date}に{address}から発行、最終使用 {seen}",
        Text::PassThisBrowser => "このブラウザー",
        Text::PassRevokeButton => "取り消す",
        Text::CertLoginIntro => "組織からデバイス証明書を配布された端末では、次の方法でもサインインできます。",
        Text::CertLoginButton => "デバイス証明書でログイン",
        Text::ErrCertAbsent => "ブラウザーからデバイス証明書が送信されませんでした。ブラウザーに尋ねられたら、この端末の証明書を選択してください（選択をキャンセルした場合は、ブラウザーを再起動してください）。パスワードでサインインすることもできます。",
        Text::ErrCertUnregistered => "このデバイス証明書はここに登録されていません。この端末用の証明書を管理者に依頼するか、パスワードでサインインしてください。",
        Text::ErrCertRevoked => "このデバイス証明書は失効しており、使用できません。パスワードでサインインし、新しい証明書を管理者に依頼してください。",
        Text::ErrCertExpired => "このデバイス証明書は有効期限が切れており、使用できません。パスワードでサインインし、新しい証明書を管理者に依頼してください。",
        Text::ErrCertUnknownUser => "このデバイス証明書は、このサービスのどのユーザーのものでもありません。管理者にお問い合わせください。",
        Text::ErrCertLoginOff => "ここでは証明書ログインが設定されていません。パスワードでサインインしてください。",
        Text::ErrCertListenerOnly => "このアドレスは証明書ログイン専用です。アプリケーションを開き、サインインページで「デバイス証明書でログイン」を選択してください。",
    }
}
