//! Queue selection, the ACD's hot path: a caller joins a queue of 100 ready operators and
//! is offered (strategy + tiers), answered and completed. One iteration = one queue call.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use kolokol_engine::queue::{Acd, AcdOutputs, CompletedBy, QueueConfig, Strategy};

fn floor(strategy: Strategy, operators: usize) -> (Acd, Vec<String>) {
    let names: Vec<String> = (0..operators).map(|i| format!("op{i}")).collect();
    let members: Vec<(&str, u32)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), (i % 3) as u32))
        .collect();
    let mut acd = Acd::new(1);
    acd.set_queue(QueueConfig::new("q", strategy, &members), 0);
    let mut out = AcdOutputs::default();
    for n in &names {
        acd.login(n, 0, &mut out).unwrap();
    }
    (acd, names)
}

fn queue_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue_call_100_operators");
    for strategy in Strategy::ALL {
        let (mut acd, _) = floor(strategy, 100);
        let mut now = 1_000u64;
        let mut n = 0u64;
        group.bench_function(BenchmarkId::from_parameter(format!("{strategy:?}")), |b| {
            b.iter(|| {
                n += 1;
                now += 10;
                let call = n.to_string();
                let mut out = AcdOutputs::default();
                acd.join("q", &call, now, &mut out).unwrap();
                let operator = out
                    .actions
                    .iter()
                    .find_map(|a| match a {
                        kolokol_engine::queue::Action::Offer { operator, .. } => {
                            Some(operator.clone())
                        }
                        _ => None,
                    })
                    .expect("offered");
                acd.answered(&call, &operator, now, &mut out);
                acd.call_ended(&call, CompletedBy::Caller, now, &mut out);
                out
            })
        });
    }
    group.finish();
}

criterion_group!(benches, queue_call);
criterion_main!(benches);
