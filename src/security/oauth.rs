//! OAUTHBEARER tokens: the application's provider and the per-client cache that asks it for
//! a new token before the cached one expires.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use futures::future::BoxFuture;

use crate::error::Result;

/// A bearer token for SASL/OAUTHBEARER (KIP-255).
///
/// `Debug` never shows the token itself.
#[derive(Clone)]
pub struct OAuthBearerToken {
    /// The token as sent to the broker (a JWT, usually). Secret.
    pub value: String,
    /// When the token stops being valid. The client asks its provider for a new token once
    /// 80 % of the time between fetching and expiry has passed (the Java client's
    /// `sasl.login.refresh.window.factor` default).
    pub expires_at: SystemTime,
    /// SASL extensions (`key=value` pairs sent after the token, KIP-342). Default none.
    pub extensions: Vec<(String, String)>,
}

impl fmt::Debug for OAuthBearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthBearerToken")
            .field("value", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("extensions", &self.extensions.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish()
    }
}

impl OAuthBearerToken {
    /// A token of `value` valid until `expires_at`, without extensions.
    pub fn new(value: impl Into<String>, expires_at: SystemTime) -> OAuthBearerToken {
        OAuthBearerToken { value: value.into(), expires_at, extensions: Vec::new() }
    }

    /// An unsecured JWT (`"alg":"none"`, no signature) for `principal`, valid for
    /// `lifetime`: what Kafka's built-in unsecured validator
    /// (`OAuthBearerUnsecuredValidatorCallbackHandler`, the broker default when no OAUTHBEARER
    /// validator is configured) accepts. For development and tests only: anyone can make
    /// one. Production brokers validate signed tokens from an identity provider.
    pub fn unsecured(principal: &str, lifetime: Duration) -> OAuthBearerToken {
        let now = SystemTime::now();
        let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let expires_at = now + lifetime;
        let header = b64(r#"{"alg":"none"}"#);
        let claims = b64(&format!(
            r#"{{"sub":{},"iat":{:.3},"exp":{:.3}}}"#,
            json_string(principal),
            secs(now),
            secs(expires_at)
        ));
        OAuthBearerToken::new(format!("{header}.{claims}."), expires_at)
    }
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The application's source of OAUTHBEARER tokens (the Java client's login callback
/// handler): fetch a token from an identity provider, read one from a file, ...
///
/// Called when a connection authenticates and no cached token is fresh: the first time, and
/// again once 80 % of the cached token's lifetime has passed. An error fails the connection
/// attempt with [`Error::Authentication`](crate::Error::Authentication).
///
/// ```
/// use std::time::Duration;
/// use futures::future::BoxFuture;
/// use ferrokafka::security::{OAuthBearerToken, OAuthBearerTokenProvider};
///
/// #[derive(Debug)]
/// struct DevTokens;
///
/// impl OAuthBearerTokenProvider for DevTokens {
///     fn token(&self) -> BoxFuture<'_, ferrokafka::Result<OAuthBearerToken>> {
///         Box::pin(async { Ok(OAuthBearerToken::unsecured("alice", Duration::from_secs(3600))) })
///     }
/// }
/// ```
pub trait OAuthBearerTokenProvider: fmt::Debug + Send + Sync + 'static {
    /// A token valid for a while from now.
    fn token(&self) -> BoxFuture<'_, Result<OAuthBearerToken>>;
}

/// The token shared by every connection of a client, asked anew before it expires.
pub(crate) struct TokenCache {
    provider: Arc<dyn OAuthBearerTokenProvider>,
    cached: tokio::sync::Mutex<Option<(OAuthBearerToken, SystemTime)>>,
}

/// Refresh once this share of the time between fetching and expiry has passed.
const REFRESH_WINDOW: f64 = 0.8;

impl TokenCache {
    pub(crate) fn new(provider: Arc<dyn OAuthBearerTokenProvider>) -> TokenCache {
        TokenCache { provider, cached: tokio::sync::Mutex::new(None) }
    }

    /// A token that is not yet in its refresh window; asks the provider when needed.
    pub(crate) async fn token(&self) -> std::result::Result<OAuthBearerToken, String> {
        let mut cached = self.cached.lock().await;
        let now = SystemTime::now();
        if let Some((t, fetched)) = &*cached {
            if now < refresh_at(*fetched, t.expires_at) {
                return Ok(t.clone());
            }
        }
        let t = self.provider.token().await.map_err(|e| format!("the token provider failed: {e}"))?;
        if t.expires_at <= now {
            return Err("the token provider returned an expired token".into());
        }
        if t.value.is_empty() || t.value.contains('\u{1}') {
            return Err("the token provider returned an empty token or one containing \\x01".into());
        }
        *cached = Some((t.clone(), now));
        Ok(t)
    }
}

fn refresh_at(fetched: SystemTime, expires: SystemTime) -> SystemTime {
    let life = expires.duration_since(fetched).unwrap_or(Duration::ZERO);
    fetched + life.mul_f64(REFRESH_WINDOW)
}

/// The client's first (and only) message: the GS2 header, the token and the extensions
/// (RFC 7628 section 3.1).
pub(crate) fn initial_response(t: &OAuthBearerToken) -> Vec<u8> {
    let mut s = format!("n,,\u{1}auth=Bearer {}\u{1}", t.value);
    for (k, v) in &t.extensions {
        s.push_str(&format!("{k}={v}\u{1}"));
    }
    s.push('\u{1}');
    s.into_bytes()
}

/// Refuses extensions that would break the message framing.
pub(crate) fn check_extensions(t: &OAuthBearerToken) -> std::result::Result<(), String> {
    for (k, v) in &t.extensions {
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphabetic()) || k == "auth" {
            return Err(format!("extension name {k:?} must be ASCII letters and not \"auth\""));
        }
        if v.contains('\u{1}') {
            return Err(format!("extension {k:?} contains \\x01"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug)]
    struct Counting(AtomicU32, Duration);
    impl OAuthBearerTokenProvider for Counting {
        fn token(&self) -> BoxFuture<'_, Result<OAuthBearerToken>> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            let life = self.1;
            Box::pin(async move { Ok(OAuthBearerToken::unsecured(&format!("user{n}"), life)) })
        }
    }

    #[tokio::test]
    async fn the_cache_asks_again_only_inside_the_refresh_window() {
        let p = Arc::new(Counting(AtomicU32::new(0), Duration::from_secs(3600)));
        let cache = TokenCache::new(p.clone());
        let a = cache.token().await.unwrap();
        let b = cache.token().await.unwrap();
        assert_eq!(a.value, b.value);
        assert_eq!(p.0.load(Ordering::SeqCst), 1);

        let p = Arc::new(Counting(AtomicU32::new(0), Duration::from_millis(200)));
        let cache = TokenCache::new(p.clone());
        let a = cache.token().await.unwrap();
        tokio::time::sleep(Duration::from_millis(170)).await; // past 80 % of 200 ms
        let b = cache.token().await.unwrap();
        assert_ne!(a.value, b.value);
        assert_eq!(p.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn unsecured_tokens_are_jws_with_alg_none_and_debug_hides_them() {
        let t = OAuthBearerToken::unsecured("al\"ice", Duration::from_secs(60));
        let parts: Vec<&str> = t.value.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "");
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1]).unwrap();
        let claims = String::from_utf8(claims).unwrap();
        assert!(claims.starts_with(r#"{"sub":"al\"ice","iat":"#), "{claims}");
        let dbg = format!("{t:?}");
        assert!(!dbg.contains(parts[1]) && dbg.contains("<redacted>"), "{dbg}");
        let msg = initial_response(&t);
        assert!(msg.starts_with(b"n,,\x01auth=Bearer ") && msg.ends_with(b"\x01\x01"));
    }
}
