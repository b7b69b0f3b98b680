//! The fork tree as an SVG picture (`powchain tree --svg`, `powchain
//! testnet --svg`), drawn with plotters: blocks left to right by height,
//! the best chain on the top row, every stale, invalid and orphan block on
//! the rows below, hidden runs as one grey box, each node's name beside
//! its tip.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{layout, MergedTree};
use crate::consensus::BlockHash;

const COL_W: i32 = 96;
const ROW_H: i32 = 56;
const BOX_W: i32 = 78;
const BOX_H: i32 = 30;
const MARGIN: i32 = 24;

/// The fork tree could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing the fork tree: {0}")]
pub struct SvgError(#[from] DrawingAreaErrorKind<std::io::Error>);

/// Renders `tree` as an SVG document.
///
/// # Errors
/// [`SvgError`] when plotters fails to draw.
pub fn render(tree: &MergedTree) -> Result<String, SvgError> {
    let l = layout(tree);
    let places = &l.blocks;
    // Column and row of each drawn block, by hash (edges, tip labels).
    let pos: std::collections::HashMap<BlockHash, (u32, u32)> = places
        .iter()
        .map(|&(i, c, r)| (tree.blocks[i].block.hash, (c, r)))
        .collect();
    let hidden_cols: Vec<(u32, String)> = tree
        .hidden
        .iter()
        .zip(&l.hidden)
        .map(|(h, &c)| (c, format!("{} hidden", h.count)))
        .collect();
    let cols = places
        .iter()
        .map(|p| p.1)
        .chain(l.hidden.iter().copied())
        .max()
        .unwrap_or(0) as i32
        + 1;
    let rows = places.iter().map(|p| p.2).max().unwrap_or(0) as i32 + 1;
    let width = (MARGIN * 2 + cols * COL_W).max(200) as u32;
    let height = (MARGIN * 2 + rows * ROW_H + 40) as u32;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let xy = |col: u32, row: u32| {
            (
                MARGIN + col as i32 * COL_W,
                MARGIN + 20 + row as i32 * ROW_H,
            )
        };
        let font = ("monospace", 11).into_font().color(&BLACK);
        let centre = Pos::new(HPos::Center, VPos::Center);
        // Edges first, under the boxes.
        for &(i, col, row) in places {
            let b = &tree.blocks[i].block;
            if let Some(&(pc, pr)) = pos.get(&b.prev) {
                let (x0, y0) = xy(pc, pr);
                let (x1, y1) = xy(col, row);
                root.draw(&PathElement::new(
                    vec![(x0 + BOX_W, y0 + BOX_H / 2), (x1, y1 + BOX_H / 2)],
                    BLACK.mix(0.5),
                ))?;
            }
        }
        for (c, label) in &hidden_cols {
            let (x, y) = xy(*c, 0);
            root.draw(&Rectangle::new(
                [(x, y), (x + BOX_W, y + BOX_H)],
                RGBColor(220, 220, 220).filled(),
            ))?;
            root.draw(&Text::new(
                label.clone(),
                (x + BOX_W / 2, y + BOX_H / 2),
                font.clone().pos(centre),
            ))?;
        }
        for &(i, col, row) in places {
            let b = &tree.blocks[i].block;
            let (x, y) = xy(col, row);
            let fill = match b.status.as_str() {
                "active" => RGBColor(190, 225, 190),
                "stale" => RGBColor(250, 215, 160),
                "invalid" => RGBColor(240, 160, 160),
                _ => RGBColor(210, 210, 240),
            };
            root.draw(&Rectangle::new(
                [(x, y), (x + BOX_W, y + BOX_H)],
                fill.filled(),
            ))?;
            root.draw(&Rectangle::new([(x, y), (x + BOX_W, y + BOX_H)], BLACK))?;
            let label = format!(
                "{} {}",
                b.height.map_or("?".into(), |h| h.to_string()),
                &b.hash.to_hex()[58..]
            );
            root.draw(&Text::new(
                label,
                (x + BOX_W / 2, y + BOX_H / 2),
                font.clone().pos(centre),
            ))?;
        }
        // Tip labels above (row 0) or below (other rows) the tip's box.
        for n in &tree.nodes {
            if let Some(&(col, row)) = pos.get(&n.tip) {
                let (x, y) = xy(col, row);
                let same: Vec<&str> = tree
                    .nodes
                    .iter()
                    .filter(|m| m.tip == n.tip)
                    .map(|m| m.name.as_str())
                    .collect();
                if same.first() != Some(&n.name.as_str()) {
                    continue;
                }
                let ty = if row == 0 { y - 10 } else { y + BOX_H + 10 };
                root.draw(&Text::new(
                    same.join(", "),
                    (x + BOX_W / 2, ty),
                    ("sans-serif", 12).into_font().color(&BLUE).pos(centre),
                ))?;
            }
        }
        root.present()?;
    }
    Ok(out)
}
