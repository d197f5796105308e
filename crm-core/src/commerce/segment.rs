//! Target segments: a typed, serialisable criteria tree over partners and their sales.
//!
//! Storage adapters translate a [`Criteria`] into SQL; [`super::reference::segment`] is the plain-Rust meaning
//! every adapter is compared against on random data (see the conformance suite). The semantics, exactly:
//!
//! - **last sale** is the latest issue date of the partner's sales invoices (credit notes are not sales).
//!   `Before(d)`: a last sale exists and is before `d`; `After(d)`: exists and is after `d`; `WithinDays(n)`:
//!   exists and is on or after `as_of − n days`; `Never`: no sales invoice at all.
//! - **sales volume** is the net revenue (invoices minus credit notes) converted into the reporting currency, over
//!   the period's issue dates; partners without sales have volume zero.
//! - **bought** an item in a period: the net quantity (invoiced minus credited) of that product, or of all products
//!   of that category, is above zero. `Any`/`All`/`None` of the listed items.
//! - **group**, **role**, **tag** (lower case), **industry** (name or code) match exactly; **location** matches
//!   when one of the partner's locations has every part given (country, region, city).

use super::period::Period;
use crate::error::{Error, Result};
use crate::id::{CategoryId, ProductId};
use crate::money::Money;
use crate::partner::PartnerRole;
use crate::validate;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The deepest criteria tree accepted.
pub const MAX_DEPTH: usize = 12;
/// The most nodes a criteria tree may have.
pub const MAX_NODES: usize = 256;

/// The longest look-back of [`LastSale::WithinDays`]: a hundred years.
pub const MAX_WITHIN_DAYS: u32 = 36_500;

/// A condition on the date of the last sale.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LastSale {
    /// The last sale was before this day.
    Before {
        /// The day.
        date: NaiveDate,
    },
    /// The last sale was after this day.
    After {
        /// The day.
        date: NaiveDate,
    },
    /// The last sale was within this many days before the evaluation day.
    WithinDays {
        /// The number of days, at most [`MAX_WITHIN_DAYS`].
        days: u32,
    },
    /// There never was a sale.
    Never,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cmp {
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
    /// Equal.
    Eq,
}

impl Cmp {
    /// Applies the comparison.
    pub fn holds<T: Ord>(self, a: T, b: T) -> bool {
        match self {
            Self::Lt => a < b,
            Self::Le => a <= b,
            Self::Gt => a > b,
            Self::Ge => a >= b,
            Self::Eq => a == b,
        }
    }

    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Eq => "=",
        }
    }
}

/// How many of the listed items must have been bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoughtMode {
    /// At least one.
    Any,
    /// Every one.
    All,
    /// None of them.
    None,
}

/// A product or a whole category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Item {
    /// One product.
    Product(ProductId),
    /// Every product of a category.
    Category(CategoryId),
}

/// A target-segment criteria tree.
///
/// ```
/// use crm_core::commerce::{Criteria, LastSale};
/// // Lapsed customers: bought once, but not in the last 90 days.
/// let lapsed = Criteria::And { all: vec![
///     Criteria::Not { not: Box::new(Criteria::LastSale { when: LastSale::Never }) },
///     Criteria::Not { not: Box::new(Criteria::LastSale { when: LastSale::WithinDays { days: 90 } }) },
/// ]};
/// let json = serde_json::to_string(&lapsed).unwrap();
/// assert_eq!(serde_json::from_str::<Criteria>(&json).unwrap(), lapsed);
/// assert!(lapsed.check().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Criteria {
    /// The date of the last sale.
    LastSale {
        /// The condition.
        when: LastSale,
    },
    /// Net sales volume over a period compared with an amount (in the reporting currency).
    SalesVolume {
        /// The period.
        period: Period,
        /// The comparison (volume `cmp` amount).
        cmp: Cmp,
        /// The amount.
        amount: Money,
    },
    /// Bought any / all / none of the items in a period.
    Bought {
        /// How many.
        mode: BoughtMode,
        /// The items (at least one).
        items: Vec<Item>,
        /// The period.
        period: Period,
    },
    /// In a partner group.
    Group {
        /// The group's name.
        name: String,
    },
    /// Has a role.
    Role {
        /// The role.
        role: PartnerRole,
    },
    /// In an industry (name or classification code).
    Industry {
        /// The name or code.
        name: String,
    },
    /// Has a location matching every part given.
    Location {
        /// ISO 3166-1 alpha-2 country.
        country: Option<String>,
        /// Region.
        region: Option<String>,
        /// City.
        city: Option<String>,
    },
    /// Carries a tag.
    Tag {
        /// The tag (lower case).
        tag: String,
    },
    /// Every sub-criterion holds.
    And {
        /// The sub-criteria (at least one).
        all: Vec<Criteria>,
    },
    /// At least one sub-criterion holds.
    Or {
        /// The sub-criteria (at least one).
        any: Vec<Criteria>,
    },
    /// The sub-criterion does not hold.
    Not {
        /// The sub-criterion.
        not: Box<Criteria>,
    },
}

/// The per-partner rows a match of a criteria tree needs (see [`Criteria::needs`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// A partner without any sales document cannot match.
    pub documents: bool,
    /// A partner without a sales invoice (a last sale) cannot match.
    pub last_sale: bool,
    /// A partner without sales in the period of the n-th sales-volume criterion cannot match. Volume criteria are
    /// numbered from 1 in the order the tree names them, depth first, counting every one (also under `Not` and
    /// `Or`).
    pub volumes: BTreeSet<usize>,
    /// A partner without a line of the n-th bought item cannot match. Items are numbered from 1 in the order the
    /// tree names them, depth first, counting every item of every `Bought` (also under `Not` and `Or`).
    pub bought: BTreeSet<usize>,
}

impl Needs {
    fn union(mut self, other: Self) -> Self {
        self.documents |= other.documents;
        self.last_sale |= other.last_sale;
        self.volumes.extend(other.volumes);
        self.bought.extend(other.bought);
        self
    }

    fn intersection(self, other: &Self) -> Self {
        Self {
            documents: self.documents && other.documents,
            last_sale: self.last_sale && other.last_sale,
            volumes: self.volumes.intersection(&other.volumes).copied().collect(),
            bought: self.bought.intersection(&other.bought).copied().collect(),
        }
    }
}

impl Criteria {
    /// Lapsed customers: bought at least once (the last sale is not [`LastSale::Never`]), but `when` does not hold
    /// for their last sale, e.g. not within the last 90 days.
    ///
    /// ```
    /// use crm_core::commerce::{Criteria, LastSale};
    /// let lapsed = Criteria::lapsed(LastSale::WithinDays { days: 90 });
    /// assert_eq!(lapsed, Criteria::And { all: vec![
    ///     Criteria::Not { not: Box::new(Criteria::LastSale { when: LastSale::Never }) },
    ///     Criteria::Not { not: Box::new(Criteria::LastSale { when: LastSale::WithinDays { days: 90 } }) },
    /// ]});
    /// ```
    pub fn lapsed(when: LastSale) -> Self {
        let not = |when| Self::Not {
            not: Box::new(Self::LastSale { when }),
        };
        Self::And {
            all: vec![not(LastSale::Never), not(when)],
        }
    }

    /// What a partner must have for the tree to match it: any document, or lines of some bought items. Adapters
    /// that compute the activity aggregates for all partners at once drive their query from such a set, so only
    /// active partners are looked at.
    ///
    /// ```
    /// use crm_core::commerce::{BoughtMode, Cmp, Criteria, Item, LastSale, Period};
    /// use crm_core::id::CategoryId;
    /// use crm_core::money::{Currency, Money};
    ///
    /// let eur = Currency::parse("EUR")?;
    /// let year = Period::year(2025)?;
    /// let c = Criteria::And { all: vec![
    ///     Criteria::Not { not: Box::new(Criteria::LastSale { when: LastSale::WithinDays { days: 90 } }) },
    ///     Criteria::SalesVolume { period: year, cmp: Cmp::Gt, amount: Money::from_units(0, eur) },
    ///     Criteria::Bought { mode: BoughtMode::Any, items: vec![Item::Category(CategoryId::new())], period: year },
    /// ]};
    /// let needs = c.needs();
    /// assert!(needs.documents);                    // a volume above 0 needs documents
    /// assert_eq!(needs.volumes.iter().collect::<Vec<_>>(), vec![&1]); // in volume 1's period
    /// assert!(!needs.last_sale);                   // "not within 90 days" holds for a partner who never bought
    /// assert_eq!(needs.bought.into_iter().collect::<Vec<_>>(), vec![1]); // and a line of item 1
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn needs(&self) -> Needs {
        self.needs_from(&mut 0, &mut 0)
    }

    fn needs_from(&self, items: &mut usize, volumes: &mut usize) -> Needs {
        match self {
            Self::LastSale { when } => Needs {
                documents: !matches!(when, LastSale::Never),
                last_sale: !matches!(when, LastSale::Never),
                ..Needs::default()
            },
            // A partner without documents has volume 0.
            Self::SalesVolume { cmp, amount, .. } => {
                *volumes += 1;
                let needed = !cmp.holds(0, amount.to_units());
                Needs {
                    documents: needed,
                    volumes: if needed {
                        BTreeSet::from([*volumes])
                    } else {
                        BTreeSet::new()
                    },
                    ..Needs::default()
                }
            }
            Self::Bought {
                mode, items: named, ..
            } => {
                let numbers: Vec<usize> = (*items + 1..=*items + named.len()).collect();
                *items += named.len();
                let bought = match (mode, numbers.as_slice()) {
                    (BoughtMode::Any, [only]) => BTreeSet::from([*only]),
                    (BoughtMode::All, all) => all.iter().copied().collect(),
                    _ => BTreeSet::new(),
                };
                Needs {
                    bought,
                    ..Needs::default()
                }
            }
            Self::Group { .. }
            | Self::Role { .. }
            | Self::Industry { .. }
            | Self::Location { .. }
            | Self::Tag { .. } => Needs::default(),
            Self::And { all } => all.iter().fold(Needs::default(), |acc, c| {
                acc.union(c.needs_from(items, volumes))
            }),
            Self::Or { any } => {
                let mut acc: Option<Needs> = None;
                for c in any {
                    let n = c.needs_from(items, volumes);
                    acc = Some(match acc {
                        None => n,
                        Some(a) => a.intersection(&n),
                    });
                }
                acc.unwrap_or_default()
            }
            Self::Not { not } => {
                // Numbers the items below; "not never bought" is "bought at some time".
                not.needs_from(items, volumes);
                let sold = matches!(
                    not.as_ref(),
                    Self::LastSale {
                        when: LastSale::Never
                    }
                );
                Needs {
                    documents: sold,
                    last_sale: sold,
                    ..Needs::default()
                }
            }
        }
    }

    /// Checks the tree's shape (depth, size, non-empty lists, well-formed values) without any lookup.
    /// Errors name the path, e.g. `criteria.all[1].items`.
    pub fn check(&self) -> Result<()> {
        let mut nodes = 0;
        self.check_at("criteria", 1, &mut nodes)
    }

    fn check_at(&self, path: &str, depth: usize, nodes: &mut usize) -> Result<()> {
        *nodes += 1;
        if depth > MAX_DEPTH {
            return Err(Error::invalid(
                path,
                format!("criteria nest deeper than {MAX_DEPTH} levels"),
            ));
        }
        if *nodes > MAX_NODES {
            return Err(Error::invalid(
                path,
                format!("criteria have more than {MAX_NODES} nodes"),
            ));
        }
        match self {
            Self::LastSale { when } => match when {
                LastSale::Before { date } | LastSale::After { date } => {
                    crate::time::check_business_date(&format!("{path}.when.date"), *date)
                        .map(|_| ())
                }
                LastSale::WithinDays { days } if *days > MAX_WITHIN_DAYS => Err(Error::invalid(
                    format!("{path}.when.days"),
                    format!("{days} days is more than the most a last sale is looked back, {MAX_WITHIN_DAYS} days"),
                )),
                LastSale::WithinDays { .. } | LastSale::Never => Ok(()),
            },
            Self::SalesVolume { .. } | Self::Role { .. } => Ok(()),
            Self::Bought { items, .. } => {
                if items.is_empty() {
                    return Err(Error::invalid(
                        format!("{path}.items"),
                        "name at least one product or category",
                    ));
                }
                Ok(())
            }
            Self::Group { name } | Self::Industry { name } => {
                validate::name(&format!("{path}.name"), name).map(|_| ())
            }
            Self::Tag { tag } => {
                let t = validate::tag(&format!("{path}.tag"), tag)?;
                if &t != tag {
                    return Err(Error::invalid(
                        format!("{path}.tag"),
                        "tags are lower case without surrounding spaces",
                    ));
                }
                Ok(())
            }
            Self::Location {
                country,
                region,
                city,
            } => {
                if country.is_none() && region.is_none() && city.is_none() {
                    return Err(Error::invalid(
                        path,
                        "a location criterion needs a country, a region or a city",
                    ));
                }
                if let Some(c) = country {
                    let v = validate::country(&format!("{path}.country"), c)?;
                    if &v != c {
                        return Err(Error::invalid(
                            format!("{path}.country"),
                            "use the upper-case ISO 3166-1 code",
                        ));
                    }
                }
                for (n, v) in [("region", region), ("city", city)] {
                    if let Some(v) = v {
                        validate::name(&format!("{path}.{n}"), v)?;
                    }
                }
                Ok(())
            }
            Self::And { all: list } | Self::Or { any: list } => {
                let name = if matches!(self, Self::And { .. }) {
                    "all"
                } else {
                    "any"
                };
                if list.is_empty() {
                    return Err(Error::invalid(
                        format!("{path}.{name}"),
                        "needs at least one criterion",
                    ));
                }
                for (i, c) in list.iter().enumerate() {
                    c.check_at(&format!("{path}.{name}[{i}]"), depth + 1, nodes)?;
                }
                Ok(())
            }
            Self::Not { not } => not.check_at(&format!("{path}.not"), depth + 1, nodes),
        }
    }

    /// Calls `visit` on this criterion and on every criterion nested in it (parents first), each with its path.
    fn walk(&self, path: &str, visit: &mut impl FnMut(&str, &Self)) {
        visit(path, self);
        match self {
            Self::And { all: l } => l
                .iter()
                .enumerate()
                .for_each(|(i, c)| c.walk(&format!("{path}.all[{i}]"), visit)),
            Self::Or { any: l } => l
                .iter()
                .enumerate()
                .for_each(|(i, c)| c.walk(&format!("{path}.any[{i}]"), visit)),
            Self::Not { not } => not.walk(&format!("{path}.not"), visit),
            _ => {}
        }
    }

    /// Every product or category named, with the path naming it (for the unknown-item error).
    pub fn items(&self) -> Vec<(String, Item)> {
        let mut out = Vec::new();
        self.walk("criteria", &mut |path, c| {
            if let Self::Bought { items, .. } = c {
                let named = items.iter().enumerate();
                out.extend(named.map(|(i, it)| (format!("{path}.items[{i}]"), *it)));
            }
        });
        out
    }

    /// Every money amount named, with its path (they must be in the reporting currency).
    pub fn amounts(&self) -> Vec<(String, Money)> {
        let mut out = Vec::new();
        self.walk("criteria", &mut |path, c| {
            if let Self::SalesVolume { amount, .. } = c {
                out.push((format!("{path}.amount"), *amount));
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_sale_dates_and_days_are_bounded() {
        let last = |when| Criteria::Not {
            not: Box::new(Criteria::LastSale { when }),
        };
        for (c, field) in [
            (
                last(LastSale::Before {
                    date: NaiveDate::MAX,
                }),
                "criteria.not.when.date",
            ),
            (
                last(LastSale::After {
                    date: NaiveDate::MIN,
                }),
                "criteria.not.when.date",
            ),
            (
                last(LastSale::WithinDays { days: u32::MAX }),
                "criteria.not.when.days",
            ),
        ] {
            assert_eq!(c.check().unwrap_err().field(), Some(field), "{c:?}");
        }
        assert!(last(LastSale::WithinDays { days: 36_500 }).check().is_ok());
    }

    #[test]
    fn needs_number_items_depth_first_and_follow_the_logic() {
        let year = Period::year(2025).unwrap();
        let eur = crate::money::Currency::parse("EUR").unwrap();
        let bought = |mode, n: usize| Criteria::Bought {
            mode,
            items: (0..n).map(|_| Item::Category(CategoryId::new())).collect(),
            period: year,
        };
        let volume = |cmp, units| Criteria::SalesVolume {
            period: year,
            cmp,
            amount: Money::from_units(units, eur),
        };
        let never = Criteria::LastSale {
            when: LastSale::Never,
        };
        // Items 1–2 are under Not (numbered, implied nothing), 3 is Any of one, 4–5 All of two.
        let c = Criteria::And {
            all: vec![
                Criteria::Not {
                    not: Box::new(bought(BoughtMode::Any, 2)),
                },
                bought(BoughtMode::Any, 1),
                bought(BoughtMode::All, 2),
                volume(Cmp::Lt, 100),
            ],
        };
        assert_eq!(
            c.needs(),
            Needs {
                bought: BTreeSet::from([3, 4, 5]),
                ..Needs::default()
            }
        );
        assert!(
            Criteria::Not {
                not: Box::new(never.clone())
            }
            .needs()
            .documents
        );
        assert!(!never.needs().documents);
        assert!(volume(Cmp::Ge, 1).needs().documents);
        assert_eq!(volume(Cmp::Ge, 1).needs().volumes, BTreeSet::from([1]));
        assert!(never.needs() == Needs::default());
        assert!(!volume(Cmp::Ge, 0).needs().documents);
        assert!(!bought(BoughtMode::Any, 2).needs().bought.contains(&1));
        assert!(bought(BoughtMode::None, 1).needs().bought.is_empty());
        // Or keeps only what every branch needs.
        let or = Criteria::Or {
            any: vec![
                Criteria::And {
                    all: vec![volume(Cmp::Gt, 0), bought(BoughtMode::Any, 1)],
                },
                volume(Cmp::Gt, 5),
            ],
        };
        assert_eq!(
            or.needs(),
            Needs {
                // Each branch needs some sales, but no one volume's: v1 in the first, v2 in the second.
                documents: true,
                ..Needs::default()
            }
        );
    }

    #[test]
    fn bad_trees_name_the_path() {
        let cases = [
            (Criteria::And { all: vec![] }, "criteria.all"),
            (
                Criteria::Or {
                    any: vec![Criteria::Tag { tag: "VIP".into() }],
                },
                "criteria.any[0].tag",
            ),
            (
                Criteria::Not {
                    not: Box::new(Criteria::Location {
                        country: None,
                        region: None,
                        city: None,
                    }),
                },
                "criteria.not",
            ),
            (
                Criteria::Location {
                    country: Some("ro".into()),
                    region: None,
                    city: None,
                },
                "criteria.country",
            ),
        ];
        for (c, field) in cases {
            assert_eq!(c.check().unwrap_err().field(), Some(field), "{c:?}");
        }
        let mut deep = Criteria::Tag { tag: "a".into() };
        for _ in 0..MAX_DEPTH {
            deep = Criteria::Not {
                not: Box::new(deep),
            };
        }
        assert!(deep.check().is_err());
    }

    #[test]
    fn items_are_found_with_their_paths() {
        let p = ProductId::new();
        let period = Period::new(
            crate::time::MIN_BUSINESS_DATE,
            crate::time::MAX_BUSINESS_DATE,
        )
        .unwrap();
        let c = Criteria::And {
            all: vec![
                Criteria::Role {
                    role: PartnerRole::Customer,
                },
                Criteria::Not {
                    not: Box::new(Criteria::Bought {
                        mode: BoughtMode::Any,
                        items: vec![Item::Product(p)],
                        period,
                    }),
                },
            ],
        };
        assert_eq!(
            c.items(),
            vec![("criteria.all[1].not.items[0]".to_string(), Item::Product(p))]
        );
    }
}
