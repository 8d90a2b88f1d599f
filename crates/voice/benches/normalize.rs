//! Normalization through a dial plan of 50 rules and route selection over 200 routes, with
//! compiled patterns reused (the process-wide cache), as live routing uses them.

use confab_voice::{candidates, normalize, translate, Pattern, Route, Rule};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn rules() -> Vec<Rule> {
    let mut rules = Vec::new();
    // 48 site-specific short codes and prefixes that a typical number does not hit, then
    // the cookbook's national and international rules last.
    for i in 0..48 {
        rules.push(Rule {
            name: format!("r{i}"),
            pattern: format!(r"^{}(\d{{{}}})$", 100 + i, 3 + i % 5),
            translation: format!("+1425{}$1", 100 + i),
            priority: i,
            is_internal_extension: false,
        });
    }
    rules.push(Rule {
        name: "national".into(),
        pattern: r"^1(\d{10})$".into(),
        translation: "+1$1".into(),
        priority: 48,
        is_internal_extension: false,
    });
    rules.push(Rule {
        name: "intl".into(),
        pattern: r"^011(\d*)$".into(),
        translation: "+$1".into(),
        priority: 49,
        is_internal_extension: false,
    });
    rules
}

fn routes() -> Vec<Route> {
    (0..200)
        .map(|i| Route {
            name: format!("route{i}"),
            number_pattern: format!(r"^\+1{}\d{{7}}$", 200 + i),
            pstn_usages: vec![["Local", "Long Distance", "International"][i % 3].to_string()],
            gateways: vec![format!("gw{}.example.com", i % 2)],
            priority: (i % 7) as i64,
            suppress_caller_id: false,
            alternate_caller_id: String::new(),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rules = rules();
    let routes = routes();
    let usages: Vec<String> = vec![
        "Local".into(),
        "Long Distance".into(),
        "International".into(),
    ];
    c.bench_function("normalize 50 rules, last rule matches", |b| {
        b.iter(|| normalize(black_box(&rules), black_box("01144207946000")))
    });
    c.bench_function("normalize 50 rules, no rule matches", |b| {
        b.iter(|| normalize(black_box(&rules), black_box("*99#")))
    });
    c.bench_function("normalize 50 rules, first rule matches", |b| {
        b.iter(|| normalize(black_box(&rules), black_box("100555")))
    });
    // The worst case: no rule starts with literal digits, so every pattern runs.
    let mut plain: Vec<Rule> = (0..49)
        .map(|i| Rule {
            name: format!("p{i}"),
            pattern: format!(r"^(\d{{{}}})$", 20 + i),
            translation: "+$1".into(),
            priority: i,
            is_internal_extension: false,
        })
        .collect();
    plain.push(Rule {
        name: "Keep All".into(),
        pattern: r"^(\d{11})$".into(),
        translation: "+$1".into(),
        priority: 49,
        is_internal_extension: false,
    });
    c.bench_function(
        "normalize 50 rules without literal prefixes, last rule matches",
        |b| b.iter(|| normalize(black_box(&plain), black_box("14255550100"))),
    );
    c.bench_function("candidates 200 routes, 3 usages", |b| {
        b.iter(|| {
            candidates(
                black_box(&usages),
                black_box(&routes),
                black_box("+13995550100"),
            )
        })
    });
    c.bench_function("normalize + candidates + translate", |b| {
        b.iter(|| {
            let n = normalize(black_box(&rules), black_box("13995550100"))
                .map(|n| n.number)
                .unwrap_or_default();
            let c = candidates(&usages, &routes, &n);
            translate(&rules[..2], &n).len() + c.len()
        })
    });
    c.bench_function("Pattern::new (compile once)", |b| {
        b.iter(|| Pattern::new(black_box(r"^1(\d{10})$")))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
