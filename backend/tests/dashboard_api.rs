//! The dashboard's side of `/v1` over HTTP, against the real PostgreSQL, Redis and an SMTP server
//! (maildev): sign-in by emailed link, the session cookie standing in for an API key, the Origin
//! check (CSRF), QR codes, sign-out, and sign-in without Redis.

mod common;

use common::{closed_port, TestApp};
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE, COOKIE, ORIGIN, RETRY_AFTER, SET_COOKIE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use smo1_origin::config::OriginConfig;
use smo1_testkit::MailDev;

const ANN: &str = "ann@example.com";
const PUBLIC_URL: &str = "https://links.example.com";

/// The origin sending sign-in mail to `maildev`, with `PUBLIC_URL` set.
async fn app_with_mail(maildev: &MailDev, adjust: impl FnOnce(&mut OriginConfig)) -> TestApp {
    let mail = maildev.config();
    TestApp::start_with(|c| {
        c.sign_in.mail = mail;
        c.sign_in.public_url = PUBLIC_URL.into();
        adjust(c);
    })
    .await
}

/// A browser at the origin's own address: what the dashboard sends.
struct Browser<'a> {
    app: &'a TestApp,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self { app, cookie: None }
    }

    fn with_cookie(app: &'a TestApp, cookie: &str) -> Self {
        Self {
            app,
            cookie: Some(cookie.to_owned()),
        }
    }

    /// A request with the session cookie (if any) and this origin's `Origin` header, as a
    /// browser sends it with every state-changing request.
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let changes_state = method != Method::GET;
        let request = self.request_without_origin(method, path);
        if changes_state {
            request.header(ORIGIN, self.app.server.url())
        } else {
            request
        }
    }

    fn request_without_origin(&self, method: Method, path: &str) -> RequestBuilder {
        let mut request = self.app.http.request(method, self.app.url(path));
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, format!("theme=dark; smo1_session={cookie}"));
        }
        request
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        json_of(request.send().await.expect("request")).await
    }

    /// Asks for a sign-in link for `email`.
    async fn ask_for_link(&self, email: &str) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/v1/auth/sign-in",
            Some(json!({ "email": email })),
        )
        .await
    }

    /// Redeems `token`; answers the response (cookie in `Set-Cookie`).
    async fn redeem(&self, token: &str) -> Response {
        self.request(Method::POST, "/v1/auth/session")
            .json(&json!({ "token": token }))
            .send()
            .await
            .expect("request")
    }
}

async fn json_of(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, body)
}

fn set_cookie(response: &Response) -> String {
    response
        .headers()
        .get(SET_COOKIE)
        .expect("a Set-Cookie header")
        .to_str()
        .expect("ASCII")
        .to_owned()
}

/// The session id of a `Set-Cookie: smo1_session=…` header.
fn session_id(set_cookie: &str) -> String {
    set_cookie
        .strip_prefix("smo1_session=")
        .and_then(|rest| rest.split(';').next())
        .expect("smo1_session=<id>")
        .to_owned()
}

/// Signs `email` in through an operator link (no mail needed); answers the cookie value.
async fn signed_in(app: &TestApp, email: &str) -> String {
    let link = smo1_origin::sign_in::operator_link(&app.state.db, PUBLIC_URL, email)
        .await
        .expect("operator link");
    let token = link.rsplit_once("token=").expect("a token").1;
    let response = Browser::new(app).redeem(token).await;
    assert_eq!(response.status(), StatusCode::OK);
    session_id(&set_cookie(&response))
}

fn unauthorized() -> Value {
    json!({"error": {"code": "unauthorized", "message": "missing or invalid credentials"}})
}

/// Decodes a PNG to greyscale and reads its one QR code with an independent decoder (`rqrr`).
fn decode_qr(png: &[u8]) -> String {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("buffer size")];
    let frame = reader.next_frame(&mut pixels).expect("PNG data");
    let (width, height) = (frame.width as usize, frame.height as usize);
    let channels = frame.color_type.samples();
    let grey = |x: usize, y: usize| pixels[(y * width + x) * channels];
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, grey);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().expect("decodable QR code").1
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_signs_in_by_mail_and_the_cookie_works_like_a_key() {
    let maildev = MailDev::start().await;
    let app = app_with_mail(&maildev, |_| {}).await;
    let ann = smo1_origin::users::repo::upsert_user(&app.state.db, ANN)
        .await
        .unwrap();
    let anonymous = Browser::new(&app);

    // The link arrives by mail and starts a session.
    assert_eq!(
        anonymous.ask_for_link(ANN).await,
        (StatusCode::ACCEPTED, json!({"status": "sent"}))
    );
    let token = maildev.sign_in_token(ANN).await;
    let response = anonymous.redeem(&token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie_header = set_cookie(&response);
    let cookie = session_id(&cookie_header);
    assert_eq!(cookie.len(), 43);
    let attributes = cookie_header.split_once(';').unwrap().1;
    let (flags, max_age) = attributes.rsplit_once("; Max-Age=").unwrap();
    assert_eq!(flags, " Path=/; HttpOnly; Secure; SameSite=Lax");
    let max_age: i64 = max_age.parse().unwrap();
    assert!((2_591_990..=2_592_000).contains(&max_age), "{max_age}");
    let (_, session) = json_of(response).await;
    assert_eq!(session["user"]["id"], ann.to_string());
    assert_eq!(session["user"]["email"], ANN);
    assert_eq!(session["short_base_url"], "https://sho.rt");
    let expires_at: chrono::DateTime<chrono::Utc> =
        session["expires_at"].as_str().unwrap().parse().unwrap();
    let lifetime = expires_at - chrono::Utc::now();
    assert!(lifetime > chrono::TimeDelta::days(30) - chrono::TimeDelta::minutes(1));

    // A link signs in once.
    assert_eq!(
        json_of(anonymous.redeem(&token).await).await,
        (
            StatusCode::BAD_REQUEST,
            json!({"error": {"code": "sign_in_link_invalid", "message": "this sign-in link is invalid, expired or already used; request a new one"}})
        )
    );

    // The cookie authenticates /v1 like a key with every scope, rate limited per user by the
    // session budget, not the (free) tier's.
    let browser = Browser::with_cookie(&app, &cookie);
    let me = browser.request(Method::GET, "/v1/me").send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.headers()["x-ratelimit-limit"], "600");
    assert_eq!(json_of(me).await.1, session["user"]);
    assert_eq!(
        browser.call(Method::GET, "/v1/auth/session", None).await,
        (StatusCode::OK, session.clone())
    );

    // State changes with the cookie need this origin's Origin header (or PUBLIC_URL's).
    let (status, link) = browser
        .call(
            Method::POST,
            "/v1/links",
            Some(json!({"destination": "https://example.com/spring", "custom_slug": "spring-qr"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let no_origin = browser
        .request_without_origin(Method::POST, "/v1/links")
        .json(&json!({"destination": "https://example.com/no-origin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(no_origin).await,
        (
            StatusCode::FORBIDDEN,
            json!({"error": {"code": "forbidden_origin", "message": "a request signed in by the session cookie must carry an Origin header"}})
        )
    );
    // What a page elsewhere can send: a "simple" cross-site POST, refused before anything is read.
    let cross_site = app
        .http
        .post(app.url("/v1/links"))
        .header(ORIGIN, "http://127.0.0.2:4321")
        .header(CONTENT_TYPE, "text/plain")
        .body(r#"{"destination":"https://example.com/csrf"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(cross_site).await,
        (
            StatusCode::FORBIDDEN,
            json!({"error": {"code": "forbidden_origin", "message": "cross-site request refused: the Origin header names another site"}})
        )
    );
    let behind_proxy = browser
        .request_without_origin(Method::POST, "/v1/links")
        .header(ORIGIN, PUBLIC_URL)
        .json(&json!({"destination": "https://example.com/public-url"}))
        .send()
        .await
        .unwrap();
    assert_eq!(behind_proxy.status(), StatusCode::CREATED);

    // A session may create API keys; keys (sent without Origin, as servers do) are unaffected,
    // and a key is not a session.
    let (status, key) = browser
        .call(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "ci", "scopes": ["links:read", "links:write"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let secret = key["key"].as_str().expect("the key, shown once");
    let (status, _) = app
        .call(
            Method::POST,
            "/v1/links",
            secret,
            Some(json!({"destination": "https://example.com/by-key"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        app.call(Method::GET, "/v1/auth/session", secret, None)
            .await,
        (StatusCode::UNAUTHORIZED, unauthorized())
    );
    let (_, links) = browser.call(Method::GET, "/v1/links", None).await;
    let mut destinations: Vec<&str> = links["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["destination"].as_str().unwrap())
        .collect();
    destinations.sort_unstable();
    assert_eq!(
        destinations,
        [
            "https://example.com/by-key",
            "https://example.com/public-url",
            "https://example.com/spring"
        ],
        "the refused requests created nothing"
    );

    // QR codes of the link, authorised by the cookie as the dashboard's <img> is.
    let qr = |query: &str| {
        browser
            .request(
                Method::GET,
                &format!("/v1/links/{}/qr?{query}", link["id"].as_str().unwrap()),
            )
            .send()
    };
    let png = qr("format=png&size=300&fg=1d4ed8&bg=%23ffffff")
        .await
        .unwrap();
    assert_eq!(png.status(), StatusCode::OK);
    assert_eq!(png.headers()[CONTENT_TYPE], "image/png");
    assert_eq!(
        png.headers()[CONTENT_DISPOSITION],
        "inline; filename=\"spring-qr-qr.png\""
    );
    let png = png.bytes().await.unwrap();
    assert_eq!(decode_qr(&png), "https://sho.rt/spring-qr?qr=1");
    let svg = qr("").await.unwrap();
    assert_eq!(svg.headers()[CONTENT_TYPE], "image/svg+xml");
    assert_eq!(
        svg.headers()[CONTENT_DISPOSITION],
        "inline; filename=\"spring-qr-qr.svg\""
    );
    let svg = svg.text().await.unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert_eq!(doc.root_element().attribute("width"), Some("512"));
    for (query, message) in [
        ("size=63", "size must be 64 to 2048 pixels"),
        ("size=2049&format=png", "size must be 64 to 2048 pixels"),
        ("fg=red", "fg must be a colour as rrggbb hex, e.g. 1d4ed8"),
        ("bg=12345", "bg must be a colour as rrggbb hex, e.g. 1d4ed8"),
        (
            "fg=777777&bg=888888",
            "fg and bg: foreground and background need a contrast of at least 3:1 to scan",
        ),
    ] {
        let (status, body) = json_of(qr(query).await.unwrap()).await;
        assert_eq!(
            (status, body),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": {"code": "validation_failed", "message": message}})
            ),
            "{query}"
        );
    }
    let (status, body) = json_of(qr("format=gif").await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("format"),
        "{body}"
    );

    // Sign out: the cookie is cleared and its old value is worthless.
    let out = browser
        .request(Method::DELETE, "/v1/auth/session")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        set_cookie(&out),
        "smo1_session=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0"
    );
    for path in ["/v1/auth/session", "/v1/me"] {
        let stale = browser.request(Method::GET, path).send().await.unwrap();
        assert!(set_cookie(&stale).ends_with("Max-Age=0"), "{path}");
        assert_eq!(
            json_of(stale).await,
            (StatusCode::UNAUTHORIZED, unauthorized()),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_out_everywhere_ends_every_session_of_the_user() {
    let app = TestApp::start().await;
    for email in [ANN, "bob@example.com"] {
        smo1_origin::users::repo::upsert_user(&app.state.db, email)
            .await
            .unwrap();
    }
    let laptop = signed_in(&app, ANN).await;
    let phone = signed_in(&app, ANN).await;
    let bob = signed_in(&app, "bob@example.com").await;

    let out = Browser::with_cookie(&app, &laptop)
        .request(Method::DELETE, "/v1/auth/sessions")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert!(set_cookie(&out).ends_with("Max-Age=0"));
    for ended in [&laptop, &phone] {
        assert_eq!(
            Browser::with_cookie(&app, ended)
                .call(Method::GET, "/v1/auth/session", None)
                .await,
            (StatusCode::UNAUTHORIZED, unauthorized())
        );
    }
    let (status, body) = Browser::with_cookie(&app, &bob)
        .call(Method::GET, "/v1/auth/session", None)
        .await;
    assert_eq!(status, StatusCode::OK, "other users stay signed in");
    assert_eq!(body["user"]["email"], "bob@example.com");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_emails_get_the_same_answer_and_no_mail() {
    let maildev = MailDev::start().await;
    let app = app_with_mail(&maildev, |_| {}).await;
    smo1_origin::users::repo::upsert_user(&app.state.db, ANN)
        .await
        .unwrap();
    let browser = Browser::new(&app);
    let nobody = browser.ask_for_link("nobody@example.com").await;
    let ann = browser.ask_for_link(ANN).await;
    assert_eq!(nobody, ann);
    assert_eq!(nobody, (StatusCode::ACCEPTED, json!({"status": "sent"})));
    // Ann's mail was asked for second: once it is in, nobody's would be too.
    maildev.sign_in_token(ANN).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let recipients: Vec<Value> = maildev
        .inbox()
        .await
        .iter()
        .map(|mail| mail["to"][0]["address"].clone())
        .collect();
    assert_eq!(recipients, [json!(ANN)]);

    assert_eq!(
        browser.ask_for_link("not an email").await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": {"code": "validation_failed", "message": "email must be an email address"}})
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_requests_are_limited_per_email() {
    let app = TestApp::start_with(|c| c.sign_in.limit_per_email = 2).await;
    let browser = Browser::new(&app);
    for _ in 0..2 {
        assert_eq!(
            browser.ask_for_link("Ann@Example.com").await.0,
            StatusCode::ACCEPTED
        );
    }
    let over = browser
        .request(Method::POST, "/v1/auth/sign-in")
        .json(&json!({"email": "ann@example.com"}))
        .send()
        .await
        .unwrap();
    let retry: u64 = over.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // Two 15-minute buckets approximate the sliding window: at most two windows away.
    assert!((1..=1800).contains(&retry), "{retry}");
    assert_eq!(
        json_of(over).await,
        (
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": {"code": "rate_limited", "message": format!("rate limit exceeded; retry in {retry} s")}})
        )
    );
    assert_eq!(
        browser.ask_for_link("bob@example.com").await.0,
        StatusCode::ACCEPTED,
        "other emails from the same address go on"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_redis_sign_in_says_so_while_links_keep_redirecting() {
    let app =
        TestApp::start_with(|c| c.data.redis_url = format!("redis://127.0.0.1:{}", closed_port()))
            .await;
    let key = app.api_user(ANN).await;
    let unavailable = json!({"error": {"code": "sign_in_unavailable", "message": "sign-in is temporarily unavailable (short links keep working); please retry in a few minutes"}});

    assert_eq!(
        Browser::new(&app).ask_for_link(ANN).await,
        (StatusCode::SERVICE_UNAVAILABLE, unavailable.clone())
    );
    let cookie = smo1_origin::sign_in::token::generate().secret;
    assert_eq!(
        Browser::with_cookie(&app, &cookie)
            .call(Method::GET, "/v1/auth/session", None)
            .await,
        (StatusCode::SERVICE_UNAVAILABLE, unavailable)
    );
    // API keys live in PostgreSQL and keep working.
    let (status, me) = app.call(Method::GET, "/v1/me", &key.key, None).await;
    assert_eq!((status, &me["email"]), (StatusCode::OK, &json!(ANN)));

    // Creating a link needs the cache for invalidation; insert the row directly instead.
    sqlx::query(
        "INSERT INTO links (user_id, uid, custom_slug, destination) VALUES ($1, 'Xyz9876', 'still-up', 'https://example.com/up')",
    )
    .bind(key.id)
    .execute(&app.state.db)
    .await
    .unwrap();
    let response = app.get("/still-up").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()["location"], "https://example.com/up");
}
