//! Pairing orgs and companies by name: what [`super::suggest`] does once everything is read.

use std::collections::{HashMap, HashSet};

use weft_engine::org::name_key;
use weft_engine::store::{OrgMapping, OrgRecord};

use super::{Company, Excluded, Mapped, Match, OrgBrief, Suggestions};

/// The stored mappings, each with its org (the org id as its name when the org is gone).
pub(super) fn mapped(orgs: &[OrgRecord], mappings: &[OrgMapping]) -> Vec<Mapped> {
    let by_id: HashMap<&str, &OrgRecord> = orgs.iter().map(|o| (o.id.as_str(), o)).collect();
    mappings
        .iter()
        .map(|m| Mapped {
            org: by_id.get(m.org_id.as_str()).map_or_else(
                || OrgBrief {
                    id: m.org_id.clone(),
                    name: m.org_id.clone(),
                },
                |o| OrgBrief::from(*o),
            ),
            company_id: m.external_id.parse().unwrap_or_default(),
            company_name: m.external_name.clone(),
        })
        .collect()
}

/// The exclusions as [`Excluded`] entries.
pub(super) fn excluded(exclusions: &[(String, Option<String>)]) -> Vec<Excluded> {
    exclusions
        .iter()
        .map(|(id, name)| Excluded {
            company_id: id.parse().unwrap_or_default(),
            company_name: name.clone(),
        })
        .collect()
}

/// The companies neither mapped nor excluded.
pub(super) fn unclaimed(
    companies: Vec<Company>,
    mappings: &[OrgMapping],
    exclusions: &[(String, Option<String>)],
) -> Vec<Company> {
    let mapped_companies: HashSet<&str> = mappings.iter().map(|m| m.external_id.as_str()).collect();
    let excluded_ids: HashSet<&str> = exclusions.iter().map(|(id, _)| id.as_str()).collect();
    companies
        .into_iter()
        .filter(|c| {
            let id = c.id.to_string();
            !mapped_companies.contains(id.as_str()) && !excluded_ids.contains(id.as_str())
        })
        .collect()
}

/// Pairs active unmapped orgs with unmapped, non-excluded companies whose names are equal
/// once case and whitespace runs are ignored; several companies of one name match only the
/// one whose name is exactly the org's.
pub fn pair(
    orgs: &[OrgRecord],
    companies: Vec<Company>,
    mappings: &[OrgMapping],
    exclusions: &[(String, Option<String>)],
) -> Suggestions {
    let mapped_orgs: HashSet<&str> = mappings.iter().map(|m| m.org_id.as_str()).collect();
    let candidates = unclaimed(companies, mappings, exclusions);
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        by_key.entry(name_key(&c.name)).or_default().push(i);
    }
    let mut taken: HashSet<usize> = HashSet::new();
    let mut matched_idx: Vec<(OrgBrief, usize, bool)> = Vec::new();
    let mut unmatched_orgs = Vec::new();
    for o in orgs
        .iter()
        .filter(|o| o.active && !mapped_orgs.contains(o.id.as_str()))
    {
        let same: Vec<usize> = by_key
            .get(&name_key(&o.name))
            .map(|v| v.iter().copied().filter(|i| !taken.contains(i)).collect())
            .unwrap_or_default();
        // Several companies of that name: only an exact one decides.
        let pick = match same.as_slice() {
            [one] => Some(*one),
            [] => None,
            many => {
                let exact: Vec<usize> = many
                    .iter()
                    .copied()
                    .filter(|i| candidates[*i].name == o.name)
                    .collect();
                (exact.len() == 1).then(|| exact[0])
            }
        };
        match pick {
            Some(i) => {
                taken.insert(i);
                matched_idx.push((o.into(), i, candidates[i].name == o.name));
            }
            None => unmatched_orgs.push(o.into()),
        }
    }
    let mut slots: Vec<Option<Company>> = candidates.into_iter().map(Some).collect();
    // In the companies' order (by name).
    matched_idx.sort_by_key(|(_, i, _)| *i);
    let matched = matched_idx
        .into_iter()
        .filter_map(|(org, i, exact)| {
            Some(Match {
                org,
                company: slots[i].take()?,
                exact,
            })
        })
        .collect();
    Suggestions {
        matched,
        unmatched_orgs,
        unmatched_companies: slots.into_iter().flatten().collect(),
        excluded: excluded(exclusions),
        already_mapped: mapped(orgs, mappings),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::mapping::KIND;

    fn org(id: &str, name: &str, parent: Option<&str>) -> OrgRecord {
        OrgRecord {
            id: id.into(),
            name: name.into(),
            parent_id: parent.map(str::to_string),
            tags: vec![],
            attributes: json!({}),
            active: true,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn company(id: i64, name: &str) -> Company {
        Company {
            id,
            name: name.into(),
            company_type: Some(1),
            company_type_label: Some("Customer".into()),
            active: true,
            fields: json!({"id": id, "companyName": name}),
        }
    }

    #[test]
    fn pairs_by_name_ignoring_case_and_whitespace_and_skips_mapped_and_excluded() {
        let orgs = vec![
            org("msp", "MSP", None),
            org("acme", "Acme Dental", Some("msp")),
            org("summit", "  summit  LAW group ", Some("msp")),
            org("mapped", "Mapped Co", Some("msp")),
            org("lonely", "Nobody Inc", Some("msp")),
        ];
        let companies = vec![
            company(1, "Acme Dental"),
            company(2, "Summit Law Group"),
            company(3, "Mapped Co"),
            company(4, "Excluded Co"),
            company(5, "Free Co"),
        ];
        let mappings = vec![OrgMapping {
            org_id: "mapped".into(),
            kind: KIND.into(),
            external_id: "3".into(),
            external_name: Some("Mapped Co".into()),
            created_at: String::new(),
        }];
        let s = pair(&orgs, companies, &mappings, &[("4".into(), None)]);
        let m: Vec<(&str, i64, bool)> = s
            .matched
            .iter()
            .map(|m| (m.org.id.as_str(), m.company.id, m.exact))
            .collect();
        assert_eq!(m, vec![("acme", 1, true), ("summit", 2, false)]);
        let uo: Vec<&str> = s.unmatched_orgs.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(uo, vec!["msp", "lonely"]);
        let uc: Vec<i64> = s.unmatched_companies.iter().map(|c| c.id).collect();
        assert_eq!(uc, vec![5]);
        assert_eq!(s.excluded[0].company_id, 4);
        assert_eq!(s.already_mapped[0].company_id, 3);
    }

    #[test]
    fn ambiguous_names_match_only_exactly() {
        let orgs = vec![org("a", "Acme", None)];
        let s = pair(
            &orgs,
            vec![company(1, "ACME"), company(2, "acme")],
            &[],
            &[],
        );
        assert!(s.matched.is_empty());
        let s = pair(
            &orgs,
            vec![company(1, "ACME"), company(2, "Acme")],
            &[],
            &[],
        );
        assert_eq!(s.matched[0].company.id, 2);
        assert!(s.matched[0].exact);
    }

    #[test]
    fn the_json_shapes_stay() {
        let s = pair(
            &[org("a", "Acme", None)],
            vec![company(1, "Acme")],
            &[],
            &[],
        );
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["matched"][0],
            json!({"org": {"id": "a", "name": "Acme"}, "company": {"id": 1, "name": "Acme",
                "company_type": 1, "company_type_label": "Customer", "active": true}, "exact": true})
        );
    }
}
