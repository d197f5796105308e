//! Rule evaluations per second: the example scheme in Rhai against the same logic in plain Rust.
//!
//! One "evaluation" is one trigger (a fixture case) through the whole rule set.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crm_rules::native::{evaluate_all, workload, NativeScheme};
use crm_rules::{Limits, RhaiRuleEngine, RuleSet};
use std::hint::black_box;
use std::path::Path;

fn bench(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rules");
    let inputs = workload(&dir).expect("the example fixtures load");
    let rhai = RhaiRuleEngine::new(
        RuleSet::load_dir(&dir, Limits::default()).expect("the example compiles"),
    );
    let native = NativeScheme;
    let mut g = c.benchmark_group("example_scheme");
    g.throughput(Throughput::Elements(inputs.len() as u64));
    g.bench_function("rhai", |b| {
        b.iter(|| black_box(evaluate_all(&rhai, black_box(&inputs))))
    });
    g.bench_function("plain_rust", |b| {
        b.iter(|| black_box(evaluate_all(&native, black_box(&inputs))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
