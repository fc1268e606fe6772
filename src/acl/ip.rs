//! The `ip` scheme, as ZooKeeper's `IPAuthenticationProvider`: an ACL id is an IPv4 or
//! IPv6 address with an optional `/bits` prefix length, matched against the address the
//! client connected from.
//!
//! Parsing follows ZooKeeper's own parser, not a general one, because which strings are
//! valid ACL ids is client-visible (setACL answers InvalidACL for the rest): a dotted quad
//! of `Integer.parseInt` numbers, or 8 hex groups of at most 4 characters with at most
//! one `::`; no embedded IPv4 in IPv6, no zone ids. (IPv6 ids follow ZooKeeper 3.9's
//! parser; ZooKeeper 3.8.0 rejected every IPv6 id.)

use std::net::IpAddr;

use super::java::parse_int;

/// The address as ZooKeeper parses it: 4 bytes for IPv4, 16 for IPv6, None if it is
/// neither. A ':' anywhere means IPv6, else a '.' means IPv4.
fn addr_to_bytes(addr: &str) -> Option<Vec<u8>> {
    if addr.contains(':') {
        v6_to_bytes(addr)
    } else if addr.contains('.') {
        v4_to_bytes(addr)
    } else {
        None
    }
}

fn v4_to_bytes(addr: &str) -> Option<Vec<u8>> {
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    parts
        .iter()
        .map(|p| {
            let v = parse_int(p, 10)?;
            u8::try_from(v).ok()
        })
        .collect()
}

fn v6_to_bytes(addr: &str) -> Option<Vec<u8>> {
    const SEGMENTS: usize = 8;
    // Java's split("::", -1): non-overlapping, left to right, keeping empty pieces.
    let parts: Vec<&str> = addr.split("::").collect();
    let (head, tail): (Vec<&str>, Vec<&str>) = match parts.as_slice() {
        [whole] => {
            let head: Vec<&str> = whole.split(':').collect();
            if head.len() != SEGMENTS {
                return None;
            }
            (head, Vec::new())
        }
        [before, after] => {
            let head = if before.is_empty() {
                Vec::new()
            } else {
                before.split(':').collect()
            };
            let tail = if after.is_empty() {
                Vec::new()
            } else {
                after.split(':').collect()
            };
            // "::" must stand for at least one group.
            if head.len() + tail.len() >= SEGMENTS {
                return None;
            }
            (head, tail)
        }
        _ => return None,
    };
    let mut out = vec![0u8; 16];
    let mut write = |start: usize, segments: &[&str]| -> Option<()> {
        let mut i = start;
        for seg in segments {
            // Java checks String.length() (UTF-16 units); anything non-ASCII fails
            // parseInt below anyway.
            if seg.is_empty() || seg.chars().count() > 4 {
                return None;
            }
            // parseInt accepts a sign, so "-1" is the group 0xffff, as in ZooKeeper.
            let v = parse_int(seg, 16)?;
            out[i] = ((v >> 8) & 0xff) as u8;
            out[i + 1] = (v & 0xff) as u8;
            i += 2;
        }
        Some(())
    };
    write(0, &head)?;
    write(16 - tail.len() * 2, &tail)?;
    Some(out)
}

/// Keeps the first `bits` bits of `b`, zeroing the rest.
fn mask(b: &mut [u8], bits: usize) {
    let start = bits / 8;
    let rem = bits % 8;
    if start < b.len() {
        b[start] &= !(((1u16 << (8 - rem)) - 1) as u8);
        for x in &mut b[start + 1..] {
            *x = 0;
        }
    }
}

/// Splits "addr[/bits]" into its address bytes and prefix length, validated as
/// `IPAuthenticationProvider.isValid` does.
fn parse_expr(expr: &str) -> Option<(Vec<u8>, usize)> {
    let mut parts = expr.splitn(2, '/');
    let addr = addr_to_bytes(parts.next().unwrap_or(""))?;
    let max = addr.len() * 8;
    let bits = match parts.next() {
        None => max,
        Some(b) => {
            let b = parse_int(b, 10)?;
            let b = usize::try_from(b).ok()?;
            if b > max {
                return None;
            }
            b
        }
    };
    Some((addr, bits))
}

/// `IPAuthenticationProvider.isValid`: whether `id` may appear in an ACL.
pub fn is_valid(id: &str) -> bool {
    parse_expr(id).is_some()
}

/// `IPAuthenticationProvider.matches`: whether the client address `id` (as
/// [`host_address`] formats it) falls in the ACL expression `acl_expr`.
pub fn matches(id: &str, acl_expr: &str) -> bool {
    let Some((mut acl_addr, bits)) = parse_expr(acl_expr) else {
        return false;
    };
    let Some(mut remote) = addr_to_bytes(id) else {
        return false;
    };
    mask(&mut acl_addr, bits);
    mask(&mut remote, bits);
    // An IPv4 client never matches an IPv6 expression, nor the reverse.
    remote == acl_addr
}

/// The text Java's `InetAddress.getHostAddress()` gives for a client address, which
/// ZooKeeper uses as the connection's `ip` id: dotted quad for IPv4; for IPv6 eight
/// lowercase hex groups without leading zeros and without `::` compression. An
/// IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 client) is shown as
/// the IPv4 address, as Java converts it to an `Inet4Address`.
pub fn host_address(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6
                .segments()
                .iter()
                .map(|s| format!("{s:x}"))
                .collect::<Vec<_>>()
                .join(":"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_parsing() {
        assert_eq!(addr_to_bytes("10.1.2.3"), Some(vec![10, 1, 2, 3]));
        assert_eq!(addr_to_bytes("+10.-0.002.3"), Some(vec![10, 0, 2, 3]));
        assert_eq!(addr_to_bytes("1.2.3"), None);
        assert_eq!(addr_to_bytes("1.2.3.4.5"), None);
        assert_eq!(addr_to_bytes("256.1.1.1"), None);
        assert_eq!(addr_to_bytes("1.2.3."), None);
        assert_eq!(addr_to_bytes("-1.2.3.4"), None);
        assert_eq!(addr_to_bytes("abc"), None);
        assert_eq!(addr_to_bytes(""), None);
    }

    #[test]
    fn v6_parsing() {
        let mut loopback = vec![0u8; 16];
        loopback[15] = 1;
        assert_eq!(addr_to_bytes("::1"), Some(loopback.clone()));
        assert_eq!(addr_to_bytes("0:0:0:0:0:0:0:1"), Some(loopback));
        assert_eq!(addr_to_bytes("::"), Some(vec![0u8; 16]));
        let mut fe80 = vec![0u8; 16];
        fe80[0] = 0xfe;
        fe80[1] = 0x80;
        assert_eq!(addr_to_bytes("fe80::"), Some(fe80));
        assert_eq!(
            addr_to_bytes("2001:DB8::ff00:42:8329"),
            Some(vec![
                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0x00, 0x00, 0x42, 0x83, 0x29
            ])
        );
        // A sign is accepted by Integer.parseInt: "-1" is 0xffff.
        let mut neg = vec![0u8; 16];
        neg[14] = 0xff;
        neg[15] = 0xff;
        assert_eq!(addr_to_bytes("::-1"), Some(neg));
        // Too many / too few groups, doubled "::", long or bad groups, embedded IPv4.
        assert_eq!(addr_to_bytes("1:2:3:4:5:6:7"), None);
        assert_eq!(addr_to_bytes("1:2:3:4:5:6:7:8:9"), None);
        assert_eq!(addr_to_bytes("1:2:3:4::5:6:7:8"), None);
        assert_eq!(addr_to_bytes("1::2::3"), None);
        assert_eq!(addr_to_bytes(":::"), None);
        assert_eq!(addr_to_bytes("::12345"), None);
        assert_eq!(addr_to_bytes("::g"), None);
        assert_eq!(addr_to_bytes("1:2:3:4:5:6:7:"), None);
        assert_eq!(addr_to_bytes("::ffff:1.2.3.4"), None);
        assert_eq!(addr_to_bytes("fe80::1%eth0"), None);
    }

    #[test]
    fn validity() {
        // Reference values from ZooKeeper's IPAuthenticationProvider.isValid.
        assert!(is_valid("10.0.0.0/8"));
        assert!(is_valid("1.2.3.4/0"));
        assert!(is_valid("1.2.3.4/32"));
        assert!(is_valid("-0.1.2.3"));
        assert!(!is_valid("1.2.3.4/33"));
        assert!(!is_valid("1.2.3.4/-1"));
        assert!(!is_valid("1.2.3.4/"));
        assert!(!is_valid("1.2.3.4/8/8"));
        assert!(!is_valid("1.2.3"));
        assert!(!is_valid("256.1.1.1"));
        assert!(!is_valid(""));
        assert!(!is_valid("abc"));
        assert!(!is_valid("/8"));
        assert!(is_valid("::1"));
        assert!(is_valid("2001:db8::/32"));
        assert!(is_valid("::/128"));
        assert!(!is_valid("::/129"));
    }

    #[test]
    fn matching_v4() {
        // Reference values from ZooKeeper's IPAuthenticationProvider.matches.
        assert!(matches("10.1.2.3", "10.0.0.0/8"));
        assert!(!matches("11.1.2.3", "10.0.0.0/8"));
        assert!(matches("10.1.2.3", "10.1.2.3"));
        assert!(!matches("10.1.2.3", "10.1.2.4"));
        assert!(matches("10.1.2.3", "+10.1.2.3/+8"));
        assert!(!matches("10.1.2.3", "10.1.2.3/33"));
        assert!(!matches("10.1.2.3", "10.1.2.3/"));
        assert!(matches("10.1.2.3", "10.1.2.0/24"));
        assert!(matches("10.1.2.255", "10.1.2.128/25"));
        assert!(!matches("10.1.2.127", "10.1.2.128/25"));
        assert!(matches("192.168.1.1", "0.0.0.0/0"));
        assert!(!matches("not-an-ip", "0.0.0.0/0"));
    }

    #[test]
    fn matching_v6() {
        assert!(matches("0:0:0:0:0:0:0:1", "::1"));
        assert!(matches("2001:db8:0:0:0:0:0:5", "2001:db8::/32"));
        assert!(!matches("2001:db9:0:0:0:0:0:5", "2001:db8::/32"));
        assert!(matches("2001:db8:0:0:0:0:0:5", "2001:db8::/33"));
        assert!(matches("fe80:0:0:0:0:0:0:1", "fe80::/10"));
        assert!(matches("febf:0:0:0:0:0:0:1", "fe80::/10"));
        assert!(!matches("fec0:0:0:0:0:0:0:1", "fe80::/10"));
        // Families never match each other, even with a zero-length prefix.
        assert!(!matches("10.1.2.3", "::/0"));
        assert!(!matches("0:0:0:0:0:0:0:1", "0.0.0.0/0"));
    }

    #[test]
    fn host_address_like_java() {
        assert_eq!(host_address("10.1.2.3".parse().unwrap()), "10.1.2.3");
        assert_eq!(host_address("::1".parse().unwrap()), "0:0:0:0:0:0:0:1");
        assert_eq!(
            host_address("2001:DB8::ff00:42:8329".parse().unwrap()),
            "2001:db8:0:0:0:ff00:42:8329"
        );
        assert_eq!(host_address("::ffff:10.0.0.7".parse().unwrap()), "10.0.0.7");
    }
}
