//! Pages of a long list (a model's versions): which page was asked for,
//! read from the address, and whether it exists.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// Where a page sits in its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageInfo {
    /// 1-based.
    pub page: u32,
    /// At least 1: an empty list has one empty page.
    pub pages: u32,
    pub per_page: u32,
    pub total: u32,
}

impl PageInfo {
    /// 1-based positions of the page's first and last item (`(0, 0)` when empty).
    pub fn range(&self) -> (u32, u32) {
        if self.total == 0 {
            return (0, 0);
        }
        let first = (self.page - 1) * self.per_page + 1;
        (first, (first + self.per_page - 1).min(self.total))
    }
}

/// Reads a page number as written in an address (`?page=3`); none given is page 1.
pub fn parse_page(given: Option<&str>) -> Result<u32, DomainError> {
    let Some(text) = given.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(1);
    };
    match text.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(DomainError::Invalid(format!(
            "page “{text}” is not a page number; pages are numbered from 1"
        ))),
    }
}

/// Where page `page` of a list of `total` items sits, `per_page` to a page
/// (a store reads only that page: `LIMIT per_page OFFSET skip`); a page past
/// the end is refused with how many there are (what of is `noun`, plural).
pub fn locate(total: u32, page: u32, per_page: u32, noun: &str) -> Result<PageInfo, DomainError> {
    let per_page = per_page.max(1);
    let pages = total.div_ceil(per_page).max(1);
    if page == 0 || page > pages {
        return Err(DomainError::NotFound(format!(
            "page {page} does not exist: there {} {total} {noun}, {per_page} to a page, so pages 1 to {pages}",
            if total == 1 { "is" } else { "are" }
        )));
    }
    Ok(PageInfo {
        page,
        pages,
        per_page,
        total,
    })
}

impl PageInfo {
    /// How many items come before this page.
    pub fn skip(&self) -> u32 {
        (self.page - 1) * self.per_page
    }
}

/// Page `page` of `items`, `per_page` to a page; a page past the end is
/// refused with how many there are (what of is `noun`, plural).
pub fn page_of<T>(
    items: Vec<T>,
    page: u32,
    per_page: u32,
    noun: &str,
) -> Result<(Vec<T>, PageInfo), DomainError> {
    let total = u32::try_from(items.len()).unwrap_or(u32::MAX);
    let info = locate(total, page, per_page, noun)?;
    let slice = items
        .into_iter()
        .skip(info.skip() as usize)
        .take(info.per_page as usize)
        .collect();
    Ok((slice, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cut_the_list_in_order_and_say_where_they_are() {
        let items: Vec<u32> = (1..=120).collect();
        let (first, info) = page_of(items.clone(), 1, 50, "versions").expect("page 1");
        assert_eq!(
            (first.len(), first[0], info.pages, info.range()),
            (50, 1, 3, (1, 50))
        );
        let (last, info) = page_of(items, 3, 50, "versions").expect("page 3");
        assert_eq!(last, (101..=120).collect::<Vec<_>>());
        assert_eq!(info.range(), (101, 120));
    }

    #[test]
    fn a_page_located_by_the_total_alone_skips_the_pages_before_it() {
        let info = locate(1000, 20, 50, "versions").expect("the last page");
        assert_eq!(
            (info.skip(), info.range(), info.pages),
            (950, (951, 1000), 20)
        );
        assert_eq!(locate(0, 1, 50, "versions").map(|i| i.skip()).ok(), Some(0));
        let err = locate(1000, 21, 50, "versions").unwrap_err();
        assert!(err.to_string().contains("pages 1 to 20"), "{err}");
    }

    #[test]
    fn an_empty_list_has_one_empty_page() {
        let (items, info) = page_of(Vec::<u32>::new(), 1, 50, "versions").expect("page 1");
        assert!(items.is_empty());
        assert_eq!((info.pages, info.range()), (1, (0, 0)));
    }

    #[test]
    fn a_page_past_the_end_is_refused_with_how_many_there_are() {
        let err = page_of((1..=120).collect::<Vec<u32>>(), 4, 50, "versions").unwrap_err();
        assert_eq!(err.code(), "not_found");
        assert!(err.to_string().contains("pages 1 to 3"), "{err}");
        assert!(page_of(vec![1], 0, 50, "versions").is_err());
    }

    #[test]
    fn page_numbers_are_read_from_the_address_or_refused_in_words() {
        assert_eq!(parse_page(None).ok(), Some(1));
        assert_eq!(parse_page(Some(" ")).ok(), Some(1));
        assert_eq!(parse_page(Some("7")).ok(), Some(7));
        for bad in ["0", "-1", "two", "99999999999"] {
            let err = parse_page(Some(bad)).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
            assert_eq!(err.code(), "invalid_input");
        }
    }
}
