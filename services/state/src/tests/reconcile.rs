//! Reconciliation (issue 12.4) over the three groups' in-memory stores: the federation's lines
//! and each province's own records compared page by page as a province replica does, clean
//! first, then with one record changed or lost on each side; each difference expected is
//! written down from what was changed, not computed.

use super::*;
use crate::kv::encode;
use crate::reconcile::{diff_lines, diff_records, lines_of};

/// Every difference of `month` for province `own` (its store `here`), in pages of `size`:
/// `(kind, line kind, serial)`.
fn differences(fed: &MemKv, here: &MemKv, own: &str, month: &str, size: usize) -> Vec<(String, String, String)> {
    let own = prov(own);
    let both = |transfers: &[TransferId]| {
        let Ok(Answer::FedRecords(f)) = run_query(fed, &Query::FedRecords { transfers: transfers.to_vec() }) else {
            panic!("fed records")
        };
        let q = Query::LocalRecords { own: own.clone(), transfers: transfers.to_vec() };
        let Ok(Answer::LocalRecords(l)) = run_query(here, &q) else { panic!("local records") };
        (f, l)
    };
    let mut found = Vec::new();
    let mut token = String::new();
    loop {
        let q = Query::Clearing { month: month.into(), page_token: token.clone(), page_size: size };
        let Ok(Answer::Clearing { view, next_page_token }) = run_query(fed, &q) else { panic!("clearing page") };
        let lines = lines_of(view, &own);
        let transfers: Vec<TransferId> = lines.iter().map(|(t, _)| t.clone()).collect();
        let (f, l) = both(&transfers);
        found.extend(diff_lines(&lines, &f, &l));
        if next_page_token.is_empty() {
            break;
        }
        token = next_page_token;
    }
    let mut after = String::new();
    loop {
        let q = Query::NonLocalMonth { month: month.into(), after: after.clone(), limit: size };
        let Ok(Answer::MonthTransfers { transfers, next }) = run_query(here, &q) else { panic!("month transfers") };
        let (f, l) = both(&transfers);
        found.extend(diff_records(&transfers, &f, &l));
        if next.is_empty() {
            break;
        }
        after = next;
    }
    found
        .into_iter()
        .map(|d| {
            (
                d.kind.name().to_string(),
                d.line.map(|k| k.name()).unwrap_or("").to_string(),
                d.transfer.serial.to_string(),
            )
        })
        .collect()
}

fn diff(kind: &str, line: &str, serial: &str) -> (String, String, String) {
    (kind.into(), line.into(), serial.into())
}

fn put<T: serde::Serialize>(kv: &mut MemKv, key: &str, value: Option<&T>) {
    kv.write([(key.as_bytes().to_vec(), value.map(encode))].into_iter().collect());
}

fn id(serial: &str) -> TransferId {
    TransferId { treatment: prov("110000"), institution: inst(), serial: ser(serial) }
}

#[test]
fn both_sides_agree_on_a_clean_month_and_every_change_shows_on_the_right_side() {
    let mut t = trio();
    for (v, s, price) in [("V1", "S1", "300"), ("V2", "S2", "500"), ("V3", "S3", "700"), ("V4", "S4", "900")] {
        nonlocal_visit(&mut t, v, price, Some(FilingKind::LongTermResident));
        commit(&mut t, s, v);
    }
    // S4 reversed on all three sides while March is open: its line leaves the month.
    ok(&one(
        &mut t.treatment,
        ProvinceCommand::Reverse { institution: inst(), serial: ser("R4"), settlement: ser("S4") },
    ));
    ok(&one(&mut t.federation, FederationCommand::Reverse { transfer: id("S4"), reversal: ser("R4") }));
    ok(&one(&mut t.insured, ProvinceCommand::UnpostReservation { transfer: id("S4") }));
    ok(&one(&mut t.treatment, ProvinceCommand::FinishReversal { institution: inst(), serial: ser("R4") }));
    for size in [1, 2, 1000] {
        assert_eq!(differences(&t.federation, &t.treatment, "110000", "2025-03", size), vec![], "page size {size}");
        assert_eq!(differences(&t.federation, &t.insured, "310000", "2025-03", size), vec![], "page size {size}");
    }
    assert_eq!(differences(&t.federation, &t.treatment, "110000", "2025-04", 10), vec![], "nothing in April");

    // The federation's S1 line is one fen more than both provinces hold.
    let lk =
        keys::fed_clearing_line("2025-03", &prov("310000"), &prov("110000"), &inst(), &ser("S1"), LineKind::Settlement);
    let mut line: ClearingLine = load(&t.federation, &lk).unwrap();
    line.amount += m("0.01");
    put(&mut t.federation, &lk, Some(&line));
    // The insured province lost its reservation of S2.
    put::<()>(&mut t.insured, &keys::reservation(&id("S2")), None);
    // The federation lost its decision of S3 (its line stays).
    put::<()>(&mut t.federation, &keys::fed_decision(&id("S3")), None);
    // The treatment province still holds S4 in force though every other side reversed it.
    let sk = keys::settlement(&inst(), &ser("S4"));
    let mut s4: Settlement = load(&t.treatment, &sk).unwrap();
    s4.status = SettlementStatus::Settled;
    put(&mut t.treatment, &sk, Some(&s4));

    for size in [1, 3, 1000] {
        assert_eq!(
            differences(&t.federation, &t.treatment, "110000", "2025-03", size),
            vec![
                diff("AMOUNT", "SETTLEMENT", "S1"),
                diff("NOT_AT_FEDERATION", "", "S3"),
                diff("REVERSED_AT_FEDERATION", "", "S4"),
            ],
            "page size {size}"
        );
        assert_eq!(
            differences(&t.federation, &t.insured, "310000", "2025-03", size),
            vec![
                diff("AMOUNT", "SETTLEMENT", "S1"),
                diff("NOT_HERE", "SETTLEMENT", "S2"),
                diff("NOT_AT_FEDERATION", "", "S3")
            ],
            "page size {size}"
        );
    }
}

#[test]
fn reconciliation_reads_are_bounded_and_checked() {
    let t = trio();
    let many = vec![id("S1"); MAX_ROWS + 1];
    let e = run_query(&t.federation, &Query::FedRecords { transfers: many.clone() }).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "transfers"));
    let e = run_query(&t.treatment, &Query::LocalRecords { own: prov("110000"), transfers: many }).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "transfers"));
    for (month, limit, field) in [("2025-13", 10, "month"), ("March", 10, "month"), ("2025-03", 0, "page_size")] {
        let e = run_query(&t.treatment, &Query::NonLocalMonth { month: month.into(), after: String::new(), limit })
            .unwrap_err();
        assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, field), "{month} {limit}");
    }
}
