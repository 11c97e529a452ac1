//! Metric analysis gates: a template names a Prometheus, a PromQL query with
//! placeholders for what is under test, a success and a failure condition,
//! and how often and how many times to measure. The rules here render the
//! query (placeholder values escaped as PromQL string literals, never pasted
//! raw), judge each measured value, and decide from the measurements so far
//! whether the gate passed, failed, is inconclusive or needs more.
//!
//! A measurement that matches neither condition, has no data or could not
//! be fetched is *inconclusive*: it never counts as a success.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{DomainError, Timestamp};

/// What a query's placeholders stand for: the operation under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub cluster: String,
    /// The slot the new version serves from (`blue`/`green`).
    pub slot: String,
    pub model: String,
    pub version: String,
}

impl Subject {
    fn value(&self, name: &str) -> Option<String> {
        Some(match name {
            "cluster" => self.cluster.clone(),
            "slot" => self.slot.clone(),
            "model" => self.model.clone(),
            "version" => self.version.clone(),
            "full_id" => format!("{}:{}", self.model, self.version),
            _ => return None,
        })
    }

    /// Values that exercise every escape, for checking a query before it is saved.
    pub fn sample() -> Subject {
        Subject {
            cluster: "prod-eu".into(),
            slot: "green".into(),
            model: "chat".into(),
            version: "v2.1+build".into(),
        }
    }
}

/// The placeholder names a query may use.
pub const PLACEHOLDERS: [&str; 5] = ["cluster", "slot", "model", "version", "full_id"];

/// One piece of a query: literal PromQL, or a placeholder inside a string
/// literal quoted with `quote`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Placeholder { name: String, quote: char },
}

/// Splits a query into text and placeholders, refusing a placeholder that
/// is unknown, outside a quoted string, inside a raw (backtick) string, or
/// the value of a regular-expression matcher (`=~`, `!~`), where escaping
/// for a string would not stop `.` or `+` from matching anything.
fn pieces(query: &str) -> Result<Vec<Piece>, DomainError> {
    let bad = |why: String| Err(DomainError::Invalid(format!("query: {why}")));
    let mut out = Vec::new();
    let mut text = String::new();
    // The quote of the string literal we are in, and whether it is a regex matcher's.
    let mut quote: Option<(char, bool)> = None;
    let mut chars = query.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '{' && query[i..].starts_with("{{") {
            let Some(end) = query[i + 2..].find("}}") else {
                return bad(format!("`{{{{` at byte {i} is not closed with `}}}}`"));
            };
            let name = query[i + 2..i + 2 + end].trim().to_owned();
            if !PLACEHOLDERS.contains(&name.as_str()) {
                return bad(format!(
                    "unknown placeholder {{{{{name}}}}}; the placeholders are {}",
                    PLACEHOLDERS.map(|p| format!("{{{{{p}}}}}")).join(", ")
                ));
            }
            match quote {
                Some(('"' | '\'', false)) => {}
                Some(('`', _)) => {
                    return bad(format!(
                        "{{{{{name}}}}} is inside a raw `backtick` string, where its value cannot be escaped; use double quotes"
                    ))
                }
                Some(_) => {
                    return bad(format!(
                        "{{{{{name}}}}} is the value of a regular-expression matcher (=~ or !~); use an exact matcher, e.g. {name}=\"{{{{{name}}}}}\""
                    ))
                }
                None => {
                    return bad(format!(
                        "{{{{{name}}}}} must be inside a quoted label value, e.g. {{{name}=\"{{{{{name}}}}}\"}}"
                    ))
                }
            }
            out.push(Piece::Text(std::mem::take(&mut text)));
            out.push(Piece::Placeholder {
                name,
                quote: quote.map_or('"', |(q, _)| q),
            });
            // Skip the rest of the placeholder.
            let stop = i + 2 + end + 2;
            while chars.peek().is_some_and(|(j, _)| *j < stop) {
                chars.next();
            }
            continue;
        }
        text.push(c);
        match quote {
            Some((q, _)) if c == q => quote = None,
            Some(('`', _)) => {}
            Some(_) if c == '\\' => {
                // An escaped character inside a string: keep it, it does not end the string.
                if let Some((_, n)) = chars.next() {
                    text.push(n);
                }
            }
            Some(_) => {}
            None if c == '"' || c == '\'' || c == '`' => {
                let before = query[..i].trim_end();
                let regex = before.ends_with("=~") || before.ends_with("!~");
                quote = Some((c, regex));
            }
            None => {}
        }
    }
    if let Some((q, _)) = quote {
        return bad(format!("a string opened with {q} is not closed"));
    }
    out.push(Piece::Text(text));
    Ok(out)
}

/// `value` as the inside of a PromQL string literal quoted with `quote`:
/// backslashes, the quote and control characters escaped as Go escapes.
pub fn escape_label_value(value: &str, quote: char) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if c == quote => {
                s.push('\\');
                s.push(c);
            }
            c if c.is_control() => s.push_str(&format!("\\u{:04x}", c as u32)),
            c => s.push(c),
        }
    }
    s
}

/// Checks a query's placeholders (unknown, unquoted, in a regex matcher).
pub fn check_query(query: &str) -> Result<(), DomainError> {
    if query.trim().is_empty() {
        return Err(DomainError::Invalid(
            "query is empty; write a PromQL expression such as sum(rate(errors_total{model=\"{{model}}\"}[1m]))".into(),
        ));
    }
    if query.len() > 4000 {
        return Err(DomainError::Invalid(
            "query is longer than 4000 characters".into(),
        ));
    }
    pieces(query).map(|_| ())
}

/// The query with every placeholder replaced by `subject`'s escaped value.
pub fn render_query(query: &str, subject: &Subject) -> Result<String, DomainError> {
    let mut out = String::with_capacity(query.len() + 32);
    for piece in pieces(query)? {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Placeholder { name, quote } => {
                let value = subject.value(&name).ok_or_else(|| {
                    DomainError::Invalid(format!("query: unknown placeholder {name}"))
                })?;
                out.push_str(&escape_label_value(&value, quote));
            }
        }
    }
    Ok(out)
}

/// A comparison operator of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// A condition on the measured value: comparisons of `result` with a
/// number, joined by `and` / `or` (`and` binds tighter), e.g.
/// `result < 0.01`, `result >= 0.99 and result <= 1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    source: String,
    /// Any of these groups, each holding if all its comparisons do.
    any: Vec<Vec<(Op, f64)>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Result,
    Number(f64),
    Op(Op),
    And,
    Or,
}

fn tokens(s: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let two = s.get(i..i + 2).unwrap_or("");
        let (tok, len) = match two {
            "<=" => (Token::Op(Op::Le), 2),
            ">=" => (Token::Op(Op::Ge), 2),
            "==" => (Token::Op(Op::Eq), 2),
            "!=" => (Token::Op(Op::Ne), 2),
            "&&" => (Token::And, 2),
            "||" => (Token::Or, 2),
            _ => match c {
                '<' => (Token::Op(Op::Lt), 1),
                '>' => (Token::Op(Op::Gt), 1),
                c if c.is_ascii_alphabetic() || c == '_' => {
                    let end = s[i..]
                        .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                        .map_or(s.len(), |n| i + n);
                    let word = &s[i..end];
                    let tok = match word {
                        "result" => Token::Result,
                        "and" => Token::And,
                        "or" => Token::Or,
                        _ => {
                            return Err(format!(
                                "unknown word {word:?}; compare `result` with a number, e.g. result < 0.01"
                            ))
                        }
                    };
                    (tok, end - i)
                }
                c if c.is_ascii_digit() || c == '.' || c == '-' || c == '+' => {
                    // Digits, a point, an exponent with its own sign; one leading sign.
                    let mut end = i + 1;
                    while end < b.len() {
                        let ch = b[end] as char;
                        let exp_sign =
                            (ch == '-' || ch == '+') && matches!(b[end - 1] as char, 'e' | 'E');
                        if ch.is_ascii_digit() || ch == '.' || ch == 'e' || ch == 'E' || exp_sign {
                            end += 1;
                        } else {
                            break;
                        }
                    }
                    let text = &s[i..end];
                    let n: f64 = text
                        .parse()
                        .map_err(|_| format!("{text:?} is not a number"))?;
                    if !n.is_finite() {
                        return Err(format!("{text:?} is not a finite number"));
                    }
                    (Token::Number(n), end - i)
                }
                c => return Err(format!("unexpected character {c:?}")),
            },
        };
        out.push(tok);
        i += len;
    }
    Ok(out)
}

impl Condition {
    pub fn parse(source: &str) -> Result<Condition, DomainError> {
        let fail = |why: String| {
            DomainError::Invalid(format!(
                "condition {source:?} does not parse: {why}. Write comparisons of `result` with a number joined by and/or, e.g. result < 0.01"
            ))
        };
        let toks = tokens(source).map_err(fail)?;
        if toks.is_empty() {
            return Err(fail("it is empty".into()));
        }
        let mut any = vec![Vec::new()];
        let mut i = 0;
        loop {
            match (toks.get(i), toks.get(i + 1), toks.get(i + 2)) {
                (Some(Token::Result), Some(Token::Op(op)), Some(Token::Number(n))) => {
                    if let Some(group) = any.last_mut() {
                        group.push((*op, *n));
                    }
                }
                _ => {
                    return Err(fail(format!(
                        "expected `result <op> <number>` at comparison {}",
                        any.iter().map(Vec::len).sum::<usize>() + 1
                    )))
                }
            }
            i += 3;
            match toks.get(i) {
                None => break,
                Some(Token::And) => {}
                Some(Token::Or) => any.push(Vec::new()),
                Some(t) => return Err(fail(format!("expected and/or, found {t:?}"))),
            }
            i += 1;
        }
        Ok(Condition {
            source: source.trim().to_owned(),
            any,
        })
    }

    /// Whether `value` satisfies the condition (never for NaN).
    pub fn holds(&self, value: f64) -> bool {
        !value.is_nan()
            && self
                .any
                .iter()
                .any(|all| all.iter().all(|(op, n)| op.holds(value, *n)))
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The numbers `result` is compared with, ascending, each once: where
    /// the condition starts or stops holding (the lines a chart draws).
    pub fn thresholds(&self) -> Vec<f64> {
        let mut out: Vec<f64> = self.any.iter().flatten().map(|(_, n)| *n).collect();
        out.sort_by(f64::total_cmp);
        out.dedup();
        out
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// An analysis template, as stored and as an operation keeps a copy of it
/// (so a template edited mid-operation does not change a running gate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisTemplate {
    pub name: String,
    /// The Prometheus server's base URL, e.g. `http://prometheus:9090`.
    pub prometheus_url: String,
    /// A file holding a bearer token sent to Prometheus, read at each measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    /// PromQL; placeholders `{{cluster}}`, `{{slot}}`, `{{model}}`, `{{version}}`, `{{full_id}}`.
    pub query: String,
    /// e.g. `result < 0.01`
    pub success: String,
    /// e.g. `result > 0.05`; a value matching both counts as a failure.
    pub failure: String,
    /// Time between measurements (the first comes one interval after the gate starts).
    pub interval_ms: u64,
    /// Measurements to take.
    pub count: u32,
    /// Failed measurements that roll the operation back.
    pub failure_limit: u32,
    /// Inconclusive measurements that pause the operation for a person.
    pub inconclusive_limit: u32,
    /// Also measure the newly loaded slot before any traffic moves to it (a
    /// pre-switch gate, e.g. on smoke traffic): a failure there fails the
    /// operation with traffic unmoved, so no switch happens.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pre_switch: bool,
}

impl AnalysisTemplate {
    /// Checks everything that can be checked without Prometheus.
    pub fn check(&self) -> Result<(), DomainError> {
        crate::clusters::parse_cluster_name(&self.name).map_err(|_| {
            DomainError::Invalid(format!(
                "template name {:?} is not valid: it must match [a-z0-9][a-z0-9._-]{{0,63}}",
                self.name
            ))
        })?;
        let url = self.prometheus_url.trim();
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
            return Err(DomainError::Invalid(format!(
                "prometheus_url {:?} must be an http:// or https:// URL, e.g. http://prometheus:9090",
                self.prometheus_url
            )));
        }
        if let Some(f) = &self.bearer_token_file {
            if f.trim().is_empty() {
                return Err(DomainError::Invalid(
                    "bearer_token_file is empty; leave it out or name the file holding the token"
                        .into(),
                ));
            }
        }
        check_query(&self.query)?;
        self.conditions()?;
        if !(100..=3_600_000).contains(&self.interval_ms) {
            return Err(DomainError::Invalid(format!(
                "interval_ms must be 100 to 3600000 (one hour), not {}",
                self.interval_ms
            )));
        }
        if !(1..=1000).contains(&self.count) {
            return Err(DomainError::Invalid(format!(
                "count must be 1 to 1000 measurements, not {}",
                self.count
            )));
        }
        for (field, v) in [
            ("failure_limit", self.failure_limit),
            ("inconclusive_limit", self.inconclusive_limit),
        ] {
            if v == 0 || v > self.count {
                return Err(DomainError::Invalid(format!(
                    "{field} must be 1 to count ({}), not {v}",
                    self.count
                )));
            }
        }
        Ok(())
    }

    /// The success and failure conditions, parsed.
    pub fn conditions(&self) -> Result<(Condition, Condition), DomainError> {
        let named = |field: &str, e: DomainError| match e {
            DomainError::Invalid(m) => DomainError::Invalid(format!("{field}: {m}")),
            e => e,
        };
        Ok((
            Condition::parse(&self.success).map_err(|e| named("success", e))?,
            Condition::parse(&self.failure).map_err(|e| named("failure", e))?,
        ))
    }

    /// Judges one measured value (`Err`: why there is none).
    pub fn judge(&self, value: &Result<f64, String>) -> (Verdict, String) {
        let (success, failure) = match self.conditions() {
            Ok(c) => c,
            Err(e) => return (Verdict::Inconclusive, e.to_string()),
        };
        match value {
            Err(why) => (Verdict::Inconclusive, why.clone()),
            Ok(v) if v.is_nan() => (
                Verdict::Inconclusive,
                "the query answered NaN (no requests to divide by?)".into(),
            ),
            Ok(v) if failure.holds(*v) => {
                (Verdict::Failure, format!("{v} matches failure `{failure}`"))
            }
            Ok(v) if success.holds(*v) => {
                (Verdict::Success, format!("{v} matches success `{success}`"))
            }
            Ok(v) => (
                Verdict::Inconclusive,
                format!("{v} matches neither success `{success}` nor failure `{failure}`"),
            ),
        }
    }

    /// What the measurements so far (of this template) decide.
    pub fn outcome(&self, measurements: &[Measurement]) -> Outcome {
        let mine: Vec<&Measurement> = measurements
            .iter()
            .filter(|m| m.template == self.name)
            .collect();
        let count = |v: Verdict| mine.iter().filter(|m| m.verdict == v).count() as u32;
        let (ok, failed, unsure) = (
            count(Verdict::Success),
            count(Verdict::Failure),
            count(Verdict::Inconclusive),
        );
        let values = mine
            .iter()
            .map(|m| m.value.map_or_else(|| "none".to_owned(), |v| v.to_string()))
            .collect::<Vec<_>>()
            .join(", ");
        let taken = mine.len() as u32;
        if failed >= self.failure_limit {
            Outcome::Failed(format!(
                "analysis {}: {failed} of {taken} measurements matched failure `{}` (limit {}); values: {values}",
                self.name, self.failure, self.failure_limit
            ))
        } else if unsure >= self.inconclusive_limit {
            let last = mine.last().map_or("", |m| m.note.as_str());
            Outcome::Inconclusive(format!(
                "analysis {}: {unsure} of {taken} measurements inconclusive (limit {}), last: {last}; values: {values}",
                self.name, self.inconclusive_limit
            ))
        } else if taken >= self.count {
            if ok == 0 {
                Outcome::Inconclusive(format!(
                    "analysis {}: none of {taken} measurements matched success `{}`; values: {values}",
                    self.name, self.success
                ))
            } else {
                Outcome::Passed(format!(
                    "analysis {}: {ok} of {taken} measurements matched success `{}`; values: {values}",
                    self.name, self.success
                ))
            }
        } else {
            Outcome::Measuring
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Success,
    Failure,
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Success => "success",
            Verdict::Failure => "failure",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// One measurement, kept with the gate step that took it: the evidence
/// next to the decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub template: String,
    pub at: Timestamp,
    /// The query as sent, placeholders rendered.
    pub query: String,
    /// `None`: no data, or it could not be fetched (see `note`).
    pub value: Option<f64>,
    pub verdict: Verdict,
    pub note: String,
}

/// What a template's measurements decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// More measurements are due.
    Measuring,
    Passed(String),
    /// The failure limit is reached: roll back.
    Failed(String),
    /// The inconclusive limit is reached, or no measurement succeeded: pause for a person.
    Inconclusive(String),
}

/// A person's answer to an operation paused on an inconclusive analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Accept the gate and go on with the operation.
    Continue,
    /// Send traffic back to what served before.
    RollBack,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> AnalysisTemplate {
        AnalysisTemplate {
            name: "error-rate".into(),
            prometheus_url: "http://127.0.0.1:9090".into(),
            bearer_token_file: None,
            query: "sum(rate(errors_total{model=\"{{model}}\",version=\"{{version}}\"}[1m]))"
                .into(),
            success: "result < 0.01".into(),
            failure: "result > 0.05".into(),
            interval_ms: 1000,
            count: 3,
            failure_limit: 2,
            inconclusive_limit: 1,
            pre_switch: false,
        }
    }

    fn subject(version: &str) -> Subject {
        Subject {
            cluster: "prod".into(),
            slot: "green".into(),
            model: "chat".into(),
            version: version.into(),
        }
    }

    #[test]
    fn placeholders_are_rendered_as_escaped_label_values() {
        let q = "up{model=\"{{model}}\", v='{{version}}', c=\"{{cluster}}/{{slot}}\", f=\"{{ full_id }}\"}";
        let rendered = render_query(q, &subject("v2\"} or vector(1) #")).expect("renders");
        assert_eq!(
            rendered,
            "up{model=\"chat\", v='v2\"} or vector(1) #', c=\"prod/green\", f=\"chat:v2\\\"} or vector(1) #\"}"
        );
        assert_eq!(escape_label_value("a\\b\"c'\n", '"'), "a\\\\b\\\"c'\\n");
        assert_eq!(escape_label_value("it's", '\''), "it\\'s");
    }

    #[test]
    fn a_query_with_an_unknown_unquoted_raw_or_regex_placeholder_is_refused_naming_the_fix() {
        let err = |q: &str| check_query(q).expect_err("refused").to_string();
        assert!(err("up{model=\"{{modle}}\"}").contains("unknown placeholder {{modle}}"));
        assert!(err("up{model={{model}}}").contains("inside a quoted label value"));
        assert!(err("up{model=`{{model}}`}").contains("raw"));
        assert!(err("up{model=~\"{{model}}\"}").contains("exact matcher"));
        assert!(err("up{model=\"{{model}}").contains("not closed"));
        assert!(err("   ").contains("empty"));
        assert!(
            check_query("up{model=\"a\\\"{{model}}\"}").is_ok(),
            "an escaped quote does not end the string"
        );
        assert!(
            check_query("sum(rate(x[1m]))").is_ok(),
            "no placeholders is fine"
        );
    }

    #[test]
    fn a_conditions_thresholds_are_the_numbers_it_compares_with_in_order_each_once() {
        let t = |s: &str| Condition::parse(s).expect("parses").thresholds();
        assert_eq!(t("result < 0.01"), vec![0.01]);
        assert_eq!(t("result <= 2 and result >= 0.5 or result == 2"), vec![0.5, 2.0]);
        assert_eq!(t("result != -1e-3"), vec![-0.001]);
    }

    #[test]
    fn conditions_parse_into_comparisons_joined_by_and_or() {
        let c = Condition::parse("result < 0.01").expect("parses");
        assert!(c.holds(0.009) && !c.holds(0.01) && !c.holds(f64::NAN));
        let c = Condition::parse("result>=0.99 and result<=1 || result == -1e-3").expect("parses");
        assert!(c.holds(0.995) && c.holds(1.0) && c.holds(-0.001));
        assert!(!c.holds(0.98) && !c.holds(1.5));
        let c = Condition::parse("result != 0").expect("parses");
        assert!(c.holds(2.0) && !c.holds(0.0));
        for bad in [
            "",
            "result",
            "result < ",
            "value < 1",
            "result < 1 and",
            "result < 1 1",
            "1 < result",
            "result < inf",
            "result ~ 1",
        ] {
            let e = Condition::parse(bad).expect_err(bad).to_string();
            assert!(
                e.contains("does not parse") && e.contains("result < 0.01"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_template_is_checked_field_by_field_with_the_fix_named() {
        assert!(template().check().is_ok());
        let refused = |f: fn(&mut AnalysisTemplate)| {
            let mut t = template();
            f(&mut t);
            t.check().expect_err("refused").to_string()
        };
        assert!(refused(|t| t.name = "Error Rate".into()).contains("template name"));
        assert!(refused(|t| t.prometheus_url = "prometheus:9090".into()).contains("http://"));
        assert!(refused(|t| t.success = "result <".into()).starts_with("success: condition"));
        assert!(refused(|t| t.failure = "latency > 1".into()).starts_with("failure: condition"));
        assert!(refused(|t| t.query = "x{a={{slot}}}".into()).contains("quoted"));
        assert!(refused(|t| t.interval_ms = 10).contains("interval_ms"));
        assert!(refused(|t| t.count = 0).contains("count"));
        assert!(refused(|t| t.failure_limit = 4).contains("failure_limit must be 1 to count (3)"));
        assert!(refused(|t| t.inconclusive_limit = 0).contains("inconclusive_limit"));
        assert!(refused(|t| t.bearer_token_file = Some(" ".into())).contains("bearer_token_file"));
    }

    fn measured(t: &AnalysisTemplate, value: Result<f64, String>) -> Measurement {
        let (verdict, note) = t.judge(&value);
        Measurement {
            template: t.name.clone(),
            at: Timestamp::from_micros(0),
            query: "q".into(),
            value: value.ok(),
            verdict,
            note,
        }
    }

    #[test]
    fn a_value_matching_neither_condition_no_data_nan_or_a_fetch_error_is_inconclusive() {
        let t = template();
        assert_eq!(t.judge(&Ok(0.001)).0, Verdict::Success);
        assert_eq!(t.judge(&Ok(0.2)).0, Verdict::Failure);
        for v in [
            Ok(0.03),
            Ok(f64::NAN),
            Err("no data".to_owned()),
            Err("connection refused".to_owned()),
        ] {
            assert_eq!(t.judge(&v).0, Verdict::Inconclusive, "{v:?}");
        }
        let mut both = template();
        both.success = "result < 1".into();
        both.failure = "result > 0.5".into();
        assert_eq!(
            both.judge(&Ok(0.7)).0,
            Verdict::Failure,
            "matching both fails"
        );
    }

    #[test]
    fn the_outcome_passes_only_after_count_measurements_with_a_success_and_no_limit_reached() {
        let t = template();
        let ms = |vals: &[Result<f64, String>]| -> Vec<Measurement> {
            vals.iter().cloned().map(|v| measured(&t, v)).collect()
        };
        assert_eq!(t.outcome(&ms(&[Ok(0.0), Ok(0.0)])), Outcome::Measuring);
        assert!(
            matches!(t.outcome(&ms(&[Ok(0.0), Ok(0.0), Ok(0.0)])), Outcome::Passed(m) if m.contains("3 of 3"))
        );
        assert!(
            matches!(
                t.outcome(&ms(&[Ok(0.0), Ok(0.2), Ok(0.0)])),
                Outcome::Passed(_)
            ),
            "one failure is under the limit of 2"
        );
        assert!(
            matches!(t.outcome(&ms(&[Ok(0.2), Ok(0.3)])), Outcome::Failed(m) if m.contains("0.2, 0.3") && m.contains("result > 0.05"))
        );
        assert!(
            matches!(t.outcome(&ms(&[Ok(0.0), Err("no data".into())])), Outcome::Inconclusive(m) if m.contains("no data"))
        );
        let mut lenient = template();
        lenient.inconclusive_limit = 3;
        lenient.failure_limit = 3;
        let all_unsure: Vec<Measurement> = [Ok(0.03), Ok(0.2), Ok(0.2)]
            .into_iter()
            .map(|v| measured(&lenient, v))
            .collect();
        assert!(
            matches!(lenient.outcome(&all_unsure), Outcome::Inconclusive(m) if m.contains("none of 3")),
            "no success never passes"
        );
        let other = Measurement {
            template: "other".into(),
            ..measured(&t, Ok(0.9))
        };
        assert_eq!(
            t.outcome(&[other]),
            Outcome::Measuring,
            "another template's measurements do not count"
        );
    }
}
