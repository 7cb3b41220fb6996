//! `smo1-origin`: one binary, one subcommand per job.

use anyhow::Context;
use chrono::Utc;
use clap::{Parser, Subcommand};
use smo1_core::link::RedirectType;
use smo1_origin::analytics::rollup;
use smo1_origin::app::Background;
use smo1_origin::clickhouse::{self, ClickHouse};
use smo1_origin::clicks::{self, outbox};
use smo1_origin::config::{self, BridgeConfig, DataConfig, OriginConfig, SignInConfig};
use smo1_origin::error::AppError;
use smo1_origin::http::{self, bridge};
use smo1_origin::links::{repo, service};
use smo1_origin::state::AppState;
use smo1_origin::users::{self, SubscriptionTier};
use smo1_origin::{achievements, api_keys, db, sign_in};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(name = "smo1-origin", version, about = "SMO1 origin service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the origin API, internal endpoints and redirects.
    Serve(OriginConfig),
    /// Apply pending PostgreSQL and ClickHouse migrations and exit.
    Migrate(DataConfig),
    /// Recompute every user's XP and level from the xp_events trail and report any drift.
    RebuildXp(DataConfig),
    /// Drain the click outbox into ClickHouse now, with progress, and report what is left.
    ReplayClicks(DataConfig),
    /// Roll up every finished UTC day whose analytics rollup is missing or behind, now (the
    /// origin does it every ANALYTICS_ROLLUP_INTERVAL_SECS; this is for after a bulk load).
    Rollup(DataConfig),
    /// Serve the local Upstash REST bridge in front of Redis.
    Bridge(BridgeConfig),
    /// Exit 0 if the origin at ORIGIN_BIND answers `/healthz` within 3 s, else 1: a health check
    /// for container runtimes, with no curl in the image.
    Health {
        #[arg(long, env = "ORIGIN_BIND", default_value = config::DEFAULT_ORIGIN_BIND)]
        bind: std::net::SocketAddr,
    },
    /// Administration without the API (bootstrap of a self-hosted instance).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Create (or re-point) a demo link with a custom slug, for local use.
    Seed {
        #[command(flatten)]
        origin: OriginConfig,
        #[arg(long, default_value = "demo@smo1.local")]
        email: String,
        #[arg(long, default_value = "demo")]
        slug: String,
        #[arg(long, default_value = "https://example.com/")]
        destination: String,
        #[arg(long, default_value_t = 302)]
        redirect_type: u16,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user and print its first API key (all scopes). The key is shown only this once.
    CreateUser {
        #[command(flatten)]
        data: DataConfig,
        #[arg(long)]
        email: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long, value_enum, default_value = "free")]
        tier: SubscriptionTier,
    },
    /// Print a dashboard sign-in link for an existing user (valid once, for 15 minutes), e.g.
    /// when no SMTP server is configured.
    SignInLink {
        #[command(flatten)]
        data: DataConfig,
        #[command(flatten)]
        sign_in: SignInConfig,
        #[arg(long)]
        email: String,
    },
    /// Let an email sign up when REGISTRATION=invite.
    Invite {
        #[command(flatten)]
        data: DataConfig,
        #[arg(long)]
        email: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    smo1_origin::init_tracing();
    match Cli::parse().command {
        Command::Serve(config) => {
            let listener = TcpListener::bind(config.bind)
                .await
                .with_context(|| format!("binding ORIGIN_BIND {}", config.bind))?;
            tracing::info!(addr = %listener.local_addr()?, "origin listening");
            let state = AppState::new(config)?;
            let background = Background::start(&state);
            http::serve(listener, http::app(state), http::shutdown_signal()).await?;
            background.shutdown().await;
            tracing::info!("click queue flushed; bye");
        }
        Command::Migrate(config) => {
            let pool = db::pool(&config)?;
            db::migrate(&pool)
                .await
                .context("applying PostgreSQL migrations")?;
            let ch = ClickHouse::new(config.clickhouse);
            clickhouse::migrate::run(&ch)
                .await
                .context("applying ClickHouse migrations")?;
            tracing::info!("migrations applied");
        }
        Command::RebuildXp(config) => {
            let pool = db::pool(&config)?;
            let drift = achievements::drift(&pool).await?;
            for (user, stored, trail) in &drift {
                println!("user {user}: stored xp {stored}, xp_events say {trail}");
            }
            let changed = achievements::rebuild(&pool).await?;
            println!("{} users drifted; {changed} updated", drift.len());
        }
        Command::ReplayClicks(config) => {
            let pool = db::pool(&config)?;
            let ch = ClickHouse::new(config.clickhouse);
            let waiting = outbox::depth(&pool).await?;
            println!("{waiting} clicks waiting in the outbox");
            let replayed = clicks::replay_all(&pool, &ch, |done| {
                println!("replayed {done}/{waiting}");
            })
            .await;
            let (left, quarantined) = outbox::depths(&pool).await?;
            match replayed {
                Ok(total) => println!(
                    "done: {total} replayed, {left} left, {quarantined} quarantined (unreadable)"
                ),
                Err(e) => anyhow::bail!("stopped after an error, {left} left: {e}"),
            }
        }
        Command::Rollup(config) => {
            let ch = ClickHouse::new(config.clickhouse);
            let started = std::time::Instant::now();
            let rolled = rollup::roll_settled_days(&ch, Utc::now()).await?;
            println!(
                "rolled {rolled} days in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Command::Health { bind } => {
            let mut addr = bind;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            let response = reqwest::Client::new()
                .get(format!("http://{addr}/healthz"))
                .timeout(std::time::Duration::from_secs(3))
                .send()
                .await
                .with_context(|| format!("no answer from http://{addr}/healthz"))?;
            anyhow::ensure!(
                response.status().is_success(),
                "http://{addr}/healthz answered {}",
                response.status()
            );
        }
        Command::Bridge(config) => {
            let listener = TcpListener::bind(config.bind)
                .await
                .with_context(|| format!("binding BRIDGE_BIND {}", config.bind))?;
            let state =
                bridge::BridgeState::new(&config.redis_url, config.redis_timeouts, config.token)
                    .context("REDIS_URL")?;
            tracing::info!(addr = %listener.local_addr()?, "upstash bridge listening");
            http::serve(listener, bridge::router(state), http::shutdown_signal()).await?;
        }
        Command::Admin {
            command:
                AdminCommand::CreateUser {
                    data,
                    email,
                    display_name,
                    tier,
                },
        } => {
            let pool = db::pool(&data)?;
            let created =
                api_keys::bootstrap_user(&pool, &email, display_name.as_deref(), tier).await?;
            let Some((user, key)) = created else {
                anyhow::bail!("a user with email {email} already exists");
            };
            eprintln!(
                "created user {} ({}, {} tier); its API key, shown only now:",
                user.id,
                user.email,
                user.subscription_tier.as_str()
            );
            println!("{key}");
        }
        Command::Admin {
            command:
                AdminCommand::SignInLink {
                    data,
                    sign_in,
                    email,
                },
        } => {
            let pool = db::pool(&data)?;
            let link = match sign_in::operator_link(&pool, &sign_in.public_url, &email).await {
                Err(AppError::NotFound(_)) => {
                    anyhow::bail!("no user has email {email}; create one with `admin create-user`")
                }
                link => link?,
            };
            eprintln!(
                "sign-in link for {email}, valid once for {} minutes:",
                sign_in::TOKEN_TTL.num_minutes()
            );
            println!("{link}");
        }
        Command::Admin {
            command: AdminCommand::Invite { data, email },
        } => {
            let pool = db::pool(&data)?;
            if sign_in::invite(&pool, &email).await? {
                println!("invited {email}");
            } else {
                println!("{email} was already invited");
            }
        }
        Command::Seed {
            origin,
            email,
            slug,
            destination,
            redirect_type,
        } => {
            let redirect_type =
                RedirectType::try_from(redirect_type).map_err(anyhow::Error::msg)?;
            let state = AppState::new(origin)?;
            let user_id = users::repo::upsert_user(&state.db, &email).await?;
            match repo::find_by_slug(&state.db, None, &slug).await? {
                Some(existing) => {
                    let id = existing.link_id.parse()?;
                    service::update_destination(&state, id, &destination).await?;
                }
                None => {
                    let input = service::CreateLink {
                        custom_slug: Some(slug.clone()),
                        destination: destination.clone(),
                        redirect_type,
                        ..Default::default()
                    };
                    service::create(&state, user_id, input).await?;
                }
            }
            println!("link /{slug} -> {destination}");
        }
    }
    Ok(())
}
