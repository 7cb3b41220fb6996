//! Unlock cookies and unlock forms from any visitor: never panic, and a forged cookie never
//! unlocks (the fuzzer does not know the key), while the cookie we sign always does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smo1_core::link::{LinkCacheRecord, LinkStatus, Protection, RedirectType, Utm};
use smo1_core::unlock;

const KEY: &str = "fuzz-unlock-cookie-key";

fuzz_target!(|input: (&str, &str, i64, &str)| {
    let (cookie_header, slug, now, form) = input;
    let record = LinkCacheRecord {
        link_id: "7b0c2d1e-0000-4000-8000-000000000001".into(),
        user_id: "7b0c2d1e-0000-4000-8000-000000000002".into(),
        slug: slug.into(),
        destination: "https://example.com/".into(),
        utm: Utm::default(),
        redirect_type: RedirectType::Found,
        protection: Protection::Pin,
        status: LinkStatus::Active,
        expires_at: None,
        version: 1_700_000_000_000,
        rules: Vec::new(),
    };
    assert!(
        !unlock::cookie_unlocks(KEY, &record, cookie_header, now),
        "a cookie the fuzzer made up unlocked {slug:?}: {cookie_header:?}"
    );
    if let Some(expires) = now.checked_add(60) {
        let value = unlock::sign(KEY, (&record).into(), expires);
        let header = format!("{cookie_header}; {}={value}", unlock::cookie_name(slug));
        // A slug holding `;` or `=` cannot name a cookie; real slugs never do.
        if !slug.contains([';', '=']) && slug.trim() == slug {
            assert!(unlock::cookie_unlocks(KEY, &record, &header, now));
        }
    }
    for kind in [Protection::Pin, Protection::Password] {
        if let Some(secret) = unlock::secret_from_form(form, kind) {
            let _ = unlock::validate_secret(kind, &secret);
        }
    }
});
