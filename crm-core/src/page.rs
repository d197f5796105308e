//! Keyset pagination: which page to read ([`PageRequest`]), the page read ([`Page`]) and the opaque [`Cursor`]
//! between them. Cursors are `(sort key, id)`; ids are UUID v7, so ties break in time order.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An opaque keyset-pagination cursor: pass [`Page::next`] back as [`PageRequest::after`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    /// A cursor after the row with sort key `key` and id `id` (adapters use this).
    pub fn encode(key: i64, id: Uuid) -> Self {
        Self(format!("{key}.{}", id.simple()))
    }

    /// The sort key and id this cursor points after.
    pub fn decode(&self) -> Result<(i64, Uuid)> {
        let bad = || Error::invalid("page.after", "not a cursor returned by this engine");
        let (k, id) = self.0.split_once('.').ok_or_else(bad)?;
        Ok((
            k.parse().map_err(|_| bad())?,
            Uuid::parse_str(id).map_err(|_| bad())?,
        ))
    }

    /// The cursor's text, for passing through a host API.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A cursor from text a host API received.
    pub fn from_string(s: String) -> Self {
        Self(s)
    }
}

/// Which page to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// At most this many items (1–1000).
    pub limit: u32,
    /// Continue after this cursor.
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// The largest page size.
    pub const MAX: u32 = 1000;

    /// The first page of `limit` items.
    pub fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }

    /// Checks the limit.
    pub fn validate(&self) -> Result<()> {
        if self.limit == 0 || self.limit > Self::MAX {
            return Err(Error::invalid(
                "page.limit",
                format!("{} is outside 1–{}", self.limit, Self::MAX),
            ));
        }
        if let Some(c) = &self.after {
            c.decode()?;
        }
        Ok(())
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first(50)
    }
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// The page of a read that fetched up to `limit + 1` items in keyset order: the first `limit` of them, and a
    /// cursor after the last one kept when more followed; `key` gives an item's `(sort key, id)` (adapters use
    /// this).
    pub fn cut(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> (i64, Uuid)) -> Self {
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next = more
            .then(|| items.last().map(&key))
            .flatten()
            .map(|(k, id)| Cursor::encode(k, id));
        Self { items, next }
    }
}
