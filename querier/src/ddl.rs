//! Statements that change the catalog or delete data: retention policies, `DROP MEASUREMENT`,
//! `DROP SERIES` and `DELETE`.

use catalog::{Command, ForgetColumns, RetentionPolicySpec};
use ingester::{DeleteScope, TagPredicate};

use crate::executor::{ExecError, Executor};
use crate::influxql::{BinaryOp, Expr, Measurement, RetentionPolicyOptions};
use crate::select::split_time_range;

/// A `WHERE` clause of a delete (time split off already) as a predicate on tags.
fn tag_predicate(e: &Expr) -> Result<TagPredicate, ExecError> {
    let bad = || ExecError::Query("fields not supported in WHERE clause during deletion".into());
    match e {
        Expr::Paren(inner) => tag_predicate(inner),
        Expr::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        } => Ok(TagPredicate::And(
            Box::new(tag_predicate(lhs)?),
            Box::new(tag_predicate(rhs)?),
        )),
        Expr::Binary {
            op: BinaryOp::Or,
            lhs,
            rhs,
        } => Ok(TagPredicate::Or(
            Box::new(tag_predicate(lhs)?),
            Box::new(tag_predicate(rhs)?),
        )),
        Expr::Binary { op, lhs, rhs } => {
            let (key, value) = match (lhs.as_ref(), rhs.as_ref()) {
                (Expr::VarRef { name, .. }, v) | (v, Expr::VarRef { name, .. }) => {
                    (name.clone(), v)
                }
                _ => return Err(bad()),
            };
            match (op, value) {
                (BinaryOp::Eq, Expr::String(s)) => Ok(TagPredicate::Eq(key, s.clone())),
                (BinaryOp::NotEq, Expr::String(s)) => Ok(TagPredicate::NotEq(key, s.clone())),
                (BinaryOp::EqRegex, Expr::Regex(r)) => Ok(TagPredicate::Regex(key, r.clone())),
                (BinaryOp::NotEqRegex, Expr::Regex(r)) => {
                    Ok(TagPredicate::NotRegex(key, r.clone()))
                }
                _ => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}

impl Executor {
    pub(crate) async fn create_retention_policy(
        &self,
        name: &str,
        database: &str,
        options: &RetentionPolicyOptions,
    ) -> Result<(), ExecError> {
        let spec = RetentionPolicySpec {
            name: name.to_string(),
            duration: options.duration,
            shard_group_duration: options.shard_duration,
            replica_n: options.replication,
        };
        self.meta()
            .execute(Command::CreateRetentionPolicy {
                database: database.to_string(),
                spec,
                make_default: options.default,
            })
            .await?;
        Ok(())
    }

    pub(crate) async fn alter_retention_policy(
        &self,
        name: &str,
        database: &str,
        options: &RetentionPolicyOptions,
    ) -> Result<(), ExecError> {
        self.meta()
            .execute(Command::AlterRetentionPolicy {
                database: database.to_string(),
                name: name.to_string(),
                duration: options.duration,
                shard_group_duration: options.shard_duration,
                replica_n: options.replication,
                make_default: options.default,
            })
            .await?;
        Ok(())
    }

    pub(crate) async fn drop_retention_policy(
        &self,
        name: &str,
        database: &str,
    ) -> Result<(), ExecError> {
        self.meta()
            .execute(Command::DropRetentionPolicy {
                database: database.to_string(),
                name: name.to_string(),
            })
            .await?;
        if let Some(ing) = self.ingester() {
            ing.drop_removed_shards().await?;
        }
        Ok(())
    }

    /// `DELETE`, `DROP SERIES` (`allow_time` false) and `DROP MEASUREMENT` (one source, no
    /// condition).
    pub(crate) async fn delete(
        &self,
        db: &str,
        sources: &[Measurement],
        condition: Option<&Expr>,
        allow_time: bool,
    ) -> Result<(), ExecError> {
        let (range, rest) = split_time_range(condition, ingester::now_nanos())?;
        if self.meta().catalog().database(db).is_none() {
            return Err(ExecError::DatabaseNotFound(db.to_string()));
        }
        let has_time = range.min != i64::MIN || range.max != i64::MAX;
        if has_time && !allow_time {
            return Err(ExecError::Query(
                "DROP SERIES doesn't support time in WHERE clause".into(),
            ));
        }
        let predicate = rest.as_ref().map(tag_predicate).transpose()?;
        let measurements = if sources.is_empty() {
            None
        } else {
            let mut names = Vec::new();
            for m in sources {
                names.extend(
                    self.measurements_of(db, "", m.name.as_deref(), m.regex.as_deref())
                        .await?,
                );
            }
            if names.is_empty() {
                return Ok(());
            }
            Some(names)
        };
        let scope = DeleteScope {
            database: db.to_string(),
            retention_policy: None,
            measurements,
            predicate,
            min_time: range.min,
            max_time: range.max,
        };
        // Recorded in the catalog: every owner of the shards it reaches applies it, one that
        // is down when it comes back (coordinator::deletes).
        let recorded = serde_json::to_string(&scope)
            .map_err(|e| ExecError::Internal(format!("encoding a delete: {e}")))?;
        let index = match self
            .meta()
            .execute(Command::RecordDelete {
                database: db.to_string(),
                scope: recorded,
                // A measurement the delete empties may come back with other types.
                forget_columns: Some(ForgetColumns {
                    retention_policy: scope.retention_policy.clone(),
                    measurements: scope.measurements.clone(),
                    min_time: scope.min_time,
                    max_time: scope.max_time,
                }),
            })
            .await?
        {
            catalog::Outcome::Index(i) => i,
            other => {
                return Err(ExecError::Internal(format!(
                    "recording a delete answered {other:?}"
                )));
            }
        };
        // This node's own shards before the answer.
        match (self.deletes(), self.ingester()) {
            (Some(applier), _) => applier.apply_pending().await?,
            (None, Some(ing)) => ing.delete_recorded(&scope, index).await?,
            (None, None) => {}
        }
        Ok(())
    }
}
