//! [`RouteTable`]: which action on which resource an incoming request asks for, for a
//! gateway that knows only the request's method and path (Envoy `ext_authz`, nginx
//! `auth_request`, Traefik `forwardAuth`).

use std::fmt;

use super::template::{RenderError, ResourceTemplate, TemplateError};

/// One entry of a [`RouteTable`]: a method (or any method) and a path template such as
/// `/v1/models/{model}/infer`, mapped to an action and a resource template such as
/// `models/{model}`.
///
/// Path templates use the resource templates' placeholders: `{name}` matches one
/// non-empty path segment, `{*name}` (last only) the non-empty rest of the path. Paths
/// are matched as sent, without percent-decoding: a `%` in a placeholder's value is not
/// a resource segment, so the request is refused (403) rather than decoded into a
/// different resource than the one the upstream will see.
#[derive(Clone, Debug)]
pub struct Route {
    method: Option<String>,
    segments: Vec<PathSegment>,
    path: String,
    action: String,
    resource: ResourceTemplate,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PathSegment {
    Literal(String),
    Param(String),
    Rest(String),
}

/// A route that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The path template is not `/`-rooted segments, literal or `{name}`, with at most a
    /// final `{*name}`.
    #[error("invalid path template {path:?}: {reason}")]
    Path {
        /// The path template, as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The resource template does not parse.
    #[error(transparent)]
    Resource(#[from] TemplateError),
    /// The resource template names a placeholder the path template does not have.
    #[error("resource template {resource:?} uses {{{name}}}, which path {path:?} does not have")]
    UnknownPlaceholder {
        /// The resource template.
        resource: String,
        /// The path template.
        path: String,
        /// The placeholder.
        name: String,
    },
    /// A placeholder is `{*name}` (the rest of the path) in one template and `{name}`
    /// (one segment) in the other.
    #[error(
        "resource template {resource:?}: write {name} the same way as in the path ({{{name}}} for one segment, {{*{name}}} for the rest of the path)"
    )]
    PlaceholderKind {
        /// The resource template.
        resource: String,
        /// The placeholder.
        name: String,
    },
    /// A path placeholder the resource template does not use.
    #[error(
        "path {path:?} has {{{name}}}, which the resource template does not use: every value would be allowed, `..` included"
    )]
    UnusedPlaceholder {
        /// The path template.
        path: String,
        /// The placeholder.
        name: String,
    },
    /// The method is not an HTTP token (`GET`, `POST`, ...) or `*`.
    #[error("invalid method {0:?}: expected an HTTP method such as GET or POST, or \"*\"")]
    Method(String),
    /// The action is empty.
    #[error("the route for {0:?} has an empty action")]
    EmptyAction(String),
}

impl Route {
    /// A route: `method` (`"*"` for any; compared case-sensitively, as HTTP does), the
    /// path template, the action, and the resource template.
    ///
    /// # Errors
    /// A [`RouteError`] naming what is wrong.
    pub fn new(method: &str, path: &str, action: &str, resource: &str) -> Result<Self, RouteError> {
        let method = parse_method(method)?;
        let segments = parse_path(path)?;
        if action.trim().is_empty() {
            return Err(RouteError::EmptyAction(path.to_owned()));
        }
        let resource = ResourceTemplate::parse(resource)?;
        for (name, rest) in resource.placeholders() {
            let in_path = segments.iter().find_map(|s| match s {
                PathSegment::Param(n) if n == name => Some(false),
                PathSegment::Rest(n) if n == name => Some(true),
                _ => None,
            });
            let error = match in_path {
                None => RouteError::UnknownPlaceholder {
                    resource: resource.as_str().to_owned(),
                    path: path.to_owned(),
                    name: name.to_owned(),
                },
                Some(path_rest) if path_rest != rest => RouteError::PlaceholderKind {
                    resource: resource.as_str().to_owned(),
                    name: name.to_owned(),
                },
                Some(_) => continue,
            };
            return Err(error);
        }
        if let Some(unused) = segments.iter().find_map(|s| match s {
            PathSegment::Param(n) | PathSegment::Rest(n)
                if !resource.placeholders().any(|(name, _)| name == n) =>
            {
                Some(n.clone())
            }
            _ => None,
        }) {
            // A placeholder the resource ignores lets any value through, `..` included:
            // the upstream would resolve it to a path the decision never saw.
            return Err(RouteError::UnusedPlaceholder {
                path: path.to_owned(),
                name: unused,
            });
        }
        Ok(Self {
            method,
            segments,
            path: path.to_owned(),
            action: action.to_owned(),
            resource,
        })
    }

    /// The method, or `None` for any method.
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// The path template, as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The action the route asks for.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The resource template.
    pub fn resource(&self) -> &ResourceTemplate {
        &self.resource
    }

    /// The path parameters when `method` and `path` (without its query) match this route.
    fn matches<'p>(&self, method: &str, path: &'p str) -> Option<Vec<(&str, &'p str)>> {
        if self.method.as_deref().is_some_and(|m| m != method) {
            return None;
        }
        let mut rest = path.strip_prefix('/')?;
        let mut params = Vec::new();
        for (i, segment) in self.segments.iter().enumerate() {
            let last = i + 1 == self.segments.len();
            if let PathSegment::Rest(name) = segment {
                if rest.is_empty() {
                    return None;
                }
                params.push((name.as_str(), rest));
                return Some(params);
            }
            let (value, tail) = match rest.split_once('/') {
                Some((value, tail)) if !last => (value, tail),
                Some(_) => return None,
                None if last => (rest, ""),
                None => return None,
            };
            match segment {
                PathSegment::Literal(text) if text == value => {}
                PathSegment::Param(name) if !value.is_empty() => params.push((name, value)),
                _ => return None,
            }
            rest = tail;
        }
        // Only the root route gets here with a path left over.
        rest.is_empty().then_some(params)
    }
}

fn parse_method(method: &str) -> Result<Option<String>, RouteError> {
    if method == "*" {
        return Ok(None);
    }
    let token = !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if token {
        Ok(Some(method.to_owned()))
    } else {
        Err(RouteError::Method(method.to_owned()))
    }
}

fn parse_path(path: &str) -> Result<Vec<PathSegment>, RouteError> {
    let error = |reason| RouteError::Path {
        path: path.to_owned(),
        reason,
    };
    let body = path
        .strip_prefix('/')
        .ok_or(error("it must start with '/'"))?;
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = body.split('/').collect();
    let mut segments = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(inner) => match inner.strip_prefix('*') {
                Some(name) if i + 1 == parts.len() => PathSegment::Rest(placeholder(name, path)?),
                Some(_) => return Err(error("a {*rest} placeholder must be the last segment")),
                None => PathSegment::Param(placeholder(inner, path)?),
            },
            None if part.is_empty() => return Err(error("empty segment")),
            None if part.contains(['{', '}', '*', '?', '#', '%']) => {
                return Err(error(
                    "a literal segment holds no braces, '*', '?', '#' or '%'",
                ));
            }
            None => PathSegment::Literal((*part).to_owned()),
        };
        segments.push(segment);
    }
    Ok(segments)
}

fn placeholder(name: &str, path: &str) -> Result<String, RouteError> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(name.to_owned())
    } else {
        Err(RouteError::Path {
            path: path.to_owned(),
            reason: "a placeholder name is ASCII letters, digits and '_'",
        })
    }
}

/// The routes of a gateway-facing decision point, tried in order: the first route whose
/// method and path template match a request names its action and resource; a request no
/// route matches is denied by the caller of [`RouteTable::find`].
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

/// What a matched request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMatch<'r> {
    /// The index of the matched route in the table (0-based).
    pub index: usize,
    /// The action.
    pub action: &'r str,
    /// The resource, or why the request's path cannot fill the resource template.
    pub resource: Result<String, RenderError>,
}

impl RouteTable {
    /// A table of `routes`, tried in this order.
    pub fn new(routes: Vec<Route>) -> Self {
        Self { routes }
    }

    /// The routes, in order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The first route matching `method` and `uri` (a path, with or without a query or
    /// fragment, which are ignored), with the resource filled from the path; `None` when
    /// no route matches.
    pub fn find(&self, method: &str, uri: &str) -> Option<RouteMatch<'_>> {
        let path = uri.split(['?', '#']).next().unwrap_or_default();
        self.routes.iter().enumerate().find_map(|(index, route)| {
            let params = route.matches(method, path)?;
            let resource = route.resource.render(|name| {
                params
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, value)| *value)
            });
            Some(RouteMatch {
                index,
                action: &route.action,
                resource,
            })
        })
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = self.method.as_deref().unwrap_or("*");
        write!(
            f,
            "{method} {} -> {} on {}",
            self.path, self.action, self.resource
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        RouteTable::new(vec![
            Route::new(
                "POST",
                "/v1/models/{model}/infer",
                "inference.invoke",
                "models/{model}",
            )
            .unwrap(),
            Route::new(
                "GET",
                "/v1/datasets/{*name}",
                "datasets.read",
                "datasets/{*name}",
            )
            .unwrap(),
            Route::new("*", "/v1/audit", "audit.read", "audit/decisions").unwrap(),
        ])
    }

    #[test]
    fn the_first_matching_route_names_action_and_resource() {
        let table = table();
        let m = table
            .find("POST", "/v1/models/llama-3/infer?stream=1")
            .unwrap();
        assert_eq!((m.index, m.action), (0, "inference.invoke"));
        assert_eq!(m.resource, Ok("models/llama-3".to_owned()));
        let m = table
            .find("GET", "/v1/datasets/pii/2026/q3.parquet")
            .unwrap();
        assert_eq!(m.resource, Ok("datasets/pii/2026/q3.parquet".to_owned()));
        assert_eq!(table.find("DELETE", "/v1/audit").unwrap().index, 2);
    }

    #[test]
    fn everything_else_matches_nothing() {
        let table = table();
        for (method, path) in [
            ("GET", "/v1/models/llama-3/infer"),
            ("post", "/v1/models/llama-3/infer"),
            ("POST", "/v1/models//infer"),
            ("POST", "/v1/models/llama-3/infer/extra"),
            ("POST", "/v1/models/llama-3"),
            ("GET", "/v1/datasets/"),
            ("GET", "/v1/audit/"),
            ("GET", "v1/audit"),
            ("GET", ""),
        ] {
            assert!(table.find(method, path).is_none(), "{method} {path}");
        }
    }

    #[test]
    fn an_escaped_slash_is_not_decoded_into_a_resource() {
        let table = table();
        let m = table.find("POST", "/v1/models/a%2F..%2Fb/infer").unwrap();
        assert_eq!(
            m.resource,
            Err(RenderError::InvalidValue {
                name: "model".into()
            })
        );
    }

    #[test]
    fn bad_routes_are_refused_with_what_is_wrong() {
        assert!(matches!(
            Route::new("POST", "v1/x", "a", "r"),
            Err(RouteError::Path { .. })
        ));
        assert!(matches!(
            Route::new("POST", "/v1/{*rest}/x", "a", "r"),
            Err(RouteError::Path { .. })
        ));
        assert!(matches!(
            Route::new("POST", "/v1//x", "a", "r"),
            Err(RouteError::Path { .. })
        ));
        assert!(matches!(
            Route::new("PO ST", "/v1/x", "a", "r"),
            Err(RouteError::Method(_))
        ));
        assert!(matches!(
            Route::new("GET", "/v1/{model}", "", "models/{model}"),
            Err(RouteError::EmptyAction(_))
        ));
        assert!(matches!(
            Route::new("GET", "/v1/{*rest}", "a", "files/{rest}"),
            Err(RouteError::PlaceholderKind { .. })
        ));
        assert_eq!(
            Route::new("GET", "/v1/{model}", "a", "models/{name}")
                .unwrap_err()
                .to_string(),
            "resource template \"models/{name}\" uses {name}, which path \"/v1/{model}\" does not have"
        );
    }

    #[test]
    fn a_path_placeholder_the_resource_ignores_is_refused() {
        assert!(matches!(
            Route::new("GET", "/v1/public/{*rest}", "public.read", "public"),
            Err(RouteError::UnusedPlaceholder { name, .. }) if name == "rest"
        ));
    }

    #[test]
    fn the_root_path_is_a_route() {
        let table = RouteTable::new(vec![Route::new("GET", "/", "home.read", "home").unwrap()]);
        assert_eq!(table.find("GET", "/?x").unwrap().action, "home.read");
        assert!(table.find("GET", "/x").is_none());
    }
}
