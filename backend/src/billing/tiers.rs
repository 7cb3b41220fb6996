//! `POLAR_PRODUCT_TIERS`: the configured map from Polar products to subscription tiers.

use crate::users::SubscriptionTier;
use std::collections::HashMap;
use std::str::FromStr;

/// `POLAR_PRODUCT_TIERS`: which Polar product grants which tier (`prod_123=pro,prod_456=business`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductTiers(pub HashMap<String, SubscriptionTier>);

impl FromStr for ProductTiers {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (product, tier) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("{pair:?} is not product_id=tier"))?;
                let tier = match tier.trim() {
                    "free" => SubscriptionTier::Free,
                    "pro" => SubscriptionTier::Pro,
                    "business" => SubscriptionTier::Business,
                    other => return Err(format!("{other:?} is not free, pro or business")),
                };
                Ok((product.trim().to_owned(), tier))
            })
            .collect::<std::result::Result<_, _>>()
            .map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_tiers_parse() {
        let products: ProductTiers = "prod_pro=pro, prod_biz=business".parse().unwrap();
        assert_eq!(products.0.len(), 2);
        assert!("prod=gold".parse::<ProductTiers>().is_err());
        assert!("nonsense".parse::<ProductTiers>().is_err());
        assert_eq!("".parse::<ProductTiers>(), Ok(ProductTiers::default()));
    }
}
