//! The breakdown dimensions: the names the API accepts and the `link_clicks` column each reads.
//! A leaf, so the queries and the rollup (which keeps every dimension per day) share one list.

/// A breakdown dimension and its column (identifiers come only from this list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimension {
    pub name: &'static str,
    column: &'static str,
    /// Whether `link_clicks_recent` has the column (it keeps only what analytics read when it
    /// was made); open days of the others are read from `link_clicks`.
    in_recent: bool,
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
    // Scanned QR codes (`?qr=1`) against every other click; migration 0007 adds it to the days
    // rolled before it existed, 0008 to the recent copy.
    Dimension::new("qr", "if(is_qr = 1, 'qr', 'link')"),
    // The targeting rule that picked the destination (its id; '' for the link's own);
    // migration 0009 adds it to the days rolled before it existed. The recent copy has no
    // rule id: open days of this dimension are read from `link_clicks`.
    Dimension {
        name: "rule",
        column: "rule_id",
        in_recent: false,
    },
];

/// The breakdowns an analytics page shows (`/dashboard`), in its order.
pub const DASHBOARD_DIMENSIONS: [Dimension; 9] = [
    DIMENSIONS[0],
    DIMENSIONS[3],
    DIMENSIONS[4],
    DIMENSIONS[5],
    DIMENSIONS[6],
    DIMENSIONS[7],
    DIMENSIONS[8],
    DIMENSIONS[9],
    DIMENSIONS[12],
];

impl Dimension {
    const fn new(name: &'static str, column: &'static str) -> Self {
        Self {
            name,
            column,
            in_recent: true,
        }
    }

    pub fn named(name: &str) -> Option<Self> {
        DIMENSIONS.iter().copied().find(|d| d.name == name)
    }

    /// The column, or the expression over `link_clicks`' columns, that gives the value.
    pub fn column(&self) -> &'static str {
        self.column
    }

    pub fn in_recent(&self) -> bool {
        self.in_recent
    }
}
