// Copyright 2026 Cloudflare, Inc.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
// http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

//! HTTP/1 keep-alive connections served without a boxed future per request
//! (a portcullis patch, see `PATCHED.md`).
//!
//! `pingora_core`'s blanket `ServerApp` impl calls
//! `HttpServerApp::process_new_http` once per request. That method is an
//! `#[async_trait]` method, so every request allocates a box for the whole
//! request future (its own state plus every future it awaits inline: header
//! reads, the upstream exchange, the cache paths, ...) and moves the future,
//! several kilobytes, into it. [`InlineHttp1`] is the same application with
//! its own `ServerApp::process_new`: the HTTP/1 request loop awaits
//! [`HttpProxy::serve_http`] in place, so the request future lives inside
//! the connection's future, boxed once per connection. Everything else
//! (HTTP/2, h2c, custom protocols) goes through the blanket impl unchanged.

use super::*;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::ALPN;
use pingora_core::services::listening::Service;

/// An [`HttpProxy`] whose HTTP/1 connections are served by an in-place
/// request loop (see the module docs).
pub struct InlineHttp1<SV, C: custom::Connector = ()>(Arc<HttpProxy<SV, C>>);

impl<SV, C: custom::Connector> InlineHttp1<SV, C> {
    /// The proxy, with upstream affinity on (see `upstream_affinity`).
    pub fn new(mut proxy: HttpProxy<SV, C>) -> Self {
        proxy.upstream_affinity = true;
        InlineHttp1(Arc::new(proxy))
    }

    /// The proxy inside.
    pub fn proxy(&self) -> &Arc<HttpProxy<SV, C>> {
        &self.0
    }
}

#[async_trait]
impl<SV, C> ServerApp for InlineHttp1<SV, C>
where
    SV: ProxyHttp + Send + Sync + 'static,
    <SV as ProxyHttp>::CTX: Send + Sync,
    C: custom::Connector,
{
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let proxy = &self.0;
        let options = proxy.server_options();
        // The blanket impl's choice of protocol: h2c (cleartext only), a
        // forced custom protocol, or what ALPN selected.
        let h2c = stream.get_ssl_digest().is_none() && options.is_some_and(|o| o.h2c);
        let custom = options.is_some_and(|o| o.force_custom);
        let alpn_h1 = !matches!(
            stream.selected_alpn_proto(),
            Some(ALPN::H2) | Some(ALPN::Custom(_))
        );
        if h2c || custom || !alpn_h1 {
            return ServerApp::process_new(proxy, stream, shutdown).await;
        }

        let mut session = HttpSession::new_http1(stream);
        if *shutdown.borrow() {
            // no reuse once the service is shutting down
            session.set_keepalive(None);
        } else {
            session.set_keepalive(Some(60));
        }
        session.set_keepalive_reuses_remaining(options.and_then(|o| o.keepalive_request_limit));
        loop {
            let reused = proxy.serve_http(session, shutdown).await?;
            let (stream, persistent_settings) = reused.consume();
            session = HttpSession::new_http1(stream);
            if let Some(persistent_settings) = persistent_settings {
                persistent_settings.apply_to_session(&mut session);
            }
        }
    }

    async fn cleanup(&self) {
        self.0.http_cleanup().await;
    }
}

/// [`http_proxy_service_with_name`], served by [`InlineHttp1`].
pub fn http_proxy_service_inline_h1<SV>(
    conf: &Arc<ServerConf>,
    inner: SV,
    name: &str,
) -> Service<InlineHttp1<SV, ()>>
where
    SV: ProxyHttp,
{
    let mut proxy = HttpProxy::new(inner, conf.clone());
    proxy.handle_init_modules();
    Service::new(name.to_string(), InlineHttp1::new(proxy))
}
