//! Charts for the print pages, as inline SVG: bars over the 24 hours of a day, side by side
//! or stacked. Text is escaped; nothing from outside reaches the markup unescaped.

/// One series of a chart: its name, colour and a value per hour (0–23).
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    pub values: [f64; 24],
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 20.0;

/// Bars per hour of the day; `stacked` piles the series up, else they stand side by side.
/// `max`: the top of the scale (none: the largest bar).
pub fn hourly_bars(title: &str, series: &[Series<'_>], stacked: bool, max: Option<f64>) -> String {
    let top = max.unwrap_or_else(|| {
        (0..24)
            .map(|h| {
                let values = series.iter().map(|s| s.values[h]);
                if stacked {
                    values.sum::<f64>()
                } else {
                    values.fold(0.0, f64::max)
                }
            })
            .fold(0.0, f64::max)
    });
    let top = if top > 0.0 { top } else { 1.0 };
    let plot = HEIGHT - BOTTOM - 10.0;
    let slot = (WIDTH - LEFT) / 24.0;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" font-size=\"10\">",
        escape(title)
    );
    svg.push_str(&format!(
        "<text x=\"0\" y=\"18\">{}</text><text x=\"0\" y=\"{}\">0</text>",
        format_value(top),
        HEIGHT - BOTTOM
    ));
    for h in 0..24 {
        let x0 = LEFT + h as f64 * slot;
        let mut y = HEIGHT - BOTTOM;
        let width = if stacked {
            slot - 4.0
        } else {
            (slot - 4.0) / series.len().max(1) as f64
        };
        for (i, s) in series.iter().enumerate() {
            let height = s.values[h] / top * plot;
            let x = if stacked { x0 } else { x0 + i as f64 * width };
            let top_y = if stacked {
                y - height
            } else {
                HEIGHT - BOTTOM - height
            };
            if height > 0.0 {
                svg.push_str(&format!(
                    "<rect x=\"{x:.1}\" y=\"{top_y:.1}\" width=\"{width:.1}\" height=\"{height:.1}\" fill=\"{}\"><title>{} {h:02}:00 — {}</title></rect>",
                    s.colour,
                    escape(s.name),
                    format_value(s.values[h])
                ));
            }
            if stacked {
                y = top_y;
            }
        }
        if h % 3 == 0 {
            svg.push_str(&format!(
                "<text x=\"{x0:.1}\" y=\"{}\">{h:02}</text>",
                HEIGHT - 5.0
            ));
        }
    }
    svg.push_str("</svg><p>");
    for s in series {
        svg.push_str(&format!(
            "<span style=\"color:{}\">■</span> {} ",
            s.colour,
            escape(s.name)
        ));
    }
    svg.push_str("</p></figure>");
    svg
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() < 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_names_are_escaped() {
        let mut values = [0.0; 24];
        values[10] = 4.0;
        values[11] = 2.0;
        let svg = hourly_bars(
            "<Calls>",
            &[Series {
                name: "a&b",
                colour: "#36c",
                values,
            }],
            false,
            None,
        );
        assert!(
            svg.contains("&lt;Calls&gt;") && svg.contains("a&amp;b"),
            "{svg}"
        );
        assert_eq!(svg.matches("<rect").count(), 2);
        // The tallest bar fills the plot; the other is half as tall.
        assert!(
            svg.contains("height=\"150.0\"") && svg.contains("height=\"75.0\""),
            "{svg}"
        );
    }
}
