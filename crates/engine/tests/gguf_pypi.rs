//! The reader against an independent writer: llama.cpp's own Python `gguf` package
//! (`pip install gguf`), through tests/gguf/pypi_gguf.py.

#![allow(clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use switchyard_engine::gguf::{file_type_name, parse, GgmlType, Value};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/gguf/pypi_gguf.py")
}

fn python(args: &[&str]) -> String {
    // A venv with `gguf` (scripts/install.sh), or any python3 that has it.
    let python = std::env::var_os("SWITCHYARD_PYTHON").unwrap_or_else(|| "python3".into());
    let output = Command::new(python)
        .arg(script())
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the PyPI gguf package is needed (pip install gguf): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn type_tables_match_llama_cpps_python_package() {
    let tables: serde_json::Value = serde_json::from_str(&python(&["tables"])).expect("json");
    let theirs = tables["types"].as_object().expect("types");
    for ty in GgmlType::all() {
        let row = theirs
            .get(ty.name)
            .unwrap_or_else(|| panic!("{} unknown to gguf-py", ty.name));
        assert_eq!(
            (row[0].as_u64(), row[1].as_u64(), row[2].as_u64()),
            (
                Some(u64::from(ty.id)),
                Some(u64::from(ty.block_elements)),
                Some(u64::from(ty.block_bytes))
            ),
            "{}",
            ty.name
        );
    }
    for (name, row) in theirs {
        let id = u32::try_from(row[0].as_u64().expect("id")).expect("u32");
        assert!(
            GgmlType::from_id(id).is_some(),
            "ggml type {name} ({id}) is missing here"
        );
    }
    for (name, id) in tables["file_types"].as_object().expect("file types") {
        let id = u32::try_from(id.as_u64().expect("id")).expect("u32");
        assert_eq!(file_type_name(id), Some(name.as_str()), "file type {id}");
    }
}

#[test]
fn reads_a_file_written_by_gguf_py() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pypi.gguf");
    python(&["write", path.to_str().expect("utf-8 path")]);
    let bytes = std::fs::read(&path).expect("written");
    let file = parse(&bytes, Some(bytes.len() as u64)).expect("valid");

    let expect = |key: &str, value: Value| assert_eq!(file.get(key), Some(&value), "{key}");
    expect("test.u8", Value::U8(200));
    expect("test.i8", Value::I8(-100));
    expect("test.u16", Value::U16(60000));
    expect("test.i16", Value::I16(-30000));
    expect("test.u32", Value::U32(4_000_000_000));
    expect("test.i32", Value::I32(-2_000_000_000));
    expect("test.f32", Value::F32(0.25));
    expect("test.u64", Value::U64(1 << 63));
    expect("test.i64", Value::I64(-(1 << 62)));
    expect("test.f64", Value::F64(-1.5));
    expect("test.bool", Value::Bool(true));
    expect("test.string", Value::String("grüße, 世界".into()));
    expect(
        "test.strings",
        Value::Array(vec![
            Value::String("a".into()),
            Value::String("bc".into()),
            Value::String(String::new()),
        ]),
    );
    assert_eq!(
        file.get("test.ints").and_then(Value::array_len),
        Some(3),
        "numbers are packed"
    );
    let nested = file
        .get("test.nested")
        .and_then(Value::as_array)
        .expect("nested array");
    assert_eq!(nested.len(), 2);
    assert_eq!(nested[0].array_len(), Some(2));

    let facts = file.facts();
    assert_eq!(facts.architecture.as_deref(), Some("llama"));
    assert_eq!(facts.block_count, Some(3));
    assert_eq!(facts.context_length, Some(4096));
    let tensor = |name: &str| file.tensors.iter().find(|t| t.name == name).expect(name);
    assert_eq!(
        tensor("f32").dims,
        [32, 2],
        "numpy's (rows, cols) is GGUF's [cols, rows]"
    );
    assert_eq!(tensor("f32").bytes, 256);
    assert_eq!(tensor("f16").ggml_type.name, "F16");
    assert_eq!(
        (tensor("q8").ggml_type.name, tensor("q8").bytes),
        ("Q8_0", 4 * 34)
    );
    assert_eq!(facts.parameter_count, 64 + 32 + 128);
}
