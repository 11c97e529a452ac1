//! A small line diff, for showing an approver how a version's config differs
//! from the one in production: both pretty-printed as JSON (keys sorted),
//! then compared line by line along a longest common subsequence.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffKind {
    /// In both.
    Same,
    /// Only in the new text.
    Added,
    /// Only in the old text.
    Removed,
}

impl DiffKind {
    /// `same`, `added` or `removed`.
    pub fn as_str(self) -> &'static str {
        match self {
            DiffKind::Same => "same",
            DiffKind::Added => "added",
            DiffKind::Removed => "removed",
        }
    }

    /// The marker a unified diff writes before the line.
    pub fn marker(self) -> &'static str {
        match self {
            DiffKind::Same => " ",
            DiffKind::Added => "+",
            DiffKind::Removed => "-",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffLine {
    pub kind: DiffKind,
    pub text: String,
}

/// Above this many line pairs the comparison table would be too large to
/// build; such texts are shown as wholly replaced instead.
const MAX_CELLS: usize = 4_000_000;

/// The lines of `old` and `new` in order, each marked same, removed or added;
/// removals come before the additions that replace them.
pub fn line_diff(old: &str, new: &str) -> Vec<DiffLine> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let line = |kind, text: &str| DiffLine {
        kind,
        text: text.to_owned(),
    };
    if a.len().saturating_mul(b.len()) > MAX_CELLS {
        return a
            .iter()
            .map(|t| line(DiffKind::Removed, t))
            .chain(b.iter().map(|t| line(DiffKind::Added, t)))
            .collect();
    }
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let width = b.len() + 1;
    let mut lcs = vec![0_u32; (a.len() + 1) * width];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i * width + j] = if a[i] == b[j] {
                lcs[(i + 1) * width + j + 1] + 1
            } else {
                lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
            };
        }
    }
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(line(DiffKind::Same, a[i]));
            i += 1;
            j += 1;
        } else if lcs[(i + 1) * width + j] >= lcs[i * width + j + 1] {
            out.push(line(DiffKind::Removed, a[i]));
            i += 1;
        } else {
            out.push(line(DiffKind::Added, b[j]));
            j += 1;
        }
    }
    out.extend(a[i..].iter().map(|t| line(DiffKind::Removed, t)));
    out.extend(b[j..].iter().map(|t| line(DiffKind::Added, t)));
    out
}

/// JSON pretty-printed with two-space indents and keys in sorted order.
pub fn pretty_json(v: &Value) -> String {
    // A `Value` always serializes; keys come out sorted (no `preserve_order`).
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// The line diff of two configs, pretty-printed.
pub fn config_diff(old: &Value, new: &Value) -> Vec<DiffLine> {
    line_diff(&pretty_json(old), &pretty_json(new))
}

/// Whether a diff has any change in it.
pub fn has_changes(diff: &[DiffLine]) -> bool {
    diff.iter().any(|l| l.kind != DiffKind::Same)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use DiffKind::*;

    fn render(d: &[DiffLine]) -> String {
        d.iter()
            .map(|l| format!("{}{}\n", l.kind.marker(), l.text))
            .collect()
    }

    #[test]
    fn identical_texts_have_no_changes() {
        let d = line_diff("a\nb\n", "a\nb\n");
        assert_eq!(render(&d), " a\n b\n");
        assert!(!has_changes(&d));
    }

    #[test]
    fn a_changed_line_is_removed_then_added_in_place() {
        let d = line_diff("a\nb\nc", "a\nB\nc");
        assert_eq!(render(&d), " a\n-b\n+B\n c\n");
        assert!(has_changes(&d));
    }

    #[test]
    fn insertions_and_deletions_keep_the_common_lines() {
        assert_eq!(render(&line_diff("a\nc", "a\nb\nc\nd")), " a\n+b\n c\n+d\n");
        assert_eq!(render(&line_diff("x\na\ny\nb", "a\nb")), "-x\n a\n-y\n b\n");
    }

    #[test]
    fn against_nothing_every_line_is_added_and_to_nothing_removed() {
        assert_eq!(render(&line_diff("", "a\nb")), "+a\n+b\n");
        assert_eq!(render(&line_diff("a", "")), "-a\n");
        assert!(line_diff("", "").is_empty());
    }

    #[test]
    fn configs_are_compared_pretty_printed_with_sorted_keys() {
        let old = json!({"temperature": 0.2, "max_tokens": 512, "model": "m"});
        let new = json!({"model": "m", "temperature": 0.3, "max_tokens": 512});
        let d = config_diff(&old, &new);
        let changed: Vec<(DiffKind, &str)> = d
            .iter()
            .filter(|l| l.kind != Same)
            .map(|l| (l.kind, l.text.as_str()))
            .collect();
        assert_eq!(
            changed,
            vec![
                (Removed, "  \"temperature\": 0.2"),
                (Added, "  \"temperature\": 0.3")
            ]
        );
        assert_eq!(d.first().map(|l| l.text.as_str()), Some("{"));
        assert!(!has_changes(&config_diff(&old, &old.clone())));
    }

    #[test]
    fn very_large_texts_are_shown_as_replaced_rather_than_compared() {
        let old: String = (0..2100).map(|i| format!("{i}\n")).collect();
        let new: String = (0..2100).map(|i| format!("{}\n", i + 1)).collect();
        let d = line_diff(&old, &new);
        assert_eq!(d.len(), 4200);
        assert!(d[..2100].iter().all(|l| l.kind == Removed));
        assert!(d[2100..].iter().all(|l| l.kind == Added));
    }
}
