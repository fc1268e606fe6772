//! Whether a string is an X.500 name Java's `new X500Principal(name)` accepts: the
//! validity test of `x509` ACL ids (`X509AuthenticationProvider.isValid`).
//!
//! RFC 2253 / RFC 1779 syntax: relative names separated by `,` or `;`, attributes
//! within one joined by `+`, each `keyword=value`. The keyword is one Java knows
//! (`CN`, `OU`, `O`, `L`, `ST`, `C`, `DC`, `UID`, `EMAILADDRESS`, ...) or an OID
//! (`2.5.4.3`, `OID.2.5.4.3`); the value is a string with `\` escapes (a special
//! character or two hex digits), a `"quoted"` string, or `#` and hex. The empty name
//! is valid. This checks the syntax only, as Java does for a name given as text
//! (except that a `#hex` value is not decoded as DER).

const KEYWORDS: &[&str] = &[
    "CN",
    "C",
    "L",
    "S",
    "ST",
    "O",
    "OU",
    "T",
    "IP",
    "STREET",
    "DC",
    "DNQUALIFIER",
    "DNQ",
    "SURNAME",
    "GIVENNAME",
    "INITIALS",
    "GENERATION",
    "EMAIL",
    "EMAILADDRESS",
    "UID",
    "SERIALNUMBER",
];

/// Splits on unescaped, unquoted separators.
fn split_unescaped<'a>(s: &'a str, seps: &[u8]) -> Option<Vec<&'a str>> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut quoted = false;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'"' => quoted = !quoted,
            c if !quoted && seps.contains(&c) => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if quoted {
        return None;
    }
    parts.push(s.get(start..)?);
    Some(parts)
}

fn valid_keyword(k: &str) -> bool {
    let oid = k
        .strip_prefix("OID.")
        .or_else(|| k.strip_prefix("oid."))
        .unwrap_or(k);
    let is_oid = !oid.is_empty()
        && oid.split('.').count() >= 2
        && oid
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()));
    is_oid || KEYWORDS.iter().any(|w| w.eq_ignore_ascii_case(k))
}

fn valid_value(v: &str) -> bool {
    let v = v.trim_start();
    if let Some(hexs) = v.strip_prefix('#') {
        let h = hexs.trim_end();
        return !h.is_empty() && h.len() % 2 == 0 && h.bytes().all(|c| c.is_ascii_hexdigit());
    }
    let b = v.as_bytes();
    if b.first() == Some(&b'"') {
        let mut i = 1;
        while i < b.len() {
            match b[i] {
                b'\\' => i += 2,
                b'"' => return v[i + 1..].trim().is_empty(),
                _ => i += 1,
            }
        }
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                let Some(&n) = b.get(i + 1) else {
                    return false;
                };
                if b",=+<>#;\"\\ ".contains(&n) {
                    i += 2;
                } else if n.is_ascii_hexdigit()
                    && b.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit())
                {
                    i += 3;
                } else {
                    return false;
                }
            }
            b'"' | b'<' | b'>' | b'=' => return false,
            _ => i += 1,
        }
    }
    true
}

/// `new X500Principal(name)` succeeds.
pub fn is_valid_dn(name: &str) -> bool {
    if name.trim().is_empty() {
        return true;
    }
    let Some(rdns) = split_unescaped(name, b",;") else {
        return false;
    };
    rdns.iter().all(|rdn| {
        if rdn.trim().is_empty() {
            return false;
        }
        let Some(avas) = split_unescaped(rdn, b"+") else {
            return false;
        };
        avas.iter().all(|ava| match ava.split_once('=') {
            Some((k, v)) => valid_keyword(k.trim()) && valid_value(v),
            None => false,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::is_valid_dn;

    #[test]
    fn names_java_accepts() {
        for ok in [
            "",
            "CN=client",
            "CN=client,OU=ZooKeeper,O=Apache,L=Wakefield,ST=MA,C=US",
            "cn=a; o=b",
            "CN=a+UID=7,DC=example,DC=com",
            "CN=Smith\\, John,O=x",
            "CN=\"quoted, name\"",
            "CN=#04024869",
            "2.5.4.3=raw,OID.2.5.4.11=unit",
            "EMAILADDRESS=a@b.c,CN=x",
            "CN=\\4a\\6f",
            "CN=",
        ] {
            assert!(is_valid_dn(ok), "{ok}");
        }
    }

    #[test]
    fn names_java_refuses() {
        for bad in [
            "client",
            "XX=a",
            "CN=a,",
            ",CN=a",
            "CN=a,,O=b",
            "CN=\"open",
            "CN=a\\",
            "CN=a\\zz",
            "CN=#abc",
            "CN=a=b",
            "=a",
            "CN=a+",
            "1=a",
        ] {
            assert!(!is_valid_dn(bad), "{bad}");
        }
    }
}
