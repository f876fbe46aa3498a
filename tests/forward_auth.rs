//! Forward-auth behind a real nginx (`auth_request`) on loopback: nginx
//! serves the app and asks portcullis about every request. A signed-in
//! browser reaches the app with the identity headers, an anonymous one is
//! sent to the portal, a client's own `X-Forwarded-Uri` changes nothing, and
//! a client that asks portcullis directly with made-up `X-Forwarded-*`
//! headers is refused.

mod common;

use common::api::client_with_jar;
use common::{free_port, wait_for_port, Env, Proc, PASSWORD};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::sync::Arc;

const APPS: &str = r#"
[networks]
internal = ["127.0.0.2/32"]

[policy_group.staff]
allow = "always"
otp_skip = "always"

[[app]]
name = "wiki"
hosts = ["wiki.localhost"]
upstream = "{upstream}"
policy_groups = ["staff"]
"#;

/// The README's nginx snippet, with loopback addresses and the test's files.
fn nginx_conf(dir: &std::path::Path, env: &Env, port: u16) -> String {
    let (cert, key) = (env.dir.path().join("certs/server.crt"), env.dir.path().join("certs/server.key"));
    let d = dir.display();
    format!(
        r#"daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    server_name wiki.localhost;
    ssl_certificate {cert};
    ssl_certificate_key {key};

    # The app: every request is asked about first.
    location / {{
      auth_request /_portcullis_auth;
      auth_request_set $portcullis_user $upstream_http_x_portcullis_user;
      auth_request_set $portcullis_jwt $upstream_http_x_portcullis_jwt;
      auth_request_set $portcullis_location $upstream_http_x_portcullis_location;
      auth_request_set $portcullis_cookie $upstream_http_set_cookie;
      add_header Set-Cookie $portcullis_cookie;
      error_page 401 = @portcullis_login;
      proxy_set_header X-Portcullis-User $portcullis_user;
      proxy_set_header X-Portcullis-Jwt $portcullis_jwt;
      proxy_pass http://{upstream};
    }}
    location = /_portcullis_auth {{
      internal;
      proxy_pass https://127.0.0.1:{pc}/.portcullis/auth/request;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Forwarded-Uri $request_uri;
      proxy_set_header X-Forwarded-Method $request_method;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-For $remote_addr;
    }}
    location @portcullis_login {{
      return 302 $portcullis_location;
    }}
    # The portal itself (login pages and API) is portcullis's own.
    location /.portcullis/ {{
      proxy_pass https://127.0.0.1:{pc};
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
    }}
  }}
}}
"#,
        cert = cert.display(),
        key = key.display(),
        upstream = env.upstream,
        pc = env.https.port(),
    )
}

fn start_nginx(env: &Env) -> (Proc, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, nginx_conf(dir.path(), env, port)).unwrap();
    let child = common::tied(Command::new("nginx").arg("-c").arg(&conf).arg("-p").arg(dir.path()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run nginx ({e}): install it (scripts/deps.sh test does)"));
    wait_for_port(format!("127.0.0.1:{port}").parse().unwrap());
    (Proc(child), port, dir)
}

/// A browser talking to nginx (wiki.localhost resolves to it), from `from`.
fn browser_via(env: &Env, nginx: u16, from: &str) -> Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&env.ca).unwrap()).unwrap();
    Client::builder()
        .add_root_certificate(ca)
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .cookie_provider(Arc::new(reqwest::cookie::Jar::default()))
        .redirect(reqwest::redirect::Policy::none())
        .resolve("wiki.localhost", format!("127.0.0.1:{nginx}").parse().unwrap())
        .build()
        .unwrap()
}

fn header_seen(body: &Value, name: &str) -> Option<String> {
    body["headers"]
        .as_array()?
        .iter()
        .find(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .map(|h| h[1].as_str().unwrap_or("").to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_auth_request_lets_in_the_signed_in_and_sends_the_rest_to_the_portal() {
    let env = Env::new("trusted_proxies = [\"127.0.0.1/32\"]", APPS);
    let _p = env.start();
    let (_nginx, port, _dir) = start_nginx(&env);
    let url = |path: &str| format!("https://wiki.localhost:{port}{path}");

    // Anonymous: sent to the portal (through nginx), with the page to come back to.
    let anon = browser_via(&env, port, "127.0.0.3");
    let r = anon.get(url("/app/page?x=1")).header("x-forwarded-uri", "/.portcullis/login").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND, "{:?}", r.text().await);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&url("/.portcullis/login?rd=")), "{location}");
    assert!(location.contains("rd=/app/page%3Fx%3D1"), "the page to come back to: {location}");
    let page = anon.get(&location).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "the portal's login page through nginx");

    // Sign in through nginx; then the app is reached with the identity.
    let c = browser_via(&env, port, "127.0.0.3");
    let r = c
        .post(url("/.portcullis/api/login"))
        .header("origin", format!("https://wiki.localhost:{port}"))
        .header("sec-fetch-site", "same-origin")
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (status, v) = (r.status(), r.json::<Value>().await.unwrap_or_default());
    assert_eq!((status, v["next"].as_str()), (StatusCode::OK, Some("done")), "{v}");
    let r = c.get(url("/app/page")).header("x-portcullis-user", "mallory").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(header_seen(&body, "x-portcullis-user").as_deref(), Some("alice"), "{body}");
    let jwt = header_seen(&body, "x-portcullis-jwt").expect("the signed identity reached the app");
    assert_eq!(jwt.split('.').count(), 3, "{jwt}");

    // A client's own X-Forwarded-Uri cannot make a request look like another:
    // nginx sets its own, and portcullis believes only nginx.
    let r = anon
        .get(url("/app/secret"))
        .header("x-forwarded-uri", "/.portcullis/login")
        .header("x-forwarded-host", "unknown.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);

    // Asking portcullis directly, from an address that is no trusted proxy: refused.
    let direct = client_with_jar(&env, "127.0.0.3", Arc::default());
    let r = direct
        .get(env.url("wiki.localhost", "/.portcullis/auth/request"))
        .header("x-forwarded-host", "wiki.localhost")
        .header("x-forwarded-uri", "/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "untrusted_proxy");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_redirect_endpoint_answers_caddy_and_traefik_style() {
    // The proxy in front is trusted from 127.0.0.1; the test plays it.
    let env = Env::new("trusted_proxies = [\"127.0.0.1/32\"]", APPS);
    let _p = env.start();
    let proxy = client_with_jar(&env, "127.0.0.1", Arc::default());
    let ask = |path: &'static str, uri: &'static str| {
        proxy
            .get(env.url("wiki.localhost", path))
            .header("x-forwarded-host", "wiki.localhost")
            .header("x-forwarded-uri", uri)
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-for", "127.0.0.3")
            .header("sec-fetch-mode", "navigate")
            .send()
    };
    let r = ask("/.portcullis/auth/forward", "/docs/a/../b?q=1").await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("https://wiki.localhost/.portcullis/login?rd="), "{location}");
    assert!(location.contains("rd=/docs/b%3Fq%3D1"), "canonical path: {location}");
    let r = ask("/.portcullis/auth/request", "/docs").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = ask("/.portcullis/auth/request", "/%2e%2e%2fx%00").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "a URI the proxy would refuse is refused");
}
