//! Golden-file tests: every `golden/*.influxql` file runs against the fixed data set in
//! `golden/data.lp` (database `golden`, `now()` fixed at 1970-01-02T00:00:00Z) and its output
//! must equal `golden/<name>.expected`.
//!
//! Floats are printed to 12 significant digits: a parallel sum adds its partial results in the
//! order the partitions finish, which moves the last digits from run to run.
//!
//! The same cases also run on two data nodes in one process (`golden_files_on_two_nodes`),
//! each owning half of every shard group: the statements are sent to one of them, which reads
//! the other's shards through plan fragments (encoded and decoded as over the network), and
//! the answers must equal the same `.expected` files.
//!
//! Regenerate the expected files after an intended change, then review the diff:
//!
//! ```sh
//! FLETCH_UPDATE_GOLDEN=1 cargo test -p gateway --test golden
//! git diff gateway/tests/golden
//! ```

mod common;

use std::path::{Path, PathBuf};

use line_protocol::{ParseOptions, parse_body};
use querier::QueryContext;
use serde_json::Value;

const NOW: i64 = 86_400_000_000_000;

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "influxql"))
        .collect();
    out.sort();
    out
}

/// Statements of a case file: separated by `;` at the end of a line; `--` lines are comments.
fn statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("--") || line.trim().is_empty() {
            continue;
        }
        cur.push_str(line.trim_end());
        if cur.ends_with(';') {
            cur.pop();
            out.push(std::mem::take(&mut cur).trim().to_string());
        } else {
            cur.push(' ');
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

fn round_float(v: &serde_json::Value) -> serde_json::Value {
    match v.as_f64() {
        Some(f) if v.is_f64() => {
            let rounded: f64 = format!("{f:.11e}").parse().unwrap_or(f);
            serde_json::Number::from_f64(rounded)
                .map(serde_json::Value::Number)
                .unwrap_or(v.clone())
        }
        _ => v.clone(),
    }
}

/// One line per row, so that a changed answer is a small diff; `results` as `/query` prints
/// them.
fn render(results: &Value) -> String {
    let mut out = String::new();
    for r in results.as_array().into_iter().flatten() {
        if let Some(e) = r["error"].as_str() {
            out.push_str(&format!("error: {e}\n"));
        }
        for m in r["messages"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "{}: {}\n",
                m["level"].as_str().unwrap_or(""),
                m["text"].as_str().unwrap_or("")
            ));
        }
        let series = r["series"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if series.is_empty() && r["error"].is_null() {
            out.push_str("(no series)\n");
        }
        for s in series {
            out.push_str(&format!("name: {}", s["name"].as_str().unwrap_or("")));
            if !s["tags"].is_null() {
                out.push_str(&format!(
                    " tags: {}",
                    serde_json::to_string(&s["tags"]).unwrap()
                ));
            }
            let columns: Vec<&str> = s["columns"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| c.as_str().unwrap_or(""))
                .collect();
            out.push_str(&format!("\ncolumns: {}\n", columns.join(", ")));
            for row in s["values"].as_array().into_iter().flatten() {
                let row: Vec<Value> = row
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(round_float)
                    .collect();
                out.push_str(&serde_json::to_string(&row).unwrap());
                out.push('\n');
            }
        }
    }
    out
}

/// `None` when `out` equals the case's expected answers; else the answers are written beside
/// it (extension `actual_ext`) and the failure is described.
fn compare(case: &Path, out: &str, actual_ext: &str, when: &str) -> Option<String> {
    let expected_path = case.with_extension("expected");
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    if expected == out {
        return None;
    }
    let actual_path = case.with_extension(actual_ext);
    std::fs::write(&actual_path, out).unwrap();
    Some(format!(
        "{} differs{when}: see {}",
        expected_path.display(),
        actual_path.display()
    ))
}

/// Database `golden`, `now()` fixed.
fn context() -> QueryContext {
    QueryContext {
        database: Some("golden".into()),
        now: Some(NOW),
        ..Default::default()
    }
}

/// Every case's statements in order, and the rendered answers.
async fn run_cases(exec: &querier::Executor) -> Vec<(PathBuf, String)> {
    let mut all = Vec::new();
    for case in cases() {
        let text = std::fs::read_to_string(&case).unwrap();
        let mut out = String::new();
        for q in statements(&text) {
            out.push_str(&format!("-- {q}\n"));
            let ctx = context();
            match querier::influxql::parse_query(&q) {
                Ok(stmts) => {
                    out.push_str(&render(&common::json_of(&exec.execute(&stmts, &ctx).await)))
                }
                Err(e) => out.push_str(&format!("error: error parsing query: {e}\n")),
            }
            out.push('\n');
        }
        all.push((case, out));
    }
    all
}

/// `data.lp`'s points, `now()` fixed.
fn data_points(data: &[u8]) -> Vec<line_protocol::Point<'_>> {
    let parsed = parse_body(
        data,
        &ParseOptions {
            default_time: NOW,
            ..Default::default()
        },
    );
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    parsed.points
}

#[tokio::test]
async fn golden_files_on_two_nodes() {
    let pair = common::pair::Pair::with_database("golden").await;
    let data =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/data.lp")).unwrap();
    let mut points = data_points(&data);
    let second = points.split_off(points.len() / 2);
    let exec = &pair.execs[0];
    exec.writer()
        .write("golden", "", points, NOW)
        .await
        .unwrap();
    pair.persist().await;
    exec.writer()
        .write("golden", "", second, NOW)
        .await
        .unwrap();
    // Both nodes hold part of the data.
    for ing in &pair.ingesters {
        assert!(!ing.measurements(&ing.shard_ids()).is_empty());
    }
    let mut failed = Vec::new();
    for (case, out) in run_cases(exec).await {
        // `meta` lists the shards and servers, which two nodes have more of.
        if case.file_stem().is_some_and(|s| s == "meta") {
            continue;
        }
        failed.extend(compare(&case, &out, "two-nodes.actual", " on two nodes"));
    }
    let fragments = pair.served[1].fragments.lock().unwrap().len();
    assert!(fragments > 10, "the peer ran {fragments} plan fragments");
    assert!(
        failed.is_empty(),
        "{}\n(the answers of one node are the .expected files)",
        failed.join("\n")
    );
}

#[tokio::test]
async fn golden_files() {
    let node = common::Node::with_database("golden").await;
    let ingester = node.ingester.clone();
    let data =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/data.lp")).unwrap();
    let parsed = parse_body(
        &data,
        &ParseOptions {
            default_time: NOW,
            ..Default::default()
        },
    );
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    // Half the data persisted, half buffered: answers must not depend on where data sits.
    let half = parsed.points.len() / 2;
    let mut points = parsed.points;
    let second = points.split_off(half);
    let exec = &node.exec;
    exec.writer()
        .write("golden", "", points, NOW)
        .await
        .unwrap();
    ingester.persist().await.unwrap();
    exec.writer()
        .write("golden", "", second, NOW)
        .await
        .unwrap();

    let update = std::env::var("FLETCH_UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut failed = Vec::new();
    for (case, out) in run_cases(exec).await {
        if update {
            std::fs::write(case.with_extension("expected"), &out).unwrap();
        } else {
            failed.extend(compare(&case, &out, "actual", ""));
        }
    }
    // Everything persisted: every scan reads files only, so statements of one shape run from
    // the plan the previous one kept (querier::plan_cache), with their own values bound.
    // (What the first pass wrote with `INTO` is dropped, so that `SHOW` answers as before.)
    let ctx = context();
    let drop = querier::influxql::parse_query("DROP MEASUREMENT cpu_20m").unwrap();
    let dropped = exec.execute(&drop, &ctx).await;
    assert!(dropped.iter().all(|r| r.error.is_none()), "{dropped:?}");
    ingester.persist().await.unwrap();
    let (hits, template_hits) = (exec.plans().hits(), exec.plans().template_hits());
    for (case, out) in run_cases(exec).await {
        if !update {
            failed.extend(compare(
                &case,
                &out,
                "persisted.actual",
                " with all data persisted",
            ));
        }
    }
    assert!(
        exec.plans().hits() > hits,
        "no statement ran from a kept plan"
    );
    // Debug builds check each statement that ran from its template against its logical plan.
    assert!(
        exec.plans().template_hits() > template_hits,
        "no statement ran from its template"
    );
    eprintln!(
        "kept plans: {} runs, {} from templates",
        exec.plans().hits() - hits,
        exec.plans().template_hits() - template_hits
    );
    node.close().await;
    assert!(
        failed.is_empty(),
        "{}\n(regenerate with FLETCH_UPDATE_GOLDEN=1 and review the diff)",
        failed.join("\n")
    );
}
