//! A reader for the Java `.properties` syntax, the way `java.util.Properties.load` reads
//! zoo.cfg for ZooKeeper. It only splits the text into (key, value, line) entries; what
//! the keys mean is `config`'s business. Kept separate so the quirks of the format
//! (continuations, `:` separators, escapes) are tested on their own.
//!
//! Rules followed (from the `Properties.load` contract):
//! - lines end at `\n`, `\r` or `\r\n`;
//! - a line whose first non-blank character is `#` or `!` is a comment, and so is a
//!   blank line;
//! - a line ending in an odd number of backslashes continues on the next line, whose
//!   leading blanks are dropped (comment lines never continue);
//! - the key ends at the first unescaped `=`, `:` or blank; then blanks, at most one
//!   `=`/`:`, and more blanks are skipped; the rest of the line is the value;
//! - `\t`, `\n`, `\r`, `\f`, `\uXXXX` are escapes, and `\x` is `x` for any other `x`.
//!
//! Unlike Java, the input is UTF-8 text, not ISO-8859-1 bytes: a path with non-ASCII
//! characters means what the user typed.

/// One `key=value` entry as written, before ZooKeeper's trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// 1-based line on which the (logical) line starts.
    pub line: usize,
}

/// A `\u` escape that is not followed by four hex digits (Java refuses the whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedEscape {
    pub line: usize,
}

/// Java's "white space" for properties files: space, tab, form feed.
fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\u{000c}'
}

/// Splits `text` into physical lines, keeping their 1-based numbers.
fn physical_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut line_no = 1;
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                out.push((line_no, &text[start..i]));
                line_no += 1;
                i += 1;
                start = i;
            }
            b'\r' => {
                out.push((line_no, &text[start..i]));
                line_no += 1;
                i += 1;
                if i < bytes.len() && bytes[i] == b'\n' {
                    i += 1;
                }
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < bytes.len() {
        out.push((line_no, &text[start..]));
    }
    out
}

/// True when `s` ends in an odd number of backslashes (the last one escapes the newline).
fn continues(s: &str) -> bool {
    s.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Reads every entry of `text`, in file order (duplicates included: the caller decides
/// that the last one wins, as `Properties` does).
pub fn parse(text: &str) -> Result<Vec<Entry>, MalformedEscape> {
    let lines = physical_lines(text);
    let mut entries = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (line_no, raw) = lines[i];
        i += 1;
        let first = raw.trim_start_matches(is_blank);
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        // Join continuation lines into one logical line.
        let mut logical = String::from(first);
        while continues(&logical) {
            logical.pop();
            match lines.get(i) {
                Some(&(_, next)) => {
                    logical.push_str(next.trim_start_matches(is_blank));
                    i += 1;
                }
                None => break,
            }
        }
        entries.push(split_entry(&logical, line_no)?);
    }
    Ok(entries)
}

/// Splits one logical line into key and value, resolving escapes in both.
fn split_entry(logical: &str, line: usize) -> Result<Entry, MalformedEscape> {
    let chars: Vec<char> = logical.chars().collect();
    let mut k = 0;
    let mut key_end = chars.len();
    let mut value_start = chars.len();
    while k < chars.len() {
        let c = chars[k];
        if c == '\\' {
            k += 2;
            continue;
        }
        if c == '=' || c == ':' || is_blank(c) {
            key_end = k;
            let mut v = k;
            while v < chars.len() && is_blank(chars[v]) {
                v += 1;
            }
            if v < chars.len() && (chars[v] == '=' || chars[v] == ':') {
                v += 1;
                while v < chars.len() && is_blank(chars[v]) {
                    v += 1;
                }
            }
            value_start = v;
            break;
        }
        k += 1;
    }
    let key_end = key_end.min(chars.len());
    Ok(Entry {
        key: unescape(&chars[..key_end], line)?,
        value: unescape(&chars[value_start.min(chars.len())..], line)?,
        line,
    })
}

fn unescape(chars: &[char], line: usize) -> Result<String, MalformedEscape> {
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = chars.get(i) else {
            break; // a lone trailing backslash (only at end of input) is dropped, as Java does
        };
        i += 1;
        match e {
            't' => out.push('\t'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            'f' => out.push('\u{000c}'),
            'u' => {
                let hex: String = chars.iter().skip(i).take(4).collect();
                if hex.chars().count() != 4 {
                    return Err(MalformedEscape { line });
                }
                let code = u32::from_str_radix(&hex, 16).map_err(|_| MalformedEscape { line })?;
                // Unpaired surrogates cannot be a Rust char; Java would keep them.
                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                i += 4;
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String, usize)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value, e.line))
            .collect()
    }

    fn e(k: &str, v: &str, l: usize) -> (String, String, usize) {
        (k.into(), v.into(), l)
    }

    #[test]
    fn separators_and_blanks() {
        assert_eq!(
            kv("a=1\nb = 2\n  c:3\nd 4\ne\t=\t5\nf\n"),
            vec![
                e("a", "1", 1),
                e("b", "2", 2),
                e("c", "3", 3),
                e("d", "4", 4),
                e("e", "5", 5),
                e("f", "", 6)
            ]
        );
    }

    #[test]
    fn comments_and_blank_lines() {
        assert_eq!(
            kv("# c\n! c\n   # indented\n\n   \nk=v # not a comment\n"),
            vec![e("k", "v # not a comment", 6)]
        );
    }

    #[test]
    fn only_first_separator_splits() {
        assert_eq!(
            kv("server.1=host:2888:3888"),
            vec![e("server.1", "host:2888:3888", 1)]
        );
        assert_eq!(kv("k==v"), vec![e("k", "=v", 1)]);
        assert_eq!(kv("k = = v"), vec![e("k", "= v", 1)]);
    }

    #[test]
    fn trailing_blanks_are_kept_here() {
        // Properties keeps them; ZooKeeper trims afterwards (config does that).
        assert_eq!(kv("k=v  "), vec![e("k", "v  ", 1)]);
    }

    #[test]
    fn continuation_lines() {
        assert_eq!(
            kv("list=a,\\\n    b,\\\n    c\nnext=1"),
            vec![e("list", "a,b,c", 1), e("next", "1", 4)]
        );
        // An even number of backslashes is an escaped backslash, not a continuation.
        assert_eq!(kv("p=c:\\\\\nq=1"), vec![e("p", "c:\\", 1), e("q", "1", 2)]);
        // Comment lines do not continue.
        assert_eq!(kv("# x \\\nk=v"), vec![e("k", "v", 2)]);
    }

    #[test]
    fn escapes() {
        assert_eq!(kv(r"a\=b=c\td"), vec![e("a=b", "c\td", 1)]);
        assert_eq!(kv(r"k=\u0041\x"), vec![e("k", "Ax", 1)]);
        assert_eq!(kv(r"key\ with\ space=v"), vec![e("key with space", "v", 1)]);
        assert_eq!(parse("ok=1\nk=\\u00zz"), Err(MalformedEscape { line: 2 }));
        assert_eq!(parse("k=\\u12"), Err(MalformedEscape { line: 1 }));
    }

    #[test]
    fn line_endings() {
        assert_eq!(
            kv("a=1\r\nb=2\rc=3"),
            vec![e("a", "1", 1), e("b", "2", 2), e("c", "3", 3)]
        );
    }

    #[test]
    fn duplicates_are_all_returned_in_order() {
        assert_eq!(kv("k=1\nk=2"), vec![e("k", "1", 1), e("k", "2", 2)]);
    }
}
