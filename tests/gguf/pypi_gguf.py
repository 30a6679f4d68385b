"""An independent GGUF writer and type table: the PyPI `gguf` package (llama.cpp's
own Python library). Used by crates/engine/tests/gguf_pypi.rs.

    pypi_gguf.py tables        print ggml type sizes and file type ids as JSON
    pypi_gguf.py write PATH    write a file with every value type and a few tensors
"""
import json
import sys

import gguf
import numpy as np


def tables():
    types = {t.name: [t.value, *gguf.GGML_QUANT_SIZES[t]] for t in gguf.GGMLQuantizationType}
    file_types = {t.name.removeprefix("MOSTLY_").removeprefix("ALL_"): t.value
                  for t in gguf.LlamaFileType if t.name != "GUESSED"}
    print(json.dumps({"types": types, "file_types": file_types}))


def write(path):
    writer = gguf.GGUFWriter(path, arch="llama")
    writer.add_block_count(3)
    writer.add_context_length(4096)
    writer.add_uint8("test.u8", 200)
    writer.add_int8("test.i8", -100)
    writer.add_uint16("test.u16", 60000)
    writer.add_int16("test.i16", -30000)
    writer.add_uint32("test.u32", 4_000_000_000)
    writer.add_int32("test.i32", -2_000_000_000)
    writer.add_float32("test.f32", 0.25)
    writer.add_uint64("test.u64", 2**63)
    writer.add_int64("test.i64", -(2**62))
    writer.add_float64("test.f64", -1.5)
    writer.add_bool("test.bool", True)
    writer.add_string("test.string", "grüße, 世界")
    writer.add_array("test.strings", ["a", "bc", ""])
    writer.add_array("test.ints", [1, 2, 3])
    writer.add_array("test.nested", [[1, 2], [3]])
    writer.add_tensor("f32", np.arange(64, dtype=np.float32).reshape(2, 32))
    writer.add_tensor("f16", np.ones((4, 8), dtype=np.float16))
    q = gguf.quants.quantize(np.linspace(-1, 1, 128, dtype=np.float32).reshape(2, 64),
                             gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("q8", q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    if sys.argv[1] == "tables":
        tables()
    else:
        write(sys.argv[2])
