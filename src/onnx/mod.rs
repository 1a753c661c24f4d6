//! Reading ONNX models without an inference runtime: the protobuf messages ([`pb`]), decoding a
//! file into them ([`parse`]) and a tensor's values as `f32` ([`tensor_floats`]).
//!
//! This is all the small engine needs of a model file: the dense kernel's pattern matcher reads
//! the graph from these messages and takes its weights from [`tensor_floats`].

pub mod pb;
mod tensor;

pub use tensor::{tensor_floats, Floats, TensorError};

/// Decodes an ONNX model file. Fails on anything that is not a well-formed `ModelProto`
/// (truncated, bit-flipped, another format); says nothing yet about what the graph means.
pub fn parse(bytes: &[u8]) -> Result<pb::ModelProto, prost::DecodeError> {
    prost::Message::decode(bytes)
}
