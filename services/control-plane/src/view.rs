//! Table rows → gRPC messages.

use chrono::{DateTime, Utc};
use frameos_core::PricingModel;
use frameos_proto::{ProtoEnum, v1};

use crate::entity::{account, agent, agent_version, review};

pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub fn account(m: &account::Model) -> v1::Account {
    v1::Account {
        id: m.id.clone(),
        name: m.name.clone(),
        role: m.role.to_proto(),
        created_at: Some(timestamp(m.created_at)),
    }
}

pub fn pricing(m: &agent::Model) -> v1::Pricing {
    let model = match (m.pricing_model, m.price_minor, &m.currency) {
        (PricingModel::PerExecution, Some(price_minor), Some(currency)) => {
            v1::pricing::Model::PerExecution(v1::PerExecution {
                price_minor,
                currency: currency.clone(),
            })
        }
        _ => v1::pricing::Model::Free(v1::Free {}),
    };
    v1::Pricing { model: Some(model) }
}

pub fn agent(m: &agent::Model, latest: Option<v1::Version>, owner_name: String) -> v1::Agent {
    v1::Agent {
        owner_name,
        id: m.id.clone(),
        slug: m.slug.clone(),
        name: m.name.clone(),
        description: m.description.clone(),
        owner_id: m.owner_id.clone(),
        pricing: Some(pricing(m)),
        latest_version: latest,
        created_at: Some(timestamp(m.created_at)),
        ban: m.banned_at.map(|at| v1::Ban {
            reason: m.ban_reason.clone().unwrap_or_default(),
            banned_at: Some(timestamp(at)),
        }),
    }
}

pub fn version(
    m: &agent_version::Model,
    slug: &str,
    last_review: Option<&review::Model>,
) -> v1::Version {
    // The scan column is written by us from a `frameos_scanner::Report`; an unreadable one is a
    // bug we surface as an empty report rather than failing the whole listing.
    let scan: v1::ScanReport = serde_json::from_str::<serde_json::Value>(&m.scan)
        .ok()
        .map(|v| scan_report(&v))
        .unwrap_or_default();
    v1::Version {
        agent_id: m.agent_id.clone(),
        agent_slug: slug.to_string(),
        version: m.version.clone(),
        status: m.status.to_proto(),
        sha256: m.sha256.clone(),
        size_bytes: u64::try_from(m.size_bytes).unwrap_or(0),
        scan: Some(scan),
        manifest_json: m.manifest.clone(),
        review: last_review.map(|r| v1::Review {
            decision: r.decision.to_proto(),
            reviewer: r.reviewer.clone(),
            reason: r.reason.clone(),
            decided_at: Some(timestamp(r.created_at)),
        }),
        created_at: Some(timestamp(m.created_at)),
        published_at: m.published_at.map(timestamp),
        // Admins only (the review module sets it): the owner does not learn whether a
        // version escaped the sample.
        spot_check: false,
    }
}

fn scan_report(v: &serde_json::Value) -> v1::ScanReport {
    let violations = v["violations"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| v1::Violation {
                    rule: item["rule"].as_str().unwrap_or_default().to_string(),
                    severity: item["severity"].as_str().unwrap_or_default().to_string(),
                    path: item["path"].as_str().unwrap_or_default().to_string(),
                    line: item["line"]
                        .as_u64()
                        .and_then(|l| u32::try_from(l).ok())
                        .unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default();
    v1::ScanReport {
        passed: v["passed"].as_bool().unwrap_or(false),
        violations,
    }
}
