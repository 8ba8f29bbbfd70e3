//! ACLs: describe, create, delete, with the Java client's `AclBinding` / `AclBindingFilter`
//! model (a resource pattern plus an access control entry).
//!
//! ```no_run
//! # async fn demo(admin: ferrokafka::admin::AdminClient) -> ferrokafka::Result<()> {
//! use ferrokafka::admin::*;
//!
//! let binding = AclBinding::new(
//!     ResourcePattern::new(ResourceType::Topic, "orders", PatternType::Literal),
//!     AccessControlEntry::new("User:alice", "*", AclOperation::Read, AclPermissionType::Allow),
//! );
//! for r in admin.create_acls([binding.clone()], CreateAclsOptions::default()).await? {
//!     r.result?;
//! }
//! let on_orders = admin.describe_acls(&binding.to_filter(), DescribeAclsOptions::default()).await?;
//! assert_eq!(on_orders, vec![binding.clone()]);
//! admin.delete_acls([binding.to_filter()], DeleteAclsOptions::default()).await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;

use super::route::Target;
use super::AdminClient;
use crate::error::{Error, ErrorCode, Result};

/// Declares a Kafka enum carried as an `i8` on the wire, with an `Unknown` variant for a
/// code this client does not know (a newer broker's).
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// A code this client does not know (from a newer broker); never valid in a
            /// request.
            Unknown(i8),
        }

        impl $name {
            /// The wire code.
            pub fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code,)*
                    $name::Unknown(c) => c,
                }
            }

            /// The value of a wire code (`Unknown` for one this client does not know).
            pub fn from_code(code: i8) -> $name {
                match code {
                    $($code => $name::$variant,)*
                    c => $name::Unknown(c),
                }
            }
        }
    };
}

wire_enum! {
    /// The type of a resource ACLs are about (Java's `ResourceType`).
    ResourceType {
        /// In a filter: any type.
        Any = 1,
        /// A topic.
        Topic = 2,
        /// A consumer group.
        Group = 3,
        /// The cluster (its name is `kafka-cluster`).
        Cluster = 4,
        /// A transactional id.
        TransactionalId = 5,
        /// A delegation token.
        DelegationToken = 6,
        /// A user (for creating delegation tokens on its behalf).
        User = 7,
    }
}

wire_enum! {
    /// How a resource pattern's name is matched (Java's `PatternType`).
    PatternType {
        /// In a filter: any pattern type, with the name matched exactly.
        Any = 1,
        /// In a filter: every binding that applies to the name: the literal name, the
        /// wildcard `*`, and prefixes of the name.
        Match = 2,
        /// The name as it is; `*` is the wildcard resource.
        Literal = 3,
        /// Every resource whose name starts with the name.
        Prefixed = 4,
    }
}

wire_enum! {
    /// An operation an ACL allows or denies (Java's `AclOperation`).
    AclOperation {
        /// In a filter: any operation.
        Any = 1,
        /// Every operation.
        All = 2,
        /// Read (consume, fetch offsets).
        Read = 3,
        /// Write (produce).
        Write = 4,
        /// Create (topics).
        Create = 5,
        /// Delete (topics, records, groups).
        Delete = 6,
        /// Alter (partitions, ACLs).
        Alter = 7,
        /// Describe.
        Describe = 8,
        /// Inter-broker cluster actions.
        ClusterAction = 9,
        /// Describe configs.
        DescribeConfigs = 10,
        /// Alter configs.
        AlterConfigs = 11,
        /// Idempotent produce.
        IdempotentWrite = 12,
        /// Create delegation tokens.
        CreateTokens = 13,
        /// Describe delegation tokens.
        DescribeTokens = 14,
        /// Two-phase commit of transactions (KIP-939).
        TwoPhaseCommit = 15,
    }
}

wire_enum! {
    /// Whether an ACL allows or denies (Java's `AclPermissionType`).
    AclPermissionType {
        /// In a filter: either.
        Any = 1,
        /// Denies the operation (wins over an allow).
        Deny = 2,
        /// Allows the operation.
        Allow = 3,
    }
}

/// A resource pattern: the resources a binding applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourcePattern {
    /// The resource type; not `Any` in a binding.
    pub resource_type: ResourceType,
    /// The resource name (or prefix); `kafka-cluster` for the cluster; `*` with
    /// [`PatternType::Literal`] is every resource of the type.
    pub name: String,
    /// `Literal` or `Prefixed` in a binding.
    pub pattern_type: PatternType,
}

impl AclOperation {
    /// The operations a 32-bit authorized-operations field encodes (KIP-430: bit `n` set is
    /// operation code `n`), as Java's `validAclOperations`: `Unknown`, `Any` and `All` are
    /// left out; `None` for `i32::MIN`, the broker's value when they were not asked for.
    pub fn from_bitfield(bits: i32) -> Option<std::collections::BTreeSet<AclOperation>> {
        if bits == i32::MIN {
            return None;
        }
        Some(
            (0..32)
                .filter(|b| bits & (1 << b) != 0)
                .map(|b| AclOperation::from_code(b as i8))
                .filter(|o| !matches!(o, AclOperation::Unknown(_) | AclOperation::Any | AclOperation::All))
                .collect(),
        )
    }
}

impl ResourcePattern {
    /// A pattern.
    pub fn new(resource_type: ResourceType, name: impl Into<String>, pattern_type: PatternType) -> ResourcePattern {
        ResourcePattern { resource_type, name: name.into(), pattern_type }
    }
}

/// Who may (or may not) do what from where.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessControlEntry {
    /// The principal, `Type:name` (`User:alice`; `User:*` is every user).
    pub principal: String,
    /// The client host (`*` for any host).
    pub host: String,
    /// The operation; not `Any` in a binding.
    pub operation: AclOperation,
    /// Allow or deny; not `Any` in a binding.
    pub permission_type: AclPermissionType,
}

impl AccessControlEntry {
    /// An entry.
    pub fn new(
        principal: impl Into<String>,
        host: impl Into<String>,
        operation: AclOperation,
        permission_type: AclPermissionType,
    ) -> AccessControlEntry {
        AccessControlEntry { principal: principal.into(), host: host.into(), operation, permission_type }
    }
}

/// An ACL: a resource pattern and an entry (Java's `AclBinding`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    /// The resources.
    pub pattern: ResourcePattern,
    /// Who, from where, what, allow or deny.
    pub entry: AccessControlEntry,
}

impl AclBinding {
    /// A binding.
    pub fn new(pattern: ResourcePattern, entry: AccessControlEntry) -> AclBinding {
        AclBinding { pattern, entry }
    }

    /// The filter that matches exactly this binding.
    pub fn to_filter(&self) -> AclBindingFilter {
        AclBindingFilter {
            pattern: ResourcePatternFilter {
                resource_type: self.pattern.resource_type,
                name: Some(self.pattern.name.clone()),
                pattern_type: self.pattern.pattern_type,
            },
            entry: AccessControlEntryFilter {
                principal: Some(self.entry.principal.clone()),
                host: Some(self.entry.host.clone()),
                operation: self.entry.operation,
                permission_type: self.entry.permission_type,
            },
        }
    }

    /// Why this binding cannot be created (Java's `findIndefiniteField`), if it cannot.
    fn indefinite_field(&self) -> Option<String> {
        let p = &self.pattern;
        let e = &self.entry;
        if matches!(p.resource_type, ResourceType::Any | ResourceType::Unknown(_)) {
            return Some(format!("resource type {:?}", p.resource_type));
        }
        if !matches!(p.pattern_type, PatternType::Literal | PatternType::Prefixed) {
            return Some(format!("pattern type {:?} (a binding is Literal or Prefixed)", p.pattern_type));
        }
        if p.name.is_empty() {
            return Some("empty resource name".into());
        }
        if matches!(e.operation, AclOperation::Any | AclOperation::Unknown(_)) {
            return Some(format!("operation {:?}", e.operation));
        }
        if matches!(e.permission_type, AclPermissionType::Any | AclPermissionType::Unknown(_)) {
            return Some(format!("permission type {:?}", e.permission_type));
        }
        if e.principal.is_empty() {
            return Some("empty principal".into());
        }
        if e.host.is_empty() {
            return Some("empty host".into());
        }
        None
    }
}

/// A filter on resource patterns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourcePatternFilter {
    /// The resource type, or `Any`.
    pub resource_type: ResourceType,
    /// The name, or `None` for any name.
    pub name: Option<String>,
    /// The pattern type: `Literal` or `Prefixed` match patterns of that type with the name
    /// exactly; `Any` matches any pattern type with the name exactly; `Match` matches
    /// every pattern that applies to the name (literal, wildcard, prefixes).
    pub pattern_type: PatternType,
}

/// A filter on access control entries; `None` and `Any` match everything.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccessControlEntryFilter {
    /// The principal (`User:alice`), or `None` for any.
    pub principal: Option<String>,
    /// The host, or `None` for any.
    pub host: Option<String>,
    /// The operation, or `Any`.
    pub operation: AclOperation,
    /// The permission type, or `Any`.
    pub permission_type: AclPermissionType,
}

/// A filter on ACLs (Java's `AclBindingFilter`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AclBindingFilter {
    /// Which resource patterns.
    pub pattern: ResourcePatternFilter,
    /// Which entries.
    pub entry: AccessControlEntryFilter,
}

impl AclBindingFilter {
    /// The filter that matches every ACL (Java's `AclBindingFilter.ANY`).
    pub fn any() -> AclBindingFilter {
        AclBindingFilter {
            pattern: ResourcePatternFilter { resource_type: ResourceType::Any, name: None, pattern_type: PatternType::Any },
            entry: AccessControlEntryFilter {
                principal: None,
                host: None,
                operation: AclOperation::Any,
                permission_type: AclPermissionType::Any,
            },
        }
    }

    /// Every ACL on resources of one type, of any pattern type.
    pub fn resource_type(resource_type: ResourceType) -> AclBindingFilter {
        let mut f = AclBindingFilter::any();
        f.pattern.resource_type = resource_type;
        f
    }

    /// Narrows the filter to one resource name (with the current pattern type).
    pub fn name(mut self, name: impl Into<String>) -> AclBindingFilter {
        self.pattern.name = Some(name.into());
        self
    }

    /// Narrows the filter to one pattern type.
    pub fn pattern_type(mut self, pattern_type: PatternType) -> AclBindingFilter {
        self.pattern.pattern_type = pattern_type;
        self
    }

    /// Narrows the filter to one principal.
    pub fn principal(mut self, principal: impl Into<String>) -> AclBindingFilter {
        self.entry.principal = Some(principal.into());
        self
    }

    /// Narrows the filter to one host.
    pub fn host(mut self, host: impl Into<String>) -> AclBindingFilter {
        self.entry.host = Some(host.into());
        self
    }

    /// Narrows the filter to one operation.
    pub fn operation(mut self, operation: AclOperation) -> AclBindingFilter {
        self.entry.operation = operation;
        self
    }

    /// Narrows the filter to one permission type.
    pub fn permission_type(mut self, permission_type: AclPermissionType) -> AclBindingFilter {
        self.entry.permission_type = permission_type;
        self
    }

    /// Whether the filter matches every ACL of the cluster: any resource type, name,
    /// principal, host, operation and permission.
    pub fn matches_everything(&self) -> bool {
        self.pattern.resource_type == ResourceType::Any
            && self.pattern.name.is_none()
            && matches!(self.pattern.pattern_type, PatternType::Any | PatternType::Match)
            && self.entry.principal.is_none()
            && self.entry.host.is_none()
            && self.entry.operation == AclOperation::Any
            && self.entry.permission_type == AclPermissionType::Any
    }

    /// Refuses a filter with an `Unknown` element (as Java's `isUnknown`).
    fn validate(&self) -> Result<()> {
        let unknown = matches!(self.pattern.resource_type, ResourceType::Unknown(_))
            || matches!(self.pattern.pattern_type, PatternType::Unknown(_))
            || matches!(self.entry.operation, AclOperation::Unknown(_))
            || matches!(self.entry.permission_type, AclPermissionType::Unknown(_));
        if unknown {
            return Err(Error::InvalidArgument(format!("the ACL filter must not contain Unknown elements: {self:?}")));
        }
        Ok(())
    }

    fn to_delete(&self) -> DeleteAclsFilter {
        DeleteAclsFilter::default()
            .with_resource_type_filter(self.pattern.resource_type.code())
            .with_resource_name_filter(opt_str(&self.pattern.name))
            .with_pattern_type_filter(self.pattern.pattern_type.code())
            .with_principal_filter(opt_str(&self.entry.principal))
            .with_host_filter(opt_str(&self.entry.host))
            .with_operation(self.entry.operation.code())
            .with_permission_type(self.entry.permission_type.code())
    }
}

/// Options of [`AdminClient::describe_acls`].
#[derive(Debug, Clone, Default)]
pub struct DescribeAclsOptions {
    /// The call's timeout; `None` (the default) uses `default_api_timeout`.
    pub timeout: Option<Duration>,
}

/// Options of [`AdminClient::create_acls`].
#[derive(Debug, Clone, Default)]
pub struct CreateAclsOptions {
    /// The call's timeout; `None` (the default) uses `default_api_timeout`.
    pub timeout: Option<Duration>,
}

/// Options of [`AdminClient::delete_acls`].
#[derive(Debug, Clone, Default)]
pub struct DeleteAclsOptions {
    /// The call's timeout; `None` (the default) uses `default_api_timeout`.
    pub timeout: Option<Duration>,
    /// Allows a filter that matches every ACL of the cluster
    /// ([`AclBindingFilter::matches_everything`]). Default `false`: such a filter is refused
    /// with [`Error::InvalidArgument`] before anything is sent. This guard is ferrokafka's
    /// addition; the Java client sends such a filter as it is.
    pub allow_delete_all: bool,
}

/// The outcome of one binding of [`AdminClient::create_acls`].
#[derive(Debug)]
pub struct CreateAclResult {
    /// The binding, as asked for.
    pub binding: AclBinding,
    /// `Ok` when the broker created it (or it existed), else why not.
    pub result: Result<()>,
}

/// One ACL a filter of [`AdminClient::delete_acls`] matched.
#[derive(Debug)]
pub struct DeletedAcl {
    /// The ACL.
    pub binding: AclBinding,
    /// `Ok` when it was deleted, else the broker's error for it.
    pub result: Result<()>,
}

/// The outcome of one filter of [`AdminClient::delete_acls`].
#[derive(Debug)]
pub struct DeleteAclsResult {
    /// The filter, as asked for.
    pub filter: AclBindingFilter,
    /// The ACLs it matched (each deleted or with its error), or the filter's error.
    pub result: Result<Vec<DeletedAcl>>,
}

fn opt_str(s: &Option<String>) -> Option<StrBytes> {
    s.as_ref().map(|s| StrBytes::from_string(s.clone()))
}

fn str(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// A binding from its wire fields.
fn binding(rtype: i8, name: &StrBytes, ptype: i8, principal: &StrBytes, host: &StrBytes, op: i8, perm: i8) -> AclBinding {
    AclBinding {
        pattern: ResourcePattern {
            resource_type: ResourceType::from_code(rtype),
            name: name.to_string(),
            pattern_type: PatternType::from_code(ptype),
        },
        entry: AccessControlEntry {
            principal: principal.to_string(),
            host: host.to_string(),
            operation: AclOperation::from_code(op),
            permission_type: AclPermissionType::from_code(perm),
        },
    }
}

fn no_result(api: &'static str, what: &str) -> Error {
    Error::broker(ErrorCode::UnknownServerError, api, Some(format!("the broker reported no result for {what}")), None, None)
}

impl AdminClient {
    /// The ACLs that match `filter`, sorted (all or nothing, as in Java). A filter with an
    /// `Unknown` element is refused with [`Error::InvalidArgument`]; a broker without an
    /// authorizer answers `SECURITY_DISABLED`.
    pub async fn describe_acls(&self, filter: &AclBindingFilter, options: DescribeAclsOptions) -> Result<Vec<AclBinding>> {
        filter.validate()?;
        let f = filter.to_delete();
        let resp = self
            .send_to::<DescribeAclsRequest, _, _>(
                "DescribeAcls",
                Target::Any,
                self.call_timeout(options.timeout),
                |_| {
                    Ok(DescribeAclsRequest::default()
                        .with_resource_type_filter(f.resource_type_filter)
                        .with_resource_name_filter(f.resource_name_filter.clone())
                        .with_pattern_type_filter(f.pattern_type_filter)
                        .with_principal_filter(f.principal_filter.clone())
                        .with_host_filter(f.host_filter.clone())
                        .with_operation(f.operation)
                        .with_permission_type(f.permission_type))
                },
                |r| Error::check_code(r.error_code, "DescribeAcls", r.error_message.as_deref(), None, None),
            )
            .await?;
        let mut out: Vec<AclBinding> = resp
            .resources
            .iter()
            .flat_map(|res| {
                res.acls.iter().map(move |a| {
                    binding(
                        res.resource_type,
                        &res.resource_name,
                        res.pattern_type,
                        &a.principal,
                        &a.host,
                        a.operation,
                        a.permission_type,
                    )
                })
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Creates ACLs; one [`CreateAclResult`] per binding, in the order given (a repeated
    /// binding is sent once and reported each time). A binding that cannot be created (an
    /// `Any`, `Match` or `Unknown` element, an empty name, principal or host) gets
    /// [`Error::InvalidArgument`] and is not sent; the others are.
    pub async fn create_acls(
        &self,
        bindings: impl IntoIterator<Item = AclBinding>,
        options: CreateAclsOptions,
    ) -> Result<Vec<CreateAclResult>> {
        let bindings: Vec<AclBinding> = bindings.into_iter().collect();
        let mut sent: Vec<AclBinding> = Vec::new();
        for b in &bindings {
            if b.indefinite_field().is_none() && !sent.contains(b) {
                sent.push(b.clone());
            }
        }
        let results = if sent.is_empty() {
            Vec::new()
        } else {
            let creations: Vec<AclCreation> = sent
                .iter()
                .map(|b| {
                    AclCreation::default()
                        .with_resource_type(b.pattern.resource_type.code())
                        .with_resource_name(str(&b.pattern.name))
                        .with_resource_pattern_type(b.pattern.pattern_type.code())
                        .with_principal(str(&b.entry.principal))
                        .with_host(str(&b.entry.host))
                        .with_operation(b.entry.operation.code())
                        .with_permission_type(b.entry.permission_type.code())
                })
                .collect();
            self.send_to::<CreateAclsRequest, _, _>(
                "CreateAcls",
                Target::Any,
                self.call_timeout(options.timeout),
                |_| Ok(CreateAclsRequest::default().with_creations(creations.clone())),
                |_| Ok(()),
            )
            .await?
            .results
        };
        Ok(bindings
            .into_iter()
            .map(|b| {
                let result = match b.indefinite_field() {
                    Some(why) => Err(Error::InvalidArgument(format!("invalid ACL binding ({why}): {b:?}"))),
                    None => match sent.iter().position(|s| *s == b).and_then(|i| results.get(i)) {
                        Some(r) => Error::check_code(r.error_code, "CreateAcls", r.error_message.as_deref(), None, None),
                        None => Err(no_result("CreateAcls", "the ACL")),
                    },
                };
                CreateAclResult { binding: b, result }
            })
            .collect())
    }

    /// Deletes the ACLs that match each filter; one [`DeleteAclsResult`] per filter, in the
    /// order given, with the ACLs it matched. A filter with an `Unknown` element is refused
    /// with [`Error::InvalidArgument`], and so is one that matches every ACL of the cluster
    /// ([`AclBindingFilter::matches_everything`]) unless
    /// [`DeleteAclsOptions::allow_delete_all`] is set (ferrokafka's guard, not the Java
    /// client's); nothing is sent then.
    pub async fn delete_acls(
        &self,
        filters: impl IntoIterator<Item = AclBindingFilter>,
        options: DeleteAclsOptions,
    ) -> Result<Vec<DeleteAclsResult>> {
        let filters: Vec<AclBindingFilter> = filters.into_iter().collect();
        for f in &filters {
            f.validate()?;
            if f.matches_everything() && !options.allow_delete_all {
                return Err(Error::InvalidArgument(
                    "delete_acls: the filter matches every ACL of the cluster; set DeleteAclsOptions::allow_delete_all \
                     to delete them all"
                        .into(),
                ));
            }
        }
        if filters.is_empty() {
            return Ok(Vec::new());
        }
        let wire: Vec<DeleteAclsFilter> = filters.iter().map(AclBindingFilter::to_delete).collect();
        let resp = self
            .send_to::<DeleteAclsRequest, _, _>(
                "DeleteAcls",
                Target::Any,
                self.call_timeout(options.timeout),
                |_| Ok(DeleteAclsRequest::default().with_filters(wire.clone())),
                |_| Ok(()),
            )
            .await?;
        let mut answers = resp.filter_results.into_iter();
        Ok(filters
            .into_iter()
            .map(|filter| {
                let result = match answers.next() {
                    None => Err(no_result("DeleteAcls", "the filter")),
                    Some(r) => Error::check_code(r.error_code, "DeleteAcls", r.error_message.as_deref(), None, None).map(|()| {
                        r.matching_acls
                            .iter()
                            .map(|m| DeletedAcl {
                                binding: binding(
                                    m.resource_type,
                                    &m.resource_name,
                                    m.pattern_type,
                                    &m.principal,
                                    &m.host,
                                    m.operation,
                                    m.permission_type,
                                ),
                                result: Error::check_code(m.error_code, "DeleteAcls", m.error_message.as_deref(), None, None),
                            })
                            .collect()
                    }),
                };
                DeleteAclsResult { filter, result }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_survive() {
        for c in -2..20i8 {
            assert_eq!(ResourceType::from_code(c).code(), c);
            assert_eq!(PatternType::from_code(c).code(), c);
            assert_eq!(AclOperation::from_code(c).code(), c);
            assert_eq!(AclPermissionType::from_code(c).code(), c);
        }
        assert_eq!(ResourceType::from_code(2), ResourceType::Topic);
        assert_eq!(PatternType::from_code(4), PatternType::Prefixed);
        assert_eq!(AclOperation::from_code(14), AclOperation::DescribeTokens);
        assert_eq!(AclPermissionType::from_code(0), AclPermissionType::Unknown(0));
    }

    #[test]
    fn indefinite_bindings_are_found() {
        let ok = AclBinding::new(
            ResourcePattern::new(ResourceType::Topic, "t", PatternType::Literal),
            AccessControlEntry::new("User:a", "*", AclOperation::Read, AclPermissionType::Allow),
        );
        assert_eq!(ok.indefinite_field(), None);
        let mut b = ok.clone();
        b.pattern.pattern_type = PatternType::Match;
        assert!(b.indefinite_field().is_some());
        let mut b = ok.clone();
        b.entry.operation = AclOperation::Any;
        assert!(b.indefinite_field().is_some());
        let mut b = ok.clone();
        b.pattern.resource_type = ResourceType::Any;
        assert!(b.indefinite_field().is_some());
        let mut b = ok;
        b.entry.principal.clear();
        assert!(b.indefinite_field().is_some());
    }

    #[test]
    fn match_everything_is_only_the_full_wildcard() {
        assert!(AclBindingFilter::any().matches_everything());
        assert!(AclBindingFilter::any().pattern_type(PatternType::Match).matches_everything());
        assert!(!AclBindingFilter::resource_type(ResourceType::Topic).matches_everything());
        assert!(!AclBindingFilter::any().principal("User:a").matches_everything());
        assert!(AclBindingFilter::any().operation(AclOperation::Unknown(99)).validate().is_err());
    }
}
