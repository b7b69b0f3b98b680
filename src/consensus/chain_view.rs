//! [`ChainView`]: what the contextual rules (difficulty, median-time-past,
//! BIP94) need to know of the branch a header builds on. In a module of its
//! own so that `difficulty` and `validation` both use it without importing
//! each other.

use super::header::BlockHeader;
use super::pow::CompactTarget;
use super::time::{median_time_past, MEDIAN_TIME_SPAN};

/// What the rules need to know of an ancestor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AncestorInfo {
    /// Timestamp, Unix seconds.
    pub time: u32,
    /// Compact target.
    pub bits: CompactTarget,
}

/// The branch a new header builds on, seen from its parent (the view's tip).
/// Implemented by the chain store (a walk over parent links) and by
/// [`SliceView`] (a contiguous run of headers, e.g. a headers file).
pub trait ChainView {
    /// Height of the parent of the header being checked.
    fn tip_height(&self) -> u32;
    /// Time and bits of the ancestor at `height` (`<= tip_height`) on this
    /// branch; `None` if the view does not reach that far back.
    fn ancestor(&self, height: u32) -> Option<AncestorInfo>;
    /// Median time of the last 11 blocks ending at the tip (fewer near
    /// genesis), as Core's `GetMedianTimePast`.
    fn median_time_past(&self) -> u32 {
        let tip = self.tip_height();
        let mut times = [0u32; MEDIAN_TIME_SPAN];
        let mut n = 0;
        for i in 0..MEDIAN_TIME_SPAN as u32 {
            if i > tip {
                break;
            }
            match self.ancestor(tip - i) {
                Some(a) => {
                    times[n] = a.time;
                    n += 1;
                }
                None => break,
            }
        }
        median_time_past(&times[..n])
    }
    /// Latest timestamp among the same (up to) 11 blocks. A time above it
    /// is above their median too, so the median is only needed when a
    /// header's time is not above this.
    fn max_time_past(&self) -> u32 {
        let tip = self.tip_height();
        (0..MEDIAN_TIME_SPAN as u32)
            .take_while(|&i| i <= tip)
            .filter_map(|i| self.ancestor(tip - i))
            .map(|a| a.time)
            .max()
            .unwrap_or(0)
    }
}

/// A [`ChainView`] over a contiguous slice of headers: `headers[i]` is at
/// height `base_height + i`, and the last one is the parent.
#[derive(Clone, Copy, Debug)]
pub struct SliceView<'a> {
    /// Headers, oldest first; the last is the tip.
    pub headers: &'a [BlockHeader],
    /// Height of `headers[0]`.
    pub base_height: u32,
}

impl ChainView for SliceView<'_> {
    fn tip_height(&self) -> u32 {
        self.base_height + self.headers.len() as u32 - 1
    }
    fn ancestor(&self, height: u32) -> Option<AncestorInfo> {
        let idx = height.checked_sub(self.base_height)? as usize;
        self.headers.get(idx).map(|h| AncestorInfo {
            time: h.time,
            bits: h.bits,
        })
    }
    fn median_time_past(&self) -> u32 {
        let n = self.headers.len().min(MEDIAN_TIME_SPAN);
        let mut times = [0u32; MEDIAN_TIME_SPAN];
        for (slot, h) in times
            .iter_mut()
            .zip(&self.headers[self.headers.len() - n..])
        {
            *slot = h.time;
        }
        median_time_past(&times[..n])
    }
    fn max_time_past(&self) -> u32 {
        let n = self.headers.len().min(MEDIAN_TIME_SPAN);
        self.headers[self.headers.len() - n..]
            .iter()
            .map(|h| h.time)
            .max()
            .unwrap_or(0)
    }
}
