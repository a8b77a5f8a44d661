//! The benchmark harness at its reduced size (`bench --workload all --quick`), so it cannot rot:
//! every workload runs end to end on real files, processes and QUIC, and its JSON lines are
//! checked for convergence and for byte counts that make sense. Times and targets are not
//! asserted here (the machine running the suite is not the one the targets are for).

use serde_json::Value;
use tournee_tests::{bin, run};

/// Workloads `--workload all` runs, each of which must report at least one line.
const WORKLOADS: &[&str] = &[
    "store",
    "w1",
    "w1-compare",
    "w1-rural",
    "w2",
    "w3",
    "w5",
    "coverage",
];

fn lines_of(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

/// Every number under a key naming bytes, anywhere in the line.
fn byte_counts<'a>(v: &'a Value, key: &str, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                let path = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                if k.contains("bytes") && !x.is_object() {
                    out.push((path.clone(), x));
                }
                byte_counts(x, &path, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|x| byte_counts(x, key, out)),
        _ => {}
    }
}

#[test]
fn every_workload_runs_at_its_reduced_size_converges_and_counts_sane_bytes() {
    let out = run(std::process::Command::new(bin("bench")).args(["--workload", "all", "--quick"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stderr}");
    let lines = lines_of(&out.stdout);
    for w in WORKLOADS {
        assert!(
            lines.iter().any(|l| l["bench"]
                .as_str()
                .is_some_and(|b| b == *w || b.starts_with(&format!("{w}.")))),
            "workload {w} reported nothing:\n{stderr}"
        );
    }
    for l in &lines {
        let name = l["bench"].as_str().expect("every line names its bench");
        assert!(l["ok"].is_boolean(), "{name}: no ok field");
        if let Some(c) = l.get("converged") {
            assert_eq!(c, &Value::Bool(true), "{name} did not converge: {l}");
        }
        if let Some(f) = l.get("failures") {
            assert_eq!(f.as_u64(), Some(0), "{name} had failures: {l}");
        }
        let mut counts = Vec::new();
        byte_counts(l, "", &mut counts);
        for (key, v) in counts {
            if key.contains("per_") || key.ends_with("ratio") {
                continue;
            }
            if v.is_string() {
                continue; // a note on how the bytes were counted
            }
            if let Some(b) = v.as_bool() {
                // e.g. `replay_bytes_up_equal`: the replay sent what the real session sent.
                assert!(b, "{name}: {key} is false: {l}");
                continue;
            }
            let n = v
                .as_f64()
                .unwrap_or_else(|| panic!("{name}: {key} is not a number: {v}"));
            assert!(n >= 0.0 && n.is_finite(), "{name}: {key} = {n}");
        }
        let ours = l
            .get("adapter")
            .and_then(Value::as_str)
            .is_none_or(|a| a == "ours");
        if let (true, Some(up), Some(delta)) = (
            ours,
            l.get("bytes_up").and_then(Value::as_f64),
            l.get("deflated_delta_bytes").and_then(Value::as_f64),
        ) {
            // Our bytes must carry the delta (at least its deflated size, less what deflating
            // the whole flight at once saves) and not balloon.
            assert!(
                up > 0.5 * delta && up < 3.0 * delta,
                "{name}: {up} bytes up for a deflated delta of {delta}"
            );
        }
    }
}
