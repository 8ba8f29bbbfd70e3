//! The client side of SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), as Kafka uses
//! it: no channel binding (`n,,`), no SASLprep beyond UTF-8, and the broker's signature
//! checked before the connection counts as authenticated.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// The fewest PBKDF2 iterations accepted (Kafka's minimum, and RFC 7677's recommendation).
pub(crate) const MIN_ITERATIONS: u32 = 4096;
/// The most PBKDF2 iterations accepted: Kafka stores at most 16384, so more is a hostile or
/// broken server asking the client to burn CPU.
pub(crate) const MAX_ITERATIONS: u32 = 100_000;
/// The longest server message accepted.
const MAX_MESSAGE: usize = 4096;

/// The hash of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec(),
            ScramHash::Sha512 => pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec(),
        }
    }
}

/// One SCRAM exchange: `client_first`, then `client_final` with the server's first message,
/// then `verify_server_final` with its last.
pub(crate) struct ScramClient {
    hash: ScramHash,
    password: Vec<u8>,
    nonce: String,
    client_first_bare: String,
    /// The signature the server must send back, known after `client_final`.
    expected_server_signature: Option<Vec<u8>>,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient").field("hash", &self.hash).finish_non_exhaustive()
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl ScramClient {
    /// A client with a fresh random nonce.
    /// `token_auth`: log in with a delegation token (the `tokenauth=true` extension).
    pub(crate) fn new(hash: ScramHash, username: &str, password: &str, token_auth: bool) -> ScramClient {
        let bytes: [u8; 24] = rand::random();
        let mut c = Self::with_nonce(hash, username, password, &b64().encode(bytes));
        if token_auth {
            // RFC 5802 extensions follow the nonce; Kafka's ScramExtensions reads `tokenauth`.
            c.client_first_bare.push_str(",tokenauth=true");
        }
        c
    }

    /// A client with the given nonce (test vectors).
    pub(crate) fn with_nonce(hash: ScramHash, username: &str, password: &str, nonce: &str) -> ScramClient {
        let user = username.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            hash,
            password: password.as_bytes().to_vec(),
            nonce: nonce.to_owned(),
            client_first_bare: format!("n={user},r={nonce}"),
            expected_server_signature: None,
        }
    }

    /// `client-first-message`: the GS2 header (no channel binding) and the bare message.
    pub(crate) fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Checks `server-first-message` and answers with `client-final-message` (the proof).
    pub(crate) fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let msg = text(server_first, "server-first-message")?;
        let mut attrs = msg.split(',');
        let mut next = |key: &str| -> Result<&str, String> {
            let a = attrs.next().ok_or_else(|| format!("server-first-message lacks {key}="))?;
            if a.starts_with("m=") {
                return Err("the server requires a SCRAM extension this client does not know (m=)".into());
            }
            if a.starts_with("e=") {
                return Err(format!("the server reported {a}"));
            }
            a.strip_prefix(key)
                .and_then(|v| v.strip_prefix('='))
                .ok_or_else(|| format!("server-first-message: expected {key}=, got {:?}", truncated(a)))
        };
        let nonce = next("r")?;
        let salt = next("s")?;
        let iterations = next("i")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the server's nonce does not extend the client's nonce".into());
        }
        if !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',') {
            return Err("the server's nonce has characters outside printable ASCII".into());
        }
        let salt = b64().decode(salt).map_err(|e| format!("the salt is not valid base64: {e}"))?;
        if salt.is_empty() {
            return Err("the salt is empty".into());
        }
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| format!("iteration count {:?} is not a number", truncated(iterations)))?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!(
                "iteration count {iterations} is outside {MIN_ITERATIONS}..={MAX_ITERATIONS}"
            ));
        }
        let h = self.hash;
        let salted = h.salted_password(&self.password, &salt, iterations);
        let client_key = h.hmac(&salted, b"Client Key");
        let stored_key = h.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{msg},{without_proof}", self.client_first_bare);
        let client_signature = h.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&client_signature).map(|(a, b)| a ^ b).collect();
        let server_key = h.hmac(&salted, b"Server Key");
        self.expected_server_signature = Some(h.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", b64().encode(proof)).into_bytes())
    }

    /// Checks `server-final-message`: the server's signature must be the one only a holder
    /// of the credential can compute.
    pub(crate) fn verify_server_final(&self, server_final: &[u8]) -> Result<(), String> {
        let msg = text(server_final, "server-final-message")?;
        let expected = self
            .expected_server_signature
            .as_ref()
            .ok_or("server-final-message before client-final-message")?;
        if let Some(e) = msg.strip_prefix("e=") {
            return Err(format!("the server reported error {:?}", truncated(e)));
        }
        let v = msg
            .split(',')
            .next()
            .and_then(|a| a.strip_prefix("v="))
            .ok_or_else(|| format!("server-final-message: expected v=, got {:?}", truncated(msg)))?;
        let got = b64().decode(v).map_err(|e| format!("the server signature is not valid base64: {e}"))?;
        // Constant-time comparison: the length is public, the bytes are compared in full.
        let same = got.len() == expected.len() && got.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if !same {
            return Err("the server's signature does not match: the broker does not know this \
                        credential (or someone in between is impersonating it)"
                .into());
        }
        Ok(())
    }
}

fn text<'a>(b: &'a [u8], what: &str) -> Result<&'a str, String> {
    if b.len() > MAX_MESSAGE {
        return Err(format!("{what} of {} bytes is longer than {MAX_MESSAGE}", b.len()));
    }
    std::str::from_utf8(b).map_err(|_| format!("{what} is not UTF-8"))
}

fn truncated(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3.
    #[test]
    fn rfc7677_sha256_vector() {
        let mut c = ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(c.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let fin = c.client_final(server_first).unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap();
    }

    /// The server side, written from RFC 5802's formulas, for SHA-512 (which has no RFC
    /// vector): it checks the client's proof the way a broker does and signs back.
    fn server_check(hash: ScramHash, password: &str, client_first: &[u8], server_first: &str, client_final: &[u8]) -> String {
        let salted = hash.salted_password(password.as_bytes(), b"salt-512", 4096);
        let client_key = hash.hmac(&salted, b"Client Key");
        let stored_key = hash.hash(&client_key);
        let cf = std::str::from_utf8(client_final).unwrap();
        let (without_proof, proof) = cf.rsplit_once(",p=").unwrap();
        let bare = std::str::from_utf8(&client_first[3..]).unwrap();
        let auth = format!("{bare},{server_first},{without_proof}");
        let sig = hash.hmac(&stored_key, auth.as_bytes());
        let proof = b64().decode(proof).unwrap();
        let recovered: Vec<u8> = proof.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        assert_eq!(hash.hash(&recovered), stored_key, "client proof does not verify");
        let server_key = hash.hmac(&salted, b"Server Key");
        format!("v={}", b64().encode(hash.hmac(&server_key, auth.as_bytes())))
    }

    #[test]
    fn sha512_exchange_verifies_both_ways_and_escapes_the_user_name() {
        let mut c = ScramClient::new(ScramHash::Sha512, "a,b=c", "secret", false);
        let first = c.client_first();
        let s = String::from_utf8(first.clone()).unwrap();
        assert!(s.starts_with("n,,n=a=2Cb=3Dc,r="), "{s}");
        let server_first = format!("r={}srv,s={},i=4096", c.nonce, b64().encode(b"salt-512"));
        let fin = c.client_final(server_first.as_bytes()).unwrap();
        let server_final = server_check(ScramHash::Sha512, "secret", &first, &server_first, &fin);
        c.verify_server_final(server_final.as_bytes()).unwrap();
        // A server that does not know the password cannot sign.
        let mut c2 = ScramClient::new(ScramHash::Sha512, "u", "secret", false);
        let server_first = format!("r={}srv,s={},i=4096", c2.nonce, b64().encode(b"salt-512"));
        c2.client_final(server_first.as_bytes()).unwrap();
        let forged = format!("v={}", b64().encode([7u8; 64]));
        let e = c2.verify_server_final(forged.as_bytes()).unwrap_err();
        assert!(e.contains("signature does not match"), "{e}");
    }

    #[test]
    fn server_signature_mismatch_and_server_errors_are_rejected() {
        let mut c = ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        c.client_final(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096").unwrap();
        let e = c.verify_server_final(b"v=AAAiTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let e = c.verify_server_final(b"v=short").unwrap_err();
        assert!(e.contains("base64") || e.contains("does not match"), "{e}");
        let e = c.verify_server_final(b"e=invalid-proof").unwrap_err();
        assert!(e.contains("invalid-proof"), "{e}");
        let e = c.verify_server_final(b"x=1").unwrap_err();
        assert!(e.contains("expected v="), "{e}");
        let fresh = ScramClient::new(ScramHash::Sha256, "u", "p", false);
        assert!(fresh.verify_server_final(b"v=AAAA").unwrap_err().contains("before"));
    }

    #[test]
    fn malformed_server_first_messages_are_clear_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"r=someoneelse123,s=QUJD,i=4096", "does not extend"),
            (b"r=nonce,s=QUJD,i=4096", "does not extend"),
            (b"r=nonceX,s=QUJD,i=0", "outside"),
            (b"r=nonceX,s=QUJD,i=4294967295", "outside"),
            (b"r=nonceX,s=QUJD,i=99999999999999", "not a number"),
            (b"r=nonceX,s=QUJD,i=-5", "not a number"),
            (b"r=nonceX,s=!!notbase64!!,i=4096", "base64"),
            (b"r=nonceX,s=,i=4096", "empty"),
            (b"r=nonceX,s=QUJD", "lacks i="),
            (b"m=ext,r=nonceX,s=QUJD,i=4096", "extension"),
            (b"e=unknown-user", "unknown-user"),
            (b"s=QUJD,r=nonceX,i=4096", "expected r="),
            (b"", "expected r="),
            (b"\xff\xfe", "UTF-8"),
            (b"r=nonce\x01X,s=QUJD,i=4096", "printable"),
        ];
        for (msg, want) in cases {
            let mut c = ScramClient::with_nonce(ScramHash::Sha256, "u", "p", "nonce");
            let e = c.client_final(msg).unwrap_err();
            assert!(e.contains(want), "{:?}: {e}", String::from_utf8_lossy(msg));
        }
        let mut c = ScramClient::with_nonce(ScramHash::Sha256, "u", "p", "nonce");
        let huge = vec![b'r'; MAX_MESSAGE + 1];
        assert!(c.client_final(&huge).unwrap_err().contains("longer than"));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = ScramClient::new(ScramHash::Sha256, "user", "hunter2", false);
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
