//! The HTTP side: one fallback handler that parses paths itself (so that `ATServicesRest`,
//! `V1.0` and entity names match in any casing, and 404 vs 405 follow ASP.NET's rule: no
//! template → 404, template with another method → 405).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::data::UdfDefinition;
use crate::query::{self, get_ci};
use crate::routes::{self, RouteMatch};
use crate::schema::{self, ChildRoute, Spec};
use crate::{FailureConfig, RequestLogEntry, SimConfig, SimError, Simulator};

type Table = BTreeMap<i64, Map<String, Value>>;

pub struct Shared {
    pub config: SimConfig,
    pub tables: Mutex<BTreeMap<&'static str, Table>>,
    pub root_url: Mutex<Option<String>>,
    pub log: Mutex<Vec<RequestLogEntry>>,
    pub max_conc: Mutex<HashMap<String, usize>>,
    in_flight: Mutex<HashMap<(String, String), usize>>,
    failures: Mutex<(FailureConfig, u64)>,
    hits: Mutex<VecDeque<Instant>>,
    /// The highest id each entity has handed out: ids are never reused after a delete, as in
    /// Autotask.
    last_ids: Mutex<HashMap<&'static str, i64>>,
    pub webhooks: crate::webhooks::Webhooks,
}

/// GET URLs longer than this (path and query) get a 404, as in the real service.
pub const MAX_GET_URL: usize = 2100;

const THREAD_MSG: &str = "Thread Threshold Exceeded — The Autotask API thread threshold of 3 threads has been exceeded for this integration and endpoint. Please reduce the number of concurrent requests. (Itgenatr005)";

impl Shared {
    pub fn new(config: SimConfig) -> Result<Shared, SimError> {
        let mut tables: BTreeMap<&'static str, Table> = BTreeMap::new();
        for s in schema::specs() {
            tables.insert(s.name, Table::new());
        }
        for (entity, records) in &config.data.records {
            let spec = schema::spec(entity)
                .ok_or_else(|| SimError::Data(format!("unknown entity {entity}")))?;
            let table = tables.get_mut(spec.name).unwrap();
            for r in records {
                let obj = r
                    .as_object()
                    .ok_or_else(|| SimError::Data(format!("{entity}: record is not an object")))?;
                let id = obj.get("id").and_then(Value::as_i64).ok_or_else(|| {
                    SimError::Data(format!("{entity}: record without integer id"))
                })?;
                table.insert(id, obj.clone());
            }
        }
        for ent in config.data.picklists.keys().chain(config.data.udfs.keys()) {
            if schema::spec(ent).is_none() {
                return Err(SimError::Data(format!("unknown entity {ent}")));
            }
        }
        for (entity, n) in &config.extra_records {
            let spec = schema::spec(entity)
                .ok_or_else(|| SimError::Data(format!("extra_records: unknown entity {entity}")))?;
            let table = tables.get_mut(spec.name).unwrap();
            let templates: Vec<Map<String, Value>> = table.values().cloned().collect();
            if templates.is_empty() {
                return Err(SimError::Data(format!(
                    "extra_records: {entity} has no seeded record to copy"
                )));
            }
            let first = table.keys().max().copied().unwrap_or(0) + 1;
            for (k, next) in (0..*n).zip(first..) {
                let mut r = templates[k % templates.len()].clone();
                r.insert("id".into(), json!(next));
                for key in [
                    "companyName",
                    "lastName",
                    "title",
                    "referenceTitle",
                    "serialNumber",
                    "name",
                    "contractName",
                    "projectName",
                ] {
                    if let Some(Value::String(s)) = r.get(key) {
                        let s = format!("{s} {}", k + 1);
                        r.insert(key.into(), json!(s));
                    }
                }
                for key in ["emailAddress", "email"] {
                    if let Some(Value::String(s)) = r.get(key) {
                        let s = format!("x{}.{s}", k + 1);
                        r.insert(key.into(), json!(s));
                    }
                }
                table.insert(next, r);
            }
        }
        let failures = config.failures.clone();
        Ok(Shared {
            config,
            tables: Mutex::new(tables),
            root_url: Mutex::new(None),
            log: Mutex::new(Vec::new()),
            max_conc: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            failures: Mutex::new((failures, 0)),
            hits: Mutex::new(VecDeque::new()),
            last_ids: Mutex::default(),
            webhooks: crate::webhooks::Webhooks::new(),
        })
    }

    pub fn endpoint_key(&self, entity: &str) -> String {
        schema::spec(entity)
            .map(|s| s.name.to_string())
            .unwrap_or_else(|| entity.to_string())
    }

    pub fn set_failures(&self, f: FailureConfig) {
        *self.failures.lock().unwrap() = (f, 0);
    }

    pub(crate) fn udfs(&self, spec: &Spec) -> &[UdfDefinition] {
        self.config
            .data
            .udfs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(spec.name))
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }

    /// Picklist values of a field: from the tenant data, or generated for the webhook
    /// `fieldID`/`udfFieldID` fields (see webhooks.rs).
    fn picklist(&self, spec: &Spec, field: &str) -> Option<Vec<crate::data::PicklistValue>> {
        if let Some(target) = crate::webhooks::numbered_entity(spec, field) {
            let names: Vec<String> = if field == "fieldID" {
                target.fields.iter().map(|f| f.name.to_string()).collect()
            } else {
                self.udfs(target).iter().map(|d| d.name.clone()).collect()
            };
            return Some(
                names
                    .into_iter()
                    .enumerate()
                    .map(|(i, n)| crate::data::PicklistValue {
                        value: (i + 1).to_string(),
                        label: n,
                        is_default_value: false,
                        sort_order: i as i64 + 1,
                        parent_value: None,
                        is_active: true,
                        is_system: true,
                    })
                    .collect(),
            );
        }
        self.config
            .data
            .picklists
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(spec.name))
            .and_then(|(_, m)| m.iter().find(|(f, _)| f.eq_ignore_ascii_case(field)))
            .map(|(_, v)| v.clone())
    }

    pub fn records(&self, entity: &str) -> Vec<Value> {
        let Some(spec) = schema::spec(entity) else {
            return Vec::new();
        };
        let tables = self.tables.lock().unwrap();
        tables[spec.name]
            .values()
            .map(|r| Value::Object(self.shape(spec, r, None)))
            .collect()
    }

    pub fn insert(&self, entity: &str, record: Value) -> i64 {
        let spec = schema::spec(entity).unwrap_or_else(|| panic!("unknown entity {entity}"));
        let Value::Object(mut obj) = record else {
            panic!("insert: record must be a JSON object")
        };
        let mut tables = self.tables.lock().unwrap();
        let table = tables.get_mut(spec.name).unwrap();
        let id = obj
            .get("id")
            .and_then(Value::as_i64)
            .unwrap_or_else(|| table.keys().max().copied().unwrap_or(0) + 1);
        obj.insert("id".into(), json!(id));
        table.insert(id, obj);
        id
    }

    /// A record in API shape: id, every field (null when unset), then userDefinedFields.
    fn shape(
        &self,
        spec: &Spec,
        rec: &Map<String, Value>,
        include: Option<&[&'static str]>,
    ) -> Map<String, Value> {
        let mut out = Map::new();
        for f in &spec.fields {
            if let Some(inc) = include
                && f.name != "id"
                && !inc.contains(&f.name)
            {
                continue;
            }
            out.insert(
                f.name.to_string(),
                rec.get(f.name).cloned().unwrap_or(Value::Null),
            );
        }
        let udfs = self.udfs(spec);
        if !udfs.is_empty() && include.is_none_or(|i| i.contains(&"userDefinedFields")) {
            let list: Vec<Value> = udfs
                .iter()
                .map(|d| json!({"name": d.name, "value": query::udf_value(rec, &d.name)}))
                .collect();
            out.insert("userDefinedFields".into(), Value::Array(list));
        }
        out
    }
}

pub fn router(sim: Simulator) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(sim)
}

struct Reply(StatusCode, Value, Option<u64>);

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut r = (self.0, axum::Json(self.1)).into_response();
        if let Some(secs) = self.2 {
            r.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        r
    }
}

fn ok(v: Value) -> Reply {
    Reply(StatusCode::OK, v, None)
}
fn err(msgs: Vec<String>) -> Reply {
    Reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({ "errors": msgs }),
        None,
    )
}
fn err1(msg: impl Into<String>) -> Reply {
    err(vec![msg.into()])
}
fn not_found(uri: &Uri) -> Reply {
    Reply(
        StatusCode::NOT_FOUND,
        json!({"Message": format!("No HTTP resource was found that matches the request URI '{uri}'.")}),
        None,
    )
}
/// A published route the simulator does not model (the API has it; see [`routes`]).
fn not_simulated(uri: &Uri) -> Reply {
    Reply(
        StatusCode::NOT_FOUND,
        json!({"Message": format!("weft-sim does not simulate '{}' (the Autotask API has this route).", uri.path())}),
        None,
    )
}
fn not_allowed(method: &Method) -> Reply {
    Reply(
        StatusCode::METHOD_NOT_ALLOWED,
        json!({"Message": format!("The requested resource does not support http method '{method}'.")}),
        None,
    )
}

struct InFlight<'a> {
    shared: &'a Shared,
    key: (String, String),
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut m = self.shared.in_flight.lock().unwrap();
        if let Some(n) = m.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Per-request failure requests from the `X-Sim-Fail` header.
#[derive(Default)]
struct HeaderFail {
    rate: bool,
    thread: bool,
    zone: bool,
    e500: bool,
    latency: Option<Duration>,
}

fn parse_fail_header(headers: &HeaderMap) -> HeaderFail {
    let mut f = HeaderFail::default();
    let Some(v) = headers.get("x-sim-fail").and_then(|v| v.to_str().ok()) else {
        return f;
    };
    for part in v.split(',').map(str::trim) {
        match part {
            "429" => f.rate = true,
            "thread" => f.thread = true,
            "zone" | "401" => f.zone = true,
            "500" => f.e500 = true,
            _ => {
                if let Some(l) = part.strip_prefix("latency=") {
                    f.latency = if let Some(ms) = l.strip_suffix("ms") {
                        ms.parse().ok().map(Duration::from_millis)
                    } else if let Some(s) = l.strip_suffix('s') {
                        s.parse().ok().map(Duration::from_secs_f64)
                    } else {
                        l.parse().ok().map(Duration::from_millis)
                    };
                }
            }
        }
    }
    f
}

async fn handle(
    State(sim): State<Simulator>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let shared = &*sim.inner;
    let segs: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let params = query_params(&uri);
    let root = root_url(shared, &headers);
    let code = headers
        .get("apiintegrationcode")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let log = |endpoint: &str, status: u16, in_flight: usize| {
        shared.log.lock().unwrap().push(RequestLogEntry {
            method: method.to_string(),
            path: uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            endpoint: endpoint.to_string(),
            integration_code: code.clone(),
            status,
            in_flight,
        });
    };

    let rest = match unauthenticated(shared, &method, &uri, &segs, &params, &root) {
        Ok(rest) => rest,
        Err((endpoint, r)) => {
            log(endpoint, r.0.as_u16(), 0);
            return r.into_response();
        }
    };
    // A child route (`Tickets/5/Notes`) counts against its child entity (`TicketNotes`), as
    // the thread limit does in the real API.
    let child = match rest {
        [parent, id, segment, ..] if id.bytes().all(|b| b.is_ascii_digit()) => {
            schema::child_route(parent, segment).map(|c| c.child)
        }
        _ => None,
    };
    let endpoint = shared.endpoint_key(child.unwrap_or(rest[0]));
    // Concurrency accounting (per integration code and endpoint).
    let key = (code.clone().unwrap_or_default(), endpoint.clone());
    let in_flight = {
        let mut m = shared.in_flight.lock().unwrap();
        let n = m.entry(key.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let _guard = InFlight {
        shared,
        key: key.clone(),
    };
    {
        let mut mc = shared.max_conc.lock().unwrap();
        let m = mc.entry(endpoint.clone()).or_insert(0);
        *m = (*m).max(in_flight);
    }
    let hour_count = count_hour_hit(shared);
    let hf = parse_fail_header(&headers);
    let (fc, n) = {
        let mut f = shared.failures.lock().unwrap();
        f.1 += 1;
        (f.0.clone(), f.1)
    };
    let thread_hit = hf.thread || (fc.enforce_thread_limit && in_flight > fc.thread_limit);
    let delay = [shared.config.latency, fc.latency, hf.latency]
        .into_iter()
        .flatten()
        .sum::<Duration>();
    if !delay.is_zero() && !thread_hit {
        tokio::time::sleep(delay).await;
    }

    let pressure = Pressure {
        header: hf,
        config: fc,
        n,
        thread_hit,
        hour_count,
    };
    let r = match refusal(shared, &headers, &pressure) {
        Some(r) => r,
        None => {
            let person = acting_resource(shared, &headers);
            route(
                shared,
                Call {
                    method: &method,
                    uri: &uri,
                    rest,
                    params: &params,
                    body: &body,
                    root: &root,
                    person,
                },
            )
        }
    };
    crate::webhooks::dispatch(&sim.inner);
    log(&endpoint, r.0.as_u16(), in_flight);
    r.into_response()
}

/// The query parameters, names lower-cased (Autotask's are case-insensitive).
fn query_params(uri: &Uri) -> HashMap<String, String> {
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(uri)
        .map(|q| q.0)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

/// Answers what needs no credentials and is not counted against limits: paths outside
/// `/ATServicesRest/V1.0/` (404), `VersionInformation`, `ZoneInformation` and over-long GET
/// URLs. `Err` holds the endpoint to log and the reply; `Ok` the segments after `V1.0`.
fn unauthenticated<'s>(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    segs: &'s [&'s str],
    params: &HashMap<String, String>,
    root: &str,
) -> Result<&'s [&'s str], (&'static str, Reply)> {
    if segs.is_empty() || !segs[0].eq_ignore_ascii_case("atservicesrest") {
        return Err(("", not_found(uri)));
    }
    // The published API decides which paths and methods exist (before credentials, as
    // ASP.NET routes before it runs the action).
    match routes::match_route(method.as_str(), &format!("/{}", segs[1..].join("/"))) {
        RouteMatch::Allowed(_) => {}
        RouteMatch::NotFound => return Err(("", not_found(uri))),
        RouteMatch::MethodNotAllowed(_) => return Err(("", not_allowed(method))),
    }
    if segs.len() == 2 && segs[1].eq_ignore_ascii_case("versioninformation") {
        let r = if method == Method::GET {
            ok(json!({"apiVersions": ["1.0"]}))
        } else {
            not_allowed(method)
        };
        return Err(("VersionInformation", r));
    }
    if segs.len() < 3 || !segs[1].eq_ignore_ascii_case("v1.0") {
        return Err(("", not_found(uri)));
    }
    let rest = &segs[2..];
    if rest.len() == 1 && rest[0].eq_ignore_ascii_case("zoneinformation") {
        let r = if method != Method::GET {
            not_allowed(method)
        } else {
            match params.get("user") {
                Some(u) if u.eq_ignore_ascii_case(&shared.config.username) => ok(json!({
                    "zoneName": shared.config.data.zone_name,
                    "url": format!("{root}/ATServicesRest/"),
                    "webUrl": shared.config.data.web_url,
                    "ci": shared.config.data.ci,
                })),
                Some(u) => err1(format!(
                    "Zone information could not be determined for user {u}."
                )),
                None => err1("The user parameter is required."),
            }
        };
        return Err(("ZoneInformation", r));
    }

    // Long GET URLs fail with 404 in the real service (KelvinTegelaar/AutotaskAPI #66).
    if method == Method::GET && uri.to_string().len() > MAX_GET_URL {
        return Err(("", not_found(uri)));
    }
    Ok(rest)
}

/// Records this request in the sliding hour window and returns the window's count.
fn count_hour_hit(shared: &Shared) -> u64 {
    let mut hits = shared.hits.lock().unwrap();
    let now = Instant::now();
    while hits
        .front()
        .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(3600))
    {
        hits.pop_front();
    }
    hits.push_back(now);
    hits.len() as u64
}

/// What decides whether a request is refused before routing: the injected failures and the
/// load it arrived under.
struct Pressure {
    header: HeaderFail,
    config: FailureConfig,
    /// This request's number since the failure config was set (1-based).
    n: u64,
    /// Over the per-endpoint thread limit (or told to act so).
    thread_hit: bool,
    /// Requests in the last hour, this one included.
    hour_count: u64,
}

/// The refusal a request gets instead of an answer, in the real API's order: bad
/// credentials, zone moved, thread limit, hourly threshold, 429, unexpected 500.
fn refusal(shared: &Shared, headers: &HeaderMap, p: &Pressure) -> Option<Reply> {
    let Pressure {
        header: hf,
        config: fc,
        n,
        thread_hit,
        hour_count,
    } = p;
    let (n, thread_hit, hour_count) = (*n, *thread_hit, *hour_count);
    if let Some(r) = check_auth(shared, headers) {
        return Some(r);
    }
    if hf.zone || n <= fc.zone_moved_first as u64 {
        return Some(Reply(
            StatusCode::UNAUTHORIZED,
            json!({"errors": ["Authorization has been denied for this request. This database is not hosted in this zone; look the zone up again."]}),
            None,
        ));
    }
    if thread_hit {
        return Some(err1(THREAD_MSG));
    }
    if fc.request_threshold > 0 && hour_count > fc.request_threshold {
        return Some(err1(format!(
            "The API request threshold of {} requests per hour has been exceeded. API access is temporarily suspended.",
            fc.request_threshold
        )));
    }
    if hf.rate
        || n <= fc.rate_limit_first as u64
        || (fc.rate_limit_every > 0 && n % fc.rate_limit_every as u64 == 0)
    {
        return Some(Reply(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"errors": ["Rate limit exceeded. Retry after the interval in the Retry-After header."]}),
            Some(fc.retry_after_secs),
        ));
    }
    if hf.e500
        || n <= fc.error_500_first as u64
        || (fc.error_500_every > 0 && n % fc.error_500_every as u64 == 0)
    {
        let id = 50000 + n;
        return Some(Reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"errors": [format!("An unexpected error has occurred. Please contact Autotask Support. Error ID: {id}.")], "errorId": id}),
            None,
        ));
    }
    None
}

fn root_url(shared: &Shared, headers: &HeaderMap) -> String {
    if let Some(r) = shared.root_url.lock().unwrap().clone() {
        return r;
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

fn check_auth(shared: &Shared, headers: &HeaderMap) -> Option<Reply> {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let c = &shared.config;
    if !h("username").eq_ignore_ascii_case(&c.username) {
        return Some(err1(
            "Unable to authenticate: the UserName is not a valid API user.",
        ));
    }
    if h("secret") != c.secret {
        return Some(Reply(
            StatusCode::UNAUTHORIZED,
            json!({"errors": ["Authorization has been denied for this request."]}),
            None,
        ));
    }
    if h("apiintegrationcode") != c.integration_code {
        return Some(err1(
            "Unable to authenticate: the ApiIntegrationCode is not valid.",
        ));
    }
    None
}

fn parse_body(body: &Bytes) -> Result<Map<String, Value>, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(err1("The request body is required."));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(err1("The request body must be a JSON object.")),
        Err(e) => Err(err1(format!("The request body is not valid JSON: {e}"))),
    }
}

/// An authenticated API call below `/ATServicesRest/V1.0/`, as [`route`] dispatches it.
#[derive(Clone, Copy)]
struct Call<'a> {
    method: &'a Method,
    uri: &'a Uri,
    /// The path segments after `V1.0`.
    rest: &'a [&'a str],
    /// Query parameters, names lower-cased.
    params: &'a HashMap<String, String>,
    body: &'a Bytes,
    /// `http://host:port`, for `nextPageUrl`s.
    root: &'a str,
    /// The resource the API user impersonates (`ImpersonationResourceId`), for webhooks.
    person: Option<i64>,
}

impl Call<'_> {
    /// Is path segment `i` (after `V1.0`) `s`, ignoring case?
    fn is(&self, i: usize, s: &str) -> bool {
        self.rest.get(i).is_some_and(|x| x.eq_ignore_ascii_case(s))
    }
}

/// Answers an authenticated call: the global routes, else an entity's.
fn route(shared: &Shared, call: Call<'_>) -> Reply {
    if let Some(r) = global_route(shared, call) {
        return r;
    }
    entity_route(shared, call)
}

/// `GET` or 405.
fn get_only(method: &Method, f: &dyn Fn() -> Reply) -> Reply {
    if method == Method::GET {
        f()
    } else {
        not_allowed(method)
    }
}

/// The routes that name no entity: `Version`, `ThresholdInformation`, `EntityInformation`,
/// `Authenticate`.
fn global_route(shared: &Shared, call: Call<'_>) -> Option<Reply> {
    let Call { method, rest, .. } = call;
    let is = |i: usize, s: &str| call.is(i, s);
    let get_only = |f: &dyn Fn() -> Reply| Some(get_only(method, f));
    if rest.len() == 1 && is(0, "version") {
        return get_only(&|| ok(json!({"version": "2026.1.0.0 (weft-sim)"})));
    }
    if rest.len() == 1 && is(0, "thresholdinformation") {
        return get_only(&|| {
            let n = shared.hits.lock().unwrap().len();
            let threshold = shared.failures.lock().unwrap().0.request_threshold;
            ok(
                json!({"externalRequestThreshold": threshold, "requestThresholdTimeframe": 60, "currentTimeframeRequestCount": n}),
            )
        });
    }
    if rest.len() == 1 && is(0, "entityinformation") {
        return get_only(&|| {
            let items: Vec<Value> = schema::specs()
                .iter()
                .map(|sp| entity_info(shared, sp).1["info"].clone())
                .collect();
            ok(json!({ "items": items }))
        });
    }
    if rest.len() == 1 && is(0, "authenticate") {
        return get_only(&|| ok(json!({"isAuthenticated": true})));
    }
    None
}

/// `/{Entity}`, `/{Entity}/query[/count|/next]`, `/{Entity}/{id}`,
/// `/{Entity}/entityInformation[/fields|/userDefinedFields]` and the parent/child routes.
fn entity_route(shared: &Shared, call: Call<'_>) -> Reply {
    let Call {
        method,
        uri,
        rest,
        params,
        body,
        root,
        person,
    } = call;
    let is = |i: usize, s: &str| call.is(i, s);
    let get_only = |f: &dyn Fn() -> Reply| get_only(method, f);
    let Some(spec) = schema::spec(rest[0]) else {
        return not_simulated(uri);
    };
    match rest.len() {
        1 => match *method {
            Method::POST if spec.create => create(shared, spec, body_or(body), None, person),
            Method::PATCH if spec.update => {
                update(shared, spec, body_or(body), None, false, person)
            }
            Method::PUT if spec.update => update(shared, spec, body_or(body), None, true, person),
            _ if spec.create || spec.update => not_allowed(method),
            _ => not_found(uri),
        },
        2 if is(1, "query") => match *method {
            Method::POST => match parse_body(body) {
                Ok(b) => run_query(shared, spec, &b, None, root, None),
                Err(r) => r,
            },
            Method::GET => match search_param(params) {
                Ok(b) => run_query(shared, spec, &b, None, root, params.get("search")),
                Err(r) => r,
            },
            _ => not_allowed(method),
        },
        2 if is(1, "entityinformation") => get_only(&|| entity_info(shared, spec)),
        2 => {
            let Ok(id) = rest[1].parse::<i64>() else {
                return not_found(uri);
            };
            match *method {
                Method::GET => {
                    let t = shared.tables.lock().unwrap();
                    ok(
                        json!({"item": t[spec.name].get(&id).map(|r| Value::Object(shared.shape(spec, r, None)))}),
                    )
                }
                Method::DELETE if spec.delete => delete(shared, spec, id, None, person),
                _ => not_allowed(method),
            }
        }
        3 if is(1, "query") && is(2, "count") => {
            let b = match *method {
                Method::POST => parse_body(body),
                Method::GET => search_param(params),
                _ => return not_allowed(method),
            };
            match b {
                Ok(b) => count(shared, spec, &b),
                Err(r) => r,
            }
        }
        3 if is(1, "query") && is(2, "next") => {
            let Some(paging) = params.get("paging") else {
                return err1("The paging parameter is required.");
            };
            match *method {
                Method::POST => match parse_body(body) {
                    Ok(b) => run_query(shared, spec, &b, Some(paging), root, None),
                    Err(r) => r,
                },
                // A next URL made after a POST query has no search: GET is not supported.
                Method::GET if params.contains_key("search") => match search_param(params) {
                    Ok(b) => run_query(shared, spec, &b, Some(paging), root, params.get("search")),
                    Err(r) => r,
                },
                _ => not_allowed(method),
            }
        }
        3 if is(1, "entityinformation") && is(2, "fields") => {
            get_only(&|| field_info(shared, spec))
        }
        3 if is(1, "entityinformation") && is(2, "userdefinedfields") => {
            get_only(&|| udf_info(shared, spec))
        }
        3 | 4 => child_route(shared, spec, call),
        _ => not_found(uri),
    }
}

/// `/{Parent}/{pid}/{Child}` and `/{Parent}/{pid}/{Child}/{id}`.
fn child_route(shared: &Shared, spec: &'static Spec, call: Call<'_>) -> Reply {
    let Call {
        method,
        uri,
        rest,
        body,
        root,
        person,
        ..
    } = call;
    let Ok(pid) = rest[1].parse::<i64>() else {
        return not_found(uri);
    };
    let Some(child) = schema::child_route(spec.name, rest[2]) else {
        return not_simulated(uri);
    };
    let cspec = schema::spec(child.child).expect("child spec");
    if rest.len() == 3 {
        match *method {
            Method::GET => child_list(shared, spec, cspec, child, pid, root),
            Method::POST if child.create => {
                create(shared, cspec, body_or(body), Some((child, pid)), person)
            }
            Method::PATCH if child.update => update(
                shared,
                cspec,
                body_or(body),
                Some((child, pid)),
                false,
                person,
            ),
            Method::PUT if child.update => update(
                shared,
                cspec,
                body_or(body),
                Some((child, pid)),
                true,
                person,
            ),
            _ => not_allowed(method),
        }
    } else {
        let Ok(id) = rest[3].parse::<i64>() else {
            return not_found(uri);
        };
        if !child.get_one && !child.delete {
            return not_found(uri);
        }
        match *method {
            Method::GET if child.get_one => {
                let t = shared.tables.lock().unwrap();
                let item = t[cspec.name]
                    .get(&id)
                    .filter(|r| r.get(child.parent_field).and_then(Value::as_i64) == Some(pid))
                    .map(|r| Value::Object(shared.shape(cspec, r, None)));
                ok(json!({ "item": item }))
            }
            Method::DELETE if child.delete => delete(shared, cspec, id, Some((child, pid)), person),
            _ => not_allowed(method),
        }
    }
}

fn body_or(body: &Bytes) -> Result<Map<String, Value>, Reply> {
    parse_body(body)
}

fn search_param(params: &HashMap<String, String>) -> Result<Map<String, Value>, Reply> {
    let Some(s) = params.get("search") else {
        return Err(err1("The search parameter is required."));
    };
    match serde_json::from_str::<Value>(s) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(err1("The search parameter is not a valid JSON query.")),
    }
}

struct Compiled {
    conds: Vec<query::Cond>,
    max: usize,
    include: Option<Vec<&'static str>>,
}

fn compile_query(
    shared: &Shared,
    spec: &Spec,
    body: &Map<String, Value>,
) -> Result<Compiled, Reply> {
    let filter = get_ci(body, "filter").cloned().unwrap_or(Value::Null);
    let conds = query::compile(spec, shared.udfs(spec), &filter).map_err(err1)?;
    let max = match get_ci(body, "maxRecords") {
        None | Some(Value::Null) => 500,
        Some(v) => match v.as_i64() {
            Some(n) if (1..=500).contains(&n) => n as usize,
            _ => {
                return Err(err1("maxCountOfRecordsToReturn must be between 1 and 500"));
            }
        },
    };
    let include = match get_ci(body, "includeFields") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if a.is_empty() => None,
        Some(Value::Array(a)) => {
            let mut out = vec!["id"];
            for f in a {
                let name = f.as_str().unwrap_or("");
                if name.eq_ignore_ascii_case("userDefinedFields") {
                    out.push("userDefinedFields");
                    continue;
                }
                match spec.field(name) {
                    Some(fd) => out.push(fd.name),
                    None => {
                        return Err(err1(format!(
                            "Unable to find {name} in the {} Entity.",
                            spec.name
                        )));
                    }
                }
            }
            Some(out)
        }
        Some(_) => return Err(err1("IncludeFields must be an array.")),
    };
    Ok(Compiled {
        conds,
        max,
        include,
    })
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn run_query(
    shared: &Shared,
    spec: &Spec,
    body: &Map<String, Value>,
    paging: Option<&String>,
    root: &str,
    search: Option<&String>,
) -> Reply {
    let c = match compile_query(shared, spec, body) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (mut page_size, mut previous, mut start) = (c.max, Vec::<i64>::new(), -1i64);
    if let Some(p) = paging {
        let Ok(Value::Object(p)) = serde_json::from_str::<Value>(p) else {
            return err1("The paging parameter is not valid.");
        };
        if let Some(n) = p.get("pageSize").and_then(Value::as_u64) {
            page_size = n.clamp(1, 500) as usize;
        }
        previous = p
            .get("previousIds")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        start = p
            .get("nextIds")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_i64)
            .unwrap_or(-1);
    }
    let t = shared.tables.lock().unwrap();
    let mut it = t[spec.name]
        .range(start..)
        .filter(|(_, r)| query::matches_all(&c.conds, r));
    let items: Vec<Value> = it
        .by_ref()
        .take(page_size)
        .map(|(_, r)| Value::Object(shared.shape(spec, r, c.include.as_deref())))
        .collect();
    let next_start = it.next().map(|(id, _)| *id);
    let url = |prev: &[i64], next: i64| {
        let paging = json!({"pageSize": page_size, "previousIds": prev, "nextIds": [next]});
        let mut u = format!(
            "{root}/ATServicesRest/V1.0/{}/query/next?paging={}",
            spec.name,
            enc(&paging.to_string())
        );
        if let Some(s) = search {
            u.push_str("&search=");
            u.push_str(&enc(s));
        }
        u
    };
    let next_url = next_start.map(|n| {
        let mut prev = previous.clone();
        prev.push(start);
        url(&prev, n)
    });
    let prev_url = previous
        .split_last()
        .map(|(last, before)| url(before, *last));
    ok(json!({
        "items": items,
        "pageDetails": {
            "count": items.len(),
            "requestCount": page_size,
            "prevPageUrl": prev_url,
            "nextPageUrl": next_url,
        }
    }))
}

fn count(shared: &Shared, spec: &Spec, body: &Map<String, Value>) -> Reply {
    let c = match compile_query(shared, spec, body) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let t = shared.tables.lock().unwrap();
    let n = t[spec.name]
        .values()
        .filter(|r| query::matches_all(&c.conds, r))
        .count();
    ok(json!({ "queryCount": n }))
}

fn child_list(
    shared: &Shared,
    _parent: &Spec,
    cspec: &Spec,
    child: &ChildRoute,
    pid: i64,
    _root: &str,
) -> Reply {
    let t = shared.tables.lock().unwrap();
    let items: Vec<Value> = t[cspec.name]
        .values()
        .filter(|r| r.get(child.parent_field).and_then(Value::as_i64) == Some(pid))
        .map(|r| Value::Object(shared.shape(cspec, r, None)))
        .collect();
    ok(json!({
        "items": items,
        "pageDetails": {"count": items.len(), "requestCount": 500, "prevPageUrl": null, "nextPageUrl": null}
    }))
}

fn now_str() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

/// Applies body fields to `rec`; returns validation errors.
fn apply(
    shared: &Shared,
    spec: &Spec,
    body: &Map<String, Value>,
    rec: &mut Map<String, Value>,
    errors: &mut Vec<String>,
) {
    let udfs = shared.udfs(spec);
    for (k, v) in body {
        if k.eq_ignore_ascii_case("userDefinedFields") {
            let Some(list) = v.as_array() else {
                if !v.is_null() {
                    errors.push("userDefinedFields must be an array of {name, value}.".into());
                }
                continue;
            };
            let mut cur: Vec<Value> = rec
                .get("userDefinedFields")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for u in list {
                let name = u.get("name").and_then(Value::as_str).unwrap_or("");
                let Some(def) = udfs.iter().find(|d| d.name.eq_ignore_ascii_case(name)) else {
                    errors.push(format!("Unable to find {name} in the UserDefinedFields."));
                    continue;
                };
                let val = u.get("value").cloned().unwrap_or(Value::Null);
                cur.retain(|x| {
                    !x.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| n.eq_ignore_ascii_case(&def.name))
                });
                cur.push(json!({"name": def.name, "value": val}));
            }
            rec.insert("userDefinedFields".into(), Value::Array(cur));
            continue;
        }
        let Some(f) = spec.field(k) else {
            if udfs.iter().any(|d| d.name.eq_ignore_ascii_case(k)) {
                errors.push(format!(
                    "Unable to find {k} in the {} Entity. User-defined fields must be sent in userDefinedFields.",
                    spec.name
                ));
            }
            // Other unknown properties are ignored, as .NET model binding does.
            continue;
        };
        if f.read_only {
            continue;
        }
        let val = match (f.data_type, v) {
            (_, Value::Null) => Value::Null,
            ("integer" | "long", Value::Number(n)) if n.is_i64() => v.clone(),
            ("integer" | "long", Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
                json!(s.trim().parse::<i64>().unwrap())
            }
            ("double", Value::Number(_)) => v.clone(),
            ("double", Value::String(s)) if s.trim().parse::<f64>().is_ok() => {
                json!(s.trim().parse::<f64>().unwrap())
            }
            ("boolean", Value::Bool(_)) => v.clone(),
            ("boolean", Value::String(s)) if s == "true" || s == "false" => json!(s == "true"),
            ("datetime", Value::String(_)) if query::instant(v).is_some() => v.clone(),
            ("string", Value::String(s)) => {
                if f.length > 0 && s.chars().count() > f.length as usize {
                    errors.push(format!(
                        "The value for {} exceeds the maximum length of {}.",
                        f.name, f.length
                    ));
                }
                v.clone()
            }
            ("string", Value::Number(_) | Value::Bool(_)) => json!(v.to_string()),
            _ => {
                errors.push(format!("The value {v} is not valid for field {}.", f.name));
                continue;
            }
        };
        rec.insert(f.name.to_string(), val);
    }
}

fn validate(shared: &Shared, spec: &Spec, rec: &Map<String, Value>, errors: &mut Vec<String>) {
    let missing: Vec<&str> = spec
        .required
        .iter()
        .copied()
        .filter(|f| rec.get(*f).is_none_or(|v| v.is_null() || v == ""))
        .collect();
    for m in &missing {
        errors.push(format!("Missing Required Field: {m}"));
    }
    let tables = shared.tables.lock().unwrap();
    for f in &spec.fields {
        let Some(v) = rec.get(f.name).filter(|v| !v.is_null()) else {
            continue;
        };
        if f.picklist
            && let Some(values) = shared.picklist(spec, f.name)
        {
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let found = values.iter().find(|p| p.value == s);
            match found {
                None => errors.push(format!(
                    "Value {s} is not a valid picklist value for field {}.",
                    f.name
                )),
                Some(p) if !p.is_active => {
                    errors.push(format!("Value {s} for field {} is inactive.", f.name))
                }
                Some(p) => {
                    if let (Some(parent_field), Some(pv)) = (f.picklist_parent, &p.parent_value)
                        && let Some(parent) = rec.get(parent_field).filter(|x| !x.is_null())
                    {
                        let ps = match parent {
                            Value::String(s) => s.clone(),
                            o => o.to_string(),
                        };
                        if &ps != pv {
                            errors.push(format!(
                                "Value {s} for field {} does not belong to {parent_field} {ps}.",
                                f.name
                            ));
                        }
                    }
                }
            }
        }
        if let Some(target) = f.reference
            && let Some(id) = v.as_i64()
            && let Some(t) = tables.get(target)
            && !t.contains_key(&id)
        {
            errors.push(format!(
                "Value does not reference an existing entity for {} . ",
                f.name
            ));
        }
    }
    if spec.name == "Tickets"
        && rec.get("assignedResourceID").is_some_and(|v| !v.is_null())
        && rec.get("assignedResourceRoleID").is_none_or(Value::is_null)
    {
        errors.push("assignedResourceRoleID is required when assignedResourceID is set.".into());
    }
}

fn parent_check(shared: &Shared, parent: Option<(&ChildRoute, i64)>) -> Option<Reply> {
    let (child, pid) = parent?;
    let t = shared.tables.lock().unwrap();
    if t[child.parent].contains_key(&pid) {
        None
    } else {
        Some(err1(format!(
            "The parent {} with id {pid} does not exist.",
            child.parent
        )))
    }
}

fn create(
    shared: &Shared,
    spec: &Spec,
    body: Result<Map<String, Value>, Reply>,
    parent: Option<(&ChildRoute, i64)>,
    person: Option<i64>,
) -> Reply {
    let body = match body {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Some(r) = parent_check(shared, parent) {
        return r;
    }
    let mut rec = Map::new();
    let mut errors = Vec::new();
    apply(shared, spec, &body, &mut rec, &mut errors);
    if let Some((child, pid)) = parent {
        rec.insert(child.parent_field.into(), json!(pid));
    }
    validate(shared, spec, &rec, &mut errors);
    if !errors.is_empty() {
        return err(errors);
    }
    let now = now_str();
    for f in &spec.fields {
        if f.read_only
            && f.data_type == "datetime"
            && (f.name.starts_with("create")
                || f.name.starts_with("last")
                || f.name == "attachDate")
        {
            rec.insert(f.name.into(), json!(now));
        }
    }
    let mut tables = shared.tables.lock().unwrap();
    let table = tables.get_mut(spec.name).unwrap();
    let id = {
        let mut last = shared.last_ids.lock().unwrap();
        let last = last.entry(spec.name).or_insert(0);
        *last = (*last).max(table.keys().max().copied().unwrap_or(0)).max(0) + 1;
        *last
    };
    rec.insert("id".into(), json!(id));
    match spec.name {
        "Tickets" => {
            let day = jiff::Timestamp::now().strftime("%Y%m%d").to_string();
            let seq = table
                .values()
                .filter(|r| {
                    r.get("ticketNumber")
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.contains(&day))
                })
                .count()
                + 1;
            rec.insert("ticketNumber".into(), json!(format!("T{day}.{seq:04}")));
        }
        n if n.ends_with("Webhooks") => {
            rec.insert("isReady".into(), json!(false));
            rec.insert(
                "webhookGUID".into(),
                json!(format!("{:08x}-5eed-4a11-8000-{:012x}", id, id * 7919)),
            );
        }
        _ => {}
    }
    if spec.name == "Contacts" || spec.name == "TicketAttachments" {
        // nothing extra
    }
    table.insert(id, rec.clone());
    // A webhook becomes ready once it has a field or UDF field.
    if let Some((child, pid)) = parent
        && (child.segment == "Fields" || child.segment == "UdfFields")
        && let Some(p) = tables.get_mut(child.parent).and_then(|t| t.get_mut(&pid))
    {
        p.insert("isReady".into(), json!(true));
    }
    drop(tables);
    crate::webhooks::emit(shared, spec, "Create", id, None, Some(&rec), person);
    ok(json!({ "itemId": id }))
}

fn update(
    shared: &Shared,
    spec: &Spec,
    body: Result<Map<String, Value>, Reply>,
    parent: Option<(&ChildRoute, i64)>,
    put: bool,
    person: Option<i64>,
) -> Reply {
    let body = match body {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Some(r) = parent_check(shared, parent) {
        return r;
    }
    let Some(id) = get_ci(&body, "id").and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    }) else {
        return err1("The id field is required to update an entity.");
    };
    let existing = {
        let t = shared.tables.lock().unwrap();
        t[spec.name].get(&id).cloned()
    };
    let Some(existing) = existing else {
        return err1(format!("{} with id {id} was not found.", spec.name));
    };
    if let Some((child, pid)) = parent
        && existing.get(child.parent_field).and_then(Value::as_i64) != Some(pid)
    {
        return err1(format!(
            "{} with id {id} does not belong to {} {pid}.",
            spec.name, child.parent
        ));
    }
    let mut rec = if put {
        // PUT: writable fields left out become null; read-only fields and UDFs are kept.
        let mut r = Map::new();
        for f in &spec.fields {
            if f.read_only
                && let Some(v) = existing.get(f.name)
            {
                r.insert(f.name.into(), v.clone());
            }
        }
        if let Some(u) = existing.get("userDefinedFields") {
            r.insert("userDefinedFields".into(), u.clone());
        }
        r
    } else {
        existing.clone()
    };
    let mut errors = Vec::new();
    apply(shared, spec, &body, &mut rec, &mut errors);
    rec.insert("id".into(), json!(id));
    if let Some((child, pid)) = parent {
        rec.insert(child.parent_field.into(), json!(pid));
    }
    validate(shared, spec, &rec, &mut errors);
    if !errors.is_empty() {
        return err(errors);
    }
    for f in &spec.fields {
        if f.read_only && f.data_type == "datetime" && (f.name.starts_with("last")) {
            rec.insert(f.name.into(), json!(now_str()));
        }
    }
    shared
        .tables
        .lock()
        .unwrap()
        .get_mut(spec.name)
        .unwrap()
        .insert(id, rec.clone());
    crate::webhooks::emit(
        shared,
        spec,
        "Update",
        id,
        Some(&existing),
        Some(&rec),
        person,
    );
    ok(json!({ "itemId": id }))
}

fn delete(
    shared: &Shared,
    spec: &Spec,
    id: i64,
    parent: Option<(&ChildRoute, i64)>,
    person: Option<i64>,
) -> Reply {
    let mut t = shared.tables.lock().unwrap();
    let table = t.get_mut(spec.name).unwrap();
    let belongs = match (table.get(&id), parent) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(r), Some((c, pid))) => r.get(c.parent_field).and_then(Value::as_i64) == Some(pid),
    };
    if !belongs {
        return err1(format!("{} with id {id} was not found.", spec.name));
    }
    let old = table.remove(&id);
    drop(t);
    crate::webhooks::emit(shared, spec, "Delete", id, old.as_ref(), None, person);
    ok(json!({ "itemId": id }))
}

fn entity_info(shared: &Shared, spec: &Spec) -> Reply {
    let child_create = schema::children()
        .iter()
        .any(|c| c.child == spec.name && c.create);
    let child_update = schema::children()
        .iter()
        .any(|c| c.child == spec.name && c.update);
    let child_delete = schema::children()
        .iter()
        .any(|c| c.child == spec.name && c.delete);
    ok(json!({"info": {
        "name": spec.name,
        "canCreate": spec.create || child_create,
        "canDelete": spec.delete || child_delete,
        "canQuery": true,
        "canUpdate": spec.update || child_update,
        "userAccessForCreate": "All",
        "userAccessForDelete": "All",
        "userAccessForQuery": "All",
        "userAccessForUpdate": "All",
        "hasUserDefinedFields": spec.udfs || !shared.udfs(spec).is_empty(),
        "supportsWebhookCallouts": spec.webhooks,
    }}))
}

fn picklist_json(values: &[crate::data::PicklistValue]) -> Value {
    Value::Array(
        values
            .iter()
            .map(|p| {
                json!({
                    "value": p.value, "label": p.label, "isDefaultValue": p.is_default_value,
                    "sortOrder": p.sort_order, "parentValue": p.parent_value.clone().unwrap_or_default(),
                    "isActive": p.is_active, "isSystem": p.is_system,
                })
            })
            .collect(),
    )
}

fn field_info(shared: &Shared, spec: &Spec) -> Reply {
    let fields: Vec<Value> = spec
        .fields
        .iter()
        .map(|f| {
            let pick = if f.picklist {
                picklist_json(&shared.picklist(spec, f.name).unwrap_or_default())
            } else {
                Value::Null
            };
            json!({
                "name": f.name,
                "dataType": f.data_type,
                "length": f.length,
                "isRequired": spec.required.contains(&f.name),
                "isReadOnly": f.read_only,
                "isQueryable": f.queryable,
                "isReference": f.reference.is_some(),
                "referenceEntityType": f.reference.map(singular).unwrap_or_default(),
                "isPickList": f.picklist,
                "picklistValues": pick,
                "picklistParentValueField": f.picklist_parent.unwrap_or(""),
                "isSupportedWebhookField": spec.webhook_fields && (!f.read_only || f.name == "id"),
            })
        })
        .collect();
    ok(json!({ "fields": fields }))
}

fn udf_info(shared: &Shared, spec: &Spec) -> Reply {
    let fields: Vec<Value> = shared
        .udfs(spec)
        .iter()
        .map(|d| {
            json!({
                "name": d.name,
                "label": d.label.clone().unwrap_or_else(|| d.name.clone()),
                "type": d.udf_type,
                "length": d.length,
                "description": d.description,
                "isRequired": d.is_required,
                "isReadOnly": false,
                "isQueryable": true,
                "isReference": false,
                "referenceEntityType": "",
                "isPickList": !d.picklist_values.is_empty(),
                "picklistValues": if d.picklist_values.is_empty() { Value::Null } else { picklist_json(&d.picklist_values) },
                "picklistParentValueField": "",
                "defaultValue": d.default_value,
                "isSupportedWebhookField": spec.webhooks,
            })
        })
        .collect();
    ok(json!({ "fields": fields }))
}

/// Autotask's entity names are singular (`Company` for `/Companies`).
pub(crate) fn singular(plural: &str) -> String {
    if let Some(stem) = plural.strip_suffix("ies") {
        format!("{stem}y")
    } else {
        plural.trim_end_matches('s').to_string()
    }
}

/// The resource acting on a request: `ImpersonationResourceId`, else the resource whose
/// email is the API user name.
fn acting_resource(shared: &Shared, headers: &HeaderMap) -> Option<i64> {
    if let Some(id) = headers
        .get("impersonationresourceid")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
    {
        return Some(id);
    }
    let t = shared.tables.lock().unwrap();
    t["Resources"]
        .values()
        .find(|r| {
            r.get("email")
                .and_then(Value::as_str)
                .is_some_and(|e| e.eq_ignore_ascii_case(&shared.config.username))
        })
        .and_then(|r| r.get("id").and_then(Value::as_i64))
}
