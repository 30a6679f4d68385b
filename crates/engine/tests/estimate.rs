//! The memory estimator: one header per architecture family whose metadata keys
//! differ (llama, qwen2, qwen3, gemma3, a mixture of experts, DeepSeek's MLA),
//! GPU-layer placement, fitting, the start check, and calibration from what
//! llama-server printed.

#![allow(clippy::expect_used)]

use switchyard_engine::estimate::{
    apply_measured, check_fits, estimate, estimate_on, first_estimate, fit, max_gpu_layers,
    parse_llama_log, AutoFields, Backend, Budget, CacheType, Calibration, CpuKernels,
    EstimateSource, FlashAttention, LlamaConfig, ModelShape,
};
use switchyard_engine::gguf::{self, GgmlType, Value};
use switchyard_engine::ErrorCode;
use switchyard_testkit::gguf::{GgufWriter, TensorSpec};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;
const F16: u32 = 1;
const Q4_K: u32 = 12;
const Q8_0: u32 = 8;
const F32: u32 = 0;

/// A header-only model: metadata plus tensor infos of the given types.
struct Model {
    writer: GgufWriter,
    tensors: Vec<TensorSpec>,
}

impl Model {
    fn new(arch: &str) -> Self {
        let mut writer = GgufWriter::new();
        writer.string("general.architecture", arch);
        Self {
            writer,
            tensors: Vec::new(),
        }
    }

    fn key(mut self, key: &str, value: u32) -> Self {
        self.writer.u32(key, value);
        self
    }

    fn value(mut self, key: &str, value: Value) -> Self {
        self.writer.kv(key, value);
        self
    }

    fn tensor(mut self, name: &str, dims: &[u64], type_id: u32) -> Self {
        let ty = GgmlType::from_id(type_id).expect("known type");
        let len = ty.bytes_for(dims.iter().product()).expect("whole blocks");
        self.tensors.push(TensorSpec {
            name: name.to_owned(),
            dims: dims.to_vec(),
            type_id,
            len,
        });
        self
    }

    /// Attention, norms and a dense feed-forward (if any) for every layer, in
    /// Q8_0 (32-value blocks fit every width used here).
    fn layers(mut self, layers: u32, embd: u64, q_width: u64, kv_width: u64, ff: u64) -> Self {
        for il in 0..layers {
            let name = |part: &str| format!("blk.{il}.{part}.weight");
            self = self
                .tensor(&name("attn_norm"), &[embd], F32)
                .tensor(&name("attn_q"), &[embd, q_width], Q8_0)
                .tensor(&name("attn_k"), &[embd, kv_width], Q8_0)
                .tensor(&name("attn_v"), &[embd, kv_width], Q8_0)
                .tensor(&name("attn_output"), &[q_width, embd], Q8_0)
                .tensor(&name("ffn_norm"), &[embd], F32);
            if ff > 0 {
                self = self
                    .tensor(&name("ffn_gate"), &[embd, ff], Q8_0)
                    .tensor(&name("ffn_up"), &[embd, ff], Q8_0)
                    .tensor(&name("ffn_down"), &[ff, embd], Q8_0);
            }
        }
        self
    }

    fn file(&self) -> gguf::GgufFile {
        let bytes = self.writer.header(&self.tensors);
        gguf::parse(&bytes, None).expect("a valid header")
    }

    fn shape(&self) -> ModelShape {
        ModelShape::from_gguf(&self.file()).expect("a language model")
    }
}

fn config(context: u32) -> LlamaConfig {
    LlamaConfig {
        context,
        ..LlamaConfig::default()
    }
}

/// Llama 3 8B's shape: 32 layers, width 4096, 32 heads, 8 KV heads.
fn llama3_8b() -> Model {
    Model::new("llama")
        .key("llama.block_count", 32)
        .key("llama.embedding_length", 4096)
        .key("llama.feed_forward_length", 14336)
        .key("llama.attention.head_count", 32)
        .key("llama.attention.head_count_kv", 8)
        .key("llama.context_length", 8192)
        .key("llama.vocab_size", 128_256)
        .tensor("token_embd.weight", &[4096, 128_256], Q4_K)
        .layers(32, 4096, 4096, 1024, 14336)
        .tensor("output_norm.weight", &[4096], F32)
        .tensor("output.weight", &[4096, 128_256], Q4_K)
}

#[test]
fn llama_kv_cache_is_a_gibibyte_at_8k_and_shrinks_with_a_quantized_cache() {
    let shape = llama3_8b().shape();
    let f16 = estimate(&shape, &config(8192), Backend::Cpu);
    // 8192 cells × 32 layers × (K + V: 8 heads × 128) × 2 bytes.
    assert_eq!(f16.ram.kv_cache, GIB);
    let q8 = estimate(
        &shape,
        &LlamaConfig {
            cache_type_k: CacheType::Q8_0,
            cache_type_v: CacheType::Q8_0,
            ..config(8192)
        },
        Backend::Cpu,
    );
    // q8_0 stores 32 values in 34 bytes.
    assert_eq!(q8.ram.kv_cache, GIB / 64 * 34);
    // Contexts are padded to 256 cells, as llama.cpp does.
    let padded = estimate(&shape, &config(1000), Backend::Cpu);
    assert_eq!(padded.config.context, 1024);
    assert_eq!(padded.ram.kv_cache, GIB / 8);
}

#[test]
fn weights_follow_the_gpu_layers_with_the_output_layer_first_and_embeddings_in_ram() {
    let model = llama3_8b();
    let shape = model.shape();
    let layer = shape.layer_bytes[0];
    let config_with = |gpu_layers| LlamaConfig {
        gpu_layers,
        ..config(4096)
    };
    let none = estimate(&shape, &config_with(0), Backend::Cuda);
    assert_eq!(none.vram.weights + none.vram.output_layer, 0);
    assert_eq!(none.vram.compute, 0, "no GPU graph without GPU layers");

    let output_only = estimate(&shape, &config_with(1), Backend::Cuda);
    assert_eq!(output_only.vram.output_layer, shape.output_bytes);
    assert_eq!(output_only.vram.weights, 0);

    let three = estimate(&shape, &config_with(3), Backend::Cuda);
    assert_eq!(three.vram.weights, 2 * layer);
    assert_eq!(three.ram.weights, shape.input_bytes + 30 * layer);
    // KV follows its layer.
    assert_eq!(three.vram.kv_cache * 30, three.ram.kv_cache * 2);

    let all = estimate(&shape, &config_with(99), Backend::Cuda);
    assert_eq!(all.gpu_layers, 33);
    assert_eq!(all.ram.weights, shape.input_bytes);
    assert!(all.vram.overhead > 0, "a CUDA context costs VRAM");
    // The CPU backend has no GPU to put anything on.
    let cpu = estimate(&shape, &config_with(99), Backend::Cpu);
    assert_eq!(cpu.vram_bytes(), 0);
}

#[test]
fn qwen2_reads_its_own_keys() {
    // Qwen2.5 7B: 28 layers, width 3584, 28 heads, 4 KV heads of 128.
    let shape = Model::new("qwen2")
        .key("qwen2.block_count", 28)
        .key("qwen2.embedding_length", 3584)
        .key("qwen2.feed_forward_length", 18944)
        .key("qwen2.attention.head_count", 28)
        .key("qwen2.attention.head_count_kv", 4)
        .key("qwen2.vocab_size", 152_064)
        .tensor("token_embd.weight", &[3584, 152_064], Q4_K)
        .layers(28, 3584, 3584, 512, 18944)
        .tensor("output.weight", &[3584, 152_064], Q4_K)
        .shape();
    assert_eq!((shape.layers, shape.key_length), (28, 128));
    let estimated = estimate(&shape, &config(4096), Backend::Cpu);
    // 4096 × 28 × 2 × 512 × 2 bytes.
    assert_eq!(estimated.ram.kv_cache, 224 * MIB);
}

#[test]
fn qwen3_head_width_comes_from_key_length_not_width_over_heads() {
    // Qwen3 0.6B: width 1024 with 16 heads, yet 128-wide heads.
    let shape = Model::new("qwen3")
        .key("qwen3.block_count", 28)
        .key("qwen3.embedding_length", 1024)
        .key("qwen3.feed_forward_length", 3072)
        .key("qwen3.attention.head_count", 16)
        .key("qwen3.attention.head_count_kv", 8)
        .key("qwen3.attention.key_length", 128)
        .key("qwen3.attention.value_length", 128)
        .key("qwen3.vocab_size", 151_936)
        .tensor("token_embd.weight", &[1024, 151_936], Q4_K)
        .layers(28, 1024, 2048, 1024, 3072)
        .shape();
    assert_eq!(shape.kv_widths(0), (1024, 1024));
    assert!(
        shape.output_tied,
        "no output.weight: the embeddings are reused"
    );
    let estimated = estimate(&shape, &config(4096), Backend::Cpu);
    assert_eq!(estimated.ram.kv_cache, 448 * MIB);
}

fn gemma3_4b() -> Model {
    Model::new("gemma3")
        .key("gemma3.block_count", 34)
        .key("gemma3.embedding_length", 2560)
        .key("gemma3.feed_forward_length", 10240)
        .key("gemma3.attention.head_count", 8)
        .key("gemma3.attention.head_count_kv", 4)
        .key("gemma3.attention.key_length", 256)
        .key("gemma3.attention.value_length", 256)
        .key("gemma3.attention.sliding_window", 1024)
        .key("gemma3.vocab_size", 262_144)
        .tensor("token_embd.weight", &[2560, 262_144], Q4_K)
        .layers(34, 2560, 2048, 1024, 10240)
}

#[test]
fn gemma3_sliding_window_layers_keep_only_the_window() {
    let shape = gemma3_4b().shape();
    // Every sixth layer attends globally (llama.cpp's pattern for gemma3).
    let global: Vec<usize> = (0..34).filter(|&il| !shape.sliding_layers[il]).collect();
    assert_eq!(global, vec![5, 11, 17, 23, 29]);
    let per_cell_per_layer = 2 * 4 * 256 * 2;
    let estimated = estimate(&shape, &config(32_768), Backend::Cpu);
    // Sliding layers: window × 4 slots + one micro-batch, padded to 256.
    let window_cells = 1024 * 4 + 512;
    assert_eq!(
        estimated.ram.kv_cache,
        (5 * 32_768 + 29 * window_cells) * per_cell_per_layer
    );
    // `--swa-full` gives every layer the whole context.
    let full = estimate(
        &shape,
        &LlamaConfig {
            swa_full: true,
            ..config(32_768)
        },
        Backend::Cpu,
    );
    assert_eq!(full.ram.kv_cache, 34 * 32_768 * per_cell_per_layer);
}

#[test]
fn sliding_window_checkpoints_and_the_prompt_cache_are_counted_at_their_bounds() {
    let shape = gemma3_4b().shape();
    let with = |context_checkpoints, prompt_cache_mib| {
        estimate_on(
            &shape,
            &LlamaConfig {
                context_checkpoints,
                prompt_cache_mib,
                ..config(32_768)
            },
            Backend::Cpu,
            CpuKernels::None,
        )
    };
    let none = with(0, 0);
    // A checkpoint copies one conversation's window: 1024 cells of the 29 sliding
    // layers, K and V of 4 heads × 256 in f16.
    let checkpoint = 1024 * 29 * (2 * 4 * 256 * 2);
    assert_eq!(with(3, 0).ram.overhead - none.ram.overhead, 3 * checkpoint);
    assert_eq!(with(0, 512).ram.overhead - none.ram.overhead, 512 * MIB);
    // A model without a sliding window has nothing to checkpoint.
    let llama = llama3_8b().shape();
    let plain = |context_checkpoints| LlamaConfig {
        context_checkpoints,
        ..config(8192)
    };
    assert_eq!(
        estimate(&llama, &plain(0), Backend::Cpu).ram.overhead,
        estimate(&llama, &plain(32), Backend::Cpu).ram.overhead
    );
}

#[test]
fn a_sliding_window_model_has_a_mask_per_cache() {
    let shape = gemma3_4b().shape();
    let compute = |context| {
        estimate_on(&shape, &config(context), Backend::Cpu, CpuKernels::None)
            .ram
            .compute
    };
    // The full layers' mask grows with the context (f16 with flash attention);
    // the sliding layers' stays at the window's cells.
    assert_eq!(compute(32_768) - compute(16_384), 512 * 16_384 * 2);
}

#[test]
fn repacked_weights_count_for_layers_on_the_cpu_when_the_kernels_repack_their_type() {
    // Q8_0 layer matrices (repacked on ARM only) and a Q4_K output (on both).
    let shape = llama3_8b().shape();
    let on = |kernels, gpu_layers, backend| {
        estimate_on(
            &shape,
            &LlamaConfig {
                gpu_layers,
                ..config(4096)
            },
            backend,
            kernels,
        )
    };
    let plain = on(CpuKernels::None, 0, Backend::Cpu);
    let avx2 = on(CpuKernels::X86Avx2, 0, Backend::Cpu);
    let output_matrix = shape.output_bytes - 4096 * 4;
    assert_eq!(
        avx2.ram.output_layer - plain.ram.output_layer,
        output_matrix
    );
    // The output matrix is the file's last tensor: repacked, it leaves the mapping
    // (which spans from the first to the last tensor the CPU maps).
    assert_eq!(plain.ram.weights - avx2.ram.weights, output_matrix);
    assert_eq!(avx2.ram_bytes(), plain.ram_bytes());
    let arm = on(CpuKernels::ArmDotprod, 0, Backend::Cpu);
    let norms = 32 * 2 * 4096 * 4;
    assert_eq!(
        arm.ram.weights + output_matrix - plain.ram.weights,
        shape.layer_bytes.iter().sum::<u64>() - norms,
        "every layer matrix, not the norms (f32 vectors)"
    );
    // Layers on the GPU are not repacked; the embeddings (a row lookup) never are.
    let on_gpu = on(CpuKernels::ArmDotprod, 99, Backend::Cuda);
    assert_eq!(on_gpu.ram.weights, shape.input_bytes);
    assert_eq!(on_gpu.ram.output_layer, 0);
}

#[test]
fn real_logs_of_each_architecture_add_every_buffer() {
    let fixture = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/llama-server-11434-{name}-q4_k_m.txt",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("a captured log")
    };
    // (weights = mapped + repacked, KV caches, compute) as the lines print them.
    for (name, weights, kv, compute) in [
        ("llama", mib(93.20) + mib(41.62), 32 * MIB, mib(30.52)),
        ("qwen3", mib(113.22) + mib(58.50), 128 * MIB, mib(32.02)),
        ("gemma3", mib(155.93) + mib(83.53), 33 * MIB, mib(40.53)),
        ("qwen3moe", mib(132.65) + mib(80.16), 24 * MIB, mib(26.02)),
    ] {
        let measured = parse_llama_log(&fixture(name));
        assert_eq!(measured.ram.weights, weights, "{name}");
        assert_eq!(measured.ram.kv_cache, kv, "{name}");
        assert_eq!(measured.ram.compute, compute, "{name}");
        assert_eq!(measured.vram.total(), 0, "{name}");
    }
}

#[test]
fn tied_embeddings_cost_a_second_copy_on_the_gpu() {
    let shape = gemma3_4b().shape();
    let on_gpu = estimate(
        &shape,
        &LlamaConfig {
            gpu_layers: 99,
            ..config(4096)
        },
        Backend::Cuda,
    );
    assert_eq!(on_gpu.vram.output_layer, shape.input_bytes);
    assert_eq!(on_gpu.ram.weights, shape.input_bytes);
}

fn qwen3_moe() -> Model {
    // Qwen3 30B-A3B: 48 layers, 128 experts of width 768, 8 used.
    let mut model = Model::new("qwen3moe")
        .key("qwen3moe.block_count", 48)
        .key("qwen3moe.embedding_length", 2048)
        .key("qwen3moe.attention.head_count", 32)
        .key("qwen3moe.attention.head_count_kv", 4)
        .key("qwen3moe.attention.key_length", 128)
        .key("qwen3moe.attention.value_length", 128)
        .key("qwen3moe.expert_count", 128)
        .key("qwen3moe.expert_used_count", 8)
        .key("qwen3moe.expert_feed_forward_length", 768)
        .key("qwen3moe.vocab_size", 151_936)
        .tensor("token_embd.weight", &[2048, 151_936], Q4_K)
        .layers(48, 2048, 4096, 512, 0)
        .tensor("output.weight", &[2048, 151_936], Q4_K);
    for il in 0..48 {
        let name = |part: &str| format!("blk.{il}.{part}.weight");
        model = model
            .tensor(&name("ffn_gate_inp"), &[2048, 128], F32)
            .tensor(&name("ffn_gate_exps"), &[2048, 768, 128], Q4_K)
            .tensor(&name("ffn_up_exps"), &[2048, 768, 128], Q4_K)
            .tensor(&name("ffn_down_exps"), &[768, 2048, 128], Q4_K);
    }
    model
}

#[test]
fn moe_experts_can_stay_in_ram_and_fitting_uses_that_before_dropping_layers() {
    let shape = qwen3_moe().shape();
    assert!(shape.is_moe());
    let experts: u64 = shape.expert_bytes.iter().sum();
    assert!(
        experts * 10 > shape.weights_bytes() * 9,
        "experts are most of it"
    );

    let all_on_gpu = LlamaConfig {
        gpu_layers: 99,
        ..config(4096)
    };
    let full = estimate(&shape, &all_on_gpu, Backend::Cuda);
    let experts_in_ram = estimate(
        &shape,
        &LlamaConfig {
            cpu_moe_layers: 48,
            ..all_on_gpu.clone()
        },
        Backend::Cuda,
    );
    assert_eq!(full.vram.weights - experts_in_ram.vram.weights, experts);
    assert_eq!(experts_in_ram.ram.weights - full.ram.weights, experts);

    // Half the experts' room: fitting keeps every layer on the GPU and moves the
    // experts of the first layers to RAM.
    let budget = Budget {
        ram_bytes: 64 * GIB,
        vram_bytes: full.vram_bytes() - experts / 2,
    };
    let plan = fit(
        &shape,
        &config(4096),
        Backend::Cuda,
        budget,
        AutoFields {
            gpu_layers: true,
            context: false,
        },
        2048,
    )
    .expect("fits");
    assert_eq!(plan.estimate.gpu_layers, 49);
    let moved = plan.estimate.config.cpu_moe_layers;
    assert!((20..=30).contains(&moved), "{moved} layers' experts in RAM");
    assert!(plan.estimate.vram_bytes() <= budget.vram_bytes);
    assert!(plan.notes[0].contains("experts"), "{:?}", plan.notes);
}

#[test]
fn deepseek_mla_caches_the_latent_once_per_layer() {
    let shape = Model::new("deepseek2")
        .key("deepseek2.block_count", 27)
        .key("deepseek2.embedding_length", 2048)
        .key("deepseek2.attention.head_count", 16)
        .key("deepseek2.attention.head_count_kv", 16)
        .key("deepseek2.attention.kv_lora_rank", 512)
        .key("deepseek2.rope.dimension_count", 64)
        .key("deepseek2.vocab_size", 102_400)
        .tensor("token_embd.weight", &[2048, 102_400], Q4_K)
        .layers(27, 2048, 3072, 576, 10944)
        .shape();
    assert_eq!(shape.kv_widths(0), (576, 512));
    let estimated = estimate(&shape, &config(4096), Backend::Cpu);
    assert_eq!(estimated.ram.kv_cache, 4096 * 27 * (576 + 512) * 2);
}

#[test]
fn per_layer_head_counts_are_read_as_arrays() {
    let shape = Model::new("llama")
        .key("llama.block_count", 2)
        .key("llama.embedding_length", 512)
        .key("llama.attention.head_count", 8)
        .value(
            "llama.attention.head_count_kv",
            Value::Array(vec![Value::U32(2), Value::U32(0)]),
        )
        .layers(2, 512, 512, 128, 1024)
        .shape();
    assert_eq!(shape.kv_widths(0), (128, 128));
    assert_eq!(shape.kv_widths(1), (0, 0), "a layer without attention");
}

/// The shape the test kit generates (4 layers, width 512, 8 heads, 2 KV heads,
/// feed-forward 1408) and what llama-server 11434 printed for it on the CPU.
fn kit_model(vocab: u32) -> ModelShape {
    Model::new("llama")
        .key("llama.block_count", 4)
        .key("llama.embedding_length", 512)
        .key("llama.feed_forward_length", 1408)
        .key("llama.attention.head_count", 8)
        .key("llama.attention.head_count_kv", 2)
        .key("llama.vocab_size", vocab)
        .tensor("token_embd.weight", &[512, u64::from(vocab)], F16)
        .layers(4, 512, 512, 128, 1408)
        .tensor("output.weight", &[512, u64::from(vocab)], F16)
        .shape()
}

#[test]
fn compute_buffers_match_what_llama_server_reported() {
    let shape = kit_model(512);
    let compute_mib = |config: LlamaConfig| {
        estimate(&shape, &config, Backend::Cpu).ram.compute as f64 / MIB as f64
    };
    // (configuration, `sched_reserve: CPU compute buffer size` in MiB)
    let reported = [
        (config(512), 13.77),
        (config(4096), 17.27),
        (config(16384), 29.27),
        (config(300), 8.07),
        (
            LlamaConfig {
                ubatch: 128,
                ..config(512)
            },
            3.44,
        ),
        (
            LlamaConfig {
                flash_attention: FlashAttention::Off,
                ..config(4096)
            },
            78.51,
        ),
        (
            LlamaConfig {
                parallel: 2,
                kv_unified: false,
                ubatch: 256,
                ..config(4096)
            },
            7.63,
        ),
    ];
    for (config, mib) in reported {
        let estimated = compute_mib(config.clone());
        assert!(
            (estimated - mib).abs() < 0.1,
            "{config:?}: estimated {estimated:.2} MiB, llama-server {mib} MiB"
        );
    }
}

#[test]
fn max_gpu_layers_is_the_last_count_that_fits() {
    let shape = llama3_8b().shape();
    let config = config(8192);
    let vram_at = |layers| {
        estimate(
            &shape,
            &LlamaConfig {
                gpu_layers: layers,
                ..config.clone()
            },
            Backend::Cuda,
        )
        .vram_bytes()
    };
    let budget = (vram_at(20) + vram_at(21)) / 2;
    assert_eq!(max_gpu_layers(&shape, &config, Backend::Cuda, budget), 20);
    assert_eq!(max_gpu_layers(&shape, &config, Backend::Cuda, u64::MAX), 33);
    assert_eq!(max_gpu_layers(&shape, &config, Backend::Cuda, 0), 0);
}

#[test]
fn fitting_shrinks_the_context_only_when_allowed_and_the_check_names_the_resource() {
    let shape = llama3_8b().shape();
    let wanted = config(32_768);
    let at_32k = estimate(&shape, &wanted, Backend::Cpu).ram_bytes();
    let budget = Budget {
        ram_bytes: at_32k - 2 * GIB,
        vram_bytes: 0,
    };
    let shrunk = fit(
        &shape,
        &wanted,
        Backend::Cpu,
        budget,
        AutoFields {
            gpu_layers: true,
            context: true,
        },
        2048,
    )
    .expect("a smaller context fits");
    assert_eq!(shrunk.estimate.config.context, 16_384);
    assert!(shrunk.notes.iter().any(|n| n.contains("Context reduced")));

    let refused = fit(
        &shape,
        &wanted,
        Backend::Cpu,
        budget,
        AutoFields {
            gpu_layers: true,
            context: false,
        },
        2048,
    )
    .expect_err("the context is the person's choice");
    assert_eq!(refused.code(), ErrorCode::InsufficientResources);
    assert!(refused.to_string().contains("RAM"), "{refused}");

    let on_gpu = estimate(
        &shape,
        &LlamaConfig {
            gpu_layers: 99,
            ..config(8192)
        },
        Backend::Cuda,
    );
    let error = check_fits(
        &shape,
        &on_gpu,
        Budget {
            ram_bytes: 64 * GIB,
            vram_bytes: 4 * GIB,
        },
    )
    .expect_err("8B does not fit 4 GiB");
    assert!(error.to_string().contains("VRAM"), "{error}");
    assert!(!error.suggestion().is_empty());
}

const CPU_LOG: &str = "\
0.00.055.998 I load_tensors:   CPU_Mapped model buffer size =   105.53 MiB
0.00.056.435 I llama_context:        CPU  output buffer size =     0.49 MiB
0.00.056.474 I llama_kv_cache:        CPU KV buffer size =    16.00 MiB
0.00.062.842 I llama_kv_cache: size =   16.00 MiB (  4096 cells,   8 layers,  4/1 seqs), K (f16):    8.00 MiB, V (f16):    8.00 MiB
0.00.063.792 I sched_reserve:        CPU compute buffer size =    17.27 MiB
";

/// Measured on an H100: wide-q8 at 4096 tokens, 2 of 5 layers offloaded.
const CUDA_LOG: &str = "\
0.00.280.875 I load_tensors:   CPU_Mapped model buffer size =   167.12 MiB
0.00.280.876 I load_tensors:        CUDA0 model buffer size =    77.85 MiB
0.00.293.537 I llama_context:  CUDA_Host  output buffer size =     0.24 MiB
0.00.293.652 I llama_kv_cache:        CPU KV buffer size =    12.00 MiB
0.00.302.203 I llama_kv_cache:      CUDA0 KV buffer size =     4.00 MiB
0.00.315.633 I sched_reserve:      CUDA0 compute buffer size =    53.69 MiB
0.00.315.641 I sched_reserve:  CUDA_Host compute buffer size =    20.02 MiB
";

fn mib(value: f64) -> u64 {
    (value * MIB as f64).round() as u64
}

#[test]
fn buffer_lines_are_split_into_ram_and_vram() {
    let cpu = parse_llama_log(CPU_LOG);
    assert_eq!(cpu.ram.weights, mib(105.53));
    assert_eq!(cpu.ram.kv_cache, 16 * MIB);
    assert_eq!(cpu.ram.compute, mib(17.27));
    assert_eq!(cpu.ram.overhead, mib(0.49));
    assert_eq!(cpu.vram.total(), 0);

    let cuda = parse_llama_log(CUDA_LOG);
    assert_eq!(cuda.ram.weights, mib(167.12));
    assert_eq!(cuda.vram.weights, mib(77.85));
    assert_eq!((cuda.ram.kv_cache, cuda.vram.kv_cache), (12 * MIB, 4 * MIB));
    assert_eq!(cuda.vram.compute, mib(53.69));
    assert_eq!(cuda.ram.compute, mib(20.02));
    // A second reserve of the same device replaces the first.
    let again =
        format!("{CPU_LOG}0.01 I sched_reserve:        CPU compute buffer size =    30.00 MiB\n");
    assert_eq!(parse_llama_log(&again).ram.compute, 30 * MIB);
    assert!(parse_llama_log("nothing about memory\n").is_empty());
}

/// A sliding-window model (gemma3, Q4_K_M, 4096 tokens, CPU) as llama.cpp 11434 logs
/// it: the lines follow its format strings (`llama-model.cpp`, `llama-kv-cache-iswa.cpp`,
/// `llama-kv-cache.cpp`), the sizes are the ones a real gemma3 run logged: weights
/// repacked for the CPU beside the mapped file, and two caches.
const ISWA_LOG: &str = "\
0.00.101.112 I load_tensors:   CPU_Mapped model buffer size =   235.16 MiB
0.00.101.113 I load_tensors:   CPU_REPACK model buffer size =    12.66 MiB
0.00.140.201 I llama_context:        CPU  output buffer size =     1.00 MiB
0.00.140.230 I llama_kv_cache_iswa: creating non-SWA KV cache, size = 4096 cells
0.00.140.260 I llama_kv_cache:        CPU KV buffer size =    12.00 MiB
0.00.141.002 I llama_kv_cache: size =   12.00 MiB (  4096 cells,   3 layers,  1/1 seqs), K (f16):    6.00 MiB, V (f16):    6.00 MiB
0.00.141.030 I llama_kv_cache_iswa: creating     SWA KV cache, size = 1536 cells
0.00.141.061 I llama_kv_cache:        CPU KV buffer size =    15.00 MiB
0.00.141.790 I llama_kv_cache: size =   15.00 MiB (  1536 cells,  15 layers,  1/1 seqs), K (f16):    7.50 MiB, V (f16):    7.50 MiB
0.00.160.442 I sched_reserve:        CPU compute buffer size =   160.51 MiB
";

#[test]
fn every_model_and_cache_buffer_counts_and_compute_is_the_last_reserve() {
    let iswa = parse_llama_log(ISWA_LOG);
    assert_eq!(
        iswa.ram.kv_cache,
        27 * MIB,
        "the non-SWA and the SWA cache are both memory"
    );
    assert_eq!(
        iswa.ram.weights,
        mib(235.16) + mib(12.66),
        "repacked weights are counted beside the mapped file"
    );
    assert_eq!(iswa.ram.compute, mib(160.51));

    // A model in two files: a mapped buffer per file.
    let split = CPU_LOG.replace(
        "CPU_Mapped model buffer size =   105.53 MiB",
        "CPU_Mapped model buffer size =   100.00 MiB\n0.00.056.000 I load_tensors:   CPU_Mapped model buffer size =     5.53 MiB",
    );
    assert_eq!(parse_llama_log(&split).ram.weights, mib(105.53));

    // A hybrid model's recurrent state is part of its cache.
    let hybrid = format!(
        "{CPU_LOG}0.00.070.000 I llama_memory_recurrent:        CPU RS buffer size =     3.00 MiB\n"
    );
    assert_eq!(parse_llama_log(&hybrid).ram.kv_cache, 19 * MIB);
}

#[test]
fn the_runtime_is_what_the_process_held_once_loaded_beyond_the_buffers_it_wrote() {
    let shape = kit_model(32_000);
    let estimated = estimate(&shape, &config(4096), Backend::Cpu);
    let mut measured = parse_llama_log(CPU_LOG);
    let written = measured.ram.weights + measured.ram.kv_cache + measured.ram.overhead;
    measured.rss_bytes = Some(written + 40 * MIB);
    let calibrated = apply_measured(&estimated, &measured);
    assert_eq!(calibrated.runtime_bytes, 40 * MIB);
    assert_eq!(
        calibrated.ram.overhead - estimated.ram.overhead,
        40 * MIB - estimated.runtime_bytes,
        "only the runtime is replaced; what grows with use stays estimated"
    );
    // A runtime within the warm-up's few pages of the formula is noise.
    measured.rss_bytes = Some(written + estimated.runtime_bytes + 2 * MIB);
    assert_eq!(
        apply_measured(&estimated, &measured).runtime_bytes,
        estimated.runtime_bytes
    );
    // Without the RSS (or with less than the buffers) the formula's runtime stays.
    measured.rss_bytes = Some(written / 2);
    assert_eq!(
        apply_measured(&estimated, &measured).runtime_bytes,
        estimated.runtime_bytes
    );
}

#[test]
fn a_log_missing_a_buffer_never_replaces_the_formula_with_nothing() {
    let shape = kit_model(32_000);
    let estimated = estimate(&shape, &config(4096), Backend::Cpu);
    assert!(estimated.ram.kv_cache > 0);
    // The cache lines worded in a way this reader does not know: no cache seen.
    let without_cache: String = CPU_LOG
        .lines()
        .filter(|line| !line.contains("KV buffer size"))
        .map(|line| format!("{line}\n"))
        .collect();
    let measured = parse_llama_log(&without_cache);
    assert_eq!(measured.ram.kv_cache, 0);
    let refined = apply_measured(&estimated, &measured);
    assert_eq!(refined.ram.kv_cache, estimated.ram.kv_cache);
    assert_eq!(refined.ram.weights, measured.ram.weights);
    assert_eq!(refined.ram.compute, measured.ram.compute);
}

#[test]
fn calibration_replaces_the_formula_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let shape = kit_model(32_000);
    let config = config(4096);
    let estimated = estimate(&shape, &config, Backend::Cpu);
    let measured = parse_llama_log(CPU_LOG);

    let mut calibration = Calibration::default();
    calibration.record("model-a", &estimated.config, Backend::Cpu, measured);
    calibration.save(dir.path()).unwrap();
    let loaded = Calibration::load(dir.path()).unwrap();
    let refined = loaded.refine("model-a", &estimated);
    assert_eq!(refined.source, EstimateSource::Measured);
    assert_eq!(refined.ram.kv_cache, measured.ram.kv_cache);
    assert_eq!(refined.ram.compute, measured.ram.compute);
    assert_eq!(
        refined.ram.overhead, estimated.ram.overhead,
        "runtime overhead stays estimated"
    );
    assert_eq!(refined, apply_measured(&estimated, &measured));
    // Another model, or another configuration, has no measurement.
    assert_eq!(loaded.refine("model-b", &estimated), estimated);
    let other = estimate(
        &shape,
        &LlamaConfig {
            context: 8192,
            ..config
        },
        Backend::Cpu,
    );
    assert_eq!(
        loaded.refine("model-a", &other).source,
        EstimateSource::Estimated
    );
}

#[test]
fn a_damaged_calibration_file_is_kept_aside_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(Calibration::path(dir.path()), b"{ not json").unwrap();
    let error = Calibration::load(dir.path()).expect_err("damaged");
    assert_eq!(error.code(), ErrorCode::CorruptState);
    assert!(dir.path().join("calibration.json.damaged").exists());
}

#[test]
fn the_preview_answers_can_i_run_this_for_the_machine() {
    let file = llama3_8b().file();
    let gpu = Budget {
        ram_bytes: 24 * GIB,
        vram_bytes: 22 * GIB,
    };
    let on_gpu = first_estimate(&file, 8192, Backend::Cuda, gpu).expect("a language model");
    assert!(on_gpu.fits);
    assert_eq!((on_gpu.gpu_layers, on_gpu.layers), (33, 32));
    assert!(on_gpu.vram_bytes > on_gpu.ram_bytes);
    assert_eq!(on_gpu.notes, vec!["All layers on the GPU.".to_owned()]);

    let small_gpu = Budget {
        ram_bytes: 24 * GIB,
        vram_bytes: 4 * GIB,
    };
    let split = first_estimate(&file, 8192, Backend::Cuda, small_gpu).expect("a model");
    assert!(split.fits && split.gpu_layers > 0 && split.gpu_layers < 33);
    assert!(
        split.notes[0].contains("layers on the GPU"),
        "{:?}",
        split.notes
    );

    let tiny = Budget {
        ram_bytes: 2 * GIB,
        vram_bytes: 0,
    };
    let refused = first_estimate(&file, 8192, Backend::Cpu, tiny).expect("a model");
    assert!(!refused.fits);
    assert!(refused.notes[0].contains("RAM"), "{:?}", refused.notes);
    // Capped at the context the model was trained for.
    let capped = first_estimate(&file, 131_072, Backend::Cuda, gpu).expect("a model");
    assert_eq!(capped.context, 8192);
}
