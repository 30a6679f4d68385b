//! A full-size SDXS-512 (DreamShaper) diffusion model with random weights: every
//! tensor stable-diffusion.cpp expects, in its real shape, so the real `sd-cli`
//! loads it and draws (noise) — 441 M parameters, ~883 MB, streamed to disk.

use std::io::{BufWriter, Write as _};
use std::path::Path;

use super::quant::f16_bits;
use super::writer::{align, GgufWriter, TensorSpec};
use crate::random::XorShift;

/// name, type (`f32`/`f16`), ggml dimensions innermost first (padded with 1s); read
/// off stable-diffusion.cpp itself (shared/notes/sdxs-512-tensors.tsv).
const SDXS_512_TENSORS: &str = include_str!("../../fixtures/sdxs-512-tensors.tsv");

fn specs() -> std::io::Result<Vec<TensorSpec>> {
    SDXS_512_TENSORS
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let bad = || {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("bad tensor line: {line}"),
                )
            };
            let mut fields = line.split('\t');
            let (Some(name), Some(ty), Some(dims)) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(bad());
            };
            let mut dims: Vec<u64> = dims
                .split(',')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| bad())?;
            while dims.len() > 1 && dims.last() == Some(&1) {
                dims.pop();
            }
            if !matches!(ty, "f32" | "f16") {
                return Err(bad());
            }
            // The table's type is what the program computes in; it converts on load,
            // so 1-D tensors are stored f32 and the rest f16 (883 MB instead of 1.3 GB).
            let (type_id, bytes_per_value) = if dims.len() == 1 { (0, 4) } else { (1, 2) };
            let len = dims.iter().product::<u64>() * bytes_per_value;
            Ok(TensorSpec {
                name: name.to_owned(),
                dims,
                type_id,
                len,
            })
        })
        .collect()
}

/// Writes the model to `path`. 1-D weights are 1.0 and biases 0.0 (so norms are
/// neutral); everything else is small noise.
pub fn write_sdxs_512(path: &Path, seed: u64) -> std::io::Result<()> {
    let specs = specs()?;
    let mut file = BufWriter::with_capacity(4 << 20, std::fs::File::create(path)?);
    let header = GgufWriter::new().header(&specs);
    file.write_all(&header)?;
    let mut random = XorShift::new(seed);
    for spec in &specs {
        let values = spec.dims.iter().product::<u64>();
        let constant = match (
            spec.dims.len(),
            spec.name.ends_with(".bias"),
            spec.name.ends_with(".weight"),
        ) {
            (1, true, _) => Some(0.0f32),
            (1, _, true) => Some(1.0f32),
            _ => None,
        };
        let mut buffer = Vec::with_capacity(1 << 20);
        for _ in 0..values {
            let value = constant.unwrap_or_else(|| random.symmetric(0.035));
            if spec.type_id == 0 {
                buffer.extend_from_slice(&value.to_le_bytes());
            } else {
                buffer.extend_from_slice(&f16_bits(value).to_le_bytes());
            }
            if buffer.len() >= 1 << 20 {
                file.write_all(&buffer)?;
                buffer.clear();
            }
        }
        file.write_all(&buffer)?;
        let padded = align(spec.len);
        file.write_all(&vec![0u8; usize::try_from(padded - spec.len).unwrap_or(0)])?;
    }
    file.flush()?;
    file.get_ref().sync_all()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_table_has_every_tensor_once() {
        let specs = super::specs().unwrap();
        assert_eq!(specs.len(), 610);
        let names: std::collections::HashSet<_> = specs.iter().map(|s| &s.name).collect();
        assert_eq!(names.len(), 610);
        let parameters: u64 = specs.iter().map(|s| s.dims.iter().product::<u64>()).sum();
        assert!(
            (430_000_000..450_000_000).contains(&parameters),
            "{parameters}"
        );
    }
}

/// The random SDXS-512 model in a temporary folder, shared by the tests of one test
/// binary that run at the same time and deleted when the last of them lets go (a
/// static would never be dropped, leaving 883 MB behind per run).
#[derive(Debug)]
pub struct SharedSdxs {
    dir: tempfile::TempDir,
}

impl SharedSdxs {
    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("sdxs-512-random.gguf")
    }
}

/// The shared model, written (about 6 s) when no test holds it.
///
/// # Panics
/// When it cannot be written (a full disk): the tests cannot run without it.
pub fn shared_sdxs_512() -> std::sync::Arc<SharedSdxs> {
    use std::sync::{Arc, Mutex, PoisonError, Weak};
    static CURRENT: Mutex<Weak<SharedSdxs>> = Mutex::new(Weak::new());
    let mut current = CURRENT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(model) = current.upgrade() {
        return model;
    }
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("temp dir: {error}"));
    let model = Arc::new(SharedSdxs { dir });
    write_sdxs_512(&model.path(), 7).unwrap_or_else(|error| panic!("SDXS model: {error}"));
    *current = Arc::downgrade(&model);
    model
}
