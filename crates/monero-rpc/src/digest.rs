//! HTTP digest authentication (RFC 7616, `qop=auth`) as monerod's epee server speaks it.
//!
//! monerod binds a digest nonce to one TCP connection and accepts only `nc` values that
//! go up by exactly one on that connection. A [`Session`] therefore lives with the
//! connection it was negotiated on (see `transport.rs`), which keeps the steady state at
//! one HTTP round trip per call.

use md5::{Digest, Md5};

/// The hash algorithms monerod offers in its `WWW-Authenticate` challenges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Md5,
    Md5Sess,
}

/// One parsed `WWW-Authenticate: Digest ...` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    pub stale: bool,
}

/// Picks the challenge to answer from every `WWW-Authenticate` header value.
///
/// Plain MD5 is preferred when offered: it lets the client hash the credentials once per
/// nonce instead of once per call. Challenges without `qop=auth` or with another algorithm
/// are ignored, because monerod always offers `qop=auth`.
pub(crate) fn choose_challenge<'a>(
    headers: impl IntoIterator<Item = &'a str>,
) -> Option<Challenge> {
    let mut best: Option<Challenge> = None;
    for value in headers {
        let Some(challenge) = parse_challenge(value) else {
            continue;
        };
        let better = match &best {
            None => true,
            Some(b) => b.algorithm == Algorithm::Md5Sess && challenge.algorithm == Algorithm::Md5,
        };
        if better {
            best = Some(challenge);
        }
    }
    best
}

fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let params = parse_params(rest);
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let algorithm = match get("algorithm").unwrap_or("MD5") {
        a if a.eq_ignore_ascii_case("MD5") => Algorithm::Md5,
        a if a.eq_ignore_ascii_case("MD5-sess") => Algorithm::Md5Sess,
        _ => return None,
    };
    let qop_auth =
        get("qop").is_some_and(|q| q.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth")));
    if !qop_auth {
        return None;
    }
    Some(Challenge {
        realm: get("realm")?.to_owned(),
        nonce: get("nonce")?.to_owned(),
        opaque: get("opaque").map(str::to_owned),
        algorithm,
        stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
    })
}

/// Splits `k1="v1", k2=v2` into pairs, honouring quotes and backslash escapes.
fn parse_params(input: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        out.push((key.trim().to_owned(), value.trim().to_owned()));
    }
    out
}

/// The digest state of one connection: the server's nonce and the last `nc` used with it.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    challenge: Challenge,
    /// `H(user:realm:pass)` for MD5, or the session key for MD5-sess.
    ha1: String,
    cnonce: String,
    nc: u32,
}

impl Session {
    pub(crate) fn new(
        challenge: Challenge,
        username: &str,
        password: &str,
        cnonce: String,
    ) -> Self {
        let mut ha1 = md5_hex(format!("{username}:{}:{password}", challenge.realm).as_bytes());
        if challenge.algorithm == Algorithm::Md5Sess {
            ha1 = md5_hex(format!("{ha1}:{}:{cnonce}", challenge.nonce).as_bytes());
        }
        Session {
            challenge,
            ha1,
            cnonce,
            nc: 0,
        }
    }

    /// The `Authorization` header for the next request on this connection.
    pub(crate) fn authorize(&mut self, username: &str, method: &str, uri: &str) -> String {
        self.nc = self.nc.wrapping_add(1);
        let nc = format!("{:08x}", self.nc);
        let ha2 = md5_hex(format!("{method}:{uri}").as_bytes());
        let response = md5_hex(
            format!(
                "{}:{}:{nc}:{}:auth:{ha2}",
                self.ha1, self.challenge.nonce, self.cnonce
            )
            .as_bytes(),
        );
        let algorithm = match self.challenge.algorithm {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
        };
        let mut header = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", algorithm={algorithm}, qop=auth, nc={nc}, cnonce=\"{}\", response=\"{response}\"",
            quote(username),
            quote(&self.challenge.realm),
            quote(&self.challenge.nonce),
            quote(uri),
            quote(&self.cnonce),
        );
        if let Some(opaque) = &self.challenge.opaque {
            header.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
        }
        header
    }
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

pub(crate) fn md5_hex(data: &[u8]) -> String {
    hex(&Md5::digest(data))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A fresh client nonce: 16 random bytes from the OS, falling back to a time-derived
/// value only if the OS refuses, which still keeps nonces unique per process.
pub(crate) fn new_cnonce() -> String {
    let mut buf = [0u8; 16];
    if getrandom::fill(&mut buf).is_err() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        buf = Md5::digest(format!("{now}:{}", std::process::id()).as_bytes()).into();
    }
    hex(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MONEROD: [&str; 2] = [
        r#"Digest qop="auth",algorithm=MD5,realm="monero-rpc",nonce="BEXjZXtTC3SgJtfElmxUFw==",stale=false"#,
        r#"Digest qop="auth",algorithm=MD5-sess,realm="monero-rpc",nonce="BEXjZXtTC3SgJtfElmxUFw==",stale=false"#,
    ];

    #[test]
    fn prefers_md5_over_md5_sess_in_either_order() {
        let c = choose_challenge(MONEROD).unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert_eq!(c.realm, "monero-rpc");
        assert_eq!(c.nonce, "BEXjZXtTC3SgJtfElmxUFw==");
        assert!(!c.stale);
        let c = choose_challenge([MONEROD[1], MONEROD[0]]).unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5);
    }

    #[test]
    fn md5_sess_only_is_accepted_and_stale_is_read() {
        let c = choose_challenge([
            r#"Digest qop="auth",algorithm=MD5-sess,realm="r",nonce="n",stale=true"#,
        ])
        .unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5Sess);
        assert!(c.stale);
    }

    #[test]
    fn ignores_basic_and_unknown_algorithms() {
        assert!(choose_challenge([r#"Basic realm="x""#]).is_none());
        assert!(
            choose_challenge([r#"Digest qop="auth",algorithm=SHA-256,realm="r",nonce="n""#])
                .is_none()
        );
        assert!(
            choose_challenge([r#"Digest realm="r",nonce="n""#]).is_none(),
            "no qop"
        );
    }

    /// The worked example of RFC 2617 section 3.5, with qop=auth.
    #[test]
    fn rfc2617_example_response() {
        let c = Challenge {
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
            algorithm: Algorithm::Md5,
            stale: false,
        };
        let mut s = Session::new(c, "Mufasa", "Circle Of Life", "0a4f113b".into());
        let h = s.authorize("Mufasa", "GET", "/dir/index.html");
        assert!(
            h.contains(r#"response="6629fae49393a05397450978507c4ef1""#),
            "{h}"
        );
        assert!(h.contains("nc=00000001"), "{h}");
        assert!(
            h.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#),
            "{h}"
        );
        let h2 = s.authorize("Mufasa", "GET", "/dir/index.html");
        assert!(h2.contains("nc=00000002"), "{h2}");
    }

    #[test]
    fn quoted_values_keep_commas_and_escapes() {
        let p = parse_params(r#"realm="a, b", nonce="x\"y", qop=auth"#);
        assert_eq!(p[0], ("realm".into(), "a, b".into()));
        assert_eq!(p[1], ("nonce".into(), "x\"y".into()));
        assert_eq!(p[2], ("qop".into(), "auth".into()));
    }

    #[test]
    fn cnonces_differ() {
        assert_ne!(new_cnonce(), new_cnonce());
        assert_eq!(new_cnonce().len(), 32);
    }
}
