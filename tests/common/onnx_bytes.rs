//! A minimal protobuf writer for building ONNX models byte by byte in tests: hostile graphs
//! (huge dims, wrong dtypes, cycles…) and protobuf-shaped garbage that no exporter would write.
//!
//! Field numbers follow `onnx.proto`; only the fields the loader tests need are named.
#![allow(dead_code, reason = "each test binary uses a different subset")]

/// Appends `v` as a base-128 varint.
pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a varint field (wire type 0).
pub fn field_varint(out: &mut Vec<u8>, field: u32, v: u64) {
    varint(out, u64::from(field) << 3);
    varint(out, v);
}

/// Appends a length-delimited field (wire type 2).
pub fn field_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, (u64::from(field) << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// ONNX element types used by the tests (`TensorProto.DataType`).
pub const FLOAT: u64 = 1;
pub const INT64: u64 = 7;

/// One dimension of a declared shape.
#[derive(Clone, Copy)]
pub enum Dim<'a> {
    /// A fixed size (`dim_value`), which may be absurd.
    Value(i64),
    /// A named symbolic size (`dim_param`).
    Param(&'a str),
}

/// `ValueInfoProto` for a tensor `name` of `elem_type` and `dims`.
pub fn value_info(name: &str, elem_type: u64, dims: &[Dim]) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in dims {
        let mut dim = Vec::new();
        match d {
            Dim::Value(v) => field_varint(&mut dim, 1, *v as u64),
            Dim::Param(p) => field_bytes(&mut dim, 2, p.as_bytes()),
        }
        field_bytes(&mut shape, 1, &dim);
    }
    let mut tensor = Vec::new();
    field_varint(&mut tensor, 1, elem_type);
    field_bytes(&mut tensor, 2, &shape);
    let mut ty = Vec::new();
    field_bytes(&mut ty, 1, &tensor);
    let mut vi = Vec::new();
    field_bytes(&mut vi, 1, name.as_bytes());
    field_bytes(&mut vi, 2, &ty);
    vi
}

/// `NodeProto` running `op` from `inputs` to `outputs`, with pre-encoded `attributes`.
pub fn node(op: &str, inputs: &[&str], outputs: &[&str], attributes: &[Vec<u8>]) -> Vec<u8> {
    let mut n = Vec::new();
    for i in inputs {
        field_bytes(&mut n, 1, i.as_bytes());
    }
    for o in outputs {
        field_bytes(&mut n, 2, o.as_bytes());
    }
    field_bytes(&mut n, 3, format!("{op}_{}", outputs.first().unwrap_or(&"")).as_bytes());
    field_bytes(&mut n, 4, op.as_bytes());
    for a in attributes {
        field_bytes(&mut n, 5, a);
    }
    n
}

/// `AttributeProto` holding a list of ints (`ints`, type INTS).
pub fn attr_ints(name: &str, ints: &[i64]) -> Vec<u8> {
    let mut a = Vec::new();
    field_bytes(&mut a, 1, name.as_bytes());
    for i in ints {
        field_varint(&mut a, 8, *i as u64);
    }
    field_varint(&mut a, 20, 7);
    a
}

/// `AttributeProto` holding one int (type INT).
pub fn attr_int(name: &str, v: i64) -> Vec<u8> {
    let mut a = Vec::new();
    field_bytes(&mut a, 1, name.as_bytes());
    field_varint(&mut a, 3, v as u64);
    field_varint(&mut a, 20, 2);
    a
}

/// `TensorProto` initializer `name` with `dims`, `data_type` and `raw` bytes as stored.
pub fn initializer(name: &str, data_type: u64, dims: &[i64], raw: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    for d in dims {
        field_varint(&mut t, 1, *d as u64);
    }
    field_varint(&mut t, 2, data_type);
    field_bytes(&mut t, 8, name.as_bytes());
    field_bytes(&mut t, 9, raw);
    t
}

/// A whole `ModelProto` (opset 17) around a graph of `nodes`, `initializers`, `inputs` and
/// `outputs` (each already encoded).
pub fn model(
    nodes: &[Vec<u8>],
    initializers: &[Vec<u8>],
    inputs: &[Vec<u8>],
    outputs: &[Vec<u8>],
) -> Vec<u8> {
    let mut g = Vec::new();
    for n in nodes {
        field_bytes(&mut g, 1, n);
    }
    field_bytes(&mut g, 2, b"g");
    for t in initializers {
        field_bytes(&mut g, 5, t);
    }
    for i in inputs {
        field_bytes(&mut g, 11, i);
    }
    for o in outputs {
        field_bytes(&mut g, 12, o);
    }
    let mut opset = Vec::new();
    field_bytes(&mut opset, 1, b"");
    field_varint(&mut opset, 2, 17);
    let mut m = Vec::new();
    field_varint(&mut m, 1, 8);
    field_bytes(&mut m, 8, &opset);
    field_bytes(&mut m, 7, &g);
    m
}

/// The valid baseline: `x [N, features]` → `ReduceMean(axes=[1], keepdims=0)` → `y [N]`.
pub fn mean_model(features: Dim) -> Vec<u8> {
    model(
        &[node("ReduceMean", &["x"], &["y"], &[attr_ints("axes", &[1]), attr_int("keepdims", 0)])],
        &[],
        &[value_info("x", FLOAT, &[Dim::Param("N"), features])],
        &[value_info("y", FLOAT, &[Dim::Param("N")])],
    )
}
