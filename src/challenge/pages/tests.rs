//! Rendering tests across every page and both languages.

use super::*;

const HOSTILE: &str = "<script>x</script>\"'&";
const HOSTILE_ESCAPED: &str = "&lt;script&gt;x&lt;/script&gt;&quot;&#39;&amp;";
const CSRF: &str = "tok\"<en>&1";
const CSRF_ESCAPED: &str = "tok&quot;&lt;en&gt;&amp;1";
const QR: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 21 21\"><path d=\"M0 0h7v7H0z\"/></svg>";

fn ctx(lang: Lang, contact: Option<&'static str>) -> PageCtx<'static> {
    PageCtx {
        lang,
        app: "Team <wiki>",
        app_href: "/",
        who: Who::Nobody,
        notice: None,
        csrf: CSRF,
        contact,
        switch_en_href: "/.portcullis/login?lang=en&rd=%2Fapp",
        switch_ja_href: "/.portcullis/login?lang=ja&rd=%2Fapp",
        rd: "/app/page?a=1&b=\"<x>\"",
        cert_login: true,
    }
}

/// Entrance passes whose every field is hostile, one of them this browser's.
fn hostile_passes() -> &'static [PassRow] {
    let row = |this_browser| PassRow {
        id: HOSTILE.into(),
        browser: HOSTILE.into(),
        issued: HOSTILE.into(),
        issued_from: HOSTILE.into(),
        last_seen: HOSTILE.into(),
        this_browser,
    };
    Box::leak(vec![row(true), row(false)].into_boxed_slice())
}

#[test]
fn the_dashboard_lists_passes_with_a_revoke_button_each() {
    let passes = [PassRow {
        id: "passAAAA".into(),
        browser: "Chrome on Windows".into(),
        issued: "2026-12-01 09:00 (+09:00)".into(),
        issued_from: "10.0.0.7".into(),
        last_seen: "2026-12-06 10:00 (+09:00)".into(),
        this_browser: true,
    }];
    let page = Page::Dashboard {
        display_name: "Aiko",
        username: "aiko",
        has_totp: true,
        recovery_left: 3,
        session_level: "password+totp",
        certs: None,
        passes: Some(&passes),
        administers: true,
    };
    let en = render(&page, &ctx(Lang::En, None));
    assert!(en.contains("<strong>Chrome on Windows</strong> (this browser)"), "{en}");
    assert!(en.contains("Issued 2026-12-01 09:00 (+09:00) from 10.0.0.7; last used 2026-12-06 10:00 (+09:00)"));
    assert!(en.contains("action=\"/.portcullis/passes/revoke?lang=en\""), "{en}");
    assert!(en.contains("<input type=\"hidden\" name=\"id\" value=\"passAAAA\">"));
    assert!(en.contains("<a href=\"/.portcullis/admin/?lang=en\">Administration console</a>"), "{en}");
}

/// Device certificates with hostile names and serials, one of them stopping soon.
fn hostile_certs() -> &'static [CertRow] {
    let row = |status, stops_soon| CertRow {
        device: HOSTILE.into(),
        serial: HOSTILE.into(),
        status,
        issued: HOSTILE.into(),
        until: HOSTILE.into(),
        stops_soon,
    };
    Box::leak(vec![row(CertStatus::Expiring, true), row(CertStatus::Revoked, false)].into_boxed_slice())
}

/// Every page, with hostile data in every field a caller fills from user input.
fn every_page(codes: &[String]) -> Vec<Page<'_>> {
    vec![
        Page::Login { username: HOSTILE, error: Some(Text::ErrBadCredentials) },
        Page::Totp { error: Some(Text::ErrWrongCode), clock_hint: true },
        Page::Recovery { error: Some(Text::ErrWrongRecoveryCode) },
        Page::EnrollStart { qr_svg: QR, otpauth_uri: HOSTILE, key_string: "JBSWY3DPEHPK3PXP", period: 30 },
        Page::EnrollConfirm { error: None, clock_hint: false },
        Page::RecoveryCodes { codes, continue_href: "/app?x=<y>" },
        Page::Dashboard {
            display_name: HOSTILE,
            username: HOSTILE,
            has_totp: true,
            recovery_left: 7,
            session_level: HOSTILE,
            certs: Some(hostile_certs()),
            passes: Some(hostile_passes()),
            administers: false,
        },
        Page::Locked,
        Page::Denied,
        Page::AskAdmin,
        Page::Cooldown { until_text: HOSTILE },
        Page::Unavailable,
        Page::TooMany,
        Page::SignedOut,
        Page::Error { message: Text::ErrBadForm },
    ]
}

fn for_every_rendering(check: impl Fn(&Page<'_>, Lang, &str)) {
    let codes = vec!["abcd-efgh".to_string(), HOSTILE.to_string()];
    for page in every_page(&codes) {
        for lang in [Lang::En, Lang::Ja] {
            check(&page, lang, &render(&page, &ctx(lang, Some(HOSTILE))));
        }
    }
}

/// The values of `attr="..."` on every tag that starts with `tag`.
fn attrs<'a>(html: &'a str, tag: &str, attr: &str) -> Vec<&'a str> {
    let needle = format!("{attr}=\"");
    html.split(tag)
        .skip(1)
        .map(|rest| &rest[..rest.find('>').unwrap_or(rest.len())])
        .filter_map(|tag| tag.split_once(&needle).map(|(_, v)| &v[..v.find('"').unwrap()]))
        .collect()
}

#[test]
fn every_page_is_a_complete_document_in_its_language() {
    for_every_rendering(|page, lang, html| {
        assert!(html.starts_with("<!DOCTYPE html>\n"));
        assert!(html.contains(&format!("<html lang=\"{}\">", lang.code())));
        let title = text(lang, title(page));
        assert!(html.contains(&format!("<title>{title}</title>")), "{html}");
        assert!(html.contains(&format!("<h1>{title}</h1>")));
        assert!(html.contains("<meta name=\"viewport\""));
        assert!(html.trim_end().ends_with("</html>"));
    });
}

#[test]
fn no_script_no_external_resource_and_no_unescaped_user_data() {
    for_every_rendering(|_, _, html| {
        // The one script a page may have is the portal's own (the codes page's Copy button).
        let own = "<script src=\"/.portcullis/static/recovery-codes.js\" defer></script>";
        let html = html.replace(own, "");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<x>") && !html.contains("<y>"));
        for banned in ["<link", "<img", "<iframe", " src=", "@import", "url("] {
            assert!(!html.contains(banned), "{banned}");
        }
    });
}

#[test]
fn login_escapes_the_username() {
    let page = Page::Login { username: "<script>x</script>", error: None };
    let html = render(&page, &ctx(Lang::En, None));
    assert!(html.contains("value=\"&lt;script&gt;x&lt;/script&gt;\""));
    assert!(!html.contains("<script>"));
}

#[test]
fn user_data_appears_escaped_where_it_belongs() {
    let codes = vec![HOSTILE.to_string()];
    let pages = every_page(&codes);
    for index in [0, 5, 6, 10] {
        let html = render(&pages[index], &ctx(Lang::Ja, None));
        assert!(html.contains(HOSTILE_ESCAPED), "page {index}");
    }
}

#[test]
fn every_form_posts_with_the_escaped_csrf_token() {
    for_every_rendering(|_, _, html| {
        let forms: Vec<&str> = html.split("<form ").skip(1).collect();
        for form in &forms {
            let form = &form[..form.find("</form>").expect("closed form")];
            let posts_back = form.starts_with("method=\"post\">");
            let action = form.starts_with("method=\"post\" action=\"/.portcullis/");
            assert!(posts_back || action, "{form}");
            let csrf = format!("<input type=\"hidden\" name=\"csrf\" value=\"{CSRF_ESCAPED}\">");
            assert!(form.contains(&csrf), "{form}");
        }
        assert_eq!(forms.len(), html.matches("name=\"csrf\"").count());
    });
}

#[test]
fn every_visible_input_has_a_label() {
    for_every_rendering(|_, _, html| {
        for input in html.split("<input ").skip(1) {
            let input = &input[..input.find('>').unwrap()];
            if input.contains("type=\"hidden\"") {
                continue;
            }
            let id = attrs(&format!("<input {input}>"), "<input", "id")[0].to_string();
            assert!(html.contains(&format!("<label for=\"{id}\">")), "{input}");
        }
    });
}

#[test]
fn switch_links_are_present_and_escaped() {
    for_every_rendering(|_, lang, html| {
        let hrefs = attrs(html, "<a ", "href");
        assert!(hrefs.contains(&"/.portcullis/login?lang=en&amp;rd=%2Fapp"));
        assert!(hrefs.contains(&"/.portcullis/login?lang=ja&amp;rd=%2Fapp"));
        assert!(html.contains(">English</a>") && html.contains(">日本語</a>"));
        let current = format!("hreflang=\"{}\" aria-current=\"true\"", lang.code());
        assert!(html.contains(&current));
    });
}

#[test]
fn unsafe_switch_or_continue_hrefs_are_replaced() {
    let mut c = ctx(Lang::En, None);
    c.switch_ja_href = "javascript:alert(1)";
    let codes = vec![];
    let page = Page::RecoveryCodes { codes: &codes, continue_href: "//evil.example/" };
    let html = render(&page, &c);
    assert!(!html.contains("javascript:") && !html.contains("evil.example"));
    assert!(html.contains("href=\"?lang=ja\""));
}

#[test]
fn contact_line_is_shown_on_stop_pages_when_given() {
    for page in [Page::Locked, Page::Denied, Page::AskAdmin, Page::Cooldown { until_text: "9:00" }] {
        for lang in [Lang::En, Lang::Ja] {
            let with = render(&page, &ctx(lang, Some("IT desk <ext. 123>")));
            let line = format!("{} IT desk &lt;ext. 123&gt;", text(lang, Text::ContactPrefix));
            assert!(with.contains(&line), "{with}");
            let without = render(&page, &ctx(lang, None));
            assert!(!without.contains("class=\"contact\""));
        }
    }
    let login = Page::Login { username: "", error: None };
    assert!(!render(&login, &ctx(Lang::En, Some("IT desk"))).contains("IT desk"));
}

#[test]
fn return_target_is_carried_escaped_in_forms_and_encoded_in_links() {
    let login = render(&Page::Login { username: "", error: None }, &ctx(Lang::En, None));
    let rd = "<input type=\"hidden\" name=\"rd\" value=\"/app/page?a=1&amp;b=&quot;&lt;x&gt;&quot;\">";
    assert!(login.contains(rd));
    assert!(login.contains("<form method=\"post\">"), "posts back to its own URL");
    let totp = render(&Page::Totp { error: None, clock_hint: false }, &ctx(Lang::Ja, None));
    assert!(totp.contains("href=\"/.portcullis/recovery?lang=ja&amp;rd=%2Fapp%2Fpage%3Fa%3D1%26b%3D%22%3Cx%3E%22\""));
    let mut no_rd = ctx(Lang::En, None);
    no_rd.rd = "";
    let login = render(&Page::Login { username: "", error: None }, &no_rd);
    assert!(!login.contains("name=\"rd\""));
}

#[test]
fn code_inputs_suit_phones_and_point_at_the_error() {
    let html = render(&Page::Totp { error: Some(Text::ErrCodeUsed), clock_hint: false }, &ctx(Lang::En, None));
    for attr in ["inputmode=\"numeric\"", "autocomplete=\"one-time-code\"", "pattern=\"[0-9]*\""] {
        assert!(html.contains(attr), "{attr}");
    }
    assert!(html.contains("aria-describedby=\"form-error\""));
    assert!(html.contains(text(Lang::En, Text::ErrCodeUsed)));
    assert!(html.contains("action=\"/.portcullis/otp?lang=en\""));
}

#[test]
fn clock_hint_only_when_asked() {
    for lang in [Lang::En, Lang::Ja] {
        let hint = text(lang, Text::ClockHint);
        for (page, shown) in [
            (Page::Totp { error: None, clock_hint: true }, true),
            (Page::Totp { error: None, clock_hint: false }, false),
            (Page::EnrollConfirm { error: None, clock_hint: true }, true),
            (Page::EnrollConfirm { error: None, clock_hint: false }, false),
        ] {
            assert_eq!(render(&page, &ctx(lang, None)).contains(hint), shown);
        }
    }
}

#[test]
fn enroll_start_embeds_the_qr_and_groups_the_key() {
    let page = Page::EnrollStart {
        qr_svg: QR,
        otpauth_uri: "otpauth://totp/x:alice?secret=JBSWY3DPEHPK3PXP",
        key_string: "JBSWY3DPEHPK3PXP",
        period: 60,
    };
    let html = render(&page, &ctx(Lang::Ja, None));
    assert!(html.contains(QR));
    assert!(html.contains("<code class=\"key\">JBSW Y3DP EHPK 3PXP</code>"));
    assert!(html.contains("60秒"));
    assert!(html.contains("<a class=\"button\" href=\"/.portcullis/enroll/confirm?lang=ja&amp;rd="));
    assert!(!html.contains("csrf"), "the Next link must not leak the token");
}

#[test]
fn dashboard_offers_regeneration_only_with_an_authenticator() {
    let dashboard = |has_totp| Page::Dashboard {
        display_name: "Aiko",
        username: "aiko",
        has_totp,
        recovery_left: 3,
        session_level: "password+totp",
        certs: None,
        passes: None,
        administers: false,
    };
    let with = render(&dashboard(true), &ctx(Lang::Ja, None));
    assert!(with.contains("action=\"/.portcullis/recovery/regenerate?lang=ja\""));
    assert!(with.contains("未使用のリカバリーコード: 3個"));
    assert!(with.contains("Aiko（aiko）"));
    assert_eq!(with.matches("action=\"/.portcullis/logout?lang=ja\"").count(), 2);
    assert!(with.contains("<input type=\"hidden\" name=\"everywhere\" value=\"1\">"));
    let without = render(&dashboard(false), &ctx(Lang::En, None));
    assert!(!without.contains("regenerate"));
    assert!(without.contains(text(Lang::En, Text::TotpNotEnrolled)));
}

#[test]
fn dashboard_lists_device_certificates_and_warns_of_one_that_stops_soon() {
    let row = |device: &str, status, until: &str, stops_soon| CertRow {
        device: device.into(),
        serial: format!("{device}-serial"),
        status,
        issued: "2026-12-01 09:00 (+09:00)".into(),
        until: until.into(),
        stops_soon,
    };
    let certs = [
        row("laptop", CertStatus::Expiring, "2027-03-01 09:00 (+09:00)", false),
        row("phone", CertStatus::Active, "2026-12-10 09:00 (+09:00)", true),
        row("old-pc", CertStatus::Revoked, "2026-12-02 09:00 (+09:00)", false),
    ];
    let dashboard = |certs| Page::Dashboard {
        display_name: "Aiko",
        username: "aiko",
        has_totp: false,
        recovery_left: 0,
        session_level: "password",
        certs,
        passes: None,
        administers: false,
    };
    let en = render(&dashboard(Some(&certs)), &ctx(Lang::En, None));
    assert!(en.contains("<h2>Device certificates</h2>"), "{en}");
    assert!(en.contains("<strong>laptop</strong>: Being replaced: stops working on 2027-03-01 09:00 (+09:00)"));
    assert!(en.contains("<strong>phone</strong>: Active: works until 2026-12-10 09:00 (+09:00)"));
    assert!(en.contains("<strong>old-pc</strong>: Revoked: no longer works"));
    assert!(en.contains("Serial laptop-serial, issued 2026-12-01 09:00 (+09:00)"));
    let banner = "The certificate of your device phone stops working on 2026-12-10 09:00 (+09:00): \
                  get your new device&#39;s certificate before then.";
    assert_eq!(en.matches("class=\"warning\"").count(), 1, "only the one that stops soon: {en}");
    assert!(en.contains(banner), "{en}");
    assert!(en.find(banner) < en.find("Signed in as"), "the banner comes first");
    let ja = render(&dashboard(Some(&certs)), &ctx(Lang::Ja, None));
    assert!(ja.contains("端末「phone」の証明書は2026-12-10 09:00 (+09:00)に使用できなくなります。"), "{ja}");
    assert!(ja.contains("<h2>デバイス証明書</h2>"));
    let none = render(&dashboard(Some(&[])), &ctx(Lang::En, None));
    assert!(none.contains(text(Lang::En, Text::CertsNone)) && !none.contains("class=\"warning\""));
    let unconfigured = render(&dashboard(None), &ctx(Lang::En, None));
    assert!(!unconfigured.contains("Device certificates"));
}

#[test]
fn statuses() {
    let codes = vec![];
    let expected = [200, 200, 200, 200, 200, 200, 200, 403, 403, 200, 200, 503, 429, 200, 400];
    let got: Vec<u16> = every_page(&codes).iter().map(status).collect();
    assert_eq!(got, expected);
    assert_eq!(status(&Page::Error { message: Text::ErrNotFound }), 404);
}
