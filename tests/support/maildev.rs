//! A real SMTP server with an inbox readable over HTTP: maildev from the root `node_modules`
//! (`npm ci` installs it from `package.json`), on free loopback ports, killed on drop.

use super::{free_port, repo_root, TempDir};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

pub struct Maildev {
    pub smtp_port: u16,
    pub web_port: u16,
    _process: Child,
    /// Where maildev keeps the mail it received (otherwise a folder under /tmp shared by all).
    _mail: TempDir,
}

impl Maildev {
    pub async fn start() -> Self {
        let bin = repo_root().join("node_modules/.bin/maildev");
        assert!(
            bin.exists(),
            "{} is missing: run `npm ci` in the repository root (scripts/test does)",
            bin.display()
        );
        let mail = TempDir::new();
        let (smtp_port, web_port) = (free_port(), free_port());
        let mut process = Command::new(&bin)
            .args(["--smtp", &smtp_port.to_string()])
            .args(["--web", &web_port.to_string()])
            // maildev binds its web inbox to every interface unless told otherwise.
            .args(["--ip", "127.0.0.1", "--web-ip", "127.0.0.1"])
            .arg("--mail-directory")
            .arg(&mail.path)
            // It reads config files from its working directory upwards: none of ours.
            .current_dir(&mail.path)
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        wait_until_healthy(&mut process, &bin, web_port).await;
        Self {
            smtp_port,
            web_port,
            _process: process,
            _mail: mail,
        }
    }

    /// What the origin sends mail to (`SMTP_URL`).
    pub fn smtp_url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.smtp_port)
    }

    /// The web inbox, for people.
    pub fn web_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.web_port)
    }

    /// maildev's REST API (`GET {api_url}/email` lists the messages); maildev 3 serves it under
    /// `/api`, beside the inbox page.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.web_url())
    }
}

async fn wait_until_healthy(process: &mut Child, bin: &Path, web_port: u16) {
    let health = format!("http://127.0.0.1:{web_port}/api/healthz");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = process.try_wait() {
            panic!(
                "{} exited with {status} (run with TEST_LOG=1 to see why)",
                bin.display()
            );
        }
        if let Ok(response) = reqwest::get(&health).await {
            if response.status().is_success() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "maildev did not answer {health} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
