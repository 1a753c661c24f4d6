//! A `TensorProto`'s values as `f32`, whichever numeric type and field the exporter stored them
//! in (`raw_data` little-endian bytes, or the typed repeated fields).

use thiserror::Error;

use super::pb::{self, tensor_proto::DataType};

/// A tensor's shape and its values converted to `f32`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Floats {
    /// The dimensions (`[]` for a scalar).
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub values: Vec<f32>,
}

/// Why a tensor's values cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TensorError {
    /// A dimension is negative or the element count overflows.
    #[error("bad shape {0:?}")]
    Shape(Vec<i64>),
    /// Not a numeric type this reader converts (strings, bool, float16, complex…).
    #[error("unsupported element type {0}")]
    Type(i32),
    /// The data is stored outside the model file.
    #[error("external data is not supported")]
    External,
    /// `raw_data` is not a whole number of elements.
    #[error("raw data of {bytes} bytes is not a whole number of elements")]
    Ragged {
        /// Length of `raw_data`.
        bytes: usize,
    },
    /// The stored values do not fill the shape.
    #[error("{got} values stored for {want} elements")]
    Count {
        /// Values found.
        got: usize,
        /// Elements the shape has.
        want: usize,
    },
}

/// Reads `proto`'s values as `f32`.
pub fn tensor_floats(proto: &pb::TensorProto) -> Result<Floats, TensorError> {
    if proto.data_location == Some(pb::tensor_proto::DataLocation::External as i32) {
        return Err(TensorError::External);
    }
    let shape: Vec<usize> = proto
        .dims
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<_>>()
        .ok_or_else(|| TensorError::Shape(proto.dims.clone()))?;
    let want = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| TensorError::Shape(proto.dims.clone()))?;
    let data_type =
        DataType::try_from(proto.data_type).map_err(|_| TensorError::Type(proto.data_type))?;
    let values = if proto.raw_data.is_empty() {
        typed_field(proto, data_type)?
    } else {
        raw_values(&proto.raw_data, data_type)?
    };
    if values.len() != want {
        return Err(TensorError::Count { got: values.len(), want });
    }
    Ok(Floats { shape, values })
}

/// Values kept in the typed repeated field `data_type` uses. ONNX keeps 8- and 16-bit integers
/// one per `int32_data` entry.
fn typed_field(proto: &pb::TensorProto, data_type: DataType) -> Result<Vec<f32>, TensorError> {
    Ok(match data_type {
        DataType::Float => proto.float_data.clone(),
        DataType::Double => proto.double_data.iter().map(|&v| v as f32).collect(),
        DataType::Int64 => proto.int64_data.iter().map(|&v| v as f32).collect(),
        DataType::Int32 | DataType::Int16 | DataType::Uint16 | DataType::Int8 | DataType::Uint8 => {
            proto.int32_data.iter().map(|&v| v as f32).collect()
        }
        _ => return Err(TensorError::Type(data_type as i32)),
    })
}

/// Values in `raw_data`: little-endian, packed, one element after another.
fn raw_values(raw: &[u8], data_type: DataType) -> Result<Vec<f32>, TensorError> {
    let values = match data_type {
        DataType::Float => from_le::<4>(raw, f32::from_le_bytes),
        DataType::Double => from_le::<8>(raw, |b| f64::from_le_bytes(b) as f32),
        DataType::Int64 => from_le::<8>(raw, |b| i64::from_le_bytes(b) as f32),
        DataType::Int32 => from_le::<4>(raw, |b| i32::from_le_bytes(b) as f32),
        DataType::Int16 => from_le::<2>(raw, |b| i16::from_le_bytes(b) as f32),
        DataType::Uint16 => from_le::<2>(raw, |b| u16::from_le_bytes(b) as f32),
        DataType::Int8 => from_le::<1>(raw, |b| i8::from_le_bytes(b) as f32),
        DataType::Uint8 => from_le::<1>(raw, |b| u8::from_le_bytes(b) as f32),
        _ => return Err(TensorError::Type(data_type as i32)),
    };
    values.ok_or(TensorError::Ragged { bytes: raw.len() })
}

/// Decodes little-endian `N`-byte values; `None` when `raw` is not a whole number of them.
fn from_le<const N: usize>(raw: &[u8], decode: impl Fn([u8; N]) -> f32) -> Option<Vec<f32>> {
    if !raw.len().is_multiple_of(N) {
        return None;
    }
    let whole = |c: &[u8]| <[u8; N]>::try_from(c).ok();
    raw.chunks_exact(N).map(|c| whole(c).map(&decode)).collect()
}

#[cfg(test)]
#[allow(clippy::expect_used, reason = "a failed expectation is the test failure")]
mod tests {
    use super::*;

    fn tensor(data_type: DataType, dims: &[i64]) -> pb::TensorProto {
        pb::TensorProto { data_type: data_type as i32, dims: dims.to_vec(), ..Default::default() }
    }

    #[test]
    fn floats_from_typed_fields_and_raw_bytes() {
        let mut t = tensor(DataType::Float, &[2, 2]);
        t.float_data = vec![1.0, -2.0, 3.5, 0.25];
        assert_eq!(tensor_floats(&t).expect("reads").values, t.float_data);
        assert_eq!(tensor_floats(&t).expect("reads").shape, vec![2, 2]);
        let raw: Vec<u8> = t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut r = tensor(DataType::Float, &[4]);
        r.raw_data = raw;
        assert_eq!(tensor_floats(&r).expect("reads").values, vec![1.0, -2.0, 3.5, 0.25]);
    }

    #[test]
    fn int8_and_uint8_from_raw_bytes_and_int32_data() {
        let mut t = tensor(DataType::Int8, &[3]);
        t.raw_data = vec![0xff, 0x7f, 0x80];
        assert_eq!(tensor_floats(&t).expect("reads").values, vec![-1.0, 127.0, -128.0]);
        let mut u = tensor(DataType::Uint8, &[3]);
        u.raw_data = vec![0xff, 0x7f, 0x80];
        assert_eq!(tensor_floats(&u).expect("reads").values, vec![255.0, 127.0, 128.0]);
        let mut i = tensor(DataType::Int8, &[2]);
        i.int32_data = vec![-5, 7];
        assert_eq!(tensor_floats(&i).expect("reads").values, vec![-5.0, 7.0]);
    }

    #[test]
    fn int64_and_double() {
        let mut t = tensor(DataType::Int64, &[2]);
        t.raw_data = [-3i64, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(tensor_floats(&t).expect("reads").values, vec![-3.0, 9.0]);
        let mut d = tensor(DataType::Double, &[]);
        d.double_data = vec![0.5];
        let scalar = tensor_floats(&d).expect("reads");
        assert_eq!((scalar.shape.len(), scalar.values), (0, vec![0.5]));
    }

    #[test]
    fn refuses_what_does_not_fill_its_shape() {
        let mut short = tensor(DataType::Float, &[3]);
        short.float_data = vec![1.0, 2.0];
        assert_eq!(tensor_floats(&short), Err(TensorError::Count { got: 2, want: 3 }));
        let mut ragged = tensor(DataType::Float, &[1]);
        ragged.raw_data = vec![0, 0, 128, 63, 1];
        assert_eq!(tensor_floats(&ragged), Err(TensorError::Ragged { bytes: 5 }));
        let negative = tensor(DataType::Float, &[-1]);
        assert_eq!(tensor_floats(&negative), Err(TensorError::Shape(vec![-1])));
        let text = tensor(DataType::String, &[1]);
        assert_eq!(tensor_floats(&text), Err(TensorError::Type(DataType::String as i32)));
    }
}
