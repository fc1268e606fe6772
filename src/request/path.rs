//! `PathUtils.validatePath`: which znode paths a write may name. Java checks UTF-16
//! code units, so any character outside the Basic Multilingual Plane (a surrogate pair
//! there) is refused, as are controls, U+007F..U+009F, U+E000..U+F8FF and U+FFF0..U+FFFF.

/// Why `path` is not a valid znode path, or `None` if it is.
pub fn path_error(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("Path length must be > 0");
    }
    if !path.starts_with('/') {
        return Some("Path must start with / character");
    }
    if path.len() == 1 {
        return None;
    }
    if path.ends_with('/') {
        return Some("Path must not end with / character");
    }
    if path.is_ascii() {
        return ascii_path_error(path.as_bytes());
    }
    char_path_error(path)
}

/// The rules on characters, as ZooKeeper's `PathUtils.validatePath` applies them.
/// `path` starts with '/', is longer than 1 and does not end with '/'.
fn char_path_error(path: &str) -> Option<&'static str> {
    let chars: Vec<char> = path.chars().collect();
    let mut lastc = '/';
    for i in 1..chars.len() {
        let c = chars[i];
        if c == '\0' {
            return Some("null character not allowed");
        } else if c == '/' && lastc == '/' {
            return Some("empty node name specified");
        } else if c == '.' && lastc == '.' {
            if chars[i - 2] == '/' && (i + 1 == chars.len() || chars[i + 1] == '/') {
                return Some("relative paths not allowed");
            }
        } else if c == '.' {
            if chars[i - 1] == '/' && (i + 1 == chars.len() || chars[i + 1] == '/') {
                return Some("relative paths not allowed");
            }
        } else if ('\u{1}'..='\u{1f}').contains(&c)
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
            || c >= '\u{fff0}'
        {
            // c >= U+FFF0 also covers every supplementary character: Java sees its
            // surrogates (U+D800..U+DFFF), which are refused.
            return Some("invalid character");
        }
        lastc = c;
    }
    None
}

/// `path_error` for the common all-ASCII path (every request carries one): the same
/// rules on bytes, without collecting the characters. `path` starts with '/', is longer
/// than 1 and does not end with '/'.
fn ascii_path_error(b: &[u8]) -> Option<&'static str> {
    let mut lastc = b'/';
    for i in 1..b.len() {
        let c = b[i];
        if c == 0 {
            return Some("null character not allowed");
        } else if c == b'/' && lastc == b'/' {
            return Some("empty node name specified");
        } else if c == b'.' && lastc == b'.' {
            if b[i - 2] == b'/' && (i + 1 == b.len() || b[i + 1] == b'/') {
                return Some("relative paths not allowed");
            }
        } else if c == b'.' {
            if b[i - 1] == b'/' && (i + 1 == b.len() || b[i + 1] == b'/') {
                return Some("relative paths not allowed");
            }
        } else if (0x01..=0x1f).contains(&c) || c == 0x7f {
            return Some("invalid character");
        }
        lastc = c;
    }
    None
}

pub fn is_valid_path(path: &str) -> bool {
    path_error(path).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte scan of ASCII paths decides exactly as the character scan, for every
    /// path of up to 7 characters over the characters the rules look at.
    #[test]
    fn ascii_fast_path_agrees_with_the_character_rules() {
        let alphabet = ['/', '.', 'a', '\0', '\u{1}', '\u{1f}', '\u{7f}', ' '];
        let mut checked = 0;
        let mut paths = vec![String::from("/")];
        for _ in 0..6 {
            let mut next = Vec::new();
            for p in &paths {
                for c in alphabet {
                    let q = format!("{p}{c}");
                    if !q.ends_with('/') {
                        assert_eq!(ascii_path_error(q.as_bytes()), char_path_error(&q), "{q:?}");
                        checked += 1;
                    }
                    next.push(q);
                }
            }
            paths = next;
        }
        assert!(checked > 200_000, "{checked}");
    }

    #[test]
    fn valid_paths() {
        for p in [
            "/",
            "/a",
            "/a/b",
            "/a.b",
            "/.a",
            "/a.",
            "/..a",
            "/a/...",
            "/zookeeper",
            "/é",
            "/\u{ffef}",
        ] {
            assert!(is_valid_path(p), "{p:?}");
        }
    }

    #[test]
    fn invalid_paths() {
        for p in [
            "",
            "a",
            "a/b",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/.",
            "/a/./b",
            "/a/../b",
            "/a\0b",
            "/a\u{1}",
            "/\u{7f}",
            "/\u{9f}",
            "/\u{e000}",
            "/\u{f8ff}",
            "/\u{fff0}",
            "/\u{1F600}",
        ] {
            assert!(!is_valid_path(p), "{p:?}");
        }
    }
}
