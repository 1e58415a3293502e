//! Speaking the node protocol directly, as an execution node would (with the node token).

use anyhow::Context;
use frameos_proto::v1::node_service_client::NodeServiceClient;
use tonic::codegen::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::Mesh;

/// Presents the mesh's node token on every call.
#[derive(Clone)]
pub struct NodeToken(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for NodeToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

pub type NodeClient = NodeServiceClient<InterceptedService<Channel, NodeToken>>;

impl Mesh {
    /// A `NodeService` client with this mesh's node token.
    pub async fn node_client(&self) -> anyhow::Result<NodeClient> {
        let channel = Endpoint::from_shared(format!("http://{}", self.grpc_addr))?
            .connect()
            .await?;
        let token = format!("Bearer {}", self.node_token)
            .parse()
            .context("node token")?;
        Ok(NodeServiceClient::with_interceptor(
            channel,
            NodeToken(token),
        ))
    }
}
