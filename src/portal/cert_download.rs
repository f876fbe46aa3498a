//! `/.portcullis/cert/download?token=…`: where a device fetches the bundle an
//! administrator issued with `cert issue --link`.
//!
//! GET shows a page with a Download button; only its POST uses the link. Mail
//! and chat link previews fetch a URL with GET before the person does, and
//! must not burn a single-use link. The POST carries the page's CSRF token
//! like every portal form. The few texts are here in English and Japanese.

use super::{form, Portal, Request};
use crate::challenge::pages::Lang;
use crate::devices::link;
use crate::proxy::respond::{escape, Reply};

/// The page's texts in one language.
struct Texts {
    title: &'static str,
    intro: &'static str,
    button: &'static str,
    gone_title: &'static str,
    gone: &'static str,
    unavailable_title: &'static str,
    unavailable: &'static str,
}

const EN: Texts = Texts {
    title: "Your device certificate",
    intro: "This link works once. Download the file on the device it is for, open it, and enter the password your administrator gave you.",
    button: "Download certificate",
    gone_title: "This download link no longer works",
    gone: "It has been used already or it has expired: each link works once. Ask your administrator for a new one.",
    unavailable_title: "Temporarily unavailable",
    unavailable: "The download could not be served just now. Try again in a minute.",
};

const JA: Texts = Texts {
    title: "デバイス証明書",
    intro: "このリンクは一度だけ使えます。証明書を入れる端末でダウンロードしてファイルを開き、管理者から伝えられたパスワードを入力してください。",
    button: "証明書をダウンロード",
    gone_title: "このダウンロードリンクは使えません",
    gone: "すでに使われたか、有効期限が切れています（リンクは一度だけ使えます）。管理者に新しいリンクを依頼してください。",
    unavailable_title: "一時的に利用できません",
    unavailable: "ただいまダウンロードできません。1分ほどしてから、もう一度お試しください。",
};

fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::Ja => &JA,
        Lang::En => &EN,
    }
}

impl Portal<'_> {
    pub(super) async fn cert_download(&self, req: &Request) -> Reply {
        let token = req.field("token").unwrap_or_default();
        let store = self.auth.store().as_ref();
        // A POST answers with the file or, failing that, a redirect to the
        // GET, which says why (post/redirect/get: a refresh sends nothing).
        let post = req.method == "POST";
        let again = || Reply::redirect(303, super::prg::here(req, link::DOWNLOAD_PATH, &[("token", token)]));
        match link::usable(store, token, self.auth.clock.now()).await {
            Ok(Some(_)) if !post => return self.download_page(req, token),
            Ok(Some(_)) => {}
            _ if post => return again(),
            Ok(None) => return self.message(req, 410, |t| (t.gone_title, t.gone)),
            Err(_) => return self.message(req, 503, |t| (t.unavailable_title, t.unavailable)),
        }
        match link::take(store, token).await {
            Ok(Some(payload)) => match payload.bundle() {
                Some(p12) => {
                    crate::audit!("cert_download", user = %payload.user, serial = %payload.serial, client_ip = %self.client_ip);
                    Reply {
                        status: 200,
                        content_type: "application/x-pkcs12",
                        body: p12.into(),
                        location: None,
                        named: vec![],
                        extra: vec![
                            ("content-disposition", format!("attachment; filename=\"{}\"", payload.file_name())),
                            ("cache-control", "no-store".to_string()),
                        ],
                    }
                }
                None => again(),
            },
            Ok(None) | Err(_) => again(),
        }
    }

    fn download_page(&self, req: &Request, token: &str) -> Reply {
        let t = texts(req.lang);
        let csrf = form::csrf_token(&self.auth.keys.load(), &req.flow);
        let form = format!(
            "<p>{intro}</p><form method=\"post\" action=\"{path}\">\
             <input type=\"hidden\" name=\"token\" value=\"{token}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\">{button}</button></form>",
            intro = escape(t.intro),
            path = link::DOWNLOAD_PATH,
            token = escape(token),
            csrf = escape(&csrf),
            button = escape(t.button),
        );
        document(req.lang, 200, t.title, &form)
    }

    /// A page with a title and one paragraph (used, unavailable), with the contact line.
    fn message(&self, req: &Request, status: u16, pick: fn(&Texts) -> (&'static str, &'static str)) -> Reply {
        let (title, text) = pick(texts(req.lang));
        let contact = self.contact().map_or(String::new(), |c| format!("<p class=\"contact\">{}</p>", escape(c)));
        document(req.lang, status, title, &format!("<p>{}</p>{contact}", escape(text)))
    }
}

fn document(lang: Lang, status: u16, title: &str, body: &str) -> Reply {
    let html = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head><body><main><h1>{title}</h1>{body}</main></body></html>\n",
        lang = lang.code(),
        title = escape(title),
    );
    Reply::page(status, html).with_header("cache-control", "no-store".to_string())
}
