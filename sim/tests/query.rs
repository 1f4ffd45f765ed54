//! The query engine: operators, UDF rules, validation, paging, count.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use weft_sim::SimConfig;

fn expect_ids(records: &[Value], pred: impl Fn(&Value) -> bool) -> Vec<i64> {
    records
        .iter()
        .filter(|r| pred(r))
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn every_field_operator_matches_reference_semantics() {
    let t = start().await;
    let cos = t.sim.records("Companies");
    let s = |r: &Value| r["companyName"].as_str().unwrap_or("").to_lowercase();

    assert_eq!(
        t.ids(
            "Companies",
            json!([{"op":"eq","field":"companyType","value":1}])
        )
        .await,
        expect_ids(&cos, |r| r["companyType"] == 1)
    );
    // values as strings on numeric fields, operator and key casing relaxed
    assert_eq!(
        t.ids(
            "Companies",
            json!([{"Op":"EQ","Field":"CompanyType","Value":"1"}])
        )
        .await,
        expect_ids(&cos, |r| r["companyType"] == 1)
    );
    assert_eq!(
        t.ids(
            "Companies",
            json!([{"op":"noteq","field":"companyType","value":1}])
        )
        .await,
        expect_ids(&cos, |r| r["companyType"] != 1)
    );
    for (op, f) in [
        ("gt", (|a: i64| a > 200) as fn(i64) -> bool),
        ("gte", |a| a >= 201),
        ("lt", |a| a < 201),
        ("lte", |a| a <= 201),
    ] {
        assert_eq!(
            t.ids(
                "Companies",
                json!([{"op":op,"field":"id","value":if op == "gt" {200} else {201}}])
            )
            .await,
            expect_ids(&cos, |r| f(r["id"].as_i64().unwrap())),
            "{op}"
        );
    }
    // string operators are case-insensitive
    assert_eq!(
        t.ids(
            "Companies",
            json!([{"op":"beginsWith","field":"companyName","value":"ACME"}])
        )
        .await,
        expect_ids(&cos, |r| s(r).starts_with("acme"))
    );
    assert!(
        !t.ids(
            "Companies",
            json!([{"op":"beginsWith","field":"companyName","value":"ACME"}])
        )
        .await
        .is_empty()
    );
    assert_eq!(
        t.ids(
            "Companies",
            json!([{"op":"endsWith","field":"companyName","value":"DENTAL"}])
        )
        .await,
        expect_ids(&cos, |r| s(r).ends_with("dental"))
    );
    assert_eq!(
        t.ids(
            "Companies",
            json!([{"op":"contains","field":"companyName","value":"law"}])
        )
        .await,
        expect_ids(&cos, |r| s(r).contains("law"))
    );
    assert_eq!(
        t.ids(
            "Companies",
            json!([{"op":"eq","field":"companyName","value":"acme DENTAL"}])
        )
        .await,
        expect_ids(&cos, |r| s(r) == "acme dental")
    );
    assert_eq!(
        t.ids(
            "Companies",
            json!([{"op":"exist","field":"parentCompanyID"}])
        )
        .await,
        expect_ids(&cos, |r| !r["parentCompanyID"].is_null())
    );
    assert_eq!(
        t.ids(
            "Companies",
            json!([{"op":"notExist","field":"parentCompanyID"}])
        )
        .await
        .len(),
        cos.len() - 1
    );
    assert_eq!(
        t.ids(
            "Companies",
            json!([{"op":"in","field":"companyType","value":[7,8]}])
        )
        .await,
        expect_ids(&cos, |r| r["companyType"] == 7 || r["companyType"] == 8)
    );
    assert_eq!(
        t.ids(
            "Companies",
            json!([{"op":"notIn","field":"companyType","value":[1,2,3]}])
        )
        .await,
        expect_ids(&cos, |r| ![1, 2, 3]
            .contains(&r["companyType"].as_i64().unwrap()))
    );
    // booleans and dates
    assert_eq!(
        t.ids(
            "Companies",
            json!([{"op":"eq","field":"isActive","value":false}])
        )
        .await,
        expect_ids(&cos, |r| r["isActive"] == false)
    );
    let ctr = t.sim.records("Contracts");
    assert_eq!(
        t.ids(
            "Contracts",
            json!([{"op":"gte","field":"endDate","value":"2026-11-23"},
                                 {"op":"lt","field":"endDate","value":"2026-12-23T00:00:00Z"}])
        )
        .await,
        expect_ids(&ctr, |r| {
            let e = r["endDate"].as_str().unwrap();
            ("2026-11-23".."2026-12-23").contains(&e)
        })
    );
}

#[tokio::test]
async fn nested_and_or() {
    let t = start().await;
    let cos = t.sim.records("Companies");
    let got = t
        .ids(
            "Companies",
            json!([
                {"op":"or","items":[
                    {"op":"eq","field":"companyType","value":7},
                    {"op":"and","items":[
                        {"op":"eq","field":"companyType","value":1},
                        {"op":"contains","field":"companyName","value":"dental"}
                    ]}
                ]}
            ]),
        )
        .await;
    let want = expect_ids(&cos, |r| {
        r["companyType"] == 7
            || (r["companyType"] == 1
                && r["companyName"]
                    .as_str()
                    .unwrap()
                    .to_lowercase()
                    .contains("dental"))
    });
    assert!(!want.is_empty());
    assert_eq!(got, want);
}

#[tokio::test]
async fn query_validation_errors_are_500() {
    let t = start().await;
    for (body, needle) in [
        (
            json!({"filter":[{"op":"eq","field":"nope","value":1}]}),
            "Unable to find nope",
        ),
        (
            json!({"filter":[{"op":"like","field":"id","value":1}]}),
            "operator",
        ),
        (
            json!({"filter":[{"op":"eq","field":"CustomerRanking","value":"Golden"}]}),
            "Unable to find CustomerRanking in the Companies Entity",
        ),
        (
            json!({"filter":[{"op":"eq","field":"CustomerRanking","value":"Golden","udf":true},
                          {"op":"exist","field":"RMM Site ID","udf":true}]}),
            "one user-defined field",
        ),
        (
            json!({"MaxRecords":0,"filter":[{"op":"gte","field":"id","value":0}]}),
            "maxCountOfRecordsToReturn must be between 1 and 500",
        ),
        (
            json!({"MaxRecords":501,"filter":[{"op":"gte","field":"id","value":0}]}),
            "maxCountOfRecordsToReturn must be between 1 and 500",
        ),
        (
            json!({"filter":[{"op":"eq","field":"isActive","value":null}]}),
            "isActive",
        ),
        (json!({"filter":[]}), "filter"),
    ] {
        let (s, v) = t.query("Companies", body.clone()).await;
        assert_eq!(s, 500, "{body} -> {v}");
        assert!(errors(&v).contains(needle), "{body} -> {v}");
    }
    let (s, v) = t
        .query(
            "Tickets",
            json!({"filter":[{"op":"eq","field":"creatorType","value":1}]}),
        )
        .await;
    assert_eq!(s, 500, "{v}");
}

#[tokio::test]
async fn udf_query_and_shape() {
    let t = start().await;
    let cos = t.sim.records("Companies");
    let golden = expect_ids(&cos, |r| {
        r["userDefinedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "CustomerRanking" && u["value"] == "Golden")
    });
    assert!(!golden.is_empty());
    let got = t
        .ids(
            "Companies",
            json!([{"op":"eq","field":"customerranking","value":"golden","udf":true},
                   {"op":"eq","field":"companyType","value":1}]),
        )
        .await;
    assert_eq!(got, golden);
}

#[tokio::test]
async fn include_fields_and_ordering() {
    let t = start().await;
    let (s, v) = t
        .query(
            "Contacts",
            json!({"MaxRecords":5,"IncludeFields":["firstName"],"filter":[{"op":"gte","field":"id","value":0}]}),
        )
        .await;
    assert_eq!(s, 200);
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    let keys: Vec<&String> = items[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "firstName"]);
    let ids: Vec<i64> = items.iter().map(|i| i["id"].as_i64().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
}

#[tokio::test]
async fn post_paging_over_500_records_and_405_on_get() {
    let t = start_with(SimConfig::default().with_extra("Contacts", 1200)).await;
    let body = json!({"filter":[{"op":"gte","field":"id","value":0}]});
    let total = t.sim.records("Contacts").len();
    assert_eq!(total, 1350);
    let (s, v) = t.query("Contacts", body.clone()).await;
    assert_eq!(s, 200);
    assert_eq!(v["pageDetails"]["count"], 500);
    assert_eq!(v["pageDetails"]["requestCount"], 500);
    assert!(v["pageDetails"]["prevPageUrl"].is_null());
    let next = v["pageDetails"]["nextPageUrl"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        next.starts_with(&format!(
            "{}V1.0/Contacts/query/next?paging=",
            t.sim.base_url
        )),
        "{next}"
    );
    assert!(!next.contains("search="));
    // paging token is the id keyset
    assert!(next.contains("pageSize") && next.contains("nextIds"));
    // GET on a POST-next URL: 405 with the ASP.NET body
    let (s, v405) = send(t.abs(Method::GET, &next)).await;
    assert_eq!(s, 405);
    assert_eq!(
        v405["Message"],
        "The requested resource does not support http method 'GET'."
    );

    let mut all: Vec<i64> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    let mut url = Some(next);
    let mut pages = 1;
    while let Some(u) = url {
        let (s, v) = send(t.abs(Method::POST, &u).json(&body)).await;
        assert_eq!(s, 200, "{v}");
        pages += 1;
        assert!(v["pageDetails"]["prevPageUrl"].is_string());
        all.extend(
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_i64().unwrap()),
        );
        url = v["pageDetails"]["nextPageUrl"].as_str().map(str::to_string);
    }
    assert_eq!(pages, 3);
    assert_eq!(all.len(), total);
    let mut dedup = all.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup, all, "ids ascending, no duplicates");
}

#[tokio::test]
async fn get_search_paging_and_count() {
    let t = start_with(SimConfig::default().with_extra("Contacts", 400)).await;
    let search =
        json!({"MaxRecords":200,"filter":[{"op":"eq","field":"isActive","value":1}]}).to_string();
    let active = t
        .sim
        .records("Contacts")
        .iter()
        .filter(|c| c["isActive"] == 1)
        .count();
    let (s, v) = send(
        t.req(Method::GET, "V1.0/Contacts/query")
            .query(&[("search", &search)]),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let mut n = v["items"].as_array().unwrap().len();
    let mut url = v["pageDetails"]["nextPageUrl"].as_str().map(str::to_string);
    assert!(url.as_ref().unwrap().contains("&search="));
    while let Some(u) = url {
        let (s, v) = send(t.abs(Method::GET, &u)).await;
        assert_eq!(s, 200, "{v}");
        n += v["items"].as_array().unwrap().len();
        url = v["pageDetails"]["nextPageUrl"].as_str().map(str::to_string);
    }
    assert_eq!(n, active);
    // count: POST and GET
    let (s, v) = send(
        t.req(Method::POST, "V1.0/Contacts/query/count")
            .json(&json!({"filter":[{"op":"eq","field":"isActive","value":1}]})),
    )
    .await;
    assert_eq!(
        (s, v["queryCount"].as_u64().unwrap() as usize),
        (200, active)
    );
    let (s, v) = send(
        t.req(Method::GET, "V1.0/contacts/query/count")
            .query(&[("search", &search)]),
    )
    .await;
    assert_eq!(
        (s, v["queryCount"].as_u64().unwrap() as usize),
        (200, active)
    );
}
