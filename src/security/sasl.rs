//! SASL over Kafka (KIP-43, KIP-152, KIP-368): SaslHandshake names the mechanism, then
//! SaslAuthenticate requests carry the mechanism's messages until the broker accepts or
//! refuses. The same exchange runs at connect (after ApiVersions) and again on a live
//! connection before the session lifetime the broker announced runs out.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::{Request, StrBytes};
use tracing::debug;

use super::oauth::{self, TokenCache};
use super::scram::{ScramClient, ScramHash};
use crate::security::settings::SaslConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{self, Frame};
use crate::wire::{self, DecodeResult};

/// The largest `auth_bytes` accepted from a broker; no mechanism here sends more than a
/// few hundred bytes.
pub(crate) const MAX_AUTH_BYTES: usize = 64 * 1024;

/// Sends one request frame on a connection and returns its response frame. Implemented by
/// the connection handle (first authentication) and by the connection task itself
/// (re-authentication, while it holds back other requests).
pub(crate) trait AuthChannel: Send {
    fn round_trip(&mut self, frame: Frame, api_key: i16) -> impl Future<Output = Result<Bytes>> + Send;
}

/// The negotiated versions of the two SASL APIs on one connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SaslVersions {
    pub handshake: i16,
    pub authenticate: i16,
}

/// The mechanism and credentials of one client; shared by its connections.
pub(crate) struct Authenticator {
    config: SaslConfig,
    tokens: Option<TokenCache>,
}

impl Authenticator {
    pub(crate) fn new(config: SaslConfig) -> Authenticator {
        let tokens = match &config {
            SaslConfig::OAuthBearer(p) => Some(TokenCache::new(p.clone())),
            _ => None,
        };
        Authenticator { config, tokens }
    }

    pub(crate) fn mechanism(&self) -> &'static str {
        self.config.mechanism()
    }

    /// Runs SaslHandshake + SaslAuthenticate over `ch`. Returns the session lifetime the
    /// broker announced (KIP-368), if any: the connection must re-authenticate before it ends.
    pub(crate) async fn authenticate<C: AuthChannel>(
        &self,
        ch: &mut C,
        versions: SaslVersions,
        client_id: &str,
        broker: &str,
    ) -> Result<Option<Duration>> {
        let mech = self.mechanism();
        let fail = |detail: String| Error::Authentication { broker: broker.to_owned(), mechanism: mech, detail };

        let req = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mech));
        let frame = protocol::encode_request(&req, versions.handshake, client_id, broker)?;
        let resp = ch.round_trip(frame.into(), SaslHandshakeRequest::KEY).await?;
        let (code, enabled) = decode_handshake(resp).map_err(|d| protocol_error(broker, "SaslHandshake", d))?;
        match ErrorCode::from_code(code) {
            None => {}
            Some(ErrorCode::UnsupportedSaslMechanism) => {
                return Err(fail(format!(
                    "the broker does not enable {mech} on this listener; it enables {}",
                    if enabled.is_empty() { "none".to_owned() } else { enabled.join(", ") }
                )));
            }
            Some(c) => return Err(fail(format!("SaslHandshake answered {c}"))),
        }

        let mut step = Step { ch, versions, client_id, broker, mech, lifetime_ms: 0 };
        match &self.config {
            SaslConfig::Plain { username, password } => {
                let mut msg = Vec::with_capacity(username.len() + password.len() + 2);
                msg.push(0);
                msg.extend_from_slice(username.as_bytes());
                msg.push(0);
                msg.extend_from_slice(password.as_bytes());
                step.send(msg).await?;
            }
            SaslConfig::ScramSha256 { username: user, password: secret }
            | SaslConfig::ScramSha512 { username: user, password: secret }
            | SaslConfig::DelegationToken { token_id: user, hmac_base64: secret, .. } => {
                let hash = if mech == "SCRAM-SHA-256" { ScramHash::Sha256 } else { ScramHash::Sha512 };
                let token = matches!(self.config, SaslConfig::DelegationToken { .. });
                let mut scram = ScramClient::new(hash, user, secret, token);
                let server_first = step.send(scram.client_first()).await?;
                let client_final = scram.client_final(&server_first).map_err(fail)?;
                let server_final = step.send(client_final).await?;
                scram.verify_server_final(&server_final).map_err(fail)?;
            }
            SaslConfig::OAuthBearer(_) => {
                let cache = self.tokens.as_ref().expect("OAUTHBEARER has a token cache");
                let token = cache.token().await.map_err(fail)?;
                oauth::check_extensions(&token).map_err(fail)?;
                let challenge = step.send(oauth::initial_response(&token)).await?;
                if !challenge.is_empty() {
                    // RFC 7628 3.2.3: an error status; the client answers with a lone ^A and
                    // the broker then fails the exchange.
                    let status = String::from_utf8_lossy(&challenge[..challenge.len().min(512)]).into_owned();
                    let _ = step.send(vec![1]).await;
                    return Err(fail(format!("the broker refused the token: {status}")));
                }
            }
        }
        let lifetime = step.lifetime_ms;
        debug!(broker, mechanism = mech, session_lifetime_ms = lifetime, "authenticated");
        Ok((lifetime > 0).then(|| Duration::from_millis(lifetime as u64)))
    }
}

/// One SaslAuthenticate round trip at a time.
struct Step<'a, C> {
    ch: &'a mut C,
    versions: SaslVersions,
    client_id: &'a str,
    broker: &'a str,
    mech: &'static str,
    lifetime_ms: i64,
}

impl<C: AuthChannel> Step<'_, C> {
    async fn send(&mut self, auth_bytes: Vec<u8>) -> Result<Bytes> {
        let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(auth_bytes));
        let frame = protocol::encode_request(&req, self.versions.authenticate, self.client_id, self.broker)?;
        let resp = self.ch.round_trip(frame.into(), SaslAuthenticateRequest::KEY).await?;
        let r = decode_authenticate(resp, self.versions.authenticate)
            .map_err(|d| protocol_error(self.broker, "SaslAuthenticate", d))?;
        if let Some(code) = ErrorCode::from_code(r.error_code) {
            let msg = r.error_message.filter(|m| !m.is_empty()).unwrap_or_else(|| code.description().to_owned());
            return Err(Error::Authentication {
                broker: self.broker.to_owned(),
                mechanism: self.mech,
                detail: format!("{}: {msg}", code.name()),
            });
        }
        self.lifetime_ms = r.session_lifetime_ms;
        Ok(r.auth_bytes)
    }
}

fn protocol_error(broker: &str, api: &str, detail: String) -> Error {
    Error::Protocol { broker: broker.to_owned(), detail: format!("{api} response: {detail}") }
}

/// SaslHandshake v0/v1 response (header v0): error code and the enabled mechanisms.
fn decode_handshake(mut r: Bytes) -> DecodeResult<(i16, Vec<String>)> {
    wire::i32_(&mut r)?; // correlation id
    let code = wire::i16_(&mut r)?;
    let n = wire::array_len(&mut r, false, 2, "mechanisms")?.unwrap_or(0);
    let mut names = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        names.push(wire::string(&mut r, false)?.to_string());
    }
    Ok((code, names))
}

struct AuthenticateResponse {
    error_code: i16,
    error_message: Option<String>,
    auth_bytes: Bytes,
    session_lifetime_ms: i64,
}

/// SaslAuthenticate v0–v2 response (v2 is flexible, header v1), with `auth_bytes` bounded.
fn decode_authenticate(mut r: Bytes, version: i16) -> DecodeResult<AuthenticateResponse> {
    let flexible = version >= 2;
    wire::i32_(&mut r)?;
    if flexible {
        wire::skip_tags(&mut r)?;
    }
    let error_code = wire::i16_(&mut r)?;
    let error_message = wire::nullable_string(&mut r, flexible)?.map(|s| s.to_string());
    let auth_bytes = wire::bytes(&mut r, flexible)?.unwrap_or_default();
    if auth_bytes.len() > MAX_AUTH_BYTES {
        return Err(format!("auth_bytes of {} bytes, more than {MAX_AUTH_BYTES}", auth_bytes.len()));
    }
    let session_lifetime_ms = if version >= 1 { wire::i64_(&mut r)? } else { 0 };
    if flexible {
        wire::skip_tags(&mut r)?;
    }
    Ok(AuthenticateResponse { error_code, error_message, auth_bytes, session_lifetime_ms })
}

/// A scripted broker side for unit tests of the exchange.
#[cfg(test)]
pub(crate) struct ScriptedChannel {
    /// Response bodies (after the correlation id) in order.
    pub answers: std::collections::VecDeque<Bytes>,
    pub sent: Vec<(i16, usize)>,
}

#[cfg(test)]
impl AuthChannel for ScriptedChannel {
    async fn round_trip(&mut self, frame: Frame, api_key: i16) -> Result<Bytes> {
        self.sent.push((api_key, frame.len()));
        let body = self.answers.pop_front().expect("a scripted answer");
        let mut out = bytes::BytesMut::from(&0i32.to_be_bytes()[..]);
        out.extend_from_slice(&body);
        Ok(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};

    fn handshake_ok() -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(0);
        b.put_i32(1);
        b.put_i16(5);
        b.put_slice(b"PLAIN");
        b.freeze()
    }

    /// SaslAuthenticate v1 body.
    fn auth_v1(code: i16, msg: Option<&str>, auth: &[u8], lifetime: i64) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(code);
        match msg {
            Some(m) => {
                b.put_i16(m.len() as i16);
                b.put_slice(m.as_bytes());
            }
            None => b.put_i16(-1),
        }
        b.put_i32(auth.len() as i32);
        b.put_slice(auth);
        b.put_i64(lifetime);
        b.freeze()
    }

    const V: SaslVersions = SaslVersions { handshake: 1, authenticate: 1 };

    fn plain() -> Authenticator {
        Authenticator::new(SaslConfig::Plain { username: "alice".into(), password: "s3cret".into() })
    }

    #[tokio::test]
    async fn plain_success_reports_the_session_lifetime() {
        let mut ch = ScriptedChannel { answers: [handshake_ok(), auth_v1(0, None, b"", 3000)].into(), sent: vec![] };
        let life = plain().authenticate(&mut ch, V, "c", "b:1").await.unwrap();
        assert_eq!(life, Some(Duration::from_millis(3000)));
        assert_eq!(ch.sent.iter().map(|s| s.0).collect::<Vec<_>>(), vec![17, 36]);
    }

    #[tokio::test]
    async fn unsupported_mechanism_names_what_the_broker_enables() {
        let mut b = BytesMut::new();
        b.put_i16(33);
        b.put_i32(2);
        for m in ["SCRAM-SHA-256", "GSSAPI"] {
            b.put_i16(m.len() as i16);
            b.put_slice(m.as_bytes());
        }
        let mut ch = ScriptedChannel { answers: [b.freeze()].into(), sent: vec![] };
        let e = plain().authenticate(&mut ch, V, "c", "b:1").await.unwrap_err();
        assert!(matches!(e, Error::Authentication { mechanism: "PLAIN", .. }), "{e}");
        assert!(e.to_string().contains("enables SCRAM-SHA-256, GSSAPI"), "{e}");
        assert!(!e.is_retriable());
    }

    #[tokio::test]
    async fn a_refusal_carries_the_broker_message_and_never_the_password() {
        let mut ch = ScriptedChannel {
            answers: [handshake_ok(), auth_v1(58, Some("Invalid username or password"), b"", 0)].into(),
            sent: vec![],
        };
        let e = plain().authenticate(&mut ch, V, "c", "b:1").await.unwrap_err();
        let s = e.to_string();
        assert!(s.contains("SASL_AUTHENTICATION_FAILED") && s.contains("Invalid username"), "{s}");
        assert!(!s.contains("s3cret") && !format!("{e:?}").contains("s3cret"));
    }

    #[tokio::test]
    async fn hostile_responses_are_protocol_errors() {
        // A mechanism array claiming 2^31-1 entries.
        let mut b = BytesMut::new();
        b.put_i16(33);
        b.put_i32(i32::MAX);
        let mut ch = ScriptedChannel { answers: [b.freeze()].into(), sent: vec![] };
        let e = plain().authenticate(&mut ch, V, "c", "b:1").await.unwrap_err();
        assert!(matches!(e, Error::Protocol { .. }), "{e}");
        // auth_bytes over the cap.
        let big = vec![b'x'; MAX_AUTH_BYTES + 1];
        let mut ch = ScriptedChannel { answers: [handshake_ok(), auth_v1(0, None, &big, 0)].into(), sent: vec![] };
        let e = plain().authenticate(&mut ch, V, "c", "b:1").await.unwrap_err();
        assert!(e.to_string().contains("auth_bytes"), "{e}");
        // Truncated.
        let mut ch = ScriptedChannel { answers: [handshake_ok(), Bytes::from_static(&[0, 0, 0])].into(), sent: vec![] };
        assert!(matches!(plain().authenticate(&mut ch, V, "c", "b:1").await.unwrap_err(), Error::Protocol { .. }));
    }

    #[tokio::test]
    async fn scram_against_a_server_that_cannot_sign_is_refused() {
        let a = Authenticator::new(SaslConfig::ScramSha256 { username: "u".into(), password: "p".into() });
        // The server-first message needs the client's nonce, so answer through a channel that
        // reads the client-first message.
        struct Echo(u8);
        impl AuthChannel for Echo {
            async fn round_trip(&mut self, frame: Frame, _key: i16) -> Result<Bytes> {
                self.0 += 1;
                let mut body = BytesMut::new();
                match self.0 {
                    1 => body.extend_from_slice(&handshake_ok()),
                    2 => {
                        let head = &frame.head[..];
                        let at = head.windows(3).position(|w| w == b",r=").map(|p| p + 3).unwrap();
                        let nonce = std::str::from_utf8(&head[at..]).unwrap();
                        let first = format!("r={nonce}xyz,s=c2FsdA==,i=4096");
                        body.extend_from_slice(&auth_v1(0, None, first.as_bytes(), 0));
                    }
                    _ => body.extend_from_slice(&auth_v1(0, None, b"v=AAAA", 0)),
                }
                let mut out = BytesMut::from(&0i32.to_be_bytes()[..]);
                out.extend_from_slice(&body);
                Ok(out.freeze())
            }
        }
        let e = a.authenticate(&mut Echo(0), V, "c", "b:1").await.unwrap_err();
        assert!(matches!(e, Error::Authentication { mechanism: "SCRAM-SHA-256", .. }), "{e}");
        assert!(e.to_string().contains("signature does not match"), "{e}");
    }
}
