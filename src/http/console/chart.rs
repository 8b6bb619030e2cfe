//! Bar charts as inline SVG, drawn on the server: no script, nothing
//! fetched. Each bar carries a `<title>` with its label and value, and the
//! chart an `aria-label` with its total, so the numbers read without the
//! picture.

use std::fmt::Write as _;

use super::page::text;

/// Width and height of the drawing, in its own units.
const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 140.0;
/// Room under the bars for the first and last labels.
const AXIS: f64 = 14.0;

/// A bar chart of `bars` (label, value), oldest first, called `name`.
#[must_use]
pub fn bars(name: &str, bars: &[(String, u64)]) -> String {
    let total: u64 = bars.iter().map(|(_, value)| value).sum();
    let highest = bars
        .iter()
        .map(|(_, value)| *value)
        .max()
        .unwrap_or(0)
        .max(1);
    #[allow(clippy::cast_precision_loss)] // bar counts and values far below 2^52
    let (step, scale) = (
        WIDTH / bars.len().max(1) as f64,
        (HEIGHT - AXIS - 12.0) / highest as f64,
    );
    let mut svg = format!(
        "<figure><figcaption>{name}: <strong data-total=\"{total}\">{total}</strong></figcaption>\
         <svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{name}: {total} in all, \
         at most {highest} in one bar\">",
        name = text(name),
    );
    for (index, (label, value)) in bars.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let (x, height) = (index as f64 * step, *value as f64 * scale);
        let y = HEIGHT - AXIS - height;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{height:.1}\" \
             data-value=\"{value}\"><title>{label}: {value}</title></rect>",
            w = (step - 1.0).max(0.5),
            label = text(label),
        );
    }
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"{bottom}\">{first}</text>\
         <text x=\"{WIDTH}\" y=\"{bottom}\" text-anchor=\"end\">{last}</text>\
         <text x=\"0\" y=\"10\">{highest}</text></svg></figure>",
        bottom = HEIGHT - 2.0,
        first = text(bars.first().map_or("", |(label, _)| label)),
        last = text(bars.last().map_or("", |(label, _)| label)),
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_a_bar_per_value_and_its_total_and_escapes_its_labels() {
        let svg = bars(
            "Registrations <b>",
            &[("a<".into(), 2), ("b".into(), 0), ("c".into(), 5)],
        );
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("data-total=\"7\""), "{svg}");
        assert!(svg.contains("Registrations &lt;b&gt;"), "{svg}");
        assert!(svg.contains("<title>a&lt;: 2</title>"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
    }
}
