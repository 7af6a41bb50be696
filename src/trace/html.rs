//! The trace as a picture: inline SVG sequence diagrams in one
//! self-contained HTML page.
//!
//! Each write is an arrow from its writer's lifeline, drawn to every read
//! that received its bytes, so 分包 fans out (one write, several reads) and
//! 粘包 fans in (several writes, one read); both are also named in red and
//! purple badges. Frame traffic is coloured by part: the 4-byte length in
//! orange, the JSON header in blue, the body in green; raw bytes are grey.
//!
//! Nothing is fetched from elsewhere: no scripts, no web fonts, no external
//! style sheets or images. The page is well-formed XML (polyglot XHTML), so
//! it can be checked with any XML parser.
//!
//! ```
//! use socketserver::trace::{Op, Side, Trace, html};
//! let trace = Trace::new("hello + world");
//! trace.record(Side::Client, Op::Write, b"hello");
//! trace.record(Side::Client, Op::Write, b"world");
//! trace.record(Side::Server, Op::Read, b"helloworld");
//! let page = html::page("The wire", "en", &[html::Section::new(&trace, "粘包")]);
//! assert!(page.contains("<svg") && page.contains("粘包"));
//! assert!(!page.contains("<script"));
//! ```

use std::fmt::Write as _;

use super::text::parts_label;
use super::{Event, Labels, Op, Part, Side, Trace, escape};

/// The most calls one diagram draws; the rest are counted below it.
pub const MAX_ROWS: usize = 80;

const WIDTH: usize = 1300;
const LEFT: usize = 470;
const RIGHT: usize = 830;
/// Characters of each call's preview drawn (the text diagram shows more).
const PREVIEW_CHARS: usize = 12;
const TOP: usize = 74;
const ROW: usize = 26;
/// Approximate advance of one column of 12 px monospace text.
const CHAR_PX: f64 = 7.3;

/// The colour of each frame part, and of raw bytes.
pub fn colour(part: Option<Part>) -> &'static str {
    match part {
        Some(Part::Length) => "#e67e22",
        Some(Part::Header) => "#2e86c1",
        Some(Part::Body) => "#27ae60",
        None => "#7f8c8d",
    }
}

const STICKY: &str = "#c0392b";
const SPLIT: &str = "#8e44ad";
/// A frame read in its parts, each whole: one message, not 分包.
const PARTS: &str = "#2e7d32";

/// Fonts with Chinese in them, tried in order before the generic family:
/// a machine without any CJK font draws every 粘包 and 分包 as empty boxes,
/// and `sans-serif` alone does not ask for one.
const CJK_FONTS: &str = "'Noto Sans CJK SC', 'Noto Sans SC', 'Source Han Sans SC', 'Source Han Sans CN', 'PingFang SC', 'Microsoft YaHei', 'WenQuanYi Micro Hei', 'WenQuanYi Zen Hei', sans-serif";

/// A call's preview, quoted, cut to [`PREVIEW_CHARS`] characters.
fn preview(event: &Event) -> String {
    let text = escape(&event.head);
    let mut chars = text.chars();
    let shown: String = chars.by_ref().take(PREVIEW_CHARS).collect();
    let more = chars.next().is_some() || event.len > event.head.len();
    format!("\"{shown}{}\"", if more { "…" } else { "" })
}

/// Escapes text for XML content and attribute values.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Estimated pixel width of monospace text (CJK characters are double).
fn text_px(s: &str) -> f64 {
    s.chars()
        .map(|c| if (c as u32) >= 0x2E80 { 2.0 } else { 1.0 })
        .sum::<f64>()
        * CHAR_PX
}

fn lifeline_x(side: Side) -> usize {
    match side {
        Side::Client => LEFT,
        Side::Server => RIGHT,
    }
}

/// A badge: a rounded rectangle with white text, starting at `x`.
fn badge(out: &mut String, x: f64, y: usize, text: &str, fill: &str, class: &str) -> f64 {
    let w = text_px(text) + 10.0;
    let _ = write!(
        out,
        r##"<g class="{class}"><rect x="{x:.1}" y="{}" width="{w:.1}" height="17" rx="4" fill="{fill}"/><text x="{:.1}" y="{}" fill="#fff">{}</text></g>"##,
        y - 13,
        x + 5.0,
        y,
        xml(text)
    );
    w
}

/// A bar of frame parts, `px` wide in all, starting at `x`.
fn parts_bar(out: &mut String, x: f64, y: usize, parts: &[(Part, u64)]) -> f64 {
    if parts.is_empty() {
        return 0.0;
    }
    let _ = write!(out, r#"<g class="parts">"#);
    let mut at = x;
    for &(part, n) in parts {
        // Lengths span from 4 bytes to megabytes: a log scale keeps every
        // part visible and the large ones larger.
        let w = 6.0 + (n as f64).log2().max(0.0) * 2.0;
        let _ = write!(
            out,
            r#"<rect class="part-{part}" x="{at:.1}" y="{}" width="{w:.1}" height="9" fill="{}"><title>{part}: {n} B</title></rect>"#,
            y - 8,
            colour(Some(part))
        );
        at += w;
    }
    out.push_str("</g>");
    at - x
}

/// One conversation as a standalone SVG document (with its XML namespace),
/// to embed in a page or save as a `.svg` file.
///
/// ```
/// use socketserver::trace::{Op, Side, Trace, html};
/// let trace = Trace::new("分包");
/// trace.record(Side::Client, Op::Write, b"helloworld");
/// trace.record(Side::Server, Op::Read, b"hello");
/// trace.record(Side::Server, Op::Read, b"world");
/// let svg = html::svg(&trace);
/// assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
/// assert_eq!(svg.matches("class=\"arrow\"").count(), 2); // one write, two reads
/// ```
pub fn svg(trace: &Trace) -> String {
    svg_in(trace, &Labels::EN)
}

/// [`svg`], in the words of `labels`.
///
/// ```
/// use socketserver::trace::{Labels, Op, Side, Trace, html};
/// let trace = Trace::new("一次写");
/// trace.record(Side::Client, Op::Write, b"hi");
/// assert!(html::svg_in(&trace, &Labels::ZH).contains("客户端"));
/// ```
pub fn svg_in(trace: &Trace, labels: &Labels) -> String {
    let events = trace.events();
    let arrows = trace.arrows();
    let reads = trace.reads();
    let shown = events.len().min(MAX_ROWS);
    let more = events.len() - shown + trace.dropped() as usize;
    // Room under the rows for the "more calls" line and the summary.
    let height = TOP + shown * ROW + if more > 0 { 60 } else { 40 };
    let row_y = |i: usize| TOP + i * ROW + ROW / 2;

    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="trace" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="monospace, {CJK_FONTS}" font-size="12">"#
    );
    let _ = write!(
        out,
        r##"<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs><rect width="{WIDTH}" height="{height}" fill="#fdfdfd"/><text class="title" x="{}" y="20" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"##,
        WIDTH / 2,
        xml(trace.title())
    );
    // The legend: what the colours mean.
    let mut x = 20.0;
    for (part, name) in [
        Some(Part::Length),
        Some(Part::Header),
        Some(Part::Body),
        None,
    ]
    .into_iter()
    .zip(labels.legend)
    {
        let _ = write!(
            out,
            r#"<rect x="{x:.1}" y="30" width="12" height="10" fill="{}"/><text x="{:.1}" y="39">{name}</text>"#,
            colour(part),
            x + 16.0
        );
        x += 16.0 + text_px(name) + 18.0;
    }
    x += badge(&mut out, x, 40, labels.sticky, STICKY, "legend") + 8.0;
    badge(&mut out, x, 40, labels.split, SPLIT, "legend");

    // The lifelines.
    for side in [Side::Client, Side::Server] {
        let lx = lifeline_x(side);
        let _ = write!(
            out,
            r##"<text class="lifeline-name" x="{lx}" y="{}" text-anchor="middle" font-weight="bold">{}</text><line class="lifeline" x1="{lx}" y1="{}" x2="{lx}" y2="{}" stroke="#555" stroke-dasharray="4 3"/>"##,
            TOP - 6,
            labels.side(side),
            TOP,
            TOP + shown * ROW
        );
    }

    // Arrows first, so the labels are drawn over them.
    for arrow in &arrows {
        if arrow.write >= shown {
            continue;
        }
        let w = &events[arrow.write];
        let from = lifeline_x(w.side) as f64;
        let to = lifeline_x(w.side.peer()) as f64;
        let stroke = colour(arrow.parts.first().map(|&(p, _)| p));
        let y1 = row_y(arrow.write);
        if arrow.reads.is_empty() {
            // Not read (yet): a short stub towards the peer.
            let x2 = from + (to - from) * 0.15;
            let _ = write!(
                out,
                r#"<line class="unread" x1="{from}" y1="{y1}" x2="{x2:.1}" y2="{y1}" stroke="{stroke}" stroke-width="2"/>"#
            );
        }
        // Reads below the last row drawn are counted there, not drawn.
        for &r in arrow.reads.iter().filter(|&&r| r < shown) {
            let y2 = row_y(r);
            let _ = write!(
                out,
                r#"<line class="arrow" x1="{from}" y1="{y1}" x2="{to}" y2="{y2}" stroke="{stroke}" stroke-width="1.6" marker-end="url(#head)"/>"#
            );
        }
    }

    for (i, event) in events.iter().enumerate().take(shown) {
        let y = row_y(i);
        let lx = lifeline_x(event.side) as f64;
        let _ = write!(
            out,
            r##"<text class="time" x="8" y="{}" fill="#888">{:.1} ms</text>"##,
            y + 4,
            event.at.as_secs_f64() * 1000.0
        );
        match event.op {
            Op::Write => {
                let Some(arrow) = arrows.iter().find(|a| a.write == i) else {
                    continue;
                };
                let label = format!(
                    "#{} {} {} B {}",
                    arrow.number,
                    labels.write,
                    event.len,
                    preview(event)
                );
                let px = text_px(&label);
                // Labels sit outside the lifelines, next to the writer.
                let (tx, anchor) = match event.side {
                    Side::Client => (lx - 8.0, "end"),
                    Side::Server => (lx + 8.0, "start"),
                };
                let _ = write!(
                    out,
                    r#"<circle cx="{lx}" cy="{y}" r="3.5" fill="{}"/><text class="write" x="{tx}" y="{}" text-anchor="{anchor}">{}</text>"#,
                    colour(arrow.parts.first().map(|&(p, _)| p)),
                    y + 4,
                    xml(&label)
                );
                let after = match event.side {
                    Side::Client => tx - px - 8.0,
                    Side::Server => tx + px + 8.0,
                };
                decorate(&mut out, event.side, after, |out, x| {
                    let mut w = parts_bar(out, x, y + 4, &arrow.parts);
                    if arrow.split {
                        let text = format!("分包 ×{}", arrow.pieces);
                        w += 4.0 + badge(out, x + w + 4.0, y + 4, &text, SPLIT, "split");
                    } else if arrow.reads.len() > 1 {
                        // A frame read in its parts, each whole: one
                        // message, not 分包.
                        let text = format!(
                            "{} {} {}",
                            labels.one_message,
                            arrow.reads.len(),
                            labels.parts_word
                        );
                        w += 4.0 + badge(out, x + w + 4.0, y + 4, &text, PARTS, "in-parts");
                    }
                    w
                });
            }
            Op::Read => {
                let Some(span) = reads.iter().find(|r| r.read == i) else {
                    continue;
                };
                let label = if event.len == 0 {
                    format!("{} 0 B: {}", labels.read, labels.end_of_stream)
                } else {
                    let numbers: Vec<String> =
                        span.writes.iter().map(|n| format!("#{n}")).collect();
                    format!(
                        "{} {} B {} ← {}",
                        labels.read,
                        event.len,
                        preview(event),
                        numbers.join(" ")
                    )
                };
                let px = text_px(&label);
                let (tx, anchor) = match event.side {
                    Side::Client => (lx - 8.0, "end"),
                    Side::Server => (lx + 8.0, "start"),
                };
                let _ = write!(
                    out,
                    r##"<g class="read-event"><title>{}</title><rect x="{:.1}" y="{}" width="7" height="7" fill="#333"/><text class="read" x="{tx}" y="{}" text-anchor="{anchor}" fill="#333">{}</text></g>"##,
                    xml(&parts_label(&span.parts, labels)),
                    lx - 3.5,
                    y - 3,
                    y + 4,
                    xml(&label)
                );
                let after = match event.side {
                    Side::Client => tx - px - 8.0,
                    Side::Server => tx + px + 8.0,
                };
                decorate(&mut out, event.side, after, |out, x| {
                    let mut w = parts_bar(out, x, y + 4, &span.parts);
                    if span.sticky {
                        w += 4.0 + badge(out, x + w + 4.0, y + 4, "粘包", STICKY, "sticky");
                    }
                    w
                });
            }
        }
    }
    if more > 0 {
        let _ = write!(
            out,
            r##"<text class="more" x="{}" y="{}" text-anchor="middle" fill="#888">… {more} {}</text>"##,
            WIDTH / 2,
            TOP + shown * ROW + 24,
            labels.not_drawn
        );
    }
    let messages = trace.messages();
    let _ = write!(
        out,
        r##"<text class="summary" x="20" y="{}" fill="#333">{}: {} {}, {} {}</text>"##,
        height - 12,
        labels.messages,
        messages.whole,
        labels.whole,
        messages.split,
        labels.split_by_network
    );
    out.push_str("</svg>");
    out
}

/// Draws decorations (a parts bar, badges) beside a label: to its right on
/// the server's side, to its left on the client's. `draw` gets a starting
/// x and returns the width it used; on the client's side it is drawn once
/// to measure and once in place, so both sides read left to right.
fn decorate(out: &mut String, side: Side, edge: f64, draw: impl Fn(&mut String, f64) -> f64) {
    match side {
        Side::Server => {
            draw(out, edge);
        }
        Side::Client => {
            let width = draw(&mut String::new(), 0.0);
            draw(out, (edge - width).max(2.0));
        }
    }
}

/// One conversation on a page: its diagram under a heading and a note.
#[derive(Debug, Clone)]
pub struct Section<'a> {
    /// The recorded conversation.
    pub trace: &'a Trace,
    /// The heading above it.
    pub heading: String,
    /// A sentence or two saying what to look for.
    pub note: String,
}

impl<'a> Section<'a> {
    /// A section headed by the trace's title, with `note` under it.
    pub fn new(trace: &'a Trace, note: impl Into<String>) -> Section<'a> {
        Section {
            trace,
            heading: trace.title().to_string(),
            note: note.into(),
        }
    }
}

/// A self-contained HTML page, in language `lang` (`"zh"`, `"en"`: the
/// diagrams' words follow it, see [`Labels::for_lang`]), with one diagram
/// per section. See the [module docs](self) for an example.
pub fn page(title: &str, lang: &str, sections: &[Section<'_>]) -> String {
    let labels = Labels::for_lang(lang);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" lang="{}">
<head>
<meta charset="utf-8"/>
<title>{}</title>
<style>
body {{ font-family: {CJK_FONTS}; margin: 2em auto; max-width: 1340px; color: #222; }}
section {{ margin-bottom: 2.5em; }}
p.note {{ max-width: 60em; line-height: 1.5; }}
svg.trace {{ border: 1px solid #ddd; max-width: 100%; height: auto; }}
</style>
</head>
<body>
<h1>{}</h1>
<p class="note">{}</p>
"#,
        xml(lang),
        xml(title),
        xml(title),
        xml(labels.how_to_read)
    );
    for section in sections {
        let _ = write!(
            out,
            "<section>\n<h2>{}</h2>\n<p class=\"note\">{}</p>\n{}\n</section>\n",
            xml(&section.heading),
            xml(&section.note),
            svg_in(section.trace, &labels)
        );
    }
    out.push_str("</body>\n</html>\n");
    out
}
