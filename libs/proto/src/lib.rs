//! Rust bindings of the FrameOS gRPC contracts in `proto/frameos/v1`, and the conversions of
//! the core vocabulary to and from their protobuf enums ([`vocab`]).

pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, clippy::unwrap_used)]
    tonic::include_proto!("frameos.v1");
}

/// Encoded file descriptor set, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/frameos_descriptor.bin"));

pub mod codec;
pub mod scope;
mod secrets;
pub mod status;
pub mod vocab;

pub use vocab::ProtoEnum;
