//! The `AgentService` gRPC endpoint: authentication and roles, then the domain modules.

use frameos_core::{Error, Role, VersionStatus};
use frameos_proto::ProtoEnum;
use frameos_proto::status::to_status;
use frameos_proto::v1::{self, agent_service_server::AgentService};
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

use super::catalog;
use super::package_files::PackageFiles;
use super::reviews::{self, Decision, Queue, Target};
use super::versions::{self, Publisher};
use crate::accounts::auth;

pub struct Agents {
    db: DatabaseConnection,
    publisher: Publisher,
    files: PackageFiles,
    billing: crate::billing::Billing,
    hub: crate::execution::Hub,
}

impl Agents {
    pub fn new(
        publisher: Publisher,
        billing: crate::billing::Billing,
        hub: crate::execution::Hub,
    ) -> Self {
        Agents {
            hub,
            db: publisher.db.clone(),
            files: PackageFiles {
                db: publisher.db.clone(),
                store: publisher.store.clone(),
                limits: publisher.limits,
            },
            publisher,
            billing,
        }
    }
}

fn reply<T>(result: Result<T, Error>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(|e| to_status(&e))
}

#[tonic::async_trait]
impl AgentService for Agents {
    async fn create_agent(
        &self,
        request: Request<v1::CreateAgentRequest>,
    ) -> Result<Response<v1::CreateAgentResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::Developer)?;
                let agent =
                    catalog::create(&self.db, &self.billing, &caller, request.get_ref()).await?;
                Ok(v1::CreateAgentResponse { agent: Some(agent) })
            }
            .await,
        )
    }

    async fn list_agents(
        &self,
        request: Request<v1::ListAgentsRequest>,
    ) -> Result<Response<v1::ListAgentsResponse>, Status> {
        reply(
            async {
                let caller = auth::caller(&request)?;
                catalog::list(&self.db, caller.as_ref(), request.get_ref()).await
            }
            .await,
        )
    }

    async fn get_agent(
        &self,
        request: Request<v1::GetAgentRequest>,
    ) -> Result<Response<v1::GetAgentResponse>, Status> {
        reply(
            async {
                let caller = auth::caller(&request)?;
                let (row, latest) =
                    catalog::visible(&self.db, &request.get_ref().slug, caller.as_ref()).await?;
                let latest = latest.map(|v| (row.id.clone(), v)).into_iter().collect();
                let agent = catalog::with_owners(&self.db, vec![row], latest)
                    .await?
                    .pop();
                Ok(v1::GetAgentResponse { agent })
            }
            .await,
        )
    }

    async fn publish_version(
        &self,
        request: Request<v1::PublishVersionRequest>,
    ) -> Result<Response<v1::PublishVersionResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::Developer)?;
                let body = request.into_inner();
                let version = self
                    .publisher
                    .publish(&caller, &body.agent_slug, body.package.into())
                    .await?;
                Ok(v1::PublishVersionResponse {
                    version: Some(version),
                })
            }
            .await,
        )
    }

    async fn list_versions(
        &self,
        request: Request<v1::ListVersionsRequest>,
    ) -> Result<Response<v1::ListVersionsResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::Developer)?;
                let agent =
                    catalog::owned(&self.db, &request.get_ref().agent_slug, &caller, true).await?;
                let items = versions::list(&self.db, &agent).await?;
                Ok(v1::ListVersionsResponse { items })
            }
            .await,
        )
    }

    async fn list_reviews(
        &self,
        request: Request<v1::ListReviewsRequest>,
    ) -> Result<Response<v1::ListReviewsResponse>, Status> {
        reply(
            async {
                auth::require(&request, Role::Admin)?;
                let body = request.get_ref();
                let queue = if body.spot_check {
                    Queue::SpotCheck
                } else {
                    Queue::Status(
                        VersionStatus::from_proto_optional(body.status)?
                            .unwrap_or(VersionStatus::PendingReview),
                    )
                };
                let items = reviews::queue(&self.db, queue).await?;
                Ok(v1::ListReviewsResponse { items })
            }
            .await,
        )
    }

    async fn ban_agent(
        &self,
        request: Request<v1::BanAgentRequest>,
    ) -> Result<Response<v1::BanAgentResponse>, Status> {
        reply(
            async {
                let admin = auth::require(&request, Role::Admin)?;
                let body = request.get_ref();
                let banned = super::bans::ban(
                    &self.db,
                    &self.hub,
                    &self.billing,
                    &admin,
                    &body.agent_slug,
                    &body.reason,
                )
                .await?;
                Ok(v1::BanAgentResponse {
                    agent: Some(banned.agent),
                    canceled_executions: u32::try_from(banned.canceled_executions)
                        .unwrap_or(u32::MAX),
                })
            }
            .await,
        )
    }

    async fn approve_version(
        &self,
        request: Request<v1::ApproveVersionRequest>,
    ) -> Result<Response<v1::ApproveVersionResponse>, Status> {
        reply(
            async {
                let admin = auth::require(&request, Role::Admin)?;
                let body = request.get_ref();
                let version = &Target::new(&body.agent_slug, &body.version);
                let version = reviews::decide(&self.db, &admin, version, Decision::Approve).await?;
                Ok(v1::ApproveVersionResponse {
                    version: Some(version),
                })
            }
            .await,
        )
    }

    async fn reject_version(
        &self,
        request: Request<v1::RejectVersionRequest>,
    ) -> Result<Response<v1::RejectVersionResponse>, Status> {
        reply(
            async {
                let admin = auth::require(&request, Role::Admin)?;
                let body = request.get_ref();
                let version = &Target::new(&body.agent_slug, &body.version);
                let decision = Decision::Reject(&body.reason);
                let version = reviews::decide(&self.db, &admin, version, decision).await?;
                Ok(v1::RejectVersionResponse {
                    version: Some(version),
                })
            }
            .await,
        )
    }

    async fn update_agent(
        &self,
        request: Request<v1::UpdateAgentRequest>,
    ) -> Result<Response<v1::UpdateAgentResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::Developer)?;
                let agent =
                    catalog::update_pricing(&self.db, &self.billing, &caller, request.get_ref())
                        .await?;
                Ok(v1::UpdateAgentResponse { agent: Some(agent) })
            }
            .await,
        )
    }

    async fn list_releases(
        &self,
        request: Request<v1::ListReleasesRequest>,
    ) -> Result<Response<v1::ListReleasesResponse>, Status> {
        reply(
            async {
                let caller = auth::caller(&request)?;
                let slug = &request.get_ref().agent_slug;
                let (agent, latest) = catalog::visible(&self.db, slug, caller.as_ref()).await?;
                let items = match latest {
                    // Owners and admins see unpublished agents; those have no releases.
                    None => Vec::new(),
                    Some(_) => versions::releases(&self.db, &agent).await?,
                };
                Ok(v1::ListReleasesResponse { items })
            }
            .await,
        )
    }

    async fn list_package_files(
        &self,
        request: Request<v1::ListPackageFilesRequest>,
    ) -> Result<Response<v1::ListPackageFilesResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::Developer)?;
                let body = request.get_ref();
                let items = self
                    .files
                    .list(&caller, &body.agent_slug, &body.version)
                    .await?;
                Ok(v1::ListPackageFilesResponse { items })
            }
            .await,
        )
    }

    async fn get_package_file(
        &self,
        request: Request<v1::GetPackageFileRequest>,
    ) -> Result<Response<v1::GetPackageFileResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::Developer)?;
                let body = request.get_ref();
                self.files
                    .get(&caller, &body.agent_slug, &body.version, &body.path)
                    .await
            }
            .await,
        )
    }
}
