//! How Java prints the values the four-letter words contain: `Double.toString`,
//! `Date.toString`, `InetSocketAddress.toString`, `Long.toHexString`. Tools that parse
//! ZooKeeper's output (monitoring scripts, kazoo, zkCli) see the same text from corral.

use std::net::{IpAddr, SocketAddr};

/// `Long.toHexString`: two's-complement, lower case, no leading zeros.
pub fn hex(v: i64) -> String {
    format!("{:x}", v as u64)
}

/// `Double.toString` (JDK 19+, shortest representation): plain decimal with at least
/// one fractional digit for 1e-3 <= |x| < 1e7, else computerized scientific notation
/// such as `1.0E7` or `1.5E-4`.
pub fn double(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = x.abs();
    if x == 0.0 || (1e-3..1e7).contains(&a) {
        // Rust's Debug is the shortest round-trip form and keeps ".0" on integers.
        let s = format!("{x:?}");
        if s.contains('e') {
            // Debug switches to exponent form only far outside this range; never here.
            return format!("{x}");
        }
        return s;
    }
    let s = format!("{x:e}"); // e.g. "1.5e-4", "1e7"
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mant = if mant.contains('.') {
        mant.to_string()
    } else {
        format!("{mant}.0")
    };
    format!("{mant}E{exp}")
}

/// `AvgMinMaxCounter.getAvg`: the mean rounded half-up to 4 decimals (0 when empty).
pub fn avg4(total: i64, count: i64) -> f64 {
    if count <= 0 {
        return 0.0;
    }
    let avg = total as f64 / count as f64;
    (avg * 10_000.0).round() / 10_000.0
}

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Date.toString` for a wall-clock time in ms since the epoch, in UTC:
/// `EEE MMM dd HH:mm:ss zzz yyyy`, e.g. `Sun Nov 22 00:25:57 UTC 2026`.
pub fn date(epoch_ms: i64) -> String {
    let secs = epoch_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        y
    )
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `InetSocketAddress.toString` of an unresolved-name address (JDK 14+):
/// `/127.0.0.1:2181`, `/[0:0:0:0:0:0:0:1]:2181` (IPv6 uncompressed, as
/// `Inet6Address.getHostAddress`; IPv4-mapped addresses print as IPv4, as Java maps them).
pub fn socket_addr(addr: &SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(v4) => format!("/{}:{}", v4, addr.port()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("/{}:{}", v4, addr.port()),
            None => {
                let segs: Vec<String> = v6.segments().iter().map(|s| format!("{s:x}")).collect();
                format!("/[{}]:{}", segs.join(":"), addr.port())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_like_java() {
        assert_eq!(double(0.0), "0.0");
        assert_eq!(double(1.0), "1.0");
        assert_eq!(double(2.3571), "2.3571");
        assert_eq!(double(76.3333), "76.3333");
        assert_eq!(double(7.75), "7.75");
        assert_eq!(double(0.1429), "0.1429");
        assert_eq!(double(1e7), "1.0E7");
        assert_eq!(double(12345678.5), "1.23456785E7");
        assert_eq!(double(0.00015), "1.5E-4");
        assert_eq!(double(-2.5), "-2.5");
    }

    #[test]
    fn averages_round_half_up_to_four_places() {
        assert_eq!(avg4(33, 14), 2.3571);
        assert_eq!(avg4(229, 3), 76.3333);
        assert_eq!(avg4(2, 3), 0.6667);
        assert_eq!(avg4(0, 0), 0.0);
        assert_eq!(double(avg4(14, 14)), "1.0");
    }

    #[test]
    fn dates_print_like_java_date_to_string_in_utc() {
        assert_eq!(date(1795307157000), "Sun Nov 22 00:25:57 UTC 2026");
        assert_eq!(date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(date(951782400000), "Tue Feb 29 00:00:00 UTC 2000");
        assert_eq!(date(-1000), "Wed Dec 31 23:59:59 UTC 1969");
    }

    #[test]
    fn socket_addresses_print_like_java() {
        assert_eq!(
            socket_addr(&"127.0.0.1:58530".parse().unwrap()),
            "/127.0.0.1:58530"
        );
        assert_eq!(
            socket_addr(&"[::1]:2181".parse().unwrap()),
            "/[0:0:0:0:0:0:0:1]:2181"
        );
        assert_eq!(
            socket_addr(&"[fe80::1:abcd]:1".parse().unwrap()),
            "/[fe80:0:0:0:0:0:1:abcd]:1"
        );
        assert_eq!(
            socket_addr(&"[::ffff:10.0.0.1]:5".parse().unwrap()),
            "/10.0.0.1:5"
        );
    }

    #[test]
    fn hex_is_twos_complement() {
        assert_eq!(hex(0x10000088a300000), "10000088a300000");
        assert_eq!(hex(-1), "ffffffffffffffff");
        assert_eq!(hex(0), "0");
    }
}
