//! Where each admin request goes, and the retry loop around it.
//!
//! Every admin operation sends through one of these: to any broker, to the controller (a
//! KRaft broker forwards), to one broker, to every broker (answers merged by the caller), to
//! a group or transaction coordinator (looked up with FindCoordinator, batched for many
//! keys on v4+, KIP-699), or to each partition's leader. Each attempt runs inside
//! `ClientCore::with_retries`, whose `on_error` is the one place that decides whether an
//! error is retried (NOT_CONTROLLER, NOT_LEADER_OR_FOLLOWER, COORDINATOR_LOAD_IN_PROGRESS,
//! a broken connection, ...) and invalidates the metadata it makes stale; the coordinator
//! paths look a coordinator up again after an error that says it moved.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use kafka_protocol::messages::FindCoordinatorRequest;
use kafka_protocol::protocol::{Request, StrBytes};

use super::AdminClient;
use crate::client::Retry;
use crate::consumer::TopicPartition;
use crate::error::{Error, ErrorCode, Result};
use crate::network::{BrokerConnection, ConnKind};

/// FindCoordinator key type of a consumer group.
pub(crate) const GROUP_KEY: i8 = 0;
/// FindCoordinator key type of a transactional id.
pub(crate) const TXN_KEY: i8 = 1;

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Any live broker (one already connected first).
    Any,
    /// The controller as the metadata names it; in KRaft the broker forwards.
    Controller,
    /// One broker by id.
    Broker(i32),
}

/// The error for request `R` at a version older than the `min` that `what` (an operation
/// or one of its options) needs: an [`Error::UnsupportedVersion`] naming `what` and the
/// versions it needs. A request builder returns it without knowing the broker; `send_to`
/// (and [`require_version`], which has the connection) fill in its address and range.
pub(crate) fn needs_version<R: Request>(what: &'static str, min: i16) -> Error {
    let client_max = crate::protocol::client_range(R::KEY).map(|r| r.1).unwrap_or(min).max(min);
    Error::UnsupportedVersion { broker: String::new(), api: what, client_min: min, client_max, broker_range: None }
}

/// Fills in the broker (address and `R`'s version range) of an error from [`needs_version`].
pub(crate) fn name_broker<R: Request>(e: Error, conn: &BrokerConnection) -> Error {
    match e {
        Error::UnsupportedVersion { broker, api, client_min, client_max, broker_range: None } if broker.is_empty() => {
            Error::UnsupportedVersion {
                broker: conn.addr().to_owned(),
                api,
                client_min,
                client_max,
                broker_range: conn.api_versions().range(R::KEY),
            }
        }
        e => e,
    }
}

/// Refuses `version` of `R` on `conn` when `what` needs at least `min` (see
/// [`needs_version`]), for callers that hold the connection (per-leader, per-coordinator).
pub(crate) fn require_version<R: Request>(conn: &BrokerConnection, version: i16, min: i16, what: &'static str) -> Result<()> {
    if version >= min { Ok(()) } else { Err(name_broker::<R>(needs_version::<R>(what, min), conn)) }
}

impl AdminClient {
    /// The timeout of a call: its own, else `default_api_timeout`.
    pub(crate) fn call_timeout(&self, own: Option<Duration>) -> Duration {
        own.unwrap_or(self.timeout)
    }

    /// A timeout as the `timeout_ms` field of a request.
    pub(crate) fn timeout_ms(t: Duration) -> i32 {
        t.as_millis().min(i32::MAX as u128) as i32
    }

    /// A connection to `target`.
    pub(crate) async fn connect_to(&self, target: Target) -> Result<BrokerConnection> {
        match target {
            Target::Any => self.core.any_broker().await,
            Target::Controller => self.core.controller().await,
            Target::Broker(id) => self.core.broker(id, ConnKind::Default).await,
        }
    }

    /// Sends the request `build(version)` makes (`version`: the newest both sides speak; an
    /// API the broker lacks is `Error::UnsupportedVersion` naming it and the broker's range)
    /// to `target`, retrying until `timeout`. `check` looks at the answer: an `Err` it
    /// returns is treated as the attempt's error (so a retriable top-level code such as
    /// NOT_CONTROLLER or COORDINATOR_LOAD_IN_PROGRESS is retried, another is returned).
    /// A builder refuses a version too old for what it was asked with [`needs_version`];
    /// the broker's address and range are filled in here.
    pub(crate) async fn send_to<R, B, C>(
        &self,
        what: &'static str,
        target: Target,
        timeout: Duration,
        build: B,
        check: C,
    ) -> Result<R::Response>
    where
        R: Request,
        B: Fn(i16) -> Result<R>,
        C: Fn(&R::Response) -> Result<()>,
    {
        self.core
            .with_retries(what, timeout, || async {
                let conn = self.connect_to(target).await?;
                let version = conn.version_for::<R>()?;
                let req = build(version).map_err(|e| name_broker::<R>(e, &conn))?;
                let resp = conn.send_at(&req, version).await?;
                check(&resp)?;
                Ok(resp)
            })
            .await
    }

    /// As [`AdminClient::send_to`], for an operation that needs version `need.0` of `R` or
    /// newer: an older broker is an [`Error::UnsupportedVersion`] naming `need.1`, the
    /// versions it needs and the broker's range, before anything is sent.
    pub(crate) async fn send_to_at_least<R, B, C>(
        &self,
        api: &'static str,
        target: Target,
        timeout: Duration,
        need: (i16, &'static str),
        build: B,
        check: C,
    ) -> Result<R::Response>
    where
        R: Request,
        B: Fn(i16) -> Result<R>,
        C: Fn(&R::Response) -> Result<()>,
    {
        let (min, what) = need;
        let build = |v: i16| if v < min { Err(needs_version::<R>(what, min)) } else { build(v) };
        self.send_to::<R, _, _>(api, target, timeout, build, check).await
    }

    /// As [`AdminClient::send_to`], to every live broker at once; one result per broker id,
    /// sorted by id (the caller merges: list_groups, list_transactions, describe_log_dirs).
    pub(crate) async fn send_to_all<R, B, C>(
        &self,
        what: &'static str,
        timeout: Duration,
        build: B,
        check: C,
    ) -> Result<Vec<(i32, Result<R::Response>)>>
    where
        R: Request,
        B: Fn(i16) -> Result<R>,
        C: Fn(&R::Response) -> Result<()>,
    {
        let cluster = self.core.with_retries("Metadata", timeout, || self.core.cluster()).await?;
        let ids: Vec<i32> = cluster.brokers.keys().copied().collect();
        let calls = ids.iter().map(|&id| {
            let (build, check) = (&build, &check);
            async move { (id, self.send_to::<R, _, _>(what, Target::Broker(id), timeout, build, check).await) }
        });
        Ok(futures::future::join_all(calls).await)
    }

    /// The coordinators of many keys of one type: one FindCoordinator for all of them on
    /// v4+ (KIP-699), one per key before. A key whose lookup fails for good (say
    /// GROUP_AUTHORIZATION_FAILED) has its error; retriable answers are retried until
    /// `timeout`, after which the keys still unresolved carry the timeout error.
    pub(crate) async fn find_coordinators(
        &self,
        key_type: i8,
        keys: &[String],
        timeout: Duration,
    ) -> HashMap<String, Result<i32>> {
        let done: Mutex<HashMap<String, Result<i32>>> = Mutex::new(HashMap::new());
        let outcome = self
            .core
            .with_retries("FindCoordinator", timeout, || async {
                let pending: Vec<String> = {
                    let d = done.lock().unwrap();
                    keys.iter().filter(|k| !d.contains_key(*k)).cloned().collect()
                };
                if pending.is_empty() {
                    return Ok(());
                }
                let conn = self.core.any_broker().await?;
                let version = conn.version_for::<FindCoordinatorRequest>()?;
                let mut answers: Vec<(String, i16, Option<String>, i32)> = Vec::new();
                if version >= 4 {
                    let req = FindCoordinatorRequest::default()
                        .with_key_type(key_type)
                        .with_coordinator_keys(pending.iter().map(|k| StrBytes::from_string(k.clone())).collect());
                    let resp = conn.send_at(&req, version).await?;
                    for c in resp.coordinators {
                        answers.push((c.key.to_string(), c.error_code, c.error_message.map(|m| m.to_string()), c.node_id.0));
                    }
                } else {
                    for k in &pending {
                        let req = FindCoordinatorRequest::default()
                            .with_key(StrBytes::from_string(k.clone()))
                            .with_key_type(key_type);
                        let resp = conn.send_at(&req, version).await?;
                        answers.push((k.clone(), resp.error_code, resp.error_message.map(|m| m.to_string()), resp.node_id.0));
                    }
                }
                let mut retry: Option<Error> = None;
                let mut d = done.lock().unwrap();
                for (key, code, msg, node) in answers {
                    if !pending.contains(&key) {
                        continue;
                    }
                    match Error::check_code(code, "FindCoordinator", msg.as_deref(), None, None) {
                        Ok(()) => {
                            d.insert(key, Ok(node));
                        }
                        Err(e) => {
                            let e = annotate(e, &key);
                            if self.core.on_error(&e) == Retry::Again {
                                retry.get_or_insert(e);
                            } else {
                                d.insert(key, Err(e));
                            }
                        }
                    }
                }
                if let Some(k) = pending.iter().find(|k| !d.contains_key(*k)) {
                    return Err(retry.unwrap_or_else(|| {
                        Error::broker(
                            ErrorCode::CoordinatorNotAvailable,
                            "FindCoordinator",
                            Some(format!("the answer has no coordinator for {k}")),
                            None,
                            None,
                        )
                    }));
                }
                Ok(())
            })
            .await;
        let mut d = done.into_inner().unwrap();
        if let Err(e) = outcome {
            for k in keys {
                d.entry(k.clone()).or_insert_with(|| Err(annotate(e.clone(), k)));
            }
        }
        d
    }

    /// Runs `call(leader, partitions)` for the partitions each broker leads, all leaders at
    /// once, and returns one result per partition. `call` answers per partition; a
    /// partition whose error is retriable (NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, a
    /// broken connection to its leader, ...) is sent again, to its leader after a metadata
    /// refresh, until `timeout`; the others keep their result. A topic the cluster does not
    /// have is UNKNOWN_TOPIC_OR_PARTITION at once (as the Java client's metadata stage).
    pub(crate) async fn per_leader<T, F, Fut>(
        &self,
        what: &'static str,
        partitions: &[TopicPartition],
        timeout: Duration,
        call: F,
    ) -> BTreeMap<TopicPartition, Result<T>>
    where
        F: Fn(BrokerConnection, Vec<TopicPartition>) -> Fut,
        Fut: Future<Output = Result<Vec<(TopicPartition, Result<T>)>>>,
    {
        let done: Mutex<BTreeMap<TopicPartition, Result<T>>> = Mutex::new(BTreeMap::new());
        let mut topics: Vec<String> = partitions.iter().map(|p| p.topic.clone()).collect();
        topics.sort();
        topics.dedup();
        let outcome = self
            .core
            .with_retries(what, timeout, || async {
                let pending: Vec<TopicPartition> = {
                    let d = done.lock().unwrap();
                    partitions.iter().filter(|p| !d.contains_key(*p)).cloned().collect()
                };
                if pending.is_empty() {
                    return Ok(());
                }
                let cluster = self.core.metadata.refresh_topics(&topics).await?;
                let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
                let mut retry: Option<Error> = None;
                for tp in pending {
                    let Some(topic) = cluster.topics.get(&tp.topic) else {
                        let (code, msg) = cluster
                            .topic_errors
                            .get(&tp.topic)
                            .cloned()
                            .unwrap_or((ErrorCode::UnknownTopicOrPartition, None));
                        let e = Error::broker(code, what, msg, Some(tp.topic.clone()), Some(tp.partition));
                        if code == ErrorCode::UnknownTopicOrPartition || self.core.on_error(&e) == Retry::No {
                            done.lock().unwrap().insert(tp, Err(e));
                        } else {
                            retry.get_or_insert(e);
                        }
                        continue;
                    };
                    match topic.partitions.iter().find(|p| p.partition == tp.partition) {
                        None => {
                            let e = Error::broker(
                                ErrorCode::UnknownTopicOrPartition,
                                what,
                                Some(format!("topic {} has {} partitions", tp.topic, topic.partitions.len())),
                                Some(tp.topic.clone()),
                                Some(tp.partition),
                            );
                            done.lock().unwrap().insert(tp, Err(e));
                        }
                        Some(p) => match p.leader {
                            Some(l) if l >= 0 => by_leader.entry(l).or_default().push(tp),
                            _ => {
                                self.core.metadata.invalidate();
                                retry.get_or_insert(Error::broker(
                                    ErrorCode::LeaderNotAvailable,
                                    what,
                                    None,
                                    Some(tp.topic.clone()),
                                    Some(tp.partition),
                                ));
                            }
                        },
                    }
                }
                let calls = by_leader.into_iter().map(|(leader, tps)| {
                    let call = &call;
                    async move {
                        let r = async { call(self.core.broker(leader, ConnKind::Default).await?, tps.clone()).await }.await;
                        (tps, r)
                    }
                });
                self.file_answers(futures::future::join_all(calls).await, &done, &mut retry);
                retry.map_or(Ok(()), Err)
            })
            .await;
        let mut d = settle(done, partitions, outcome);
        // A partition the leader's answer left out.
        for tp in partitions {
            d.entry(tp.clone()).or_insert_with(|| {
                Err(Error::broker(
                    ErrorCode::UnknownTopicOrPartition,
                    what,
                    Some("the leader's answer has no result for the partition".into()),
                    Some(tp.topic.clone()),
                    Some(tp.partition),
                ))
            });
        }
        d
    }

    /// Runs `call(connection, coordinator id, keys)` for the keys (group ids with
    /// `GROUP_KEY`, transactional ids with `TXN_KEY`) each coordinator owns, all
    /// coordinators at once, and returns one result per key. The coordinators are looked up
    /// together (KIP-699). A key whose answer is retriable (NOT_COORDINATOR,
    /// COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS, a
    /// broken connection, ...) or that the answer left out is looked up and sent again until
    /// `timeout`; the others keep their result.
    pub(crate) async fn per_coordinator<T, F, Fut>(
        &self,
        key_type: i8,
        what: &'static str,
        groups: &[String],
        timeout: Duration,
        call: F,
    ) -> BTreeMap<String, Result<T>>
    where
        F: Fn(BrokerConnection, i32, Vec<String>) -> Fut,
        Fut: Future<Output = Result<Vec<(String, Result<T>)>>>,
    {
        let deadline = Instant::now() + timeout;
        let done: Mutex<BTreeMap<String, Result<T>>> = Mutex::new(BTreeMap::new());
        let outcome = self
            .core
            .with_retries(what, timeout, || async {
                let pending: Vec<String> = {
                    let d = done.lock().unwrap();
                    groups.iter().filter(|g| !d.contains_key(*g)).cloned().collect()
                };
                if pending.is_empty() {
                    return Ok(());
                }
                let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
                let coordinators = self.find_coordinators(key_type, &pending, left).await;
                let mut by_node: BTreeMap<i32, Vec<String>> = BTreeMap::new();
                let mut retry: Option<Error> = None;
                for g in pending {
                    match coordinators.get(&g) {
                        Some(Ok(node)) => by_node.entry(*node).or_default().push(g),
                        Some(Err(e)) if self.core.on_error(e) == Retry::Again => {
                            retry.get_or_insert(e.clone());
                        }
                        Some(Err(e)) => {
                            done.lock().unwrap().insert(g, Err(e.clone()));
                        }
                        None => {
                            retry.get_or_insert(Error::broker(
                                ErrorCode::CoordinatorNotAvailable,
                                "FindCoordinator",
                                Some(format!("no coordinator for {g}")),
                                None,
                                None,
                            ));
                        }
                    }
                }
                let calls = by_node.into_iter().map(|(node, gs)| {
                    let call = &call;
                    async move {
                        let r = async { call(self.core.broker(node, ConnKind::Default).await?, node, gs.clone()).await }.await;
                        (gs, r)
                    }
                });
                let answers: Vec<_> = futures::future::join_all(calls).await;
                let asked: Vec<String> = answers.iter().flat_map(|(gs, _)| gs.iter().cloned()).collect();
                self.file_answers(answers, &done, &mut retry);
                // A key the answer left out is sent again.
                if let Some(g) = asked.iter().find(|g| !done.lock().unwrap().contains_key(*g)) {
                    retry.get_or_insert(Error::broker(
                        ErrorCode::NotCoordinator,
                        what,
                        Some(format!("the coordinator's answer has no result for {g}")),
                        None,
                        None,
                    ));
                }
                retry.map_or(Ok(()), Err)
            })
            .await;
        settle(done, groups, outcome)
    }

    /// Files one round's answers of per-target calls (`per_leader`, `per_coordinator`): per
    /// target, the keys it was asked about and the call's result. A whole-call error, or a
    /// key's, that `on_error` retries leaves the keys pending and becomes the round's `retry`
    /// error. Anything else is the key's result; answers about keys not asked are dropped.
    pub(crate) fn file_answers<K: Ord, T>(
        &self,
        answers: Vec<TargetAnswer<K, T>>,
        done: &Mutex<BTreeMap<K, Result<T>>>,
        retry: &mut Option<Error>,
    ) {
        let mut d = done.lock().unwrap();
        for (asked, r) in answers {
            match r {
                Err(e) => {
                    if self.core.on_error(&e) == Retry::Again {
                        retry.get_or_insert(e);
                    } else {
                        for k in asked {
                            d.insert(k, Err(e.clone()));
                        }
                    }
                }
                Ok(results) => {
                    for (k, r) in results {
                        if !asked.contains(&k) {
                            continue;
                        }
                        match r {
                            Err(e) => {
                                if self.core.on_error(&e) == Retry::Again {
                                    retry.get_or_insert(e);
                                } else {
                                    d.insert(k, Err(e));
                                }
                            }
                            ok => {
                                d.insert(k, ok);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One target's answer in a per-key round: the keys it was asked about, and the call's
/// result (a result per key, or one error for the whole call).
pub(crate) type TargetAnswer<K, T> = (Vec<K>, Result<Vec<(K, Result<T>)>>);

/// The results of a per-key round once the retry loop ended: every key without a result
/// gets the loop's error (its timeout, or the error it gave up on).
fn settle<K: Ord + Clone, T>(done: Mutex<BTreeMap<K, Result<T>>>, keys: &[K], outcome: Result<()>) -> BTreeMap<K, Result<T>> {
    let mut d = done.into_inner().unwrap();
    if let Err(e) = outcome {
        for k in keys {
            d.entry(k.clone()).or_insert_with(|| Err(e.clone()));
        }
    }
    d
}

/// Adds the key (group or transactional id) to a coordinator-lookup error's message.
fn annotate(e: Error, key: &str) -> Error {
    match e {
        Error::Broker(mut b) => {
            b.message = Some(match b.message.take() {
                Some(m) => format!("{key}: {m}"),
                None => key.to_owned(),
            });
            Error::Broker(b)
        }
        other => other,
    }
}
