//! The report's SVG bar charts: grouped bars with axes, ticks, a value over each bar, a
//! legend, patterns so that series read without colour, and the numbers as a table.

use std::fmt::Write as _;

use super::{esc, num};

/// How a series is drawn: colour plus a pattern, so it reads without colour too.
#[derive(Clone, Copy)]
pub(super) enum Style {
    Solid(&'static str),
    Hatched(&'static str),
    Dotted(&'static str),
}

impl Style {
    pub(super) fn defs(self, id: &str) -> String {
        match self {
            Style::Solid(_) => String::new(),
            Style::Hatched(c) => format!(
                r##"<pattern id="{id}" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="{c}"/><line x1="0" y1="0" x2="0" y2="6" stroke="#fff" stroke-width="2.2"/></pattern>"##
            ),
            Style::Dotted(c) => format!(
                r##"<pattern id="{id}" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="{c}"/><circle cx="3" cy="3" r="1.3" fill="#fff"/></pattern>"##
            ),
        }
    }
    pub(super) fn fill(self, id: &str) -> String {
        match self {
            Style::Solid(c) => c.to_string(),
            _ => format!("url(#{id})"),
        }
    }
}

pub(super) struct Series<'a> {
    pub(super) name: &'a str,
    pub(super) style: Style,
    /// (value, data-metric path)
    pub(super) values: Vec<(u64, String)>,
}

/// A round axis maximum ≥ `max` (1, 2, 5 × 10^k) and a tick step.
pub(super) fn nice_axis(max: u64) -> (u64, u64) {
    let max = max.max(1);
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let s = step * m;
            if max.div_ceil(s) <= 5 {
                return (max.div_ceil(s) * s, s);
            }
        }
        step *= 10;
    }
}

pub(super) fn legend(chart_id: &str, series: &[Series<'_>]) -> String {
    let mut o = String::from(r#"<div class="legend">"#);
    for (i, s) in series.iter().enumerate() {
        let pid = format!("{chart_id}-lg{i}");
        let _ = write!(
            o,
            r##"<span><svg width="14" height="14" aria-hidden="true"><defs>{}</defs><rect width="14" height="14" rx="2" fill="{}" stroke="#333" stroke-width="0.5"/></svg>{}</span>"##,
            s.style.defs(&pid),
            s.style.fill(&pid),
            esc(s.name)
        );
    }
    o.push_str("</div>");
    o
}

/// A grouped vertical bar chart with axes, ticks, labels and a value over each bar.
pub(super) fn bar_chart(
    id: &str,
    title: &str,
    desc: &str,
    x_label: &str,
    y_label: &str,
    cats: &[String],
    series: &[Series<'_>],
) -> String {
    let (w, h) = (560.0, 270.0);
    // Many categories: slant their labels so they do not run into each other.
    let slant = cats.len() > 8;
    let (left, right, top, bottom) = (52.0, 12.0, 14.0, if slant { 72.0 } else { 58.0 });
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let max = series.iter().flat_map(|s| s.values.iter().map(|v| v.0)).max().unwrap_or(0);
    let (axis_max, step) = nice_axis(max);
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg class="chart" id="{id}" viewBox="0 0 {w} {h}" role="img" aria-labelledby="{id}-t {id}-d"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc><defs>"#,
        esc(title),
        esc(desc)
    );
    for (i, s) in series.iter().enumerate() {
        o.push_str(&s.style.defs(&format!("{id}-p{i}")));
    }
    o.push_str("</defs>");
    let y = |v: f64| top + plot_h - plot_h * v / axis_max as f64;
    let mut t = 0;
    while t <= axis_max {
        let yy = y(t as f64);
        let _ = write!(
            o,
            r#"<line class="grid" x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{t}</text>"#,
            w - right,
            left - 6.0,
            yy + 4.0
        );
        t += step;
    }
    let n = cats.len().max(1) as f64;
    let group_w = plot_w / n;
    let bar_w = (group_w * if cats.len() > 20 { 0.9 } else { 0.8 } / series.len().max(1) as f64).min(40.0);
    let gap = (bar_w * 0.15).min(2.0);
    let label_every = (cats.len() / 14).max(1);
    for (ci, cat) in cats.iter().enumerate() {
        let gx = left + group_w * ci as f64 + (group_w - bar_w * series.len() as f64) / 2.0;
        for (si, s) in series.iter().enumerate() {
            let (v, metric) = &s.values[ci];
            let x = gx + bar_w * si as f64;
            let yy = y(*v as f64);
            let _ = write!(
                o,
                r##"<rect x="{x:.1}" y="{yy:.1}" width="{:.1}" height="{:.1}" fill="{}" stroke="#333" stroke-width="0.4"><title>{}: {} {v}</title></rect>"##,
                (bar_w - gap).max(0.5),
                (top + plot_h - yy).max(0.0),
                s.style.fill(&format!("{id}-p{si}")),
                esc(cat),
                esc(s.name)
            );
            if bar_w >= 9.0 {
                let _ = write!(
                    o,
                    r#"<text class="val" x="{:.1}" y="{:.1}" text-anchor="middle" data-metric="{}" data-value="{v}">{v}</text>"#,
                    x + (bar_w - gap) / 2.0,
                    yy - 3.0,
                    esc(metric)
                );
            }
        }
        if ci % label_every == 0 {
            let (x, y) = (left + group_w * (ci as f64 + 0.5), top + plot_h + 16.0);
            if slant {
                let _ = write!(
                    o,
                    r#"<text class="tick x" x="{:.1}" y="{y:.1}" text-anchor="end" transform="rotate(-35 {x:.1} {y:.1})">{}</text>"#,
                    x + 4.0,
                    esc(cat)
                );
            } else {
                let _ =
                    write!(o, r#"<text class="tick x" x="{x:.1}" y="{y:.1}" text-anchor="middle">{}</text>"#, esc(cat));
            }
        }
    }
    let _ = write!(
        o,
        r#"<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{}"/><line class="axis" x1="{left}" x2="{}" y1="{}" y2="{}"/>"#,
        top + plot_h,
        w - right,
        top + plot_h,
        top + plot_h
    );
    let _ = write!(
        o,
        r#"<text class="axis-label" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><text class="axis-label" transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">{}</text></svg>"#,
        left + plot_w / 2.0,
        h - 12.0,
        esc(x_label),
        top + plot_h / 2.0,
        esc(y_label)
    );
    o.push_str(&data_table(x_label, cats, series));
    o
}

/// The numbers behind the bars, for screen readers, narrow bars and anyone who prefers a table.
fn data_table(x_label: &str, cats: &[String], series: &[Series<'_>]) -> String {
    let mut o = String::new();
    let _ =
        write!(o, r#"<details class="data"><summary>Data</summary><table class="facts"><tr><th>{}</th>"#, esc(x_label));
    for s in series {
        let _ = write!(o, r#"<th class="n">{}</th>"#, esc(s.name));
    }
    o.push_str("</tr>");
    for (ci, cat) in cats.iter().enumerate() {
        let _ = write!(o, "<tr><td>{}</td>", esc(cat));
        for s in series {
            let (v, metric) = &s.values[ci];
            let _ = write!(o, r#"<td class="n">{}</td>"#, num(metric, &v.to_string(), &v.to_string()));
        }
        o.push_str("</tr>");
    }
    o.push_str("</table></details>");
    o
}
