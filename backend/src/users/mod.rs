//! Users: the account an API key acts for, and its subscription tier. Users are created by the
//! `smo1-origin admin create-user` command (self-hosting bootstrap) and, later, by sign-up.

pub mod repo;

pub use repo::{SubscriptionTier, User};
