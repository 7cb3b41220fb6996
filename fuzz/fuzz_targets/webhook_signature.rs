//! Webhook signature checks of any headers and body: never panic, and never accept a delivery the
//! fuzzer signed without the secret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smo1_origin::billing::signature::{self, Delivery};

const SECRET: &str = "polar_whs_fuzz_secret";
const NOW: i64 = 1_764_000_000;

fuzz_target!(|input: (&str, &str, &str, &[u8])| {
    let (id, timestamp, signatures, body) = input;
    let delivery = Delivery {
        id,
        timestamp,
        signatures,
    };
    assert!(signature::verify(SECRET, &delivery, body, NOW).is_err());
});
