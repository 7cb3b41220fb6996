//! Outgoing mail over SMTP (`lettre`): the sign-in link mail.
//!
//! `SMTP_URL` chooses the transport (`smtp://` plain, `?tls=required` STARTTLS, `smtps://` TLS
//! with the webpki roots); empty means no SMTP, and [`Mailer::from_config`] answers `None`.

use crate::config::MailConfig;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How long one SMTP conversation may take before the send fails.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid recipient {0:?}")]
    InvalidRecipient(String),
    #[error("building the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

/// Sends mail through the configured SMTP server; a handle, cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds the SMTP credentials.
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

impl Mailer {
    /// The mailer `config` describes; `None` when `SMTP_URL` is empty. Connects on first send.
    pub fn from_config(config: &MailConfig) -> Result<Option<Self>, MailError> {
        let url = config.smtp_url.expose();
        if url.is_empty() {
            return Ok(None);
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Some(Self {
            transport,
            from: config.mail_from.clone(),
        }))
    }

    /// Mails `link` (a sign-in confirmation URL, valid for `minutes`) to `to`.
    #[tracing::instrument(skip(self, link))]
    pub async fn send_sign_in(&self, to: &str, link: &str, minutes: i64) -> Result<(), MailError> {
        let to: Mailbox = to
            .parse()
            .map_err(|_| MailError::InvalidRecipient(to.to_owned()))?;
        let message = sign_in_message(self.from.clone(), to, link, minutes)?;
        self.transport.send(message).await?;
        Ok(())
    }
}

/// The sign-in mail: plain text and a simple HTML part with the same link.
pub fn sign_in_message(
    from: Mailbox,
    to: Mailbox,
    link: &str,
    minutes: i64,
) -> Result<Message, MailError> {
    Ok(Message::builder()
        .from(from)
        .to(to)
        .subject("Your SMO1 sign-in link")
        .multipart(MultiPart::alternative_plain_html(
            sign_in_text(link, minutes),
            sign_in_html(link, minutes),
        ))?)
}

fn sign_in_text(link: &str, minutes: i64) -> String {
    format!(
        "Sign in to SMO1 by opening this link:\n\n{link}\n\n\
         It works once, for {minutes} minutes. If you did not ask to sign in, ignore this \
         mail: nothing happens without the link.\n"
    )
}

fn sign_in_html(link: &str, minutes: i64) -> String {
    let href = html_escape(link);
    format!(
        "<!doctype html><html><body style=\"font-family: sans-serif; line-height: 1.5\">\
         <p>Sign in to SMO1:</p>\
         <p><a href=\"{href}\" style=\"display: inline-block; padding: 0.6em 1.2em; \
         background: #1d4ed8; color: #ffffff; text-decoration: none; border-radius: 6px\">\
         Sign in</a></p>\
         <p>Or paste this address into your browser:<br>{href}</p>\
         <p>It works once, for {minutes} minutes. If you did not ask to sign in, ignore \
         this mail: nothing happens without the link.</p></body></html>"
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mail_carries_the_link_in_both_parts() {
        let link = "https://links.example.com/dashboard/sign-in/confirm?token=abc_-123&x=1";
        assert!(sign_in_text(link, 15).contains(link));
        assert!(sign_in_text(link, 15).contains("15 minutes"));
        let html = sign_in_html(link, 15);
        let escaped = "confirm?token=abc_-123&amp;x=1";
        assert_eq!(html.matches(escaped).count(), 2, "{html}");
        let message = sign_in_message(
            "SMO1 <no-reply@example.com>".parse().unwrap(),
            "ann@example.com".parse().unwrap(),
            link,
            15,
        )
        .unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(raw.contains("Subject: Your SMO1 sign-in link"));
        assert!(raw.contains("text/plain") && raw.contains("text/html"));
    }

    #[test]
    fn no_smtp_url_means_no_mailer() {
        assert!(Mailer::from_config(&MailConfig::default())
            .unwrap()
            .is_none());
    }

    #[test]
    fn tls_transports_build_and_never_print_credentials() {
        for url in [
            "smtps://me:hunter2@mail.example.com:465",
            "smtp://me:hunter2@mail.example.com:587?tls=required",
        ] {
            let config = MailConfig {
                smtp_url: crate::config::Secret::new(url),
                ..MailConfig::default()
            };
            let mailer = Mailer::from_config(&config).unwrap().expect("a mailer");
            assert!(!format!("{mailer:?}").contains("hunter2"));
        }
    }
}
