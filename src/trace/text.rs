//! The terminal rendering of a trace: one row per call, in time order.

use std::fmt::Write as _;

use super::{Arrow, Event, Labels, Op, Part, ReadSpan, Side, Trace, escape};

/// The width between the two lifelines, in terminal columns.
const GAP: usize = 44;

/// Columns a character takes on a terminal: two for CJK and fullwidth
/// forms, one otherwise; enough to keep Chinese previews aligned.
fn width(s: &str) -> usize {
    s.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6 => 2,
            _ => 1,
        })
        .sum()
}

/// `s` cut to at most `max` columns, with `…` if anything was cut.
fn fit(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    for c in s.chars() {
        if width(&out) + width(c.encode_utf8(&mut [0; 4])) + 1 > max {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// The frame parts as a label: `[len 4 | header 61 | body 5]`.
pub(crate) fn parts_label(parts: &[(Part, u64)], labels: &Labels) -> String {
    if parts.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = parts
        .iter()
        .map(|&(p, n)| format!("{} {n}", labels.part(p)))
        .collect();
    format!("[{}]", inner.join(" | "))
}

/// The preview of a call, quoted, with `…` when it moved more than it kept.
pub(crate) fn preview(event: &Event) -> String {
    let more = if event.len > event.head.len() {
        "…"
    } else {
        ""
    };
    format!("\"{}{more}\"", escape(&event.head))
}

pub(super) fn render(trace: &Trace, labels: &Labels) -> String {
    let events = trace.events();
    let arrows = trace.arrows();
    let reads = trace.reads();
    let mut out = String::new();
    let _ = writeln!(out, "── {} ──", trace.title());
    let _ = writeln!(
        out,
        "{}{}  {}{}{}",
        " ".repeat(9usize.saturating_sub(width(labels.time))),
        labels.time,
        labels.client,
        " ".repeat((GAP + 2).saturating_sub(width(labels.client))),
        labels.server,
    );
    for (i, event) in events.iter().enumerate() {
        let time = format!("{:>7.1}ms", event.at.as_secs_f64() * 1000.0);
        let row = match event.op {
            Op::Write => arrows
                .iter()
                .find(|a| a.write == i)
                .map(|a| write_row(event, a, labels)),
            Op::Read => reads
                .iter()
                .find(|r| r.read == i)
                .map(|r| read_row(event, r, labels)),
        };
        if let Some(row) = row {
            let _ = writeln!(out, "{time}  {}", row.trim_end());
        }
    }
    let stuck = reads.iter().filter(|r| r.sticky).count();
    let split = arrows.iter().filter(|a| a.split).count();
    let _ = write!(
        out,
        "{} {}, {} {}; {}: {stuck}; {}: {split}",
        arrows.len(),
        labels.writes,
        reads.len(),
        labels.reads,
        labels.sticky,
        labels.split,
    );
    let messages = trace.messages();
    let _ = write!(
        out,
        "; {}: {} {}, {} {}",
        labels.messages, messages.whole, labels.whole, messages.split, labels.split_by_network
    );
    let dropped = trace.dropped();
    if dropped > 0 {
        let _ = write!(out, "; {dropped} {}", labels.not_kept);
    }
    out
}

fn write_row(event: &Event, arrow: &Arrow, labels: &Labels) -> String {
    let label = format!(
        " #{} {} {} B {} ",
        arrow.number,
        labels.write,
        event.len,
        preview(event)
    );
    let label = fit(&label, GAP - 6);
    let line = "─".repeat(GAP - width(&label) - 1);
    let gap = match event.side {
        Side::Client => format!("{label}{line}▶"),
        Side::Server => format!("◀{line}{label}"),
    };
    let mut notes = parts_label(&arrow.parts, labels);
    if arrow.split {
        let _ = write!(notes, " 分包: {} {}", arrow.pieces, labels.pieces);
    } else if arrow.reads.len() > 1 {
        let _ = write!(
            notes,
            " {} {} {}",
            labels.one_message,
            arrow.reads.len(),
            labels.parts_word
        );
    }
    format!("│{gap}│ {notes}")
}

fn read_row(event: &Event, span: &ReadSpan, labels: &Labels) -> String {
    let (left, right) = match event.side {
        Side::Client => ('●', '│'),
        Side::Server => ('│', '●'),
    };
    let side = labels.side(event.side);
    let mut notes = if event.len == 0 {
        format!("{side} {} 0 B: {}", labels.read, labels.end_of_stream)
    } else {
        format!("{side} {} {} B {}", labels.read, event.len, preview(event))
    };
    if !span.writes.is_empty() {
        let numbers: Vec<String> = span.writes.iter().map(|n| format!("#{n}")).collect();
        let _ = write!(notes, " ← {}", numbers.join(" "));
    }
    if span.sticky {
        notes.push_str(" 粘包");
    }
    let parts = parts_label(&span.parts, labels);
    if !parts.is_empty() {
        let _ = write!(notes, " {parts}");
    }
    format!("{left}{}{right} {notes}", " ".repeat(GAP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_counts_double() {
        assert_eq!(width("你好,a"), 6);
        assert_eq!(width(&fit("你好你好你好", 7)), 7);
    }
}
