//! SVG plots of an experiment's metrics (`plotters`, SVG backend only, so no
//! font or system library is needed: text sizes are estimated, and the viewer
//! picks the font).
//!
//! The x-axis is categorical: one tick per grid value, in the file's order, so
//! that lifetimes 1, 2, 4 … 30 s spread evenly and strings work too. Each
//! series is a line with points; a point's interval (a Wilson CI, or the
//! quartiles over seeds) is a vertical error bar. Series are nudged sideways a
//! little so that their bars do not hide each other.

use plotters::prelude::*;

use crate::experiment::{PlotData, TradeoffData};

const COLOURS: &[RGBColor] = &[
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
];

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The plot as SVG text.
pub fn svg(data: &PlotData) -> String {
    let mut text = String::new();
    draw(data, &mut text).expect("drawing into a string cannot fail");
    text
}

fn draw(data: &PlotData, text: &mut String) -> Result<(), String> {
    let scale = if data.percent { 100.0 } else { 1.0 };
    let n = data.x_values.len();
    let y_top = data
        .series
        .iter()
        .flat_map(|(_, points)| points.iter().flatten())
        .map(|p| p.hi.unwrap_or(p.y).max(p.y) * scale)
        .fold(0.0f64, f64::max);
    let y_top = if data.percent { 100.0f64.min(y_top * 1.1).max(5.0) } else { (y_top * 1.1).max(1.0) };
    let root = SVGBackend::with_string(text, (880, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&data.title, ("sans-serif", 17))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..y_top)
        .map_err(err)?;
    let labels = data.x_values.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        // At most one key point per grid value; the formatter names the whole ones.
        .x_labels(n)
        .x_desc(&data.x_label)
        .y_desc(&data.y_label)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-9 && i >= 0.0 && (i as usize) < labels.len() {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        })
        .draw()
        .map_err(err)?;
    let count = data.series.len() as f64;
    for (s, (name, points)) in data.series.iter().enumerate() {
        let colour = COLOURS[s % COLOURS.len()];
        let nudge = if count > 1.0 { (s as f64 - (count - 1.0) / 2.0) * 0.25 / count } else { 0.0 };
        let line: Vec<(f64, f64)> =
            points.iter().enumerate().filter_map(|(i, p)| p.map(|p| (i as f64 + nudge, p.y * scale))).collect();
        chart
            .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
        chart.draw_series(line.iter().map(|&(x, y)| Circle::new((x, y), 4, colour.filled()))).map_err(err)?;
        chart
            .draw_series(points.iter().enumerate().filter_map(|(i, p)| {
                let p = (*p)?;
                let (lo, hi) = (p.lo?, p.hi?);
                Some(ErrorBar::new_vertical(i as f64 + nudge, lo * scale, p.y * scale, hi * scale, colour, 8))
            }))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// A rate-against-cost scatter as SVG text: a point per cell with its
/// interval, named beside it.
pub fn scatter_svg(data: &TradeoffData) -> String {
    let mut text = String::new();
    draw_scatter(data, &mut text).expect("drawing into a string cannot fail");
    text
}

fn draw_scatter(data: &TradeoffData, text: &mut String) -> Result<(), String> {
    let x_max = data.points.iter().map(|(_, x, _)| *x).fold(0.0f64, f64::max);
    let x_top = (x_max * 1.25).max(1.0);
    let y_top = data.points.iter().map(|(_, _, p)| p.hi.unwrap_or(p.y).max(p.y) * 100.0).fold(5.0f64, f64::max);
    let y_top = (y_top * 1.1).min(100.0);
    let root = SVGBackend::with_string(text, (880, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&data.title, ("sans-serif", 15))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_top, 0f64..y_top)
        .map_err(err)?;
    chart.configure_mesh().x_desc(&data.x_label).y_desc(&data.y_label).draw().map_err(err)?;
    for (i, (label, x, p)) in data.points.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let y = p.y * 100.0;
        if let (Some(lo), Some(hi)) = (p.lo, p.hi) {
            chart
                .draw_series(std::iter::once(ErrorBar::new_vertical(*x, lo * 100.0, y, hi * 100.0, colour, 8)))
                .map_err(err)?;
        }
        chart.draw_series(std::iter::once(Circle::new((*x, y), 4, colour.filled()))).map_err(err)?;
        // Points that fall together (or whose names would run into each other) get
        // their names stacked, not overprinted.
        let near = data.points[..i]
            .iter()
            .filter(|(_, x2, p2)| (x2 - x).abs() < x_top * 0.25 && (p2.y * 100.0 - y).abs() < y_top * 0.04)
            .count() as i32;
        let style = ("sans-serif", 11).into_font().color(&colour);
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((*x, y)) + Text::new(label.clone(), (6, -14 - 13 * near), style),
            ))
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}
