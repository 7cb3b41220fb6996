//! Shared by the benchmarks and the fault-injection suite: replace one section of
//! docs/BENCHMARKS.md or docs/RELIABILITY.md, keeping the others.

use std::path::Path;

/// Writes `body` under `## {title}` in docs/BENCHMARKS.md (creating the file if needed),
/// replacing that section from an earlier run.
#[allow(dead_code)] // the fault suite writes to RELIABILITY.md only
pub fn write_section(repo_root: &Path, title: &str, body: &str) {
    write_doc_section(
        &repo_root.join("docs/BENCHMARKS.md"),
        "# Benchmarks\n\nRun on demand with `./bench/run`; never part of the test command. \
Every number is compared with a baseline measured in the same run, since absolute numbers \
drift between runs on these shared 2-core machines.\n",
        title,
        body,
    );
}

/// Writes `body` under `## {title}` in docs/RELIABILITY.md, as [`write_section`] does.
#[allow(dead_code)] // the benchmarks write to BENCHMARKS.md only
pub fn write_reliability_section(repo_root: &Path, title: &str, body: &str) {
    write_doc_section(
        &repo_root.join("docs/RELIABILITY.md"),
        "# Reliability\n\nWhat SMO1 promises under failure and attack, and the measurements behind \
each promise.\n",
        title,
        body,
    );
}

fn write_doc_section(path: &Path, intro: &str, title: &str, body: &str) {
    let existing = std::fs::read_to_string(path).unwrap_or_else(|_| intro.to_owned());
    let heading = format!("## {title}\n");
    let mut out = String::new();
    let mut skipping = false;
    for line in existing.split_inclusive('\n') {
        if line.starts_with("## ") {
            skipping = line == heading;
            if skipping {
                continue;
            }
        }
        if !skipping {
            out.push_str(line);
        }
    }
    if !out.ends_with("\n\n") {
        out.push('\n');
    }
    out.push_str(&heading);
    out.push('\n');
    out.push_str(body.trim_end());
    out.push('\n');
    std::fs::write(path, out).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The 1-minute load average, printed with each result: on a shared 2-core machine it says how
/// much the numbers were squeezed by other work.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// User plus system CPU seconds `pid` has used so far.
#[allow(dead_code)] // not every benchmark measures CPU
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name (which may hold spaces) start at the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("stat format") + 2..]
        .split_whitespace()
        .collect();
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / 100.0
}
