//! Size probe companion: ONNX -> NNEF tar, then reload and compare the outputs on one row.
use tract_onnx::prelude::*;

fn main() -> TractResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let (src, dst, f): (&str, &str, usize) = (&args[1], &args[2], args[3].parse().unwrap());
    let onnx = tract_onnx::onnx()
        .model_for_path(src)?
        .with_input_fact(0, f32::fact([1, f]).into())?
        .into_typed()?
        .into_decluttered()?;
    let nnef = tract_nnef::nnef();
    nnef.write_to_tar(&onnx, std::fs::File::create(dst)?)?;
    let back = nnef.model_for_path(dst)?.into_optimized()?.into_runnable()?;
    let direct = onnx.clone().into_optimized()?.into_runnable()?;
    let x = tract_ndarray::Array2::from_shape_fn((1, f), |(_, j)| j as f32 * 0.37 - 1.0);
    let a = direct.run(tvec!(Tensor::from(x.clone()).into()))?;
    let b = back.run(tvec!(Tensor::from(x).into()))?;
    println!("onnx {:?}\nnnef {:?}\nbytes {}", a[0], b[0], std::fs::metadata(dst)?.len());
    Ok(())
}
