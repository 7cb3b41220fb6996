//! ClickHouse string literals: the quoted form of any value reads back as exactly that value and
//! ends only at its closing quote, so no input can leave the literal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smo1_origin::analytics::escape;

/// Reads a literal the way ClickHouse's lexer does; `None` if it ends early or is malformed.
fn unquote(literal: &str) -> Option<String> {
    let inner = literal.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut bytes = Vec::new();
    let mut rest = inner.bytes();
    while let Some(b) = rest.next() {
        match b {
            b'\'' => return None,
            b'\\' => match rest.next()? {
                b'n' => bytes.push(b'\n'),
                b'r' => bytes.push(b'\r'),
                b't' => bytes.push(b'\t'),
                b'0' => bytes.push(0),
                b'x' => {
                    let hex = [rest.next()?, rest.next()?];
                    bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
                }
                other => bytes.push(other),
            },
            b => bytes.push(b),
        }
    }
    String::from_utf8(bytes).ok()
}

fuzz_target!(|value: &str| {
    let literal = escape::quote(value);
    assert_eq!(unquote(&literal).as_deref(), Some(value), "{literal}");
});
