//! Charts drawn on the server as SVG: no script, no library, readable by
//! a screen reader (a title and a description of what is drawn) and
//! printable. Every text that reaches the markup is escaped here.

use std::fmt::Write as _;

/// One line of a chart.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub name: String,
    /// A CSS class giving the line its colour (`s1` … `s6`).
    pub class: &'static str,
    pub values: Vec<f64>,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 40.0;

fn escape(s: &str) -> String {
    herald_message::escape_html(s)
}

/// A round top for the y axis: 1, 2 or 5 times a power of ten.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    for step in [1.0, 2.0, 5.0, 10.0] {
        if max <= step * magnitude {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

fn axis_label(v: f64, percent: bool) -> String {
    if percent {
        return format!("{:.1}%", v * 100.0);
    }
    if v >= 1_000_000.0 {
        format!("{:.1}M", v / 1_000_000.0)
    } else if v >= 1_000.0 {
        format!("{:.1}k", v / 1_000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A line chart of `series` over `labels` (one label per point; a few are
/// written under the axis). `percent` writes the y axis as percentages of
/// values between 0 and 1.
pub(crate) fn lines(title: &str, labels: &[String], series: &[Series], percent: bool) -> String {
    let points = labels.len();
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0f64, f64::max);
    let top = nice_max(max);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |i: usize| {
        if points <= 1 {
            LEFT + plot_w / 2.0
        } else {
            #[allow(clippy::cast_precision_loss)]
            let f = i as f64 / (points - 1) as f64;
            LEFT + f * plot_w
        }
    };
    let y = |v: f64| TOP + plot_h - (v / top).clamp(0.0, 1.0) * plot_h;
    let mut summary = Vec::new();
    for s in series {
        let total: f64 = s.values.iter().sum();
        let peak = s.values.iter().copied().fold(0.0f64, f64::max);
        summary.push(if percent {
            format!("{}: peak {}", s.name, axis_label(peak, true))
        } else {
            format!(
                "{}: {} in all, peak {}",
                s.name,
                axis_label(total, false),
                axis_label(peak, false)
            )
        });
    }
    let id = format!("c{:x}", fxhash(title));
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id}t {id}d"><title id="{id}t">{}</title><desc id="{id}d">{}</desc>"#,
        escape(title),
        escape(&summary.join("; "))
    );
    // Grid and y axis: 0, ¼, ½, ¾ and the top.
    for step in 0..=4 {
        let v = top * f64::from(step) / 4.0;
        let gy = y(v);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{gy:.1}" y2="{gy:.1}"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            gy + 4.0,
            escape(&axis_label(v, percent))
        );
    }
    // At most 6 labels under the x axis.
    if points > 0 {
        let every = points.div_ceil(6).max(1);
        for (i, label) in labels.iter().enumerate() {
            if (i % every == 0 && (points - 1 - i) * 2 >= every) || i == points - 1 {
                // The ends are anchored inwards, so no label is cut.
                let anchor = if points == 1 {
                    "middle"
                } else if i == 0 {
                    "start"
                } else if i == points - 1 {
                    "end"
                } else {
                    "middle"
                };
                let _ = write!(
                    svg,
                    r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
                    x(i),
                    HEIGHT - BOTTOM + 16.0,
                    escape(label)
                );
            }
        }
    }
    for s in series {
        let mut path = String::new();
        for (i, v) in s.values.iter().enumerate().take(points) {
            let _ = write!(path, "{}{:.1},{:.1}", if i == 0 { "" } else { " " }, x(i), y(*v));
        }
        let _ = write!(
            svg,
            r#"<polyline class="line {}" points="{path}"><title>{}</title></polyline>"#,
            s.class,
            escape(&s.name)
        );
    }
    svg.push_str("</svg>");
    // The legend in HTML, so it wraps on a phone.
    svg.push_str(r#"<ul class="legend">"#);
    for s in series {
        let _ = write!(
            svg,
            r#"<li><span class="swatch {}"></span>{}</li>"#,
            s.class,
            escape(&s.name)
        );
    }
    svg.push_str("</ul>");
    svg
}

/// A small stable hash for element ids.
fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        let svg = lines(
            "<script>",
            &["a&b".to_owned()],
            &[Series {
                name: "\"x\"".to_owned(),
                class: "s1",
                values: vec![1.0],
            }],
            false,
        );
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("a&amp;b"));
        assert!(svg.contains("&quot;x&quot;"));
    }

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(120.0), 200.0);
        assert_eq!(nice_max(0.03), 0.05);
    }

    #[test]
    fn points_stay_inside_the_plot() {
        let svg = lines(
            "t",
            &(0..3).map(|i| i.to_string()).collect::<Vec<_>>(),
            &[Series {
                name: "n".to_owned(),
                class: "s1",
                values: vec![0.0, 50.0, 100.0],
            }],
            false,
        );
        // 100 is the top: drawn at the plot's top edge, 0 at its bottom.
        assert!(svg.contains(&format!("{LEFT:.1},{:.1}", HEIGHT - BOTTOM)));
        assert!(svg.contains(&format!("{:.1},{TOP:.1}", WIDTH - RIGHT)));
    }
}
