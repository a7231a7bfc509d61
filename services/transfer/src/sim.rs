//! A deterministic simulation of the two-phase transfer protocol.
//!
//! One insured province, two treatment provinces and the federation exchange messages over a
//! network of in-flight messages. Every choice comes from a seeded [`Rng`] (splitmix64): deliver
//! any in-flight message (so messages are reordered), drop one, duplicate one, advance logical
//! time (timers fire), crash a node, crash a node right after it applied a message but before it
//! sent anything, restart a crashed node, or have a hospital retry a request. Each node's durable
//! state is a clone taken after every apply; a restart starts from it with its timers rebuilt.
//! After the chaos phase, the healing phase restarts every node and delivers everything, with no
//! loss, until quiescent.
//!
//! The invariants are written once, as the functions below, and checked after every step (the
//! safety ones) and at the end (the liveness ones). The same seed gives the same trace.
//! Run one seed with its trace printed:
//! `MEDMESH_SIM_SEED=42 cargo test --release -p medmesh-transfer sim_seed_from_env -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};

use medmesh_settlement::{Accumulators, CriticalIllnessTier, InsuranceType, Policy};
use medmesh_types::{InstitutionId, Money, PersonId, ProvinceCode, Ratio, Serial};

use crate::{
    Address, BeginRequest, Decision, Federation, InsuredProvince, Msg, OutcomeKind, Resolution, SettlementKey,
    TransferId, TreatmentProvince, T_VOID,
};

/// A small deterministic PRNG (splitmix64), seeded by a `u64`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// An index into a collection of `len > 0` elements.
    pub fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.below(len as u64)).unwrap_or(0)
    }
}

/// The shape of a simulated run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Transfers in the workload.
    pub transfers: usize,
    /// Distinct insured persons (few, so transfers compete for headroom).
    pub persons: usize,
    /// Steps of the chaos phase.
    pub chaos_steps: usize,
    /// Most logical time the healing phase may take before `no_pending_after_heal` fails.
    pub heal_bound_ms: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config { transfers: 12, persons: 3, chaos_steps: 400, heal_bound_ms: 2 * T_VOID }
    }
}

/// A node: its live state, its durable state (a clone after every apply) and whether it is up.
#[derive(Debug, Clone)]
pub struct Node<M> {
    /// The state the running process holds.
    pub live: M,
    /// The state on disk: what a restart starts from.
    pub durable: M,
    /// False while crashed.
    pub up: bool,
}

/// What the simulation needs of a state machine: apply one message, restart from durable state.
pub trait Machine: Clone {
    /// Applies one message at logical time `now`; returns the messages to send.
    fn apply_msg(&mut self, msg: Msg, now: u64) -> Vec<Msg>;
    /// Rebuilds volatile state after a restart; returns what resolves in-doubt transfers.
    fn restart_at(&mut self, now: u64) -> Vec<Msg>;
}

impl Machine for InsuredProvince {
    fn apply_msg(&mut self, msg: Msg, now: u64) -> Vec<Msg> {
        self.apply(msg, now)
    }
    fn restart_at(&mut self, now: u64) -> Vec<Msg> {
        self.restart(now)
    }
}

impl Machine for TreatmentProvince {
    fn apply_msg(&mut self, msg: Msg, now: u64) -> Vec<Msg> {
        self.apply(msg, now)
    }
    fn restart_at(&mut self, now: u64) -> Vec<Msg> {
        self.restart(now)
    }
}

impl Machine for Federation {
    fn apply_msg(&mut self, msg: Msg, now: u64) -> Vec<Msg> {
        self.apply(msg, now)
    }
    fn restart_at(&mut self, now: u64) -> Vec<Msg> {
        self.restart(now)
    }
}

impl<M: Machine> Node<M> {
    fn new(m: M) -> Node<M> {
        Node { durable: m.clone(), live: m, up: true }
    }

    fn apply(&mut self, msg: Msg, now: u64) -> Vec<Msg> {
        let out = self.live.apply_msg(msg, now);
        self.durable = self.live.clone();
        out
    }

    fn restart(&mut self, now: u64) -> Vec<Msg> {
        self.live = self.durable.clone();
        self.up = true;
        self.live.restart_at(now)
    }
}

/// The simulated mesh.
#[derive(Debug, Clone)]
pub struct World {
    /// Logical time in ms.
    pub now: u64,
    /// The insured province.
    pub insured: Node<InsuredProvince>,
    /// The treatment provinces.
    pub treatments: BTreeMap<ProvinceCode, Node<TreatmentProvince>>,
    /// The federation.
    pub federation: Node<Federation>,
    /// Messages in flight.
    pub network: Vec<Msg>,
    /// The workload: each hospital request and the province it is sent to.
    pub requests: Vec<(ProvinceCode, BeginRequest)>,
    /// The first final outcome each hospital received, by key.
    pub outcomes: BTreeMap<SettlementKey, OutcomeKind>,
    /// Problems seen while delivering (a hospital told two different final outcomes).
    pub violations: Vec<String>,
    /// The pooling fund at the start.
    pub initial_fund: Money,
    /// The applied events, one line each (only kept when tracing).
    pub trace: Vec<String>,
    /// FNV-1a hash of every applied event line.
    pub trace_hash: u64,
    /// Keep the trace lines (otherwise only the hash).
    pub keep_trace: bool,
}

/// The result of one seeded run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// FNV-1a hash of the trace.
    pub trace_hash: u64,
    /// The trace lines, if kept.
    pub trace: Vec<String>,
    /// Steps taken (chaos and healing).
    pub steps: usize,
    /// Transfers committed.
    pub committed: usize,
    /// Transfers aborted.
    pub aborted: usize,
    /// Logical ms the healing phase took.
    pub heal_ms: u64,
}

/// Why a seeded run failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// An invariant did not hold.
    #[error("seed {seed}: invariant {invariant} failed at step {step}: {detail}; replay: {replay}")]
    Invariant {
        /// The seed.
        seed: u64,
        /// The step at which it was found.
        step: usize,
        /// The invariant's name.
        invariant: &'static str,
        /// What was wrong.
        detail: String,
        /// The command that replays this seed with its trace.
        replay: String,
    },
}

/// The command that replays one seed with its trace printed.
pub fn replay_command(seed: u64) -> String {
    format!("MEDMESH_SIM_SEED={seed} cargo test --release -p medmesh-transfer sim_seed_from_env -- --nocapture")
}

/// A policy for simulations and tests, with the given annual cap.
pub fn sample_policy(annual_cap: Money) -> Policy {
    let ratio = |t: &str| Ratio::parse(t).unwrap_or(Ratio::ONE);
    let mut ratios = BTreeMap::new();
    for level in 1..=3u8 {
        ratios.insert((InsuranceType::Employee, level), ratio("0.85"));
        ratios.insert((InsuranceType::Resident, level), ratio("0.6"));
    }
    Policy {
        deductible: Money::from_fen(80_000),
        ratios,
        annual_cap,
        critical_illness: CriticalIllnessTier { ratio: ratio("0.6"), annual_cap: Money::from_fen(40_000_000) },
        temporary_visitor_reduction: ratio("0.1"),
    }
}

/// A hospital key `(institution, S<serial>)` for tests.
pub fn test_key(institution: &str, serial: u64) -> SettlementKey {
    SettlementKey {
        institution: InstitutionId::new(institution).unwrap_or_else(|_| unreachable_id()),
        serial: Serial::new(format!("S{serial}")).unwrap_or_else(|_| unreachable_serial()),
    }
}

/// A transfer id `(treatment, seq)` for tests.
pub fn test_transfer(treatment: &str, seq: u64) -> TransferId {
    TransferId { treatment: province(treatment), seq }
}

fn unreachable_id() -> InstitutionId {
    InstitutionId::new("INVALID").unwrap_or_else(|_| unreachable!("a literal id is valid"))
}

fn unreachable_serial() -> Serial {
    Serial::new("INVALID").unwrap_or_else(|_| unreachable!("a literal serial is valid"))
}

fn province(code: &str) -> ProvinceCode {
    ProvinceCode::new(code).unwrap_or_else(|_| unreachable!("a literal province code is valid"))
}

fn person(i: usize) -> PersonId {
    PersonId::new(format!("SIM{i:09}")).unwrap_or_else(|_| unreachable!("a generated person id is valid"))
}

const YEAR: i32 = 2025;

impl World {
    /// A new mesh with a seeded workload: persons close to their caps, transfers spread over two
    /// treatment provinces, and (for one seed in five) a pooling fund too small for all of them.
    pub fn new(rng: &mut Rng, config: &Config) -> World {
        let cap = Money::from_fen(100_000);
        let initial_fund = if rng.below(5) == 0 {
            Money::from_fen(20_000 + 100 * rng.below(300) as i64)
        } else {
            Money::from_fen(100_000_000)
        };
        let mut insured = InsuredProvince::new(province("310000"), sample_policy(cap), initial_fund);
        for i in 0..config.persons {
            let paid = Money::from_fen(30_000 + rng.below(50_000) as i64);
            insured
                .accumulators
                .insert((person(i), YEAR), Accumulators { pooling_paid: paid, ..Accumulators::default() });
        }
        let codes = [province("110000"), province("440000")];
        let mut requests = Vec::new();
        for n in 0..config.transfers {
            let treatment = codes[rng.index(codes.len())].clone();
            let institution = format!("H{}-{}", treatment.as_str(), rng.below(2));
            requests.push((
                treatment,
                BeginRequest {
                    key: test_key(&institution, n as u64),
                    person: person(rng.index(config.persons.max(1))),
                    insured: province("310000"),
                    year: YEAR,
                    fund_share: Money::from_fen(5_000 + rng.below(25_000) as i64),
                },
            ));
        }
        let network = requests.iter().map(|(t, r)| Msg::Begin { treatment: t.clone(), request: r.clone() }).collect();
        World {
            now: 0,
            insured: Node::new(insured),
            treatments: codes.iter().map(|c| (c.clone(), Node::new(TreatmentProvince::new(c.clone())))).collect(),
            federation: Node::new(Federation::new()),
            network,
            requests,
            outcomes: BTreeMap::new(),
            violations: Vec::new(),
            initial_fund,
            trace: Vec::new(),
            trace_hash: 0xcbf2_9ce4_8422_2325,
            keep_trace: false,
        }
    }

    fn record(&mut self, line: String) {
        for b in line.bytes() {
            self.trace_hash ^= u64::from(b);
            self.trace_hash = self.trace_hash.wrapping_mul(0x0000_0100_0000_01B3);
        }
        self.trace_hash ^= 0xff;
        if self.keep_trace {
            self.trace.push(line);
        }
    }

    fn addresses(&self) -> Vec<Address> {
        let mut a = vec![Address::Federation, Address::Insured(self.insured.live.code.clone())];
        a.extend(self.treatments.keys().map(|c| Address::Treatment(c.clone())));
        a
    }

    fn is_up(&self, to: &Address) -> bool {
        match to {
            Address::Federation => self.federation.up,
            Address::Insured(_) => self.insured.up,
            Address::Treatment(c) => self.treatments.get(c).is_some_and(|n| n.up),
            Address::Hospital(_) => true,
        }
    }

    /// Applies `msg` at its node if that node is up (a message to a crashed node is lost).
    /// Returns the node's output, or `None` if it was lost.
    fn apply_at(&mut self, msg: Msg) -> Option<Vec<Msg>> {
        let to = msg.to();
        if !self.is_up(&to) {
            return None;
        }
        let now = self.now;
        Some(match to {
            Address::Federation => self.federation.apply(msg, now),
            Address::Insured(_) => self.insured.apply(msg, now),
            Address::Treatment(c) => match self.treatments.get_mut(&c) {
                Some(n) => n.apply(msg, now),
                None => Vec::new(),
            },
            Address::Hospital(_) => {
                if let Msg::Outcome { key, kind, .. } = msg {
                    if kind.is_final() {
                        match self.outcomes.get(&key) {
                            Some(first) if first != &kind => {
                                self.violations.push(format!("{key:?} was told {first:?} and later {kind:?}"))
                            }
                            Some(_) => {}
                            None => {
                                self.outcomes.insert(key, kind);
                            }
                        }
                    }
                }
                Vec::new()
            }
        })
    }

    fn deliver(&mut self, i: usize, send_output: bool) {
        let msg = self.network.remove(i);
        let line = format!("t={} deliver{} {:?}", self.now, if send_output { "" } else { "+crash" }, msg);
        self.record(line);
        let to = msg.to();
        if let Some(out) = self.apply_at(msg) {
            if send_output {
                self.network.extend(out);
            } else {
                self.crash(&to);
            }
        }
    }

    fn crash(&mut self, to: &Address) {
        match to {
            Address::Federation => self.federation.up = false,
            Address::Insured(_) => self.insured.up = false,
            Address::Treatment(c) => {
                if let Some(n) = self.treatments.get_mut(c) {
                    n.up = false;
                }
            }
            Address::Hospital(_) => {}
        }
    }

    fn restart(&mut self, to: &Address) {
        let now = self.now;
        let out = match to {
            Address::Federation => self.federation.restart(now),
            Address::Insured(_) => self.insured.restart(now),
            Address::Treatment(c) => self.treatments.get_mut(c).map(|n| n.restart(now)).unwrap_or_default(),
            Address::Hospital(_) => Vec::new(),
        };
        self.network.extend(out);
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.record(format!("t={} tick", self.now));
        for a in self.addresses() {
            if let Some(out) = self.apply_at(Msg::Tick { to: a }) {
                self.network.extend(out);
            }
        }
    }

    fn hospital_retry(&mut self, i: usize) {
        let (t, r) = self.requests[i].clone();
        self.record(format!("t={} hospital-retry {:?}", self.now, r.key));
        self.network.push(Msg::Begin { treatment: t, request: r });
    }

    /// One chaos step chosen by `rng`.
    pub fn chaos_step(&mut self, rng: &mut Rng) {
        let roll = rng.below(100);
        let n = self.network.len();
        match roll {
            0..=49 if n > 0 => {
                let i = rng.index(n);
                self.deliver(i, true);
            }
            50..=57 if n > 0 => {
                let m = self.network.remove(rng.index(n));
                self.record(format!("t={} drop {m:?}", self.now));
            }
            58..=64 if n > 0 => {
                let m = self.network[rng.index(n)].clone();
                self.record(format!("t={} duplicate {m:?}", self.now));
                self.network.push(m);
            }
            65..=77 => {
                let ms = 10 + rng.below(150);
                self.advance(ms);
            }
            78..=81 => {
                let addrs = self.addresses();
                let a = addrs[rng.index(addrs.len())].clone();
                self.record(format!("t={} crash {a:?}", self.now));
                self.crash(&a);
            }
            82..=85 if n > 0 => {
                let i = rng.index(n);
                self.deliver(i, false);
            }
            86..=91 => {
                let down: Vec<Address> = self.addresses().into_iter().filter(|a| !self.is_up(a)).collect();
                if !down.is_empty() {
                    let a = down[rng.index(down.len())].clone();
                    self.record(format!("t={} restart {a:?}", self.now));
                    self.restart(&a);
                }
            }
            _ if !self.requests.is_empty() => {
                let i = rng.index(self.requests.len());
                self.hospital_retry(i);
            }
            _ => {}
        }
    }

    fn quiescent(&self) -> bool {
        self.network.is_empty() && no_pending_after_heal(self).is_ok()
    }

    /// Heals the mesh: restarts every crashed node, then delivers everything in order with no
    /// loss, advancing time by [`T_VOID`] and having hospitals retry unanswered requests whenever
    /// the network drains, until quiescent. Returns the logical ms it took.
    pub fn heal(&mut self, bound_ms: u64, steps: &mut usize) -> u64 {
        let start = self.now;
        for a in self.addresses() {
            if !self.is_up(&a) {
                self.record(format!("t={} heal-restart {a:?}", self.now));
                self.restart(&a);
            }
        }
        loop {
            self.drain(steps);
            if self.quiescent() || self.now - start > bound_ms {
                return self.now - start;
            }
            for i in 0..self.requests.len() {
                if !self.outcomes.contains_key(&self.requests[i].1.key) {
                    self.hospital_retry(i);
                }
            }
            self.drain(steps);
            if self.quiescent() {
                return self.now - start;
            }
            self.advance(T_VOID);
        }
    }

    fn drain(&mut self, steps: &mut usize) {
        while !self.network.is_empty() {
            self.deliver(0, true);
            *steps += 1;
        }
    }
}

/// Money is conserved to the fen: pooling fund + reservations + obligations = the initial fund,
/// and the fund never goes negative.
pub fn money_conserved(w: &World) -> Result<(), String> {
    let p = &w.insured.durable;
    let sum = p.fund + p.reserved_total() + p.owed_total();
    if sum != w.initial_fund {
        return Err(format!(
            "fund {} + reserved {} + owed {} = {sum} != initial {}",
            p.fund,
            p.reserved_total(),
            p.owed_total(),
            w.initial_fund
        ));
    }
    if p.fund.is_negative() {
        return Err(format!("fund is negative: {}", p.fund));
    }
    Ok(())
}

/// Each `(institution, serial)` is committed at most once at each side, every decision seen at
/// a province is the federation's, a hospital is never told two final outcomes, and every
/// settlement acknowledged to a hospital survives at its treatment province.
pub fn settled_at_most_once(w: &World) -> Result<(), String> {
    if let Some(v) = w.violations.first() {
        return Err(v.clone());
    }
    let fed = &w.federation.durable;
    let mut seen: BTreeSet<SettlementKey> = BTreeSet::new();
    for (t, s) in w.treatments.values().flat_map(|n| n.durable.committed()) {
        if !seen.insert(s.request.key.clone()) {
            return Err(format!("{:?} committed twice at treatment ({t:?})", s.request.key));
        }
    }
    let mut fed_keys: BTreeSet<SettlementKey> = BTreeSet::new();
    for r in fed.decisions.values().filter(|r| r.decision == Decision::Commit) {
        if !fed_keys.insert(r.key.clone()) {
            return Err(format!("{:?} has two commit decisions", r.key));
        }
    }
    let mut posted: BTreeSet<SettlementKey> = BTreeSet::new();
    for (t, res) in &w.insured.durable.resolved {
        match res {
            Resolution::Posted(r) => {
                if !posted.insert(r.key.clone()) {
                    return Err(format!("{:?} posted twice", r.key));
                }
                if fed.decision(t) != Some(Decision::Commit) {
                    return Err(format!("{t:?} posted without a commit decision"));
                }
            }
            Resolution::Voided if fed.decision(t) != Some(Decision::Abort) => {
                return Err(format!("{t:?} voided without an abort decision"));
            }
            _ => {}
        }
    }
    for n in w.treatments.values() {
        for (t, s) in &n.durable.transfers {
            if let crate::Phase::Done(d) = s.phase {
                if fed.decision(t) != Some(d) {
                    return Err(format!("{t:?} done as {d:?} at treatment, federation has {:?}", fed.decision(t)));
                }
            }
        }
    }
    for (key, kind) in &w.outcomes {
        let survives = w.treatments.values().find_map(|n| n.durable.outcome(key));
        if survives.as_ref() != Some(kind) {
            return Err(format!("{key:?} acknowledged as {kind:?}, now {survives:?}"));
        }
    }
    Ok(())
}

/// A person's posted plus reserved fund share never exceeds the annual cap.
pub fn headroom_never_exceeded(w: &World) -> Result<(), String> {
    let p = &w.insured.durable;
    let mut people: BTreeSet<(PersonId, i32)> = p.accumulators.keys().cloned().collect();
    people.extend(p.pending.values().map(|r| (r.person.clone(), r.year)));
    for (person, year) in people {
        let used = p.paid_for(&person, year) + p.reserved_for(&person, year);
        if used > p.policy.annual_cap {
            return Err(format!("{person:?} {year}: paid + reserved {used} > cap {}", p.policy.annual_cap));
        }
    }
    Ok(())
}

/// After healing: no reservation is pending, no transfer is open at a treatment province, and
/// every hospital request has its final outcome.
pub fn no_pending_after_heal(w: &World) -> Result<(), String> {
    if let Some(t) = w.insured.durable.pending.keys().next() {
        return Err(format!("{t:?} still reserved"));
    }
    for n in w.treatments.values() {
        if let Some((t, _)) = n.durable.open().next() {
            return Err(format!("{t:?} still open at treatment"));
        }
    }
    for (_, r) in &w.requests {
        if !w.outcomes.contains_key(&r.key) {
            return Err(format!("{:?} has no final outcome", r.key));
        }
    }
    Ok(())
}

/// After healing, the three sides agree: a commit decision ⇔ committed at treatment ⇔ posted at
/// the insured province, and the federation's pair obligations equal what the insured province
/// owes and what the treatment province's institutions are owed, to the fen.
pub fn sides_agree_after_heal(w: &World) -> Result<(), String> {
    let fed = &w.federation.durable;
    let insured = &w.insured.durable;
    for (t, r) in &fed.decisions {
        let treatment_commit = w
            .treatments
            .get(&t.treatment)
            .and_then(|n| n.durable.transfers.get(t))
            .is_some_and(|s| s.phase == crate::Phase::Done(Decision::Commit));
        let posted = matches!(insured.resolved.get(t), Some(Resolution::Posted(_)));
        let commit = r.decision == Decision::Commit;
        if commit != treatment_commit || commit != posted {
            return Err(format!(
                "{t:?}: decision {:?}, treatment commit {treatment_commit}, posted {posted}",
                r.decision
            ));
        }
    }
    for (code, n) in &w.treatments {
        let fed_owed = fed.obligations.get(&(insured.code.clone(), code.clone())).copied().unwrap_or(Money::ZERO);
        let insured_owed = insured.owed.get(code).copied().unwrap_or(Money::ZERO);
        let payable: Money = n.durable.payables.values().copied().sum();
        if fed_owed != insured_owed || fed_owed != payable {
            return Err(format!("{code:?}: federation {fed_owed}, insured owes {insured_owed}, payable {payable}"));
        }
    }
    Ok(())
}

type Invariant = (&'static str, fn(&World) -> Result<(), String>);

const SAFETY: [Invariant; 3] = [
    ("money_conserved", money_conserved),
    ("settled_at_most_once", settled_at_most_once),
    ("headroom_never_exceeded", headroom_never_exceeded),
];

const AFTER_HEAL: [Invariant; 2] =
    [("no_pending_after_heal", no_pending_after_heal), ("sides_agree_after_heal", sides_agree_after_heal)];

fn check(w: &World, seed: u64, step: usize, invariants: &[Invariant]) -> Result<(), SimError> {
    for (name, f) in invariants {
        f(w).map_err(|detail| SimError::Invariant {
            seed,
            step,
            invariant: name,
            detail,
            replay: replay_command(seed),
        })?;
    }
    Ok(())
}

/// Runs one seed: chaos, then healing, checking the safety invariants after every step and all
/// invariants at the end. With `keep_trace`, the report holds every applied event.
pub fn run_seed(seed: u64, config: &Config, keep_trace: bool) -> Result<Report, SimError> {
    run_world(seed, config, keep_trace).1
}

/// Like [`run_seed`], and also returns the world as it ended (with its trace, even on failure).
pub fn run_world(seed: u64, config: &Config, keep_trace: bool) -> (World, Result<Report, SimError>) {
    let mut rng = Rng::new(seed);
    let mut w = World::new(&mut rng, config);
    w.keep_trace = keep_trace;
    let mut steps = 0;
    for _ in 0..config.chaos_steps {
        w.chaos_step(&mut rng);
        steps += 1;
        if let Err(e) = check(&w, seed, steps, &SAFETY) {
            return (w, Err(e));
        }
    }
    let heal_ms = w.heal(config.heal_bound_ms, &mut steps);
    if let Err(e) = check(&w, seed, steps, &SAFETY).and_then(|()| check(&w, seed, steps, &AFTER_HEAL)) {
        return (w, Err(e));
    }
    if heal_ms > config.heal_bound_ms {
        let e = SimError::Invariant {
            seed,
            step: steps,
            invariant: "no_pending_after_heal",
            detail: format!("healing took {heal_ms} ms, over the bound of {} ms", config.heal_bound_ms),
            replay: replay_command(seed),
        };
        return (w, Err(e));
    }
    let fed = &w.federation.durable;
    let committed = fed.decisions.values().filter(|r| r.decision == Decision::Commit).count();
    let report = Report {
        seed,
        trace_hash: w.trace_hash,
        trace: w.trace.clone(),
        steps,
        committed,
        aborted: fed.decisions.len() - committed,
        heal_ms,
    };
    (w, Ok(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousand_seeded_schedules_hold_every_invariant() {
        let config = Config::default();
        let (mut committed, mut aborted, mut max_heal) = (0, 0, 0);
        for seed in 0..1_000u64 {
            match run_seed(seed, &config, false) {
                Ok(r) => {
                    committed += r.committed;
                    aborted += r.aborted;
                    max_heal = max_heal.max(r.heal_ms);
                }
                Err(e) => panic!("{e}"),
            }
        }
        println!("1000 seeds: {committed} committed, {aborted} aborted, longest heal {max_heal} ms (logical)");
        // The workload must exercise both outcomes, or the test proves little.
        assert!(committed > 1_000 && aborted > 1_000, "committed {committed}, aborted {aborted}");
    }

    #[test]
    fn a_seed_replays_exactly() {
        let config = Config::default();
        for seed in [0u64, 7, 12_345] {
            let a = run_seed(seed, &config, true).unwrap_or_else(|e| panic!("{e}"));
            let b = run_seed(seed, &config, true).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(a, b);
            assert!(a.steps > config.chaos_steps);
        }
        let a = run_seed(1, &config, false).unwrap_or_else(|e| panic!("{e}"));
        let b = run_seed(2, &config, false).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(a.trace_hash, b.trace_hash);
    }

    #[test]
    fn sim_seed_from_env() {
        let Ok(text) = std::env::var("MEDMESH_SIM_SEED") else { return };
        let seed: u64 = text.trim().parse().unwrap_or_else(|_| panic!("MEDMESH_SIM_SEED must be a u64, got {text:?}"));
        let (w, result) = run_world(seed, &Config::default(), true);
        for line in &w.trace {
            println!("{line}");
        }
        match result {
            Ok(r) => println!(
                "seed {seed}: ok, {} steps, {} committed, {} aborted, heal {} ms, trace hash {:016x}",
                r.steps, r.committed, r.aborted, r.heal_ms, r.trace_hash
            ),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn rng_is_deterministic() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}
