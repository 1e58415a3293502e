//! The `ScheduleService` gRPC endpoint.

use frameos_core::{Error, Role};
use frameos_proto::status::to_status;
use frameos_proto::v1::{self, schedule_service_server::ScheduleService};
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

use super::{ScheduleConfig, book};
use crate::accounts::auth;
use crate::billing::Billing;
use crate::webhooks::Guard;

pub struct Schedules {
    db: DatabaseConnection,
    billing: Billing,
    webhooks: Guard,
    config: ScheduleConfig,
}

impl Schedules {
    pub fn new(
        db: DatabaseConnection,
        billing: Billing,
        webhooks: Guard,
        config: ScheduleConfig,
    ) -> Self {
        Schedules {
            db,
            billing,
            webhooks,
            config,
        }
    }
}

fn reply<T>(result: Result<T, Error>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(|e| to_status(&e))
}

#[tonic::async_trait]
impl ScheduleService for Schedules {
    async fn create_schedule(
        &self,
        request: Request<v1::CreateScheduleRequest>,
    ) -> Result<Response<v1::CreateScheduleResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::User)?;
                let schedule = book::create(
                    &self.db,
                    &self.billing,
                    &self.webhooks,
                    self.config.schedules_per_account,
                    &caller,
                    request.get_ref(),
                )
                .await?;
                Ok(v1::CreateScheduleResponse {
                    schedule: Some(schedule),
                })
            }
            .await,
        )
    }

    async fn get_schedule(
        &self,
        request: Request<v1::GetScheduleRequest>,
    ) -> Result<Response<v1::GetScheduleResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::User)?;
                let schedule = book::get(&self.db, &caller, &request.get_ref().id).await?;
                Ok(v1::GetScheduleResponse {
                    schedule: Some(schedule),
                })
            }
            .await,
        )
    }

    async fn list_schedules(
        &self,
        request: Request<v1::ListSchedulesRequest>,
    ) -> Result<Response<v1::ListSchedulesResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::User)?;
                let items = book::list(&self.db, &caller).await?;
                Ok(v1::ListSchedulesResponse { items })
            }
            .await,
        )
    }

    async fn delete_schedule(
        &self,
        request: Request<v1::DeleteScheduleRequest>,
    ) -> Result<Response<v1::DeleteScheduleResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::User)?;
                book::delete(&self.db, &caller, &request.get_ref().id).await?;
                Ok(v1::DeleteScheduleResponse {})
            }
            .await,
        )
    }
}
