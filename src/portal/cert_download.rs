//! `/.portcullis/cert/download?token=…`: where a device fetches the bundle an
//! administrator issued with `cert issue --link`.
//!
//! GET shows a page with a Download button; only its POST uses the link. Mail
//! and chat link previews fetch a URL with GET before the person does, and
//! must not burn a single-use link. The POST carries the page's CSRF token
//! like every portal form.

use super::{form, Portal, Request};
use crate::devices::link;
use crate::proxy::respond::{escape, Reply};

impl Portal<'_> {
    pub(super) async fn cert_download(&self, req: &Request) -> Reply {
        let token = req.field("token").unwrap_or_default();
        let store = self.auth.store().as_ref();
        if req.method != "POST" {
            return match link::exists(store, token).await {
                Ok(true) => self.download_page(req, token),
                Ok(false) => gone(self.contact()),
                Err(_) => unavailable(self.contact()),
            };
        }
        match link::take(store, token).await {
            Ok(Some(payload)) => match payload.bundle() {
                Some(p12) => {
                    log::info!(target: "audit", "{}", serde_json::json!({"event": "cert_download", "user": payload.user, "serial": payload.serial, "client_ip": self.client_ip.to_string()}));
                    Reply {
                        status: 200,
                        content_type: "application/x-pkcs12",
                        body: p12.into(),
                        location: None,
                        extra: vec![
                            ("content-disposition", format!("attachment; filename=\"{}\"", payload.file_name())),
                            ("cache-control", "no-store".to_string()),
                        ],
                    }
                }
                None => unavailable(self.contact()),
            },
            Ok(None) => gone(self.contact()),
            Err(_) => unavailable(self.contact()),
        }
    }

    fn download_page(&self, req: &Request, token: &str) -> Reply {
        let csrf = form::csrf_token(&self.auth.keys.load(), &req.flow);
        let body = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>Your device certificate</title></head><body><main><h1>Your device certificate</h1>\
             <p>This link works once. Download the file on the device it is for, open it, and enter the \
             password your administrator gave you.</p>\
             <form method=\"post\" action=\"{path}\"><input type=\"hidden\" name=\"token\" value=\"{token}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\">Download certificate</button></form>\
             </main></body></html>\n",
            path = link::DOWNLOAD_PATH,
            token = escape(token),
            csrf = escape(&csrf),
        );
        Reply::page(200, body).with_header("cache-control", "no-store".to_string())
    }
}

fn gone(contact: Option<&str>) -> Reply {
    Reply::html(
        410,
        "This download link no longer works",
        "It has been used already or it has expired: each link works once. Ask your administrator for a new one.",
        contact,
    )
}

fn unavailable(contact: Option<&str>) -> Reply {
    Reply::html(
        503,
        "Temporarily unavailable",
        "The download could not be served just now. Try again in a minute.",
        contact,
    )
}
