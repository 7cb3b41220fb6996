//! The DNS side of domain verification: the TXT lookup of `_smo1-challenge.<hostname>`
//! (hickory-resolver), against the system's resolvers or the one `DNS_RESOLVER` names, bounded by
//! `DNS_TIMEOUT_MS`, and what its answer says ([`Check`]).

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use smo1_core::domain::challenge_name;
use std::net::SocketAddr;
use std::time::Duration;

/// What a lookup of a domain's challenge record found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A TXT record there carries the token.
    Verified,
    /// The record is missing or wrong: this says something about the domain. The reason is
    /// shown to the domain's owner.
    Failed(String),
    /// No answer (resolver unreachable, timeout, server failure): this says nothing about the
    /// domain, so it never costs a verified domain its status.
    Inconclusive(String),
}

/// Looks challenge records up; one resolver, without a cache, so every check asks DNS.
#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
    timeout: Duration,
}

impl Dns {
    /// A resolver over `server` (UDP, then TCP), or the system's configuration when `None`.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> anyhow::Result<Self> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match server {
            Some(addr) => {
                let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                    .into_iter()
                    .map(|mut connection| {
                        connection.port = addr.port();
                        connection
                    })
                    .collect();
                let server = NameServerConfig::new(addr.ip(), true, connections);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    provider,
                )
            }
            None => TokioResolver::builder(provider)?,
        };
        let options = builder.options_mut();
        options.timeout = timeout;
        options.attempts = 1;
        options.cache_size = 0;
        Ok(Self {
            resolver: builder.build()?,
            timeout,
        })
    }

    /// Whether `_smo1-challenge.<hostname>` carries `token` in one of its TXT records.
    #[tracing::instrument(skip(self, token))]
    pub async fn check(&self, hostname: &str, token: &str) -> Check {
        // Fully qualified (trailing dot): no search domains are tried.
        let name = challenge_name(hostname);
        let fqdn = format!("{name}.");
        // The resolver's own timeout covers each attempt; this bounds the whole lookup.
        let lookup = tokio::time::timeout(self.timeout * 2, self.resolver.txt_lookup(fqdn)).await;
        match lookup {
            Err(_) => Check::Inconclusive(no_answer(&name, self.timeout)),
            Ok(Err(e)) => classify_error(&name, &e, self.timeout),
            Ok(Ok(found)) => {
                let values: Vec<String> = found
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::TXT(txt) => Some(
                            txt.txt_data
                                .iter()
                                .map(|part| String::from_utf8_lossy(part))
                                .collect::<String>(),
                        ),
                        _ => None,
                    })
                    .collect();
                if values.iter().any(|value| value.trim() == token) {
                    Check::Verified
                } else if values.is_empty() {
                    Check::Failed(format!("no TXT record at {name}"))
                } else {
                    Check::Failed(format!(
                        "the TXT record at {name} does not carry this domain's token (found {})",
                        quoted(&values)
                    ))
                }
            }
        }
    }
}

fn no_answer(name: &str, timeout: Duration) -> String {
    format!(
        "the DNS lookup of {name} got no answer within {} ms; it will be retried",
        timeout.as_millis()
    )
}

fn classify_error(name: &str, error: &NetError, timeout: Duration) -> Check {
    if error.is_nx_domain() {
        Check::Failed(format!("{name} does not exist (NXDOMAIN)"))
    } else if error.is_no_records_found() {
        Check::Failed(format!("no TXT record at {name}"))
    } else if matches!(error, NetError::Timeout) {
        Check::Inconclusive(no_answer(name, timeout))
    } else {
        Check::Inconclusive(format!(
            "the DNS lookup of {name} failed ({error}); it will be retried"
        ))
    }
}

/// At most three values, each cut to 64 characters, for a reason that stays readable.
fn quoted(values: &[String]) -> String {
    let shown: Vec<String> = values
        .iter()
        .take(3)
        .map(|v| format!("{:?}", v.chars().take(64).collect::<String>()))
        .collect();
    let more = values.len().saturating_sub(3);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}
