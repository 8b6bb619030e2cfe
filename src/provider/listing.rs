//! Walking a provider's paged client listing safely: every next-page link
//! stays on the provider's own origin (so its credential goes nowhere
//! else), and a listing that stops advancing (the same page again, a page of
//! ids all seen before, more pages than any real listing has) ends with an
//! error instead of looping forever.

use std::collections::HashSet;
use std::future::Future;

use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use url::Url;

use super::ProviderError;
use super::rest::Answer;

/// More pages than any listing the gateway walks should have (at 100 to
/// 500 clients a page, one to five million clients).
const MAX_PAGES: u32 = 10_000;

/// The progress of one listing.
#[derive(Debug, Default)]
pub struct Listing {
    pages: u32,
    seen_pages: HashSet<String>,
    seen_ids: HashSet<String>,
}

impl Listing {
    /// Before fetching the page named `page` (its URL, cursor or offset):
    /// refuses one seen before, or one past the page cap.
    pub fn next_page(&mut self, page: &str) -> Result<(), ProviderError> {
        self.pages += 1;
        if self.pages > MAX_PAGES {
            return Err(stalled(format!("more than {MAX_PAGES} pages")));
        }
        if !self.seen_pages.insert(page.to_owned()) {
            return Err(stalled(format!("page `{page}` came round again")));
        }
        Ok(())
    }

    /// After a page: refuses a page that holds clients but none not seen
    /// before (a provider that ignores the paging parameters).
    pub fn add<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>) -> Result<(), ProviderError> {
        let mut any = false;
        let mut new = false;
        for id in ids {
            any = true;
            new |= self.seen_ids.insert(id.to_owned());
        }
        if any && !new {
            return Err(stalled("a page brought no client not seen before".into()));
        }
        Ok(())
    }
}

fn stalled(why: String) -> ProviderError {
    ProviderError::Indeterminate(format!(
        "the provider's client listing does not advance: {why}"
    ))
}

/// The `rel="next"` target of an RFC 8288 `Link` header, resolved against
/// `base`; refused when it leaves `base`'s origin.
pub fn next_link(base: &Url, headers: &HeaderMap) -> Result<Option<Url>, ProviderError> {
    let link = headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find(|link| link.contains("rel=\"next\""))
        .and_then(|link| {
            let start = link.find('<')? + 1;
            let end = link.find('>')?;
            link.get(start..end).map(str::to_owned)
        });
    let Some(link) = link else {
        return Ok(None);
    };
    let next = base.join(&link).map_err(|e| {
        ProviderError::Indeterminate(format!("the provider's next-page link is not a URL: {e}"))
    })?;
    if next.origin() != base.origin() {
        return Err(ProviderError::Indeterminate(format!(
            "the provider's next-page link leaves its origin ({}), so it is not followed",
            next.origin().ascii_serialization()
        )));
    }
    Ok(Some(next))
}

/// Every item of a listing paged by RFC 8288 `Link: rel="next"` headers,
/// from `first` on, each page a JSON array; an empty page ends it too.
/// `fetch` asks for one page; `id` names an item for [`Listing::add`].
pub async fn link_paged<T, Fetch, Page>(
    first: Url,
    mut fetch: Fetch,
    id: impl Fn(&T) -> &str,
) -> Result<Vec<T>, ProviderError>
where
    T: DeserializeOwned,
    Fetch: FnMut(Url) -> Page,
    Page: Future<Output = Result<Answer, ProviderError>>,
{
    let mut items = Vec::new();
    let mut listing = Listing::default();
    let mut next = Some(first);
    while let Some(url) = next {
        listing.next_page(url.as_str())?;
        let answer = fetch(url.clone()).await?;
        if !answer.status.is_success() {
            return Err(answer.failure());
        }
        let page: Vec<T> = answer.json()?;
        if page.is_empty() {
            break;
        }
        listing.add(page.iter().map(&id))?;
        items.extend(page);
        next = next_link(&url, &answer.headers)?;
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::LINK, value.parse().unwrap());
        headers
    }

    #[test]
    fn next_links_stay_on_the_providers_origin() {
        let base = Url::parse("https://idp.example.com/admin/clients").unwrap();
        let relative = next_link(&base, &link("</admin/clients?page_token=2>; rel=\"next\""));
        assert_eq!(
            relative.unwrap().unwrap().as_str(),
            "https://idp.example.com/admin/clients?page_token=2"
        );
        for elsewhere in [
            "<https://attacker.example/steal>; rel=\"next\"",
            "<http://idp.example.com/admin/clients>; rel=\"next\"",
            "<https://idp.example.com:8443/x>; rel=\"next\"",
            "<//attacker.example/x>; rel=\"next\"",
        ] {
            assert!(next_link(&base, &link(elsewhere)).is_err(), "{elsewhere}");
        }
        assert!(
            next_link(&base, &link("</x>; rel=\"prev\""))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_listing_that_does_not_advance_ends() {
        let mut listing = Listing::default();
        listing.next_page("0").unwrap();
        listing.add(["a", "b"]).unwrap();
        listing.next_page("2").unwrap();
        assert!(listing.add(["a", "b"]).is_err(), "offset ignored: same ids");
        let mut listing = Listing::default();
        listing.next_page("cursor-1").unwrap();
        assert!(listing.next_page("cursor-1").is_err(), "same page again");
        let mut listing = Listing::default();
        listing.next_page("x").unwrap();
        listing.add([]).unwrap();
    }
}
