//! The DIGEST-MD5 client mechanism (RFC 2831), as the JDK's `DigestMD5Client` runs it
//! for a ZooKeeper learner authenticating to the quorum (`SaslQuorumAuthLearner`:
//! protocol `zookeeper-quorum`, server name `zk-quorum-sasl-md5`, the JAAS
//! `QuorumLearner` section's `username`/`password`).
//!
//! 1. No initial response: the learner's first token is empty.
//! 2. The server's digest-challenge gives realm, nonce, qop (default `auth`, the only
//!    one used), charset and `algorithm=md5-sess`; the answer is the digest-response
//!    with a fresh cnonce and nonce-count 1.
//! 3. The server's `rspauth` must be the value the same secret gives; then the client
//!    is complete.
//!
//! Sans-IO: the cnonce's random bytes come from the caller.

use base64::Engine as _;

use super::digest_md5::{response_value, ResponseInput, MAX_RESPONSE_LENGTH};

/// Why the client's side of an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ClientSaslError(pub String);

fn fail(m: impl Into<String>) -> ClientSaslError {
    ClientSaslError(m.into())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Waiting for the challenge.
    Start,
    /// The response was sent; `rspauth` must equal this.
    Responded {
        rspauth: Vec<u8>,
    },
    Over,
}

/// One exchange's DIGEST-MD5 client.
#[derive(Debug, Clone)]
pub struct DigestMd5Client {
    username: String,
    password: String,
    digest_uri: String,
    state: State,
    complete: bool,
}

impl DigestMd5Client {
    /// A client for `protocol/server_name` (the digest-uri) as `username`.
    pub fn new(username: &str, password: &str, protocol: &str, server_name: &str) -> Self {
        DigestMd5Client {
            username: username.to_string(),
            password: password.to_string(),
            digest_uri: format!("{protocol}/{server_name}"),
            state: State::Start,
            complete: false,
        }
    }

    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// `evaluateChallenge(challenge)`: the token to send, or `None` once the server's
    /// `rspauth` checked out. `cnonce_raw` seeds the cnonce (used on the challenge only).
    pub fn evaluate_challenge(
        &mut self,
        challenge: &[u8],
        cnonce_raw: &[u8],
    ) -> Result<Option<Vec<u8>>, ClientSaslError> {
        if challenge.len() > MAX_RESPONSE_LENGTH {
            return Err(fail("DIGEST-MD5: challenge too long"));
        }
        match std::mem::replace(&mut self.state, State::Over) {
            State::Start => {
                let d = directives(challenge)?;
                let get = |k: &str| d.iter().find(|(n, _)| n.eq_ignore_ascii_case(k));
                let nonce = get("nonce")
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| fail("DIGEST-MD5: the challenge has no nonce"))?;
                let realm = get("realm").map(|(_, v)| v.clone()).unwrap_or_default();
                if let Some((_, qop)) = get("qop") {
                    let offered = String::from_utf8_lossy(qop);
                    if !offered.split(',').any(|q| q.trim() == "auth") {
                        return Err(fail(format!(
                            "DIGEST-MD5: the server offers qop {offered}, not auth"
                        )));
                    }
                }
                if get("algorithm").is_none_or(|(_, a)| a.as_slice() != b"md5-sess") {
                    return Err(fail(
                        "DIGEST-MD5: the challenge does not say algorithm=md5-sess",
                    ));
                }
                let cnonce = base64::engine::general_purpose::STANDARD
                    .encode(cnonce_raw)
                    .into_bytes();
                let realm_text = String::from_utf8_lossy(&realm).into_owned();
                let input = ResponseInput {
                    digest_uri: &self.digest_uri,
                    qop: "auth",
                    username: &self.username,
                    realm: &realm_text,
                    password: &self.password,
                    nonce: &nonce,
                    cnonce: &cnonce,
                    nonce_count: 1,
                    authzid: None,
                };
                let response = response_value("AUTHENTICATE", &input);
                let rspauth = response_value("", &input);
                let mut out = Vec::with_capacity(256);
                out.extend_from_slice(b"charset=utf-8,username=\"");
                out.extend_from_slice(&quote(self.username.as_bytes()));
                out.extend_from_slice(b"\",realm=\"");
                out.extend_from_slice(&quote(&realm));
                out.extend_from_slice(b"\",nonce=\"");
                out.extend_from_slice(&quote(&nonce));
                out.extend_from_slice(b"\",nc=00000001,cnonce=\"");
                out.extend_from_slice(&cnonce);
                out.extend_from_slice(b"\",digest-uri=\"");
                out.extend_from_slice(self.digest_uri.as_bytes());
                out.extend_from_slice(b"\",maxbuf=65536,response=");
                out.extend_from_slice(&response);
                out.extend_from_slice(b",qop=auth");
                self.state = State::Responded { rspauth };
                Ok(Some(out))
            }
            State::Responded { rspauth } => {
                let d = directives(challenge)?;
                let got = d
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("rspauth"))
                    .map(|(_, v)| v.as_slice());
                if got != Some(rspauth.as_slice()) {
                    return Err(fail(
                        "DIGEST-MD5: the server's rspauth is wrong (it does not know our password)",
                    ));
                }
                self.complete = true;
                Ok(None)
            }
            State::Over => Err(fail("DIGEST-MD5: client at illegal state")),
        }
    }
}

/// Backslash-escapes `"` and `\` inside a quoted-string.
fn quote(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    for &b in v {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// `name=value` or `name="quoted"` directives, comma separated.
fn directives(t: &[u8]) -> Result<Vec<(String, Vec<u8>)>, ClientSaslError> {
    let bad = || fail("DIGEST-MD5: malformed directives");
    let mut out = Vec::new();
    let mut i = 0;
    let skip = |i: &mut usize| {
        while *i < t.len() && (t[*i] == b' ' || t[*i] == b'\t' || t[*i] == b',') {
            *i += 1;
        }
    };
    loop {
        skip(&mut i);
        if i >= t.len() {
            return Ok(out);
        }
        let start = i;
        while i < t.len() && t[i] != b'=' {
            i += 1;
        }
        if i >= t.len() {
            return Err(bad());
        }
        let name = String::from_utf8_lossy(&t[start..i]).trim().to_string();
        i += 1;
        let mut value = Vec::new();
        if t.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match t.get(i) {
                    None => return Err(bad()),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        value.push(*t.get(i + 1).ok_or_else(bad)?);
                        i += 2;
                    }
                    Some(&b) => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
        } else {
            while i < t.len() && t[i] != b',' {
                value.push(t[i]);
                i += 1;
            }
            while value.last().is_some_and(|b| *b == b' ') {
                value.pop();
            }
        }
        out.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::digest_md5::{DigestMd5Server, Step};
    use crate::sasl::SaslServerSettings;
    use std::collections::HashMap;

    fn server(users: &[(&str, &str)]) -> SaslServerSettings {
        SaslServerSettings::new(
            users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect::<HashMap<_, _>>(),
            None,
            Default::default(),
        )
    }

    /// The client against the server mechanism: right password completes both sides,
    /// a wrong one fails at the server.
    #[test]
    fn client_and_server_agree() {
        let settings = server(&[("learner", "s3cret")]);
        let run = |password: &str| {
            let mut s = DigestMd5Server::new();
            let mut c = DigestMd5Client::new(
                "learner",
                password,
                crate::sasl::PROTOCOL,
                crate::sasl::SERVER_NAME,
            );
            let Step::Challenge(ch) = s.evaluate_response(b"", &settings).unwrap() else {
                panic!("a challenge first");
            };
            let resp = c.evaluate_challenge(&ch, b"cnonce-bytes").unwrap().unwrap();
            match s.evaluate_response(&resp, &settings) {
                Ok(Step::Complete {
                    token,
                    authorization_id,
                }) => {
                    assert_eq!(authorization_id, "learner");
                    assert_eq!(c.evaluate_challenge(&token, b"").unwrap(), None);
                    assert!(c.is_complete());
                    true
                }
                Ok(other) => panic!("unexpected {other:?}"),
                Err(_) => false,
            }
        };
        assert!(run("s3cret"));
        assert!(!run("wrong"));
    }

    #[test]
    fn a_forged_rspauth_is_refused() {
        let mut c = DigestMd5Client::new("u", "p", "zookeeper-quorum", "zk-quorum-sasl-md5");
        let ch = br#"realm="zk-quorum-sasl-md5",nonce="abc",charset=utf-8,algorithm=md5-sess"#;
        let resp = c.evaluate_challenge(ch, b"x").unwrap().unwrap();
        let text = String::from_utf8(resp).unwrap();
        assert!(
            text.contains(r#"digest-uri="zookeeper-quorum/zk-quorum-sasl-md5""#),
            "{text}"
        );
        assert!(c.evaluate_challenge(b"rspauth=0000", b"").is_err());
    }

    #[test]
    fn malformed_challenges_fail_cleanly() {
        for ch in [
            &b"nonce=\"unterminated"[..],
            b"noequals",
            b"realm=\"r\"",
            b"nonce=\"n\",qop=\"auth-conf\",algorithm=md5-sess",
        ] {
            let mut c = DigestMd5Client::new("u", "p", "a", "b");
            assert!(c.evaluate_challenge(ch, b"x").is_err(), "{ch:?}");
        }
    }
}
