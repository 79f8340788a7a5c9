//! Benchmarks of the redirection table at scale: compiling 100,000 rules, reading and validating
//! a 100,000-entry declaration, resolving paths, and loading the shared table while a writer
//! swaps it.
//!
//! Run: `cargo bench -p fs-core --bench table -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fs_core::decl::{
    parse_str, parse_str_for, Declaration, Entry, Mountpoint, OnMissing, Options, Presentation,
};
use fs_core::yaml::Loc;
use fs_core::{NameCase, Resolved, SharedTable, Table, VPath};

const RULES: usize = 100_000;

/// The virtual path of rule `i`: depth 1 to 6 under intermediate directories that are never
/// entries themselves, so nothing is nested beneath a link. Leaves are unique (`e{i}`).
fn rule_path(i: usize) -> Vec<String> {
    let depth = 1 + i % 6;
    let mut comps: Vec<String> = (1..depth)
        .map(|level| format!("d{level}_{}", (i / 6) % (7 * level)))
        .collect();
    comps.push(format!("e{i}"));
    comps
}

fn presentation(i: usize) -> Presentation {
    match i % 10 {
        0..=5 => Presentation::Symlink,
        6..=8 => Presentation::Transparent,
        _ => Presentation::Junction,
    }
}

fn declaration(n: usize, base: Option<&Path>) -> Declaration {
    let entries = (0..n)
        .map(|i| Entry {
            path: VPath::from_components(rule_path(i)),
            target: PathBuf::from(format!("/srv/archive/t{}/e{i}", i % 100)),
            presentation: presentation(i),
            on_missing: OnMissing::Dangling,
            read_only: false,
            loc: Loc {
                line: i + 1,
                col: 5,
            },
        })
        .collect();
    Declaration {
        file: PathBuf::from("/etc/redirfs/bench.yaml"),
        mountpoint: Mountpoint::Dir(PathBuf::from("/mnt/bench")),
        base: base.map(Path::to_path_buf),
        options: Options::default(),
        entries,
        case: NameCase::Sensitive,
        diagnostics: Vec::new(),
    }
}

fn bench_build(c: &mut Criterion) {
    let decl = declaration(RULES, Some(Path::new("/srv/base")));
    let mut g = c.benchmark_group("build");
    g.sample_size(10);
    g.throughput(Throughput::Elements(RULES as u64));
    g.bench_function("table_100k_rules", |b| {
        b.iter(|| black_box(Table::new(black_box(&decl), NameCase::Sensitive)))
    });
    g.bench_function("table_100k_rules_case_insensitive", |b| {
        b.iter(|| black_box(Table::new(black_box(&decl), NameCase::Insensitive)))
    });
    g.finish();
}

/// A declaration text of `n` entries whose targets are `targets[i % len]/e{i}` (or the
/// directories themselves when `leaf` is false).
fn yaml_text(n: usize, mountpoint: &Path, targets: &[PathBuf], leaf: bool) -> String {
    let mut text = format!(
        "version: 1\nmountpoint: {}\nredirections:\n",
        mountpoint.display()
    );
    for i in 0..n {
        let dir = &targets[i % targets.len()];
        let target = if leaf {
            dir.join(format!("e{i}"))
        } else {
            dir.clone()
        };
        let presentation = match presentation(i) {
            // A junction must point at a directory; the bench's targets are directories.
            Presentation::Junction if leaf => Presentation::Symlink,
            p => p,
        };
        text.push_str(&format!(
            "  - path: {}\n    target: {}\n    as: {presentation}\n    on_missing: dangling\n",
            rule_path(i).join("/"),
            target.display()
        ));
    }
    text
}

fn bench_parse(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mountpoint = tmp.path().join("mnt");
    std::fs::create_dir(&mountpoint).expect("mkdir");
    // 100 real target directories, shared by the entries: validation stats every target.
    let targets: Vec<PathBuf> = (0..100)
        .map(|i| {
            let d = tmp.path().join(format!("t{i}"));
            std::fs::create_dir(&d).expect("mkdir");
            d
        })
        .collect();
    let file = tmp.path().join("bench.yaml");
    let existing = yaml_text(RULES, &mountpoint, &targets, false);
    let missing = yaml_text(RULES, &mountpoint, &targets, true);

    let mut g = c.benchmark_group("parse");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(RULES as u64));
    g.bench_function("yaml_only_100k_entries", |b| {
        b.iter(|| black_box(fs_core::yaml::parse(black_box(&existing)).expect("yaml")))
    });
    g.bench_function("validate_100k_entries_existing_targets", |b| {
        b.iter(|| {
            let d = parse_str(Path::new("bench.yaml"), &file, black_box(&existing)).expect("valid");
            assert_eq!(d.entries.len(), RULES);
            black_box(d)
        })
    });
    g.bench_function("validate_100k_entries_missing_targets", |b| {
        b.iter(|| {
            let d = parse_str(Path::new("bench.yaml"), &file, black_box(&missing)).expect("valid");
            assert_eq!(d.warnings().count(), RULES);
            black_box(d)
        })
    });
    g.bench_function("validate_100k_entries_case_insensitive", |b| {
        b.iter(|| {
            let d = parse_str_for(
                Path::new("bench.yaml"),
                &file,
                black_box(&existing),
                NameCase::Insensitive,
            )
            .expect("valid");
            assert_eq!(d.entries.len(), RULES);
            black_box(d)
        })
    });
    g.bench_function("validate_and_build_100k_entries", |b| {
        b.iter(|| {
            let d = parse_str(Path::new("bench.yaml"), &file, black_box(&existing)).expect("valid");
            black_box(Table::new(&d, NameCase::Sensitive))
        })
    });
    g.finish();
}

/// Paths to resolve, as components.
struct Paths {
    name: &'static str,
    paths: Vec<Vec<Vec<u8>>>,
}

fn comps(path: &[String]) -> Vec<Vec<u8>> {
    path.iter().map(|c| c.as_bytes().to_vec()).collect()
}

fn path_sets() -> Vec<Paths> {
    const N: usize = 1000;
    // Rules whose depth is 1 (i % 6 == 0) and 6 (i % 6 == 5).
    let shallow_rule = |k: usize| (k * 6 * 13) % RULES;
    let deep_rule = |k: usize| (k * 6 * 13 + 5) % RULES;
    let deep_transparent = |k: usize| {
        // Depth 6 (i % 6 == 5) and transparent (i % 10 in 6..=8): i % 30 == 17.
        (k * 30 * 3 + 17) % RULES
    };
    vec![
        Paths {
            name: "shallow_hit",
            paths: (0..N).map(|k| comps(&rule_path(shallow_rule(k)))).collect(),
        },
        Paths {
            name: "deep_hit_6",
            paths: (0..N).map(|k| comps(&rule_path(deep_rule(k)))).collect(),
        },
        Paths {
            name: "deep_beneath_transparent_10",
            paths: (0..N)
                .map(|k| {
                    let mut p = rule_path(deep_transparent(k));
                    p.extend(["x", "y", "z", "file.txt"].map(str::to_owned));
                    comps(&p)
                })
                .collect(),
        },
        Paths {
            name: "shallow_miss_base",
            paths: (0..N).map(|k| comps(&[format!("nothing{k}")])).collect(),
        },
        Paths {
            name: "deep_miss_base_9",
            paths: (0..N)
                .map(|k| {
                    let mut p = rule_path(deep_rule(k));
                    p.pop();
                    p.extend([
                        format!("missing{k}"),
                        "a".into(),
                        "b".into(),
                        "c.txt".into(),
                    ]);
                    comps(&p)
                })
                .collect(),
        },
        Paths {
            name: "synthetic_dir_3",
            paths: (0..N)
                .map(|k| {
                    let mut p = rule_path(deep_rule(k));
                    p.truncate(3);
                    comps(&p)
                })
                .collect(),
        },
    ]
}

fn resolve_all(table: &Table, paths: &[Vec<Vec<u8>>]) -> usize {
    let mut hits = 0;
    for p in paths {
        let r = table.resolve(p.iter().map(Vec::as_slice));
        if !matches!(r, Resolved::Absent) {
            hits += 1;
        }
        black_box(r);
    }
    hits
}

fn bench_resolve(c: &mut Criterion) {
    let sets = path_sets();
    for (case, label) in [
        (NameCase::Sensitive, "resolve"),
        (NameCase::Insensitive, "resolve_case_insensitive"),
    ] {
        let mut g = c.benchmark_group(label);
        for (base, suffix) in [(Some(Path::new("/srv/base")), ""), (None, "_no_base")] {
            let table = Table::new(&declaration(RULES, base), case);
            for set in &sets {
                // Sanity: what each set is meant to hit, it hits.
                check_set(&table, set, base.is_some());
                g.throughput(Throughput::Elements(set.paths.len() as u64));
                g.bench_function(format!("{}{suffix}", set.name), |b| {
                    b.iter(|| resolve_all(&table, black_box(&set.paths)))
                });
            }
        }
        g.finish();
    }
}

fn check_set(table: &Table, set: &Paths, base: bool) {
    for p in &set.paths {
        let r = table.resolve(p.iter().map(Vec::as_slice));
        let ok = match set.name {
            "shallow_hit" | "deep_hit_6" => {
                matches!(r, Resolved::Link(_) | Resolved::Real { via: Some(_), .. })
            }
            "deep_beneath_transparent_10" => matches!(r, Resolved::Real { via: Some(_), .. }),
            "shallow_miss_base" | "deep_miss_base_9" if base => {
                matches!(r, Resolved::Real { via: None, .. })
            }
            "shallow_miss_base" | "deep_miss_base_9" => matches!(r, Resolved::Absent),
            "synthetic_dir_3" if base => {
                matches!(
                    r,
                    Resolved::Real {
                        via: None,
                        dir: Some(_),
                        ..
                    }
                )
            }
            "synthetic_dir_3" => matches!(r, Resolved::Synthetic(_)),
            _ => false,
        };
        assert!(ok, "{}: {:?} -> {:?}", set.name, p, r);
    }
}

fn bench_shared(c: &mut Criterion) {
    let sets = path_sets();
    let paths = &sets[2].paths;
    let shared = SharedTable::new(Table::new(
        &declaration(RULES, Some(Path::new("/srv/base"))),
        NameCase::Sensitive,
    ));
    let mut g = c.benchmark_group("shared");

    // Without a writer, for comparison.
    g.throughput(Throughput::Elements(1));
    g.bench_function("load_no_writer", |b| b.iter(|| black_box(shared.load())));
    g.bench_function("snapshot_no_writer", |b| {
        b.iter(|| black_box(shared.snapshot().rules().len()))
    });

    // A writer swaps tables as fast as it can, recycling the table it gets back when no reader
    // holds it any more (building a 100k table per swap would measure the build instead).
    let stop = AtomicBool::new(false);
    let swaps = AtomicU64::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut next = Table::new(
                &declaration(RULES, Some(Path::new("/srv/base2"))),
                NameCase::Sensitive,
            );
            let spare = || Table::new(&declaration(1_000, None), NameCase::Sensitive);
            while !stop.load(Ordering::Relaxed) {
                let old = shared.swap(next);
                swaps.fetch_add(1, Ordering::Relaxed);
                next = Arc::try_unwrap(old).unwrap_or_else(|_| spare());
            }
        });
        g.throughput(Throughput::Elements(1));
        g.bench_function("load_with_swapping_writer", |b| {
            b.iter(|| black_box(shared.load()))
        });
        g.bench_function("snapshot_with_swapping_writer", |b| {
            b.iter(|| black_box(shared.snapshot().rules().len()))
        });
        g.throughput(Throughput::Elements(paths.len() as u64));
        g.bench_function("snapshot_resolve_with_swapping_writer", |b| {
            b.iter(|| {
                let mut n = 0;
                for p in paths {
                    // One snapshot per request, as the backends take it.
                    let t = shared.snapshot();
                    n += usize::from(!matches!(
                        t.resolve(p.iter().map(Vec::as_slice)),
                        Resolved::Absent
                    ));
                }
                n
            })
        });
        stop.store(true, Ordering::Relaxed);
    });
    eprintln!(
        "shared: the writer swapped the table {} times during the measurements",
        swaps.load(Ordering::Relaxed)
    );
    g.finish();
}

fn bench_swap_cost(c: &mut Criterion) {
    // Replacing the table: the swap itself, and dropping the old 100k-rule table.
    let shared = SharedTable::new(Table::new(&declaration(10, None), NameCase::Sensitive));
    let mut g = c.benchmark_group("swap");
    g.sample_size(10);
    g.bench_function("swap_in_100k_table_and_drop_old", |b| {
        b.iter_batched(
            || Table::new(&declaration(RULES, None), NameCase::Sensitive),
            |t| drop(black_box(shared.swap(t))),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_build,
    bench_parse,
    bench_resolve,
    bench_shared,
    bench_swap_cost
);
criterion_main!(benches);
