//! The seam: what differs between SQLite and PostgreSQL in the statements the engine runs.

use uuid::Uuid;

/// The SQL dialect a statement is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// SQLite 3.38+ (JSON functions, `?N` placeholders, ids as 16-byte blobs).
    Sqlite,
    /// PostgreSQL 13+ (`jsonb`, `$N` placeholders, `FILTER`, `uuid`).
    Postgres,
}

impl Dialect {
    /// The placeholder of the `n`th parameter (1-based).
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Self::Sqlite => format!("?{n}"),
            Self::Postgres => format!("${n}"),
        }
    }

    /// The stored document as JSON text (PostgreSQL keeps `jsonb`: its text is what decodes fastest).
    pub fn doc(self) -> &'static str {
        match self {
            Self::Sqlite => "doc",
            Self::Postgres => "doc::text",
        }
    }

    /// The literal `false` (SQLite has no boolean type).
    pub fn false_lit(self) -> &'static str {
        match self {
            Self::Sqlite => "0",
            Self::Postgres => "false",
        }
    }

    /// The literal `true`.
    pub fn true_lit(self) -> &'static str {
        match self {
            Self::Sqlite => "1",
            Self::Postgres => "true",
        }
    }

    /// `agg(expr)` over the rows where `cond` holds: `FILTER (WHERE …)` on PostgreSQL, `CASE` inside on SQLite.
    pub fn filtered(self, agg: &str, expr: &str, cond: &str) -> String {
        match self {
            Self::Sqlite => format!("{agg}(CASE WHEN {cond} THEN {expr} END)"),
            Self::Postgres => format!("{agg}({expr}) FILTER (WHERE {cond})"),
        }
    }

    /// Text compared byte by byte, whatever the database's collation (SQLite's default already is).
    pub fn text(self, expr: &str) -> String {
        match self {
            Self::Sqlite => expr.to_string(),
            Self::Postgres => format!("({expr}) COLLATE \"C\""),
        }
    }

    /// The text at `path` (object keys) of the JSON document in column `doc`.
    pub fn json_text(self, doc: &str, path: &[&str]) -> String {
        match self {
            Self::Sqlite => format!("json_extract({doc}, '$.{}')", path.join(".")),
            Self::Postgres => {
                let (last, init) = path.split_last().expect("a JSON path has a key");
                let mut e = doc.to_string();
                for k in init {
                    e.push_str(&format!(" -> '{k}'"));
                }
                format!("({e} ->> '{last}')")
            }
        }
    }

    /// Whether the JSON array at key `key` of `doc` holds the text bound at placeholder `value` (never NULL).
    pub fn json_array_has_text(self, doc: &str, key: &str, value: &str) -> String {
        match self {
            Self::Sqlite => format!(
                "EXISTS (SELECT 1 FROM json_each({doc}, '$.{key}') j WHERE j.value = {value})"
            ),
            Self::Postgres => {
                format!("COALESCE(({doc} -> '{key}') @> jsonb_build_array({value}::text), false)")
            }
        }
    }

    /// Whether some element `j` of the JSON array at key `key` of `doc` satisfies `cond`, where `cond` reads the
    /// element's fields with [`Dialect::json_element_text`].
    pub fn json_array_any(self, doc: &str, key: &str, cond: &str) -> String {
        match self {
            Self::Sqlite => format!("EXISTS (SELECT 1 FROM json_each({doc}, '$.{key}') j WHERE {cond})"),
            Self::Postgres => format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof({doc} -> '{key}') = 'array' \
                 THEN {doc} -> '{key}' ELSE '[]'::jsonb END) j WHERE {cond})"
            ),
        }
    }

    /// The text of field `field` of the element `j` in [`Dialect::json_array_any`]'s condition.
    pub fn json_element_text(self, field: &str) -> String {
        match self {
            Self::Sqlite => format!("json_extract(j.value, '$.{field}')"),
            Self::Postgres => self.text(&format!("j ->> '{field}'")),
        }
    }
}

/// A parameter, typed as the schema stores it; each adapter binds it to its driver's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// An id (a 16-byte blob on SQLite, `uuid` on PostgreSQL).
    Uuid(Uuid),
    /// A day number (`day_number`: days since 0001-01-01; `integer` on PostgreSQL).
    Day(i32),
    /// A 64-bit integer (money in 10^-4 units, microseconds, counts; `bigint` on PostgreSQL).
    I64(i64),
    /// A small code (document kinds, statuses; `smallint` on PostgreSQL).
    I16(i16),
    /// A 32-bit integer (positions; `integer` on PostgreSQL).
    I32(i32),
    /// Text.
    Text(String),
    /// A set of ids (PostgreSQL binds it as `uuid[]`; on SQLite statements bind each id instead).
    Uuids(Vec<Uuid>),
    /// A record's serde JSON, written once (`jsonb` on PostgreSQL, its text on SQLite).
    Json(JsonText),
    /// NULL in a column of this kind (PostgreSQL binds a typed NULL).
    Null(Kind),
}

impl Param {
    /// The value, or NULL of `kind` when there is none.
    pub fn or_null(v: Option<impl Into<Param>>, kind: Kind) -> Self {
        v.map_or(Self::Null(kind), Into::into)
    }

    /// An id, or NULL.
    pub fn opt_uuid(v: Option<&Uuid>) -> Self {
        Self::or_null(v.copied(), Kind::Uuid)
    }

    /// A record's serde JSON.
    ///
    /// # Errors
    ///
    /// [`crm_core::Error::Invalid`] when the record cannot be serialised.
    pub fn json<T: serde::Serialize + ?Sized>(v: &T) -> crm_core::Result<Self> {
        serde_json::value::to_raw_value(v)
            .map(|raw| Self::Json(JsonText(raw)))
            .map_err(|e| crm_core::Error::invalid("record", format!("cannot be serialised: {e}")))
    }
}

/// A record's JSON text as serde wrote it, straight from the record (not through a `serde_json::Value`, whose
/// maps and strings cost an allocation a field: a stage move writes four or five documents); compared by its text.
///
/// ```
/// let p = crm_storage_sql::Param::json(&serde_json::json!({"a": [1, 2]})).unwrap();
/// match p {
///     crm_storage_sql::Param::Json(j) => assert_eq!(j.as_str(), r#"{"a":[1,2]}"#),
///     _ => unreachable!(),
/// }
/// ```
#[derive(Debug, Clone)]
pub struct JsonText(Box<serde_json::value::RawValue>);

impl JsonText {
    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The JSON, for a driver that serialises it itself (PostgreSQL's `jsonb`).
    pub fn into_raw(self) -> Box<serde_json::value::RawValue> {
        self.0
    }
}

impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for JsonText {}

/// The type of a column, as both schemas store it (each adapter maps it to its own types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An id (`uuid`; a 16-byte blob on SQLite).
    Uuid,
    /// Text.
    Text,
    /// A currency code (`char(3)` on PostgreSQL).
    Ccy,
    /// A small code (`smallint`).
    I16,
    /// A 32-bit integer (`integer`: day numbers, positions).
    I32,
    /// A 64-bit integer (`bigint`: units, microseconds, versions).
    I64,
    /// A boolean (an integer on SQLite).
    Bool,
    /// An exact decimal (`numeric`).
    Numeric,
    /// A record's JSON (`jsonb`; text on SQLite).
    Json,
}

/// `From` for the plain values a parameter wraps as they are.
macro_rules! param_from {
    ($($t:ty => $variant:ident),* $(,)?) => {
        $(
            impl From<$t> for Param {
                fn from(v: $t) -> Self {
                    Self::$variant(v)
                }
            }
        )*
    };
}

param_from!(i16 => I16, i32 => I32, i64 => I64, Uuid => Uuid, String => Text);

impl From<&str> for Param {
    fn from(s: &str) -> Self {
        Self::Text(s.to_string())
    }
}

/// A statement and its parameters, for one dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sql {
    /// The dialect it is written in.
    pub dialect: Dialect,
    /// The text, with placeholders.
    pub text: String,
    /// The parameters, in placeholder order.
    pub params: Vec<Param>,
}

impl Sql {
    /// An empty statement.
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            text: String::new(),
            params: Vec::new(),
        }
    }

    /// An empty statement scoped to `tenant`: its first parameter is the tenant id, whose placeholder comes with it.
    pub fn for_tenant(dialect: Dialect, tenant: crm_core::id::TenantId) -> (Self, String) {
        let mut sql = Self::new(dialect);
        let t = sql.bind(*tenant.as_uuid());
        (sql, t)
    }

    /// Adds a parameter and returns its placeholder.
    pub fn bind(&mut self, p: impl Into<Param>) -> String {
        self.params.push(p.into());
        self.dialect.placeholder(self.params.len())
    }
}
