//! The security admin calls against the single node, whose StandardAuthorizer has
//! `allow.everyone.if.no.acl.found=true` and `super.users=User:ANONYMOUS` (the PLAINTEXT
//! admin of `single_admin` is a super user; SCRAM logins on the SASL_PLAINTEXT listener are
//! not), and a delegation-token secret (see `scripts/kafka-local.sh`).
//!
//! Every test checks the effect: a SCRAM user that was created can log in (and one that was
//! deleted cannot), an ACL lets that user produce and its deletion refuses it again, quotas
//! read back, a token's renewal and expiry show in its description.

use std::time::Duration;

use ferrokafka::admin::*;
use ferrokafka::consumer::{Consumer, ConsumerConfig, TopicPartition};
use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
use ferrokafka::{ClientConfig, Error, ErrorCode, SaslConfig, SecurityProtocol};

use crate::common::*;

/// The SASL_PLAINTEXT listener (`FERROKAFKA_SASL_PLAINTEXT_BOOTSTRAP`, else 9094 plus
/// `KAFKA_PORT_OFFSET`).
fn sasl_plaintext() -> String {
    std::env::var("FERROKAFKA_SASL_PLAINTEXT_BOOTSTRAP").unwrap_or_else(|_| {
        let offset: u16 = std::env::var("KAFKA_PORT_OFFSET").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        format!("127.0.0.1:{}", 9094 + offset)
    })
}

/// A SCRAM login on the SASL_PLAINTEXT listener.
fn scram_client(user: &str, password: &str, mechanism: ScramMechanism) -> ClientConfig {
    let (username, password) = (user.to_owned(), password.to_owned());
    let sasl = match mechanism {
        ScramMechanism::ScramSha256 => SaslConfig::ScramSha256 { username, password },
        _ => SaslConfig::ScramSha512 { username, password },
    };
    ClientConfig::new(sasl_plaintext())
        .security_protocol(SecurityProtocol::SaslPlaintext)
        .sasl(sasl)
        .connect_timeout(Duration::from_secs(8))
}

async fn admin_for(client: ClientConfig) -> ferrokafka::Result<AdminClient> {
    AdminClient::new(AdminConfig::from_client(client).default_api_timeout(Duration::from_secs(20))).await
}

/// Logs in, waiting for a credential just created to reach the broker's cache.
async fn login(client: ClientConfig) -> AdminClient {
    eventually("the SCRAM login to succeed", Duration::from_secs(15), || {
        let client = client.clone();
        async move { admin_for(client).await.ok() }
    })
    .await
}

/// Creates `user` with both SCRAM mechanisms (SHA-512 with a random salt, SHA-256 with a
/// given one) through `alter_user_scram_credentials`, one call each (the broker takes one
/// alteration per user and request).
async fn create_scram_user(admin: &AdminClient, user: &str, password: &str) {
    for alteration in [
        UserScramCredentialAlteration::upsert(user, ScramMechanism::ScramSha512, 8192, password),
        UserScramCredentialAlteration::upsert(user, ScramMechanism::ScramSha256, 4096, password)
            .with_salt(b"a-salt-of-our-own".to_vec()),
    ] {
        let results = admin.alter_user_scram_credentials([alteration], Default::default()).await.unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].user, user);
        results[0].result.as_ref().unwrap();
    }
}

/// Sends one record to partition 0 of `topic` with a fresh producer; the send's or the
/// acknowledgement's error.
async fn produce_one(client: &ClientConfig, topic: &str) -> ferrokafka::Result<()> {
    let producer = Producer::new(
        ProducerConfig::from_client(client.clone().request_timeout(Duration::from_secs(5)))
            .max_block(Duration::from_secs(5))
            .delivery_timeout(Duration::from_secs(10))
            .enable_idempotence(false),
    )
    .await?;
    let r = async { producer.send(ProducerRecord::new(topic).partition(0).value("v")).await?.await.map(|_| ()) }.await;
    producer.close(Duration::from_secs(5)).await.ok();
    r
}

/// The end offset of partition 0 of `topic`, read by the super user.
async fn end_offset(topic: &str) -> i64 {
    let consumer = Consumer::new(ConsumerConfig::from_client(ClientConfig::new(single_bootstrap()))).await.unwrap();
    let tp = TopicPartition::new(topic, 0);
    let end = consumer.end_offsets(std::slice::from_ref(&tp)).await.unwrap()[&tp];
    consumer.close().await.ok();
    end
}

/// Reads with `read` until it gives `want` (the broker serves describe calls from its
/// metadata cache, which follows the controller's commit by a moment); panics with what it
/// last read after 15 s.
async fn until_eq<T, F, Fut>(what: &str, want: T, mut read: F) -> T
where
    T: PartialEq + std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let got = read().await;
        if got == want {
            return got;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: still {got:?}, want {want:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `user`'s SCRAM credentials as described, or the code of the error for the user.
async fn scram_of(admin: &AdminClient, user: &str) -> std::result::Result<Vec<ScramCredentialInfo>, Option<ErrorCode>> {
    let mut d = admin.describe_user_scram_credentials([user], Default::default()).await.unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].user, user);
    d.remove(0).result.map_err(|e| e.code())
}

async fn acls_of(admin: &AdminClient, filter: &AclBindingFilter) -> Vec<AclBinding> {
    admin.describe_acls(filter, DescribeAclsOptions::default()).await.unwrap()
}

async fn quotas_of(admin: &AdminClient, filter: &ClientQuotaFilter) -> Vec<ClientQuotaEntry> {
    admin.describe_client_quotas(filter, Default::default()).await.unwrap()
}

/// Produces with fresh producers until a send succeeds (`ok`) or fails (`!ok`), as ACL
/// changes reach the broker's authorizer asynchronously; that send's outcome.
async fn produce_until(client: &ClientConfig, topic: &str, ok: bool, what: &str) -> ferrokafka::Result<()> {
    eventually(what, Duration::from_secs(15), || async {
        let r = produce_one(client, topic).await;
        (r.is_ok() == ok).then_some(r)
    })
    .await
}

fn acl(
    resource_type: ResourceType,
    name: &str,
    pattern: PatternType,
    principal: &str,
    op: AclOperation,
    perm: AclPermissionType,
) -> AclBinding {
    AclBinding::new(ResourcePattern::new(resource_type, name, pattern), AccessControlEntry::new(principal, "*", op, perm))
}

fn assert_topic_refused(r: ferrokafka::Result<()>, topic: &str, api: &str) {
    let e = r.expect_err("the user must be refused");
    assert_eq!(e.code(), Some(ErrorCode::TopicAuthorizationFailed), "{e}");
    let b = e.broker_error().unwrap();
    assert_eq!(b.topic.as_deref(), Some(topic), "{e}");
    assert_eq!(b.api, Some(api), "{e}");
    let text = e.to_string();
    assert!(text.contains(topic) && text.contains("TOPIC_AUTHORIZATION_FAILED") && text.contains(api), "{text}");
}

/// The issue's "security end to end": a SCRAM user made with alter_user_scram_credentials
/// logs in, is refused on a topic that has ACLs for someone else, is let in by an ACL, is
/// refused again once the ACL is deleted; describe_acls shows exactly what was created.
#[tokio::test]
async fn scram_user_is_refused_then_allowed_by_an_acl_then_refused_again() {
    let admin = single_admin().await;
    let topic = single_topic("adm-sec-acl", 1).await;
    let user = unique("adm-sec-user");
    let principal = format!("User:{user}");
    let other = format!("User:{}", unique("adm-sec-other"));
    create_scram_user(&admin, &user, "s3cret-pw").await;

    // An ACL for another principal: the topic is no longer open to everyone.
    let theirs = vec![
        acl(ResourceType::Topic, &topic, PatternType::Literal, &other, AclOperation::Read, AclPermissionType::Allow),
        acl(ResourceType::Topic, &topic, PatternType::Prefixed, &other, AclOperation::Describe, AclPermissionType::Allow),
    ];
    for r in admin.create_acls(theirs.clone(), CreateAclsOptions::default()).await.unwrap() {
        r.result.unwrap();
    }

    // Logged in as the new user (SCRAM-SHA-512 for the producer, SHA-256 for its admin).
    let sha512 = scram_client(&user, "s3cret-pw", ScramMechanism::ScramSha512);
    let user_admin = login(scram_client(&user, "s3cret-pw", ScramMechanism::ScramSha256)).await;
    login(sha512.clone()).await;
    // No Describe: the topic's metadata is refused.
    let r = produce_until(&sha512, &topic, false, "the topic to be closed to the user").await;
    assert_topic_refused(r, &topic, "Metadata");
    let e = user_admin.describe_topics([&topic]).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TopicAuthorizationFailed), "{e}");

    // The user's ACLs: Describe and Write on the topic. A repeated binding and a binding
    // that cannot be created are reported in place.
    let mine = vec![
        acl(ResourceType::Topic, &topic, PatternType::Literal, &principal, AclOperation::Write, AclPermissionType::Allow),
        acl(ResourceType::Topic, &topic, PatternType::Literal, &principal, AclOperation::Describe, AclPermissionType::Allow),
    ];
    let bad = acl(ResourceType::Topic, &topic, PatternType::Match, &principal, AclOperation::Read, AclPermissionType::Allow);
    let created = admin
        .create_acls([mine[0].clone(), bad.clone(), mine[1].clone(), mine[0].clone()], CreateAclsOptions::default())
        .await
        .unwrap();
    assert_eq!(created.len(), 4);
    assert!(matches!(created[1].result, Err(Error::InvalidArgument(_))), "{:?}", created[1].result);
    for i in [0, 2, 3] {
        created[i].result.as_ref().unwrap();
    }

    // describe_acls shows exactly what was created, by principal, by literal name, and
    // with Match (which adds the prefixed binding that applies to the name).
    let mut expected_mine = mine.clone();
    expected_mine.sort();
    let by_principal = AclBindingFilter::any().principal(&principal);
    until_eq("the user's ACLs", expected_mine, || acls_of(&admin, &by_principal)).await;
    let literal = AclBindingFilter::resource_type(ResourceType::Topic).name(&topic).pattern_type(PatternType::Literal);
    let mut expected = vec![mine[0].clone(), mine[1].clone(), theirs[0].clone()];
    expected.sort();
    until_eq("the topic's literal ACLs", expected.clone(), || acls_of(&admin, &literal)).await;
    let matching = literal.clone().pattern_type(PatternType::Match);
    expected.push(theirs[1].clone());
    expected.sort();
    until_eq("the ACLs that apply to the topic", expected, || acls_of(&admin, &matching)).await;

    // Now the user may produce and describe the topic.
    produce_until(&sha512, &topic, true, "the ACL to let the user produce").await.unwrap();
    let d = user_admin.describe_topics([&topic]).await.unwrap();
    assert_eq!(d[0].partitions.len(), 1);
    let end = end_offset(&topic).await;
    assert!(end >= 1, "the user's record is in the log (end offset {end})");

    // Deleting the Write ACL refuses the produce itself (Describe still allowed).
    let deleted = admin.delete_acls([mine[0].to_filter()], DeleteAclsOptions::default()).await.unwrap();
    assert_eq!(deleted.len(), 1);
    let gone = deleted[0].result.as_ref().unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].binding, mine[0]);
    gone[0].result.as_ref().unwrap();
    let r = produce_until(&sha512, &topic, false, "the deleted ACL to refuse the user").await;
    assert_topic_refused(r, &topic, "Produce");

    // A filter matching everything is refused unless opted in; nothing is deleted.
    let e = admin.delete_acls([AclBindingFilter::any()], DeleteAclsOptions::default()).await.unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(ref m) if m.contains("allow_delete_all")), "{e}");
    let e = admin.describe_acls(&AclBindingFilter::any().operation(AclOperation::Unknown(99)), Default::default()).await;
    assert!(matches!(e, Err(Error::InvalidArgument(_))), "{e:?}");

    // The rest, by a filter per principal: each filter reports what it deleted.
    let deleted = admin
        .delete_acls(
            [AclBindingFilter::any().principal(&principal), AclBindingFilter::resource_type(ResourceType::Topic).principal(&other)],
            DeleteAclsOptions::default(),
        )
        .await
        .unwrap();
    let names = |i: usize| {
        let mut v: Vec<AclBinding> = deleted[i].result.as_ref().unwrap().iter().map(|d| d.binding.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(names(0), vec![mine[1].clone()]);
    let mut theirs_sorted = theirs.clone();
    theirs_sorted.sort();
    assert_eq!(names(1), theirs_sorted);
    until_eq("no ACL left on the topic", vec![], || acls_of(&admin, &matching)).await;
    // With no ACL left on it, the topic is open to everyone again.
    produce_until(&sha512, &topic, true, "the topic to be open again").await.unwrap();
    admin.delete_topic(&topic).await.ok();
}

/// describe shows mechanisms and iterations per user (and RESOURCE_NOT_FOUND for a user
/// without credentials); a refused alteration fails its user only; a deleted credential no
/// longer logs in while the other mechanism still does.
#[tokio::test]
async fn scram_credentials_are_described_altered_and_deleted() {
    let admin = single_admin().await;
    let user = unique("adm-sec-scram");
    let nobody = unique("adm-sec-nobody");
    let refused = unique("adm-sec-refused");
    let results = admin
        .alter_user_scram_credentials(
            [
                UserScramCredentialAlteration::upsert(&user, ScramMechanism::ScramSha512, 8192, "pw-512"),
                UserScramCredentialAlteration::upsert(&refused, ScramMechanism::ScramSha256, 4096, "ok"),
                UserScramCredentialAlteration::upsert(&refused, ScramMechanism::ScramSha512, 10, "pw"),
            ],
            AlterUserScramCredentialsOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(results.iter().map(|r| r.user.as_str()).collect::<Vec<_>>(), vec![user.as_str(), refused.as_str()]);
    results[0].result.as_ref().unwrap();
    assert!(matches!(&results[1].result, Err(Error::InvalidArgument(m)) if m.contains("iterations")), "{:?}", results[1].result);
    let results = admin
        .alter_user_scram_credentials(
            [UserScramCredentialAlteration::upsert(&user, ScramMechanism::ScramSha256, 4096, "pw-256")],
            Default::default(),
        )
        .await
        .unwrap();
    results[0].result.as_ref().unwrap();

    let both = vec![
        ScramCredentialInfo { mechanism: ScramMechanism::ScramSha256, iterations: 4096 },
        ScramCredentialInfo { mechanism: ScramMechanism::ScramSha512, iterations: 8192 },
    ];
    until_eq("both credentials", Ok(both.clone()), || scram_of(&admin, &user)).await.unwrap();
    // Several users in one call: one description each, in order.
    let d = admin
        .describe_user_scram_credentials([&user, &nobody, &refused], DescribeUserScramCredentialsOptions::default())
        .await
        .unwrap();
    assert_eq!(d.iter().map(|u| u.user.as_str()).collect::<Vec<_>>(), vec![user.as_str(), nobody.as_str(), refused.as_str()]);
    assert_eq!(d[0].result.as_ref().unwrap(), &both);
    for i in [1, 2] {
        let e = d[i].result.as_ref().unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::ResourceNotFound), "{}: {e}", d[i].user);
    }
    // All users: ours is among them, alice (made at format time) too.
    let all = admin.describe_user_scram_credentials(Vec::<String>::new(), Default::default()).await.unwrap();
    assert!(all.iter().any(|u| u.user == user && u.result.as_ref().is_ok_and(|c| c.len() == 2)));
    assert!(all.iter().any(|u| u.user == "alice"));

    // Both mechanisms log in with their passwords; a wrong password does not.
    login(scram_client(&user, "pw-512", ScramMechanism::ScramSha512)).await;
    login(scram_client(&user, "pw-256", ScramMechanism::ScramSha256)).await;
    let e = admin_for(scram_client(&user, "pw-256", ScramMechanism::ScramSha512)).await.unwrap_err();
    assert!(matches!(e, Error::Authentication { .. }), "{e}");

    // Two alterations of one user in one request: the broker refuses the user
    // (DUPLICATE_RESOURCE) and changes nothing.
    let results = admin
        .alter_user_scram_credentials(
            [
                UserScramCredentialAlteration::upsert(&user, ScramMechanism::ScramSha512, 4096, "new-512"),
                UserScramCredentialAlteration::delete(&user, ScramMechanism::ScramSha256),
            ],
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].result.as_ref().unwrap_err().code(), Some(ErrorCode::DuplicateResource));
    // Replace the SHA-512 password, delete SHA-256.
    for alteration in [
        UserScramCredentialAlteration::upsert(&user, ScramMechanism::ScramSha512, 4096, "new-512"),
        UserScramCredentialAlteration::delete(&user, ScramMechanism::ScramSha256),
    ] {
        let results = admin.alter_user_scram_credentials([alteration], Default::default()).await.unwrap();
        results[0].result.as_ref().unwrap();
    }
    let sha512_only = vec![ScramCredentialInfo { mechanism: ScramMechanism::ScramSha512, iterations: 4096 }];
    until_eq("the SHA-512 credential only", Ok(sha512_only), || scram_of(&admin, &user)).await.unwrap();
    login(scram_client(&user, "new-512", ScramMechanism::ScramSha512)).await;
    eventually("the deleted SHA-256 credential to stop logging in", Duration::from_secs(15), || {
        let c = scram_client(&user, "pw-256", ScramMechanism::ScramSha256);
        async move { matches!(admin_for(c).await, Err(Error::Authentication { .. })).then_some(()) }
    })
    .await;
    // Deleting a credential the user does not have is the broker's per-user error.
    let results = admin
        .alter_user_scram_credentials([UserScramCredentialAlteration::delete(&user, ScramMechanism::ScramSha256)], Default::default())
        .await
        .unwrap();
    assert_eq!(results[0].result.as_ref().unwrap_err().code(), Some(ErrorCode::ResourceNotFound));
    let results = admin
        .alter_user_scram_credentials([UserScramCredentialAlteration::delete(&user, ScramMechanism::ScramSha512)], Default::default())
        .await
        .unwrap();
    results[0].result.as_ref().unwrap();
    until_eq("no credential left", Err(Some(ErrorCode::ResourceNotFound)), || scram_of(&admin, &user)).await.unwrap_err();
}

/// A producer_byte_rate for a user/client-id pair is set, read back (exactly, and not by a
/// strict filter on the user alone), and removed; validate_only changes nothing; a bad quota
/// name fails its entity only.
#[tokio::test]
async fn client_quotas_are_set_described_and_removed() {
    let admin = single_admin().await;
    let user = unique("adm-sec-quota-user");
    let client_id = unique("adm-sec-quota-client");
    let pair = ClientQuotaEntity::new().user(&user).client_id(&client_id);
    let user_only = ClientQuotaEntity::new().user(&user);
    let exact_pair = ClientQuotaFilter::contains([
        ClientQuotaFilterComponent::exact(QUOTA_USER, &user),
        ClientQuotaFilterComponent::exact(QUOTA_CLIENT_ID, &client_id),
    ]);

    // validate_only: accepted, nothing stored (the strict filter on the user below finds
    // nothing once the later quota of the pair has arrived).
    let r = admin
        .alter_client_quotas(
            [ClientQuotaAlteration::new(user_only.clone()).set("producer_byte_rate", 1024.0)],
            AlterClientQuotasOptions { validate_only: true, ..Default::default() },
        )
        .await
        .unwrap();
    r[0].result.as_ref().unwrap();

    let r = admin
        .alter_client_quotas(
            [
                ClientQuotaAlteration::new(pair.clone()).set("producer_byte_rate", 1_048_576.0).set("consumer_byte_rate", 2048.0),
                ClientQuotaAlteration::new(user_only.clone()).set("no_such_quota", 1.0),
            ],
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].entity, pair);
    r[0].result.as_ref().unwrap();
    let e = r[1].result.as_ref().unwrap_err();
    assert!(e.code().is_some(), "the broker refuses an unknown quota: {e}");

    let values = |kv: &[(&str, f64)]| kv.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let want = vec![ClientQuotaEntry {
        entity: pair.clone(),
        values: values(&[("consumer_byte_rate", 2048.0), ("producer_byte_rate", 1_048_576.0)]),
    }];
    let got = until_eq("the quotas", want, || quotas_of(&admin, &exact_pair)).await;
    // Non-strict on the user finds the pair; strict on the user alone does not (neither the
    // validate_only nor the refused user-only quota was stored).
    let by_user = ClientQuotaFilter::contains([ClientQuotaFilterComponent::exact(QUOTA_USER, &user)]);
    assert_eq!(admin.describe_client_quotas(&by_user, Default::default()).await.unwrap(), got);
    let strict = ClientQuotaFilter::contains_only([ClientQuotaFilterComponent::exact(QUOTA_USER, &user)]);
    assert!(admin.describe_client_quotas(&strict, Default::default()).await.unwrap().is_empty());
    let any_client = ClientQuotaFilter::contains([
        ClientQuotaFilterComponent::exact(QUOTA_USER, &user),
        ClientQuotaFilterComponent::any(QUOTA_CLIENT_ID),
    ]);
    assert_eq!(admin.describe_client_quotas(&any_client, Default::default()).await.unwrap(), got);

    // Remove one, then the other.
    let r = admin
        .alter_client_quotas([ClientQuotaAlteration::new(pair.clone()).remove("consumer_byte_rate")], Default::default())
        .await
        .unwrap();
    r[0].result.as_ref().unwrap();
    let want = vec![ClientQuotaEntry { entity: pair.clone(), values: values(&[("producer_byte_rate", 1_048_576.0)]) }];
    until_eq("the producer quota only", want, || quotas_of(&admin, &exact_pair)).await;
    let r = admin
        .alter_client_quotas([ClientQuotaAlteration::new(pair.clone()).remove("producer_byte_rate")], Default::default())
        .await
        .unwrap();
    r[0].result.as_ref().unwrap();
    until_eq("no quota left", vec![], || quotas_of(&admin, &exact_pair)).await;

    // Refused before sending.
    let e = admin.alter_client_quotas([ClientQuotaAlteration::new(ClientQuotaEntity::new()).set("producer_byte_rate", 1.0)], Default::default()).await;
    assert!(matches!(e, Err(Error::InvalidArgument(_))), "{e:?}");
    let e = admin.alter_client_quotas([ClientQuotaAlteration::new(pair).set("producer_byte_rate", f64::NAN)], Default::default()).await;
    assert!(matches!(e, Err(Error::InvalidArgument(_))), "{e:?}");
}

/// A SCRAM user creates a token over SASL (PLAINTEXT is refused, describe too), describes it, logs in
/// with it (SCRAM with `tokenauth=true`, both mechanisms), renews it (the new expiry shows), and
/// expires it (then it is gone and the login fails).
#[tokio::test]
async fn delegation_tokens_are_created_described_renewed_and_expired() {
    let admin = single_admin().await;
    let user = unique("adm-sec-token-user");
    create_scram_user(&admin, &user, "token-pw").await;
    let owner = KafkaPrincipal::user(&user);
    let renewer = KafkaPrincipal::user(unique("adm-sec-renewer"));

    // Not over PLAINTEXT.
    let e = admin.create_delegation_token(CreateDelegationTokenOptions::default()).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::DelegationTokenRequestNotAllowed), "{e}");

    let user_admin = login(scram_client(&user, "token-pw", ScramMechanism::ScramSha512)).await;
    let token = user_admin
        .create_delegation_token(CreateDelegationTokenOptions {
            renewers: vec![renewer.clone()],
            max_lifetime: Some(Duration::from_secs(3600)),
            ..Default::default()
        })
        .await
        .unwrap();
    let info = &token.info;
    assert_eq!(info.owner, owner);
    assert_eq!(info.token_requester, owner);
    assert!(!info.token_id.is_empty() && !token.hmac.is_empty());
    assert!(info.max_timestamp_ms - info.issue_timestamp_ms <= 3_600_000, "{info:?}");
    assert!(info.expiry_timestamp_ms <= info.max_timestamp_ms, "{info:?}");
    assert!(!format!("{token:?}").contains(&format!("{:?}", token.hmac)));

    let find = |tokens: Vec<DelegationToken>| tokens.into_iter().find(|t| t.info.token_id == token.info.token_id);
    let described = eventually("the token to be described", Duration::from_secs(10), || async {
        find(
            user_admin
                .describe_delegation_tokens(DescribeDelegationTokenOptions { owners: Some(vec![owner.clone()]), ..Default::default() })
                .await
                .unwrap(),
        )
    })
    .await;
    assert_eq!(described.hmac, token.hmac);
    assert_eq!(described.info.renewers, vec![renewer.clone()]);
    assert_eq!(described.info.expiry_timestamp_ms, token.info.expiry_timestamp_ms);
    // All the user may see includes it; the owners filter matches owners and renewers
    // (the broker's rule), not another principal. Not over PLAINTEXT, even for the super user.
    assert!(find(user_admin.describe_delegation_tokens(Default::default()).await.unwrap()).is_some());
    let e = admin.describe_delegation_tokens(Default::default()).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::DelegationTokenRequestNotAllowed), "{e}");
    let by = |p: KafkaPrincipal| DescribeDelegationTokenOptions { owners: Some(vec![p]), ..Default::default() };
    assert!(find(user_admin.describe_delegation_tokens(by(renewer.clone())).await.unwrap()).is_some());
    let stranger = KafkaPrincipal::user(unique("adm-sec-stranger"));
    assert!(find(user_admin.describe_delegation_tokens(by(stranger)).await.unwrap()).is_none());

    // A token for another owner (KIP-373; CreateTokens on the user is open, as it has no
    // ACL): the owner is that user, the requester ours.
    let theirs = user_admin
        .create_delegation_token(CreateDelegationTokenOptions {
            owner: Some(renewer.clone()),
            max_lifetime: Some(Duration::from_secs(60)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((&theirs.info.owner, &theirs.info.token_requester), (&renewer, &owner));
    let listed = eventually("the other owner's token to be described", Duration::from_secs(10), || async {
        user_admin
            .describe_delegation_tokens(by(renewer.clone()))
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.info.token_id == theirs.info.token_id)
    })
    .await;
    assert_eq!((&listed.info.owner, &listed.info.token_requester), (&renewer, &owner));
    // Only its owner and renewers may expire it, not its requester.
    let e = user_admin.expire_delegation_token(&theirs.hmac, Default::default()).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::DelegationTokenOwnerMismatch), "{e}");

    // Log in with the token over both SCRAM mechanisms: the session works (metadata), and it is
    // a token session, which the broker does not let ask about tokens (a SCRAM user's may).
    let token_login = |sha512: bool| {
        ClientConfig::new(sasl_plaintext())
            .security_protocol(SecurityProtocol::SaslPlaintext)
            .sasl(SaslConfig::DelegationToken {
                token_id: token.info.token_id.clone(),
                hmac_base64: token.hmac_base64(),
                sha512,
            })
            .connect_timeout(Duration::from_secs(8))
    };
    for sha512 in [true, false] {
        let token_admin = login(token_login(sha512)).await;
        assert!(token_admin.list_topics(false).await.is_ok());
        let e = token_admin.describe_delegation_tokens(Default::default()).await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::DelegationTokenRequestNotAllowed), "a token session: {e}");
    }
    let wrong = ClientConfig::new(sasl_plaintext())
        .security_protocol(SecurityProtocol::SaslPlaintext)
        .sasl(SaslConfig::DelegationToken {
            token_id: token.info.token_id.clone(),
            hmac_base64: "bm90LXRoZS1obWFj".into(),
            sha512: true,
        })
        .connect_timeout(Duration::from_secs(8));
    assert!(admin_for(wrong).await.is_err(), "a wrong HMAC does not log in");

    // Renew for 10 minutes: the expiry moves to about now + 10 min.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let expiry = user_admin
        .renew_delegation_token(
            &token.hmac,
            RenewDelegationTokenOptions { renew_period: Some(Duration::from_secs(600)), ..Default::default() },
        )
        .await
        .unwrap();
    assert!((expiry - (now + 600_000)).abs() < 30_000, "expiry {expiry}, now {now}");
    assert_ne!(expiry, token.info.expiry_timestamp_ms);
    let renewed = eventually("the renewal to show", Duration::from_secs(10), || async {
        find(user_admin.describe_delegation_tokens(Default::default()).await.unwrap())
            .filter(|t| t.info.expiry_timestamp_ms == expiry)
    })
    .await;
    assert_eq!(renewed.info.max_timestamp_ms, token.info.max_timestamp_ms);
    let e = user_admin.renew_delegation_token(b"not-a-token-hmac", Default::default()).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::DelegationTokenNotFound), "{e}");

    // Expire now: it is gone.
    user_admin.expire_delegation_token(&token.hmac, Default::default()).await.unwrap();
    eventually("the expired token to be gone", Duration::from_secs(10), || async {
        find(user_admin.describe_delegation_tokens(Default::default()).await.unwrap()).is_none().then_some(())
    })
    .await;
    let e = user_admin.renew_delegation_token(&token.hmac, Default::default()).await.unwrap_err();
    assert!(
        matches!(e.code(), Some(ErrorCode::DelegationTokenNotFound | ErrorCode::DelegationTokenExpired)),
        "{e}"
    );
    eventually("the expired token's login to fail", Duration::from_secs(15), || async {
        admin_for(token_login(true)).await.is_err().then_some(())
    })
    .await;
}
