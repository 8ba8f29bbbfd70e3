//! Offset-reset plans, as `kafka-consumer-groups.sh --reset-offsets` computes them.
//!
//! A plan is computed first ([`AdminClient::plan_offset_reset`], the tool's `--dry-run`)
//! and can be inspected; [`AdminClient::apply_offset_reset`] then commits it (the tool's
//! `--execute`), refusing while the group has active members, as the tool does.
//!
//! ```no_run
//! # async fn demo(admin: ferrokafka::admin::AdminClient) -> ferrokafka::Result<()> {
//! use ferrokafka::admin::{parse_reset_datetime, ResetOffsetsOptions, ResetScope, ResetSpec};
//!
//! let at = parse_reset_datetime("2026-12-03T09:00:00.000")?; // UTC without a zone, as the tool
//! let plan = admin
//!     .plan_offset_reset("orders-app", ResetScope::Topics(vec!["orders".into()]), ResetSpec::ToDatetime(at), ResetOffsetsOptions::default())
//!     .await?;
//! for (tp, offset) in &plan.offsets {
//!     println!("{tp:?} -> {offset}");
//! }
//! admin.apply_offset_reset(&plan, ResetOffsetsOptions::default()).await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::lag::one;
use super::{AdminClient, DescribeGroupsOptions, GroupCallOptions, GroupState, ListConsumerGroupOffsetsOptions, ListConsumerGroupOffsetsSpec};
use crate::consumer::offsets::{EARLIEST, LATEST};
use crate::consumer::{IsolationLevel, OffsetAndMetadata, TopicPartition};
use crate::error::{Error, ErrorCode, Result};

/// Where to move the offsets: the tool's reset scenarios.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetSpec {
    /// `--to-earliest`: each partition's log start.
    ToEarliest,
    /// `--to-latest`: each partition's log end.
    ToLatest,
    /// `--to-offset N`: N, clamped into [log start, log end].
    ToOffset(i64),
    /// `--shift-by N`: the committed offset plus N (N may be negative), clamped into
    /// [log start, log end]; a partition without a committed offset is an error.
    ShiftBy(i64),
    /// `--to-datetime`: the first offset whose timestamp is at or after this time (epoch
    /// milliseconds; see [`parse_reset_datetime`]), or the log end where there is none.
    ToDatetime(i64),
    /// `--by-duration`: as `ToDatetime` at now minus this duration.
    ByDuration(Duration),
    /// `--from-file`: these offsets (the file's `topic,partition,offset` lines), each
    /// clamped into [log start, log end]. The scope is ignored: the plan is these partitions.
    FromPlan(Vec<(TopicPartition, i64)>),
    /// `--to-current`: the committed offset, or the log end where there is none.
    ToCurrent,
}

/// Which partitions to reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetScope {
    /// `--all-topics`: every partition the group has a committed offset for.
    AllTopics,
    /// `--topic t` for each: every partition of these topics.
    Topics(Vec<String>),
    /// `--topic t:0,1`: these partitions.
    Partitions(Vec<TopicPartition>),
}

/// Options of [`AdminClient::plan_offset_reset`] and [`AdminClient::apply_offset_reset`].
#[derive(Debug, Clone, Default)]
pub struct ResetOffsetsOptions {
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}

/// A computed reset: the new offset of each partition (what the tool prints as
/// `NEW-OFFSET`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetPlan {
    /// The group.
    pub group_id: String,
    /// The new offset per partition.
    pub offsets: BTreeMap<TopicPartition, i64>,
}

/// Parses a time as the tool's `--to-datetime` does (Java's `Utils.getDateTime`):
/// `yyyy-MM-ddTHH:mm:ss.SSS` followed by `Z`, `±hh:mm`, `±hhmm` or `±hh`, or by nothing
/// (UTC). Returns epoch milliseconds.
pub fn parse_reset_datetime(s: &str) -> Result<i64> {
    let bad = || Error::InvalidArgument(format!("{s:?} is not a time as yyyy-MM-ddTHH:mm:ss.SSS[zone]"));
    let (date, time) = s.split_once('T').ok_or_else(bad)?;
    let num = |t: &str, n: usize| -> Result<i64> {
        if t.len() != n || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        t.parse().map_err(|_| bad())
    };
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 {
        return Err(bad());
    }
    let (y, mo, da) = (num(d[0], 4)?, num(d[1], 2)?, num(d[2], 2)?);
    if time.len() < 12 {
        return Err(bad());
    }
    let (clock, zone) = time.split_at(12);
    let (h, mi, se, ms) = (num(&clock[0..2], 2)?, num(&clock[3..5], 2)?, num(&clock[6..8], 2)?, num(&clock[9..12], 3)?);
    if &clock[2..3] != ":" || &clock[5..6] != ":" || &clock[8..9] != "." {
        return Err(bad());
    }
    let offset_min = match zone {
        "" | "Z" => 0,
        z if z.starts_with('+') || z.starts_with('-') => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
            let (hh, mm) = match digits.len() {
                2 => (num(&digits, 2)?, 0),
                4 => (num(&digits[0..2], 2)?, num(&digits[2..4], 2)?),
                _ => return Err(bad()),
            };
            sign * (hh * 60 + mm)
        }
        _ => return Err(bad()),
    };
    let days_in = |y: i64, m: i64| match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    };
    if !(1..=12).contains(&mo) || da < 1 || da > days_in(y, mo) || h > 23 || mi > 59 || se > 59 {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok((((days * 24 + h) * 60 + mi - offset_min) * 60 + se) * 1000 + ms)
}

impl AdminClient {
    /// Computes the new offsets of `group` for `scope` (the tool's `--dry-run`), with the
    /// tool's rules: explicit and shifted offsets are clamped into [log start, log end],
    /// a time with no record at or after it gives the log end. Nothing is committed.
    pub async fn plan_offset_reset(
        &self,
        group: &str,
        scope: ResetScope,
        spec: ResetSpec,
        options: ResetOffsetsOptions,
    ) -> Result<ResetPlan> {
        if group.is_empty() {
            return Err(Error::InvalidArgument("a group id must not be empty".into()));
        }
        match &spec {
            ResetSpec::ToOffset(n) if *n < 0 => {
                return Err(Error::InvalidArgument(format!("group {group}: cannot reset to negative offset {n}")));
            }
            ResetSpec::FromPlan(ps) => {
                if let Some((tp, o)) = ps.iter().find(|(tp, o)| *o < 0 || tp.partition < 0 || tp.topic.is_empty()) {
                    return Err(Error::InvalidArgument(format!("group {group}: invalid plan entry {},{},{o}", tp.topic, tp.partition)));
                }
            }
            _ => {}
        }
        let timeout = self.call_timeout(options.timeout);
        let deadline = Instant::now() + timeout;
        let left = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        let needs_committed = matches!(scope, ResetScope::AllTopics) || matches!(spec, ResetSpec::ShiftBy(_) | ResetSpec::ToCurrent);
        let committed: BTreeMap<TopicPartition, i64> = if needs_committed {
            one(self
                .list_consumer_group_offsets(
                    [(group.to_owned(), ListConsumerGroupOffsetsSpec::default())],
                    ListConsumerGroupOffsetsOptions { require_stable: false, timeout: Some(left()) },
                )
                .await?)?
            .into_iter()
            .filter_map(|(tp, o)| o.map(|o| (tp, o.offset)))
            .collect()
        } else {
            BTreeMap::new()
        };
        let partitions: Vec<TopicPartition> = match (&spec, scope) {
            (ResetSpec::FromPlan(ps), _) => ps.iter().map(|(tp, _)| tp.clone()).collect(),
            (_, ResetScope::AllTopics) => committed.keys().cloned().collect(),
            (_, ResetScope::Partitions(ps)) => ps,
            (_, ResetScope::Topics(ts)) => {
                let ds = self.describe_topics(&ts).await?;
                ds.iter().flat_map(|t| t.partitions.iter().map(|p| TopicPartition::new(t.name.clone(), p.partition))).collect()
            }
        };
        let mut partitions = partitions;
        partitions.sort();
        partitions.dedup();
        let parts = &partitions;
        let at = |ts: i64| async move { self.log_offsets(parts, ts, IsolationLevel::ReadUncommitted, left()).await };
        let known = |m: &std::collections::HashMap<TopicPartition, i64>, tp: &TopicPartition, what: &str| {
            m.get(tp).copied().filter(|o| *o >= 0).ok_or_else(|| {
                Error::broker(
                    ErrorCode::UnknownTopicOrPartition,
                    "ListOffsets",
                    Some(format!("error getting {what} offset of the partition")),
                    Some(tp.topic.clone()),
                    Some(tp.partition),
                )
            })
        };
        let mut offsets = BTreeMap::new();
        match &spec {
            ResetSpec::ToEarliest | ResetSpec::ToLatest => {
                let (ts, what) = if spec == ResetSpec::ToEarliest { (EARLIEST, "starting") } else { (LATEST, "ending") };
                let m = at(ts).await?;
                for tp in &partitions {
                    offsets.insert(tp.clone(), known(&m, tp, what)?);
                }
            }
            ResetSpec::ToDatetime(_) | ResetSpec::ByDuration(_) => {
                let ts = match &spec {
                    ResetSpec::ToDatetime(t) => *t,
                    ResetSpec::ByDuration(d) => {
                        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                        now.saturating_sub(*d).as_millis() as i64
                    }
                    _ => unreachable!("matched above"),
                };
                let by_time = at(ts).await?;
                let ends = at(LATEST).await?;
                for tp in &partitions {
                    let o = match by_time.get(tp) {
                        Some(o) if *o >= 0 => *o,
                        _ => known(&ends, tp, "ending")?,
                    };
                    offsets.insert(tp.clone(), o);
                }
            }
            ResetSpec::ToCurrent => {
                let ends = at(LATEST).await?;
                for tp in &partitions {
                    let o = match committed.get(tp) {
                        Some(o) => *o,
                        None => known(&ends, tp, "ending")?,
                    };
                    offsets.insert(tp.clone(), o);
                }
            }
            ResetSpec::ToOffset(_) | ResetSpec::ShiftBy(_) | ResetSpec::FromPlan(_) => {
                let mut requested = BTreeMap::new();
                for tp in &partitions {
                    let o = match &spec {
                        ResetSpec::ToOffset(n) => *n,
                        ResetSpec::ShiftBy(n) => match committed.get(tp) {
                            Some(c) => c.saturating_add(*n),
                            None => {
                                return Err(Error::InvalidArgument(format!(
                                    "group {group}: cannot shift offset for partition {}-{} since there is no current committed offset",
                                    tp.topic, tp.partition
                                )));
                            }
                        },
                        ResetSpec::FromPlan(ps) => ps.iter().rev().find(|(p, _)| p == tp).map(|(_, o)| *o).unwrap_or(0),
                        _ => unreachable!("matched above"),
                    };
                    requested.insert(tp.clone(), o);
                }
                let starts = at(EARLIEST).await?;
                let ends = at(LATEST).await?;
                for (tp, o) in requested {
                    offsets.insert(tp.clone(), clamp(o, starts.get(&tp).copied(), ends.get(&tp).copied()));
                }
            }
        }
        Ok(ResetPlan { group_id: group.to_owned(), offsets })
    }

    /// Commits a plan (the tool's `--execute`). Refused with NON_EMPTY_GROUP, naming the
    /// active members, unless the group is `Empty` or `Dead`; then each partition has its
    /// own result, as [`AdminClient::alter_consumer_group_offsets`].
    pub async fn apply_offset_reset(
        &self,
        plan: &ResetPlan,
        options: ResetOffsetsOptions,
    ) -> Result<BTreeMap<TopicPartition, Result<()>>> {
        let group = plan.group_id.as_str();
        if group.is_empty() {
            return Err(Error::InvalidArgument("a group id must not be empty".into()));
        }
        let timeout = self.call_timeout(options.timeout);
        let deadline = Instant::now() + timeout;
        let d = match one(self.describe_consumer_groups([group], DescribeGroupsOptions { include_authorized_operations: false, timeout: Some(timeout) }).await?) {
            Ok(d) => Some(d),
            Err(e) if e.code() == Some(ErrorCode::GroupIdNotFound) => None,
            Err(e) => return Err(e),
        };
        if let Some(d) = d {
            if !matches!(d.state, GroupState::Empty | GroupState::Dead) {
                let members: Vec<String> = d
                    .members
                    .iter()
                    .map(|m| format!("{} (client {}, host {})", m.consumer_id, m.client_id, m.host))
                    .collect();
                return Err(Error::broker(
                    ErrorCode::NonEmptyGroup,
                    "ResetOffsets",
                    Some(format!(
                        "offsets of group {group} can only be reset while it is inactive, but its state is {} with active members: {}",
                        d.state,
                        members.join(", ")
                    )),
                    None,
                    None,
                ));
            }
        }
        let offsets = plan.offsets.iter().map(|(tp, o)| (tp.clone(), OffsetAndMetadata::new(*o))).collect();
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        self.alter_consumer_group_offsets(group, offsets, GroupCallOptions { timeout: Some(left) }).await
    }
}

/// The tool's `checkOffsetsRange`: above the log end is the log end, below the log start
/// the log start; an unknown bound does not clamp.
fn clamp(o: i64, start: Option<i64>, end: Option<i64>) -> i64 {
    match (start, end) {
        (_, Some(e)) if e >= 0 && o > e => e,
        (Some(s), _) if s >= 0 && o < s => s,
        _ => o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_as_the_java_tool() {
        assert_eq!(parse_reset_datetime("1970-01-01T00:00:00.000").unwrap(), 0);
        assert_eq!(parse_reset_datetime("2023-11-14T22:13:20.000Z").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_reset_datetime("2023-11-14T23:13:20.005+01:00").unwrap(), 1_700_000_000_005);
        assert_eq!(parse_reset_datetime("2023-11-14T21:13:20.000-0100").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_reset_datetime("2024-02-29T00:00:00.000").unwrap(), 1_709_164_800_000);
        for bad in ["2023-11-14", "2023-11-14T22:13:20", "2023-02-29T00:00:00.000", "2023-11-14T22:13:20.000X", "2023-13-01T00:00:00.000"] {
            assert!(parse_reset_datetime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn offsets_clamp_into_the_log() {
        assert_eq!(clamp(50, Some(3), Some(10)), 10);
        assert_eq!(clamp(1, Some(3), Some(10)), 3);
        assert_eq!(clamp(5, Some(3), Some(10)), 5);
        assert_eq!(clamp(5, None, None), 5);
    }
}
