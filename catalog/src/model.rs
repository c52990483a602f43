//! The catalog's data and the deterministic commands that change it.
//!
//! Everything here is pure: `CatalogState::apply` turns a command into a new state and an
//! outcome without reading a clock, a disk or the network, so that every meta node that applies
//! the same Raft log ends with the same catalog. Times a command needs (the time a shard group
//! must cover, the time a group was deleted) travel inside the command.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::columns::{ColumnDeclaration, ColumnType, ForgetColumns, ShardColumns};
use crate::error::CatalogError;

/// Nanoseconds.
pub type Nanos = i64;

pub const HOUR: Nanos = 3_600_000_000_000;
pub const DAY: Nanos = 24 * HOUR;
pub const WEEK: Nanos = 7 * DAY;
/// The shortest retention 1.x allows (`retention policy duration must be at least 1h0m0s`).
pub const MIN_RETENTION: Nanos = HOUR;
/// Nanoseconds between Go's zero time (0001-01-01) and the Unix epoch, modulo a week. 1.x aligns
/// shard groups with Go's `time.Truncate`, which counts from the zero time: weekly groups start
/// on Mondays.
const GO_ZERO_OFFSET_MOD_WEEK: Nanos = 3 * DAY;

/// The name given to the retention policy a database gets by default.
pub const DEFAULT_RP: &str = "autogen";

/// A node of the cluster as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: u64,
    /// Client HTTP address (`[http] bind-address`) for data nodes, meta HTTP address for meta nodes.
    pub http_addr: String,
    /// Raft / internal RPC address (`[meta] bind-address`).
    pub tcp_addr: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub id: u64,
    /// Data node ids that hold a copy of this shard.
    pub owners: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardGroupInfo {
    pub id: u64,
    /// Inclusive start, nanoseconds.
    pub start: Nanos,
    /// Exclusive end, nanoseconds.
    pub end: Nanos,
    pub deleted_at: Option<Nanos>,
    pub shards: Vec<ShardInfo>,
}

impl ShardGroupInfo {
    pub fn contains(&self, t: Nanos) -> bool {
        self.start <= t && t < self.end
    }

    pub fn overlaps(&self, min: Nanos, max: Nanos) -> bool {
        self.start <= max && min < self.end
    }

    /// The shard a series goes to: one hash of the series key picks among the group's shards.
    pub fn shard_for(&self, series_hash: u64) -> Option<&ShardInfo> {
        if self.shards.is_empty() {
            return None;
        }
        self.shards
            .get((series_hash % self.shards.len() as u64) as usize)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicyInfo {
    pub name: String,
    /// Creation order: 1.x lists retention policies in the order they were created.
    #[serde(default)]
    pub seq: u64,
    /// 0 means keep forever.
    pub duration: Nanos,
    pub shard_group_duration: Nanos,
    pub replica_n: u32,
    pub shard_groups: Vec<ShardGroupInfo>,
    /// Where its writes are copied to, in creation order ([`crate::subscription`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<crate::subscription::SubscriptionInfo>,
}

impl RetentionPolicyInfo {
    /// The live shard group that covers `t`.
    pub fn shard_group_for(&self, t: Nanos) -> Option<&ShardGroupInfo> {
        self.shard_groups
            .iter()
            .find(|g| g.deleted_at.is_none() && g.contains(t))
    }

    pub fn live_shard_groups(&self) -> impl Iterator<Item = &ShardGroupInfo> {
        self.shard_groups.iter().filter(|g| g.deleted_at.is_none())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseInfo {
    pub name: String,
    /// Creation order: 1.x lists databases in the order they were created.
    #[serde(default)]
    pub seq: u64,
    pub default_rp: Option<String>,
    pub retention_policies: BTreeMap<String, RetentionPolicyInfo>,
    /// Its continuous queries, in creation order ([`crate::continuous`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub continuous_queries: Vec<crate::continuous::ContinuousQueryInfo>,
}

impl DatabaseInfo {
    /// The named retention policy, or the default one when `rp` is empty.
    pub fn rp(&self, rp: &str) -> Option<&RetentionPolicyInfo> {
        let name = if rp.is_empty() {
            self.default_rp.as_deref()?
        } else {
            rp
        };
        self.retention_policies.get(name)
    }
}

/// What a user may do on one database; the values are 1.x's bit flags (`ALL` = read + write).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Privilege {
    None,
    Read,
    Write,
    All,
}

impl Privilege {
    fn bits(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Read => 1,
            Self::Write => 2,
            Self::All => 3,
        }
    }

    fn from_bits(b: u8) -> Self {
        match b & 3 {
            0 => Self::None,
            1 => Self::Read,
            2 => Self::Write,
            _ => Self::All,
        }
    }

    /// `self` without what `other` grants (`REVOKE` on a database: 1.x's `&^`).
    pub fn without(self, other: Privilege) -> Privilege {
        Self::from_bits(self.bits() & !other.bits())
    }

    /// Whether holding `self` allows what `wanted` needs.
    pub fn allows(self, wanted: Privilege) -> bool {
        wanted == Self::None || self == wanted || self == Self::All
    }

    /// As `SHOW GRANTS` and 1.x's error texts print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NO PRIVILEGES",
            Self::Read => "READ",
            Self::Write => "WRITE",
            Self::All => "ALL PRIVILEGES",
        }
    }
}

/// A user of the HTTP API and Flight SQL (`CREATE USER`). Only the bcrypt hash of the
/// password is kept, as 1.x keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    /// Creation order: 1.x lists users in the order they were created.
    pub seq: u64,
    /// bcrypt hash of the password.
    pub hash: String,
    pub admin: bool,
    /// Per database, in the order they were first granted.
    pub privileges: Vec<(String, Privilege)>,
}

impl UserInfo {
    /// The privilege this user holds on `database` (none when never granted).
    pub fn privilege(&self, database: &str) -> Option<Privilege> {
        self.privileges
            .iter()
            .find(|(d, _)| d == database)
            .map(|(_, p)| *p)
    }

    /// 1.x's `AuthorizeDatabase`: admins may do anything; others need the privilege (or ALL)
    /// on the database.
    pub fn authorize_database(&self, wanted: Privilege, database: &str) -> bool {
        self.admin
            || wanted == Privilege::None
            || self.privilege(database).is_some_and(|p| p.allows(wanted))
    }
}

/// What a retention policy should be, as `CREATE DATABASE ... WITH` or
/// `CREATE RETENTION POLICY` says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicySpec {
    pub name: String,
    pub duration: Option<Nanos>,
    pub shard_group_duration: Option<Nanos>,
    pub replica_n: Option<u32>,
}

impl RetentionPolicySpec {
    pub fn autogen() -> Self {
        Self {
            name: DEFAULT_RP.into(),
            duration: None,
            shard_group_duration: None,
            replica_n: None,
        }
    }

    fn build(&self) -> Result<RetentionPolicyInfo, CatalogError> {
        let duration = self.duration.unwrap_or(0);
        if duration != 0 && duration < MIN_RETENTION {
            return Err(CatalogError::RetentionTooShort);
        }
        let sgd = match self.shard_group_duration {
            Some(d) if d > 0 => d,
            _ => default_shard_group_duration(duration),
        };
        if duration != 0 && sgd > duration {
            return Err(CatalogError::ShardDurationTooLong);
        }
        let replica_n = self.replica_n.unwrap_or(1);
        if replica_n < 1 {
            return Err(CatalogError::ReplicationTooLow);
        }
        Ok(RetentionPolicyInfo {
            name: self.name.clone(),
            seq: 0,
            duration,
            shard_group_duration: sgd,
            replica_n,
            shard_groups: Vec::new(),
            subscriptions: Vec::new(),
        })
    }
}

/// 1.x's default shard group duration for a retention duration.
pub fn default_shard_group_duration(duration: Nanos) -> Nanos {
    match duration {
        0 => WEEK,
        d if d < 2 * DAY => HOUR,
        d if d <= 180 * DAY => DAY,
        _ => WEEK,
    }
}

/// Truncates `t` to a multiple of `d` the way Go's `time.Truncate` does (from the zero time).
pub fn truncate_time(t: Nanos, d: Nanos) -> Nanos {
    if d <= 0 {
        return t;
    }
    let offset = GO_ZERO_OFFSET_MOD_WEEK % d;
    let shifted = t as i128 + offset as i128;
    let truncated = shifted - shifted.rem_euclid(d as i128) - offset as i128;
    truncated.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// A change to the catalog; the payload of every Raft log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Adds a data node, or updates its addresses when `id` is given; a new node gets the next
    /// free node id (returned as [`Outcome::NodeId`]).
    RegisterDataNode {
        id: Option<u64>,
        http_addr: String,
        tcp_addr: String,
    },
    /// Adds a meta node, or updates its addresses when `id` is given; a new node gets the next
    /// free node id (returned as [`Outcome::NodeId`]). Meta and data nodes share one id space,
    /// so a node's Raft id (its meta id, or its data id on a data-only node) is unique.
    RegisterMetaNode {
        id: Option<u64>,
        http_addr: String,
        tcp_addr: String,
    },
    /// Removes a meta node from the catalog (its Raft membership is changed first).
    RemoveMetaNode {
        id: u64,
    },
    /// Removes a data node and takes it off every shard's owners. Without `force`, refused while
    /// it holds the only copy of a live shard; with it, such shards are left without an owner
    /// (their data is gone with the node), listed in [`Outcome::Orphaned`].
    RemoveDataNode {
        id: u64,
        force: bool,
    },
    /// Idempotent, like 1.x: creating an existing database with the same spec succeeds.
    CreateDatabase {
        name: String,
        rp: Option<RetentionPolicySpec>,
    },
    DropDatabase {
        name: String,
    },
    CreateRetentionPolicy {
        database: String,
        spec: RetentionPolicySpec,
        make_default: bool,
    },
    /// Changes the given properties of a policy; `None` keeps the current value.
    AlterRetentionPolicy {
        database: String,
        name: String,
        duration: Option<Nanos>,
        shard_group_duration: Option<Nanos>,
        replica_n: Option<u32>,
        make_default: bool,
    },
    /// Removes a policy and its shard groups (a data node then drops their shards).
    DropRetentionPolicy {
        database: String,
        name: String,
    },
    /// Returns the group covering `timestamp`, creating it if there is none.
    CreateShardGroup {
        database: String,
        rp: String,
        timestamp: Nanos,
    },
    DeleteShardGroup {
        database: String,
        rp: String,
        id: u64,
        deleted_at: Nanos,
    },
    /// Makes data node `node` an owner of `shard` too (`copy-shard`; the data is copied onto
    /// it afterwards).
    AddShardOwner {
        shard: u64,
        node: u64,
    },
    /// `DROP SHARD`: the shard leaves its group (its owners then drop their copies); a group
    /// left without shards is deleted at `at`. A shard that is not there is no error (1.x).
    DropShard {
        id: u64,
        at: Nanos,
    },
    /// Takes data node `node` off the owners of `shard` (`remove-shard`; the node then drops
    /// its copy); refused for the shard's last owner.
    RemoveShardOwner {
        shard: u64,
        node: u64,
    },
    /// Ends every live shard group still open at `at` there (`truncate-shards`): the next
    /// write past it makes a new group, owned by the data nodes of that moment.
    TruncateShardGroups {
        at: Nanos,
    },
    /// Records a delete (`DELETE`, `DROP SERIES`, `DROP MEASUREMENT`) of `database` for every
    /// data node to apply to the shards it owns, now or when it is back; `scope` is the data
    /// nodes' description of what it removes (opaque to the catalog). Answers
    /// [`Outcome::Index`], the delete's Raft index.
    RecordDelete {
        database: String,
        scope: String,
        /// The column declarations the delete lets go (measurements it deletes whole).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        forget_columns: Option<ForgetColumns>,
    },
    /// Declares columns of replicated shards (see [`crate::columns`]): each is recorded unless
    /// its column is declared already. Answers [`Outcome::Columns`], what each column is now.
    DeclareColumns {
        columns: Vec<ColumnDeclaration>,
    },
    /// Data node `node` has applied every recorded delete up to Raft index `index`; deletes
    /// every data node has applied are let go.
    AckDeletes {
        node: u64,
        index: u64,
    },
    /// A change to users and their privileges.
    User(UserCommand),
    /// A change to continuous queries, or a run of one claimed or finished.
    ContinuousQuery(crate::continuous::CqCommand),
    /// A subscription created or dropped.
    Subscription(crate::subscription::SubscriptionCommand),
}

/// Changes to users ([`Command::User`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserCommand {
    /// `CREATE USER`; `hash` is the password's bcrypt hash (made before the command is
    /// proposed: applying stays pure). Refused when the user exists (the statement answers an
    /// identical re-creation as done before it proposes anything, as 1.x does).
    Create {
        name: String,
        hash: String,
        admin: bool,
    },
    Drop {
        name: String,
    },
    /// `SET PASSWORD FOR`.
    SetPassword {
        name: String,
        hash: String,
    },
    /// `GRANT`/`REVOKE ... ON db`: sets the user's privilege on `database` to exactly this.
    SetPrivilege {
        user: String,
        database: String,
        privilege: Privilege,
    },
    /// `REVOKE ... ON db`: clears `privilege` from what the user holds on `database` (1.x's
    /// `&^`: ALL minus READ leaves WRITE), applied in the log so that concurrent changes
    /// cannot interleave between reading and writing the privilege.
    Revoke {
        user: String,
        database: String,
        privilege: Privilege,
    },
    /// `GRANT/REVOKE ALL PRIVILEGES [TO|FROM] user`: cluster-wide admin.
    SetAdmin {
        user: String,
        admin: bool,
    },
}

/// A delete recorded in the catalog ([`Command::RecordDelete`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedDelete {
    /// The Raft index of the command that recorded it: writes routed with an older catalog
    /// are subject to it, newer ones are not.
    pub index: u64,
    pub database: String,
    pub scope: String,
}

/// What applying a command produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Done,
    NodeId(u64),
    ShardGroup(ShardGroupInfo),
    /// Shards left without an owner by a forced data node removal.
    Orphaned(Vec<u64>),
    /// The Raft index a recorded delete got.
    Index(u64),
    /// What each declared column is, in the order of [`Command::DeclareColumns`].
    Columns(Vec<ColumnType>),
    /// Whether a continuous query's run was claimed ([`crate::continuous::CqCommand::Claim`]).
    Claimed(bool),
}

/// A shard with what contains it ([`CatalogState::find_shard`]).
#[derive(Debug, Clone, Copy)]
pub struct ShardPlace<'a> {
    pub database: &'a DatabaseInfo,
    pub rp: &'a RetentionPolicyInfo,
    pub group: &'a ShardGroupInfo,
    pub shard: &'a ShardInfo,
}

/// The whole catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogState {
    pub data_nodes: BTreeMap<u64, NodeInfo>,
    pub meta_nodes: BTreeMap<u64, NodeInfo>,
    pub databases: BTreeMap<String, DatabaseInfo>,
    pub max_node_id: u64,
    /// Last creation sequence number given to a database or retention policy.
    #[serde(default)]
    pub max_seq: u64,
    pub max_shard_group_id: u64,
    pub max_shard_id: u64,
    /// Deletes some data node has not applied yet, oldest first.
    #[serde(default)]
    pub deletes: Vec<RecordedDelete>,
    /// Per data node, the Raft index up to which it has applied every recorded delete.
    #[serde(default)]
    pub delete_acks: BTreeMap<u64, u64>,
    /// The Raft index of the command being applied (0 when not known).
    #[serde(skip)]
    pub applying_index: u64,
    /// The index of the last delete ever recorded.
    #[serde(default)]
    pub last_delete: u64,
    /// Users, by name.
    #[serde(default)]
    pub users: BTreeMap<String, UserInfo>,
    /// Columns declared in replicated shards ([`crate::columns`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shard_columns: ShardColumns,
    /// The Raft index of the last command that changed which shards exist, who owns them, or
    /// which of their points are deleted ([`Command::changes_data`]). A state saved before
    /// this was kept reads as `u64::MAX`: not known, so every applied command counts.
    #[serde(default = "unknown_index")]
    pub data_changed: u64,
}

fn unknown_index() -> u64 {
    u64::MAX
}

impl Command {
    /// Whether applying this command can change which shards exist, who owns them, or which
    /// of their points are deleted: what a data node must have applied before it takes points
    /// or answers a read routed by another node's catalog. The commands that a cluster
    /// applies all the time (continuous query runs, delete acknowledgements, declared
    /// columns, which no owner consults) are not among them, so that a write forwarded while
    /// a new meta leader is elected does not wait for them.
    pub fn changes_data(&self) -> bool {
        match self {
            Command::RemoveDataNode { .. }
            | Command::CreateDatabase { .. }
            | Command::DropDatabase { .. }
            | Command::CreateRetentionPolicy { .. }
            | Command::AlterRetentionPolicy { .. }
            | Command::DropRetentionPolicy { .. }
            | Command::CreateShardGroup { .. }
            | Command::DeleteShardGroup { .. }
            | Command::AddShardOwner { .. }
            | Command::DropShard { .. }
            | Command::RemoveShardOwner { .. }
            | Command::TruncateShardGroups { .. }
            | Command::RecordDelete { .. } => true,
            Command::RegisterDataNode { .. }
            | Command::RegisterMetaNode { .. }
            | Command::RemoveMetaNode { .. }
            | Command::DeclareColumns { .. }
            | Command::AckDeletes { .. }
            | Command::User(_)
            | Command::ContinuousQuery(_)
            | Command::Subscription(_) => false,
        }
    }
}

impl CatalogState {
    /// Applies `cmd`, the command of Raft log entry `index`.
    pub fn apply_at(&mut self, cmd: &Command, index: u64) -> Result<Outcome, CatalogError> {
        self.applying_index = index;
        let out = self.apply(cmd);
        self.applying_index = 0;
        if out.is_ok() && cmd.changes_data() {
            self.data_changed = index;
        }
        out
    }

    /// The catalog index that points or reads routed with this state (applied up to
    /// `applied`) are sent with: a node that has applied this much knows every shard and
    /// owner, and every delete, that routing saw ([`Self::data_changed`]).
    pub fn data_index(&self, applied: u64) -> u64 {
        self.data_changed.min(applied)
    }

    /// Recorded deletes of `database` with a Raft index in `(after, upto]`.
    pub fn deletes_between(
        &self,
        database: &str,
        after: u64,
        upto: u64,
    ) -> impl Iterator<Item = &RecordedDelete> {
        let database = database.to_string();
        self.deletes
            .iter()
            .filter(move |d| d.database == database && d.index > after && d.index <= upto)
    }

    /// Lets go of the deletes every data node has applied.
    fn prune_deletes(&mut self) {
        let applied_everywhere = self
            .data_nodes
            .keys()
            .map(|id| self.delete_acks.get(id).copied().unwrap_or(0))
            .min()
            .unwrap_or(u64::MAX);
        self.deletes.retain(|d| d.index > applied_everywhere);
        let nodes = &self.data_nodes;
        self.delete_acks.retain(|id, _| nodes.contains_key(id));
    }

    pub fn database(&self, name: &str) -> Option<&DatabaseInfo> {
        self.databases.get(name)
    }

    pub fn user(&self, name: &str) -> Option<&UserInfo> {
        self.users.get(name)
    }

    /// Users in creation order (as `SHOW USERS` lists them).
    pub fn users_in_order(&self) -> Vec<&UserInfo> {
        let mut v: Vec<&UserInfo> = self.users.values().collect();
        v.sort_by_key(|u| u.seq);
        v
    }

    /// Whether some user is an admin (1.x checks credentials only then).
    pub fn admin_exists(&self) -> bool {
        self.users.values().any(|u| u.admin)
    }

    fn user_mut(&mut self, name: &str) -> Result<&mut UserInfo, CatalogError> {
        self.users.get_mut(name).ok_or(CatalogError::UserNotFound)
    }

    fn apply_user_command(&mut self, cmd: &UserCommand) -> Result<Outcome, CatalogError> {
        match cmd {
            UserCommand::Create { name, hash, admin } => {
                if name.is_empty() {
                    return Err(CatalogError::UsernameRequired);
                }
                if self.users.contains_key(name) {
                    return Err(CatalogError::UserExists);
                }
                self.max_seq += 1;
                self.users.insert(
                    name.clone(),
                    UserInfo {
                        name: name.clone(),
                        seq: self.max_seq,
                        hash: hash.clone(),
                        admin: *admin,
                        privileges: Vec::new(),
                    },
                );
            }
            UserCommand::Drop { name } => {
                if self.users.remove(name).is_none() {
                    return Err(CatalogError::UserNotFound);
                }
            }
            UserCommand::SetPassword { name, hash } => self.user_mut(name)?.hash = hash.clone(),
            UserCommand::SetPrivilege {
                user,
                database,
                privilege,
            } => {
                if !self.databases.contains_key(database) {
                    return Err(CatalogError::DatabaseNotFound(database.clone()));
                }
                let u = self.user_mut(user)?;
                match u.privileges.iter_mut().find(|(d, _)| d == database) {
                    Some((_, p)) => *p = *privilege,
                    None => u.privileges.push((database.clone(), *privilege)),
                }
            }
            UserCommand::Revoke {
                user,
                database,
                privilege,
            } => {
                // As 1.x: the user is looked up first, then the database.
                let held = self.user_mut(user)?.privilege(database);
                if !self.databases.contains_key(database) {
                    return Err(CatalogError::DatabaseNotFound(database.clone()));
                }
                let left = held.unwrap_or(Privilege::None).without(*privilege);
                let u = self.user_mut(user)?;
                match u.privileges.iter_mut().find(|(d, _)| d == database) {
                    Some((_, p)) => *p = left,
                    None => u.privileges.push((database.clone(), left)),
                }
            }
            UserCommand::SetAdmin { user, admin } => self.user_mut(user)?.admin = *admin,
        }
        Ok(Outcome::Done)
    }

    /// Where shard `id` is: its database, retention policy and group (live or deleted), and
    /// the shard itself.
    pub fn find_shard(&self, id: u64) -> Option<ShardPlace<'_>> {
        for db in self.databases.values() {
            for rp in db.retention_policies.values() {
                for g in &rp.shard_groups {
                    if let Some(shard) = g.shards.iter().find(|s| s.id == id) {
                        return Some(ShardPlace {
                            database: db,
                            rp,
                            group: g,
                            shard,
                        });
                    }
                }
            }
        }
        None
    }

    /// The internal RPC address (`[meta] bind-address`) of data node `id`.
    pub fn data_node_tcp_addr(&self, id: u64) -> Option<String> {
        self.data_nodes.get(&id).map(|n| n.tcp_addr.clone())
    }

    /// Databases in creation order (as `SHOW DATABASES` lists them).
    pub fn databases_in_order(&self) -> Vec<&DatabaseInfo> {
        let mut v: Vec<&DatabaseInfo> = self.databases.values().collect();
        v.sort_by_key(|d| d.seq);
        v
    }

    /// Every shard that `node` owns, with its database, retention policy and group.
    pub fn shards_owned_by(
        &self,
        node: u64,
    ) -> Vec<(
        &DatabaseInfo,
        &RetentionPolicyInfo,
        &ShardGroupInfo,
        &ShardInfo,
    )> {
        let mut out = Vec::new();
        for db in self.databases.values() {
            for rp in db.retention_policies.values() {
                for g in rp.live_shard_groups() {
                    for s in &g.shards {
                        if s.owners.contains(&node) {
                            out.push((db, rp, g, s));
                        }
                    }
                }
            }
        }
        out
    }

    /// A node with the given id, or the next free one: meta and data nodes share one counter.
    fn new_node(&mut self, id: Option<u64>, http_addr: &str, tcp_addr: &str) -> NodeInfo {
        let id = id.unwrap_or(self.max_node_id + 1);
        self.max_node_id = self.max_node_id.max(id);
        NodeInfo {
            id,
            http_addr: http_addr.to_string(),
            tcp_addr: tcp_addr.to_string(),
        }
    }

    /// Applies one command. An error leaves the state unchanged.
    pub fn apply(&mut self, cmd: &Command) -> Result<Outcome, CatalogError> {
        match cmd {
            Command::RegisterDataNode {
                id,
                http_addr,
                tcp_addr,
            } => {
                let node = self.new_node(*id, http_addr, tcp_addr);
                let id = node.id;
                // A new data node has nothing that earlier deletes could remove.
                if self.data_nodes.insert(id, node).is_none() {
                    self.delete_acks.insert(id, self.last_delete);
                }
                Ok(Outcome::NodeId(id))
            }
            Command::RecordDelete {
                database,
                scope,
                forget_columns,
            } => {
                if !self.databases.contains_key(database) {
                    return Err(CatalogError::DatabaseNotFound(database.clone()));
                }
                if let Some(f) = forget_columns {
                    self.forget_columns(database, f);
                }
                let index = match self.applying_index {
                    0 => self.last_delete + 1,
                    i => i,
                };
                self.last_delete = index;
                self.deletes.push(RecordedDelete {
                    index,
                    database: database.clone(),
                    scope: scope.clone(),
                });
                Ok(Outcome::Index(index))
            }
            Command::DeclareColumns { columns } => Ok(self.declare_columns(columns)),
            Command::AckDeletes { node, index } => {
                if self.data_nodes.contains_key(node) {
                    let acked = self.delete_acks.entry(*node).or_default();
                    *acked = (*acked).max(*index);
                    self.prune_deletes();
                }
                Ok(Outcome::Done)
            }
            Command::RegisterMetaNode {
                id,
                http_addr,
                tcp_addr,
            } => {
                let node = self.new_node(*id, http_addr, tcp_addr);
                let id = node.id;
                self.meta_nodes.insert(id, node);
                Ok(Outcome::NodeId(id))
            }
            Command::RemoveMetaNode { id } => match self.meta_nodes.remove(id) {
                Some(_) => Ok(Outcome::Done),
                None => Err(CatalogError::MetaNodeNotFound(*id)),
            },
            Command::RemoveDataNode { id, force } => {
                let out = self.remove_data_node(*id, *force)?;
                self.prune_deletes();
                Ok(out)
            }
            Command::User(u) => self.apply_user_command(u),
            Command::ContinuousQuery(c) => self.apply_cq_command(c),
            Command::Subscription(c) => self.apply_subscription_command(c),
            Command::CreateDatabase { name, rp } => self.create_database(name, rp.as_ref()),
            Command::DropDatabase { name } => {
                self.databases.remove(name);
                self.prune_columns();
                // As 1.x: privileges on a dropped database go with it.
                for u in self.users.values_mut() {
                    u.privileges.retain(|(d, _)| d != name);
                }
                Ok(Outcome::Done)
            }
            Command::CreateRetentionPolicy {
                database,
                spec,
                make_default,
            } => {
                let rp = spec.build()?;
                let db = self
                    .databases
                    .get_mut(database)
                    .ok_or_else(|| CatalogError::DatabaseNotFound(database.clone()))?;
                if let Some(existing) = db.retention_policies.get(&spec.name) {
                    let same = existing.duration == rp.duration
                        && existing.shard_group_duration == rp.shard_group_duration
                        && existing.replica_n == rp.replica_n;
                    if !same {
                        return Err(CatalogError::RetentionPolicyExists);
                    }
                } else {
                    self.max_seq += 1;
                    db.retention_policies.insert(
                        spec.name.clone(),
                        RetentionPolicyInfo {
                            seq: self.max_seq,
                            ..rp
                        },
                    );
                }
                if *make_default || db.default_rp.is_none() {
                    db.default_rp = Some(spec.name.clone());
                }
                Ok(Outcome::Done)
            }
            Command::AlterRetentionPolicy {
                database,
                name,
                duration,
                shard_group_duration,
                replica_n,
                make_default,
            } => {
                let db = self
                    .databases
                    .get_mut(database)
                    .ok_or_else(|| CatalogError::DatabaseNotFound(database.clone()))?;
                let rp = db
                    .retention_policies
                    .get(name)
                    .ok_or_else(|| CatalogError::RetentionPolicyNotFound(name.clone()))?;
                let spec = RetentionPolicySpec {
                    name: name.clone(),
                    duration: Some(duration.unwrap_or(rp.duration)),
                    shard_group_duration: Some(
                        shard_group_duration.unwrap_or(rp.shard_group_duration),
                    ),
                    replica_n: Some(replica_n.unwrap_or(rp.replica_n)),
                };
                let mut updated = spec.build()?;
                updated.seq = rp.seq;
                updated.shard_groups = rp.shard_groups.clone();
                db.retention_policies.insert(name.clone(), updated);
                if *make_default {
                    db.default_rp = Some(name.clone());
                }
                Ok(Outcome::Done)
            }
            Command::DropRetentionPolicy { database, name } => {
                let db = self
                    .databases
                    .get_mut(database)
                    .ok_or_else(|| CatalogError::DatabaseNotFound(database.clone()))?;
                if db.retention_policies.remove(name).is_some()
                    && db.default_rp.as_deref() == Some(name.as_str())
                {
                    db.default_rp = None;
                }
                self.prune_columns();
                Ok(Outcome::Done)
            }
            Command::CreateShardGroup {
                database,
                rp,
                timestamp,
            } => self.create_shard_group(database, rp, *timestamp),
            Command::DeleteShardGroup {
                database,
                rp,
                id,
                deleted_at,
            } => {
                let rpi = self.rp_mut(database, rp)?;
                if let Some(g) = rpi.shard_groups.iter_mut().find(|g| g.id == *id) {
                    g.deleted_at.get_or_insert(*deleted_at);
                }
                self.prune_columns();
                Ok(Outcome::Done)
            }
            Command::AddShardOwner { shard, node } => {
                if !self.data_nodes.contains_key(node) {
                    return Err(CatalogError::DataNodeNotFound(*node));
                }
                let s = self
                    .shard_mut(*shard)
                    .ok_or(CatalogError::ShardNotFound(*shard))?;
                if !s.owners.contains(node) {
                    s.owners.push(*node);
                }
                Ok(Outcome::Done)
            }
            Command::DropShard { id, at } => {
                let group = self
                    .databases
                    .values_mut()
                    .flat_map(|db| db.retention_policies.values_mut())
                    .flat_map(|rp| rp.shard_groups.iter_mut())
                    .find(|g| g.shards.iter().any(|s| s.id == *id));
                if let Some(g) = group {
                    g.shards.retain(|s| s.id != *id);
                    if g.shards.is_empty() {
                        g.deleted_at.get_or_insert(*at);
                    }
                    self.prune_columns();
                }
                Ok(Outcome::Done)
            }
            Command::RemoveShardOwner { shard, node } => {
                let s = self
                    .shard_mut(*shard)
                    .ok_or(CatalogError::ShardNotFound(*shard))?;
                if !s.owners.contains(node) {
                    return Err(CatalogError::NotAnOwner {
                        shard: *shard,
                        node: *node,
                    });
                }
                if s.owners.len() == 1 {
                    return Err(CatalogError::LastOwner(*shard));
                }
                s.owners.retain(|o| o != node);
                Ok(Outcome::Done)
            }
            Command::TruncateShardGroups { at } => {
                for db in self.databases.values_mut() {
                    for rp in db.retention_policies.values_mut() {
                        for g in &mut rp.shard_groups {
                            if g.deleted_at.is_none() && g.start < *at && *at < g.end {
                                g.end = *at;
                            }
                        }
                    }
                }
                Ok(Outcome::Done)
            }
        }
    }

    /// The shard with id `id`, in any group (live or not).
    /// Retention policy `rp` of `database`, or 1.x's error for whichever is missing.
    pub(crate) fn rp_mut(
        &mut self,
        database: &str,
        rp: &str,
    ) -> Result<&mut RetentionPolicyInfo, CatalogError> {
        self.databases
            .get_mut(database)
            .ok_or_else(|| CatalogError::DatabaseNotFound(database.to_string()))?
            .retention_policies
            .get_mut(rp)
            .ok_or_else(|| CatalogError::RetentionPolicyNotFound(rp.to_string()))
    }

    fn shard_mut(&mut self, id: u64) -> Option<&mut ShardInfo> {
        self.databases
            .values_mut()
            .flat_map(|db| db.retention_policies.values_mut())
            .flat_map(|rp| rp.shard_groups.iter_mut())
            .flat_map(|g| g.shards.iter_mut())
            .find(|s| s.id == id)
    }

    fn create_database(
        &mut self,
        name: &str,
        spec: Option<&RetentionPolicySpec>,
    ) -> Result<Outcome, CatalogError> {
        if name.is_empty() {
            return Err(CatalogError::DatabaseNameRequired);
        }
        let spec = spec.cloned().unwrap_or_else(RetentionPolicySpec::autogen);
        let rp = spec.build()?;
        if let Some(db) = self.databases.get(name) {
            // 1.x: the same database again is fine unless the requested default RP differs.
            return match db.rp("") {
                Some(existing)
                    if existing.name == rp.name
                        && existing.duration == rp.duration
                        && existing.shard_group_duration == rp.shard_group_duration
                        && existing.replica_n == rp.replica_n =>
                {
                    Ok(Outcome::Done)
                }
                _ if spec == RetentionPolicySpec::autogen() => Ok(Outcome::Done),
                _ => Err(CatalogError::RetentionPolicyConflict),
            };
        }
        self.max_seq += 1;
        let seq = self.max_seq;
        let mut rps = BTreeMap::new();
        rps.insert(rp.name.clone(), RetentionPolicyInfo { seq, ..rp });
        self.databases.insert(
            name.to_string(),
            DatabaseInfo {
                name: name.to_string(),
                seq,
                default_rp: Some(spec.name.clone()),
                retention_policies: rps,
                continuous_queries: Vec::new(),
            },
        );
        Ok(Outcome::Done)
    }

    fn remove_data_node(&mut self, id: u64, force: bool) -> Result<Outcome, CatalogError> {
        if !self.data_nodes.contains_key(&id) {
            return Err(CatalogError::DataNodeNotFound(id));
        }
        let sole: Vec<u64> = self
            .shards_owned_by(id)
            .into_iter()
            .filter(|(_, _, _, s)| s.owners.len() == 1)
            .map(|(_, _, _, s)| s.id)
            .collect();
        if !sole.is_empty() && !force {
            return Err(CatalogError::SoleOwner {
                node: id,
                shards: sole,
            });
        }
        self.data_nodes.remove(&id);
        // Shards it owned with others keep their replication factor where a live data node
        // does not own them yet: the one owning the fewest shards (then the lowest id) takes
        // its place, as their last owner (a surviving owner, first, copies the data onto it).
        let mut load: BTreeMap<u64, usize> = self.data_nodes.keys().map(|n| (*n, 0)).collect();
        for db in self.databases.values() {
            for rp in db.retention_policies.values() {
                for g in &rp.shard_groups {
                    for s in &g.shards {
                        for o in &s.owners {
                            if let Some(n) = load.get_mut(o) {
                                *n += 1;
                            }
                        }
                    }
                }
            }
        }
        for db in self.databases.values_mut() {
            for rp in db.retention_policies.values_mut() {
                for g in &mut rp.shard_groups {
                    let live = g.deleted_at.is_none();
                    for s in &mut g.shards {
                        if !s.owners.contains(&id) {
                            continue;
                        }
                        s.owners.retain(|o| *o != id);
                        if !live || s.owners.is_empty() {
                            continue;
                        }
                        let replacement = load
                            .iter()
                            .filter(|(n, _)| !s.owners.contains(n))
                            .min_by_key(|(n, count)| (**count, **n))
                            .map(|(n, _)| *n);
                        if let Some(n) = replacement {
                            s.owners.push(n);
                            if let Some(c) = load.get_mut(&n) {
                                *c += 1;
                            }
                        }
                    }
                }
            }
        }
        Ok(Outcome::Orphaned(sole))
    }

    fn create_shard_group(
        &mut self,
        database: &str,
        rp: &str,
        t: Nanos,
    ) -> Result<Outcome, CatalogError> {
        let data_nodes: Vec<u64> = self.data_nodes.keys().copied().collect();
        let db = self
            .databases
            .get_mut(database)
            .ok_or_else(|| CatalogError::DatabaseNotFound(database.to_string()))?;
        let rp_name = if rp.is_empty() {
            db.default_rp.clone().unwrap_or_default()
        } else {
            rp.to_string()
        };
        let rpi = db
            .retention_policies
            .get_mut(&rp_name)
            .ok_or_else(|| CatalogError::RetentionPolicyNotFound(rp_name.clone()))?;
        if let Some(g) = rpi.shard_group_for(t) {
            return Ok(Outcome::ShardGroup(g.clone()));
        }
        if data_nodes.is_empty() {
            return Err(CatalogError::NoDataNodes);
        }
        let mut start = truncate_time(t, rpi.shard_group_duration);
        let end = start.saturating_add(rpi.shard_group_duration);
        // A group truncated inside this span (`truncate-shards`) keeps its part of it.
        for g in rpi.live_shard_groups() {
            if g.start <= start && start < g.end && g.end <= t {
                start = g.end;
            }
        }
        // As 1.x: as many shards as fit data nodes / replicas, owners assigned round robin.
        let replica_n = (rpi.replica_n as usize).clamp(1, data_nodes.len());
        let shard_n = (data_nodes.len() / replica_n).max(1);
        self.max_shard_group_id += 1;
        let group_id = self.max_shard_group_id;
        let mut shards = Vec::with_capacity(shard_n);
        let mut next_owner = (group_id as usize) % data_nodes.len();
        for _ in 0..shard_n {
            self.max_shard_id += 1;
            let owners = (0..replica_n)
                .map(|_| {
                    let o = data_nodes[next_owner % data_nodes.len()];
                    next_owner += 1;
                    o
                })
                .collect();
            shards.push(ShardInfo {
                id: self.max_shard_id,
                owners,
            });
        }
        let group = ShardGroupInfo {
            id: group_id,
            start,
            end,
            deleted_at: None,
            shards,
        };
        rpi.shard_groups.push(group.clone());
        rpi.shard_groups.sort_by_key(|g| g.start);
        Ok(Outcome::ShardGroup(group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_with_node() -> CatalogState {
        let mut s = CatalogState::default();
        s.apply(&Command::RegisterDataNode {
            id: Some(2),
            http_addr: "h:8086".into(),
            tcp_addr: "h:8088".into(),
        })
        .unwrap();
        s
    }

    #[test]
    fn a_dropped_data_node_is_replaced_on_each_shard_it_shared() {
        let mut s = state_with_node();
        for id in [4, 6, 8] {
            s.apply(&Command::RegisterDataNode {
                id: Some(id),
                http_addr: format!("h{id}:8086"),
                tcp_addr: format!("h{id}:8088"),
            })
            .unwrap();
        }
        let rp = RetentionPolicySpec {
            name: "two".into(),
            duration: None,
            shard_group_duration: None,
            replica_n: Some(2),
        };
        s.apply(&Command::CreateDatabase {
            name: "db".into(),
            rp: Some(rp),
        })
        .unwrap();
        for week in 0..3 {
            s.apply(&Command::CreateShardGroup {
                database: "db".into(),
                rp: "".into(),
                timestamp: week * WEEK,
            })
            .unwrap();
        }
        let owners = |s: &CatalogState| -> Vec<Vec<u64>> {
            s.databases["db"].retention_policies["two"]
                .shard_groups
                .iter()
                .flat_map(|g| g.shards.iter().map(|x| x.owners.clone()))
                .collect()
        };
        let before = owners(&s);
        assert!(before.iter().any(|o| o.contains(&4)), "{before:?}");
        s.apply(&Command::RemoveDataNode {
            id: 4,
            force: false,
        })
        .unwrap();
        let after = owners(&s);
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(a.len(), 2, "replication kept: {b:?} -> {a:?}");
            assert!(!a.contains(&4));
            if b.contains(&4) {
                // The survivor stays first; the replacement comes last.
                let survivor: Vec<u64> = b.iter().copied().filter(|o| *o != 4).collect();
                assert_eq!(a[0], survivor[0], "{b:?} -> {a:?}");
            } else {
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn the_data_index_moves_with_shards_owners_and_deletes_only() {
        let mut s = state_with_node();
        s.apply_at(
            &Command::CreateDatabase {
                name: "db".into(),
                rp: None,
            },
            3,
        )
        .unwrap();
        assert_eq!(s.data_index(3), 3);
        let group = Command::CreateShardGroup {
            database: "db".into(),
            rp: "".into(),
            timestamp: 0,
        };
        s.apply_at(&group, 4).unwrap();
        // What a cluster commits all the time changes no shard: the index stays.
        let quiet = [
            Command::User(UserCommand::Create {
                name: "u".into(),
                hash: "h".into(),
                admin: false,
            }),
            Command::AckDeletes { node: 2, index: 4 },
            Command::RegisterDataNode {
                id: Some(2),
                http_addr: "h2:8086".into(),
                tcp_addr: "h2:8088".into(),
            },
        ];
        for (i, cmd) in quiet.iter().enumerate() {
            s.apply_at(cmd, 5 + i as u64).unwrap();
        }
        assert_eq!(s.data_index(7), 4);
        // A refused command changes nothing either.
        assert!(
            s.apply_at(
                &Command::AddShardOwner {
                    shard: 999,
                    node: 2
                },
                8,
            )
            .is_err()
        );
        assert_eq!(s.data_index(8), 4);
        s.apply_at(
            &Command::RecordDelete {
                database: "db".into(),
                scope: "all".into(),
                forget_columns: None,
            },
            9,
        )
        .unwrap();
        assert_eq!(s.data_index(10), 9);
        let shard = s.databases["db"].retention_policies["autogen"].shard_groups[0].shards[0].id;
        s.apply_at(&Command::DropShard { id: shard, at: 0 }, 11)
            .unwrap();
        assert_eq!(s.data_index(11), 11);
        // Never past what was applied.
        assert_eq!(s.data_index(10), 10);

        // A state saved before the index was kept: every applied command counts.
        let mut saved = serde_json::to_value(&s).unwrap();
        saved.as_object_mut().unwrap().remove("data_changed");
        let old: CatalogState = serde_json::from_value(saved).unwrap();
        assert_eq!(old.data_index(42), 42);
        let back: CatalogState = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back.data_index(42), 11);
    }

    #[test]
    fn recorded_deletes_are_kept_until_every_data_node_applied_them() {
        let mut s = state_with_node();
        s.apply(&Command::RegisterDataNode {
            id: Some(4),
            http_addr: "h4:8086".into(),
            tcp_addr: "h4:8088".into(),
        })
        .unwrap();
        let record = |s: &mut CatalogState, index: u64| {
            s.apply_at(
                &Command::RecordDelete {
                    database: "db".into(),
                    scope: format!("scope {index}"),
                    forget_columns: None,
                },
                index,
            )
        };
        // Of a database that does not exist: refused, nothing recorded.
        assert!(record(&mut s, 10).is_err());
        assert!(s.deletes.is_empty());
        s.apply(&Command::CreateDatabase {
            name: "db".into(),
            rp: None,
        })
        .unwrap();
        assert_eq!(record(&mut s, 11).unwrap(), Outcome::Index(11));
        assert_eq!(record(&mut s, 12).unwrap(), Outcome::Index(12));
        assert_eq!(s.last_delete, 12);
        let between: Vec<u64> = s.deletes_between("db", 11, 12).map(|d| d.index).collect();
        assert_eq!(between, vec![12]);
        assert_eq!(s.deletes_between("other", 0, 99).count(), 0);

        // Node 2 applied both, node 4 only the first: the second is kept.
        s.apply(&Command::AckDeletes { node: 2, index: 12 })
            .unwrap();
        s.apply(&Command::AckDeletes { node: 4, index: 11 })
            .unwrap();
        let kept: Vec<u64> = s.deletes.iter().map(|d| d.index).collect();
        assert_eq!(kept, vec![12]);
        // An acknowledgement never goes back.
        s.apply(&Command::AckDeletes { node: 2, index: 3 }).unwrap();
        assert_eq!(s.delete_acks[&2], 12);
        // A node that joins now has nothing to apply; one dropped no longer holds them back.
        s.apply(&Command::RegisterDataNode {
            id: Some(6),
            http_addr: "h6:8086".into(),
            tcp_addr: "h6:8088".into(),
        })
        .unwrap();
        assert_eq!(s.delete_acks[&6], 12);
        s.apply(&Command::RemoveDataNode { id: 4, force: true })
            .unwrap();
        assert!(s.deletes.is_empty(), "{:?}", s.deletes);
        assert!(!s.delete_acks.contains_key(&4));
        // Snapshots carry them (an older snapshot without them reads as none).
        let json = serde_json::to_string(&s).unwrap();
        let back: CatalogState = serde_json::from_str(&json).unwrap();
        assert_eq!(back.delete_acks, s.delete_acks);
        assert_eq!(back.last_delete, 12);
    }

    #[test]
    fn weekly_groups_start_on_monday_like_1x() {
        // 1.x put time 0 (a Thursday) into the group starting 1969-12-29T00:00:00Z.
        assert_eq!(truncate_time(0, WEEK), -3 * DAY);
        assert_eq!(truncate_time(HOUR + 5, HOUR), HOUR);
        assert_eq!(truncate_time(-1, DAY), -DAY);
    }

    #[test]
    fn create_database_is_idempotent_and_gets_autogen() {
        let mut s = state_with_node();
        let cmd = Command::CreateDatabase {
            name: "db".into(),
            rp: None,
        };
        s.apply(&cmd).unwrap();
        s.apply(&cmd).unwrap();
        let db = s.database("db").unwrap();
        let rp = db.rp("").unwrap();
        assert_eq!(
            (
                rp.name.as_str(),
                rp.duration,
                rp.shard_group_duration,
                rp.replica_n
            ),
            ("autogen", 0, WEEK, 1)
        );
    }

    #[test]
    fn retention_rules() {
        let mut s = state_with_node();
        let spec = |d| RetentionPolicySpec {
            name: "r".into(),
            duration: Some(d),
            shard_group_duration: None,
            replica_n: None,
        };
        assert_eq!(
            s.apply(&Command::CreateDatabase {
                name: "a".into(),
                rp: Some(spec(HOUR / 2))
            }),
            Err(CatalogError::RetentionTooShort)
        );
        s.apply(&Command::CreateDatabase {
            name: "a".into(),
            rp: Some(spec(DAY)),
        })
        .unwrap();
        assert_eq!(
            s.database("a")
                .unwrap()
                .rp("")
                .unwrap()
                .shard_group_duration,
            HOUR
        );
        assert_eq!(default_shard_group_duration(30 * DAY), DAY);
        assert_eq!(default_shard_group_duration(365 * DAY), WEEK);
    }

    #[test]
    fn shard_groups_cover_time_once() {
        let mut s = state_with_node();
        s.apply(&Command::CreateDatabase {
            name: "db".into(),
            rp: None,
        })
        .unwrap();
        let cmd = |t| Command::CreateShardGroup {
            database: "db".into(),
            rp: String::new(),
            timestamp: t,
        };
        let Outcome::ShardGroup(g1) = s.apply(&cmd(10)).unwrap() else {
            panic!()
        };
        let Outcome::ShardGroup(g2) = s.apply(&cmd(20)).unwrap() else {
            panic!()
        };
        assert_eq!(g1, g2);
        assert_eq!(g1.shards.len(), 1);
        assert_eq!(g1.shards[0].owners, vec![2]);
        let Outcome::ShardGroup(g3) = s.apply(&cmd(WEEK * 3)).unwrap() else {
            panic!()
        };
        assert_ne!(g1.id, g3.id);
        assert_ne!(g1.shards[0].id, g3.shards[0].id);
    }

    #[test]
    fn a_dropped_shard_leaves_its_group_and_the_last_one_deletes_the_group() {
        let mut s = state_with_node();
        s.apply(&Command::RegisterDataNode {
            id: Some(3),
            http_addr: "h3:8086".into(),
            tcp_addr: "h3:8088".into(),
        })
        .unwrap();
        s.apply(&Command::CreateDatabase {
            name: "db".into(),
            rp: None,
        })
        .unwrap();
        let Outcome::ShardGroup(g) = s
            .apply(&Command::CreateShardGroup {
                database: "db".into(),
                rp: String::new(),
                timestamp: 10,
            })
            .unwrap()
        else {
            panic!()
        };
        // Two data nodes, replication 1: two shards.
        assert_eq!(g.shards.len(), 2);
        let group = |s: &CatalogState| {
            s.databases["db"].retention_policies["autogen"].shard_groups[0].clone()
        };
        let drop = |id| Command::DropShard { id, at: 77 };
        s.apply(&drop(g.shards[0].id)).unwrap();
        assert_eq!(group(&s).shards, vec![g.shards[1].clone()]);
        assert_eq!(group(&s).deleted_at, None);
        // Not there (any more): no error, nothing changes.
        let before = s.clone();
        s.apply(&drop(g.shards[0].id)).unwrap();
        s.apply(&drop(999)).unwrap();
        assert_eq!(s, before);
        s.apply(&drop(g.shards[1].id)).unwrap();
        assert!(group(&s).shards.is_empty());
        assert_eq!(group(&s).deleted_at, Some(77));
        assert!(
            s.databases["db"]
                .rp("")
                .unwrap()
                .shard_group_for(10)
                .is_none()
        );
    }

    #[test]
    fn errors_leave_state_unchanged() {
        let mut s = state_with_node();
        let before = s.clone();
        assert!(
            s.apply(&Command::CreateShardGroup {
                database: "nope".into(),
                rp: String::new(),
                timestamp: 0
            })
            .is_err()
        );
        assert_eq!(s, before);
    }
}

#[cfg(test)]
mod user_tests {
    use super::*;

    fn user(cmd: UserCommand) -> Command {
        Command::User(cmd)
    }

    #[test]
    fn users_grants_and_revokes_follow_1x() {
        let mut s = CatalogState::default();
        s.apply(&Command::CreateDatabase {
            name: "db".into(),
            rp: None,
        })
        .unwrap();
        let create = |name: &str, admin| {
            user(UserCommand::Create {
                name: name.into(),
                hash: "h".into(),
                admin,
            })
        };
        assert!(!s.admin_exists());
        s.apply(&create("zed", true)).unwrap();
        s.apply(&create("abe", false)).unwrap();
        assert!(s.admin_exists());
        assert_eq!(
            s.apply(&create("abe", false)),
            Err(CatalogError::UserExists)
        );
        assert_eq!(
            s.apply(&create("", false)),
            Err(CatalogError::UsernameRequired)
        );
        let names: Vec<&str> = s.users_in_order().iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["zed", "abe"], "creation order, not name order");

        let set = |db: &str, p| {
            user(UserCommand::SetPrivilege {
                user: "abe".into(),
                database: db.into(),
                privilege: p,
            })
        };
        assert_eq!(
            s.apply(&set("nodb", Privilege::Read)),
            Err(CatalogError::DatabaseNotFound("nodb".into()))
        );
        s.apply(&set("db", Privilege::Read)).unwrap();
        let abe = s.user("abe").unwrap();
        assert!(abe.authorize_database(Privilege::Read, "db"));
        assert!(!abe.authorize_database(Privilege::Write, "db"));
        assert!(abe.authorize_database(Privilege::None, "other"));
        // GRANT sets exactly; REVOKE clears bits (ALL minus READ is WRITE).
        s.apply(&set("db", Privilege::All)).unwrap();
        let revoke = |db: &str, who: &str, p| {
            user(UserCommand::Revoke {
                user: who.into(),
                database: db.into(),
                privilege: p,
            })
        };
        s.apply(&revoke("db", "abe", Privilege::Read)).unwrap();
        assert_eq!(
            s.user("abe").unwrap().privilege("db"),
            Some(Privilege::Write)
        );
        assert_eq!(
            s.apply(&revoke("db", "nobody", Privilege::Read)),
            Err(CatalogError::UserNotFound)
        );
        assert_eq!(
            s.apply(&revoke("nodb", "abe", Privilege::Read)),
            Err(CatalogError::DatabaseNotFound("nodb".into()))
        );
        s.apply(&set("db", Privilege::All)).unwrap();
        assert_eq!(Privilege::Write.without(Privilege::All), Privilege::None);

        s.apply(&user(UserCommand::SetAdmin {
            user: "abe".into(),
            admin: true,
        }))
        .unwrap();
        assert!(
            s.user("abe")
                .unwrap()
                .authorize_database(Privilege::Write, "x")
        );
        // Dropping the database drops the privileges on it.
        s.apply(&Command::DropDatabase { name: "db".into() })
            .unwrap();
        assert!(s.user("abe").unwrap().privileges.is_empty());
        assert_eq!(
            s.apply(&user(UserCommand::Drop {
                name: "nobody".into()
            })),
            Err(CatalogError::UserNotFound)
        );
        s.apply(&user(UserCommand::Drop { name: "zed".into() }))
            .unwrap();
        assert_eq!(s.users.len(), 1);
    }
}
