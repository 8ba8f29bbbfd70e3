//! The TransactionManager: the state of a transactional producer and every request to its
//! transaction coordinator (and, for `send_offsets_to_transaction`, to the group
//! coordinator). See the module docs of [`crate::txn`] for the state machine.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, GroupId, InitProducerIdRequest, ProduceRequest,
    ProducerId, TopicName, TransactionalId, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::client::ClientCore;
use crate::consumer::offsets::Coordinator;
use crate::consumer::{ConsumerGroupMetadata, OffsetAndMetadata, TopicPartition};
use crate::error::{Error, ErrorCode, Result};
use crate::network::{BrokerConnection, ConnKind};
use crate::producer::sender::{Gate, TransactionHooks};
use crate::producer::{ProducerIdentity, RecordAccumulator};

/// Backoff after CONCURRENT_TRANSACTIONS (the coordinator is finishing the previous
/// transaction; Java retries after 20 ms as well).
const CONCURRENT_TRANSACTIONS_BACKOFF: Duration = Duration::from_millis(20);

/// The states of a transactional producer (Java's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Uninitialized,
    Initializing,
    Ready,
    InTransaction,
    Committing,
    Aborting,
    AbortableError,
    FatalError,
}

struct Inner {
    state: State,
    /// The error of `AbortableError` / `FatalError`.
    error: Option<Error>,
    /// Transaction protocol v2 (KIP-890) for the current transaction.
    tv2: bool,
    /// What the coordinator offered at the last check; applied at `begin_transaction`.
    next_tv2: bool,
    /// The coordinator may know the transaction, so it must end with EndTxn (Java's
    /// `transactionStarted`; EndTxn for a transaction it does not know is
    /// INVALID_TXN_STATE). v1: an AddPartitionsToTxn succeeded or an AddOffsetsToTxn was
    /// sent; v2: a Produce or TxnOffsetCommit of the transaction was sent.
    coordinator_knows: bool,
    /// v1: partitions in the transaction, and those waiting for AddPartitionsToTxn.
    added: HashMap<String, BTreeSet<i32>>,
    pending: BTreeSet<(String, i32)>,
    /// An AddPartitionsToTxn task is running.
    adding: bool,
    /// EndTxn(commit) was sent and its outcome is unknown: the next commit retries it;
    /// an abort re-initialises (never EndTxn(abort) with the same epoch).
    commit_unknown: bool,
    /// A batch failed after it got a sequence: v1 bumps the epoch after the abort (KIP-360).
    epoch_bump_needed: bool,
    /// The first failed batch of the current transaction.
    batch_error: Option<Error>,
}

/// The transaction state shared by the producer handle, its `send` path and the Sender.
pub(crate) struct TransactionManager {
    transactional_id: Arc<str>,
    transaction_timeout: Duration,
    core: Arc<ClientCore>,
    acc: Arc<RecordAccumulator>,
    identity: Arc<Mutex<Option<ProducerIdentity>>>,
    coordinator: Coordinator,
    inner: Mutex<Inner>,
    /// One public call at a time (init, begin, send_offsets, commit, abort).
    op: tokio::sync::Mutex<()>,
}

/// How a transactional call's error moves the state.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Fatal,
    Abortable,
    /// Outcome unknown or temporary: the state stays, the call may be repeated.
    Retriable,
}

fn classify(e: &Error) -> Kind {
    if e.is_fatal() {
        return Kind::Fatal;
    }
    if e.is_retriable() {
        return Kind::Retriable;
    }
    Kind::Abortable
}

/// A coordinator's INVALID_PRODUCER_EPOCH means another producer took the transactional
/// id: report it as PRODUCER_FENCED (fatal), as the Java client does.
fn fenced_if_stale(e: Error) -> Error {
    match e.code() {
        Some(ErrorCode::InvalidProducerEpoch) => Error::broker(
            ErrorCode::ProducerFenced,
            e.broker_error().and_then(|b| b.api).unwrap_or("transaction coordinator"),
            Some(format!("the coordinator answered INVALID_PRODUCER_EPOCH: another producer with the same transactional.id has a newer epoch ({e})")),
            None,
            None,
        ),
        _ => e,
    }
}

/// The most telling error of a response's per-partition codes (a non-retriable one
/// before a retriable one); OPERATION_NOT_ATTEMPTED (another partition failed) is skipped.
fn partition_errors<'a>(api: &'static str, codes: impl Iterator<Item = (&'a str, i32, i16)>) -> Result<()> {
    let mut first: Option<Error> = None;
    for (topic, partition, code) in codes {
        if code == ErrorCode::OperationNotAttempted.code() {
            continue;
        }
        if let Err(e) = Error::check_code(code, api, None, Some(topic), Some(partition)) {
            if first.as_ref().is_none_or(|f| f.is_retriable() && !e.is_retriable()) {
                first = Some(e);
            }
        }
    }
    match first {
        Some(e) => Err(fenced_if_stale(e)),
        None => Ok(()),
    }
}

/// The codes the Java client's handler for AddPartitionsToTxn treats as abortable; any
/// other code that is not retriable is "unexpected" there, and fatal.
const ADD_PARTITIONS_ABORTABLE: &[ErrorCode] = &[
    ErrorCode::TopicAuthorizationFailed,
    ErrorCode::UnknownProducerId,
    ErrorCode::InvalidProducerIdMapping,
    ErrorCode::TransactionAbortable,
];
/// The same for AddOffsetsToTxn.
const ADD_OFFSETS_ABORTABLE: &[ErrorCode] = &[
    ErrorCode::GroupAuthorizationFailed,
    ErrorCode::UnknownProducerId,
    ErrorCode::InvalidProducerIdMapping,
    ErrorCode::TransactionAbortable,
];
/// The same for TxnOffsetCommit (the group refused this member's offsets, or the group is
/// not authorised).
const TXN_OFFSET_COMMIT_ABORTABLE: &[ErrorCode] = &[
    ErrorCode::GroupAuthorizationFailed,
    ErrorCode::FencedInstanceId,
    ErrorCode::UnknownMemberId,
    ErrorCode::IllegalGeneration,
    ErrorCode::TransactionAbortable,
];

/// A broker's answer to a request inside a transaction, classed as the Java client's
/// TransactionManager does: retriable codes stay retriable, the `abortable` ones stay
/// abortable, and every other code ("Unexpected error in ...Response" there) is fatal.
/// Errors that carry no broker code (timeouts, I/O) are left as they are.
fn unexpected_is_fatal(e: Error, abortable: &[ErrorCode]) -> Error {
    match e.code() {
        Some(code) if !e.is_retriable() && !e.is_fatal() && !abortable.contains(&code) => e.into_fatal(),
        _ => e,
    }
}

fn txn_id(id: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(id.to_owned()))
}

impl TransactionHooks for TransactionManager {
    fn transactional_id(&self) -> Arc<str> {
        TransactionManager::transactional_id(self)
    }
    fn uses_v2(&self) -> bool {
        TransactionManager::uses_v2(self)
    }
    fn on_produce_sent(&self) {
        TransactionManager::on_produce_sent(self)
    }
    fn gate(&self, topic: &str, partition: i32) -> Gate {
        TransactionManager::gate(self, topic, partition)
    }
    fn on_batch_failed(&self, e: &Error, had_sequence: bool) {
        TransactionManager::on_batch_failed(self, e, had_sequence)
    }
}

impl TransactionManager {
    pub(crate) fn new(
        transactional_id: String,
        transaction_timeout: Duration,
        core: Arc<ClientCore>,
        acc: Arc<RecordAccumulator>,
        identity: Arc<Mutex<Option<ProducerIdentity>>>,
    ) -> TransactionManager {
        TransactionManager {
            coordinator: Coordinator::for_transactions(transactional_id.clone()),
            transactional_id: Arc::from(transactional_id),
            transaction_timeout,
            core,
            acc,
            identity,
            inner: Mutex::new(Inner {
                state: State::Uninitialized,
                error: None,
                tv2: false,
                next_tv2: false,
                coordinator_knows: false,
                added: HashMap::new(),
                pending: BTreeSet::new(),
                adding: false,
                commit_unknown: false,
                epoch_bump_needed: false,
                batch_error: None,
            }),
            op: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn transactional_id(&self) -> Arc<str> {
        self.transactional_id.clone()
    }

    /// Whether the current (or next) transaction uses protocol v2 (KIP-890).
    pub(crate) fn uses_v2(&self) -> bool {
        let i = self.inner.lock().unwrap();
        if i.state == State::InTransaction || i.state == State::Committing || i.state == State::Aborting {
            i.tv2
        } else {
            i.next_tv2
        }
    }

    /// The error to return in an error state, or `None` in any other state.
    fn error_state(i: &Inner) -> Option<Error> {
        match i.state {
            State::FatalError => i.error.clone(),
            State::AbortableError => {
                Some(Error::TransactionAbortable(Box::new(i.error.clone().unwrap_or_else(|| Error::InvalidTransactionState("abortable error".into())))))
            }
            _ => None,
        }
    }

    /// Enters the fatal state. The error returned (and every later one) says `is_fatal()`,
    /// whatever the cause was ([`Error::into_fatal`]).
    fn to_fatal(&self, e: Error) -> Error {
        let e = e.into_fatal();
        warn!(transactional_id = %self.transactional_id, error = %e, "transactional producer failed fatally");
        let mut i = self.inner.lock().unwrap();
        i.state = State::FatalError;
        i.error = Some(e.clone());
        drop(i);
        self.acc.set_fatal(e.clone());
        self.acc.wake.notify_one();
        e
    }

    fn to_abortable(&self, e: Error) -> Error {
        let cause = match e {
            Error::TransactionAbortable(c) => *c,
            other => other,
        };
        let mut i = self.inner.lock().unwrap();
        if i.state != State::FatalError {
            i.state = State::AbortableError;
            i.error = Some(cause.clone());
        }
        drop(i);
        self.acc.wake.notify_one();
        Error::TransactionAbortable(Box::new(cause))
    }

    /// Moves the state after a failed call: fatal and abortable errors change it,
    /// retriable ones (timeouts, unknown outcomes) leave it for the caller to retry.
    fn fail(&self, e: Error) -> Error {
        match classify(&e) {
            Kind::Fatal => self.to_fatal(e),
            Kind::Abortable => self.to_abortable(e),
            Kind::Retriable => e,
        }
    }

    fn wrong_state(call: &str, state: State) -> Error {
        let hint = match state {
            State::Uninitialized | State::Initializing => "call init_transactions first",
            State::Ready => "call begin_transaction first",
            State::InTransaction => "a transaction is open: commit or abort it first",
            State::Committing => "a commit is in progress or timed out: call commit_transaction again",
            State::Aborting => "an abort is in progress or timed out: call abort_transaction again",
            State::AbortableError | State::FatalError => "",
        };
        Error::InvalidTransactionState(format!("cannot {call} in state {state:?}; {hint}"))
    }

    // ---- the send path and the Sender ----------------------------------------------

    /// Called by `send` before appending a record to `topic`-`partition`: the producer
    /// must be in a transaction; v1 registers the partition for AddPartitionsToTxn.
    pub(crate) fn on_send(self: &Arc<Self>, topic: &str, partition: i32) -> Result<()> {
        let mut i = self.inner.lock().unwrap();
        if let Some(e) = Self::error_state(&i) {
            return Err(e);
        }
        if i.state != State::InTransaction {
            return Err(Self::wrong_state("send", i.state));
        }
        if i.tv2 || i.added.get(topic).is_some_and(|s| s.contains(&partition)) {
            return Ok(());
        }
        let new = i.pending.insert((topic.to_owned(), partition));
        if new && !i.adding {
            i.adding = true;
            drop(i);
            let me = self.clone();
            tokio::spawn(async move { me.add_partitions_loop().await });
        }
        Ok(())
    }

    /// The Sender dispatched a Produce request of the transaction (v2: it may have started
    /// the transaction at the coordinator).
    pub(crate) fn on_produce_sent(&self) {
        self.inner.lock().unwrap().coordinator_knows = true;
    }

    /// The Sender's question for a partition with ready batches.
    pub(crate) fn gate(&self, topic: &str, partition: i32) -> Gate {
        let i = self.inner.lock().unwrap();
        if i.tv2 || i.added.get(topic).is_some_and(|s| s.contains(&partition)) {
            return Gate::Send;
        }
        match i.state {
            State::FatalError => Gate::Fail(i.error.clone().unwrap_or(Error::Closed)),
            State::AbortableError | State::Aborting => Gate::Fail(Error::TransactionAbortable(Box::new(
                i.error.clone().unwrap_or_else(|| {
                    Error::InvalidTransactionState(format!(
                        "the transaction was aborted before {topic}-{partition} was added to it; the record was not sent"
                    ))
                }),
            ))),
            _ => Gate::Hold,
        }
    }

    /// A batch of the transaction failed: the transaction must be aborted (or the producer
    /// is fenced). `had_sequence`: the failure leaves a sequence gap.
    pub(crate) fn on_batch_failed(&self, e: &Error, had_sequence: bool) {
        if e.is_fatal() {
            self.to_fatal(e.clone());
            return;
        }
        let mut i = self.inner.lock().unwrap();
        if had_sequence {
            i.epoch_bump_needed = true;
        }
        if i.batch_error.is_none() {
            i.batch_error = Some(e.clone());
        }
        if i.state == State::InTransaction {
            i.state = State::AbortableError;
            i.error = Some(e.clone());
        }
    }

    /// Sends AddPartitionsToTxn for the pending partitions until none is left (v1).
    async fn add_partitions_loop(self: Arc<Self>) {
        loop {
            let batch: Vec<(String, i32)> = {
                let mut i = self.inner.lock().unwrap();
                if i.pending.is_empty() || !matches!(i.state, State::InTransaction | State::Committing) {
                    i.adding = false;
                    drop(i);
                    self.acc.wake.notify_one();
                    return;
                }
                i.pending.iter().cloned().collect()
            };
            let deadline = Instant::now() + self.transaction_timeout;
            let result = self.add_partitions(&batch, deadline).await.map_err(|e| unexpected_is_fatal(e, ADD_PARTITIONS_ABORTABLE));
            let mut i = self.inner.lock().unwrap();
            match result {
                Ok(()) => {
                    i.coordinator_knows = true;
                    for (t, p) in batch {
                        i.pending.remove(&(t.clone(), p));
                        i.added.entry(t).or_default().insert(p);
                    }
                    drop(i);
                    self.acc.wake.notify_one();
                }
                Err(e) => {
                    i.pending.clear();
                    i.adding = false;
                    drop(i);
                    // A timeout here leaves the batches unsendable: the transaction cannot
                    // commit, so every error makes it abortable (or fatal).
                    if classify(&e) == Kind::Fatal {
                        self.to_fatal(e);
                    } else {
                        self.to_abortable(e);
                    }
                    return;
                }
            }
        }
    }

    async fn add_partitions(&self, parts: &[(String, i32)], deadline: Instant) -> Result<()> {
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in parts {
            topics.entry(t).or_default().push(*p);
        }
        let id = self.current_identity()?;
        self.with_coordinator(&self.coordinator, "AddPartitionsToTxn", deadline, |conn| {
            let topics = topics
                .iter()
                .map(|(t, ps)| {
                    AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(StrBytes::from_string((*t).to_owned())))
                        .with_partitions(ps.clone())
                })
                .collect::<Vec<_>>();
            async move {
                // v4+ is the brokers' batched form; clients send v3 at most.
                let version = conn.version_for::<AddPartitionsToTxnRequest>()?.min(3);
                let req = AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(txn_id(&self.transactional_id))
                    .with_v3_and_below_producer_id(ProducerId(id.producer_id))
                    .with_v3_and_below_producer_epoch(id.epoch)
                    .with_v3_and_below_topics(topics);
                let resp = conn.send_at(&req, version).await?;
                Error::check_code(resp.error_code, "AddPartitionsToTxn", None, None, None)?;
                partition_errors(
                    "AddPartitionsToTxn",
                    resp.results_by_topic_v3_and_below.iter().flat_map(|t| {
                        t.results_by_partition.iter().map(move |p| (t.name.0.as_str(), p.partition_index, p.partition_error_code))
                    }),
                )
            }
        })
        .await
    }

    // ---- the public calls --------------------------------------------------------

    pub(crate) async fn init_transactions(&self, timeout: Duration) -> Result<()> {
        let _op = self.op.lock().await;
        {
            let mut i = self.inner.lock().unwrap();
            if let Some(e) = Self::error_state(&i) {
                return Err(e);
            }
            match i.state {
                State::Uninitialized | State::Initializing => i.state = State::Initializing,
                s => return Err(Self::wrong_state("init_transactions", s)),
            }
        }
        let deadline = Instant::now() + timeout;
        match self.init_producer_id(None, deadline).await {
            Ok(()) => {
                self.inner.lock().unwrap().state = State::Ready;
                Ok(())
            }
            Err(e) => Err(if e.is_fatal() { self.to_fatal(e) } else { e }),
        }
    }

    /// InitProducerId for the transactional id: a new epoch (fencing older producers with
    /// the same id, finishing their open transaction). With `current` (KIP-360, v3+) the
    /// coordinator bumps this producer's own epoch instead.
    async fn init_producer_id(&self, current: Option<ProducerIdentity>, deadline: Instant) -> Result<()> {
        let timeout_ms = self.transaction_timeout.as_millis().min(i32::MAX as u128) as i32;
        let (id, tv2) = self
            .with_coordinator(&self.coordinator, "InitProducerId", deadline, |conn| async move {
                let version = conn.version_for::<InitProducerIdRequest>()?;
                let mut req = InitProducerIdRequest::default()
                    .with_transactional_id(Some(txn_id(&self.transactional_id)))
                    .with_transaction_timeout_ms(timeout_ms)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1);
                if let Some(cur) = current {
                    if version < 3 {
                        return Err(Error::InvalidTransactionState(format!(
                            "the producer's epoch must be bumped, which needs InitProducerId v3 (the coordinator speaks v{version})"
                        )));
                    }
                    req = req.with_producer_id(ProducerId(cur.producer_id)).with_producer_epoch(cur.epoch);
                }
                let resp = conn.send_at(&req, version).await?;
                Error::check_code(resp.error_code, "InitProducerId", None, None, None).map_err(fenced_if_stale)?;
                Ok((ProducerIdentity { producer_id: resp.producer_id.0, epoch: resp.producer_epoch }, supports_v2(&conn)))
            })
            .await?;
        info!(transactional_id = %self.transactional_id, producer_id = id.producer_id, epoch = id.epoch, tv2, "transactional producer initialised");
        self.set_identity(id);
        self.inner.lock().unwrap().next_tv2 = tv2;
        Ok(())
    }

    /// A new producer id/epoch: every partition's sequences restart at 0 (no batch of
    /// this producer is pending when it is called).
    fn set_identity(&self, id: ProducerIdentity) {
        *self.identity.lock().unwrap() = Some(id);
        self.acc.reset_sequences();
    }

    fn current_identity(&self) -> Result<ProducerIdentity> {
        self.identity
            .lock()
            .unwrap()
            .ok_or_else(|| Error::InvalidTransactionState("no producer id yet; call init_transactions first".into()))
    }

    pub(crate) fn begin_transaction(&self) -> Result<()> {
        let mut i = self.inner.lock().unwrap();
        if let Some(e) = Self::error_state(&i) {
            return Err(e);
        }
        if i.state != State::Ready {
            return Err(Self::wrong_state("begin_transaction", i.state));
        }
        i.state = State::InTransaction;
        i.tv2 = i.next_tv2;
        i.coordinator_knows = false;
        i.added.clear();
        i.pending.clear();
        i.batch_error = None;
        i.commit_unknown = false;
        Ok(())
    }

    pub(crate) async fn send_offsets_to_transaction(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
        group: &ConsumerGroupMetadata,
        timeout: Duration,
    ) -> Result<()> {
        let _op = self.op.lock().await;
        let tv2 = {
            let i = self.inner.lock().unwrap();
            if let Some(e) = Self::error_state(&i) {
                return Err(e);
            }
            if i.state != State::InTransaction {
                return Err(Self::wrong_state("send_offsets_to_transaction", i.state));
            }
            if offsets.is_empty() {
                return Ok(());
            }
            i.tv2
        };
        let deadline = Instant::now() + timeout;
        let id = self.current_identity()?;
        let result = async {
            if !tv2 {
                self.inner.lock().unwrap().coordinator_knows = true;
                self.with_coordinator(&self.coordinator, "AddOffsetsToTxn", deadline, |conn| async move {
                    let req = AddOffsetsToTxnRequest::default()
                        .with_transactional_id(txn_id(&self.transactional_id))
                        .with_producer_id(ProducerId(id.producer_id))
                        .with_producer_epoch(id.epoch)
                        .with_group_id(GroupId(StrBytes::from_string(group.group_id.clone())));
                    let resp = conn.send(&req).await?;
                    Error::check_code(resp.error_code, "AddOffsetsToTxn", None, None, None).map_err(fenced_if_stale)
                })
                .await
                .map_err(|e| unexpected_is_fatal(e, ADD_OFFSETS_ABORTABLE))?;
            }
            self.inner.lock().unwrap().coordinator_knows = true;
            let group_coordinator = Coordinator::new(group.group_id.clone());
            self.with_coordinator(&group_coordinator, "TxnOffsetCommit", deadline, |conn| async move {
                let version = protocol_version::<TxnOffsetCommitRequest>(&conn, tv2)?;
                let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
                for (tp, om) in offsets {
                    let p = TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(tp.partition)
                        .with_committed_offset(om.offset)
                        .with_committed_leader_epoch(om.leader_epoch.unwrap_or(-1))
                        .with_committed_metadata(Some(StrBytes::from_string(om.metadata.clone())));
                    match topics.last_mut() {
                        Some(t) if t.name.0.as_str() == tp.topic => t.partitions.push(p),
                        _ => topics.push(
                            TxnOffsetCommitRequestTopic::default()
                                .with_name(TopicName(StrBytes::from_string(tp.topic.clone())))
                                .with_partitions(vec![p]),
                        ),
                    }
                }
                let req = TxnOffsetCommitRequest::default()
                    .with_transactional_id(txn_id(&self.transactional_id))
                    .with_group_id(GroupId(StrBytes::from_string(group.group_id.clone())))
                    .with_producer_id(ProducerId(id.producer_id))
                    .with_producer_epoch(id.epoch)
                    .with_generation_id(group.generation_id)
                    .with_member_id(StrBytes::from_string(group.member_id.clone()))
                    .with_group_instance_id(group.group_instance_id.clone().map(StrBytes::from_string))
                    .with_topics(topics);
                let resp = conn.send_at(&req, version).await?;
                partition_errors(
                    "TxnOffsetCommit",
                    resp.topics.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.as_str(), p.partition_index, p.error_code))),
                )
            })
            .await
            .map_err(|e| unexpected_is_fatal(e, TXN_OFFSET_COMMIT_ABORTABLE))
        }
        .await;
        result.map_err(|e| match e.code() {
            // The group refused this member's offsets: abort, rejoin, process again.
            Some(ErrorCode::FencedInstanceId | ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration) => self.to_abortable(e),
            _ => self.fail(e),
        })
    }

    pub(crate) async fn commit_transaction(&self, timeout: Duration) -> Result<()> {
        let _op = self.op.lock().await;
        let deadline = Instant::now() + timeout;
        {
            let mut i = self.inner.lock().unwrap();
            if let Some(e) = Self::error_state(&i) {
                return Err(e);
            }
            match i.state {
                State::InTransaction => i.state = State::Committing,
                State::Committing => {} // retry of a commit that timed out
                s => return Err(Self::wrong_state("commit_transaction", s)),
            }
        }
        let unknown = self.inner.lock().unwrap().commit_unknown;
        if !unknown {
            // Every batch of the transaction must be written before EndTxn(commit).
            if tokio::time::timeout_at(deadline, self.acc.flush()).await.is_err() {
                return Err(Error::Timeout(format!(
                    "commit_transaction: the transaction's records were not all acknowledged within {timeout:?}; \
                     call commit_transaction again (or abort_transaction)"
                )));
            }
            let mut i = self.inner.lock().unwrap();
            if let Some(e) = i.batch_error.clone() {
                i.state = State::AbortableError;
                i.error = Some(e.clone());
                return Err(Error::TransactionAbortable(Box::new(e)));
            }
            if let Some(e) = Self::error_state(&i) {
                return Err(e);
            }
            if !Self::needs_end_txn(&i) {
                i.state = State::Ready;
                return Ok(());
            }
            i.commit_unknown = true;
        }
        match self.end_txn(true, deadline).await {
            Ok(()) => Ok(()),
            Err(e) => {
                if e.code() == Some(ErrorCode::TransactionAbortable) {
                    self.inner.lock().unwrap().commit_unknown = false;
                    return Err(self.to_abortable(e));
                }
                if classify(&e) == Kind::Retriable {
                    // Unknown outcome: the next commit_transaction retries the same EndTxn.
                    return Err(e);
                }
                // Any other refusal of EndTxn(commit) leaves the outcome unknowable.
                Err(self.to_fatal(e))
            }
        }
    }

    pub(crate) async fn abort_transaction(&self, timeout: Duration) -> Result<()> {
        let _op = self.op.lock().await;
        let deadline = Instant::now() + timeout;
        let reinit = {
            let mut i = self.inner.lock().unwrap();
            match i.state {
                State::FatalError => return Err(i.error.clone().unwrap_or(Error::Closed)),
                State::InTransaction | State::AbortableError | State::Aborting => {}
                State::Committing => {}
                s => return Err(Self::wrong_state("abort_transaction", s)),
            }
            // After a commit of unknown outcome, also when this is a retry of an abort that
            // timed out (state Aborting by then): never EndTxn(abort) for that epoch.
            let reinit = i.commit_unknown;
            i.state = State::Aborting;
            reinit
        };
        // Unsent records of the transaction fail; the ones in flight are awaited.
        let reason = Error::TransactionAbortable(Box::new(Error::InvalidTransactionState(
            "the transaction was aborted before this record was sent".into(),
        )));
        self.acc.fail_unsent(&reason);
        self.acc.wake.notify_one();
        let settled = async {
            self.acc.flush().await;
            // v1: an AddPartitionsToTxn in flight decides whether the coordinator knows
            // the transaction; wait for it.
            while self.inner.lock().unwrap().adding {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        if tokio::time::timeout_at(deadline, settled).await.is_err() {
            return Err(Error::Timeout(format!(
                "abort_transaction: records in flight were not acknowledged within {timeout:?}; call abort_transaction again"
            )));
        }
        let (started, bump) = {
            let i = self.inner.lock().unwrap();
            (Self::needs_end_txn(&i), i.epoch_bump_needed && !i.tv2)
        };
        let result = if reinit || bump {
            // Unknown commit: EndTxn(commit) may still be in the coordinator's hands, and an
            // EndTxn(abort) with the same epoch could land on the next transaction.
            // Epoch bump needed (v1, KIP-360/KIP-588: a failed batch left a sequence gap, or
            // a partition leader answered INVALID_PRODUCER_EPOCH): InitProducerId with the
            // current id and epoch aborts the open transaction (or completes a commit in
            // progress) and bumps the epoch; a fenced producer gets PRODUCER_FENCED.
            if reinit {
                warn!(transactional_id = %self.transactional_id, "abort after a commit whose outcome is unknown: re-initialising with a new epoch; that transaction may have committed");
            }
            let cur = self.current_identity()?;
            self.init_producer_id(Some(cur), deadline).await
        } else if started {
            self.end_txn(false, deadline).await
        } else {
            Ok(())
        };
        match result {
            Ok(()) => {
                let mut i = self.inner.lock().unwrap();
                i.state = State::Ready;
                i.error = None;
                i.commit_unknown = false;
                i.epoch_bump_needed = false;
                i.batch_error = None;
                i.added.clear();
                i.pending.clear();
                Ok(())
            }
            // Retriable (a timeout, a coordinator that moved or vanished from the
            // metadata): the state stays Aborting, call abort_transaction again. Anything
            // else leaves the transaction's end unknowable: fatal.
            Err(e) => match classify(&e) {
                Kind::Retriable => Err(e),
                _ => Err(self.to_fatal(e)),
            },
        }
    }

    /// Whether the transaction must end with EndTxn (see `Inner::coordinator_knows`).
    fn needs_end_txn(i: &Inner) -> bool {
        i.coordinator_knows
    }

    /// EndTxn; on success the state is Ready. v2: the coordinator bumps the epoch on every
    /// EndTxn and returns it, sequences restart.
    async fn end_txn(&self, commit: bool, deadline: Instant) -> Result<()> {
        let (id, tv2) = (self.current_identity()?, self.inner.lock().unwrap().tv2);
        let what = if commit { "EndTxn(commit)" } else { "EndTxn(abort)" };
        let (new_id, next_tv2) = self
            .with_coordinator(&self.coordinator, what, deadline, |conn| async move {
                let version = protocol_version::<EndTxnRequest>(&conn, tv2)?;
                let req = EndTxnRequest::default()
                    .with_transactional_id(txn_id(&self.transactional_id))
                    .with_producer_id(ProducerId(id.producer_id))
                    .with_producer_epoch(id.epoch)
                    .with_committed(commit);
                let resp = conn.send_at(&req, version).await?;
                Error::check_code(resp.error_code, "EndTxn", None, None, None).map_err(fenced_if_stale)?;
                let new_id = (version >= 5 && resp.producer_id.0 >= 0)
                    .then_some(ProducerIdentity { producer_id: resp.producer_id.0, epoch: resp.producer_epoch });
                Ok((new_id, supports_v2(&conn)))
            })
            .await?;
        debug!(transactional_id = %self.transactional_id, commit, ?new_id, "transaction ended");
        if let Some(n) = new_id {
            self.set_identity(n);
        }
        let mut i = self.inner.lock().unwrap();
        i.state = State::Ready;
        i.commit_unknown = false;
        i.next_tv2 = next_tv2;
        Ok(())
    }

    /// Runs `call` against `coordinator` until it succeeds, fails for good, or `deadline`
    /// passes: CONCURRENT_TRANSACTIONS after 20 ms, other retriable errors after
    /// `retry_backoff`; NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE / a broken connection
    /// look the coordinator up again.
    async fn with_coordinator<T, F, Fut>(&self, coordinator: &Coordinator, what: &str, deadline: Instant, mut call: F) -> Result<T>
    where
        F: FnMut(BrokerConnection) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let attempt = async {
                let node = coordinator.find(&self.core).await?;
                let conn = self.core.broker(node, ConnKind::Default).await?;
                call(conn).await
            };
            let err = match tokio::time::timeout_at(deadline, attempt).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => e,
                Err(_) => return Err(Error::Timeout(format!("{what} did not complete in time ({attempts} attempts)"))),
            };
            coordinator.check(&err);
            self.core.on_error(&err);
            let backoff = match err.code() {
                Some(ErrorCode::ConcurrentTransactions) => CONCURRENT_TRANSACTIONS_BACKOFF,
                _ if err.is_retriable() => self.core.config.retry_backoff,
                _ => return Err(err),
            };
            if Instant::now() + backoff >= deadline {
                return Err(Error::Timeout(format!(
                    "{what} did not complete in time ({attempts} attempts); last error: {err}"
                )));
            }
            debug!(what, attempts, error = %err, "retrying transactional request");
            tokio::time::sleep(backoff).await;
        }
    }
}

/// The version of EndTxn / TxnOffsetCommit for the transaction's protocol: v5 and up
/// mean protocol v2 to the broker, so v1 stays at 4 and v2 needs 5.
fn protocol_version<R: kafka_protocol::protocol::Request>(conn: &BrokerConnection, tv2: bool) -> Result<i16> {
    let version = conn.version_for::<R>()?;
    if !tv2 {
        return Ok(version.min(4));
    }
    if version < 5 {
        return Err(Error::InvalidTransactionState(format!(
            "transaction protocol v2 needs {} v5; {} speaks v{version}",
            crate::protocol::api_name(R::KEY),
            conn.addr()
        )));
    }
    Ok(version)
}

/// Whether the broker behind `conn` runs transaction protocol v2: the finalized feature
/// `transaction.version` >= 2 and the request versions that carry it.
fn supports_v2(conn: &BrokerConnection) -> bool {
    let v = conn.api_versions();
    v.finalized_feature("transaction.version").unwrap_or(0) >= 2
        && v.negotiate::<EndTxnRequest>(conn.addr()).is_ok_and(|x| x >= 5)
        && v.negotiate::<TxnOffsetCommitRequest>(conn.addr()).is_ok_and(|x| x >= 5)
        && v.negotiate::<ProduceRequest>(conn.addr()).is_ok_and(|x| x >= 12)
}
