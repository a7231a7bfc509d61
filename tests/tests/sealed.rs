//! Issue 10.6: sealed identities, through real replica processes.
//!
//! Persons are registered, looked up, and settled locally and across provinces through the
//! public API; the API still answers with their names. Then every replica stops, and every byte
//! each one left on disk — RocksDB's log, write-ahead log, tables and snapshots, and the
//! process's own log — is searched for every identity number, card number and name it was
//! given. None may appear. The replicas store without compression
//! (`MEDMESH_COMPRESSION=none`): LZ4 could hide a name that is there.

use medmesh_node::demo;
use medmesh_node::pb;
use medmesh_node::pb::hospital_service_client::HospitalServiceClient;
use medmesh_tests::{institution, Mesh};

const HOME: &str = "110000";
const OTHER: &str = "310000";
const PERSONS: u32 = 6;

/// Every file under `dir`, recursively.
fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_identity_number_card_or_name_is_stored_in_clear() {
    let mut mesh = Mesh::start_with_env(&[HOME, OTHER], PERSONS, &[("MEDMESH_COMPRESSION", "none".to_string())]).await;
    let day = demo::today();
    let g = mesh.province(HOME);
    let leader = g.leader().await;
    let inst = demo::institution(HOME, 1);
    let mut h = HospitalServiceClient::new(g.channel_as(leader, &institution(HOME, 1)));

    // The API still shows what the seal holds: the name, and the number only masked.
    let who = h
        .lookup_identity(pb::LookupIdentityRequest {
            institution_id: inst.clone(),
            certificate_kind: pb::CertificateKind::SocialSecurityCard as i32,
            certificate: demo::ss_card(HOME, 1),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(who.name, "Person 1");
    assert_eq!(who.masked_id, medmesh_types::mask_identity(&demo::person_id(HOME, 1)));

    // One local and one non-local settlement; each expense document names the patient.
    for (n, insured) in [(1, HOME), (2, OTHER)] {
        let (visit, serial) = (format!("V{n}"), format!("S{n}"));
        let v = h
            .register_visit(demo::nonlocal_visit_request(HOME, insured, &visit, 1, 1, &day))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(v.masked_id, medmesh_types::mask_identity(&demo::person_id(insured, 1)));
        h.upload_fees(pb::UploadFeesRequest {
            institution_id: inst.clone(),
            visit_serial: visit.clone(),
            lines: demo::fee_lines(n, &day),
        })
        .await
        .unwrap();
        h.settle(pb::SettleRequest {
            lines: Vec::new(),
            institution_id: inst.clone(),
            serial: serial.clone(),
            visit_serial: visit,
            use_individual_account: true,
        })
        .await
        .unwrap();
        let doc = h
            .get_expense_document(pb::GetExpenseDocumentRequest { institution_id: inst.clone(), serial })
            .await
            .unwrap()
            .into_inner()
            .document
            .unwrap();
        assert_eq!(doc.name, "Person 1", "insured in {insured}");
        assert_eq!(doc.masked_id, medmesh_types::mask_identity(&demo::person_id(insured, 1)));
    }

    // What was given in clear, and must not be found at rest.
    let mut secrets = Vec::new();
    for p in [HOME, OTHER] {
        for i in 0..PERSONS {
            let r = demo::person(p, i);
            secrets.extend([r.id, r.social_security_card, r.e_credential]);
        }
    }
    // Names are short and alike ("Person 1"); each is searched with the byte that follows it
    // in no other name.
    let names: Vec<String> = (0..PERSONS).map(|i| format!("Person {i}")).collect();

    let mut groups = vec![&mut mesh.federation];
    groups.extend(mesh.provinces.iter_mut());
    let mut searched = 0usize;
    for g in groups {
        g.stop_all().await;
        for r in &g.replicas {
            let mut all = Vec::new();
            files(&r.dir, &mut all);
            for f in all {
                let bytes = std::fs::read(&f).expect("read a replica file");
                searched += bytes.len();
                for s in &secrets {
                    assert!(
                        !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                        "{} holds {} in clear",
                        f.display(),
                        medmesh_types::mask_identity(s)
                    );
                }
                for name in &names {
                    let hit = bytes
                        .windows(name.len() + 1)
                        .any(|w| &w[..name.len()] == name.as_bytes() && !w[name.len()].is_ascii_digit());
                    assert!(!hit, "{} holds the name {name:?} in clear", f.display());
                }
            }
        }
    }
    assert!(searched > 100_000, "the replicas left data to search ({searched} bytes)");
}
