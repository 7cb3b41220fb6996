//! The dashboard in a real browser: the browser tests (`dashboard/tests/*.test.mjs`, Debian's
//! Chromium through playwright-core) run against the whole stack — the origin serving the built
//! dashboard, the worker in workerd, PostgreSQL, Redis, ClickHouse and a real SMTP server
//! (maildev) that receives the sign-in mail, and a DNS server (hickory-server) for custom domains.
//! Then the QR codes the browser downloaded are read back here with an independent decoder.
//!
//! Needs `dashboard/dist` (built by `npm run build` in `dashboard/`), `dashboard/node_modules`,
//! the root `node_modules` (maildev, workerd) and Chromium: `scripts/test` provides them all.

mod support;

use smo1_origin::users::SubscriptionTier;
use smo1_testkit::{DnsServer, MailDev};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use support::{repo_root, Stack, Wiring};

/// Stops a hung browser run with its output shown; below nextest's limit for this test
/// (.config/nextest.toml), which would lose it.
const NODE_TIMEOUT: Duration = Duration::from_secs(11 * 60);

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_works_in_a_browser_against_the_whole_stack() {
    let dist = repo_root().join("dashboard/dist");
    assert!(
        dist.join("index.html").is_file(),
        "{} has no index.html: build the dashboard first (scripts/test does; by hand: \
         cd dashboard && npm ci && npm run build)",
        dist.display()
    );
    assert!(
        repo_root()
            .join("dashboard/node_modules/playwright-core")
            .is_dir(),
        "dashboard/node_modules is missing: run `npm ci` in dashboard/ (scripts/test does)"
    );
    let maildev = MailDev::start().await;
    let mail_api = format!("http://127.0.0.1:{}/api", maildev.web);
    let dns = DnsServer::start().await;
    // The browser tests check each change at the edge at once: no per-isolate link reuse.
    let stack = Stack::start_configured(Wiring::without_link_cache(), |config| {
        config.dashboard_dir = dist.clone();
        // Mailed sign-in links lead where the browser is.
        config.sign_in.public_url = format!("http://{}", config.bind);
        config.sign_in.mail = maildev.config();
        config.domains.dns_resolver = Some(dns.addr);
    })
    .await;
    let _dns_owner = tokio::spawn(publish_live_domains(dns, stack.state.db.clone()));
    let origin_url = stack.origin.as_ref().expect("origin running").url();
    let email = format!("browser-{}@smo1.test", uuid::Uuid::new_v4().simple());
    smo1_origin::api_keys::bootstrap_user(&stack.state.db, &email, None, SubscriptionTier::Free)
        .await
        .expect("create the test user")
        .expect("a new user");
    let page = stack
        .http
        .get(format!("{origin_url}/dashboard/"))
        .send()
        .await
        .expect("origin answers");
    assert_eq!(page.status(), 200, "the origin serves {}", dist.display());
    // The app's first call. Without the session endpoints every browser test fails at sign-in,
    // one 30 s timeout per step (minutes in all): say so at once instead.
    let session = stack
        .http
        .get(format!("{origin_url}/v1/auth/session"))
        .send()
        .await
        .expect("origin answers");
    assert_eq!(
        session.status(),
        401,
        "GET /v1/auth/session without a cookie must be 401 (nobody signed in), as the dashboard \
         expects: the origin has no working session endpoint, so the browser tests cannot sign in"
    );
    let artifacts = repo_root().join("target/dashboard-artifacts");
    // Nothing from an earlier run may pass for this run's downloads.
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).expect("artifacts folder");

    let mut node = tokio::process::Command::new("node")
        .args(["--test", "dashboard/tests/"])
        .current_dir(repo_root())
        .env("SMO1_ORIGIN_URL", &origin_url)
        .env("SMO1_EDGE_URL", &stack.worker_url)
        .env("SMO1_MAIL_URL", &mail_api)
        .env("SMO1_TEST_EMAIL", &email)
        .env("SMO1_ARTIFACTS", &artifacts)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run node (Node.js >= 20 on PATH)");
    let stdout = tokio::spawn(read_all(node.stdout.take().expect("stdout")));
    let stderr = tokio::spawn(read_all(node.stderr.take().expect("stderr")));
    let status = match tokio::time::timeout(NODE_TIMEOUT, node.wait()).await {
        Ok(status) => status.expect("wait for node").to_string(),
        Err(_) => {
            let _ = node.kill().await;
            format!("still running after {NODE_TIMEOUT:?}, stopped")
        }
    };
    let report = format!(
        "node --test dashboard/tests/ against origin {origin_url}, edge {}, mail {mail_api} \
         (user {email}; screenshots in {}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        stack.worker_url,
        artifacts.display(),
        stdout.await.expect("stdout reader"),
        stderr.await.expect("stderr reader"),
    );
    if std::env::var_os("TEST_LOG").is_some() {
        println!("{report}");
    }
    assert_eq!(
        status, "exit status: 0",
        "the browser tests failed. {report}"
    );

    // The QR codes the browser downloaded encode the short URL marked as a QR scan.
    let expected = read(&artifacts.join("qr-expected-url.txt"));
    let expected = expected.trim();
    assert!(expected.ends_with("qr=1"), "expected URL {expected:?}");
    let png = std::fs::read(artifacts.join("qr.png")).expect("qr.png downloaded");
    assert_eq!(qr::decode_png(&png), expected, "qr.png");
    let svg = read(&artifacts.join("qr.svg"));
    assert_eq!(qr::decode_svg(&svg), expected, "qr.svg");
}

/// Plays the owner of every domain whose hostname starts with `live-`: creates the TXT record the
/// dashboard shows for it in the test's DNS server, as soon as the domain is added.
async fn publish_live_domains(dns: DnsServer, db: sqlx::PgPool) {
    let mut published = std::collections::HashSet::new();
    loop {
        let added: Vec<(String, String)> = sqlx::query_as(
            "SELECT hostname, verification_token FROM domains WHERE hostname LIKE 'live-%'",
        )
        .fetch_all(&db)
        .await
        .unwrap_or_default();
        for (hostname, token) in added {
            if published.insert(hostname.clone()) {
                dns.set_txt(&format!("_smo1-challenge.{hostname}"), &[token.as_str()])
                    .await;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The readers below read what the origin draws, in colour too (checked without a browser, so a
/// failure of the browser run is never a failure of the readers).
#[test]
fn the_qr_readers_read_what_the_origin_draws() {
    use smo1_origin::links::qr::{qr_url, render_png, render_svg, QrOptions, Rgb};
    let url = qr_url("http://127.0.0.1:8787/bt-reader");
    for options in [
        QrOptions::default(),
        QrOptions::new(333, "1d4ed8".parse().unwrap(), "fefce8".parse().unwrap(), 2).unwrap(),
        QrOptions::new(200, Rgb::BLACK, Rgb::WHITE, 4).unwrap(),
    ] {
        let png = render_png(&url, &options).expect("png");
        assert_eq!(qr::decode_png(&png), url, "PNG {options:?}");
        let svg = render_svg(&url, &options).expect("svg");
        assert_eq!(qr::decode_svg(&svg), url, "SVG {options:?}");
    }
}

async fn read_all(mut from: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut bytes = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut from, &mut bytes).await;
    String::from_utf8_lossy(&bytes).into_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{} missing ({e}): the browser tests leave it",
            path.display()
        )
    })
}

/// Reading QR codes back with `rqrr`, a decoder independent of the `qrcode` crate that drew them.
mod qr {
    /// The one QR code in a PNG of any colour type.
    pub fn decode_png(png: &[u8]) -> String {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().expect("PNG header");
        let mut pixels = vec![0; reader.output_buffer_size().expect("buffer size")];
        let frame = reader.next_frame(&mut pixels).expect("PNG data");
        assert_eq!(frame.bit_depth, png::BitDepth::Eight);
        let (width, height) = (frame.width as usize, frame.height as usize);
        let channels = frame.color_type.samples();
        decode(width, height, |x, y| {
            let at = (y * width + x) * channels;
            let rgb = &pixels[at..at + channels.min(3)];
            (rgb.iter().map(|&c| u32::from(c)).sum::<u32>() / rgb.len() as u32) as u8
        })
    }

    /// The one QR code in an SVG: parsed as XML, its dark modules (one `<path>` of axis-aligned
    /// rectangles, `M x y h w v h h -w z`) drawn onto a white canvas of the SVG's size.
    pub fn decode_svg(svg: &str) -> String {
        let doc = roxmltree::Document::parse(svg).expect("qr.svg is well-formed XML");
        let root = doc.root_element();
        assert!(
            root.has_tag_name(("http://www.w3.org/2000/svg", "svg")),
            "an <svg> root"
        );
        let side = |name| -> usize {
            root.attribute(name)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("<svg {name}> in pixels"))
        };
        let (width, height) = (side("width"), side("height"));
        let d = root
            .descendants()
            .find(|node| node.has_tag_name("path"))
            .and_then(|node| node.attribute("d"))
            .expect("a <path> of dark modules");
        let mut dark = vec![false; width * height];
        for (x0, y0, x1, y1) in rectangles(d) {
            for y in y0..y1.min(height) {
                for x in x0..x1.min(width) {
                    dark[y * width + x] = true;
                }
            }
        }
        decode(
            width,
            height,
            |x, y| if dark[y * width + x] { 0 } else { 255 },
        )
    }

    /// The rectangles `(x0, y0, x1, y1)` of a path made of closed axis-aligned subpaths.
    fn rectangles(d: &str) -> Vec<(usize, usize, usize, usize)> {
        let mut out = Vec::new();
        let mut numbers = Vec::new();
        let mut command = None;
        let (mut x, mut y, mut xs, mut ys) = (0i64, 0i64, Vec::new(), Vec::new());
        let mut flush = |command: Option<char>, numbers: &mut Vec<i64>| {
            match (command, numbers.as_slice()) {
                (Some('M'), [nx, ny]) => {
                    (x, y) = (*nx, *ny);
                    (xs, ys) = (vec![x], vec![y]);
                }
                (Some('h'), [dx]) => {
                    x += dx;
                    xs.push(x);
                }
                (Some('v'), [dy]) => {
                    y += dy;
                    ys.push(y);
                }
                (Some('z'), []) => {
                    let span = |v: &[i64]| {
                        let lo = *v.iter().min().expect("a point");
                        let hi = *v.iter().max().expect("a point");
                        (
                            usize::try_from(lo).expect("x, y >= 0"),
                            usize::try_from(hi).expect("x, y >= 0"),
                        )
                    };
                    let ((x0, x1), (y0, y1)) = (span(&xs), span(&ys));
                    out.push((x0, y0, x1, y1));
                }
                (None, []) => {}
                (c, n) => panic!("unexpected path segment {c:?} {n:?} in the QR code's SVG"),
            }
            numbers.clear();
        };
        for token in tokens(d) {
            match token {
                Token::Command(c) => {
                    flush(command, &mut numbers);
                    command = Some(c);
                }
                Token::Number(n) => numbers.push(n),
            }
        }
        flush(command, &mut numbers);
        out
    }

    enum Token {
        Command(char),
        Number(i64),
    }

    fn tokens(d: &str) -> Vec<Token> {
        let mut out = Vec::new();
        let mut number = String::new();
        let end_number = |number: &mut String, out: &mut Vec<Token>| {
            if !number.is_empty() {
                out.push(Token::Number(number.parse().unwrap_or_else(|_| {
                    panic!("{number:?}: the QR code's SVG uses whole pixels")
                })));
                number.clear();
            }
        };
        for c in d.chars() {
            match c {
                '0'..='9' => number.push(c),
                '-' => {
                    end_number(&mut number, &mut out);
                    number.push(c);
                }
                ' ' | ',' => end_number(&mut number, &mut out),
                c if c.is_ascii_alphabetic() => {
                    end_number(&mut number, &mut out);
                    out.push(Token::Command(c));
                }
                c => panic!("unexpected {c:?} in the QR code's SVG path"),
            }
        }
        end_number(&mut number, &mut out);
        out
    }

    fn decode(width: usize, height: usize, grey: impl FnMut(usize, usize) -> u8) -> String {
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, grey);
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in the image");
        grids[0].decode().expect("a readable QR code").1
    }
}
