//! The published Autotask routes (`data/autotask_routes.txt`, generated from the API's Swagger
//! by `tests/contract/autotask_routes.py`): the simulator answers 404 for a path the real API
//! lacks and 405 for a method its path does not allow, and tests check the URLs clients build
//! against the same list, so neither can drift from the published API.

use std::sync::OnceLock;

/// The committed route list, one `METHOD /V1.0/Path/{int}` a line.
const ROUTES: &str = include_str!("../data/autotask_routes.txt");

/// One segment of a route template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Literal(&'static str),
    /// `{int}`: digits (an optional leading `-`).
    Int,
    /// `{str}`: any one segment.
    Str,
}

/// A published route: a method and a path template below `/ATServicesRest`.
#[derive(Debug)]
pub struct ApiRoute {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: &'static str,
    /// The template as listed, e.g. `/V1.0/Companies/{int}`.
    pub template: &'static str,
    segs: Vec<Seg>,
}

/// How a request path fares against the published routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMatch {
    /// The path and method are published; the template that matched.
    Allowed(&'static str),
    /// The path is published, but not with this method (HTTP 405); the methods it has.
    MethodNotAllowed(Vec<&'static str>),
    /// No published template matches the path (HTTP 404).
    NotFound,
}

/// Every published route, in the file's order.
pub fn api_routes() -> &'static [ApiRoute] {
    static PARSED: OnceLock<Vec<ApiRoute>> = OnceLock::new();
    PARSED.get_or_init(|| {
        ROUTES
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| {
                let (method, template) = l.split_once(' ')?;
                let segs = template
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(|s| match s {
                        "{int}" => Seg::Int,
                        "{str}" => Seg::Str,
                        s => Seg::Literal(s),
                    })
                    .collect();
                Some(ApiRoute {
                    method,
                    template,
                    segs,
                })
            })
            .collect()
    })
}

/// Does `seg` fill a template segment? `Some(true)` for a literal match (which wins over a
/// parameter, as in ASP.NET routing), `Some(false)` for a parameter.
fn fills(t: &Seg, seg: &str) -> Option<bool> {
    match t {
        Seg::Literal(l) => l.eq_ignore_ascii_case(seg).then_some(true),
        Seg::Int => {
            let digits = seg.strip_prefix('-').unwrap_or(seg);
            (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(false)
        }
        Seg::Str => Some(false),
    }
}

/// Matches `method` on `path` (below `/ATServicesRest`, e.g. `/V1.0/Companies/5`; a query
/// string is ignored) against the published routes. Of the templates the path fits, those
/// with a literal segment where the others have a parameter win.
pub fn match_route(method: &str, path: &str) -> RouteMatch {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // Candidates with their literal/parameter pattern; the most literal-first pattern wins.
    let mut best: Option<Vec<bool>> = None;
    let mut fitting: Vec<&ApiRoute> = Vec::new();
    for r in api_routes() {
        if r.segs.len() != segs.len() {
            continue;
        }
        let Some(pattern) = r
            .segs
            .iter()
            .zip(&segs)
            .map(|(t, s)| fills(t, s))
            .collect::<Option<Vec<bool>>>()
        else {
            continue;
        };
        match &best {
            Some(b) if pattern < *b => {}
            Some(b) if pattern == *b => fitting.push(r),
            _ => {
                best = Some(pattern);
                fitting = vec![r];
            }
        }
    }
    if fitting.is_empty() {
        return RouteMatch::NotFound;
    }
    match fitting
        .iter()
        .find(|r| r.method.eq_ignore_ascii_case(method))
    {
        Some(r) => RouteMatch::Allowed(r.template),
        None => RouteMatch::MethodNotAllowed(fitting.iter().map(|r| r.method).collect()),
    }
}

/// Is `method` on `path` published (see [`match_route`])?
pub fn allows(method: &str, path: &str) -> bool {
    matches!(match_route(method, path), RouteMatch::Allowed(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_segments_win_and_methods_decide_405() {
        assert_eq!(
            match_route("GET", "/V1.0/Companies/5"),
            RouteMatch::Allowed("/V1.0/Companies/{int}")
        );
        assert_eq!(
            match_route("POST", "/v1.0/companies/query?x=1"),
            RouteMatch::Allowed("/V1.0/Companies/query")
        );
        assert!(matches!(
            match_route("DELETE", "/V1.0/Companies/5"),
            RouteMatch::MethodNotAllowed(_)
        ));
        assert_eq!(
            match_route("GET", "/V1.0/Companies/abc"),
            RouteMatch::NotFound
        );
        assert_eq!(match_route("POST", "/V1.0/Contacts"), RouteMatch::NotFound);
        assert_eq!(
            match_route("GET", "/V1.0/Companies/5/Contacts/entityInformation/fields"),
            RouteMatch::Allowed("/V1.0/Companies/{str}/Contacts/entityInformation/fields")
        );
        assert!(allows("GET", "/VersionInformation"));
        assert!(allows("GET", "/V1.0/zoneInformation"));
    }
}
