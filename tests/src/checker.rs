//! An independent checker of the mesh's money invariants that reads only the public gRPC API
//! (the agency's `GetFund`, the hospital's `ListSettlements`, the federation's
//! `GetPositions`), as an auditor would. Each invariant is one function returning the first
//! violation it finds; [`check`] runs them all.

use std::collections::BTreeMap;

use medmesh_node::pb;
use medmesh_node::pb::agency_service_client::AgencyServiceClient;
use medmesh_node::pb::federation_service_client::FederationServiceClient;
use medmesh_node::pb::hospital_service_client::HospitalServiceClient;
use medmesh_types::{Date, Money};

use crate::workload::today;

/// What the clients were told: a settlement acknowledged (and whether its reversal was).
#[derive(Debug, Clone, PartialEq)]
pub struct Acked {
    /// Treatment province.
    pub treatment: String,
    /// Institution.
    pub institution: String,
    /// The settlement as acknowledged.
    pub settlement: pb::SettleResponse,
    /// Whether a reversal of it was acknowledged.
    pub reversed: bool,
}

/// The public state of the mesh at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Each province's fund ledger.
    pub funds: BTreeMap<String, pb::GetFundResponse>,
    /// Each (province, institution)'s settlements around today.
    pub settlements: BTreeMap<(String, String), Vec<pb::SettleResponse>>,
    /// The federation's positions.
    pub positions: pb::GetPositionsResponse,
    /// The federation's prepaid accounts.
    pub prepaid: pb::GetPrepaidResponse,
}

impl Snapshot {
    /// The federation's total of top-ups of `province`'s prepaid account (zero without one).
    pub fn topped_up(&self, province: &str) -> Money {
        self.prepaid.accounts.iter().find(|a| a.province == province).map_or(Money::ZERO, |a| yuan(&a.topped_up))
    }
}

fn yuan(s: &str) -> Money {
    Money::parse_signed_yuan(s).unwrap_or_else(|e| panic!("amount {s:?} from the API does not parse: {e}"))
}

fn part(s: &pb::SettleResponse, f: fn(&pb::Split) -> &String) -> Money {
    s.split.as_ref().map(|x| yuan(f(x))).unwrap_or(Money::ZERO)
}

/// Fund share plus account part: what institutions are owed for a settlement.
fn payable(s: &pb::SettleResponse) -> Money {
    part(s, |x| &x.pooling_fund)
        + part(s, |x| &x.critical_illness)
        + part(s, |x| &x.medical_assistance)
        + part(s, |x| &x.individual_account)
}

/// Reads a snapshot of settlements made around today. `provinces` maps each province to an
/// endpoint and the institutions to list; `federation` is any endpoint that serves the
/// federation service.
pub async fn snapshot(
    provinces: &[(String, String, Vec<String>)],
    federation: &str,
) -> Result<Snapshot, tonic::Status> {
    snapshot_around(provinces, federation, Date::parse(&today()).expect("today parses")).await
}

/// [`snapshot`] of settlements made the day before `day` to the day after.
pub async fn snapshot_around(
    provinces: &[(String, String, Vec<String>)],
    federation: &str,
    day: Date,
) -> Result<Snapshot, tonic::Status> {
    let mut snap = Snapshot::default();
    for (code, addr, institutions) in provinces {
        let agency = crate::channel_as(addr, &crate::agency(code));
        let fund = AgencyServiceClient::new(agency).get_fund(pb::GetFundRequest {}).await?.into_inner();
        snap.funds.insert(code.clone(), fund);
        for inst in institutions {
            // Page through the statement (small pages, so paging itself is exercised).
            let mut all = Vec::new();
            let mut page_token = String::new();
            let ch = crate::channel_as(addr, &crate::id(&format!("medmesh://province/{code}/institution/{inst}")));
            loop {
                let page = HospitalServiceClient::new(ch.clone())
                    .list_settlements(pb::ListSettlementsRequest {
                        institution_id: inst.clone(),
                        from: day.plus_days(-1).to_string(),
                        to: day.plus_days(1).to_string(),
                        page_size: 200,
                        page_token,
                    })
                    .await?
                    .into_inner();
                all.extend(page.settlements);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            snap.settlements.insert((code.clone(), inst.clone()), all);
        }
    }
    let mut fed = FederationServiceClient::new(crate::channel_as(federation, &crate::national()));
    snap.positions = fed.get_positions(pb::GetPositionsRequest {}).await?.into_inner();
    snap.prepaid = fed.get_prepaid(pb::GetPrepaidRequest {}).await?.into_inner();
    Ok(snap)
}

/// Each province's pool paid what its local settlements in force say, recomputed from the
/// statements: Σ pooling fund, Σ critical illness and Σ medical assistance of the listed local
/// settlements equal the ledger's payments, to the fen, and the assistance fund adds up.
pub fn ledgers_balance(s: &Snapshot) -> Result<(), String> {
    for (p, f) in &s.funds {
        let local = s
            .settlements
            .iter()
            .filter(|((q, _), _)| q == p)
            .flat_map(|(_, l)| l.iter())
            .filter(|x| x.status == "SETTLED" && x.insured_province.is_empty());
        let (mut pooling, mut ci, mut assistance) = (Money::ZERO, Money::ZERO, Money::ZERO);
        for x in local {
            pooling += part(x, |y| &y.pooling_fund);
            ci += part(x, |y| &y.critical_illness);
            assistance += part(x, |y| &y.medical_assistance);
        }
        if assistance != yuan(&f.assistance_paid)
            || yuan(&f.assistance_funded) != yuan(&f.assistance_balance) + assistance
        {
            return Err(format!(
                "{p}: local settlements in force paid {assistance} of medical assistance; the ledger says {} paid, {} funded, {} left",
                f.assistance_paid, f.assistance_funded, f.assistance_balance
            ));
        }
        if (pooling, ci) != (yuan(&f.pooling_paid), yuan(&f.critical_illness_paid)) {
            return Err(format!(
                "{p}: local settlements in force paid {pooling} pooling and {ci} critical illness; the ledger says {} and {}",
                f.pooling_paid, f.critical_illness_paid
            ));
        }
    }
    Ok(())
}

/// Money is conserved across the mesh, to the fen: pools, pending holds, prepaid balances and
/// institution payables together, with what was paid out to institutions (payments, and
/// prepayments not repaid) and to reporters (rewards), equal what came in — contributions and individual-account
/// payments. A top-up moves money from a pool into its prepaid account: it counts as coming
/// in only while the province has not followed it yet. A settled clearing month moves money
/// between prepaid accounts and changes none of these. (Only exact once no transfer is in
/// flight.)
pub fn money_conserved(s: &Snapshot) -> Result<(), String> {
    let mut held = Money::ZERO;
    let mut came = Money::ZERO;
    for f in s.funds.values() {
        held += yuan(&f.balance) + yuan(&f.assistance_balance) + yuan(&f.nonlocal_reserved) + yuan(&f.payables);
        held += yuan(&f.institution_payments) + yuan(&f.prepaid_out) - yuan(&f.prepaid_repaid);
        // Rewards to reporters left the pool too.
        held += yuan(&f.rewards_paid);
        came += yuan(&f.contributions)
            + yuan(&f.assistance_funded)
            + yuan(&f.accounts_paid)
            + yuan(&f.nonlocal_accounts_in)
            - yuan(&f.prepaid_topped_up);
    }
    for a in &s.prepaid.accounts {
        // An upheld dispute's adjustment is held at the federation for the treatment province.
        held += yuan(&a.balance) + yuan(&a.adjusted);
        came += yuan(&a.topped_up);
    }
    if held != came {
        return Err(format!("money held (pools, holds, prepaid, payables) {held} but {came} came in"));
    }
    Ok(())
}

/// Each pool has followed its province's top-ups at the federation: what left the pool for the
/// prepaid account is what the account received, to the fen. (Only once the provinces' leaders
/// have had a pass since the last top-up.)
pub fn pools_follow_top_ups(s: &Snapshot) -> Result<(), String> {
    for (p, f) in &s.funds {
        let at_federation = s.topped_up(p);
        if yuan(&f.prepaid_topped_up) != at_federation {
            return Err(format!(
                "{p}: the pool paid {} into its prepaid account; the federation received {at_federation}",
                f.prepaid_topped_up
            ));
        }
    }
    Ok(())
}

/// Nothing is left in doubt: no reservation waits for a decision, no reversal is half done.
pub fn nothing_pending(s: &Snapshot) -> Result<(), String> {
    for (p, f) in &s.funds {
        if yuan(&f.nonlocal_reserved) != Money::ZERO {
            return Err(format!("{p}: {} still reserved for non-local care", f.nonlocal_reserved));
        }
    }
    for ((p, i), list) in &s.settlements {
        if let Some(x) = list.iter().find(|x| x.status == "REVERSING") {
            return Err(format!("{p}/{i}: settlement {} is still being reversed", x.serial));
        }
    }
    Ok(())
}

/// What insured provinces owe equals what treatment provinces are owed and what the federation's
/// positions hold in force, in amount and count, in total and per province; what settled
/// clearing months paid is what each ledger shows paid and received (once the provinces have
/// followed the federation); each insured province's own view of its prepaid account is the
/// federation's, but for the upheld disputes' adjustments only the federation holds.
pub fn positions_match(s: &Snapshot) -> Result<(), String> {
    let owed: Money = s.funds.values().map(|f| yuan(&f.nonlocal_owed)).sum();
    let receivable: Money = s.funds.values().map(|f| yuan(&f.nonlocal_receivable)).sum();
    let in_force: Money = s.positions.positions.iter().map(|p| yuan(&p.in_force)).sum();
    if owed != receivable || owed != in_force {
        return Err(format!("owed {owed}, receivable {receivable}, federation positions in force {in_force}"));
    }
    // Each province's sides of the positions: as insured province (in force, settled,
    // adjusted) and as treatment province (in force, settled).
    #[derive(Default)]
    struct Sides {
        owes: Money,
        paid: Money,
        adjusted: Money,
        is_owed: Money,
        received: Money,
    }
    let mut sides: BTreeMap<&str, Sides> = BTreeMap::new();
    for x in &s.positions.positions {
        let i = sides.entry(x.insured_province.as_str()).or_default();
        i.owes += yuan(&x.in_force);
        i.paid += yuan(&x.settled);
        i.adjusted += yuan(&x.adjusted);
        let t = sides.entry(x.treatment_province.as_str()).or_default();
        t.is_owed += yuan(&x.in_force);
        t.received += yuan(&x.settled);
    }
    for (p, f) in &s.funds {
        let Sides { owes, paid, adjusted, is_owed, received } = sides.remove(p.as_str()).unwrap_or_default();
        if (yuan(&f.nonlocal_owed), yuan(&f.nonlocal_receivable)) != (owes, is_owed) {
            return Err(format!(
                "{p}: the federation holds {owes} owed and {is_owed} receivable in force; the ledger says {} and {}",
                f.nonlocal_owed, f.nonlocal_receivable
            ));
        }
        let mine = yuan(&f.prepaid_balance) - adjusted;
        let account = s.prepaid.accounts.iter().find(|a| &a.province == p).map(|a| yuan(&a.balance));
        if account.is_some_and(|a| a != mine) {
            return Err(format!(
                "{p}: the ledger's prepaid balance {} less the adjustments is {mine}; the federation's account says {account:?}",
                f.prepaid_balance
            ));
        }
        if (yuan(&f.clearing_paid), yuan(&f.clearing_received)) != (paid, received) {
            return Err(format!(
                "{p}: settled clearing months paid {paid} and received {received}; the ledger says {} and {}",
                f.clearing_paid, f.clearing_received
            ));
        }
    }
    let posted: u64 = s.funds.values().map(|f| f.nonlocal_settlements).sum();
    let treated: u64 = s.funds.values().map(|f| f.nonlocal_treated).sum();
    if posted != treated || posted != s.positions.settlements {
        return Err(format!(
            "non-local settlements: {posted} posted by insured provinces, {treated} in force at treatment provinces, {} in the federation",
            s.positions.settlements
        ));
    }
    Ok(())
}

/// Each province's payables and non-local counts equal the sum of its settlements in force,
/// and each serial appears once.
pub fn payables_match_settlements(s: &Snapshot) -> Result<(), String> {
    for (p, f) in &s.funds {
        let lists: Vec<&pb::SettleResponse> =
            s.settlements.iter().filter(|((q, _), _)| q == p).flat_map(|(_, l)| l.iter()).collect();
        let live: Vec<&&pb::SettleResponse> = lists.iter().filter(|x| x.status == "SETTLED").collect();
        let sum: Money = live.iter().map(|x| payable(x)).sum();
        // What left the payables since: deductions, payments (in money and from prepayments),
        // recoveries and overspends withheld (each checked against what its callers were told
        // by the tests that make them).
        let taken = yuan(&f.deducted)
            + yuan(&f.institution_payments)
            + yuan(&f.prepaid_offset)
            + yuan(&f.recovered)
            + yuan(&f.budget_withheld);
        if sum - taken != yuan(&f.payables) {
            return Err(format!(
                "{p}: payables {} but settlements in force sum to {sum}, less {taken} deducted, paid, recovered or withheld",
                f.payables
            ));
        }
        let nonlocal: Vec<_> = live.iter().filter(|x| !x.insured_province.is_empty()).collect();
        let receivable: Money = nonlocal.iter().map(|x| payable(x)).sum();
        if receivable != yuan(&f.nonlocal_receivable) || nonlocal.len() as u64 != f.nonlocal_treated {
            return Err(format!(
                "{p}: {} non-local settlements in force sum to {receivable}; ledger says {} for {}",
                nonlocal.len(),
                f.nonlocal_receivable,
                f.nonlocal_treated
            ));
        }
        if (live.len() - nonlocal.len()) as u64 != f.settlements {
            return Err(format!(
                "{p}: {} local settlements in force, ledger says {}",
                live.len() - nonlocal.len(),
                f.settlements
            ));
        }
    }
    for ((p, i), list) in &s.settlements {
        let mut seen = std::collections::BTreeSet::new();
        if let Some(x) = list.iter().find(|x| !seen.insert(&x.serial)) {
            return Err(format!("{p}/{i}: serial {} listed twice", x.serial));
        }
    }
    Ok(())
}

/// Every acknowledged settlement is present once with the split the client was given, and
/// reversed exactly when its reversal was acknowledged (or left unknown).
pub fn acknowledged_survive(
    s: &Snapshot,
    acked: &[Acked],
    unknown_reversals: &[(String, String)],
) -> Result<(), String> {
    for a in acked {
        let list = s
            .settlements
            .get(&(a.treatment.clone(), a.institution.clone()))
            .ok_or_else(|| format!("{}/{}: no statement", a.treatment, a.institution))?;
        let found = list
            .iter()
            .find(|x| x.serial == a.settlement.serial)
            .ok_or_else(|| format!("acknowledged settlement {}/{} is missing", a.treatment, a.settlement.serial))?;
        if found.split != a.settlement.split || found.insured_province != a.settlement.insured_province {
            return Err(format!(
                "settlement {}/{} changed after it was acknowledged",
                a.treatment, a.settlement.serial
            ));
        }
        let unknown = unknown_reversals.contains(&(a.treatment.clone(), a.settlement.serial.clone()));
        let reversed = found.status == "REVERSED";
        if a.reversed && !reversed || !a.reversed && reversed && !unknown {
            return Err(format!(
                "settlement {}/{} is {} but its reversal was {}acknowledged",
                a.treatment,
                a.settlement.serial,
                found.status,
                if a.reversed { "" } else { "not " }
            ));
        }
    }
    Ok(())
}

/// Every invariant, in order; the first violation.
pub fn check(s: &Snapshot, acked: &[Acked], unknown_reversals: &[(String, String)]) -> Result<(), String> {
    ledgers_balance(s)?;
    nothing_pending(s)?;
    positions_match(s)?;
    money_conserved(s)?;
    pools_follow_top_ups(s)?;
    payables_match_settlements(s)?;
    acknowledged_survive(s, acked, unknown_reversals)
}
