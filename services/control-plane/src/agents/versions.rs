//! Publishing a version: validate the package, scan it, store the exact bytes, record it.

use frameos_core::{ReviewDecision, VersionStatus};
use std::collections::HashMap;

use bytes::Bytes;
use chrono::Utc;
use frameos_blobstore::Store;
use frameos_core::{Error, ErrorCode};
use frameos_package::{Limits, PlatformMaxima};
use frameos_proto::v1;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};

use crate::accounts::auth::Principal;
use crate::agents::catalog;
use crate::agents::review_mode::{Admission, ReviewPolicy};
use crate::entity::{agent, agent_version, review};
use crate::{db, view};

pub struct Publisher {
    pub db: DatabaseConnection,
    pub store: Store,
    pub limits: Limits,
    pub maxima: PlatformMaxima,
    pub review: ReviewPolicy,
}

impl Publisher {
    pub async fn publish(
        &self,
        caller: &Principal,
        slug: &str,
        package: Bytes,
    ) -> Result<v1::Version, Error> {
        let agent = catalog::owned(&self.db, slug, caller, false).await?;
        crate::agents::bans::refuse_banned(&agent)?;
        if package.len() as u64 > self.limits.max_compressed_bytes {
            return Err(Error::new(
                ErrorCode::PackageTooLarge,
                format!(
                    "the package is {} bytes; the limit is {} bytes",
                    package.len(),
                    self.limits.max_compressed_bytes
                ),
            ));
        }
        // Decompression and scanning are CPU work: keep them off the async workers.
        let (limits, maxima, expected) = (self.limits, self.maxima, slug.to_string());
        let bytes = package.clone();
        let (opened, report) = tokio::task::spawn_blocking(move || {
            let opened = frameos_package::open(&bytes, &expected, &limits, &maxima)?;
            let report = frameos_scanner::scan(
                opened
                    .archive
                    .files
                    .iter()
                    .map(|f| (f.path.as_str(), f.contents.as_slice())),
            );
            Ok::<_, frameos_package::Error>((opened, report))
        })
        .await
        .map_err(|e| Error::internal(format!("package validation panicked: {e}")))?
        .map_err(Error::from)?;

        // Every dependency must resolve now, or no run of this version could call it.
        crate::agents::dependencies::check(&self.db, &opened.manifest.dependencies).await?;

        let version = opened.manifest.version.clone();
        let admission = report
            .passed
            .then(|| self.review.admit(slug, &version.to_string()));
        let (status, spot_check) = match admission {
            None => (VersionStatus::Rejected, false),
            Some(Admission::Review) => (VersionStatus::PendingReview, false),
            Some(Admission::Publish { spot_check }) => (VersionStatus::Published, spot_check),
        };
        let scan_json = serde_json::to_string(&report)
            .map_err(|e| Error::internal(format!("scan report: {e}")))?;
        let manifest_json = opened.manifest.to_json().to_string();
        let package_key = format!("agents/{}/v{}.tar.gz", agent.id, version);

        let txn = self.db.begin().await.map_err(db::error)?;
        // Touching the agent row serializes concurrent publishes of one agent (a row lock on
        // PostgreSQL, the write lock on SQLite), so the ordering check below cannot race.
        agent::Entity::update_many()
            .col_expr(agent::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(agent::Column::Id.eq(&agent.id))
            .exec(&txn)
            .await
            .map_err(db::error)?;
        let existing = agent_version::Entity::find()
            .filter(agent_version::Column::AgentId.eq(&agent.id))
            .all(&txn)
            .await
            .map_err(db::error)?;
        check_order(&version, existing.iter().map(|v| v.version.as_str()))?;

        // Nothing references the object until the row commits; a failed commit leaves an
        // orphan that the next upload of this version overwrites.
        self.store
            .put(&package_key, package)
            .await
            .map_err(|e| store_error(&e))?;

        let now = Utc::now();
        let row = agent_version::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            agent_id: Set(agent.id.clone()),
            version: Set(version.to_string()),
            status: Set(status),
            runtime: Set(opened.manifest.runtime),
            sha256: Set(opened.sha256.clone()),
            size_bytes: Set(i64::try_from(opened.size_bytes).unwrap_or(i64::MAX)),
            package_key: Set(package_key),
            manifest: Set(manifest_json),
            scan: Set(scan_json),
            created_at: Set(now),
            published_at: Set((status == VersionStatus::Published).then_some(now)),
            spot_check: Set(spot_check),
        }
        .insert(&txn)
        .await
        .map_err(|e| {
            db::unique_or(
                e,
                ErrorCode::VersionExists,
                format!("version {version} of {slug} exists already"),
            )
        })?;
        let review = if let Some(admission) = admission {
            match admission {
                Admission::Review => None,
                // The auto mode's approval, on record like an admin's.
                Admission::Publish { .. } => Some(
                    review::ActiveModel {
                        id: Set(uuid::Uuid::now_v7().to_string()),
                        version_id: Set(row.id.clone()),
                        decision: Set(ReviewDecision::Approved),
                        reviewer: Set(review::AUTO.to_string()),
                        reason: Set(String::new()),
                        created_at: Set(now),
                    }
                    .insert(&txn)
                    .await
                    .map_err(db::error)?,
                ),
            }
        } else {
            let high: Vec<String> = report
                .violations
                .iter()
                .filter(|v| v.severity == frameos_scanner::Severity::High)
                .map(|v| format!("{} at {}:{}", v.rule, v.path, v.line))
                .collect();
            let decision = review::ActiveModel {
                id: Set(uuid::Uuid::now_v7().to_string()),
                version_id: Set(row.id.clone()),
                decision: Set(ReviewDecision::Rejected),
                reviewer: Set(review::SCANNER.to_string()),
                reason: Set(format!(
                    "the scanner found high-severity issues: {}",
                    high.join(", ")
                )),
                created_at: Set(now),
            }
            .insert(&txn)
            .await
            .map_err(db::error)?;
            Some(decision)
        };
        txn.commit().await.map_err(db::error)?;
        tracing::info!(
            slug,
            version = %row.version,
            status = %row.status,
            spot_check = row.spot_check,
            sha256 = %row.sha256,
            size_bytes = row.size_bytes,
            violations = report.violations.len(),
            "version uploaded"
        );
        Ok(view::version(&row, slug, review.as_ref()))
    }
}

/// A new version must differ from and be greater (by SemVer precedence) than every existing one.
fn check_order<'a>(
    new: &semver::Version,
    existing: impl Iterator<Item = &'a str>,
) -> Result<(), Error> {
    let mut highest: Option<semver::Version> = None;
    for v in existing {
        if v == new.to_string() {
            return Err(Error::new(
                ErrorCode::VersionExists,
                format!("version {new} exists already; versions are immutable"),
            ));
        }
        if let Ok(v) = semver::Version::parse(v)
            && highest.as_ref().is_none_or(|h| v.cmp_precedence(h).is_gt())
        {
            highest = Some(v);
        }
    }
    match highest {
        Some(h) if !new.cmp_precedence(&h).is_gt() => Err(Error::new(
            ErrorCode::VersionNotGreater,
            format!("version {new} is not greater than {h}, the highest existing version"),
        )),
        _ => Ok(()),
    }
}

fn store_error(e: &frameos_blobstore::Error) -> Error {
    tracing::error!(error = %e, "package store write failed");
    Error::unavailable("the package store is unavailable; try again")
}

/// Versions of an agent with their latest review, newest first.
pub async fn list(
    db: &DatabaseConnection,
    agent: &agent::Model,
) -> Result<Vec<v1::Version>, Error> {
    let rows = agent_version::Entity::find()
        .filter(agent_version::Column::AgentId.eq(&agent.id))
        .order_by_desc(agent_version::Column::CreatedAt)
        .all(db)
        .await
        .map_err(db::error)?;
    let slugs = HashMap::from([(agent.id.clone(), agent.slug.clone())]);
    with_reviews(db, rows, &slugs).await
}

/// The most releases listed: a release history longer than this is read by its developer
/// through `ListVersions`.
const MAX_RELEASES: u64 = 100;

/// The published versions of `agent`, highest first, without their reviews (who reviewed is
/// not the public's business). Versions only grow, so the newest upload is the highest.
pub async fn releases(
    db: &DatabaseConnection,
    agent: &agent::Model,
) -> Result<Vec<v1::Version>, Error> {
    let rows = agent_version::Entity::find()
        .filter(agent_version::Column::AgentId.eq(&agent.id))
        .filter(agent_version::Column::Status.eq(VersionStatus::Published))
        .order_by_desc(agent_version::Column::CreatedAt)
        .limit(MAX_RELEASES)
        .all(db)
        .await
        .map_err(db::error)?;
    Ok(rows
        .iter()
        .map(|row| view::version(row, &agent.slug, None))
        .collect())
}

/// Attaches the latest review of each version.
pub async fn with_reviews(
    db: &DatabaseConnection,
    rows: Vec<agent_version::Model>,
    slugs: &HashMap<String, String>,
) -> Result<Vec<v1::Version>, Error> {
    let reviews = review::Entity::find()
        .filter(review::Column::VersionId.is_in(rows.iter().map(|r| r.id.as_str())))
        .order_by_asc(review::Column::CreatedAt)
        .all(db)
        .await
        .map_err(db::error)?;
    let mut latest: HashMap<String, review::Model> = HashMap::new();
    for r in reviews {
        latest.insert(r.version_id.clone(), r);
    }
    Ok(rows
        .iter()
        .map(|row| {
            let slug = slugs
                .get(&row.agent_id)
                .map(String::as_str)
                .unwrap_or_default();
            view::version(row, slug, latest.get(&row.id))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> semver::Version {
        semver::Version::parse(s).unwrap()
    }

    #[test]
    fn versions_must_grow() {
        assert!(check_order(&v("1.0.0"), [].into_iter()).is_ok());
        assert!(check_order(&v("1.10.0"), ["1.9.0", "1.2.0"].into_iter()).is_ok());
        assert!(check_order(&v("1.0.0"), ["1.0.0-rc.1"].into_iter()).is_ok());
        let exists = check_order(&v("1.2.0"), ["1.2.0"].into_iter()).unwrap_err();
        assert_eq!(exists.code, ErrorCode::VersionExists);
        let lower = check_order(&v("1.1.0"), ["1.2.0"].into_iter()).unwrap_err();
        assert_eq!(lower.code, ErrorCode::VersionNotGreater);
        assert!(lower.message.contains("1.2.0"));
        let pre = check_order(&v("1.0.0-rc.1"), ["1.0.0"].into_iter()).unwrap_err();
        assert_eq!(pre.code, ErrorCode::VersionNotGreater);
        // Build metadata does not change precedence.
        let build = check_order(&v("1.0.0+b"), ["1.0.0+a"].into_iter()).unwrap_err();
        assert_eq!(build.code, ErrorCode::VersionNotGreater);
    }
}
