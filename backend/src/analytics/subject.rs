//! Whose clicks a question is about, and how that subject filters the raw table and the rollups.

use super::escape::quote;
use uuid::Uuid;

/// Whose clicks: one link of a user, or all of a user's links.
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    Link { user_id: Uuid, link_id: Uuid },
    Account { user_id: Uuid },
}

impl Subject {
    pub(super) fn filter(&self) -> String {
        match self {
            Self::Link { user_id, link_id } => format!(
                "user_id = {} AND link_id = {}",
                quote(&user_id.to_string()),
                quote(&link_id.to_string())
            ),
            Self::Account { user_id } => format!("user_id = {}", quote(&user_id.to_string())),
        }
    }

    /// The subject's rows in the rollups, where `link_id = ''` holds the account's.
    pub(super) fn rollup_filter(&self) -> String {
        let (user_id, link_id) = match self {
            Self::Link { user_id, link_id } => (user_id, link_id.to_string()),
            Self::Account { user_id } => (user_id, String::new()),
        };
        format!(
            "user_id = {} AND link_id = {}",
            quote(&user_id.to_string()),
            quote(&link_id)
        )
    }
}
