//! The few `java.lang` string/number behaviours ZooKeeper's auth providers lean on.
//!
//! ZooKeeper decides which ACL ids are valid and what they match with `String.split` and
//! `Integer.parseInt`, whose edge cases (trailing empty strings dropped, a leading `+`
//! accepted, ...) are visible to clients: an id Java accepts must be accepted here and
//! one it rejects rejected. These helpers reproduce those edge cases, for ASCII input.

/// `s.split(c)` (regex limit 0) as Java does it: no separator gives `[s]`; otherwise
/// every piece, then trailing empty pieces removed (so `":"` gives `[]`).
pub(crate) fn split_drop_trailing(s: &str, c: char) -> Vec<&str> {
    let mut parts: Vec<&str> = s.split(c).collect();
    if parts.len() == 1 {
        return parts;
    }
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

/// `Integer.parseInt(s, radix)`: an optional single `+`/`-`, then at least one digit of
/// `radix`, and the value must fit an `i32`. None where Java throws NumberFormatException.
/// Only ASCII digits are accepted (Java also takes other Unicode digits; no client sends
/// those in an address).
pub(crate) fn parse_int(s: &str, radix: u32) -> Option<i32> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for c in digits.chars() {
        let d = c.to_digit(radix)?;
        value = value * i64::from(radix) + i64::from(d);
        // Bound the accumulator before it can overflow; i32's magnitude is < 2^31 + 1.
        if value > (1i64 << 31) {
            return None;
        }
    }
    let value = if negative { -value } else { value };
    i32::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_matches_java() {
        assert_eq!(split_drop_trailing("", ':'), vec![""]);
        assert_eq!(split_drop_trailing("abc", ':'), vec!["abc"]);
        assert_eq!(split_drop_trailing("a:b", ':'), vec!["a", "b"]);
        assert_eq!(split_drop_trailing("a:b:", ':'), vec!["a", "b"]);
        assert_eq!(split_drop_trailing("a::", ':'), vec!["a"]);
        assert_eq!(split_drop_trailing(":b", ':'), vec!["", "b"]);
        assert_eq!(split_drop_trailing(":", ':'), Vec::<&str>::new());
        assert_eq!(split_drop_trailing("::", ':'), Vec::<&str>::new());
        assert_eq!(split_drop_trailing("a::b", ':'), vec!["a", "", "b"]);
    }

    #[test]
    fn parse_int_matches_java() {
        assert_eq!(parse_int("0", 10), Some(0));
        assert_eq!(parse_int("255", 10), Some(255));
        assert_eq!(parse_int("+8", 10), Some(8));
        assert_eq!(parse_int("-0", 10), Some(0));
        assert_eq!(parse_int("-1", 10), Some(-1));
        assert_eq!(parse_int("007", 10), Some(7));
        assert_eq!(parse_int("", 10), None);
        assert_eq!(parse_int("+", 10), None);
        assert_eq!(parse_int("-", 10), None);
        assert_eq!(parse_int("+-1", 10), None);
        assert_eq!(parse_int(" 1", 10), None);
        assert_eq!(parse_int("1a", 10), None);
        assert_eq!(parse_int("2147483647", 10), Some(i32::MAX));
        assert_eq!(parse_int("-2147483648", 10), Some(i32::MIN));
        assert_eq!(parse_int("2147483648", 10), None);
        assert_eq!(parse_int("99999999999999999999999", 10), None);
        assert_eq!(parse_int("ffff", 16), Some(0xffff));
        assert_eq!(parse_int("FfFf", 16), Some(0xffff));
        assert_eq!(parse_int("-fff", 16), Some(-0xfff));
        assert_eq!(parse_int("g", 16), None);
        assert_eq!(parse_int("٣", 10), None);
    }
}
