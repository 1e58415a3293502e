//! Agents that call agents (API.md §5.1): a version's `dependencies` are checked when it is
//! uploaded, and each call resolves its range to the highest published version in it.

use std::collections::BTreeMap;

use frameos_core::{Error, ErrorCode, VersionStatus};
use frameos_package::manifest::Range;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::db;
use crate::entity::{agent, agent_version};

/// The version a dependency resolves to now.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub agent: agent::Model,
    pub version: agent_version::Model,
}

/// Refuses (`invalid_dependency`, naming the slug and the range) a dependency on an agent
/// nobody published, or a range none of its published versions satisfies.
pub async fn check(
    db: &DatabaseConnection,
    dependencies: &BTreeMap<String, Range>,
) -> Result<(), Error> {
    for (slug, range) in dependencies {
        let resolved = resolve(db, slug, range).await?;
        tracing::debug!(
            dependency = slug,
            range = range.as_str(),
            agent_id = %resolved.agent.id,
            version = %resolved.version.version,
            "dependency resolves"
        );
    }
    Ok(())
}

/// The highest published version of `slug` that `range` admits.
pub async fn resolve(
    db: &DatabaseConnection,
    slug: &str,
    range: &Range,
) -> Result<Resolved, Error> {
    let refuse = |reason: String| {
        Error::new(
            ErrorCode::InvalidDependency,
            format!("dependency {slug:?} ({}): {reason}", range.as_str()),
        )
    };
    let agent = agent::Entity::find()
        .filter(agent::Column::Slug.eq(slug))
        .one(db)
        .await
        .map_err(db::error)?
        .ok_or_else(|| refuse("no agent has this slug".into()))?;
    if agent.banned_at.is_some() {
        return Err(refuse("the agent is banned".into()));
    }
    let published = agent_version::Entity::find()
        .filter(agent_version::Column::AgentId.eq(&agent.id))
        .filter(agent_version::Column::Status.eq(VersionStatus::Published))
        .all(db)
        .await
        .map_err(db::error)?;
    if published.is_empty() {
        return Err(refuse("the agent has no published version".into()));
    }
    let version = highest_in(published, range)
        .ok_or_else(|| refuse("no published version satisfies the range".into()))?;
    Ok(Resolved { agent, version })
}

/// The highest (by SemVer precedence) of `versions` that `range` admits.
fn highest_in(versions: Vec<agent_version::Model>, range: &Range) -> Option<agent_version::Model> {
    versions
        .into_iter()
        .filter(|v| range.satisfied_by(&v.version))
        .filter_map(|v| {
            semver::Version::parse(&v.version)
                .ok()
                .map(|parsed| (parsed, v))
        })
        .max_by(|(a, _), (b, _)| a.cmp_precedence(b))
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use frameos_core::Runtime;

    use super::*;

    fn version(v: &str) -> agent_version::Model {
        agent_version::Model {
            id: v.into(),
            agent_id: "ag".into(),
            version: v.into(),
            status: VersionStatus::Published,
            runtime: Runtime::Node,
            sha256: String::new(),
            size_bytes: 0,
            package_key: String::new(),
            manifest: "{}".into(),
            scan: "{}".into(),
            created_at: Utc::now(),
            published_at: None,
            spot_check: false,
        }
    }

    #[test]
    fn the_highest_version_in_range_wins() {
        let all = || {
            ["1.0.0", "1.4.2", "1.10.0", "2.0.0", "1.11.0-rc.1"]
                .map(version)
                .to_vec()
        };
        let pick =
            |range: &str| highest_in(all(), &Range::parse(range).unwrap()).map(|v| v.version);
        assert_eq!(
            pick("^1.0.0").as_deref(),
            Some("1.10.0"),
            "precedence, not text order"
        );
        assert_eq!(pick("~1.4").as_deref(), Some("1.4.2"));
        assert_eq!(pick(">=2").as_deref(), Some("2.0.0"));
        assert_eq!(pick("^3").as_deref(), None);
        assert_eq!(pick(">=1.11.0-rc.1 <2").as_deref(), Some("1.11.0-rc.1"));
    }
}
