//! The DIGEST-MD5 server mechanism (RFC 2831), as the JDK's `DigestMD5Server` runs it
//! for ZooKeeper (`Sasl.createSaslServer("DIGEST-MD5", "zookeeper", "zk-sasl-md5",
//! null, handler)`):
//!
//! 1. Whatever the client's first token (ZooKeeper's clients send an empty one), the
//!    server answers the digest-challenge
//!    `realm="zk-sasl-md5",nonce="<40 base64 chars>",charset=utf-8,algorithm=md5-sess`
//!    (no `qop` directive: its default is `auth`, the only one offered; the nonce is 30
//!    random bytes in base64, as the JDK makes it).
//! 2. The client's digest-response is parsed (directive syntax, each directive at most
//!    once) and checked in the JDK's order: charset `utf-8`, maxbuf a number, username
//!    present, realm `zk-sasl-md5`, our nonce, a cnonce, nonce-count 1, qop `auth`,
//!    digest-uri `zookeeper/zk-sasl-md5` (any case), a response. The password comes
//!    from the JAAS `Server` section ([`SaslServerSettings::password`]); an unknown user
//!    fails. The response must equal the one computed with md5-sess (A1 includes the
//!    authzid when sent); then the server answers `rspauth=<hex>` and is complete.
//! 3. Any token after that, or after a failure, fails ("Server at illegal state").
//!
//! The authorization id is what ZooKeeper's callback handler makes of the
//! authenticated user name ([`super::kerberos::authorized_id`]).
//!
//! Bounded: a token over 4096 bytes is refused before it is parsed (the JDK's
//! `MAX_RESPONSE_LENGTH`), and parsing allocates at most the token's size.
//!
//! Where the JDK throws a runtime exception (a maxbuf or nonce-count that is not a
//! number, a malformed Kerberos name) ZooKeeper's connection ends abnormally; here
//! those fail the login like any other bad response.

use base64::Engine as _;
use md5::{Digest as _, Md5};

use super::{kerberos, SaslServerSettings, PROTOCOL, SERVER_NAME};

/// The JDK's `MAX_RESPONSE_LENGTH`: longer tokens are refused unread.
pub const MAX_RESPONSE_LENGTH: usize = 4096;
/// Random bytes in a nonce (base64: 40 characters), as the JDK's `RAW_NONCE_SIZE`.
pub const RAW_NONCE_SIZE: usize = 30;
/// The only nonce-count a one-shot authentication may use.
const NONCE_COUNT: u32 = 1;

/// Why a SASL exchange failed (the JDK's exception message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SaslError(pub String);

impl SaslError {
    /// A `SaslException` with this message.
    pub fn refused(message: impl Into<String>) -> SaslError {
        SaslError(message.into())
    }
}

/// How the JDK fails, which decides what ZooKeeper does with the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A `SaslException`: ZooKeeper answers AuthFailed (or lets the client go on
    /// with `allowSaslFailedClients`).
    Refused,
    /// A runtime exception (a number that does not parse, a malformed Kerberos
    /// name): ZooKeeper's `processSasl` does not catch it and the connection is
    /// dropped without an answer, whatever `allowSaslFailedClients` says.
    Abnormal,
}

/// A failed [`DigestMd5Server::evaluate_response`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct Failure {
    pub error: SaslError,
    pub kind: FailureKind,
}

impl Failure {
    fn abnormal(message: String) -> Failure {
        Failure {
            error: SaslError(message),
            kind: FailureKind::Abnormal,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.error.0
    }
}

impl From<SaslError> for Failure {
    fn from(error: SaslError) -> Failure {
        Failure {
            error,
            kind: FailureKind::Refused,
        }
    }
}

/// A refused exchange (the JDK's `SaslException`).
fn fail<T>(e: SaslError) -> Result<T, Failure> {
    Err(e.into())
}

fn violation(what: impl std::fmt::Display) -> SaslError {
    SaslError(format!(
        "DIGEST-MD5: digest response format violation. {what}"
    ))
}

/// What the server answers to one client token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// More to do: send this token and wait for the client's next one.
    Challenge(Vec<u8>),
    /// Authenticated: send this token (`rspauth=...`); the session gains
    /// `sasl:<authorization_id>`.
    Complete {
        token: Vec<u8>,
        authorization_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Start,
    /// The challenge with this nonce was sent.
    Challenged {
        nonce: Vec<u8>,
    },
    /// Complete, or failed: nothing more is accepted.
    Over,
}

/// One connection's DIGEST-MD5 server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestMd5Server {
    state: State,
    complete: bool,
    service: Service,
}

/// The protocol and server name (also the realm) a server mechanism answers for:
/// ZooKeeper's client port, or its quorum (`SaslQuorumAuthServer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    pub protocol: &'static str,
    pub server_name: &'static str,
}

impl Service {
    /// `zookeeper/zk-sasl-md5`, client sessions.
    pub const CLIENT: Service = Service {
        protocol: PROTOCOL,
        server_name: SERVER_NAME,
    };
    /// `zookeeper-quorum/zk-quorum-sasl-md5`, between servers.
    pub const QUORUM: Service = Service {
        protocol: "zookeeper-quorum",
        server_name: "zk-quorum-sasl-md5",
    };
}

impl Default for DigestMd5Server {
    fn default() -> Self {
        DigestMd5Server::new()
    }
}

impl DigestMd5Server {
    pub fn new() -> DigestMd5Server {
        DigestMd5Server::for_service(Service::CLIENT)
    }

    /// A server mechanism for `service`.
    pub fn for_service(service: Service) -> DigestMd5Server {
        DigestMd5Server {
            state: State::Start,
            complete: false,
            service,
        }
    }

    /// `isComplete()`.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// `evaluateResponse(token)`.
    pub fn evaluate_response(
        &mut self,
        response: &[u8],
        settings: &SaslServerSettings,
    ) -> Result<Step, Failure> {
        if response.len() > MAX_RESPONSE_LENGTH {
            return fail(SaslError(format!(
                "DIGEST-MD5: Invalid digest response length. Got:  {} Expected < {MAX_RESPONSE_LENGTH}",
                response.len()
            )));
        }
        match std::mem::replace(&mut self.state, State::Over) {
            State::Start => {
                // A non-empty first token would be "subsequent authentication", which
                // the JDK does not support: it answers with a fresh challenge.
                let nonce = base64::engine::general_purpose::STANDARD
                    .encode(settings.draw_nonce())
                    .into_bytes();
                let challenge = challenge(&nonce, self.service);
                self.state = State::Challenged { nonce };
                Ok(Step::Challenge(challenge))
            }
            State::Challenged { nonce } => {
                let fields = parse_directives(response)?;
                let (token, authorization_id) = validate(&fields, &nonce, settings, self.service)?;
                self.complete = true;
                Ok(Step::Complete {
                    token,
                    authorization_id,
                })
            }
            State::Over => fail(SaslError("DIGEST-MD5: Server at illegal state".into())),
        }
    }
}

/// The digest-challenge, byte for byte as the JDK writes it for ZooKeeper.
fn challenge(nonce: &[u8], service: Service) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    out.extend_from_slice(b"realm=\"");
    out.extend_from_slice(service.server_name.as_bytes());
    out.extend_from_slice(b"\",nonce=\"");
    out.extend_from_slice(nonce);
    out.extend_from_slice(b"\",charset=utf-8,algorithm=md5-sess");
    out
}

/// The directives of a digest-response the server reads (`DIRECTIVE_KEY`).
const KEYS: [&str; 13] = [
    "username",
    "realm",
    "nonce",
    "cnonce",
    "nonce-count",
    "qop",
    "digest-uri",
    "response",
    "maxbuf",
    "charset",
    "cipher",
    "authzid",
    "auth-param",
];
const USERNAME: usize = 0;
const REALM: usize = 1;
const NONCE: usize = 2;
const CNONCE: usize = 3;
const NONCE_COUNT_KEY: usize = 4;
const QOP: usize = 5;
const DIGEST_URI: usize = 6;
const RESPONSE: usize = 7;
const MAXBUF: usize = 8;
const CHARSET: usize = 9;
const AUTHZID: usize = 11;

type Fields = [Option<Vec<u8>>; 13];

fn is_lws(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | b' ' | b'\t')
}

fn skip_lws(buf: &[u8], mut i: usize) -> usize {
    while i < buf.len() && is_lws(buf[i]) {
        i += 1;
    }
    i
}

/// `parseDirectives`: `key=value` or `key="quoted\"value"`, separated by commas and
/// linear white space; unknown keys are ignored, a known one given twice is an error.
fn parse_directives(buf: &[u8]) -> Result<Fields, SaslError> {
    let mut fields: Fields = Default::default();
    let mut key: Vec<u8> = Vec::new();
    let mut value: Vec<u8> = Vec::new();
    let mut getting_key = true;
    let mut quoted = false;
    let mut expect_separator = false;
    let mut i = skip_lws(buf, 0);
    while i < buf.len() {
        let b = buf[i];
        if getting_key {
            if b == b',' {
                if !key.is_empty() {
                    return Err(SaslError(format!(
                        "Directive key contains a ',':{}",
                        String::from_utf8_lossy(&key)
                    )));
                }
                i = skip_lws(buf, i + 1);
            } else if b == b'=' {
                if key.is_empty() {
                    return Err(SaslError("Empty directive key".into()));
                }
                getting_key = false;
                i = skip_lws(buf, i + 1);
                if i < buf.len() {
                    if buf[i] == b'"' {
                        quoted = true;
                        i += 1;
                    }
                } else {
                    return Err(SaslError(format!(
                        "Valueless directive found: {}",
                        String::from_utf8_lossy(&key)
                    )));
                }
            } else if is_lws(b) {
                i = skip_lws(buf, i + 1);
                if i >= buf.len() || buf[i] != b'=' {
                    return Err(SaslError(format!(
                        "'=' expected after key: {}",
                        String::from_utf8_lossy(&key)
                    )));
                }
            } else {
                key.push(b);
                i += 1;
            }
        } else if quoted {
            if b == b'\\' {
                i += 1;
                if i < buf.len() {
                    value.push(buf[i]);
                    i += 1;
                } else {
                    return Err(SaslError(format!(
                        "Unmatched quote found for directive: {} with value: {}",
                        String::from_utf8_lossy(&key),
                        String::from_utf8_lossy(&value)
                    )));
                }
            } else if b == b'"' {
                i += 1;
                quoted = false;
                expect_separator = true;
            } else {
                value.push(b);
                i += 1;
            }
        } else if is_lws(b) || b == b',' {
            extract(&mut fields, &key, std::mem::take(&mut value))?;
            key.clear();
            getting_key = true;
            quoted = false;
            expect_separator = false;
            i = skip_lws(buf, i + 1);
        } else if expect_separator {
            return Err(SaslError(format!(
                "Expecting comma or linear whitespace after quoted string: \"{}\"",
                String::from_utf8_lossy(&value)
            )));
        } else {
            value.push(b);
            i += 1;
        }
    }
    if quoted {
        return Err(SaslError(format!(
            "Unmatched quote found for directive: {} with value: {}",
            String::from_utf8_lossy(&key),
            String::from_utf8_lossy(&value)
        )));
    }
    if !key.is_empty() {
        extract(&mut fields, &key, value)?;
    }
    Ok(fields)
}

/// `extractDirective`: keys compare without regard to (ASCII) case.
fn extract(fields: &mut Fields, key: &[u8], value: Vec<u8>) -> Result<(), SaslError> {
    let Some(k) = KEYS
        .iter()
        .position(|k| k.as_bytes().eq_ignore_ascii_case(key))
    else {
        return Ok(());
    };
    if fields[k].is_some() {
        return Err(SaslError(format!(
            "DIGEST-MD5: peer sent more than one {} directive: {}",
            String::from_utf8_lossy(key),
            String::from_utf8_lossy(&value)
        )));
    }
    fields[k] = Some(value);
    Ok(())
}

/// `new String(bytes, UTF_8)`: malformed input replaced, as the JVM does.
fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `Integer.parseInt(s, radix)`: optional sign, at least one digit, fits an i32.
fn java_parse_int(s: &str, radix: u32) -> Option<i32> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for c in digits.chars() {
        v = v * i64::from(radix) + i64::from(c.to_digit(radix)?);
        if v > 1 << 31 {
            return None;
        }
    }
    let v = if neg { -v } else { v };
    i32::try_from(v).ok()
}

/// `validateClientResponse`: the checks in the JDK's order; on success the `rspauth`
/// token and the authorization id.
fn validate(
    f: &Fields,
    nonce: &[u8],
    settings: &SaslServerSettings,
    service: Service,
) -> Result<(Vec<u8>, String), Failure> {
    if let Some(cs) = &f[CHARSET] {
        if cs.as_slice() != b"utf-8" {
            return fail(violation(format!(
                "Incompatible charset value: {}",
                text(cs)
            )));
        }
    }
    if let Some(m) = &f[MAXBUF] {
        if java_parse_int(&text(m), 10).is_none() {
            return Err(Failure::abnormal(format!(
                "NumberFormatException: maxbuf {}",
                text(m)
            )));
        }
    }
    let username = f[USERNAME]
        .as_deref()
        .map(text)
        .ok_or_else(|| violation("Missing username."))?;
    let realm = f[REALM].as_deref().map(text).unwrap_or_default();
    if realm != service.server_name {
        return fail(violation(format!("Nonexistent realm: {realm}")));
    }
    let client_nonce = f[NONCE]
        .as_deref()
        .ok_or_else(|| violation("Missing nonce."))?;
    if client_nonce != nonce {
        return fail(violation("Mismatched nonce."));
    }
    let cnonce = f[CNONCE]
        .as_deref()
        .ok_or_else(|| violation("Missing cnonce."))?;
    if let Some(nc) = &f[NONCE_COUNT_KEY] {
        match java_parse_int(&text(nc), 16) {
            None => {
                return Err(Failure::abnormal(format!(
                    "NumberFormatException: nonce-count {}",
                    text(nc)
                )))
            }
            Some(n) if n != NONCE_COUNT as i32 => {
                return fail(violation(format!(
                    "Nonce count does not match: {}",
                    text(nc)
                )))
            }
            Some(_) => {}
        }
    }
    let qop = f[QOP].as_deref().map(text).unwrap_or_else(|| "auth".into());
    match qop.as_str() {
        "auth" => {}
        "auth-int" | "auth-conf" => {
            return fail(SaslError(format!(
                "DIGEST-MD5: server does not support  qop: {qop}"
            )))
        }
        _ => return fail(violation(format!("Invalid QOP: {qop}"))),
    }
    let expected_uri = format!("{}/{}", service.protocol, service.server_name);
    let digest_uri = f[DIGEST_URI].as_deref().map(text);
    let digest_uri = match digest_uri {
        Some(u) if u.eq_ignore_ascii_case(&expected_uri) => u,
        other => {
            return fail(violation(format!(
                "Mismatched URI: {}; expecting: {expected_uri}",
                other.as_deref().unwrap_or("null")
            )))
        }
    };
    let client_response = f[RESPONSE]
        .as_deref()
        .ok_or_else(|| violation("Missing response."))?;
    let authzid = f[AUTHZID].as_deref();
    let requested = authzid.map(text).unwrap_or_else(|| username.clone());

    let password = settings.password(&username).ok_or_else(|| {
        SaslError(format!(
            "DIGEST-MD5: cannot acquire password for {username} in realm : {realm}"
        ))
    })?;
    let input = ResponseInput {
        digest_uri: &digest_uri,
        qop: &qop,
        username: &username,
        realm: &realm,
        password,
        nonce,
        cnonce,
        nonce_count: NONCE_COUNT,
        authzid,
    };
    let expected = response_value("AUTHENTICATE", &input);
    if !constant_time_eq(client_response, &expected) {
        return fail(violation("Mismatched response."));
    }
    // ZooKeeper's handler throws IllegalArgumentException on a malformed name.
    let authorization_id = kerberos::authorized_id(&username, &requested, &settings.names)
        .map_err(|e| Failure::abnormal(e.0))?;
    let mut token = b"rspauth=".to_vec();
    token.extend_from_slice(&response_value("", &input));
    Ok((token, authorization_id))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The inputs of a response value (RFC 2831 2.1.2.1).
#[derive(Debug, Clone, Copy)]
pub struct ResponseInput<'a> {
    pub digest_uri: &'a str,
    pub qop: &'a str,
    pub username: &'a str,
    pub realm: &'a str,
    pub password: &'a str,
    pub nonce: &'a [u8],
    pub cnonce: &'a [u8],
    pub nonce_count: u32,
    pub authzid: Option<&'a [u8]>,
}

/// The JDK's `stringToByte_8859_1` with UTF-8 on: ISO-8859-1 when every char fits,
/// else UTF-8 (RFC 2831's rule for user name, realm and password).
fn latin1_or_utf8(s: &str) -> Vec<u8> {
    if s.chars().all(|c| (c as u32) <= 0xFF) {
        s.chars().map(|c| c as u8).collect()
    } else {
        s.as_bytes().to_vec()
    }
}

fn hex(digest: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    digest
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]])
        .collect()
}

/// The response value, in lower-case hex: `method` is "AUTHENTICATE" for the client's
/// `response` and "" for the server's `rspauth`.
pub fn response_value(method: &str, v: &ResponseInput<'_>) -> Vec<u8> {
    // A2 = method ":" digest-uri (qop auth: no security-layer suffix)
    let ha2 = hex(&Md5::digest(
        format!("{method}:{}", v.digest_uri).as_bytes(),
    ));
    // A1 = H(user ":" realm ":" password) ":" nonce ":" cnonce [":" authzid]
    let mut secret = latin1_or_utf8(v.username);
    secret.push(b':');
    secret.extend(latin1_or_utf8(v.realm));
    secret.push(b':');
    secret.extend(latin1_or_utf8(v.password));
    let mut a1 = Md5::digest(&secret).to_vec();
    a1.push(b':');
    a1.extend_from_slice(v.nonce);
    a1.push(b':');
    a1.extend_from_slice(v.cnonce);
    if let Some(z) = v.authzid {
        a1.push(b':');
        a1.extend_from_slice(z);
    }
    let ha1 = hex(&Md5::digest(&a1));
    // KD(HEX(H(A1)), nonce ":" nc ":" cnonce ":" qop ":" HEX(H(A2)))
    let mut kd = ha1;
    kd.push(b':');
    kd.extend_from_slice(v.nonce);
    kd.extend_from_slice(format!(":{:08x}:", v.nonce_count).as_bytes());
    kd.extend_from_slice(v.cnonce);
    kd.push(b':');
    kd.extend_from_slice(v.qop.as_bytes());
    kd.push(b':');
    kd.extend_from_slice(&ha2);
    hex(&Md5::digest(&kd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::kerberos::NameRules;
    use rand::SeedableRng;
    use std::collections::HashMap;
    use std::sync::Mutex;

    fn settings(users: &[(&str, &str)]) -> SaslServerSettings {
        SaslServerSettings {
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect::<HashMap<_, _>>(),
            super_password: None,
            names: NameRules::default(),
            nonce_source: Mutex::new(Box::new(rand::rngs::StdRng::seed_from_u64(7))),
        }
    }

    #[test]
    fn rfc2831_worked_example() {
        // RFC 2831 section 4: the IMAP example, user chris, password secret.
        let v = ResponseInput {
            digest_uri: "imap/elwood.innosoft.com",
            qop: "auth",
            username: "chris",
            realm: "elwood.innosoft.com",
            password: "secret",
            nonce: b"OA6MG9tEQGm2hh",
            cnonce: b"OA6MHXh6VqTrRk",
            nonce_count: 1,
            authzid: None,
        };
        assert_eq!(
            response_value("AUTHENTICATE", &v),
            b"d388dad90d4bbd760a152321f2143af7".to_vec()
        );
        assert_eq!(
            response_value("", &v),
            b"ea40f60335c427b5527b84dbabcdfffd".to_vec()
        );
    }

    /// What a client computes from our challenge (the client side of RFC 2831).
    fn client_response(
        challenge: &[u8],
        user: &str,
        password: &str,
        cnonce: &str,
        authzid: Option<&str>,
    ) -> (String, Vec<u8>) {
        let f = parse_challenge(challenge);
        let nonce = f["nonce"].clone();
        let input = ResponseInput {
            digest_uri: "zookeeper/zk-sasl-md5",
            qop: "auth",
            username: user,
            realm: &f["realm"],
            password,
            nonce: nonce.as_bytes(),
            cnonce: cnonce.as_bytes(),
            nonce_count: 1,
            authzid: authzid.map(str::as_bytes),
        };
        let resp = String::from_utf8(response_value("AUTHENTICATE", &input)).unwrap();
        let mut s = format!(
            "charset=utf-8,username=\"{user}\",realm=\"{}\",nonce=\"{nonce}\",nc=00000001,cnonce=\"{cnonce}\",digest-uri=\"zookeeper/zk-sasl-md5\",maxbuf=65536,response={resp},qop=auth",
            f["realm"]
        );
        if let Some(z) = authzid {
            s.push_str(&format!(",authzid=\"{z}\""));
        }
        (s, response_value("", &input))
    }

    fn parse_challenge(c: &[u8]) -> HashMap<String, String> {
        let fields = std::str::from_utf8(c).unwrap();
        fields
            .split(',')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.trim_matches('"').to_string())
            })
            .collect()
    }

    fn challenge_of(server: &mut DigestMd5Server, s: &SaslServerSettings) -> Vec<u8> {
        match server.evaluate_response(b"", s).unwrap() {
            Step::Challenge(c) => c,
            other => panic!("expected a challenge, got {other:?}"),
        }
    }

    #[test]
    fn challenge_has_the_jdk_shape() {
        let s = settings(&[]);
        let mut server = DigestMd5Server::new();
        let c = challenge_of(&mut server, &s);
        let text = String::from_utf8(c).unwrap();
        let nonce = text
            .strip_prefix("realm=\"zk-sasl-md5\",nonce=\"")
            .and_then(|r| r.strip_suffix("\",charset=utf-8,algorithm=md5-sess"))
            .unwrap_or_else(|| panic!("unexpected challenge {text}"));
        assert_eq!(nonce.len(), 40);
        assert!(nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'));
        // Each server draws its own nonce.
        let c2 = challenge_of(&mut DigestMd5Server::new(), &s);
        assert_ne!(c2, text.into_bytes());
        assert!(!server.is_complete());
    }

    #[test]
    fn good_login_completes_with_rspauth() {
        let s = settings(&[("bob", "bobsecret"), ("super", "adminsecret")]);
        let mut server = DigestMd5Server::new();
        let c = challenge_of(&mut server, &s);
        let (resp, rspauth) = client_response(&c, "bob", "bobsecret", "abcdefgh", None);
        let step = server.evaluate_response(resp.as_bytes(), &s).unwrap();
        let mut expected = b"rspauth=".to_vec();
        expected.extend_from_slice(&rspauth);
        assert_eq!(
            step,
            Step::Complete {
                token: expected,
                authorization_id: "bob".into()
            }
        );
        assert!(server.is_complete());
        // Nothing more is accepted.
        assert_eq!(
            server.evaluate_response(b"", &s),
            fail(SaslError::refused("DIGEST-MD5: Server at illegal state"))
        );
    }

    #[test]
    fn authzid_is_part_of_the_hash_but_not_of_the_id() {
        let s = settings(&[("bob", "pw")]);
        let mut server = DigestMd5Server::new();
        let c = challenge_of(&mut server, &s);
        let (resp, _) = client_response(&c, "bob", "pw", "cn", Some("super"));
        match server.evaluate_response(resp.as_bytes(), &s).unwrap() {
            // ZooKeeper's handler names the id after the authenticated user.
            Step::Complete {
                authorization_id, ..
            } => assert_eq!(authorization_id, "bob"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrong_password_and_unknown_user_fail() {
        let s = settings(&[("bob", "bobsecret")]);
        let mut server = DigestMd5Server::new();
        let c = challenge_of(&mut server, &s);
        let (resp, _) = client_response(&c, "bob", "wrong", "cn", None);
        assert_eq!(
            server.evaluate_response(resp.as_bytes(), &s),
            fail(violation("Mismatched response."))
        );
        // A failed server stays failed, even for the right answer.
        let (good, _) = client_response(&c, "bob", "bobsecret", "cn", None);
        assert!(server.evaluate_response(good.as_bytes(), &s).is_err());
        assert!(!server.is_complete());

        let mut server = DigestMd5Server::new();
        let c = challenge_of(&mut server, &s);
        let (resp, _) = client_response(&c, "mallory", "bobsecret", "cn", None);
        let err = server.evaluate_response(resp.as_bytes(), &s).unwrap_err();
        assert!(
            err.message()
                .contains("cannot acquire password for mallory"),
            "{err}"
        );
    }

    #[test]
    fn super_password_property_replaces_a_listed_super() {
        let mut s = settings(&[("super", "jaas")]);
        s.super_password = Some("prop".into());
        assert_eq!(s.password("super"), Some("prop"));
        let s2 = SaslServerSettings {
            super_password: Some("prop".into()),
            ..settings(&[])
        };
        // Not listed in the JAAS section: no password at all, as in ZooKeeper.
        assert_eq!(s2.password("super"), None);
    }

    /// Replaces the directive `key`'s value (or drops it with None) in a good response.
    fn tamper(resp: &str, key: &str, value: Option<&str>) -> String {
        resp.split(',')
            .filter_map(|kv| {
                let (k, _) = kv.split_once('=').unwrap();
                if k == key {
                    value.map(|v| format!("{k}={v}"))
                } else {
                    Some(kv.to_string())
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    #[test]
    fn each_check_refuses_its_violation() {
        let s = settings(&[("bob", "pw")]);
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("charset", Some("iso-8859-1"), "Incompatible charset"),
            ("maxbuf", Some("lots"), "NumberFormatException: maxbuf"),
            ("username", None, "Missing username"),
            ("realm", Some("\"other\""), "Nonexistent realm: other"),
            ("realm", None, "Nonexistent realm: "),
            ("nonce", Some("\"forged\""), "Mismatched nonce"),
            ("nonce", None, "Missing nonce"),
            ("cnonce", None, "Missing cnonce"),
            (
                "nonce-count",
                Some("00000002"),
                "Nonce count does not match",
            ),
            (
                "nonce-count",
                Some("zz"),
                "NumberFormatException: nonce-count",
            ),
            ("qop", Some("auth-conf"), "does not support  qop"),
            ("qop", Some("auth-int"), "does not support  qop"),
            ("qop", Some("bogus"), "Invalid QOP"),
            ("digest-uri", Some("\"zookeeper/other\""), "Mismatched URI"),
            ("digest-uri", None, "Mismatched URI: null"),
            ("response", None, "Missing response"),
        ];
        for (key, value, why) in cases {
            let mut server = DigestMd5Server::new();
            let c = challenge_of(&mut server, &s);
            let (resp, _) = client_response(&c, "bob", "pw", "cn", None);
            let bad = if *key == "nonce-count" {
                // The JDK reads the count from "nonce-count" only (RFC 2831's "nc",
                // which clients send, is an unknown directive to it).
                format!("{resp},nonce-count={}", value.unwrap_or_default())
            } else {
                tamper(&resp, key, *value)
            };
            let err = server.evaluate_response(bad.as_bytes(), &s).unwrap_err();
            assert!(err.message().contains(why), "{key}={value:?}: {err}");
            assert!(!server.is_complete());
        }
    }

    #[test]
    fn uri_compares_without_case_and_keys_too() {
        let s = settings(&[("bob", "pw")]);
        let mut server = DigestMd5Server::new();
        let c = challenge_of(&mut server, &s);
        let (resp, _) = client_response(&c, "bob", "pw", "cn", None);
        // Upper-case keys are the same directives. The URI's case differs, and the
        // response was computed over the lower-case one: the server hashes the URI as
        // the client sent it, so this fails on the response, not on the URI.
        let upper = resp.replace("username=", "USERNAME=").replace(
            "digest-uri=\"zookeeper/zk-sasl-md5\"",
            "digest-uri=\"ZooKeeper/ZK-SASL-MD5\"",
        );
        let err = server.evaluate_response(upper.as_bytes(), &s).unwrap_err();
        assert!(err.message().contains("Mismatched response"), "{err}");
    }

    #[test]
    fn hostile_tokens_fail_cleanly() {
        let s = settings(&[("bob", "pw")]);
        let long = vec![b'a'; MAX_RESPONSE_LENGTH + 1];
        let mut garbage: Vec<Vec<u8>> = vec![
            b"username=\"unterminated".to_vec(),
            b"username=\"x\\".to_vec(),
            b"=value".to_vec(),
            b"key".to_vec(),
            b"username".to_vec(),
            b"username =x".to_vec(),
            b"username x".to_vec(),
            b"username=".to_vec(),
            b"user,name=x".to_vec(),
            b"username=\"a\"b".to_vec(),
            b"username=a,username=b".to_vec(),
            b",,,,".to_vec(),
            vec![0xff, 0xfe, b'=', 0x80],
            vec![0u8; 100],
            b"\r\n\t ".to_vec(),
        ];
        // Every prefix of a good response.
        let mut probe = DigestMd5Server::new();
        let c = challenge_of(&mut probe, &s);
        let (good, _) = client_response(&c, "bob", "pw", "cn", None);
        for n in 0..good.len() {
            garbage.push(good.as_bytes()[..n].to_vec());
        }
        for g in &garbage {
            let mut server = DigestMd5Server::new();
            challenge_of(&mut server, &s);
            assert!(server.evaluate_response(g, &s).is_err(), "{g:?}");
            assert!(!server.is_complete());
        }
        // Over the length bound: refused before parsing, in any state.
        let mut server = DigestMd5Server::new();
        let err = server.evaluate_response(&long, &s).unwrap_err();
        assert!(
            err.message().contains("Invalid digest response length"),
            "{err}"
        );
        // The first token's content does not matter, as long as it is within bounds.
        assert!(matches!(
            server.evaluate_response(b"anything", &s),
            Ok(Step::Challenge(_))
        ));
    }

    #[test]
    fn directive_parser_follows_the_jdk() {
        // LWS may surround '=' and separators; empty elements are skipped; unknown
        // keys are ignored.
        let f =
            parse_directives(b"  username = \"b\\\"o\\\\b\" ,, realm=r  , x-unknown=1,qop=auth")
                .unwrap();
        assert_eq!(f[USERNAME].as_deref(), Some(&b"b\"o\\b"[..]));
        assert_eq!(f[REALM].as_deref(), Some(&b"r"[..]));
        assert_eq!(f[QOP].as_deref(), Some(&b"auth"[..]));
        // Multibyte user names: UTF-8 on the wire, ISO-8859-1 in the hash when they fit.
        assert_eq!(latin1_or_utf8("é"), vec![0xe9]);
        assert_eq!(latin1_or_utf8("ł"), "ł".as_bytes().to_vec());
    }
}
