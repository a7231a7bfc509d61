//! The dashboard (issue 14.2): server-rendered HTML pages with SVG charts for people, on the
//! HTTPS listener of the HTTP gateway (`http_listen`), under `/dashboard/`.
//!
//! - `/dashboard/national?month=YYYY-MM`: every province's published aggregates of the month
//!   (settlements, non-local in and out, fund expenditure and balance with months covered,
//!   flagged below `dashboard_risk_months`), settlements per day, fund health, the non-local
//!   flow matrix, and violations and cases by province. For the national administration.
//! - `/dashboard/province/{code}?month=YYYY-MM`: one province's published figures, by level
//!   and by visitors' insured province, per day; and, for the province's own agency at one of
//!   the province's own replicas, the fund as it stands now. For that agency and the nation.
//!
//! **Sign-in: passwords, not client certificates.** The people who read the dashboard sign in
//! with a name and password the operator configured (`dashboard_users`, argon2 hashes; see
//! [`auth`]) and get a session cookie. Client certificates remain the identity of every
//! program that calls medmesh, but installing one in each supervisor's browser (and selecting
//! it headless in the browser test) is a burden without a gain here: the session maps to the
//! same identities (the national administration, a province's agency) and passes the same
//! access table ([`crate::access::Policy::admit`]), and each figure comes from the gRPC
//! service's own handler (FederationService/GetNationalAggregates, GetNonLocalFlows,
//! AgencyService/GetFund): no second copy of a query or of a rule about who sees what.
//!
//! Pages without a session answer 401 with the sign-in form; a role that may not see a page
//! gets 403 naming what it may see; a malformed month or province is 400 naming the field.
//! Responses are `no-store`, framed by nobody, and scripts are refused by the content policy
//! (the pages have none).
//!
//! Why these crates: `maud` (compile-time checked templates that escape what they insert),
//! `plotters` with only its SVG backend (charts as markup, no JavaScript, integer
//! coordinates), `argon2` (RustCrypto's password hashing, PHC strings).

pub mod auth;
pub mod view;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::Markup;
use medmesh_payment::Period;
use medmesh_types::ProvinceCode;
use serde::Deserialize;
use tonic::{Code, Request, Status};

use crate::access::Policy;
use crate::api::agency::Agency;
use crate::api::federation::Federation;
use crate::gateway::http_status;
use crate::identity::Identity;
use crate::mesh::Mesh;
use crate::pb;
use crate::pb::agency_service_server::AgencyService;
use crate::pb::federation_service_server::FederationService;
use auth::{Auth, Refusal, Session};
use view::Viewer;

/// The session cookie's name.
pub const COOKIE: &str = "medmesh_session";

/// What the dashboard's handlers share.
pub struct Dashboard {
    auth: Auth,
    /// Password verifications running at once: argon2 takes ~19 MiB and tens of ms of a
    /// core each, and this process is also a Raft replica.
    verifying: Arc<tokio::sync::Semaphore>,
    policy: Arc<Policy>,
    federation: Federation,
    agency: Agency,
    here: ProvinceCode,
    secure_cookie: bool,
    risk_months: u32,
}

impl Dashboard {
    /// A dashboard for `users` on a replica of `mesh`, behind `policy`; cookies are marked
    /// `Secure` when the listener speaks TLS.
    pub fn new(
        users: BTreeMap<String, auth::User>,
        mesh: Arc<Mesh>,
        policy: Arc<Policy>,
        tls: bool,
        risk_months: u32,
    ) -> Dashboard {
        Dashboard {
            auth: Auth::new(users),
            verifying: Arc::new(tokio::sync::Semaphore::new(2)),
            policy,
            federation: Federation { mesh: mesh.clone() },
            agency: Agency { mesh: mesh.clone() },
            here: mesh.province.clone(),
            secure_cookie: tls,
            risk_months,
        }
    }

    /// The session the request's cookie names, if live.
    fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let token = cookie(headers, COOKIE)?;
        self.auth.session(&token, Instant::now())
    }

    /// Runs a gRPC handler for the signed-in person: the access table of `method` decides
    /// with the session's identity, and the call is timed, counted and audited as a gRPC one.
    async fn call<Req, Resp, F, Fut>(
        &self,
        s: &Session,
        method: &'static str,
        message: Req,
        handler: F,
    ) -> Result<Resp, Status>
    where
        F: FnOnce(Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let caller = self.policy.admit(method, s.identity.clone())?;
        let mut req = Request::new(message);
        req.extensions_mut().insert(caller.clone());
        crate::access::serve(method, &caller, None, handler(req)).await.map(tonic::Response::into_inner)
    }

    async fn aggregates(&self, s: &Session, period: String, province: &str) -> Result<Vec<pb::Aggregate>, Status> {
        let req = pb::GetNationalAggregatesRequest { period, province: province.to_string() };
        match self
            .call(s, "/medmesh.v1.FederationService/GetNationalAggregates", req, |r| {
                self.federation.get_national_aggregates(r)
            })
            .await
        {
            Ok(r) => Ok(r.aggregates),
            Err(e) if e.code() == Code::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The aggregates of each day of `month` up to today.
    async fn days(
        &self,
        s: &Session,
        month: Period,
        province: &str,
    ) -> Result<Vec<(String, Vec<pb::Aggregate>)>, Status> {
        let today = today();
        let mut days = Vec::new();
        let mut d = month.first_day();
        while d <= month.last_day() && d <= today {
            days.push(d.to_string());
            d = d.plus_days(1);
        }
        let answers = futures::future::join_all(days.iter().map(|d| self.aggregates(s, d.clone(), province))).await;
        days.into_iter().zip(answers).map(|(d, a)| a.map(|a| (d, a))).collect()
    }
}

/// Today on this replica's clock (the one it stamps log entries with).
fn today() -> medmesh_types::Date {
    medmesh_types::LogTime(crate::clock::now_ms()).date()
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// An HTML response with the dashboard's headers.
fn html(status: StatusCode, markup: Markup) -> Response {
    let mut r = (status, markup.into_string()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

fn redirect(to: &str, cookie: Option<String>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// 401 with the sign-in form, to come back to the page asked for.
fn sign_in_required(uri: &Uri) -> Response {
    let next = uri.path_and_query().map_or("/dashboard/", |p| p.as_str());
    html(StatusCode::UNAUTHORIZED, view::sign_in(Some("Sign in to see this page."), safe_next(next)))
}

/// Where a sign-in may send the person: a dashboard path, never another site.
fn safe_next(next: &str) -> &str {
    let ok = next.starts_with("/dashboard/")
        && !next.contains("//")
        && !next.contains('\\')
        && next.len() <= 200
        && next.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        next
    } else {
        "/dashboard/"
    }
}

fn viewer(s: &Session) -> Viewer<'_> {
    let role = match &s.identity {
        Identity::National => "the national administration".to_string(),
        Identity::Agency { province } => format!("the agency of {province}"),
        other => other.role().to_string(),
    };
    Viewer { user: &s.user, role }
}

fn failed(s: &Session, e: &Status) -> Response {
    html(http_status(e.code()), view::error("Not shown", e.message(), Some(&viewer(s))))
}

/// The month of a page: `month` as given (400 naming it when malformed), else this month.
fn page_month(q: &PageQuery) -> Result<Period, Status> {
    match q.month.as_deref() {
        None | Some("") => Ok(Period::of(today())),
        Some(m) => crate::convert::month("month", m),
    }
}

/// The query of a page.
#[derive(Deserialize)]
struct PageQuery {
    month: Option<String>,
}

/// The routes, under `/dashboard`; `None` when no users are configured (every page says so).
pub fn router(dashboard: Option<Arc<Dashboard>>) -> Router {
    let Some(d) = dashboard else {
        let off = || async {
            html(
                StatusCode::NOT_FOUND,
                view::error(
                    "Dashboard off",
                    "The dashboard is off on this replica: no users are configured (dashboard_users).",
                    None,
                ),
            )
        };
        return Router::new()
            .route("/dashboard", get(off))
            .route("/dashboard/", get(off))
            .route("/dashboard/{*rest}", get(off).post(off));
    };
    Router::new()
        .route("/dashboard", get(|| async { redirect("/dashboard/", None) }))
        .route("/dashboard/", get(home))
        .route("/dashboard/login", get(sign_in_form).post(sign_in))
        .route("/dashboard/logout", post(sign_out))
        .route("/dashboard/national", get(national))
        .route("/dashboard/province/{code}", get(province))
        .with_state(d)
}

async fn home(State(d): State<Arc<Dashboard>>, uri: Uri, headers: HeaderMap) -> Response {
    match d.session(&headers) {
        None => sign_in_required(&uri),
        Some(s) => match &s.identity {
            Identity::Agency { province } => redirect(&format!("/dashboard/province/{province}"), None),
            _ => redirect("/dashboard/national", None),
        },
    }
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn sign_in_form(Query(q): Query<NextQuery>) -> Response {
    html(StatusCode::OK, view::sign_in(None, safe_next(q.next.as_deref().unwrap_or("/dashboard/"))))
}

async fn sign_in(
    State(d): State<Arc<Dashboard>>,
    form: Result<Form<BTreeMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return html(
            StatusCode::BAD_REQUEST,
            view::sign_in(Some("request: a form with name and password is required"), "/dashboard/"),
        );
    };
    let next = safe_next(form.get("next").map_or("/dashboard/", String::as_str)).to_string();
    let name = form.get("name").map(|s| s.trim().to_string()).unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    if name.is_empty() {
        return html(StatusCode::BAD_REQUEST, view::sign_in(Some("name: required"), &next));
    }
    if password.is_empty() {
        return html(StatusCode::BAD_REQUEST, view::sign_in(Some("password: required"), &next));
    }
    if !auth::valid_name(&name) {
        return html(StatusCode::UNAUTHORIZED, view::sign_in(Some("The name or the password is not accepted."), &next));
    }
    // argon2 takes tens of milliseconds of CPU: off the executor, two at a time at most.
    let Ok(permit) = d.verifying.clone().try_acquire_owned() else {
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            view::sign_in(Some("Too many sign-ins at once: try again in a moment."), &next),
        );
    };
    let d2 = d.clone();
    let n2 = name.clone();
    let result = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        d2.auth.sign_in(&n2, &password, Instant::now())
    })
    .await;
    match result {
        Ok(Ok((token, session))) => {
            tracing::info!(target: "medmesh::dashboard", user = %name, role = %session.identity.role(), "signed in");
            let secure = if d.secure_cookie { "; Secure" } else { "" };
            let cookie = format!(
                "{COOKIE}={token}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                auth::ABSOLUTE.as_secs()
            );
            redirect(&next, Some(cookie))
        }
        Ok(Err(Refusal::Wrong)) => {
            tracing::warn!(target: "medmesh::dashboard", user = %name, "sign-in refused");
            html(StatusCode::UNAUTHORIZED, view::sign_in(Some("The name or the password is not accepted."), &next))
        }
        Ok(Err(Refusal::LockedOut)) => {
            tracing::warn!(target: "medmesh::dashboard", user = %name, "sign-in refused: locked out");
            html(
                StatusCode::TOO_MANY_REQUESTS,
                view::sign_in(
                    Some(&format!(
                        "Too many failed sign-ins for this name: try again in {} seconds.",
                        auth::LOCKOUT.as_secs()
                    )),
                    &next,
                ),
            )
        }
        Err(_) => html(StatusCode::SERVICE_UNAVAILABLE, view::sign_in(Some("Sign-in failed; try again."), &next)),
    }
}

async fn sign_out(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, COOKIE) {
        d.auth.sign_out(&token);
    }
    let secure = if d.secure_cookie { "; Secure" } else { "" };
    redirect(
        "/dashboard/login",
        Some(format!("{COOKIE}=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0{secure}")),
    )
}

fn neighbours(month: Period) -> (String, Option<String>) {
    let next = month.next();
    (month.prev().to_string(), (next.first_day() <= today()).then(|| next.to_string()))
}

async fn national(
    State(d): State<Arc<Dashboard>>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let Some(s) = d.session(&headers) else { return sign_in_required(&uri) };
    let month = match page_month(&q) {
        Ok(m) => m,
        Err(e) => return failed(&s, &e),
    };
    let m = month.to_string();
    // The flow matrix is the nation's alone: the access table refuses anyone else here.
    let flows = match d
        .call(
            &s,
            "/medmesh.v1.FederationService/GetNonLocalFlows",
            pb::GetNonLocalFlowsRequest { period: m.clone() },
            |r| d.federation.get_non_local_flows(r),
        )
        .await
    {
        Ok(f) => f.flows,
        Err(e) if e.code() == Code::NotFound => Vec::new(),
        Err(e) if e.code() == Code::PermissionDenied => {
            let mut text = format!("The national view is for the national administration. {}", e.message());
            if let Identity::Agency { province } = &s.identity {
                text.push_str(&format!(" Your province's view: /dashboard/province/{province}"));
            }
            return html(StatusCode::FORBIDDEN, view::error("Not shown", &text, Some(&viewer(&s))));
        }
        Err(e) => return failed(&s, &e),
    };
    let aggregates = match d.aggregates(&s, m.clone(), "").await {
        Ok(a) => a,
        Err(e) => return failed(&s, &e),
    };
    let days = match d.days(&s, month, "").await {
        Ok(d) => d,
        Err(e) => return failed(&s, &e),
    };
    let (prev, next) = neighbours(month);
    let notice = aggregates.is_empty().then(|| format!("No province has published {m} yet."));
    let status = if aggregates.is_empty() { StatusCode::NOT_FOUND } else { StatusCode::OK };
    let page = view::NationalPage {
        viewer: viewer(&s),
        month: m,
        prev,
        next,
        aggregates,
        flows,
        days,
        risk_months: d.risk_months,
        notice,
    };
    html(status, view::national(&page))
}

async fn province(
    State(d): State<Arc<Dashboard>>,
    uri: Uri,
    headers: HeaderMap,
    Path(code): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let Some(s) = d.session(&headers) else { return sign_in_required(&uri) };
    let province = match crate::convert::province("province", &code) {
        Ok(p) => p,
        Err(e) => return failed(&s, &e),
    };
    let month = match page_month(&q) {
        Ok(m) => m,
        Err(e) => return failed(&s, &e),
    };
    let m = month.to_string();
    // GetNationalAggregates admits the nation and an agency naming its own province only.
    let aggregate = match d.aggregates(&s, m.clone(), province.as_str()).await {
        Ok(a) => a.into_iter().next(),
        Err(e) => return failed(&s, &e),
    };
    let days = match d.days(&s, month, province.as_str()).await {
        Ok(d) => d,
        Err(e) => return failed(&s, &e),
    };
    let own_agency = matches!(&s.identity, Identity::Agency { province: p } if *p == province);
    let (fund, fund_note) = if !own_agency {
        (None, "The fund as it stands now is shown to the province's own agency.".to_string())
    } else if d.here != province {
        (None, format!("The fund as it stands now is shown at {province}'s own replicas; this one serves {}.", d.here))
    } else {
        match d.call(&s, "/medmesh.v1.AgencyService/GetFund", pb::GetFundRequest {}, |r| d.agency.get_fund(r)).await {
            Ok(f) => (Some(f), String::new()),
            Err(e) => (None, format!("The fund now could not be read: {}", e.message())),
        }
    };
    let (prev, next) = neighbours(month);
    let notice = aggregate.is_none().then(|| format!("{province} has not published {m} yet."));
    let status = if aggregate.is_none() && fund.is_none() { StatusCode::NOT_FOUND } else { StatusCode::OK };
    let page = view::ProvincePage {
        viewer: viewer(&s),
        province: province.to_string(),
        month: m,
        prev,
        next,
        aggregate,
        days,
        fund,
        fund_note,
        risk_months: d.risk_months,
        notice,
        national_link: matches!(s.identity, Identity::National),
    };
    html(status, view::province(&page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_sends_people_only_to_dashboard_pages() {
        assert_eq!(safe_next("/dashboard/national?month=2026-12"), "/dashboard/national?month=2026-12");
        for bad in
            ["https://evil.example/", "//evil.example/dashboard/", "/dashboard//evil", "/other", "/dashboard/\\x", ""]
        {
            assert_eq!(safe_next(bad), "/dashboard/", "{bad}");
        }
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; medmesh_session=abc; b=2"));
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&HeaderMap::new(), COOKIE), None);
    }
}
