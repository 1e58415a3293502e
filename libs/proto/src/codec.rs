//! The protobuf codec of every FrameOS service and client: prost, with small per-call buffers.
//!
//! tonic gives each call an 8 KiB encode buffer and an 8 KiB decode buffer up front, and an
//! open `WatchExecution` stream keeps its buffer for as long as it is open: with 1,000 event
//! streams that was ~8 MiB in the control plane and ~8 MiB more in the gateway (ADR 0030).
//! Our messages are a few hundred bytes; a buffer starts at [`INITIAL_BUFFER`] and grows to
//! fit a larger message (the decoder reserves each message's length as it reads it), so
//! only the start-up allocation changes, never what a call can carry.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::ProstCodec;

/// Bytes each call's encode and decode buffers start with.
pub const INITIAL_BUFFER: usize = 512;

/// How many encoded bytes a stream gathers before it hands them to the transport (tonic's
/// default: a burst of log lines still goes out in few frames).
pub const YIELD_THRESHOLD: usize = 32 * 1024;

/// The codec the generated services and clients use (`codec_path` in `build.rs`).
#[derive(Debug, Clone, Copy)]
pub struct SmallBuffers<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SmallBuffers<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(INITIAL_BUFFER, YIELD_THRESHOLD)
}

impl<T, U> Codec for SmallBuffers<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = <ProstCodec<T, U> as Codec>::Decoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(settings())
    }
}
