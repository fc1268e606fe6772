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
    // The common all-ASCII path (every request carries one) is scanned as bytes,
    // without collecting its characters; the rules are the same.
    if path.is_ascii() {
        scan(path.as_bytes())
    } else {
        scan(&path.chars().collect::<Vec<char>>())
    }
}

/// The rules on characters (as code points), as ZooKeeper's `PathUtils.validatePath`
/// applies them. `path` starts with '/', is longer than 1 and does not end with '/'.
fn scan<C: Copy + Into<u32>>(path: &[C]) -> Option<&'static str> {
    let at = |i: usize| path[i].into();
    let slash = '/' as u32;
    let dot = '.' as u32;
    let mut lastc = slash;
    for i in 1..path.len() {
        let c = at(i);
        if c == 0 {
            return Some("null character not allowed");
        } else if c == slash && lastc == slash {
            return Some("empty node name specified");
        } else if c == dot && lastc == dot {
            if at(i - 2) == slash && (i + 1 == path.len() || at(i + 1) == slash) {
                return Some("relative paths not allowed");
            }
        } else if c == dot {
            if at(i - 1) == slash && (i + 1 == path.len() || at(i + 1) == slash) {
                return Some("relative paths not allowed");
            }
        } else if (0x1..=0x1f).contains(&c)
            || (0x7f..=0x9f).contains(&c)
            || (0xe000..=0xf8ff).contains(&c)
            || c >= 0xfff0
        {
            // c >= U+FFF0 also covers every supplementary character: Java sees its
            // surrogates (U+D800..U+DFFF), which are refused.
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

    /// Scanning an ASCII path as bytes decides exactly as scanning its characters, for
    /// every path of up to 7 characters over the characters the rules look at.
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
                        assert_eq!(
                            scan(q.as_bytes()),
                            scan(&q.chars().collect::<Vec<char>>()),
                            "{q:?}"
                        );
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
