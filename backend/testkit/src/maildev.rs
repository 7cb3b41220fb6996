//! maildev (the root `package.json`, `npm ci`): a real SMTP server with a REST inbox, started per
//! test on free ports and stopped when dropped.

use serde_json::Value;
use smo1_origin::config::{MailConfig, Secret};

pub struct MailDev {
    pub smtp: u16,
    pub web: u16,
    _child: tokio::process::Child,
}

impl MailDev {
    pub async fn start() -> Self {
        let bin = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../node_modules/.bin/maildev"
        );
        assert!(
            std::path::Path::new(bin).exists(),
            "{bin} is missing: run `npm ci` at the repository root"
        );
        let (smtp, web) = (crate::free_port(), crate::free_port());
        let child = tokio::process::Command::new(bin)
            .args(["--smtp", &smtp.to_string(), "--web", &web.to_string()])
            .args(["--ip", "127.0.0.1", "--web-ip", "127.0.0.1", "--silent"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start maildev");
        let maildev = Self {
            smtp,
            web,
            _child: child,
        };
        crate::eventually("maildev to listen", || async {
            maildev.try_inbox().await.is_some()
                && tokio::net::TcpStream::connect(("127.0.0.1", smtp))
                    .await
                    .is_ok()
        })
        .await;
        maildev
    }

    /// Mail settings that send to this maildev.
    pub fn config(&self) -> MailConfig {
        MailConfig {
            smtp_url: Secret::new(format!("smtp://127.0.0.1:{}", self.smtp)),
            mail_from: "SMO1 <sign-in@smo1.test>".parse().expect("mailbox"),
        }
    }

    /// The inbox's summaries; `None` while maildev does not answer.
    pub async fn try_inbox(&self) -> Option<Vec<Value>> {
        let response = reqwest::get(format!("http://127.0.0.1:{}/api/email", self.web))
            .await
            .ok()?;
        response.error_for_status().ok()?.json().await.ok()
    }

    /// Every message received, in full.
    pub async fn inbox(&self) -> Vec<Value> {
        let mut full = Vec::new();
        for summary in self.try_inbox().await.expect("maildev inbox") {
            let id = summary["id"].as_str().expect("email id");
            let email: Value =
                reqwest::get(format!("http://127.0.0.1:{}/api/email/{id}", self.web))
                    .await
                    .expect("maildev email")
                    .json()
                    .await
                    .expect("email JSON");
            full.push(email);
        }
        full
    }

    /// Every message received for `address`, in full.
    pub async fn inbox_of(&self, address: &str) -> Vec<Value> {
        self.inbox()
            .await
            .into_iter()
            .filter(|email| email["to"][0]["address"] == address)
            .collect()
    }

    /// The token of the sign-in link in the newest mail to `address`, waiting up to 15 s for it.
    pub async fn sign_in_token(&self, address: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            if let Some(token) = self.inbox_of(address).await.last().and_then(sign_in_token) {
                return token;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for a sign-in mail to {address}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// The token of the sign-in link in `email`'s text part.
fn sign_in_token(email: &Value) -> Option<String> {
    let text = email["text"].as_str()?;
    let prefix = "/dashboard/sign-in/confirm?token=";
    let start = text.find(prefix)? + prefix.len();
    Some(
        text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect(),
    )
}
