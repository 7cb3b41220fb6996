//! The breakdown dimensions: the names the API accepts and the `link_clicks` column each reads.
//! A leaf, so the queries and the rollup (which keeps every dimension per day) share one list.

/// A breakdown dimension and its column (identifiers come only from this list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimension {
    pub name: &'static str,
    column: &'static str,
}

pub const DIMENSIONS: &[Dimension] = &[
    Dimension::new("country", "country"),
    Dimension::new("region", "region"),
    Dimension::new("city", "city"),
    Dimension::new("device", "device_type"),
    Dimension::new("browser", "browser"),
    Dimension::new("os", "os"),
    Dimension::new("referrer", "referrer_domain"),
    Dimension::new("utm_source", "utm_source"),
    Dimension::new("utm_medium", "utm_medium"),
    Dimension::new("utm_campaign", "utm_campaign"),
    Dimension::new("utm_term", "utm_term"),
    Dimension::new("utm_content", "utm_content"),
];

impl Dimension {
    const fn new(name: &'static str, column: &'static str) -> Self {
        Self { name, column }
    }

    pub fn named(name: &str) -> Option<Self> {
        DIMENSIONS.iter().copied().find(|d| d.name == name)
    }

    pub fn column(&self) -> &'static str {
        self.column
    }
}
