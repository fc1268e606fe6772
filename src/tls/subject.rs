//! What a client certificate says about its owner: the subject as Java's
//! `X500Principal.getName()` writes it (RFC 2253), which is ZooKeeper's `x509` auth id,
//! and whether the certificate names the address the client connects from (the check
//! `ssl.clientHostnameVerification` asks for).
//!
//! The id must be byte for byte what ZooKeeper derives, since ACLs written for
//! ZooKeeper (`x509:CN=client,O=Org,C=US`) must keep matching: the RDNs in reverse
//! order of the certificate's encoding, `,` between them with no space, the short
//! names Java knows for RFC 2253 (CN, C, L, ST, O, OU, STREET, DC, UID) and the dotted
//! OID with `#`-hex DER for any other attribute, specials escaped with `\`.

use std::net::IpAddr;

use x509_parser::prelude::*;

/// Java's RFC 2253 keywords.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// ASN.1 universal tags Java prints as text (`AVA.isDerString`, non-canonical).
fn string_value(tag: u32, data: &[u8]) -> Option<String> {
    match tag {
        // PrintableString, T61String, IA5String, GeneralString, UTF8String
        19 | 20 | 22 | 27 | 12 => Some(String::from_utf8_lossy(data).into_owned()),
        // BMPString: UTF-16BE
        30 => {
            let units: Vec<u16> = data
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        // UniversalString: UTF-32BE
        28 => Some(
            data.chunks(4)
                .map(|c| {
                    let mut b = [0u8; 4];
                    b[..c.len()].copy_from_slice(c);
                    char::from_u32(u32::from_be_bytes(b)).unwrap_or('\u{fffd}')
                })
                .collect(),
        ),
        _ => None,
    }
}

/// `#` and the hex of the value's DER encoding (tag, length, content).
fn hex_value(tag: u32, data: &[u8]) -> String {
    let mut der = Vec::with_capacity(data.len() + 6);
    der.push((tag & 0x1f) as u8);
    let n = data.len();
    if n < 0x80 {
        der.push(n as u8);
    } else {
        let bytes = (n as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        der.push(0x80 | (8 - skip) as u8);
        der.extend_from_slice(&bytes[skip..]);
    }
    der.extend_from_slice(data);
    let mut s = String::from("#");
    for b in der {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Escapes an RFC 2253 value the way Java's `AVA.toRFC2253String` does.
fn escape(v: &str) -> String {
    const SPECIALS: &str = ",=+<>#;\"\\";
    let mut out = String::with_capacity(v.len() + 4);
    let chars: Vec<char> = v.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if SPECIALS.contains(c) {
            out.push('\\');
            out.push(c);
        } else if c == '\0' {
            out.push_str("\\00");
        } else if c == ' ' && (i == 0 || i == chars.len() - 1) {
            out.push_str("\\ ");
        } else {
            out.push(c);
        }
    }
    out
}

/// The certificate's subject as `X500Principal.getName()` gives it.
pub fn rfc2253_subject(cert_der: &[u8]) -> Result<String, String> {
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| format!("the client certificate does not parse: {e}"))?;
    Ok(rfc2253_name(cert.subject()))
}

fn rfc2253_name(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|ava| {
                    let oid = ava.attr_type().to_id_string();
                    let value = ava.attr_value();
                    let tag = value.tag().0;
                    let data = value.as_bytes();
                    match (keyword(&oid), string_value(tag, data)) {
                        (Some(k), Some(s)) => format!("{k}={}", escape(&s)),
                        (Some(k), None) => format!("{k}={}", hex_value(tag, data)),
                        (None, _) => format!("{oid}={}", hex_value(tag, data)),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// The `x509` id of a client certificate: its subject, or with
/// `ssl.clientCertIdType=SAN` what the SAN rules cut from one subjectAltName entry,
/// falling back to the subject (with a warning) when they find nothing, as ZooKeeper's
/// `ClientX509Util.getClientId`.
pub fn client_id(
    cert_der: &[u8],
    san: Option<&crate::config::tls::SanClientId>,
) -> Result<String, String> {
    if let Some(rules) = san {
        match san_client_id(cert_der, rules) {
            Ok(id) => return Ok(id),
            Err(e) => tracing::warn!(
                "ssl.clientCertIdType=SAN: {e}; using the certificate's subject instead"
            ),
        }
    }
    rfc2253_subject(cert_der)
}

/// Java's text for a subjectAltName entry (`X509Certificate.getSubjectAlternativeNames`),
/// for the kinds that have one.
fn san_text(g: &GeneralName<'_>) -> Option<(u8, String)> {
    Some(match g {
        GeneralName::RFC822Name(s) => (1, s.to_string()),
        GeneralName::DNSName(s) => (2, s.to_string()),
        GeneralName::DirectoryName(n) => (4, rfc2253_name(n)),
        GeneralName::URI(s) => (6, s.to_string()),
        GeneralName::IPAddress(b) => (7, java_ip_text(b)?),
        GeneralName::RegisteredID(oid) => (8, oid.to_id_string()),
        _ => return None,
    })
}

/// `InetAddress.getHostAddress`: dotted IPv4, or eight uncompressed hex groups.
fn java_ip_text(b: &[u8]) -> Option<String> {
    match b.len() {
        4 => Some(format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])),
        16 => Some(
            b.chunks(2)
                .map(|c| format!("{:x}", u16::from_be_bytes([c[0], c[1]])))
                .collect::<Vec<_>>()
                .join(":"),
        ),
        _ => None,
    }
}

fn san_client_id(
    cert_der: &[u8],
    rules: &crate::config::tls::SanClientId,
) -> Result<String, String> {
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| format!("the client certificate does not parse: {e}"))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| e.to_string())?
        .ok_or("the certificate has no subjectAltName")?;
    let matched: Vec<String> = san
        .value
        .general_names
        .iter()
        .filter_map(san_text)
        .filter(|(t, text)| *t == rules.match_type && rules.match_regex.is_match(text))
        .map(|(_, text)| text)
        .collect();
    let [one] = matched.as_slice() else {
        return Err(format!(
            "{} subjectAltName entries of type {} match {:?}; exactly one must",
            matched.len(),
            rules.match_type,
            rules.match_regex.as_str()
        ));
    };
    rules
        .extract_regex
        .captures(one)
        .and_then(|c| c.get(rules.extract_group))
        .map(|m| m.as_str().to_string())
        .ok_or_else(|| {
            format!(
                "{:?} (group {}) extracts nothing from {one:?}",
                rules.extract_regex.as_str(),
                rules.extract_group
            )
        })
}

/// Whether the certificate names `ip` as ZooKeeper's `ZKHostnameVerifier` decides for
/// an address: an IP address entry of its subjectAltName equal to it. corral does not
/// look the address up in DNS (ZooKeeper then tries the reverse name); for a loopback
/// client the name `localhost` is accepted in its place.
pub fn names_address(cert_der: &[u8], ip: IpAddr) -> bool {
    let Ok((_, cert)) = X509Certificate::from_der(cert_der) else {
        return false;
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    let want: Vec<u8> = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets().to_vec(),
        },
    };
    san.value.general_names.iter().any(|g| match g {
        GeneralName::IPAddress(b) => *b == want.as_slice(),
        GeneralName::DNSName(d) => ip.is_loopback() && d.eq_ignore_ascii_case("localhost"),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_java() {
        assert_eq!(escape("Acme, Inc."), "Acme\\, Inc.");
        assert_eq!(escape(" lead"), "\\ lead");
        assert_eq!(escape("trail "), "trail\\ ");
        assert_eq!(escape("a=b+c"), "a\\=b\\+c");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn hex_values_are_whole_der() {
        assert_eq!(hex_value(22, b"a@b"), "#1603614062");
        let long = vec![0x41u8; 200];
        assert!(hex_value(12, &long).starts_with("#0c81c8"));
    }

    #[test]
    fn java_prints_ipv6_uncompressed() {
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(java_ip_text(&v6).unwrap(), "0:0:0:0:0:0:0:1");
        assert_eq!(java_ip_text(&[10, 0, 0, 7]).unwrap(), "10.0.0.7");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(rfc2253_subject(b"not a cert").is_err());
        assert!(!names_address(b"", "127.0.0.1".parse().unwrap()));
    }
}
