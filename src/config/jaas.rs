//! JAAS login configuration files (`java.security.auth.login.config`), as the JDK's
//! `ConfigFile` reads them:
//!
//! ```text
//! // comment, and /* comment */
//! Server {
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!     user_super="adminsecret"
//!     user_bob="bobsecret";
//! };
//! ```
//!
//! A file is a list of sections `Name { entry; ... };`; an entry is a login module
//! class, a control flag (`required`, `requisite`, `sufficient`, `optional`, any case)
//! and options `key=value`, the value a word or a double-quoted string (with `\`
//! escapes; a quoted string ends at the line's end, as in Java's `StreamTokenizer`).
//! A section named twice is an error, as in the JDK. `${property}` expansion is not
//! done: such values are taken literally.
//!
//! Sans-IO: [`parse`] takes the text. Errors carry the line number.

use std::collections::BTreeMap;

/// One login module line of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginModule {
    pub class: String,
    /// `required`, `requisite`, `sufficient` or `optional`, lower-cased.
    pub flag: String,
    /// Options in file order (a key given twice keeps its last value, as a HashMap).
    pub options: BTreeMap<String, String>,
    pub line: usize,
}

/// A parsed JAAS file: section name -> its login modules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JaasConfig {
    pub sections: BTreeMap<String, Vec<LoginModule>>,
}

/// A file that does not parse: what and where (1-based line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct JaasError {
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Number(String),
    Char(char),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("[{w}]"),
            Tok::Quoted(q) => format!("[\"{q}\"]"),
            Tok::Number(n) => format!("the number {n}"),
            Tok::Char(c) => format!("[{c}]"),
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '$' | '-' | '*' | '.') || (c as u32) >= 0xA0
}

/// Java's StreamTokenizer as `ConfigFile` sets it up: words of letters, digits, `_`,
/// `$`, `-`, `*` and `.`; `"` strings; `//` and `/* */` comments; numbers (a token
/// starting with a digit) are tokens of their own that no rule accepts.
fn tokenize(text: &str) -> Result<Vec<(Tok, usize)>, JaasError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() || (c as u32) < 0x20 {
            i += 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            let start = line;
            i += 2;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(JaasError {
                            line: start,
                            reason: "unterminated /* comment".into(),
                        })
                    }
                    Some('*') if chars.get(i + 1) == Some(&'/') => {
                        i += 2;
                        break;
                    }
                    Some('\n') => {
                        line += 1;
                        i += 1;
                    }
                    Some(_) => i += 1,
                }
            }
        } else if c == '"' {
            let start = line;
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None | Some('\n') | Some('\r') => {
                        return Err(JaasError {
                            line: start,
                            reason: format!("unterminated quoted string \"{s}"),
                        })
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        let Some(&e) = chars.get(i + 1) else {
                            return Err(JaasError {
                                line: start,
                                reason: format!("unterminated quoted string \"{s}"),
                            });
                        };
                        i += 2;
                        match e {
                            'n' => s.push('\n'),
                            't' => s.push('\t'),
                            'r' => s.push('\r'),
                            'b' => s.push('\u{8}'),
                            'f' => s.push('\u{c}'),
                            'a' => s.push('\u{7}'),
                            'v' => s.push('\u{b}'),
                            '0'..='7' => {
                                // Up to three octal digits (the first 0-3 for three).
                                let mut v = e.to_digit(8).unwrap_or(0);
                                let max = if e <= '3' { 2 } else { 1 };
                                for _ in 0..max {
                                    match chars.get(i).and_then(|d| d.to_digit(8)) {
                                        Some(d) => {
                                            v = v * 8 + d;
                                            i += 1;
                                        }
                                        None => break,
                                    }
                                }
                                s.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                            }
                            other => s.push(other),
                        }
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push((Tok::Quoted(s), start));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && is_word_char(chars[i]) {
                i += 1;
            }
            out.push((Tok::Number(chars[start..i].iter().collect()), line));
        } else if is_word_char(c) {
            let start = i;
            while i < chars.len() && is_word_char(chars[i]) {
                i += 1;
            }
            out.push((Tok::Word(chars[start..i].iter().collect()), line));
        } else {
            out.push((Tok::Char(c), line));
            i += 1;
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    last_line: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .map(|t| t.1)
            .unwrap_or(self.last_line)
    }

    fn err(&self, reason: String) -> JaasError {
        JaasError {
            line: self.line(),
            reason,
        }
    }

    fn next(&mut self, expected: &str) -> Result<Tok, JaasError> {
        match self.toks.get(self.pos) {
            Some((t, _)) => {
                self.pos += 1;
                Ok(t.clone())
            }
            None => Err(self.err(format!("expected {expected}, found the end of the file"))),
        }
    }

    /// A word or quoted string.
    fn text(&mut self, expected: &str) -> Result<String, JaasError> {
        let line = self.line();
        match self.next(expected)? {
            Tok::Word(w) | Tok::Quoted(w) => Ok(w),
            other => Err(JaasError {
                line,
                reason: format!(
                    "expected {expected}, found {}{}",
                    other.describe(),
                    if matches!(other, Tok::Number(_)) {
                        " (quote it)"
                    } else {
                        ""
                    }
                ),
            }),
        }
    }

    fn expect_char(&mut self, c: char) -> Result<(), JaasError> {
        let line = self.line();
        match self.next(&format!("[{c}]"))? {
            Tok::Char(x) if x == c => Ok(()),
            other => Err(JaasError {
                line,
                reason: format!("expected [{c}], found {}", other.describe()),
            }),
        }
    }

    fn is_char(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Char(c))
    }
}

/// Parses a JAAS login configuration.
pub fn parse(text: &str) -> Result<JaasConfig, JaasError> {
    let toks = tokenize(text)?;
    let last_line = text.lines().count().max(1);
    let mut p = Parser {
        toks,
        pos: 0,
        last_line,
    };
    let mut cfg = JaasConfig::default();
    while p.peek().is_some() {
        let name_line = p.line();
        let name = p.text("a section name")?;
        p.expect_char('{')?;
        let mut modules = Vec::new();
        while !p.is_char('}') {
            let line = p.line();
            let class = p.text("a login module class name")?;
            let flag_line = p.line();
            let flag = p.text("a control flag")?;
            let flag = flag.to_ascii_lowercase();
            if !matches!(
                flag.as_str(),
                "required" | "requisite" | "sufficient" | "optional"
            ) {
                return Err(JaasError {
                    line: flag_line,
                    reason: format!(
                        "invalid control flag [{flag}] for {class}: use required, requisite, sufficient or optional"
                    ),
                });
            }
            let mut options = BTreeMap::new();
            while !p.is_char(';') {
                let key = p.text("an option name or [;]")?;
                p.expect_char('=')?;
                let value = p.text(&format!("a value for option {key}"))?;
                options.insert(key, value);
            }
            p.expect_char(';')?;
            modules.push(LoginModule {
                class,
                flag,
                options,
                line,
            });
        }
        p.expect_char('}')?;
        p.expect_char(';')?;
        if cfg.sections.contains_key(&name) {
            return Err(JaasError {
                line: name_line,
                reason: format!("section {name} is given twice"),
            });
        }
        cfg.sections.insert(name, modules);
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZK_SAMPLE: &str = r#"
// ZooKeeper's documented server section
Server {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       user_super="adminsecret"
       user_bob="bobsecret";
};
/* a client section,
   over several lines */
Client {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       username="bob"
       password="bobsecret";
};
"#;

    #[test]
    fn reads_zookeepers_sample() {
        let c = parse(ZK_SAMPLE).unwrap();
        let server = &c.sections["Server"];
        assert_eq!(server.len(), 1);
        assert_eq!(
            server[0].class,
            "org.apache.zookeeper.server.auth.DigestLoginModule"
        );
        assert_eq!(server[0].flag, "required");
        assert_eq!(server[0].line, 4);
        assert_eq!(server[0].options["user_super"], "adminsecret");
        assert_eq!(server[0].options["user_bob"], "bobsecret");
        assert_eq!(c.sections["Client"][0].options["username"], "bob");
    }

    #[test]
    fn words_escapes_and_flags() {
        let c =
            parse("S { a.B REQUIRED k=v debug=true q=\"a\\\"b\\\\c\\td\\101\"; x.Y optional; };")
                .unwrap();
        let s = &c.sections["S"];
        assert_eq!(s[0].flag, "required");
        assert_eq!(s[0].options["k"], "v");
        assert_eq!(s[0].options["debug"], "true");
        assert_eq!(s[0].options["q"], "a\"b\\c\tdA");
        assert_eq!(s[1].class, "x.Y");
        assert!(s[1].options.is_empty());
    }

    #[test]
    fn errors_name_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "Server {\n a.B required\n user_x=\"pw\"\n};",
                4,
                "found [}]",
            ),
            ("Server {\n a.B mandatory;\n};", 2, "invalid control flag"),
            (
                "Server {\n a.B required user_x=\"pw;\n};",
                2,
                "unterminated quoted string",
            ),
            ("Server {\n a.B required user_x=1234;\n};", 2, "quote it"),
            (
                "Server {\n a.B required;\n}",
                3,
                "expected [;], found the end",
            ),
            ("Server\n a.B required;\n};", 2, "expected [{]"),
            (
                "A { a.B required; };\n\nA { a.B required; };",
                3,
                "given twice",
            ),
            ("/* open\n\n", 1, "unterminated /*"),
            ("# hash\nA { a.B required; };", 1, "found [#]"),
            ("A { a.B required k v; };", 1, "expected [=]"),
        ];
        for (text, line, why) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, *line, "{text:?}: {e}");
            assert!(e.reason.contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn empty_file_has_no_sections() {
        assert_eq!(parse("  // nothing\n").unwrap(), JaasConfig::default());
        // An empty section is one, with no module (as the JDK reads it).
        assert_eq!(parse("A { };").unwrap().sections["A"], vec![]);
        // Keys may be quoted, to hold characters words cannot.
        let c = parse("S { m.M required \"user_bob@EXAMPLE.COM\"=\"pw\"; };").unwrap();
        assert_eq!(c.sections["S"][0].options["user_bob@EXAMPLE.COM"], "pw");
    }
}
