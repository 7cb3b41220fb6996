//! `smo1-origin`: one binary, one subcommand per job.

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use smo1_core::link::RedirectType;
use smo1_origin::analytics::{rollup, sync};
use smo1_origin::clickhouse::{self, ClickHouse};
use smo1_origin::clicks::{self, outbox};
use smo1_origin::config::{BridgeConfig, DataConfig, OriginConfig, SignInConfig};
use smo1_origin::error::AppError;
use smo1_origin::links::{repo, service};
use smo1_origin::state::AppState;
use smo1_origin::users::SubscriptionTier;
use smo1_origin::{achievements, api_keys, bridge, db, generate, server, sign_in};
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
    /// Load a synthetic click history for demos and benchmarks: users and links in PostgreSQL,
    /// clicks straight into ClickHouse. The same --seed and --until give the same rows.
    GenerateClicks {
        #[command(flatten)]
        data: DataConfig,
        #[arg(long, default_value_t = 1_000)]
        links: usize,
        #[arg(long, default_value_t = 1_000_000)]
        clicks: u64,
        /// Days of history before --until.
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
        /// Accounts the links are spread over (link i belongs to account i mod users).
        #[arg(long, default_value_t = 10)]
        users: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// End of the history (RFC 3339); default: the next whole UTC hour.
        #[arg(long)]
        until: Option<DateTime<Utc>>,
        /// Rows per ClickHouse insert.
        #[arg(long, default_value_t = 200_000)]
        batch: usize,
    },
    /// Serve the local Upstash REST bridge in front of Redis.
    Bridge(BridgeConfig),
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
            server::serve(
                listener,
                server::app(state.clone()),
                server::shutdown_signal(),
            )
            .await?;
            state.shutdown().await;
            tracing::info!("click queue flushed; bye");
        }
        Command::Migrate(config) => {
            let pool = db::pool(&config)?;
            db::migrate(&pool)
                .await
                .context("applying PostgreSQL migrations")?;
            let ch = ClickHouse::new(reqwest::Client::new(), config.clickhouse);
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
            let ch = ClickHouse::new(reqwest::Client::new(), config.clickhouse);
            let waiting = outbox::depth(&pool).await?;
            println!("{waiting} clicks waiting in the outbox");
            let replayed = clicks::replay_all(&pool, &ch, |done| {
                println!("replayed {done}/{waiting}");
            })
            .await;
            let left = outbox::depth(&pool).await?;
            match replayed {
                Ok(total) => println!("done: {total} replayed, {left} left"),
                Err(e) => anyhow::bail!("stopped after an error, {left} left: {e}"),
            }
        }
        Command::Rollup(config) => {
            let ch = ClickHouse::new(reqwest::Client::new(), config.clickhouse);
            let started = std::time::Instant::now();
            let rolled = rollup::roll_settled_days(&ch, Utc::now()).await?;
            println!(
                "rolled {rolled} days in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Command::GenerateClicks {
            data,
            links,
            clicks,
            days,
            users,
            seed,
            until,
            batch,
        } => {
            anyhow::ensure!(
                links >= 1 && (1..=links).contains(&users),
                "--links must be at least 1 and --users 1 to --links"
            );
            anyhow::ensure!(batch >= 1, "--batch must be at least 1");
            let until = until.unwrap_or_else(|| {
                let now = Utc::now().timestamp();
                DateTime::from_timestamp(now - now % 3_600 + 3_600, 0).unwrap_or_default()
            });
            let plan = generate::Plan {
                users,
                links,
                clicks,
                days,
                seed,
                until,
                batch,
            };
            let pool = db::pool(&data)?;
            let ch = ClickHouse::new(reqwest::Client::new(), data.clickhouse);
            let created = generate::create_links(&pool, &plan).await?;
            eprintln!("created {users} users and {links} links in PostgreSQL");
            let started = std::time::Instant::now();
            let mut done = 0u64;
            generate::insert_clicks(&ch, &plan, &created, |count| {
                done += count;
                let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001);
                eprint!(
                    "\rinserted {done}/{clicks} clicks ({:.0}%), {rate:.0}/s   ",
                    done as f64 * 100.0 / clicks.max(1) as f64
                );
            })
            .await?;
            eprintln!();
            let synced = sync::sync_total_clicks(&pool, &ch).await?;
            eprintln!(
                "done in {:.1} s; total_clicks synced for {synced} links",
                started.elapsed().as_secs_f64()
            );
            let popular = &created[0];
            println!(
                "most_popular_link={} its_user={}",
                popular.id, popular.user_id
            );
        }
        Command::Bridge(config) => {
            let listener = TcpListener::bind(config.bind)
                .await
                .with_context(|| format!("binding BRIDGE_BIND {}", config.bind))?;
            let state = bridge::BridgeState::connect(&config.redis_url, config.token)
                .await
                .context("connecting to Redis")?;
            tracing::info!(addr = %listener.local_addr()?, "upstash bridge listening");
            server::serve(listener, bridge::router(state), server::shutdown_signal()).await?;
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
            eprintln!("sign-in link for {email}, valid once for 15 minutes:");
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
            let user_id = repo::upsert_user(&state.db, &email).await?;
            match repo::find_by_slug(&state.db, &slug).await? {
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
