//! Users and privileges: the statements that manage them (`CREATE USER`, `GRANT`, `SHOW
//! USERS`, ...) and 1.x's rule for what an authenticated user may run ([`authorize_query`]).
//!
//! Who the caller is is decided at the edge (the gateway checks passwords and tokens); this
//! module only answers whether that caller may run these statements, with 1.x's texts.

use std::sync::Arc;

use catalog::{CatalogError, Command, Privilege, UserCommand, UserInfo};
use serde_json::Value;

use crate::executor::{ExecError, Executor};
use crate::influxql::{Privilege as Granted, Source, Statement};
use crate::result::RowSeries;

/// 1.x's cost for password hashes (`bcrypt.DefaultCost`).
pub const BCRYPT_COST: u32 = 10;

/// Why statements may not run: 1.x's `ErrAuthorize`, answered with 403 and the prefix
/// `error authorizing query: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", match user { Some(u) => format!("{u} not authorized to execute {message}"), None => message.clone() })]
pub struct Unauthorized {
    pub user: Option<String>,
    pub message: String,
}

/// What one statement needs: admin, or a privilege on a database (empty: the request's).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Needs {
    Admin,
    On(String, Privilege),
}

fn required(stmt: &Statement) -> Vec<Needs> {
    use Statement as S;
    let on = |db: &Option<String>, p| vec![Needs::On(db.clone().unwrap_or_default(), p)];
    match stmt {
        S::ShowDatabases => vec![Needs::On(String::new(), Privilege::None)],
        S::ShowRetentionPolicies { database } | S::ShowMeasurements { database, .. } => {
            on(database, Privilege::Read)
        }
        S::ShowTagKeys(f) | S::ShowFieldKeys(f) | S::ShowSeries(f) => {
            on(&f.database, Privilege::Read)
        }
        S::ShowTagValues { filter, .. } => on(&filter.database, Privilege::Read),
        S::ShowCardinality { inner, .. } => required(inner),
        S::ShowQueries => on(&None, Privilege::Read),
        // 1.x: READ on the query's database, WRITE on another database its INTO names;
        // dropping needs WRITE; listing, READ on any database (only those are listed).
        S::CreateContinuousQuery(cq) => {
            let mut needs = vec![Needs::On(cq.database.clone(), Privilege::Read)];
            if let Some(into) = cq.select.into.as_ref().and_then(|m| m.database.clone())
                && into != cq.database
            {
                needs.push(Needs::On(into, Privilege::Write));
            }
            needs
        }
        S::DropContinuousQuery { database, .. } => {
            vec![Needs::On(database.clone(), Privilege::Write)]
        }
        S::ShowContinuousQueries => vec![Needs::On(String::new(), Privilege::None)],
        S::Delete { .. } | S::DropSeries { .. } => on(&None, Privilege::Write),
        S::Select(s) | S::Explain { select: s, .. } => select_needs(s),
        S::CreateDatabase { .. }
        | S::DropDatabase { .. }
        | S::CreateRetentionPolicy { .. }
        | S::AlterRetentionPolicy { .. }
        | S::DropRetentionPolicy { .. }
        | S::DropMeasurement { .. }
        | S::CreateUser { .. }
        | S::DropUser { .. }
        | S::SetPassword { .. }
        | S::Grant { .. }
        | S::Revoke { .. }
        | S::ShowUsers
        | S::ShowGrants { .. }
        | S::ShowShards
        | S::ShowShardGroups
        | S::ShowServers
        | S::ShowMetaStatus
        | S::ShowStats { .. }
        | S::ShowDiagnostics { .. }
        | S::KillQuery { .. }
        | S::DropMetaServer { .. }
        | S::DropDataServer { .. }
        | S::CreateSubscription { .. }
        | S::DropSubscription { .. }
        | S::ShowSubscriptions
        | S::DropShard { .. } => vec![Needs::Admin],
    }
}

/// READ on every source's database (subqueries included), WRITE on an `INTO` target's.
fn select_needs(s: &crate::influxql::SelectStatement) -> Vec<Needs> {
    let mut out = Vec::new();
    for src in &s.sources {
        match src {
            Source::Measurement(m) => out.push(Needs::On(
                m.database.clone().unwrap_or_default(),
                Privilege::Read,
            )),
            Source::Subquery(inner) => out.extend(select_needs(inner)),
        }
    }
    if let Some(into) = &s.into {
        out.push(Needs::On(
            into.database.clone().unwrap_or_default(),
            Privilege::Write,
        ));
    }
    out
}

/// 1.x's `QueryAuthorizer.AuthorizeQuery`, with auth enabled: while no user exists only a
/// request whose first statement creates an admin may run; otherwise the caller must be a
/// user, and a non-admin needs each statement's privileges (`database`: the `db` parameter).
pub fn authorize_query(
    users: usize,
    user: Option<&UserInfo>,
    statements: &[Statement],
    database: &str,
) -> Result<(), Unauthorized> {
    if users == 0 {
        if matches!(
            statements.first(),
            Some(Statement::CreateUser { admin: true, .. })
        ) {
            return Ok(());
        }
        return Err(Unauthorized {
            user: None,
            message: "create admin user first or disable authentication".into(),
        });
    }
    let Some(user) = user else {
        return Err(Unauthorized {
            user: None,
            message: "no user provided".into(),
        });
    };
    if user.admin {
        return Ok(());
    }
    for stmt in statements {
        for need in required(stmt) {
            let refused = |message: String| Unauthorized {
                user: Some(user.name.clone()),
                message,
            };
            match need {
                Needs::Admin => {
                    return Err(refused(format!(
                        "statement '{stmt}', requires admin privilege"
                    )));
                }
                Needs::On(db, p) => {
                    let db = if db.is_empty() {
                        database.to_string()
                    } else {
                        db
                    };
                    if !user.authorize_database(p, &db) {
                        return Err(refused(format!(
                            "statement '{stmt}', requires {} on {db}",
                            p.as_str()
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

fn refused(e: CatalogError) -> ExecError {
    ExecError::Meta(e.into())
}

fn granted(p: Granted) -> Privilege {
    match p {
        Granted::Read => Privilege::Read,
        Granted::Write => Privilege::Write,
        Granted::All => Privilege::All,
    }
}

/// The bcrypt hash of `password`, made off the async threads (it takes tens of milliseconds
/// by design).
pub async fn hash_password(password: &str) -> Result<String, ExecError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || bcrypt::hash(password, BCRYPT_COST))
        .await
        .map_err(|e| ExecError::Internal(format!("hashing a password: {e}")))?
        .map_err(|e| ExecError::Internal(format!("hashing a password: {e}")))
}

/// Whether `password` is the one `hash` was made from (off the async threads).
pub async fn verify_password(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_string(), hash.to_string());
    tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
        .await
        .unwrap_or(false)
}

impl Executor {
    async fn change_users(&self, cmd: UserCommand) -> Result<(), ExecError> {
        self.meta_service().execute(Command::User(cmd)).await?;
        Ok(())
    }

    pub(crate) async fn drop_user(&self, name: &str) -> Result<(), ExecError> {
        self.change_users(UserCommand::Drop {
            name: name.to_string(),
        })
        .await
    }

    pub(crate) async fn set_password(&self, name: &str, password: &str) -> Result<(), ExecError> {
        if self.meta_service().catalog().user(name).is_none() {
            return Err(refused(CatalogError::UserNotFound));
        }
        let hash = hash_password(password).await?;
        self.change_users(UserCommand::SetPassword {
            name: name.to_string(),
            hash,
        })
        .await
    }

    /// `GRANT <p> ON db TO u` sets exactly `<p>` on db (1.x); `REVOKE <p> ON db FROM u` clears
    /// `<p>`'s bits from what u holds (ALL minus READ leaves WRITE). Without a database, `ALL`
    /// makes (or unmakes) u an admin.
    pub(crate) async fn change_privilege(
        &self,
        granting: bool,
        privilege: Granted,
        database: Option<&str>,
        user: &str,
    ) -> Result<(), ExecError> {
        let (user, privilege) = (user.to_string(), granted(privilege));
        let cmd = match (database, granting) {
            (Some(db), true) => UserCommand::SetPrivilege {
                user,
                database: db.to_string(),
                privilege,
            },
            (Some(db), false) => UserCommand::Revoke {
                user,
                database: db.to_string(),
                privilege,
            },
            (None, admin) => UserCommand::SetAdmin { user, admin },
        };
        self.change_users(cmd).await
    }

    /// `SHOW USERS`: one unnamed series, users in creation order.
    pub(crate) fn show_users(&self) -> Vec<RowSeries> {
        let cat = self.meta_service().catalog();
        vec![RowSeries {
            columns: vec!["user".into(), "admin".into()],
            values: cat
                .users_in_order()
                .iter()
                .map(|u| vec![Value::from(u.name.as_str()), Value::from(u.admin)])
                .collect(),
            ..Default::default()
        }]
    }

    /// `SHOW GRANTS FOR u`: its privilege per database, in the order they were granted.
    pub(crate) fn show_grants(&self, user: &str) -> Result<Vec<RowSeries>, ExecError> {
        let cat = self.meta_service().catalog();
        let u = cat
            .user(user)
            .ok_or_else(|| refused(CatalogError::UserNotFound))?;
        Ok(vec![RowSeries {
            columns: vec!["database".into(), "privilege".into()],
            values: u
                .privileges
                .iter()
                .map(|(db, p)| vec![Value::from(db.as_str()), Value::from(p.as_str())])
                .collect(),
            ..Default::default()
        }])
    }

    /// `CREATE USER`: creating an existing user again with the same password and admin flag
    /// succeeds, anything else is `user already exists` (1.x).
    pub(crate) async fn create_user(
        &self,
        name: &str,
        password: &str,
        admin: bool,
    ) -> Result<(), ExecError> {
        if name.is_empty() {
            return Err(refused(CatalogError::UsernameRequired));
        }
        let existing = self.meta_service().catalog().user(name).cloned();
        if let Some(u) = existing {
            if u.admin == admin && verify_password(password, &u.hash).await {
                return Ok(());
            }
            return Err(refused(CatalogError::UserExists));
        }
        let hash = hash_password(password).await?;
        self.change_users(UserCommand::Create {
            name: name.to_string(),
            hash,
            admin,
        })
        .await
    }
}

/// The databases `SHOW DATABASES` lists for `user` (all of them when auth is off: `None`):
/// those the user may read or write.
pub fn may_see_database(user: Option<&Arc<UserInfo>>, database: &str) -> bool {
    user.is_none_or(|u| {
        u.authorize_database(Privilege::Read, database)
            || u.authorize_database(Privilege::Write, database)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::influxql::parse_query;

    fn user(admin: bool, privileges: &[(&str, Privilege)]) -> UserInfo {
        UserInfo {
            name: "bob".into(),
            seq: 1,
            hash: String::new(),
            admin,
            privileges: privileges
                .iter()
                .map(|(d, p)| (d.to_string(), *p))
                .collect(),
        }
    }

    fn check(u: Option<&UserInfo>, q: &str, db: &str) -> Result<(), String> {
        let stmts = parse_query(q).unwrap();
        authorize_query(1, u, &stmts, db).map_err(|e| e.to_string())
    }

    #[test]
    fn texts_and_rules_are_1x_ones() {
        let bob = user(false, &[("db", Privilege::Read)]);
        assert_eq!(check(Some(&bob), "SELECT * FROM m", "db"), Ok(()));
        assert_eq!(check(Some(&bob), "SHOW DATABASES", ""), Ok(()));
        assert_eq!(
            check(Some(&bob), "SELECT * FROM m", ""),
            Err(
                "bob not authorized to execute statement 'SELECT * FROM m', requires READ on "
                    .into()
            )
        );
        assert_eq!(
            check(Some(&bob), "SELECT * FROM other.autogen.m", "db"),
            Err("bob not authorized to execute statement 'SELECT * FROM other.autogen.m', requires READ on other".into())
        );
        assert_eq!(
            check(Some(&bob), "SELECT * FROM m; CREATE DATABASE x", "db"),
            Err("bob not authorized to execute statement 'CREATE DATABASE x', requires admin privilege".into())
        );
        assert_eq!(
            check(Some(&bob), "CREATE USER z WITH PASSWORD 'abc'", "db"),
            Err("bob not authorized to execute statement 'CREATE USER z WITH PASSWORD [REDACTED]', requires admin privilege".into())
        );
        assert_eq!(
            check(Some(&bob), "DELETE FROM m", "db"),
            Err(
                "bob not authorized to execute statement 'DELETE FROM m', requires WRITE on db"
                    .into()
            )
        );
        assert!(check(Some(&bob), "SELECT * FROM (SELECT * FROM a..m)", "db").is_err());
        assert!(check(Some(&bob), "SELECT v INTO db.autogen.x FROM m", "db").is_err());
        let writer = user(false, &[("db", Privilege::All)]);
        assert_eq!(
            check(
                Some(&writer),
                "SELECT v INTO x FROM m; DROP SERIES FROM m",
                "db"
            ),
            Ok(())
        );
        assert_eq!(
            check(Some(&user(true, &[])), "DROP DATABASE db", ""),
            Ok(())
        );
        assert_eq!(
            check(None, "SHOW DATABASES", ""),
            Err("no user provided".into())
        );
        // No user at all: only a first statement creating an admin.
        let stmts = parse_query("CREATE USER a WITH PASSWORD 'p' WITH ALL PRIVILEGES").unwrap();
        assert_eq!(authorize_query(0, None, &stmts, ""), Ok(()));
        let stmts = parse_query("CREATE USER a WITH PASSWORD 'p'").unwrap();
        assert_eq!(
            authorize_query(0, None, &stmts, "").map_err(|e| e.to_string()),
            Err("create admin user first or disable authentication".into())
        );
    }

    #[test]
    fn show_databases_lists_what_the_user_may_read_or_write() {
        let u = Arc::new(user(
            false,
            &[("r", Privilege::Read), ("n", Privilege::None)],
        ));
        assert!(may_see_database(Some(&u), "r"));
        assert!(!may_see_database(Some(&u), "n"));
        assert!(!may_see_database(Some(&u), "x"));
        assert!(may_see_database(None, "x"));
    }
}
