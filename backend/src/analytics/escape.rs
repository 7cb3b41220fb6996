//! The one way a value enters analytics SQL: as a single-quoted ClickHouse string literal.
//!
//! ClickHouse 18.16 has no server-side query parameters, so every value that is not a number we
//! formatted ourselves goes through [`quote`]. Identifiers (columns, tables) never come from
//! input: they are picked from fixed lists.

/// `value` as a ClickHouse string literal: backslash and quote escaped, control characters
/// written as escapes, so the literal always ends where we end it.
pub fn quote(value: &str) -> String {
    let mut literal = String::with_capacity(value.len() + 2);
    literal.push('\'');
    for c in value.chars() {
        match c {
            '\\' => literal.push_str("\\\\"),
            '\'' => literal.push_str("\\'"),
            '\n' => literal.push_str("\\n"),
            '\r' => literal.push_str("\\r"),
            '\t' => literal.push_str("\\t"),
            '\0' => literal.push_str("\\0"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    literal.push_str(&format!("\\x{byte:02X}"));
                }
            }
            c => literal.push(c),
        }
    }
    literal.push('\'');
    literal
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn plain_values_are_only_wrapped() {
        assert_eq!(quote("Europe/Berlin"), "'Europe/Berlin'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("Zürich 東京"), "'Zürich 東京'");
    }

    #[test]
    fn quotes_and_backslashes_cannot_end_the_literal() {
        assert_eq!(quote("x' OR 1=1 --"), r"'x\' OR 1=1 --'");
        assert_eq!(quote(r"a\"), r"'a\\'");
        assert_eq!(quote(r"a\' OR '1"), r"'a\\\' OR \'1'");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(quote("a\nb\rc\td\0e"), r"'a\nb\rc\td\0e'");
        assert_eq!(quote("\u{1b}[0m\u{7f}"), r"'\x1B[0m\x7F'");
        assert_eq!(quote("\u{85}"), r"'\xC2\x85'");
    }
}
