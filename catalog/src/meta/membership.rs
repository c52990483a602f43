//! What the leader does to grow and shrink the Raft group, following openraft's recipe: a new
//! node is added as a learner, waited for until it has the log, then promoted to voter while the
//! group has fewer than `[meta] voters`; further meta nodes stay standbys. A background task on
//! the leader promotes a standby when voters are missing or one stops answering.
//!
//! Every function here runs on the leader and answers [`MetaError::NotLeader`] elsewhere; the
//! public entry points in the parent module find the leader and call it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, RaftMetrics};
use tokio::sync::watch;

use super::MetaService;
use crate::error::{CatalogError, MetaError};
use crate::model::{Command, Outcome};
use crate::rpc::{
    AddMemberReply, AddMemberRequest, DropServerRequest, JoinReply, JoinRequest, MemberStatus,
    ServerKind, StatusReply, action,
};

type Metrics = RaftMetrics<u64, BasicNode>;

fn write_err(e: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> MetaError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => MetaError::NotLeader,
        other => MetaError::Unavailable(other.to_string()),
    }
}

fn unexpected(what: &str, outcome: Outcome) -> MetaError {
    MetaError::Raft(format!("unexpected outcome {outcome:?} for {what}"))
}

impl MetaService {
    fn leader_metrics(&self) -> Result<Metrics, MetaError> {
        let m = self.metrics();
        if m.current_leader == Some(self.raft_id) {
            Ok(m)
        } else {
            Err(MetaError::NotLeader)
        }
    }

    /// Runs a membership change with the commit timeout.
    async fn change_members(
        &self,
        changes: ChangeMembers<u64, BasicNode>,
        retain: bool,
    ) -> Result<(), MetaError> {
        let timeout = self.opts.commit_timeout;
        match tokio::time::timeout(timeout, self.raft.change_membership(changes, retain)).await {
            Ok(r) => r.map(|_| ()).map_err(write_err),
            Err(_) => Err(MetaError::Unavailable(format!(
                "no quorum: the membership change was not committed within {timeout:?}"
            ))),
        }
    }

    /// Whether the member at `addr` answers within half a second.
    async fn answers(&self, addr: &str) -> bool {
        self.rpc
            .call::<(), u64>(addr, action::PING, &(), Duration::from_millis(500))
            .await
            .is_ok()
    }

    /// `meta.join`: registers a new or returning node and gives it its ids.
    pub(super) async fn join_local(&self, req: JoinRequest) -> Result<JoinReply, MetaError> {
        self.leader_metrics()?;
        let state = self.catalog();
        let taken = |nodes: &BTreeMap<u64, crate::NodeInfo>, own: Option<u64>| {
            nodes
                .values()
                .find(|n| n.tcp_addr == req.tcp_addr && Some(n.id) != own)
                .map(|n| n.id)
        };
        if let Some(other) = req
            .meta_http_addr
            .as_ref()
            .and_then(|_| taken(&state.meta_nodes, req.meta_id))
        {
            return Err(MetaError::Refused(format!(
                "meta node {other} already uses {}; a node that lost its [meta] dir is a new node: drop the old one first (DROP META SERVER {other})",
                req.tcp_addr
            )));
        }
        if let Some(other) = req
            .data_http_addr
            .as_ref()
            .and_then(|_| taken(&state.data_nodes, req.data_id))
        {
            return Err(MetaError::Refused(format!(
                "data node {other} already uses {}; a node that lost its [meta] dir is a new node: drop the old one first (DROP DATA SERVER {other})",
                req.tcp_addr
            )));
        }
        let mut reply = JoinReply {
            meta_id: None,
            data_id: None,
            leader_tcp_addr: self.opts.tcp_addr.clone(),
        };
        if let Some(http) = &req.meta_http_addr {
            reply.meta_id = Some(
                self.register_local(Command::RegisterMetaNode {
                    id: req.meta_id,
                    http_addr: http.clone(),
                    tcp_addr: req.tcp_addr.clone(),
                })
                .await?,
            );
        }
        if let Some(http) = &req.data_http_addr {
            reply.data_id = Some(
                self.register_local(Command::RegisterDataNode {
                    id: req.data_id,
                    http_addr: http.clone(),
                    tcp_addr: req.tcp_addr.clone(),
                })
                .await?,
            );
        }
        Ok(reply)
    }

    /// Runs a `Register*Node` command as the leader and answers the node id it gave.
    async fn register_local(&self, cmd: Command) -> Result<u64, MetaError> {
        match self.execute_local(cmd).await?.outcome? {
            Outcome::NodeId(id) => Ok(id),
            other => Err(unexpected("registering a node", other)),
        }
    }

    /// `meta.add-member`: learner first; voter while voters are missing.
    pub(super) async fn add_member_local(
        &self,
        req: AddMemberRequest,
    ) -> Result<AddMemberReply, MetaError> {
        let _one_at_a_time = self.membership_lock.lock().await;
        let m = self.leader_metrics()?;
        let id = req.raft_id;
        let known = m
            .membership_config
            .membership()
            .get_node(&id)
            .is_some_and(|n| n.addr == req.tcp_addr);
        if !known {
            let node = BasicNode {
                addr: req.tcp_addr.clone(),
            };
            let timeout = self.opts.commit_timeout;
            match tokio::time::timeout(timeout, self.raft.add_learner(id, node, false)).await {
                Ok(r) => {
                    r.map_err(write_err)?;
                }
                Err(_) => {
                    return Err(MetaError::Unavailable(format!(
                        "no quorum: adding the learner was not committed within {timeout:?}"
                    )));
                }
            }
        }
        // Wait until the new member has the log, so that it has the catalog when it starts.
        let target = self.metrics().last_log_index.unwrap_or(0);
        self.raft
            .wait(Some(self.opts.startup_timeout))
            .metrics(
                |m| {
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(&id).cloned().flatten())
                        .is_some_and(|l| l.index >= target)
                },
                "new member has the log",
            )
            .await
            .map_err(|e| MetaError::Unavailable(format!("node {id} did not catch up: {e}")))?;
        let m = self.leader_metrics()?;
        let voters: BTreeSet<u64> = m.membership_config.membership().voter_ids().collect();
        let mut voter = voters.contains(&id);
        if req.voter && !voter && voters.len() < self.opts.voters {
            self.change_members(ChangeMembers::AddVoterIds(BTreeSet::from([id])), true)
                .await?;
            voter = true;
            tracing::info!(node = id, "promoted to voter");
        }
        Ok(AddMemberReply {
            voter,
            index: self.metrics().last_log_index.unwrap_or(target),
        })
    }

    /// `meta.drop-server`: removes a meta node from the Raft group and the catalog, or a data
    /// node from the catalog (and from the Raft group when it is a data-only follower). Answers
    /// the warnings the user should see.
    pub(super) async fn drop_server_local(
        &self,
        req: DropServerRequest,
    ) -> Result<Vec<String>, MetaError> {
        let _one_at_a_time = self.membership_lock.lock().await;
        let m = self.leader_metrics()?;
        let membership = m.membership_config.membership().clone();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let state = self.catalog();
        let id = req.id;
        let mut warnings = Vec::new();
        match req.kind {
            ServerKind::Meta => {
                if !state.meta_nodes.contains_key(&id) {
                    return Err(CatalogError::MetaNodeNotFound(id).into());
                }
                if voters.contains(&id) {
                    let mut rest: BTreeSet<u64> =
                        voters.iter().copied().filter(|v| *v != id).collect();
                    if rest.is_empty() {
                        return Err(MetaError::Refused(format!(
                            "meta node {id} is the only voting meta node; dropping it would leave no quorum"
                        )));
                    }
                    // Keep the number of voters: a live standby takes the place.
                    for standby in membership.learner_ids() {
                        if state.meta_nodes.contains_key(&standby)
                            && let Some(n) = membership.get_node(&standby)
                            && self.answers(&n.addr).await
                        {
                            rest.insert(standby);
                            break;
                        }
                    }
                    let mut live = 0;
                    for v in &rest {
                        let up = *v == self.raft_id
                            || match membership.get_node(v) {
                                Some(n) => self.answers(&n.addr).await,
                                None => false,
                            };
                        live += usize::from(up);
                    }
                    if live * 2 <= rest.len() {
                        return Err(MetaError::Refused(format!(
                            "dropping meta node {id} would lose the quorum: only {live} of the {} remaining voters answer",
                            rest.len()
                        )));
                    }
                    self.execute_local(Command::RemoveMetaNode { id })
                        .await?
                        .outcome?;
                    self.change_members(ChangeMembers::ReplaceAllVoters(rest), false)
                        .await?;
                } else {
                    self.execute_local(Command::RemoveMetaNode { id })
                        .await?
                        .outcome?;
                    // A standby that is not also the Raft member of a data node.
                    if membership.get_node(&id).is_some() {
                        self.change_members(
                            ChangeMembers::RemoveNodes(BTreeSet::from([id])),
                            false,
                        )
                        .await?;
                    }
                }
            }
            ServerKind::Data => {
                let outcome = self
                    .execute_local(Command::RemoveDataNode {
                        id,
                        force: req.force,
                    })
                    .await?
                    .outcome?;
                if let Outcome::Orphaned(shards) = outcome
                    && !shards.is_empty()
                {
                    warnings.push(format!(
                        "data node {id} was dropped with the only copy of shard(s) {shards:?}: their data is no longer served"
                    ));
                }
                // A data-only node follows the log as a learner under its data id.
                let follower = membership.get_node(&id).is_some() && !voters.contains(&id);
                if follower && !state.meta_nodes.contains_key(&id) {
                    self.change_members(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                        .await?;
                }
            }
        }
        Ok(warnings)
    }

    /// `meta.status`: the leader's view of the group.
    pub(super) async fn status_local(&self) -> Result<StatusReply, MetaError> {
        let m = self.leader_metrics()?;
        let membership = m.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let state = self.catalog();
        let members = membership
            .nodes()
            .map(|(id, node)| {
                let role = if *id == self.raft_id {
                    "leader"
                } else if voters.contains(id) {
                    "voter"
                } else if state.meta_nodes.contains_key(id) {
                    "standby"
                } else {
                    "follower"
                };
                let matched_index = if *id == self.raft_id {
                    m.last_log_index
                } else {
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(id).cloned().flatten())
                        .map(|l| l.index)
                };
                MemberStatus {
                    raft_id: *id,
                    tcp_addr: node.addr.clone(),
                    role: role.to_string(),
                    matched_index,
                }
            })
            .collect();
        Ok(StatusReply {
            leader: self.raft_id,
            term: m.current_term,
            commit_index: m.last_applied.map(|l| l.index),
            members,
        })
    }

    /// One round of the leader's watch over the voters (see [`monitor`]).
    async fn promote_standbys(&self, last_seen: &mut BTreeMap<u64, Instant>) {
        // A join or a drop in progress has the group; look again next round.
        let Ok(_one_at_a_time) = self.membership_lock.try_lock() else {
            return;
        };
        let Ok(m) = self.leader_metrics() else {
            last_seen.clear();
            return;
        };
        let membership = m.membership_config.membership().clone();
        if membership.get_joint_config().len() > 1 {
            return;
        }
        let state = self.catalog();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let now = Instant::now();
        let mut dead = Vec::new();
        for v in &voters {
            if *v == self.raft_id {
                continue;
            }
            let seen = *last_seen.entry(*v).or_insert(now);
            match membership.get_node(v) {
                Some(n) if self.answers(&n.addr).await => {
                    last_seen.insert(*v, Instant::now());
                }
                _ if now.duration_since(seen) >= self.opts.promote_after => dead.push(*v),
                _ => {}
            }
        }
        last_seen.retain(|id, _| voters.contains(id));
        let missing = voters.len() < self.opts.voters;
        if !missing && dead.is_empty() {
            return;
        }
        let mut standby = None;
        for id in membership.learner_ids() {
            if !state.meta_nodes.contains_key(&id) {
                continue;
            }
            let caught_up = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&id).cloned().flatten())
                .is_some_and(|l| Some(l.index) >= m.last_applied.map(|a| a.index));
            if let Some(n) = membership.get_node(&id)
                && caught_up
                && self.answers(&n.addr).await
            {
                standby = Some(id);
                break;
            }
        }
        let Some(standby) = standby else { return };
        let mut next = voters.clone();
        next.insert(standby);
        if !missing {
            if let Some(d) = dead.first() {
                next.remove(d);
                tracing::warn!(
                    dead = d,
                    standby,
                    "voter stopped answering; promoting a standby in its place"
                );
            }
        } else {
            tracing::info!(standby, "voters missing; promoting a standby");
        }
        if let Err(e) = self
            .change_members(ChangeMembers::ReplaceAllVoters(next), true)
            .await
        {
            tracing::warn!(error = %e, "promoting a standby failed");
        }
    }
}

/// The leader's background watch: once a second, promotes a live standby when voters are
/// missing or a voter has not answered for `[meta] promote-after`. The replaced voter stays a
/// standby, and comes back as one.
pub(super) async fn monitor(svc: Arc<MetaService>, mut stop: watch::Receiver<bool>) {
    let mut last_seen = BTreeMap::new();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        svc.promote_standbys(&mut last_seen).await;
    }
}
