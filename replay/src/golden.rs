//! Golden files: the canonical NDJSON output of a deterministic run, compared line by line
//! with a readable unified-style diff.

use std::path::Path;

/// The outcome of comparing an output with its golden file.
#[derive(Debug, PartialEq, Eq)]
pub enum Comparison {
    /// Byte-identical.
    Same,
    /// Different: a readable diff (at most `MAX_DIFF_LINES` lines).
    Different(String),
}

/// Longest diff printed.
pub const MAX_DIFF_LINES: usize = 80;

/// Compares `actual` with the golden text.
pub fn compare(golden: &str, actual: &str) -> Comparison {
    if golden == actual {
        return Comparison::Same;
    }
    let want: Vec<&str> = golden.lines().collect();
    let got: Vec<&str> = actual.lines().collect();
    let mut diff = vec![format!("golden has {} lines, this run produced {}", want.len(), got.len())];
    let ops = line_diff(&want, &got);
    for op in ops {
        if diff.len() >= MAX_DIFF_LINES {
            diff.push("… (diff truncated)".into());
            break;
        }
        match op {
            Op::Removed(i) => diff.push(format!("-{:>5}: {}", i + 1, want[i])),
            Op::Added(j) => diff.push(format!("+{:>5}: {}", j + 1, got[j])),
        }
    }
    Comparison::Different(diff.join("\n"))
}

enum Op {
    Removed(usize),
    Added(usize),
}

/// A longest-common-subsequence diff over lines (quadratic; golden files are small).
fn line_diff(a: &[&str], b: &[&str]) -> Vec<Op> {
    if a.len().saturating_mul(b.len()) > 25_000_000 {
        // Too big for LCS: report positional differences.
        let mut ops = Vec::new();
        for i in 0..a.len().max(b.len()) {
            if a.get(i) != b.get(i) {
                if i < a.len() {
                    ops.push(Op::Removed(i));
                }
                if i < b.len() {
                    ops.push(Op::Added(i));
                }
            }
        }
        return ops;
    }
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut ops) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            ops.push(Op::Added(j));
            j += 1;
        } else {
            ops.push(Op::Removed(i));
            i += 1;
        }
    }
    ops
}

/// Reads a golden file; a missing file reads as empty (so the first run shows everything as added).
pub fn read_golden(path: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_outputs_compare_same() {
        assert_eq!(compare("a\nb\n", "a\nb\n"), Comparison::Same);
    }

    #[test]
    fn diff_shows_removed_and_added_lines_with_numbers() {
        let Comparison::Different(d) = compare("a\nb\nc\n", "a\nx\nc\n") else { panic!() };
        assert!(d.contains("-    2: b"), "{d}");
        assert!(d.contains("+    2: x"), "{d}");
        assert!(!d.contains(": a"), "{d}");
    }

    #[test]
    fn trailing_newline_difference_is_reported() {
        assert!(matches!(compare("a\n", "a"), Comparison::Different(_)));
    }
}
