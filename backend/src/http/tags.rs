//! Tags grouping the operations of the OpenAPI document: a leaf every resource module uses.

pub const USERS: &str = "users";
pub const API_KEYS: &str = "api-keys";
pub const LINKS: &str = "links";
pub const ACHIEVEMENTS: &str = "achievements";
pub const ANALYTICS: &str = "analytics";
pub const AUTH: &str = "auth";
pub const DOMAINS: &str = "domains";
