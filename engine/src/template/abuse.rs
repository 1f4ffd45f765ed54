//! Scratch.
#[test]
fn explore() {
    if let Ok(src) = std::env::var("WEFT_EXPLORE") {
        let t = std::time::Instant::now();
        let r = super::eval_str(&src, &serde_json::json!({}));
        match r {
            Ok(v) => println!("RESULT ok len={} {:?}", v.to_string().len(), t.elapsed()),
            Err(e) => println!("RESULT err {} {:?}", e.message, t.elapsed()),
        }
    }
}
