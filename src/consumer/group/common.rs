//! Helpers shared by the built-in assignors: Java's member order and string order, and
//! the result map every assignor starts from.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use crate::consumer::TopicPartition;
use crate::error::{Error, Result};

use super::assignor::{Assignment, GroupMember};

/// Java's `String.compareTo`: UTF-16 code unit order (equal to byte order for ASCII).
pub(crate) fn java_str_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Java's `MemberInfo` order: static members (with a group instance id) first, by instance
/// id, then dynamic members by member id. Ties keep their input order (stable sort).
pub(crate) fn member_cmp(a: &GroupMember, b: &GroupMember) -> Ordering {
    match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => java_str_cmp(x, y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => java_str_cmp(&a.member_id, &b.member_id),
    }
}

/// `members` in Java's `MemberInfo` order ([`member_cmp`]).
pub(crate) fn java_sorted(members: &[GroupMember]) -> Vec<&GroupMember> {
    let mut v: Vec<&GroupMember> = members.iter().collect();
    v.sort_by(|a, b| member_cmp(a, b));
    v
}

/// Refuses a member list with a repeated member id (the result is keyed by member id).
pub(crate) fn check_members(members: &[GroupMember]) -> Result<()> {
    let mut seen = BTreeSet::new();
    for m in members {
        if !seen.insert(m.member_id.as_str()) {
            return Err(Error::InvalidArgument(format!("member id {:?} appears twice in the group", m.member_id)));
        }
    }
    Ok(())
}

/// Every member with an empty assignment.
pub(crate) fn empty_result(members: &[GroupMember]) -> BTreeMap<String, Assignment> {
    members.iter().map(|m| (m.member_id.clone(), Assignment::default())).collect()
}

/// The topics of `partitions_per_topic` some member subscribed to, with a positive count.
pub(crate) fn subscribed_topics<'a>(
    partitions_per_topic: &'a BTreeMap<String, i32>,
    members: &[GroupMember],
) -> BTreeMap<&'a str, i32> {
    let wanted: BTreeSet<&str> = members.iter().flat_map(|m| m.subscription.topics.iter().map(String::as_str)).collect();
    partitions_per_topic
        .iter()
        .filter(|(t, n)| **n > 0 && wanted.contains(t.as_str()))
        .map(|(t, n)| (t.as_str(), *n))
        .collect()
}

/// Builds the result from member id -> partitions.
pub(crate) fn into_result(
    members: &[GroupMember],
    mut parts: BTreeMap<String, Vec<TopicPartition>>,
) -> BTreeMap<String, Assignment> {
    let mut out = empty_result(members);
    for (id, a) in out.iter_mut() {
        if let Some(p) = parts.remove(id) {
            a.partitions = p;
        }
    }
    out
}
