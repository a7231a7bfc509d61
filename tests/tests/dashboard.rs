//! Issue 14.2: the dashboard in a real browser. Headless Chromium (Debian's `chromium`, driven
//! over the DevTools protocol by `headless_chrome`) signs in to a replica's HTTPS listener as
//! the national administration and as a province's agency, reads the figures off the pages and
//! compares them with what the gRPC API answers the same roles; screenshots of each page are
//! kept in `target/test-artifacts/dashboard/`. A real mesh: the federation and two provinces,
//! three replica processes each.
//!
//! Chromium trusts exactly the replica's certificate (`--ignore-certificate-errors-spki-list`
//! with its key's hash), not any certificate.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use medmesh_node::dev::http_of;
use medmesh_node::identity::Identity;
use medmesh_node::pb;
use medmesh_node::pb::agency_service_client::AgencyServiceClient;
use medmesh_node::pb::disclosure_service_client::DisclosureServiceClient;
use medmesh_node::pb::federation_service_client::FederationServiceClient;
use medmesh_tests::{national, pki, settle_demo_claim, settle_nonlocal_demo_claim, wait_until, yuan, Mesh};
use medmesh_types::Money;
use serde_json::Value;

const TREATMENT: &str = "110000";
const INSURED: &str = "310000";
const NATIONAL_PASSWORD: &str = "national: correct horse battery";
const AGENCY_PASSWORD: &str = "agency 110000: staple";

/// The Chromium binary, or a failure saying how to install it (a test that cannot run fails).
fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = std::process::Command::new("sh").args(["-c", &format!("command -v {name}")]).output() {
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !path.is_empty() {
                return PathBuf::from(path);
            }
        }
    }
    panic!("chromium is not installed: scripts/install-deps.sh installs Debian's chromium package");
}

/// The base64 SHA-256 of the public key of replica `id` of `group`: what Chromium is told to
/// trust.
fn spki_hash(group: &str, id: u64) -> String {
    use base64::Engine;
    use sha2::Digest;
    let identity = Identity::Replica { group: medmesh_types::ProvinceCode::new(group).unwrap(), id };
    let pem = std::fs::read(pki().ensure(&identity, &[]).unwrap().cert).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(cert.tbs_certificate.subject_pki.raw))
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts/dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn screenshot(tab: &Tab, name: &str) {
    let png = tab.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true).expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(artifacts().join(format!("{name}.png")), png).unwrap();
}

fn text_of(tab: &Tab, selector: &str) -> String {
    tab.wait_for_element(selector)
        .unwrap_or_else(|e| panic!("{selector}: {e}\n{}", content(tab)))
        .get_inner_text()
        .unwrap()
}

fn content(tab: &Tab) -> String {
    tab.get_content().unwrap_or_default()
}

fn go(tab: &Tab, url: &str) {
    tab.navigate_to(url).unwrap().wait_until_navigated().unwrap();
}

/// Clicks `selector` (a link or a submit button) and waits until another document has loaded
/// in its place: the page marks itself first, and the mark is gone in the next one.
fn click_through(tab: &Tab, selector: &str) {
    tab.evaluate("window.medmeshOldPage = true", false).unwrap();
    tab.wait_for_element(selector).unwrap().click().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let done = tab
            .evaluate("window.medmeshOldPage === undefined && document.readyState === 'complete'", false)
            .ok()
            .and_then(|v| v.value)
            .is_some_and(|v| v == Value::Bool(true));
        if done {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no new page after clicking {selector}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Fills in the sign-in form and submits it.
fn sign_in(tab: &Tab, name: &str, password: &str) {
    tab.wait_for_element("#name").unwrap().click().unwrap();
    tab.type_str(name).unwrap();
    tab.wait_for_element("#password").unwrap().click().unwrap();
    tab.type_str(password).unwrap();
    click_through(tab, "#sign-in");
}

/// Every `[data-figure]` cell of the page: (province or "insured>treatment", figure) → text.
fn figures(tab: &Tab) -> BTreeMap<(String, String), String> {
    let js = "JSON.stringify([...document.querySelectorAll('[data-figure]')].map(e => \
              [e.dataset.province || (e.dataset.insured + '>' + e.dataset.treatment), e.dataset.figure, \
               e.dataset.amount || e.textContent.trim()]))";
    let v = tab.evaluate(js, false).unwrap().value.expect("a value");
    let rows: Vec<(String, String, String)> = serde_json::from_str(v.as_str().unwrap()).unwrap();
    rows.into_iter().map(|(p, f, t)| ((p, f), t)).collect()
}

/// What the national table must show for `a`, written from the message's fields.
fn expected_row(a: &pb::Aggregate) -> Vec<(&'static str, String)> {
    let f = a.fund.clone().unwrap();
    vec![
        ("settlements", f.settlements.to_string()),
        ("nonlocal_in_settlements", f.nonlocal_in_settlements.to_string()),
        ("nonlocal_in_amount", f.nonlocal_in_amount.clone()),
        ("nonlocal_out_settlements", f.nonlocal_out_settlements.to_string()),
        ("nonlocal_out_amount", f.nonlocal_out_amount.clone()),
        ("pooling_paid", f.pooling_paid.clone()),
        ("closing_balance", f.closing_balance.clone()),
        ("months_covered", f.months_covered.clone()),
        ("alerts", a.alerts.to_string()),
        ("cases_opened", a.cases_opened.to_string()),
        ("cases_executed", a.cases_executed.to_string()),
        ("recovered", f.recovered.clone()),
    ]
}

/// Runs curl; answers the HTTP status and the headers and body.
fn curl(args: &[&str]) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30", "--cacert"])
        .arg(pki().ca_path())
        .args(["-i", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is installed");
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_in_chromium_what_the_api_answers() {
    let chromium = chromium();
    let users_dir = tempfile::tempdir().unwrap();
    let users = users_dir.path().join("users.toml");
    let hash = medmesh_node::dashboard::auth::hash_password;
    std::fs::write(
        &users,
        format!(
            "[[user]]\nname = \"nhsa\"\nrole = \"national\"\npassword_hash = \"{}\"\n\
             [[user]]\nname = \"bj\"\nrole = \"agency\"\nprovince = \"{TREATMENT}\"\npassword_hash = \"{}\"\n",
            hash(NATIONAL_PASSWORD).unwrap(),
            hash(AGENCY_PASSWORD).unwrap()
        ),
    )
    .unwrap();
    let env = [("MEDMESH_DASHBOARD_USERS", users.display().to_string())];
    let mesh = Mesh::start_with_env(&[TREATMENT, INSURED], 5, &env).await;
    let (bj, sh) = (mesh.province(TREATMENT), mesh.province(INSURED));
    let (bj_leader, sh_leader) = (bj.leader().await, sh.leader().await);
    let day = medmesh_node::demo::today();
    let month = day[..7].to_string();

    // Care to show: a local claim in each province and a visitor from 310000 treated in 110000.
    let mut h = bj.hospital(bj_leader);
    settle_demo_claim(&mut h, TREATMENT, &day).await;
    settle_nonlocal_demo_claim(&mut h, TREATMENT, INSURED, ("NV1", "NS1"), &day).await;
    let mut h2 = sh.hospital(sh_leader);
    settle_demo_claim(&mut h2, INSURED, &day).await;
    for (g, leader) in [(bj, bj_leader), (sh, sh_leader)] {
        let mut d = DisclosureServiceClient::new(g.agency(leader));
        for period in [&day, &month] {
            d.publish_aggregate(pb::PublishAggregateRequest { period: period.to_string() }).await.expect("published");
        }
    }
    // The API's answers to the national administration, once both publications arrived.
    let fed = FederationServiceClient::new(mesh.federation.channel_as(mesh.federation.leader().await, &national()));
    let aggregates = wait_until(Duration::from_secs(60), "both provinces' month at the federation", || {
        let (mut fed, month) = (fed.clone(), month.clone());
        async move {
            let got = fed
                .get_national_aggregates(pb::GetNationalAggregatesRequest { period: month, province: String::new() })
                .await
                .ok()?
                .into_inner()
                .aggregates;
            (got.len() == 2 && got.iter().all(|a| a.fund.as_ref().is_some_and(|f| f.settlements > 0))).then_some(got)
        }
    })
    .await;
    let flows = fed
        .clone()
        .get_non_local_flows(pb::GetNonLocalFlowsRequest { period: month.clone() })
        .await
        .unwrap()
        .into_inner()
        .flows;
    assert_eq!(flows.len(), 1, "310000's insured treated in 110000");
    let fund_now =
        AgencyServiceClient::new(bj.agency(bj_leader)).get_fund(pb::GetFundRequest {}).await.unwrap().into_inner();

    // Plain HTTP first: no session is 401 with the sign-in form; a form without a password is
    // 400 naming it; a wrong password is 401; the right one is a session cookie.
    let base = format!("https://{}", http_of(&bj.replica(1).addr).unwrap());
    let (code, page) = curl(&[&format!("{base}/dashboard/national")]);
    assert_eq!(code, 401, "{page}");
    assert!(page.contains("Sign in to see this page") && page.contains("name=\"password\""), "{page}");
    let (code, page) = curl(&["-d", "name=nhsa", &format!("{base}/dashboard/login")]);
    assert_eq!(code, 400, "{page}");
    assert!(page.contains("password: required"), "{page}");
    let (code, _) = curl(&["-d", "name=nhsa&password=guess", &format!("{base}/dashboard/login")]);
    assert_eq!(code, 401);
    let (code, head) = curl(&[
        "--data-urlencode",
        "name=nhsa",
        "--data-urlencode",
        &format!("password={NATIONAL_PASSWORD}"),
        &format!("{base}/dashboard/login"),
    ]);
    assert_eq!(code, 303, "{head}");
    let cookie = head.lines().find_map(|l| l.strip_prefix("set-cookie: ")).expect("a session cookie").to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/dashboard"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_string();
    let (code, page) =
        curl(&["-H", &format!("cookie: {session}"), &format!("{base}/dashboard/national?month=2026-13")]);
    assert_eq!(code, 400, "a malformed month");
    assert!(page.contains("month: must be a month"), "{page}");

    // Then the browser.
    let spki = format!("--ignore-certificate-errors-spki-list={}", spki_hash(TREATMENT, 1));
    let (aggregates2, flows2, fund2, month2) = (aggregates.clone(), flows.clone(), fund_now.clone(), month.clone());
    tokio::task::spawn_blocking(move || {
        let (aggregates, flows, fund_now, month) = (aggregates2, flows2, fund2, month2);
        let browser = Browser::new(
            LaunchOptions::default_builder()
                .path(Some(chromium))
                .sandbox(false)
                .ignore_certificate_errors(false)
                .window_size(Some((1280, 2200)))
                .args(vec![OsStr::new(&spki), OsStr::new("--disable-dev-shm-usage")])
                .idle_browser_timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
        )
        .expect("chromium starts");
        let tab = browser.new_tab().unwrap();
        tab.set_default_timeout(Duration::from_secs(30));

        // A page without a session shows the sign-in form; a wrong password is refused.
        go(&tab, &format!("{base}/dashboard/national?month={month}"));
        assert_eq!(text_of(&tab, "#message"), "Sign in to see this page.");
        screenshot(&tab, "0-sign-in");
        sign_in(&tab, "nhsa", "not the password");
        assert_eq!(text_of(&tab, "#message"), "The name or the password is not accepted.");

        // The national administration: every province's figures as the API answers them.
        sign_in(&tab, "nhsa", NATIONAL_PASSWORD);
        assert!(tab.get_url().ends_with(&format!("/dashboard/national?month={month}")), "{}", tab.get_url());
        assert!(text_of(&tab, "#viewer").contains("the national administration"));
        let seen = figures(&tab);
        for a in &aggregates {
            for (name, want) in expected_row(a) {
                let got = seen.get(&(a.province.clone(), name.to_string()));
                assert_eq!(got, Some(&want), "{} {name}", a.province);
            }
        }
        // The totals row, summed here from the API's answers.
        let count = |f: fn(&pb::GetFundReportResponse) -> i64| {
            aggregates.iter().map(|a| f(a.fund.as_ref().unwrap())).sum::<i64>().to_string()
        };
        let money = |f: fn(&pb::GetFundReportResponse) -> &str| {
            aggregates.iter().map(|a| yuan(f(a.fund.as_ref().unwrap()))).fold(Money::ZERO, |x, y| x + y).to_string()
        };
        let total = |name: &str| seen.get(&("total".to_string(), name.to_string())).cloned();
        assert_eq!(total("settlements"), Some(count(|f| f.settlements)));
        assert_eq!(total("pooling_paid"), Some(money(|f| &f.pooling_paid)));
        assert_eq!(total("closing_balance"), Some(money(|f| &f.closing_balance)));
        assert_eq!(total("nonlocal_in_amount"), Some(money(|f| &f.nonlocal_in_amount)));
        // The flow matrix cell, to the fen.
        let cell = seen.get(&(format!("{INSURED}>{TREATMENT}"), "flow".to_string()));
        assert_eq!(cell.map(|c| yuan(c)), Some(yuan(&flows[0].amount)));
        // Three charts, drawn as SVG in the page.
        let charts = tab.evaluate("document.querySelectorAll('svg').length", false).unwrap().value.unwrap();
        assert_eq!(charts, Value::from(3));
        screenshot(&tab, "1-national");

        // The nation opens a province's page: its published figures, but not its fund now.
        click_through(&tab, &format!("a[href='/dashboard/province/{INSURED}?month={month}']"));
        let sh = aggregates.iter().find(|a| a.province == INSURED).unwrap();
        let seen = figures(&tab);
        for (name, want) in expected_row(sh) {
            assert_eq!(seen.get(&(INSURED.to_string(), name.to_string())), Some(&want), "{INSURED} {name}");
        }
        assert!(text_of(&tab, "#fund-note").contains("own agency"));
        screenshot(&tab, "2-province-by-the-nation");

        // Sign out: the pages ask for a session again.
        click_through(&tab, "header form button");
        go(&tab, &format!("{base}/dashboard/national"));
        assert_eq!(text_of(&tab, "#message"), "Sign in to see this page.");

        // The agency of 110000, at one of 110000's replicas: its own page with the fund now.
        go(&tab, &format!("{base}/dashboard/"));
        sign_in(&tab, "bj", AGENCY_PASSWORD);
        assert!(tab.get_url().contains(&format!("/dashboard/province/{TREATMENT}")), "{}", tab.get_url());
        let seen = figures(&tab);
        let bj = aggregates.iter().find(|a| a.province == TREATMENT).unwrap();
        for (name, want) in expected_row(bj) {
            assert_eq!(seen.get(&(TREATMENT.to_string(), name.to_string())), Some(&want), "{TREATMENT} {name}");
        }
        // The fund now moves only with settlements; none happened since the API was asked.
        let now = |name: &str| seen.get(&(TREATMENT.to_string(), format!("now_{name}"))).cloned();
        assert_eq!(now("balance"), Some(fund_now.balance.clone()));
        assert_eq!(now("payables"), Some(fund_now.payables.clone()));
        assert_eq!(now("settlements"), Some(fund_now.settlements.to_string()));
        screenshot(&tab, "3-province-by-its-agency");

        // The agency sees neither the national view nor another province.
        go(&tab, &format!("{base}/dashboard/national"));
        let refused = text_of(&tab, "#message");
        assert!(refused.contains("for the national administration"), "{refused}");
        go(&tab, &format!("{base}/dashboard/province/{INSURED}"));
        let refused = text_of(&tab, "#message");
        assert!(refused.contains("may not") && refused.contains(INSURED), "{refused}");
        screenshot(&tab, "4-refused");
    })
    .await
    .expect("the browser session");
}
