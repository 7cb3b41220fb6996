//! Targeting rules as the API takes and shows them, and their validation. How rules are
//! evaluated lives in `smo1_core::targeting`, shared with the edge; rows keep them in the
//! form the cache record carries.

use crate::error::{AppError, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use smo1_core::slug;
use smo1_core::targeting::{Os, Rule, MAX_RULES};
use smo1_core::useragent::DeviceType;
use std::collections::HashSet;
use utoipa::ToSchema;

/// Most bytes a link's rules take in the cache record (its JSON): every visitor lookup of the
/// link carries them.
pub const MAX_RULES_BYTES: usize = 16 * 1024;

/// A targeting rule of a link. Every condition it sets must hold for the visitor; an empty list
/// or absent time sets none. The first rule that holds picks the destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LinkRule {
    /// Stable across edits: clicks and analytics name the rule by it.
    #[schema(example = "r7Kp2xQ")]
    pub id: String,
    #[schema(example = "https://apps.apple.com/app/id123")]
    pub destination: String,
    /// ISO 3166-1 alpha-2 codes.
    #[schema(example = json!(["DE", "AT"]))]
    pub countries: Vec<String>,
    pub devices: Vec<DeviceType>,
    pub os: Vec<Os>,
    /// Primary language subtags, matched against the visitor's most preferred language
    /// (`Accept-Language`, highest q-value): `de` matches `de-AT`.
    #[schema(example = json!(["de"]))]
    pub languages: Vec<String>,
    /// The rule applies from this instant on.
    pub starts_at: Option<DateTime<Utc>>,
    /// The rule no longer applies from this instant on.
    pub ends_at: Option<DateTime<Utc>>,
}

/// A targeting rule to set. At least one condition; `id` keeps an existing rule (and its
/// analytics), a rule without one is new and gets an id.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    /// The id of one of the link's rules, to keep it; leave out for a new rule.
    pub id: Option<String>,
    /// Validated like the link's destination.
    #[schema(min_length = 1, max_length = 2048)]
    pub destination: String,
    /// ISO 3166-1 alpha-2 codes, any case.
    #[serde(default)]
    pub countries: Vec<String>,
    #[serde(default)]
    pub devices: Vec<DeviceType>,
    #[serde(default)]
    pub os: Vec<Os>,
    /// Primary language subtags (2–3 letters), any case.
    #[serde(default)]
    pub languages: Vec<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

impl From<&Rule> for LinkRule {
    fn from(rule: &Rule) -> Self {
        let instant = |at: Option<i64>| at.and_then(|at| DateTime::from_timestamp(at, 0));
        Self {
            id: rule.id.clone(),
            destination: rule.destination.clone(),
            countries: rule.countries.clone(),
            devices: rule.devices.clone(),
            os: rule.os.clone(),
            languages: rule.languages.clone(),
            starts_at: instant(rule.starts_at),
            ends_at: instant(rule.ends_at),
        }
    }
}

impl From<&LinkRule> for Rule {
    fn from(rule: &LinkRule) -> Self {
        Self {
            id: rule.id.clone(),
            destination: rule.destination.clone(),
            countries: rule.countries.clone(),
            devices: rule.devices.clone(),
            os: rule.os.clone(),
            languages: rule.languages.clone(),
            starts_at: rule.starts_at.map(|at| at.timestamp()),
            ends_at: rule.ends_at.map(|at| at.timestamp()),
        }
    }
}

/// The rules of a row's `rules` column (written only by [`validate`]'s output).
pub fn from_column(json: &str) -> Vec<Rule> {
    serde_json::from_str(json).unwrap_or_else(|e| {
        tracing::error!(error = %e, "unreadable rules column");
        Vec::new()
    })
}

/// The `rules` column value of `rules`.
pub fn to_column(rules: &[Rule]) -> String {
    serde_json::to_string(rules).expect("rules always serialize")
}

/// A list without repeats, in first-seen order.
fn distinct<T: PartialEq>(values: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(values.len());
    for value in values {
        if !out.contains(&value) {
            out.push(value);
        }
    }
    out
}

fn invalid(message: String) -> AppError {
    AppError::Validation(message)
}

fn country(at: &str, raw: &str) -> Result<String> {
    let code = raw.trim().to_ascii_uppercase();
    if code.len() == 2 && celes::Country::from_alpha2(&code).is_ok() {
        Ok(code)
    } else {
        Err(invalid(format!(
            "{at}.countries: {raw:?} is not an ISO 3166-1 alpha-2 country code"
        )))
    }
}

fn language(at: &str, raw: &str) -> Result<String> {
    let tag = raw.trim();
    if (2..=3).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(tag.to_ascii_lowercase())
    } else {
        Err(invalid(format!(
            "{at}.languages: {raw:?} is not a primary language tag such as \"de\""
        )))
    }
}

/// Checks `inputs` and returns the rules to store: ids kept where given (each must be one of
/// `existing`, the link's rule ids), fresh ones for new rules; codes normalised, repeats dropped; each destination
/// checked and normalised by `check_destination`, the check of the link's own destination.
pub fn validate(
    inputs: Vec<RuleInput>,
    existing: &[&str],
    mut check_destination: impl FnMut(&str) -> Result<String>,
) -> Result<Vec<Rule>> {
    if inputs.len() > MAX_RULES {
        return Err(invalid(format!("rules: at most {MAX_RULES} rules")));
    }
    let mut ids: HashSet<String> = inputs.iter().filter_map(|i| i.id.clone()).collect();
    let mut rules = Vec::with_capacity(inputs.len());
    let mut kept = HashSet::new();
    for (index, input) in inputs.into_iter().enumerate() {
        let at = format!("rules[{index}]");
        let id = match input.id {
            Some(id) if !existing.contains(&id.as_str()) => {
                return Err(invalid(format!(
                    "{at}.id: {id:?} is not one of this link's rules"
                )))
            }
            Some(id) if !kept.insert(id.clone()) => {
                return Err(invalid(format!("{at}.id: {id:?} is given twice")))
            }
            Some(id) => id,
            None => fresh_id(&mut ids),
        };
        let destination = check_destination(&input.destination).map_err(|e| match e {
            AppError::Validation(message) => invalid(format!("{at}: {message}")),
            other => other,
        })?;
        if let (Some(starts), Some(ends)) = (input.starts_at, input.ends_at) {
            if starts >= ends {
                return Err(invalid(format!("{at}: starts_at must be before ends_at")));
            }
        }
        let rule = Rule {
            id,
            destination,
            countries: distinct(
                input
                    .countries
                    .iter()
                    .map(|raw| country(&at, raw))
                    .collect::<Result<_>>()?,
            ),
            devices: distinct(input.devices),
            os: distinct(input.os),
            languages: distinct(
                input
                    .languages
                    .iter()
                    .map(|raw| language(&at, raw))
                    .collect::<Result<_>>()?,
            ),
            starts_at: input.starts_at.map(|at| at.timestamp()),
            ends_at: input.ends_at.map(|at| at.timestamp()),
        };
        if !rule.has_conditions() {
            return Err(invalid(format!(
                "{at}: a rule needs at least one condition (countries, devices, os, languages, starts_at or ends_at)"
            )));
        }
        rules.push(rule);
    }
    if to_column(&rules).len() > MAX_RULES_BYTES {
        return Err(invalid(format!(
            "rules: at most {MAX_RULES_BYTES} bytes of rules in all"
        )));
    }
    Ok(rules)
}

/// A rule id no rule of the link has, taken into `ids`.
fn fresh_id(ids: &mut HashSet<String>) -> String {
    loop {
        let id = slug::uid_from_random(rand::random());
        if ids.insert(id.clone()) {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(destination: &str) -> RuleInput {
        RuleInput {
            id: None,
            destination: destination.into(),
            countries: vec!["de".into(), "DE".into(), " at ".into()],
            devices: vec![DeviceType::Mobile, DeviceType::Mobile],
            os: Vec::new(),
            languages: vec!["DE".into()],
            starts_at: None,
            ends_at: None,
        }
    }

    /// The link destination's check, as the service passes it.
    fn own(raw: &str) -> Result<String> {
        smo1_core::destination::validate(raw, &["sho.rt".to_owned()])
            .map(String::from)
            .map_err(|e| AppError::Validation(e.to_string()))
    }

    fn error(inputs: Vec<RuleInput>, existing: &[&str]) -> String {
        validate(inputs, existing, own).unwrap_err().to_string()
    }

    #[test]
    fn rules_are_normalised_and_get_ids_new_rules_only() {
        let rules = validate(vec![input("https://Example.de/x")], &[], own).unwrap();
        let rule = &rules[0];
        assert_eq!(rule.id.len(), slug::UID_LEN);
        assert_eq!(rule.destination, "https://example.de/x");
        assert_eq!(rule.countries, ["DE", "AT"]);
        assert_eq!(rule.devices, [DeviceType::Mobile]);
        assert_eq!(rule.languages, ["de"]);

        let mut kept = input("https://example.de/y");
        kept.id = Some(rule.id.clone());
        let again = validate(
            vec![input("https://example.at/"), kept],
            &[rule.id.as_str()],
            own,
        )
        .unwrap();
        assert_eq!(again[1].id, rule.id);
        assert_ne!(again[0].id, rule.id);
    }

    #[test]
    fn bad_rules_are_refused_with_the_field_named() {
        let mut bad = input("https://example.com/");
        bad.countries = vec!["XY".into()];
        assert_eq!(
            error(vec![bad], &[]),
            r#"rules[0].countries: "XY" is not an ISO 3166-1 alpha-2 country code"#
        );
        let mut bad = input("https://example.com/");
        bad.languages = vec!["de-AT".into()];
        assert_eq!(
            error(vec![input("https://example.com/"), bad], &[]),
            r#"rules[1].languages: "de-AT" is not a primary language tag such as "de""#
        );
        assert_eq!(
            error(vec![input("https://sho.rt./loop")], &[]),
            "rules[0]: destination must not point at this short domain"
        );
        let mut bad = input("https://example.com/");
        bad.id = Some("nope".into());
        assert_eq!(
            error(vec![bad], &[]),
            r#"rules[0].id: "nope" is not one of this link's rules"#
        );
        let mut bad = input("https://example.com/");
        bad.starts_at = DateTime::from_timestamp(200, 0);
        bad.ends_at = DateTime::from_timestamp(200, 0);
        assert_eq!(
            error(vec![bad], &[]),
            "rules[0]: starts_at must be before ends_at"
        );
        let mut bad = input("https://example.com/");
        bad.countries.clear();
        bad.devices.clear();
        bad.languages.clear();
        assert!(error(vec![bad], &[]).starts_with("rules[0]: a rule needs at least one condition"));
        assert_eq!(
            error(vec![input("https://example.com/"); MAX_RULES + 1], &[]),
            "rules: at most 20 rules"
        );
        let long = format!("https://example.com/{}", "a".repeat(2000));
        assert_eq!(
            error(vec![input(&long); 10], &[]),
            "rules: at most 16384 bytes of rules in all"
        );
    }

    #[test]
    fn an_id_is_kept_once() {
        let rules = validate(vec![input("https://example.com/")], &[], own).unwrap();
        let mut twice = input("https://example.com/");
        twice.id = Some(rules[0].id.clone());
        assert_eq!(
            error(vec![twice.clone(), twice], &[rules[0].id.as_str()]),
            format!("rules[1].id: {:?} is given twice", rules[0].id)
        );
    }
}
