//! `smo1-generate`: a realistic synthetic click history for demos and benchmarks.
//!
//! Users and links go into PostgreSQL; clicks go straight into ClickHouse `link_clicks` (not the
//! Buffer table) in large `JSONEachRow` batches, so the aggregate views fill as in production.
//! The shape: link popularity follows a Zipf law (a few links get most clicks), clicks follow a
//! day/night curve, and browsers, devices, countries, referrers and bots come in a plausible mix.
//! The same `--seed` and `--until` give the same rows.

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use smo1_core::click::ClickEvent;
use smo1_core::slug;
use smo1_origin::clickhouse::ClickHouse;
use sqlx::PgPool;
use uuid::Uuid;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Plan {
    pub users: usize,
    pub links: usize,
    pub clicks: u64,
    pub days: u32,
    pub seed: u64,
    /// The newest click is just before this instant.
    pub until: DateTime<Utc>,
    /// Rows per ClickHouse insert.
    pub batch: usize,
}

/// A generated link, as its clicks name it.
#[derive(Debug, Clone)]
pub struct GeneratedLink {
    pub id: Uuid,
    pub user_id: Uuid,
    pub uid: String,
    pub destination: String,
    pub utm_source: String,
    pub utm_campaign: String,
}

/// Weighted choice over a fixed table.
struct Weighted<T> {
    items: Vec<T>,
    cumulative: Vec<f64>,
}

impl<T> Weighted<T> {
    fn new(entries: impl IntoIterator<Item = (f64, T)>) -> Self {
        let mut total = 0.0;
        let (cumulative, items) = entries
            .into_iter()
            .map(|(weight, item)| {
                total += weight;
                (total, item)
            })
            .unzip();
        Self { items, cumulative }
    }

    fn pick(&self, rng: &mut StdRng) -> &T {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let x = rng.random::<f64>() * total;
        let i = self.cumulative.partition_point(|c| *c <= x);
        &self.items[i.min(self.items.len() - 1)]
    }
}

/// A visitor's software: device, browser, OS, and the bot verdict the edge would reach.
struct Agent {
    device: &'static str,
    browser: &'static str,
    version: &'static str,
    os: &'static str,
    os_version: &'static str,
    bot: &'static str,
    method: &'static str,
}

const fn agent(
    device: &'static str,
    browser: &'static str,
    version: &'static str,
    os: &'static str,
    os_version: &'static str,
) -> Agent {
    Agent {
        device,
        browser,
        version,
        os,
        os_version,
        bot: "",
        method: "GET",
    }
}

const fn bot(browser: &'static str, reason: &'static str, method: &'static str) -> Agent {
    Agent {
        device: "bot",
        browser,
        version: "",
        os: "",
        os_version: "",
        bot: reason,
        method,
    }
}

fn agents() -> Weighted<Agent> {
    Weighted::new([
        (
            30.0,
            agent("desktop", "Chrome", "131.0", "Windows 10", "NT 10.0"),
        ),
        (21.0, agent("mobile", "Chrome", "131.0", "Android", "14")),
        (17.0, agent("mobile", "Safari", "18.1", "iPhone", "18.1")),
        (
            7.0,
            agent("desktop", "Safari", "18.1", "Mac OSX", "10.15.7"),
        ),
        (
            5.0,
            agent("desktop", "Edge", "131.0", "Windows 10", "NT 10.0"),
        ),
        (
            4.0,
            agent("desktop", "Firefox", "133.0", "Windows 10", "NT 10.0"),
        ),
        (
            3.0,
            agent("mobile", "Samsung Internet", "26.0", "Android", "14"),
        ),
        (2.0, agent("tablet", "Safari", "18.1", "iPad", "18.1")),
        (1.0, agent("desktop", "Firefox", "133.0", "Linux", "")),
        (4.0, bot("Googlebot", "crawler", "GET")),
        (2.5, bot("facebookexternalhit", "link_preview", "GET")),
        (1.5, bot("Slackbot", "link_preview", "GET")),
        (1.0, bot("curl", "head_request", "HEAD")),
    ])
}

fn places() -> Weighted<(&'static str, &'static str, &'static str)> {
    Weighted::new([
        (12.0, ("US", "NY", "New York")),
        (8.0, ("US", "CA", "Los Angeles")),
        (6.0, ("US", "IL", "Chicago")),
        (5.0, ("US", "TX", "Austin")),
        (6.0, ("IN", "MH", "Mumbai")),
        (5.0, ("IN", "KA", "Bengaluru")),
        (6.0, ("DE", "BE", "Berlin")),
        (3.0, ("DE", "BY", "Munich")),
        (6.0, ("GB", "ENG", "London")),
        (2.0, ("GB", "ENG", "Manchester")),
        (5.0, ("BR", "SP", "São Paulo")),
        (5.0, ("FR", "IDF", "Paris")),
        (4.0, ("JP", "13", "Tokyo")),
        (4.0, ("CA", "ON", "Toronto")),
        (3.0, ("NL", "NH", "Amsterdam")),
        (3.0, ("ES", "MD", "Madrid")),
        (3.0, ("AU", "NSW", "Sydney")),
        (2.0, ("PL", "MZ", "Warsaw")),
        (2.0, ("MX", "CMX", "Mexico City")),
        (2.0, ("NG", "LA", "Lagos")),
        (1.0, ("SE", "AB", "Stockholm")),
        (2.0, ("", "", "")),
    ])
}

fn referrers() -> Weighted<(&'static str, &'static str)> {
    Weighted::new([
        (40.0, ("", "")),
        (15.0, ("https://www.google.com/", "google.com")),
        (10.0, ("https://t.co/x1", "t.co")),
        (8.0, ("https://www.facebook.com/", "facebook.com")),
        (5.0, ("https://www.linkedin.com/feed/", "linkedin.com")),
        (5.0, ("https://www.reddit.com/r/programming/", "reddit.com")),
        (4.0, ("https://www.instagram.com/", "instagram.com")),
        (
            3.0,
            (
                "https://news.ycombinator.com/item?id=1",
                "news.ycombinator.com",
            ),
        ),
        (3.0, ("https://www.youtube.com/", "youtube.com")),
        (2.0, ("https://www.bing.com/", "bing.com")),
    ])
}

/// Relative clicks per UTC hour: quiet at night, peaks mid-morning and in the evening.
fn diurnal() -> Weighted<u32> {
    Weighted::new((0..24u32).map(|hour| {
        let h = f64::from(hour);
        let morning = (-((h - 10.0) / 3.0).powi(2)).exp();
        let evening = (-((h - 20.0) / 2.5).powi(2)).exp();
        (0.15 + morning + 0.8 * evening, hour)
    }))
}

/// Creates the plan's users and links in PostgreSQL (one transaction).
pub async fn create_links(db: &PgPool, plan: &Plan) -> anyhow::Result<Vec<GeneratedLink>> {
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let user_ids: Vec<Uuid> = (0..plan.users).map(|_| random_uuid(&mut rng)).collect();
    let emails: Vec<String> = (0..plan.users)
        .map(|i| format!("generated-{}-{i}@smo1.invalid", plan.seed))
        .collect();
    let sources = ["", "", "newsletter", "twitter", "linkedin", "partner"];
    let links: Vec<GeneratedLink> = (0..plan.links)
        .map(|i| {
            let source = sources[rng.random_range(0..sources.len())];
            GeneratedLink {
                id: random_uuid(&mut rng),
                // Link i belongs to user i mod users: every account holds some popular links.
                user_id: user_ids[i % plan.users],
                uid: slug::uid_from_random(rng.random()),
                destination: format!("https://example.com/articles/{i}"),
                utm_source: source.to_owned(),
                utm_campaign: if source.is_empty() {
                    String::new()
                } else {
                    format!("campaign-{}", i % 7)
                },
            }
        })
        .collect();
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO users (id, email) SELECT * FROM UNNEST($1::uuid[], $2::text[])")
        .bind(&user_ids)
        .bind(&emails)
        .execute(&mut *tx)
        .await
        .map_err(|e| anyhow::anyhow!("creating users (seed {} used already?): {e}", plan.seed))?;
    for chunk in links.chunks(10_000) {
        let column = |f: fn(&GeneratedLink) -> String| chunk.iter().map(f).collect::<Vec<_>>();
        let nullable = |v: Vec<String>| {
            v.into_iter()
                .map(|s| (!s.is_empty()).then_some(s))
                .collect::<Vec<_>>()
        };
        sqlx::query(
            "INSERT INTO links (id, user_id, uid, destination, utm_source, utm_campaign)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[])",
        )
        .bind(chunk.iter().map(|l| l.id).collect::<Vec<_>>())
        .bind(chunk.iter().map(|l| l.user_id).collect::<Vec<_>>())
        .bind(column(|l| l.uid.clone()))
        .bind(column(|l| l.destination.clone()))
        .bind(nullable(column(|l| l.utm_source.clone())))
        .bind(nullable(column(|l| l.utm_campaign.clone())))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(links)
}

fn random_uuid(rng: &mut StdRng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

/// Produces the plan's clicks batch by batch.
pub struct ClickGenerator<'a> {
    rng: StdRng,
    links: &'a [GeneratedLink],
    popularity: Weighted<usize>,
    agents: Weighted<Agent>,
    places: Weighted<(&'static str, &'static str, &'static str)>,
    referrers: Weighted<(&'static str, &'static str)>,
    hours: Weighted<u32>,
    start: i64,
    end: i64,
    visitors: u64,
}

impl<'a> ClickGenerator<'a> {
    pub fn new(plan: &Plan, links: &'a [GeneratedLink]) -> Self {
        let end = plan.until.timestamp();
        Self {
            rng: StdRng::seed_from_u64(plan.seed ^ 0x5eed_c11c),
            links,
            // Zipf, s = 1.1: link 0 is the most popular.
            popularity: Weighted::new(
                (0..links.len()).map(|i| (1.0 / ((i + 1) as f64).powf(1.1), i)),
            ),
            agents: agents(),
            places: places(),
            referrers: referrers(),
            hours: diurnal(),
            start: end - i64::from(plan.days) * 86_400,
            end,
            // Visitors come back within a day: about two clicks per visitor per day (their ids
            // change every UTC day, as the edge's salt does).
            visitors: (plan.clicks / u64::from(plan.days.max(1)) / 2).max(1),
        }
    }

    /// The next `count` clicks as `JSONEachRow` lines.
    pub fn batch(&mut self, count: usize) -> Vec<u8> {
        let mut body = Vec::with_capacity(count * 420);
        for _ in 0..count {
            let event = self.click();
            serde_json::to_writer(&mut body, &event).expect("a click event always serializes");
            body.push(b'\n');
        }
        body
    }

    fn click(&mut self) -> ClickEvent {
        let rng = &mut self.rng;
        let link = &self.links[*self.popularity.pick(rng)];
        // A day, then an hour by the day/night curve; drawn again if outside [start, end).
        let first_midnight = self.start - self.start.rem_euclid(86_400);
        let days = (self.end - first_midnight + 86_399) / 86_400;
        let at = loop {
            let day = first_midnight + rng.random_range(0..days) * 86_400;
            let at = day + i64::from(*self.hours.pick(rng)) * 3_600 + rng.random_range(0..3_600);
            if (self.start..self.end).contains(&at) {
                break at;
            }
        };
        let agent = self.agents.pick(rng);
        let (country, region, city) = *self.places.pick(rng);
        let (referrer, referrer_domain) = *self.referrers.pick(rng);
        let visitor = rng.random_range(0..self.visitors);
        ClickEvent {
            click_id: random_uuid(rng).to_string(),
            clicked_at: u32::try_from(at).unwrap_or_default(),
            link_id: link.id.to_string(),
            user_id: link.user_id.to_string(),
            slug: link.uid.clone(),
            destination: link.destination.clone(),
            // As the edge computes it: salted per UTC day, so a returning visitor is one visitor
            // within a day and a new id on each later day.
            visitor_id: smo1_core::click::visitor_id(
                "generated",
                u32::try_from(at).unwrap_or_default(),
                &visitor.to_string(),
                agent.browser,
            ),
            country: country.into(),
            region: region.into(),
            city: city.into(),
            device_type: agent.device.into(),
            browser: agent.browser.into(),
            browser_version: agent.version.into(),
            os: agent.os.into(),
            os_version: agent.os_version.into(),
            referrer: referrer.into(),
            referrer_domain: referrer_domain.into(),
            utm_source: link.utm_source.clone(),
            utm_medium: if link.utm_source.is_empty() {
                String::new()
            } else {
                "social".into()
            },
            utm_campaign: link.utm_campaign.clone(),
            utm_term: String::new(),
            utm_content: String::new(),
            method: agent.method.into(),
            is_qr: u8::from(rng.random_ratio(1, 25)),
            is_bot: u8::from(!agent.bot.is_empty()),
            bot_reason: agent.bot.into(),
            // Generated links have no targeting rules.
            rule_id: String::new(),
        }
    }
}

/// Generates and inserts every click of the plan; `progress` sees the running total. One batch
/// is generated while the previous one is being inserted.
pub async fn insert_clicks(
    ch: &ClickHouse,
    plan: &Plan,
    links: &[GeneratedLink],
    mut progress: impl FnMut(u64),
) -> anyhow::Result<()> {
    let mut generator = ClickGenerator::new(plan, links);
    let mut done = 0u64;
    let mut pending: Option<(u64, tokio::task::JoinHandle<_>)> = None;
    while done < plan.clicks || pending.is_some() {
        let next = (done < plan.clicks).then(|| {
            let count = (plan.clicks - done).min(plan.batch as u64);
            done += count;
            (count, generator.batch(count as usize))
        });
        if let Some((count, insert)) = pending.take() {
            insert.await??;
            progress(count);
        }
        pending = next.map(|(count, body)| {
            let ch = ch.clone();
            let insert =
                tokio::spawn(async move { ch.insert_json_rows("link_clicks", &[], body).await });
            (count, insert)
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            users: 2,
            links: 50,
            clicks: 2_000,
            days: 30,
            seed: 7,
            until: DateTime::from_timestamp(1_764_000_000, 0).unwrap(),
            batch: 500,
        }
    }

    fn links() -> Vec<GeneratedLink> {
        (0..50)
            .map(|i| GeneratedLink {
                id: Uuid::from_u128(i),
                user_id: Uuid::from_u128(1000 + i % 2),
                uid: format!("u{i:06}"),
                destination: "https://example.com/".into(),
                utm_source: String::new(),
                utm_campaign: String::new(),
            })
            .collect()
    }

    fn events(plan: &Plan, links: &[GeneratedLink]) -> Vec<ClickEvent> {
        let body = ClickGenerator::new(plan, links).batch(plan.clicks as usize);
        body.split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice(line).unwrap())
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_clicks() {
        let links = links();
        assert_eq!(events(&plan(), &links), events(&plan(), &links));
        let other = Plan { seed: 8, ..plan() };
        assert_ne!(events(&plan(), &links), events(&other, &links));
    }

    #[test]
    fn clicks_are_skewed_in_range_and_mixed() {
        let plan = plan();
        let links = links();
        let clicks = events(&plan, &links);
        let first = plan.until.timestamp() - 30 * 86_400;
        assert!(clicks.iter().all(|c| {
            let at = i64::from(c.clicked_at);
            at >= first && at < plan.until.timestamp()
        }));
        let top = clicks
            .iter()
            .filter(|c| c.link_id == links[0].id.to_string())
            .count();
        let tail = clicks
            .iter()
            .filter(|c| c.link_id == links[49].id.to_string())
            .count();
        assert!(top > 10 * tail.max(1), "top {top}, tail {tail}");
        let bots = clicks.iter().filter(|c| c.is_bot == 1).count();
        assert!((100..400).contains(&bots), "{bots} bots");
        let night = clicks
            .iter()
            .filter(|c| (c.clicked_at / 3_600) % 24 == 3)
            .count();
        let morning = clicks
            .iter()
            .filter(|c| (c.clicked_at / 3_600) % 24 == 10)
            .count();
        assert!(morning > 3 * night, "morning {morning}, night {night}");
        assert!(clicks.iter().all(|c| c.validate().is_ok()));
    }
}
