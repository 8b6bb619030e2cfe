//! [`ClientDirectory`] on SQL. A page is one statement, in two steps: the
//! inner query finds the page's ids, newest first, through one index, the
//! *driver*; the outer one reads those clients' rows, with their last use
//! (`client_usage`) and their document's URL (`front_cimd_clients`). A few
//! counts before it choose the driver.
//!
//! Drivers are of two kinds:
//!
//! - *walked*: read in the listing's order, from the page's key and within
//!   the registration times asked for, until the page is full: all clients
//!   (`clients_issued`), a software's (`clients_software_issued`), a
//!   state's (`clients_state_issued`), a redirect host's
//!   (`client_redirect_hosts`);
//! - *read whole*, then sorted: the clients whose name begins with the
//!   prefix (`clients_name_key`), those used since a time
//!   (`client_usage_last_used_at`), those of metadata documents.
//!
//! The drivers a filter allows are counted, each up to a limit (a count of
//! one index's range, without reading the clients). A page is read whole
//! through the smallest driver read whole that has fewer than
//! [`WHOLE_LIMIT`] entries, when the walked driver has more; otherwise it
//! is walked, through the walked driver with fewest entries (all clients
//! when the filter names none). A filter matching fewer clients than that
//! is then never walked far, and one matching more, spread over time,
//! fills a page within about `limit × clients / WHOLE_LIMIT` entries.
//!
//! A redirect host's rows hold the client's software and name key besides
//! its registration time and id, so that only a state asked for has the
//! walk of a host read the clients' rows.
//!
//! Every condition but the driver's is checked on the driver's rows, in a
//! form the database cannot serve from another index (`x || ''`, `x + 0`),
//! with the driver's table first in a `CROSS JOIN` (a join order SQLite
//! keeps): SQLite, which has no statistics here, would otherwise choose by
//! rules of thumb, and a common software's index walked for a rare host's
//! clients reads the whole software.
//!
//! What stays slow: conditions that each hold for many clients but seldom
//! together walk until the page is full, through all the driver's clients
//! if need be. The clients' own columns are checked in the index walked
//! (the clients' indexes hold the state, software and name key, a host's
//! rows the software and name key), some 0.1 s a million entries on SQLite;
//! a last use, a redirect host or a document is looked up for each entry,
//! about a second a million. That is what a filter pays whose only rare
//! condition has no driver of its own: never used, not used since,
//! registered through `/register`.
//!
//! Values are always bound (`$n`), never written into the SQL.

use std::sync::LazyLock;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::{AnyArguments, AnyRow};

use super::SqlStore;
use super::rows::{COLUMNS, search_key};
use crate::domain::ClientId;
use crate::store::StoreError;
use crate::store::directory::{
    ClientDirectory, ClientFilter, ListedClient, Origin, PageAfter, Used,
};

/// Entries of a walked driver counted, at most, to choose among several.
const PROBE_LIMIT: i64 = 10_000;

/// A driver is read whole only when it has fewer entries than this: each
/// costs the client's row and a place in the sort.
const WHOLE_LIMIT: i64 = 5_000;

/// The clients' columns, of the outer query's `c`.
static CLIENT_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    COLUMNS
        .split(',')
        .map(|column| format!("c.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
});

#[async_trait]
impl ClientDirectory for SqlStore {
    async fn find(
        &self,
        filter: &ClientFilter,
        after: Option<&PageAfter>,
        limit: u32,
    ) -> Result<Vec<ListedClient>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let search = Search::of(filter);
        let walked = self.walked(&search).await?;
        let mut whole: Option<(Driver, i64)> = None;
        for driver in Driver::WHOLE {
            if driver.allowed_by(&search) {
                let count = self.count(driver, &search, None, WHOLE_LIMIT).await?;
                if count < whole.map_or(WHOLE_LIMIT, |(_, fewest)| fewest) {
                    whole = Some((driver, count));
                }
            }
        }
        let driver = match whole {
            Some((driver, count))
                if (walked == Driver::All && !search.registered())
                    || self.count(walked, &search, after, count + 1).await? > count =>
            {
                driver
            }
            _ => walked,
        };
        let mut binds = Binds::default();
        let ids = page_ids(driver, &search, after, limit, &mut binds);
        self.fetch_listed(&format!("c.client_id IN ({ids})"), binds)
            .await
    }

    async fn listed(&self, id: &ClientId) -> Result<Option<ListedClient>, StoreError> {
        let mut binds = Binds::default();
        let which = format!("c.client_id = {}", binds.text(id.as_str()));
        Ok(self.fetch_listed(&which, binds).await?.pop())
    }
}

impl SqlStore {
    /// The clients matching `which` (a condition on `c`), newest first,
    /// with their last use and document URL.
    async fn fetch_listed(
        &self,
        which: &str,
        binds: Binds,
    ) -> Result<Vec<ListedClient>, StoreError> {
        let sql = format!(
            "SELECT {columns}, u.last_used_at AS last_used_at, \
             (SELECT MIN(m.url) FROM front_cimd_clients m \
              WHERE m.client_id = c.client_id AND m.client_id <> '') AS document_url \
             FROM clients c LEFT JOIN client_usage u ON u.client_id = c.client_id \
             WHERE {which} ORDER BY c.client_id_issued_at DESC, c.client_id DESC",
            columns = CLIENT_COLUMNS.as_str(),
        );
        sqlx::query_with(&sql, binds.arguments()?)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| self.read_listed(row))
            .collect()
    }

    fn read_listed(&self, row: &AnyRow) -> Result<ListedClient, StoreError> {
        Ok(ListedClient {
            client: self.read_row(row)?,
            last_used_at: row.try_get("last_used_at")?,
            document_url: row.try_get("document_url")?,
        })
    }

    /// The walked driver for `search`: all clients, the one its filter
    /// names, or of several, the one with fewest entries.
    async fn walked(&self, search: &Search<'_>) -> Result<Driver, StoreError> {
        let named = Driver::WALKED
            .into_iter()
            .filter(|driver| driver.allowed_by(search))
            .collect::<Vec<_>>();
        let mut fewest = match named.as_slice() {
            [] => return Ok(Driver::All),
            [only] => return Ok(*only),
            [first, ..] => (*first, PROBE_LIMIT),
        };
        for driver in named {
            let count = self.count(driver, search, None, PROBE_LIMIT).await?;
            if count < fewest.1 {
                fewest = (driver, count);
            }
        }
        Ok(fewest.0)
    }

    /// How many entries `driver` reads for `search` (from `after`, for a
    /// walked one), counted up to `limit`.
    async fn count(
        &self,
        driver: Driver,
        search: &Search<'_>,
        after: Option<&PageAfter>,
        limit: i64,
    ) -> Result<i64, StoreError> {
        let mut binds = Binds::default();
        let terms = driving_terms(driver, search, after, &mut binds);
        let sql = format!(
            "SELECT COUNT(*) AS n FROM (SELECT 1 FROM {table}{terms} LIMIT {limit}) AS probe",
            table = driver.table(),
            terms = where_clause(&terms),
            limit = binds.integer(limit),
        );
        Ok(sqlx::query_with(&sql, binds.arguments()?)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }
}

/// The filter as it is searched: keys in the case they are kept in, the
/// name prefix as a range.
struct Search<'a> {
    filter: &'a ClientFilter,
    redirect_host: Option<String>,
    /// The name keys from (inclusive) and until (exclusive, none: no end)
    /// that begin with the prefix.
    name_range: Option<(String, Option<String>)>,
}

impl<'a> Search<'a> {
    fn of(filter: &'a ClientFilter) -> Self {
        Self {
            filter,
            redirect_host: filter.redirect_host.as_deref().map(search_key),
            name_range: filter.name_prefix.as_deref().map(|prefix| {
                let from = search_key(prefix);
                let until = prefix_end(&from);
                (from, until)
            }),
        }
    }

    /// Whether it asks for a range of registration times.
    fn registered(&self) -> bool {
        self.filter.registered_from.is_some() || self.filter.registered_until.is_some()
    }
}

/// The least text that follows, in byte order (which is code point order
/// in UTF-8), every text beginning with `prefix`: `prefix` with its last
/// character replaced by the next one. `None` when there is none (an empty
/// prefix, or one of U+10FFFF only).
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars = prefix.chars().collect::<Vec<_>>();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) + 1 {
            0xD800 => 0xE000,
            next => next,
        };
        if let Some(next) = char::from_u32(next) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The index a page's ids are found through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver {
    /// Every client, walked.
    All,
    /// A software's clients, walked.
    Software,
    /// A state's clients, walked.
    State,
    /// A redirect host's clients, walked.
    Host,
    /// The clients whose name key is in the prefix's range, read whole.
    Name,
    /// The clients used since a time, read whole.
    UsedSince,
    /// The clients of metadata documents, read whole.
    Document,
}

impl Driver {
    /// The walked drivers a filter may name; of several with as many
    /// entries, the first is taken (a host's rows hold more of what other
    /// filters check).
    const WALKED: [Self; 3] = [Self::Host, Self::Software, Self::State];

    /// The drivers read whole.
    const WHOLE: [Self; 3] = [Self::Name, Self::UsedSince, Self::Document];

    fn allowed_by(self, search: &Search<'_>) -> bool {
        let filter = search.filter;
        match self {
            Self::All => true,
            Self::Software => filter.software_id.is_some(),
            Self::State => filter.state.is_some(),
            Self::Host => search.redirect_host.is_some(),
            Self::Name => search.name_range.is_some(),
            Self::UsedSince => matches!(filter.used, Some(Used::Since(_))),
            Self::Document => filter.origin == Some(Origin::Document),
        }
    }

    /// Whether it is read in the listing's order.
    fn walked(self) -> bool {
        matches!(self, Self::All | Self::Software | Self::State | Self::Host)
    }

    /// The name [`driving_terms`] gives what it reads: `k` for the
    /// clients themselves.
    fn alias(self) -> &'static str {
        match self {
            Self::All | Self::Software | Self::State | Self::Name => "k",
            Self::Host => "h",
            Self::UsedSince => "u",
            Self::Document => "d",
        }
    }

    /// What it reads, under its [`Driver::alias`].
    fn table(self) -> &'static str {
        match self {
            Self::All | Self::Software | Self::State | Self::Name => "clients k",
            Self::Host => "client_redirect_hosts h",
            Self::UsedSince => "client_usage u",
            // A client is listed once, however many URLs name it.
            Self::Document => {
                "(SELECT DISTINCT client_id FROM front_cimd_clients WHERE client_id <> '') d"
            }
        }
    }
}

/// The conditions `driver`'s index reads (on its [`Driver::table`]): its
/// key and, for a walked one, the registration times and the page's start.
fn driving_terms(
    driver: Driver,
    search: &Search<'_>,
    after: Option<&PageAfter>,
    binds: &mut Binds,
) -> Vec<String> {
    let filter = search.filter;
    let mut terms = Vec::new();
    match driver {
        Driver::All | Driver::Document => {}
        Driver::Software => {
            if let Some(software_id) = &filter.software_id {
                terms.push(format!("k.software_id = {}", binds.text(software_id)));
            }
        }
        Driver::State => {
            if let Some(state) = filter.state {
                terms.push(format!("k.state = {}", binds.text(state.as_str())));
            }
        }
        Driver::Host => {
            if let Some(host) = &search.redirect_host {
                terms.push(format!("h.host = {}", binds.text(host)));
            }
        }
        Driver::Name => {
            if let Some((from, until)) = &search.name_range {
                terms.push(format!("k.client_name_key >= {}", binds.text(from)));
                if let Some(until) = until {
                    terms.push(format!("k.client_name_key < {}", binds.text(until)));
                }
            }
        }
        Driver::UsedSince => {
            if let Some(Used::Since(at)) = filter.used {
                terms.push(format!("u.last_used_at >= {}", binds.integer(at)));
            }
        }
    }
    if driver.walked() {
        let alias = driver.alias();
        let issued_at = format!("{alias}.client_id_issued_at");
        // Of two upper bounds, only the lower: SQLite seeks by one.
        let (until, after) = match (filter.registered_until, after) {
            (Some(until), Some(after)) if after.issued_at >= until => (Some(until), None),
            (Some(_), Some(after)) => (None, Some(after)),
            bounds => bounds,
        };
        registered_terms(&issued_at, filter.registered_from, until, binds, &mut terms);
        if let Some(after) = after {
            terms.push(after_term(
                &issued_at,
                &format!("{alias}.client_id"),
                after,
                binds,
            ));
        }
    }
    terms
}

/// Registration times from `from` and before `until`, on `issued_at`.
fn registered_terms(
    issued_at: &str,
    from: Option<i64>,
    until: Option<i64>,
    binds: &mut Binds,
    terms: &mut Vec<String>,
) {
    if let Some(from) = from {
        terms.push(format!("{issued_at} >= {}", binds.integer(from)));
    }
    if let Some(until) = until {
        terms.push(format!("{issued_at} < {}", binds.integer(until)));
    }
}

/// The clients after `after` in the listing's order.
fn after_term(issued_at: &str, client_id: &str, after: &PageAfter, binds: &mut Binds) -> String {
    format!(
        "({issued_at}, {client_id}) < ({}, {})",
        binds.integer(after.issued_at),
        binds.text(after.client_id.as_str())
    )
}

/// The inner query: the ids of the page's clients, through `driver`.
fn page_ids(
    driver: Driver,
    search: &Search<'_>,
    after: Option<&PageAfter>,
    limit: u32,
    binds: &mut Binds,
) -> String {
    let alias = driver.alias();
    let mut from = driver.table().to_owned();
    let mut terms = Vec::new();
    // A host's rows hold the client's id, software and name key; the
    // clients' own rows are read for the rest.
    let row = if driver == Driver::Host { "h" } else { "k" };
    if alias != "k" && (row == "k" || search.filter.state.is_some()) {
        // The driver's rows first, each client then by its key.
        from.push_str(" CROSS JOIN clients k");
        terms.push(format!("k.client_id = {alias}.client_id"));
    }
    terms.extend(driving_terms(driver, search, after, binds));
    // The table in the listing's order.
    let order = if driver.walked() { alias } else { "k" };
    other_terms(driver, search, row, binds, &mut terms);
    if !driver.walked() {
        let filter = search.filter;
        let issued_at = "k.client_id_issued_at + 0";
        let (from, until) = (filter.registered_from, filter.registered_until);
        registered_terms(issued_at, from, until, binds, &mut terms);
        if let Some(after) = after {
            terms.push(after_term(issued_at, "k.client_id || ''", after, binds));
        }
    }
    format!(
        "SELECT {order}.client_id FROM {from}{terms} \
         ORDER BY {order}.client_id_issued_at DESC, {order}.client_id DESC LIMIT {limit}",
        terms = where_clause(&terms),
        limit = binds.integer(i64::from(limit)),
    )
}

/// Every condition of the filter but `driver`'s own, on the client's id,
/// software and name key of `row` and the state of `k`, in forms no index
/// serves (text `|| ''`), in the order SQLite checks them, the cheapest
/// first: the clients' own columns (held by each index a walk reads), then
/// the document mappings (a table of at most some thousands), the redirect
/// hosts (one index), the uses (an index and the table).
fn other_terms(
    driver: Driver,
    search: &Search<'_>,
    row: &str,
    binds: &mut Binds,
    terms: &mut Vec<String>,
) {
    let filter = search.filter;
    if driver != Driver::Software {
        if let Some(software_id) = &filter.software_id {
            terms.push(format!(
                "{row}.software_id || '' = {}",
                binds.text(software_id)
            ));
        }
    }
    if driver != Driver::State {
        if let Some(state) = filter.state {
            terms.push(format!("k.state || '' = {}", binds.text(state.as_str())));
        }
    }
    if driver != Driver::Name {
        if let Some((from, until)) = &search.name_range {
            let key = format!("{row}.client_name_key || ''");
            terms.push(format!("{key} >= {}", binds.text(from)));
            if let Some(until) = until {
                terms.push(format!("{key} < {}", binds.text(until)));
            }
        }
    }
    match filter.origin {
        Some(Origin::Document) if driver == Driver::Document => {}
        Some(origin) => terms.push(format!(
            "{}EXISTS (SELECT 1 FROM front_cimd_clients dm WHERE dm.client_id = {row}.client_id)",
            if origin == Origin::Registered {
                "NOT "
            } else {
                ""
            }
        )),
        None => {}
    }
    if driver != Driver::Host {
        if let Some(host) = &search.redirect_host {
            terms.push(format!(
                "EXISTS (SELECT 1 FROM client_redirect_hosts rh \
                 WHERE rh.client_id = {row}.client_id AND rh.host = {})",
                binds.text(host)
            ));
        }
    }
    match filter.used {
        Some(Used::Since(_)) if driver == Driver::UsedSince => {}
        Some(Used::Since(at)) => terms.push(format!(
            "EXISTS (SELECT 1 FROM client_usage us \
             WHERE us.client_id = {row}.client_id AND us.last_used_at >= {})",
            binds.integer(at)
        )),
        Some(Used::NotSince(at)) => terms.push(format!(
            "NOT EXISTS (SELECT 1 FROM client_usage us \
             WHERE us.client_id = {row}.client_id AND us.last_used_at >= {})",
            binds.integer(at)
        )),
        Some(Used::Never) => terms.push(format!(
            "NOT EXISTS (SELECT 1 FROM client_usage us WHERE us.client_id = {row}.client_id)"
        )),
        None => {}
    }
}

/// ` WHERE` and `terms` joined by `AND`, or nothing for none.
fn where_clause(terms: &[String]) -> String {
    if terms.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", terms.join(" AND "))
    }
}

/// The values of a statement being written, each bound to the placeholder
/// its method returns, in order.
#[derive(Default)]
struct Binds {
    values: Vec<Value>,
}

/// One bound value.
enum Value {
    Text(String),
    Integer(i64),
}

impl Binds {
    /// Binds text; its placeholder.
    fn text(&mut self, value: &str) -> String {
        self.values.push(Value::Text(value.to_owned()));
        format!("${}", self.values.len())
    }

    /// Binds an integer; its placeholder.
    fn integer(&mut self, value: i64) -> String {
        self.values.push(Value::Integer(value));
        format!("${}", self.values.len())
    }

    /// The values, for the statement.
    fn arguments(self) -> Result<AnyArguments<'static>, StoreError> {
        use sqlx::Arguments as _;
        let mut arguments = AnyArguments::default();
        for value in self.values {
            match value {
                Value::Text(text) => arguments.add(text),
                Value::Integer(integer) => arguments.add(integer),
            }
            .map_err(sqlx::Error::Encode)?;
        }
        Ok(arguments)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::clock::SystemClock;
    use crate::domain::{
        ClientMetadata, ClientState, MetadataDocument, RedirectRules, RegisteredClient,
        RegistrationAccessToken,
    };
    use crate::store::ClientStore;
    use crate::store::front::{CimdStore, DocumentCaps, Mapping};
    use crate::store::usage::ClientUsage;

    const EPOCH: i64 = 1_700_000_000;

    /// Option `n` of `options`, cycling.
    fn pick<T: Copy>(options: &[T], n: i64) -> T {
        options[usize::try_from(n).unwrap() % options.len()]
    }

    /// A store of 60 clients: registration times in pairs, four softwares
    /// (one unset), three hosts, three names (one unset), three states,
    /// uses and documents in cycles of other lengths.
    async fn store(dir: &tempfile::TempDir) -> SqlStore {
        let url = format!("sqlite://{}", dir.path().join("directory.db").display());
        let store = SqlStore::open(&url, 2, Arc::new(SystemClock), None)
            .await
            .unwrap();
        let mut uses = Vec::new();
        for n in 0..60_i64 {
            let uris = [
                "https://claude.ai/cb",
                "http://127.0.0.1:9/cb",
                "https://x.example/cb",
            ];
            let mut document = json!({ "redirect_uris": [pick(&uris, n)] });
            if let Some(name) = pick(&[Some("Claude"), Some("Cursor"), None], n % 5) {
                document["client_name"] = json!(name);
            }
            if let Some(software) = pick(&[Some("a"), Some("b"), Some("c"), None], n) {
                document["software_id"] = json!(software);
            }
            let document: MetadataDocument = serde_json::from_value(document).unwrap();
            let states = [
                ClientState::Active,
                ClientState::Pending,
                ClientState::Deleting,
            ];
            let client = RegisteredClient {
                client_id: ClientId::new(format!("n{n:02}")),
                metadata: Arc::new(
                    ClientMetadata::validate(document, RedirectRules::default()).unwrap(),
                ),
                issued_at: EPOCH + n / 2,
                registration_token: RegistrationAccessToken::generate().hash(),
                client_secret: None,
                client_secret_expires_at: 0,
                state: pick(&states, n % 7),
                provider_state: None,
                policy: "default".into(),
                expires_at: None,
                initial_access_token_id: None,
                revision: 0,
                lease_until: None,
                vouched: None,
            };
            store.insert(&client, None).await.unwrap();
            if n % 3 != 1 {
                uses.push((client.client_id.to_string(), EPOCH + 100 + n % 6));
            }
            if n % 4 == 1 {
                let url = format!("https://docs.example/{n}");
                let caps = DocumentCaps {
                    per_host: 100,
                    in_all: 100,
                };
                store
                    .reserve(&url, "docs.example", caps, 0, i64::MAX)
                    .await
                    .unwrap();
                let mapping = Mapping {
                    client_id: client.client_id.to_string(),
                    document_hash: vec![0; 32],
                    fresh_until: i64::MAX,
                    last_used: 0,
                };
                store.update_mapping(&url, &mapping, 0).await.unwrap();
            }
        }
        store.record_uses(&uses).await.unwrap();
        store
    }

    /// Filters that several drivers can serve, each matching some clients.
    fn filters() -> Vec<ClientFilter> {
        let none = ClientFilter::default;
        vec![
            ClientFilter {
                software_id: Some("a".into()),
                redirect_host: Some("claude.ai".into()),
                ..none()
            },
            ClientFilter {
                software_id: Some("b".into()),
                state: Some(ClientState::Active),
                ..none()
            },
            ClientFilter {
                redirect_host: Some("127.0.0.1".into()),
                name_prefix: Some("cu".into()),
                ..none()
            },
            ClientFilter {
                name_prefix: Some("c".into()),
                used: Some(Used::Since(EPOCH + 103)),
                ..none()
            },
            ClientFilter {
                origin: Some(Origin::Document),
                state: Some(ClientState::Active),
                ..none()
            },
            ClientFilter {
                software_id: Some("b".into()),
                name_prefix: Some("claude".into()),
                used: Some(Used::Since(EPOCH)),
                origin: Some(Origin::Document),
                registered_from: Some(EPOCH + 3),
                registered_until: Some(EPOCH + 28),
                ..none()
            },
            ClientFilter {
                state: Some(ClientState::Pending),
                redirect_host: Some("x.example".into()),
                used: Some(Used::NotSince(EPOCH + 106)),
                origin: Some(Origin::Registered),
                ..none()
            },
            ClientFilter {
                name_prefix: Some("claude".into()),
                used: Some(Used::Never),
                registered_from: Some(EPOCH + 10),
                ..none()
            },
        ]
    }

    /// Every page of `filter` through `driver`, `size` at a time.
    async fn pages(
        store: &SqlStore,
        driver: Driver,
        filter: &ClientFilter,
        size: u32,
    ) -> Vec<String> {
        let search = Search::of(filter);
        let mut ids = Vec::new();
        let mut after: Option<PageAfter> = None;
        loop {
            let mut binds = Binds::default();
            let inner = page_ids(driver, &search, after.as_ref(), size, &mut binds);
            let page = store
                .fetch_listed(&format!("c.client_id IN ({inner})"), binds)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(PageAfter {
                issued_at: last.client.issued_at,
                client_id: last.client.client_id.clone(),
            });
            ids.extend(page.iter().map(|l| l.client.client_id.to_string()));
        }
        ids
    }

    /// Whichever index drives, a filter lists the same clients in the same
    /// order, page after page; and the store's own choice agrees.
    #[tokio::test]
    async fn every_driver_lists_the_same_clients() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        for filter in filters() {
            let search = Search::of(&filter);
            let reference = pages(&store, Driver::All, &filter, 100).await;
            assert!(!reference.is_empty(), "{filter:?} matches some clients");
            let allowed = Driver::WALKED
                .into_iter()
                .chain(Driver::WHOLE)
                .filter(|d| d.allowed_by(&search));
            for driver in allowed {
                let by_100 = pages(&store, driver, &filter, 100).await;
                assert_eq!(by_100, reference, "{driver:?}, {filter:?}");
                let by_3 = pages(&store, driver, &filter, 3).await;
                assert_eq!(by_3, reference, "{driver:?} by 3, {filter:?}");
            }
            for size in [100, 2] {
                let found = store.find(&filter, None, size).await.unwrap();
                let found = found
                    .iter()
                    .map(|l| l.client.client_id.to_string())
                    .collect::<Vec<_>>();
                assert!(reference.starts_with(&found), "{filter:?}");
                assert_eq!(found.len(), reference.len().min(size as usize));
            }
        }
    }

    /// SQLite's plan of a page through each driver: that driver's index,
    /// and no sort for those that read in order.
    #[tokio::test]
    async fn each_driver_reads_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let filter = ClientFilter {
            software_id: Some("a".into()),
            redirect_host: Some("claude.ai".into()),
            name_prefix: Some("claude".into()),
            state: Some(ClientState::Active),
            registered_from: Some(EPOCH),
            registered_until: Some(EPOCH + 20),
            used: Some(Used::Since(EPOCH)),
            origin: Some(Origin::Document),
        };
        let after = PageAfter {
            issued_at: EPOCH + 10,
            client_id: ClientId::new("n20"),
        };
        // Each driver's table, under its alias, read through this index.
        let expected = [
            (Driver::All, "k", "clients_issued"),
            (Driver::Software, "k", "clients_software_issued"),
            (Driver::State, "k", "clients_state_issued"),
            (Driver::Host, "h", "PRIMARY KEY"),
            (Driver::Name, "k", "clients_name_key"),
            (Driver::UsedSince, "u", "client_usage_last_used_at"),
            (
                Driver::Document,
                "front_cimd_clients",
                "front_cimd_clients_client_id",
            ),
        ];
        for (driver, table, index) in expected {
            for after in [None, Some(&after)] {
                let mut binds = Binds::default();
                let sql = page_ids(driver, &Search::of(&filter), after, 50, &mut binds);
                let plan = sqlx::query_with(
                    &format!("EXPLAIN QUERY PLAN {sql}"),
                    binds.arguments().unwrap(),
                )
                .fetch_all(&store.pool)
                .await
                .unwrap()
                .iter()
                .map(|row| row.try_get::<String, _>("detail").unwrap())
                .collect::<Vec<_>>();
                let read = |step: &String| {
                    ["SEARCH", "SCAN"]
                        .iter()
                        .any(|how| step.starts_with(&format!("{how} {table} USING ")))
                        && step.contains(index)
                };
                assert!(plan.iter().any(read), "{driver:?}: {plan:#?}");
                let sorted = plan.iter().any(|step| step.contains("TEMP B-TREE"));
                assert_eq!(sorted, !driver.walked(), "{driver:?}: {plan:#?}");
                // The clients are read by their key, after the driver.
                if driver.alias() != "k" && (driver != Driver::Host || filter.state.is_some()) {
                    let by_key = "SEARCH k USING INDEX sqlite_autoindex_clients_1";
                    assert!(
                        plan.iter().any(|step| step.starts_with(by_key)),
                        "{driver:?}: {plan:#?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_prefix_ends_before_the_next_character() {
        assert_eq!(prefix_end("claude"), Some("claudf".into()));
        assert_eq!(prefix_end("a\u{10FFFF}"), Some("b".into()));
        assert_eq!(prefix_end("\u{D7FF}"), Some("\u{E000}".into()));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        assert_eq!(prefix_end(""), None);
    }
}
