//! SCRAM credentials, client quotas, delegation tokens.
//!
//! ```no_run
//! # async fn demo(admin: ferrokafka::admin::AdminClient) -> ferrokafka::Result<()> {
//! use ferrokafka::admin::*;
//!
//! // A SCRAM-SHA-512 login for bob (the salted password is computed here, as Java does).
//! let alter = UserScramCredentialAlteration::upsert("bob", ScramMechanism::ScramSha512, 8192, "bob-secret");
//! for r in admin.alter_user_scram_credentials([alter], Default::default()).await? {
//!     r.result?;
//! }
//! // At most 1 MB/s of produce for bob.
//! let bob = ClientQuotaEntity::new().user("bob");
//! let set = ClientQuotaAlteration::new(bob.clone()).set("producer_byte_rate", 1_048_576.0);
//! admin.alter_client_quotas([set], Default::default()).await?;
//! let quotas = admin.describe_client_quotas(&ClientQuotaFilter::contains([
//!     ClientQuotaFilterComponent::exact("user", "bob"),
//! ]), Default::default()).await?;
//! println!("{quotas:?}");
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::alter_client_quotas_request::{EntityData as AlterEntity, EntryData as AlterEntry, OpData};
use kafka_protocol::messages::alter_user_scram_credentials_request::{ScramCredentialDeletion, ScramCredentialUpsertion};
use kafka_protocol::messages::create_delegation_token_request::CreatableRenewers;
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_delegation_token_request::DescribeDelegationTokenOwner;
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterUserScramCredentialsRequest, CreateDelegationTokenRequest, DescribeClientQuotasRequest,
    DescribeDelegationTokenRequest, DescribeUserScramCredentialsRequest, ExpireDelegationTokenRequest,
    RenewDelegationTokenRequest,
};
use kafka_protocol::protocol::StrBytes;
use sha2::{Sha256, Sha512};

use super::route::Target;
use super::AdminClient;
use crate::error::{Error, ErrorCode, Result};

fn str(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

// ---------------------------------------------------------------------------------------
// SCRAM credentials
// ---------------------------------------------------------------------------------------

/// A SCRAM mechanism (Java's `ScramMechanism`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
    /// A mechanism code this client does not know; never valid in a request.
    Unknown(i8),
}

impl ScramMechanism {
    /// The wire code (1 for SHA-256, 2 for SHA-512).
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::ScramSha256 => 1,
            ScramMechanism::ScramSha512 => 2,
            ScramMechanism::Unknown(c) => c,
        }
    }

    /// The mechanism of a wire code.
    pub fn from_code(code: i8) -> ScramMechanism {
        match code {
            1 => ScramMechanism::ScramSha256,
            2 => ScramMechanism::ScramSha512,
            c => ScramMechanism::Unknown(c),
        }
    }

    /// The salted password (RFC 5802 `Hi`, PBKDF2 with the mechanism's HMAC), as Java's
    /// `ScramFormatter.hi`.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Option<Vec<u8>> {
        match self {
            ScramMechanism::ScramSha256 => Some(pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec()),
            ScramMechanism::ScramSha512 => Some(pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec()),
            ScramMechanism::Unknown(_) => None,
        }
    }
}

/// The fewest iterations Kafka accepts for a SCRAM credential.
pub const SCRAM_MIN_ITERATIONS: i32 = 4096;
/// The most iterations Kafka accepts for a SCRAM credential.
pub const SCRAM_MAX_ITERATIONS: i32 = 16384;

/// One SCRAM credential of a user, without its secret (Java's `ScramCredentialInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScramCredentialInfo {
    /// The mechanism.
    pub mechanism: ScramMechanism,
    /// The PBKDF2 iteration count.
    pub iterations: i32,
}

/// A user's SCRAM credentials, as [`AdminClient::describe_user_scram_credentials`]
/// reports them.
#[derive(Debug)]
pub struct UserScramCredentialsDescription {
    /// The user name.
    pub user: String,
    /// Its credentials (one per mechanism), sorted; or the broker's error for the user
    /// (`RESOURCE_NOT_FOUND` for a user with no SCRAM credential).
    pub result: Result<Vec<ScramCredentialInfo>>,
}

/// Options of [`AdminClient::describe_user_scram_credentials`].
#[derive(Debug, Clone, Default)]
pub struct DescribeUserScramCredentialsOptions {
    /// The call's timeout; `None` (the default) uses `default_api_timeout`.
    pub timeout: Option<Duration>,
}

/// A change to one SCRAM credential (Java's `UserScramCredentialUpsertion` and
/// `UserScramCredentialDeletion`).
#[derive(Clone, PartialEq, Eq)]
pub enum UserScramCredentialAlteration {
    /// Creates or replaces the user's credential for the mechanism.
    Upsert {
        /// The user name; not empty.
        user: String,
        /// The mechanism; not `Unknown`.
        mechanism: ScramMechanism,
        /// PBKDF2 iterations, [`SCRAM_MIN_ITERATIONS`]..=[`SCRAM_MAX_ITERATIONS`] (the range
        /// Kafka accepts; checked here so that no time is spent hashing a credential the
        /// broker refuses).
        iterations: i32,
        /// The password; not empty. Only its salted hash is sent.
        password: String,
        /// The salt; `None` (the default of [`UserScramCredentialAlteration::upsert`]) takes
        /// a random one, as Java's `ScramFormatter.secureRandomBytes` (the base-36 text of a
        /// 130-bit random number).
        salt: Option<Vec<u8>>,
    },
    /// Deletes the user's credential for the mechanism.
    Delete {
        /// The user name; not empty.
        user: String,
        /// The mechanism; not `Unknown`.
        mechanism: ScramMechanism,
    },
}

impl std::fmt::Debug for UserScramCredentialAlteration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserScramCredentialAlteration::Upsert { user, mechanism, iterations, salt, .. } => f
                .debug_struct("Upsert")
                .field("user", user)
                .field("mechanism", mechanism)
                .field("iterations", iterations)
                .field("salt", &salt.as_ref().map(|_| "<given>"))
                .finish_non_exhaustive(),
            UserScramCredentialAlteration::Delete { user, mechanism } => {
                f.debug_struct("Delete").field("user", user).field("mechanism", mechanism).finish()
            }
        }
    }
}

impl UserScramCredentialAlteration {
    /// An upsert with a random salt.
    pub fn upsert(
        user: impl Into<String>,
        mechanism: ScramMechanism,
        iterations: i32,
        password: impl Into<String>,
    ) -> UserScramCredentialAlteration {
        UserScramCredentialAlteration::Upsert {
            user: user.into(),
            mechanism,
            iterations,
            password: password.into(),
            salt: None,
        }
    }

    /// A deletion.
    pub fn delete(user: impl Into<String>, mechanism: ScramMechanism) -> UserScramCredentialAlteration {
        UserScramCredentialAlteration::Delete { user: user.into(), mechanism }
    }

    /// Sets the salt of an upsert (no effect on a deletion).
    pub fn with_salt(mut self, s: impl Into<Vec<u8>>) -> UserScramCredentialAlteration {
        if let UserScramCredentialAlteration::Upsert { salt, .. } = &mut self {
            *salt = Some(s.into());
        }
        self
    }

    /// The user the alteration is about.
    pub fn user(&self) -> &str {
        match self {
            UserScramCredentialAlteration::Upsert { user, .. } | UserScramCredentialAlteration::Delete { user, .. } => user,
        }
    }

    fn check(&self) -> std::result::Result<(), String> {
        let (user, mechanism) = match self {
            UserScramCredentialAlteration::Upsert { user, mechanism, .. }
            | UserScramCredentialAlteration::Delete { user, mechanism } => (user, mechanism),
        };
        if user.is_empty() {
            return Err("user name must not be empty".into());
        }
        if matches!(mechanism, ScramMechanism::Unknown(_)) {
            return Err(format!("user {user}: unknown SCRAM mechanism {mechanism:?}"));
        }
        if let UserScramCredentialAlteration::Upsert { password, iterations, salt, .. } = self {
            if password.is_empty() {
                return Err(format!("user {user}: password must not be empty"));
            }
            if !(SCRAM_MIN_ITERATIONS..=SCRAM_MAX_ITERATIONS).contains(iterations) {
                return Err(format!(
                    "user {user}: iterations must be {SCRAM_MIN_ITERATIONS}..={SCRAM_MAX_ITERATIONS}, got {iterations}"
                ));
            }
            if matches!(salt, Some(s) if s.is_empty()) {
                return Err(format!("user {user}: salt must not be empty"));
            }
        }
        Ok(())
    }
}

/// A random salt as Java's `ScramFormatter.secureRandomBytes`: the base-36 digits of a
/// 130-bit random number, as bytes.
fn random_salt() -> Vec<u8> {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    // The number is top * 2^128 + low, top < 4; 2^128 = 36 * Q + R.
    const Q: u128 = u128::MAX / 36;
    const R: u128 = u128::MAX % 36 + 1;
    let mut low: u128 = rand::random();
    let top = (rand::random::<u8>() & 3) as u128;
    // The first division folds `top` in; the quotient fits in 128 bits.
    let rest = top * R + low % 36;
    let mut digits = vec![DIGITS[(rest % 36) as usize]];
    low = top * Q + low / 36 + rest / 36;
    while low != 0 {
        digits.push(DIGITS[(low % 36) as usize]);
        low /= 36;
    }
    digits.reverse();
    digits
}

/// The outcome for one user of [`AdminClient::alter_user_scram_credentials`].
#[derive(Debug)]
pub struct AlterUserScramCredentialsResult {
    /// The user.
    pub user: String,
    /// `Ok` when all its alterations were applied; else the first error (an
    /// [`Error::InvalidArgument`] for a refused alteration, when none of the user's was
    /// sent, or the broker's error).
    pub result: Result<()>,
}

/// Options of [`AdminClient::alter_user_scram_credentials`].
#[derive(Debug, Clone, Default)]
pub struct AlterUserScramCredentialsOptions {
    /// The call's timeout; `None` (the default) uses `default_api_timeout`.
    pub timeout: Option<Duration>,
}

// ---------------------------------------------------------------------------------------
// Client quotas
// ---------------------------------------------------------------------------------------

/// The entity type of a user principal's quotas.
pub const QUOTA_USER: &str = "user";
/// The entity type of a client id's quotas.
pub const QUOTA_CLIENT_ID: &str = "client-id";
/// The entity type of a client IP's connection-rate quota.
pub const QUOTA_IP: &str = "ip";

/// The entity a quota applies to (Java's `ClientQuotaEntity`): entity type (`user`,
/// `client-id`, `ip`) to name, where `None` is the type's default entity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ClientQuotaEntity {
    /// Entity type to name (`None`: the default entity of the type).
    pub entries: BTreeMap<String, Option<String>>,
}

impl ClientQuotaEntity {
    /// An entity with no entries (add them with [`ClientQuotaEntity::user`] and so on).
    pub fn new() -> ClientQuotaEntity {
        ClientQuotaEntity::default()
    }

    /// Adds an entry: `name` `None` is the default entity of `entity_type`.
    pub fn entry(mut self, entity_type: impl Into<String>, name: Option<String>) -> ClientQuotaEntity {
        self.entries.insert(entity_type.into(), name);
        self
    }

    /// Adds the user `name`.
    pub fn user(self, name: impl Into<String>) -> ClientQuotaEntity {
        self.entry(QUOTA_USER, Some(name.into()))
    }

    /// Adds the client id `name`.
    pub fn client_id(self, name: impl Into<String>) -> ClientQuotaEntity {
        self.entry(QUOTA_CLIENT_ID, Some(name.into()))
    }

    /// Adds the IP address `ip`.
    pub fn ip(self, ip: impl Into<String>) -> ClientQuotaEntity {
        self.entry(QUOTA_IP, Some(ip.into()))
    }

    fn from_wire<'a>(entity: impl Iterator<Item = (&'a StrBytes, &'a Option<StrBytes>)>) -> ClientQuotaEntity {
        ClientQuotaEntity {
            entries: entity.map(|(t, n)| (t.to_string(), n.as_ref().map(|n| n.to_string()))).collect(),
        }
    }
}

/// How a filter component matches an entity type's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientQuotaMatch {
    /// Exactly this name.
    Exact(String),
    /// The type's default entity.
    Default,
    /// Any name, the default included (the entity must have the type).
    Any,
}

/// One component of a [`ClientQuotaFilter`] (Java's `ClientQuotaFilterComponent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientQuotaFilterComponent {
    /// The entity type (`user`, `client-id`, `ip`).
    pub entity_type: String,
    /// How the name is matched.
    pub matching: ClientQuotaMatch,
}

impl ClientQuotaFilterComponent {
    /// Entities whose `entity_type` is `name`.
    pub fn exact(entity_type: impl Into<String>, name: impl Into<String>) -> ClientQuotaFilterComponent {
        ClientQuotaFilterComponent { entity_type: entity_type.into(), matching: ClientQuotaMatch::Exact(name.into()) }
    }

    /// Entities whose `entity_type` is the default entity.
    pub fn default_entity(entity_type: impl Into<String>) -> ClientQuotaFilterComponent {
        ClientQuotaFilterComponent { entity_type: entity_type.into(), matching: ClientQuotaMatch::Default }
    }

    /// Entities with any name of `entity_type`.
    pub fn any(entity_type: impl Into<String>) -> ClientQuotaFilterComponent {
        ClientQuotaFilterComponent { entity_type: entity_type.into(), matching: ClientQuotaMatch::Any }
    }
}

/// Which quota entities [`AdminClient::describe_client_quotas`] reports (Java's
/// `ClientQuotaFilter`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientQuotaFilter {
    /// The components every reported entity matches.
    pub components: Vec<ClientQuotaFilterComponent>,
    /// `true`: only entities with no entity type besides the components'; `false`: entities
    /// with other types too.
    pub strict: bool,
}

impl ClientQuotaFilter {
    /// Entities that match all the components and may have other entity types.
    pub fn contains(components: impl IntoIterator<Item = ClientQuotaFilterComponent>) -> ClientQuotaFilter {
        ClientQuotaFilter { components: components.into_iter().collect(), strict: false }
    }

    /// Entities that match all the components and have no other entity type.
    pub fn contains_only(components: impl IntoIterator<Item = ClientQuotaFilterComponent>) -> ClientQuotaFilter {
        ClientQuotaFilter { components: components.into_iter().collect(), strict: true }
    }

    /// Every entity with a quota.
    pub fn all() -> ClientQuotaFilter {
        ClientQuotaFilter::default()
    }
}

/// The quotas of one entity, from [`AdminClient::describe_client_quotas`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClientQuotaEntry {
    /// The entity.
    pub entity: ClientQuotaEntity,
    /// Quota name (`producer_byte_rate`, `consumer_byte_rate`, `request_percentage`,
    /// `connection_creation_rate`, ...) to value.
    pub values: BTreeMap<String, f64>,
}

/// Changes to one entity's quotas (Java's `ClientQuotaAlteration`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientQuotaAlteration {
    /// The entity.
    pub entity: ClientQuotaEntity,
    /// Quota name to its new value, or `None` to remove the quota.
    pub ops: Vec<(String, Option<f64>)>,
}

impl ClientQuotaAlteration {
    /// No change yet to `entity`'s quotas.
    pub fn new(entity: ClientQuotaEntity) -> ClientQuotaAlteration {
        ClientQuotaAlteration { entity, ops: Vec::new() }
    }

    /// Sets quota `key` to `value`.
    pub fn set(mut self, key: impl Into<String>, value: f64) -> ClientQuotaAlteration {
        self.ops.push((key.into(), Some(value)));
        self
    }

    /// Removes quota `key`.
    pub fn remove(mut self, key: impl Into<String>) -> ClientQuotaAlteration {
        self.ops.push((key.into(), None));
        self
    }
}

/// The outcome for one entity of [`AdminClient::alter_client_quotas`].
#[derive(Debug)]
pub struct AlterClientQuotasResult {
    /// The entity, as asked for.
    pub entity: ClientQuotaEntity,
    /// `Ok` when its changes were applied (or, with `validate_only`, would be), else the
    /// broker's error for it.
    pub result: Result<()>,
}

/// Options of [`AdminClient::describe_client_quotas`].
#[derive(Debug, Clone, Default)]
pub struct DescribeClientQuotasOptions {
    /// The call's timeout; `None` (the default) uses `default_api_timeout`.
    pub timeout: Option<Duration>,
}

/// Options of [`AdminClient::alter_client_quotas`].
#[derive(Debug, Clone, Default)]
pub struct AlterClientQuotasOptions {
    /// Only validate the changes on the broker; apply nothing. Default `false`.
    pub validate_only: bool,
    /// The call's timeout; `None` (the default) uses `default_api_timeout`.
    pub timeout: Option<Duration>,
}

// ---------------------------------------------------------------------------------------
// Delegation tokens
// ---------------------------------------------------------------------------------------

/// A principal, `Type:name` (Java's `KafkaPrincipal`), as delegation tokens name owners
/// and renewers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KafkaPrincipal {
    /// The principal type (`User`).
    pub principal_type: String,
    /// The name.
    pub name: String,
}

impl KafkaPrincipal {
    /// `User:name`.
    pub fn user(name: impl Into<String>) -> KafkaPrincipal {
        KafkaPrincipal { principal_type: "User".into(), name: name.into() }
    }

    /// Parses `Type:name` (Java's `SecurityUtils.parseKafkaPrincipal`).
    pub fn parse(s: &str) -> Result<KafkaPrincipal> {
        match s.split_once(':') {
            Some((t, n)) if !t.is_empty() && !n.is_empty() => {
                Ok(KafkaPrincipal { principal_type: t.to_owned(), name: n.to_owned() })
            }
            _ => Err(Error::InvalidArgument(format!("principal {s:?} is not of the form Type:name"))),
        }
    }

    fn check(&self) -> Result<()> {
        if self.principal_type.is_empty() || self.name.is_empty() {
            return Err(Error::InvalidArgument(format!("principal {self} must have a type and a name")));
        }
        Ok(())
    }

    fn from_wire(t: &StrBytes, n: &StrBytes) -> KafkaPrincipal {
        KafkaPrincipal { principal_type: t.to_string(), name: n.to_string() }
    }
}

impl std::fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

/// What a delegation token is, without its secret (Java's `TokenInformation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInformation {
    /// The token id: the SCRAM user name of a token login.
    pub token_id: String,
    /// The principal the token authenticates as.
    pub owner: KafkaPrincipal,
    /// The principal that asked for the token (the owner, unless created for another).
    pub token_requester: KafkaPrincipal,
    /// Who besides the owner may renew it.
    pub renewers: Vec<KafkaPrincipal>,
    /// When it was issued, ms since the epoch.
    pub issue_timestamp_ms: i64,
    /// When it expires unless renewed, ms since the epoch.
    pub expiry_timestamp_ms: i64,
    /// When it expires at the latest, renewals included, ms since the epoch.
    pub max_timestamp_ms: i64,
}

/// A delegation token: its information and its HMAC (the secret; the SCRAM password of a
/// token login is its base64 text). `Debug` never shows the HMAC.
#[derive(Clone, PartialEq, Eq)]
pub struct DelegationToken {
    /// The token's information.
    pub info: TokenInformation,
    /// The HMAC: renews and expires the token, and is its password.
    pub hmac: Vec<u8>,
}

impl DelegationToken {
    /// The HMAC as base64, the token's password: log in with it through
    /// `SaslConfig::DelegationToken` (Java's `hmacAsBase64String`).
    pub fn hmac_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&self.hmac)
    }
}

impl std::fmt::Debug for DelegationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelegationToken").field("info", &self.info).field("hmac", &"<secret>").finish()
    }
}

/// Options of [`AdminClient::create_delegation_token`].
#[derive(Debug, Clone, Default)]
pub struct CreateDelegationTokenOptions {
    /// Principals besides the owner that may renew the token. Default none.
    pub renewers: Vec<KafkaPrincipal>,
    /// The token's longest life; `None` (the default) takes the broker's
    /// `delegation.token.max.lifetime.ms` (7 days by default), which also caps a longer one.
    pub max_lifetime: Option<Duration>,
    /// The principal the token is for, when not the caller (KIP-373; the caller needs
    /// `CreateTokens` on that user). Default `None`: the caller.
    pub owner: Option<KafkaPrincipal>,
    /// The call's timeout; `None` (the default) uses `default_api_timeout`.
    pub timeout: Option<Duration>,
}

/// Options of [`AdminClient::renew_delegation_token`].
#[derive(Debug, Clone, Default)]
pub struct RenewDelegationTokenOptions {
    /// How long from now the token lives; `None` (the default) takes the broker's
    /// `delegation.token.expiry.time.ms` (24 h by default). Never past the token's max
    /// lifetime.
    pub renew_period: Option<Duration>,
    /// The call's timeout; `None` (the default) uses `default_api_timeout`.
    pub timeout: Option<Duration>,
}

/// Options of [`AdminClient::expire_delegation_token`].
#[derive(Debug, Clone, Default)]
pub struct ExpireDelegationTokenOptions {
    /// When from now the token expires; `None` (the default) expires it at once (and the
    /// broker deletes it).
    pub expiry_time_period: Option<Duration>,
    /// The call's timeout; `None` (the default) uses `default_api_timeout`.
    pub timeout: Option<Duration>,
}

/// Options of [`AdminClient::describe_delegation_tokens`].
#[derive(Debug, Clone, Default)]
pub struct DescribeDelegationTokenOptions {
    /// Only tokens these principals own or may renew (the broker matches both); `None`
    /// (the default): every token the caller may describe.
    pub owners: Option<Vec<KafkaPrincipal>>,
    /// The call's timeout; `None` (the default) uses `default_api_timeout`.
    pub timeout: Option<Duration>,
}

/// A duration as a wire `*_ms` field; `None` is the broker's default (-1).
fn ms_or_default(d: Option<Duration>) -> i64 {
    d.map(|d| d.as_millis().min(i64::MAX as u128) as i64).unwrap_or(-1)
}

/// A token's HMAC for a request; refuses an empty one.
fn token_hmac(hmac: &[u8], call: &str) -> Result<Bytes> {
    if hmac.is_empty() {
        return Err(Error::InvalidArgument(format!("{call}: the HMAC must not be empty")));
    }
    Ok(Bytes::copy_from_slice(hmac))
}

fn check_top(code: i16, api: &'static str) -> Result<()> {
    Error::check_code(code, api, None, None, None)
}

impl AdminClient {
    /// The SCRAM credentials (mechanism and iterations, never secrets) of `users`, or of
    /// every user that has one when `users` is empty. One description per user asked for
    /// (in that order) or per user found; a user without credentials has
    /// `RESOURCE_NOT_FOUND`. An error for the whole request fails the call.
    pub async fn describe_user_scram_credentials<S: AsRef<str>>(
        &self,
        users: impl IntoIterator<Item = S>,
        options: DescribeUserScramCredentialsOptions,
    ) -> Result<Vec<UserScramCredentialsDescription>> {
        let users: Vec<String> = users.into_iter().map(|u| u.as_ref().to_owned()).collect();
        let wire: Option<Vec<UserName>> =
            (!users.is_empty()).then(|| users.iter().map(|u| UserName::default().with_name(str(u))).collect());
        let resp = self
            .send_to::<DescribeUserScramCredentialsRequest, _, _>(
                "DescribeUserScramCredentials",
                Target::Any,
                self.call_timeout(options.timeout),
                |_| Ok(DescribeUserScramCredentialsRequest::default().with_users(wire.clone())),
                |r| Error::check_code(r.error_code, "DescribeUserScramCredentials", r.error_message.as_deref(), None, None),
            )
            .await?;
        let mut by_user: BTreeMap<String, Result<Vec<ScramCredentialInfo>>> = BTreeMap::new();
        for r in resp.results {
            let result = Error::check_code(r.error_code, "DescribeUserScramCredentials", r.error_message.as_deref(), None, None)
                .map(|()| {
                    let mut infos: Vec<ScramCredentialInfo> = r
                        .credential_infos
                        .iter()
                        .map(|c| ScramCredentialInfo { mechanism: ScramMechanism::from_code(c.mechanism), iterations: c.iterations })
                        .collect();
                    infos.sort();
                    infos
                });
            by_user.insert(r.user.to_string(), result);
        }
        if users.is_empty() {
            return Ok(by_user.into_iter().map(|(user, result)| UserScramCredentialsDescription { user, result }).collect());
        }
        Ok(users
            .into_iter()
            .map(|user| {
                let result = by_user.get(&user).map(clone_result).unwrap_or_else(|| {
                    Err(Error::broker(
                        ErrorCode::ResourceNotFound,
                        "DescribeUserScramCredentials",
                        Some(format!("the answer has no result for user {user}")),
                        None,
                        None,
                    ))
                });
                UserScramCredentialsDescription { user, result }
            })
            .collect())
    }

    /// Creates, replaces or deletes SCRAM credentials; one result per user (in the order
    /// users first appear). The salted password of an upsert is computed here (PBKDF2, as
    /// Java's `ScramFormatter`), with a random salt unless one is given; the password never
    /// leaves the client. A user with a refused alteration (empty user or password,
    /// `Unknown` mechanism, iterations outside what Kafka accepts) gets
    /// [`Error::InvalidArgument`] and none of its alterations is sent, as in Java; the
    /// other users' are. The broker takes one alteration per user and request: a second
    /// one for the same user (another mechanism included) fails that user with
    /// `DUPLICATE_RESOURCE` and changes none of its credentials.
    pub async fn alter_user_scram_credentials(
        &self,
        alterations: impl IntoIterator<Item = UserScramCredentialAlteration>,
        options: AlterUserScramCredentialsOptions,
    ) -> Result<Vec<AlterUserScramCredentialsResult>> {
        let alterations: Vec<UserScramCredentialAlteration> = alterations.into_iter().collect();
        let mut users: Vec<String> = Vec::new();
        let mut refused: BTreeMap<String, String> = BTreeMap::new();
        for a in &alterations {
            if !users.iter().any(|u| u == a.user()) {
                users.push(a.user().to_owned());
            }
            if let Err(why) = a.check() {
                refused.entry(a.user().to_owned()).or_insert(why);
            }
        }
        let mut upsertions = Vec::new();
        let mut deletions = Vec::new();
        for a in alterations.iter().filter(|a| !refused.contains_key(a.user())) {
            match a {
                UserScramCredentialAlteration::Upsert { user, mechanism, iterations, password, salt } => {
                    let salt = salt.clone().unwrap_or_else(random_salt);
                    let Some(salted) = mechanism.salted_password(password.as_bytes(), &salt, *iterations as u32) else {
                        continue; // `check` refused Unknown mechanisms
                    };
                    upsertions.push(
                        ScramCredentialUpsertion::default()
                            .with_name(str(user))
                            .with_mechanism(mechanism.code())
                            .with_iterations(*iterations)
                            .with_salt(Bytes::from(salt))
                            .with_salted_password(Bytes::from(salted)),
                    );
                }
                UserScramCredentialAlteration::Delete { user, mechanism } => {
                    deletions.push(ScramCredentialDeletion::default().with_name(str(user)).with_mechanism(mechanism.code()));
                }
            }
        }
        let mut answered: BTreeMap<String, Result<()>> = BTreeMap::new();
        if !upsertions.is_empty() || !deletions.is_empty() {
            let resp = self
                .send_to::<AlterUserScramCredentialsRequest, _, _>(
                    "AlterUserScramCredentials",
                    Target::Controller,
                    self.call_timeout(options.timeout),
                    |_| {
                        Ok(AlterUserScramCredentialsRequest::default()
                            .with_upsertions(upsertions.clone())
                            .with_deletions(deletions.clone()))
                    },
                    // A moved controller is answered per user; retry the whole call then.
                    |r| match r.results.iter().find(|u| u.error_code == ErrorCode::NotController.code()) {
                        Some(u) => check_top(u.error_code, "AlterUserScramCredentials"),
                        None => Ok(()),
                    },
                )
                .await?;
            for r in resp.results {
                answered.insert(
                    r.user.to_string(),
                    Error::check_code(r.error_code, "AlterUserScramCredentials", r.error_message.as_deref(), None, None),
                );
            }
        }
        Ok(users
            .into_iter()
            .map(|user| {
                let result = if let Some(why) = refused.get(&user) {
                    Err(Error::InvalidArgument(why.clone()))
                } else {
                    answered.remove(&user).unwrap_or_else(|| {
                        Err(Error::broker(
                            ErrorCode::UnknownServerError,
                            "AlterUserScramCredentials",
                            Some(format!("the answer has no result for user {user}")),
                            None,
                            None,
                        ))
                    })
                };
                AlterUserScramCredentialsResult { user, result }
            })
            .collect())
    }

    /// The quotas of the entities that match `filter`, sorted by entity (all or nothing, as
    /// in Java). A component with an empty entity type is refused with
    /// [`Error::InvalidArgument`].
    pub async fn describe_client_quotas(
        &self,
        filter: &ClientQuotaFilter,
        options: DescribeClientQuotasOptions,
    ) -> Result<Vec<ClientQuotaEntry>> {
        if let Some(c) = filter.components.iter().find(|c| c.entity_type.is_empty()) {
            return Err(Error::InvalidArgument(format!("quota filter component with an empty entity type: {c:?}")));
        }
        let components: Vec<ComponentData> = filter
            .components
            .iter()
            .map(|c| {
                let (match_type, name) = match &c.matching {
                    ClientQuotaMatch::Exact(n) => (0, Some(str(n))),
                    ClientQuotaMatch::Default => (1, None),
                    ClientQuotaMatch::Any => (2, None),
                };
                ComponentData::default().with_entity_type(str(&c.entity_type)).with_match_type(match_type).with_match(name)
            })
            .collect();
        let resp = self
            .send_to::<DescribeClientQuotasRequest, _, _>(
                "DescribeClientQuotas",
                Target::Any,
                self.call_timeout(options.timeout),
                |_| Ok(DescribeClientQuotasRequest::default().with_components(components.clone()).with_strict(filter.strict)),
                |r| Error::check_code(r.error_code, "DescribeClientQuotas", r.error_message.as_deref(), None, None),
            )
            .await?;
        let mut out: Vec<ClientQuotaEntry> = resp
            .entries
            .unwrap_or_default()
            .into_iter()
            .map(|e| ClientQuotaEntry {
                entity: ClientQuotaEntity::from_wire(e.entity.iter().map(|d| (&d.entity_type, &d.entity_name))),
                values: e.values.into_iter().map(|v| (v.key.to_string(), v.value)).collect(),
            })
            .collect();
        out.sort_by(|a, b| a.entity.cmp(&b.entity));
        Ok(out)
    }

    /// Sets and removes quotas; one result per alteration, in the order given. An
    /// alteration with an empty entity, an empty entity type or quota name, or a value that
    /// is not finite is refused with [`Error::InvalidArgument`] (the whole call: nothing is
    /// sent).
    pub async fn alter_client_quotas(
        &self,
        alterations: impl IntoIterator<Item = ClientQuotaAlteration>,
        options: AlterClientQuotasOptions,
    ) -> Result<Vec<AlterClientQuotasResult>> {
        let alterations: Vec<ClientQuotaAlteration> = alterations.into_iter().collect();
        for a in &alterations {
            if a.entity.entries.is_empty() || a.entity.entries.keys().any(String::is_empty) {
                return Err(Error::InvalidArgument(format!("quota alteration for an empty entity or entity type: {a:?}")));
            }
            if let Some((k, v)) = a.ops.iter().find(|(k, v)| k.is_empty() || matches!(v, Some(v) if !v.is_finite())) {
                return Err(Error::InvalidArgument(format!("quota {k:?} = {v:?} of {:?} is not valid", a.entity)));
            }
        }
        if alterations.is_empty() {
            return Ok(Vec::new());
        }
        let entries: Vec<AlterEntry> = alterations
            .iter()
            .map(|a| {
                AlterEntry::default()
                    .with_entity(
                        a.entity
                            .entries
                            .iter()
                            .map(|(t, n)| {
                                AlterEntity::default().with_entity_type(str(t)).with_entity_name(n.as_deref().map(str))
                            })
                            .collect(),
                    )
                    .with_ops(
                        a.ops
                            .iter()
                            .map(|(k, v)| OpData::default().with_key(str(k)).with_value(v.unwrap_or(0.0)).with_remove(v.is_none()))
                            .collect(),
                    )
            })
            .collect();
        let resp = self
            .send_to::<AlterClientQuotasRequest, _, _>(
                "AlterClientQuotas",
                Target::Any,
                self.call_timeout(options.timeout),
                |_| Ok(AlterClientQuotasRequest::default().with_entries(entries.clone()).with_validate_only(options.validate_only)),
                |_| Ok(()),
            )
            .await?;
        let mut answered: Vec<(ClientQuotaEntity, Result<()>)> = resp
            .entries
            .iter()
            .map(|e| {
                (
                    ClientQuotaEntity::from_wire(e.entity.iter().map(|d| (&d.entity_type, &d.entity_name))),
                    Error::check_code(e.error_code, "AlterClientQuotas", e.error_message.as_deref(), None, None),
                )
            })
            .collect();
        Ok(alterations
            .into_iter()
            .map(|a| {
                let result = match answered.iter().position(|(e, _)| *e == a.entity) {
                    Some(i) => answered.swap_remove(i).1,
                    None => Err(Error::broker(
                        ErrorCode::UnknownServerError,
                        "AlterClientQuotas",
                        Some(format!("the answer has no result for entity {:?}", a.entity)),
                        None,
                        None,
                    )),
                };
                AlterClientQuotasResult { entity: a.entity, result }
            })
            .collect())
    }

    /// Creates a delegation token for the caller (or [`CreateDelegationTokenOptions::owner`]).
    /// The broker needs `delegation.token.secret.key` (else
    /// `DELEGATION_TOKEN_AUTH_DISABLED`) and refuses the call on a PLAINTEXT or one-way TLS
    /// connection and on one authenticated with a token (`DELEGATION_TOKEN_REQUEST_NOT_ALLOWED`).
    pub async fn create_delegation_token(&self, options: CreateDelegationTokenOptions) -> Result<DelegationToken> {
        for p in options.renewers.iter().chain(options.owner.as_ref()) {
            p.check()?;
        }
        let renewers: Vec<CreatableRenewers> = options
            .renewers
            .iter()
            .map(|p| CreatableRenewers::default().with_principal_type(str(&p.principal_type)).with_principal_name(str(&p.name)))
            .collect();
        let owner = options.owner.clone();
        let resp = self
            .send_to::<CreateDelegationTokenRequest, _, _>(
                "CreateDelegationToken",
                Target::Any,
                self.call_timeout(options.timeout),
                |version| {
                    if owner.is_some() && version < 3 {
                        return Err(Error::InvalidArgument(format!(
                            "create_delegation_token with an owner needs CreateDelegationToken v3 (KIP-373); the broker speaks v{version}"
                        )));
                    }
                    Ok(CreateDelegationTokenRequest::default()
                        .with_renewers(renewers.clone())
                        .with_max_lifetime_ms(ms_or_default(options.max_lifetime))
                        .with_owner_principal_type(owner.as_ref().map(|o| str(&o.principal_type)))
                        .with_owner_principal_name(owner.as_ref().map(|o| str(&o.name))))
                },
                |r| check_top(r.error_code, "CreateDelegationToken"),
            )
            .await?;
        Ok(DelegationToken {
            info: TokenInformation {
                token_id: resp.token_id.to_string(),
                owner: KafkaPrincipal::from_wire(&resp.principal_type, &resp.principal_name),
                token_requester: if resp.token_requester_principal_name.is_empty() {
                    KafkaPrincipal::from_wire(&resp.principal_type, &resp.principal_name)
                } else {
                    KafkaPrincipal::from_wire(&resp.token_requester_principal_type, &resp.token_requester_principal_name)
                },
                renewers: options.renewers,
                issue_timestamp_ms: resp.issue_timestamp_ms,
                expiry_timestamp_ms: resp.expiry_timestamp_ms,
                max_timestamp_ms: resp.max_timestamp_ms,
            },
            hmac: resp.hmac.to_vec(),
        })
    }

    /// Renews the token whose HMAC is `hmac`; returns its new expiry time (ms since the
    /// epoch). Only the owner and the renewers may renew (`DELEGATION_TOKEN_OWNER_MISMATCH`);
    /// an expired or unknown token is `DELEGATION_TOKEN_EXPIRED` / `DELEGATION_TOKEN_NOT_FOUND`.
    pub async fn renew_delegation_token(&self, hmac: &[u8], options: RenewDelegationTokenOptions) -> Result<i64> {
        let hmac = token_hmac(hmac, "renew_delegation_token")?;
        let resp = self
            .send_to::<RenewDelegationTokenRequest, _, _>(
                "RenewDelegationToken",
                Target::Any,
                self.call_timeout(options.timeout),
                |_| {
                    Ok(RenewDelegationTokenRequest::default()
                        .with_hmac(hmac.clone())
                        .with_renew_period_ms(ms_or_default(options.renew_period)))
                },
                |r| check_top(r.error_code, "RenewDelegationToken"),
            )
            .await?;
        Ok(resp.expiry_timestamp_ms)
    }

    /// Expires the token whose HMAC is `hmac` (at once by default, after which the broker
    /// deletes it); returns its expiry time (ms since the epoch).
    pub async fn expire_delegation_token(&self, hmac: &[u8], options: ExpireDelegationTokenOptions) -> Result<i64> {
        let hmac = token_hmac(hmac, "expire_delegation_token")?;
        let resp = self
            .send_to::<ExpireDelegationTokenRequest, _, _>(
                "ExpireDelegationToken",
                Target::Any,
                self.call_timeout(options.timeout),
                |_| {
                    Ok(ExpireDelegationTokenRequest::default()
                        .with_hmac(hmac.clone())
                        .with_expiry_time_period_ms(ms_or_default(options.expiry_time_period)))
                },
                |r| check_top(r.error_code, "ExpireDelegationToken"),
            )
            .await?;
        Ok(resp.expiry_timestamp_ms)
    }

    /// The delegation tokens the caller may describe (its own, those it renews, those it
    /// has `Describe` on), of the given owners or all; sorted by token id.
    pub async fn describe_delegation_tokens(&self, options: DescribeDelegationTokenOptions) -> Result<Vec<DelegationToken>> {
        for p in options.owners.iter().flatten() {
            p.check()?;
        }
        let owners: Option<Vec<DescribeDelegationTokenOwner>> = options.owners.as_ref().map(|os| {
            os.iter()
                .map(|p| {
                    DescribeDelegationTokenOwner::default().with_principal_type(str(&p.principal_type)).with_principal_name(str(&p.name))
                })
                .collect()
        });
        let resp = self
            .send_to::<DescribeDelegationTokenRequest, _, _>(
                "DescribeDelegationToken",
                Target::Any,
                self.call_timeout(options.timeout),
                |_| Ok(DescribeDelegationTokenRequest::default().with_owners(owners.clone())),
                |r| check_top(r.error_code, "DescribeDelegationToken"),
            )
            .await?;
        let mut out: Vec<DelegationToken> = resp
            .tokens
            .into_iter()
            .map(|t| {
                let owner = KafkaPrincipal::from_wire(&t.principal_type, &t.principal_name);
                DelegationToken {
                    info: TokenInformation {
                        token_id: t.token_id.to_string(),
                        token_requester: if t.token_requester_principal_name.is_empty() {
                            owner.clone()
                        } else {
                            KafkaPrincipal::from_wire(&t.token_requester_principal_type, &t.token_requester_principal_name)
                        },
                        owner,
                        renewers: t
                            .renewers
                            .iter()
                            .map(|r| KafkaPrincipal::from_wire(&r.principal_type, &r.principal_name))
                            .collect(),
                        issue_timestamp_ms: t.issue_timestamp,
                        expiry_timestamp_ms: t.expiry_timestamp,
                        max_timestamp_ms: t.max_timestamp,
                    },
                    hmac: t.hmac.to_vec(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.info.token_id.cmp(&b.info.token_id));
        Ok(out)
    }
}

fn clone_result<T: Clone>(r: &Result<T>) -> Result<T> {
    match r {
        Ok(v) => Ok(v.clone()),
        Err(e) => Err(e.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salted_password_is_pbkdf2_as_java_hi() {
        // RFC 7677's SCRAM-SHA-256 test vector: user/pencil, salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let salt = b64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = ScramMechanism::ScramSha256.salted_password(b"pencil", &salt, 4096).unwrap();
        assert_eq!(b64.encode(&salted), "xKSVEDI6tPlSysH6mUQZOeeOp01r6B3fcJbodRPcYV0=");
        assert_eq!(ScramMechanism::ScramSha512.salted_password(b"p", b"s", 4096).unwrap().len(), 64);
        assert!(ScramMechanism::Unknown(9).salted_password(b"p", b"s", 4096).is_none());
    }

    #[test]
    fn random_salts_are_base36_text_of_130_bits() {
        let a = random_salt();
        assert!(a.iter().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()), "{a:?}");
        // 36^26 > 2^130 > 36^25 / 2^4: at most 26 digits, and rarely fewer than 20.
        assert!(a.len() <= 26 && a.len() >= 20, "{a:?}");
        assert_ne!(a, random_salt());
    }

    #[test]
    fn alterations_are_checked_as_java_does() {
        let ok = UserScramCredentialAlteration::upsert("u", ScramMechanism::ScramSha512, 4096, "pw");
        assert!(ok.check().is_ok());
        assert!(UserScramCredentialAlteration::upsert("", ScramMechanism::ScramSha512, 4096, "pw").check().is_err());
        assert!(UserScramCredentialAlteration::upsert("u", ScramMechanism::ScramSha512, 4096, "").check().is_err());
        assert!(UserScramCredentialAlteration::upsert("u", ScramMechanism::ScramSha512, 100, "pw").check().is_err());
        assert!(UserScramCredentialAlteration::upsert("u", ScramMechanism::ScramSha512, 1 << 30, "pw").check().is_err());
        assert!(UserScramCredentialAlteration::delete("u", ScramMechanism::Unknown(0)).check().is_err());
        assert!(!format!("{ok:?}").contains("pw"));
    }

    #[test]
    fn principals_parse() {
        assert_eq!(KafkaPrincipal::parse("User:alice").unwrap(), KafkaPrincipal::user("alice"));
        assert!(KafkaPrincipal::parse("alice").is_err());
        assert!(KafkaPrincipal::parse("User:").is_err());
    }
}
