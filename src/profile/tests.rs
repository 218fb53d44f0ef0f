//! Profile loading as a whole: located errors, inheritance, the registry and every shipped
//! profile.

use std::time::Duration;

use http::{HeaderMap, Method};

use super::*;

fn err(text: &str) -> ProfileError {
    Plan::parse(text, "p.json").unwrap_err()
}

#[test]
fn every_shipped_profile_loads_and_default_approves() {
    let profiles = Profiles::shipped();
    let names: Vec<&str> = profiles.names().collect();
    for (name, _) in SHIPPED {
        assert!(names.contains(&name), "{name} missing from {names:?}");
        let plan = profiles.get(name).unwrap();
        assert_eq!(&*plan.name, name);
        assert!(!plan.description.is_empty(), "{name} has no description");
        // Each also loads on its own (as `gazua check` would see it).
        Plan::parse(SHIPPED.iter().find(|s| s.0 == name).unwrap().1, name).unwrap();
    }
    let default = profiles.active();
    assert_eq!(&*default.name, "default");
    assert_eq!(
        default.defaults.outcome.as_ref().unwrap().to_string(),
        "approved"
    );
    // Confirm is slower than inquiry in the default profile.
    let p50 = |route| default.route(route).latency.as_ref().unwrap().to_string();
    assert!(
        p50(Route::Confirm).contains("p50=350ms"),
        "{}",
        p50(Route::Confirm)
    );
    assert!(
        p50(Route::Inquiry).contains("p50=25ms"),
        "{}",
        p50(Route::Inquiry)
    );
}

#[test]
fn shipped_profiles_model_what_they_say() {
    let profiles = Profiles::shipped();
    let saturation = profiles.get("saturation").unwrap();
    let capacity = saturation.capacity.as_ref().unwrap();
    assert_eq!((capacity.concurrency, capacity.queue), (50, 1000));
    assert_eq!(capacity.overflow.to_string(), "throttled");

    let peak = profiles.get("peak-sale").unwrap();
    assert!(peak.rate_limit.is_some() && peak.capacity.is_some());
    let h = HeaderMap::new();
    let big = RuleInput {
        route: Route::Confirm,
        method: &Method::POST,
        headers: &h,
        body: br#"{"paymentKey": "k", "orderId": "o-123456", "amount": 1500000}"#,
    };
    let rule = peak.rule_for(&big).unwrap();
    assert!(
        rule.outcome
            .as_ref()
            .unwrap()
            .to_string()
            .contains("EXCEED_MAX_AMOUNT")
    );
    // Inherited from default: the per-route latency peak-sale does not set.
    assert!(peak.route(Route::Cancel).latency.is_some());

    let drill = profiles.get("outage-drill").unwrap();
    let at = |t| drill.phase_at(parse_instant(t).unwrap(), SystemTime::UNIX_EPOCH);
    assert_eq!(&*at("2026-11-22T10:03:00+09:00").unwrap().name, "steady");
    assert_eq!(&*at("2026-11-22T10:06:30+09:00").unwrap().name, "outage");
    assert_eq!(&*at("2026-11-22T10:09:59+09:00").unwrap().name, "recovery");
    assert_eq!(&*at("2026-11-22T10:10:00+09:00").unwrap().name, "steady");
}

#[test]
fn a_misspelled_field_is_located() {
    let e = err("{\n  \"name\": \"x\",\n  \"defaults\": { \"latncy\": \"5ms\" }\n}");
    assert_eq!((e.line, e.origin.as_str()), (3, "p.json"));
    assert!(e.message.contains("unknown field `latncy`"), "{e}");
    assert!(e.message.contains("expected one of"), "{e}");
    assert!(e.to_string().starts_with("p.json:3:"), "{e}");
}

#[test]
fn a_bad_latency_expression_is_located_and_explained() {
    let text = "{\"name\": \"x\",\n \"routes\": {\n  \"confirm\": {\"latency\": \"lognormal(p50=80, p99=900ms)\"}}}";
    let e = err(text);
    assert_eq!(e.line, 3, "{e}");
    assert!(e.col > 15, "{e}");
    assert!(e.message.starts_with("latency: expected a duration"), "{e}");
    assert!(e.message.contains("p50=80"), "{e}");
}

#[test]
fn bad_values_in_every_section_are_located() {
    for (text, line, expected) in [
        (
            "{\"name\": \"x\",\n\"defaults\": {\"outcome\": \"maybe\"}}",
            2,
            "outcome:",
        ),
        (
            "{\"name\": \"x\",\n\"defaults\": {\"status\": 99}}",
            2,
            "status:",
        ),
        ("{\"name\": \"X Y\"}", 1, "profile name"),
        (
            "{\"name\": \"x\",\n\"capacity\": {\"concurrency\": 0}}",
            2,
            "at least 1",
        ),
        (
            "{\"name\": \"x\",\n\"rate_limit\": {\"rps\": -1}}",
            2,
            "rps:",
        ),
        (
            "{\"name\": \"x\",\n\"rules\": [\n{\"when\": {\"json\": \"/a\", \"regex\": \"(\"}, \"then\": {\"outcome\": \"error\"}}]}",
            3,
            "regex:",
        ),
        (
            "{\"name\": \"x\",\n\"schedule\": {\"phases\": [\n{\"for\": \"1m\", \"name\": \"a\", \"fault\": \"explode\"}]}}",
            3,
            "fault:",
        ),
        (
            "{\"name\": \"x\",\n\"routes\": {\"refund\": {}}}",
            2,
            "unknown field `refund`",
        ),
        (
            "{\"name\": \"x\", \"descripton\": \"\"}",
            1,
            "unknown field `descripton`",
        ),
    ] {
        let e = err(text);
        assert_eq!(e.line, line, "{text}: {e}");
        assert!(e.message.contains(expected), "{text}: {e}");
    }
}

#[test]
fn an_unknown_extends_points_at_the_name() {
    let e = err("{\n  \"name\": \"mine\",\n  \"extends\": \"defualt\"\n}");
    assert_eq!((e.line, e.col), (3, 14), "{e}");
    assert!(e.message.contains("no profile named 'defualt'"), "{e}");
    assert!(e.message.contains("default"), "{e}");
}

#[test]
fn extends_inherits_field_wise_and_replaces_whole_sections() {
    let plan = Plan::parse(
        r#"{"name": "mine", "extends": "peak-sale",
            "defaults": {"latency": "10ms"},
            "routes": {"confirm": {"outcome": "declined"}},
            "rules": []}"#,
        "mine.json",
    )
    .unwrap();
    // defaults: latency replaced, outcome inherited.
    assert_eq!(plan.defaults.latency.as_ref().unwrap().to_string(), "10ms");
    assert!(
        plan.defaults
            .outcome
            .as_ref()
            .unwrap()
            .to_string()
            .contains("98%")
    );
    // routes.confirm: outcome added, latency inherited.
    let confirm = plan.route(Route::Confirm);
    assert_eq!(confirm.outcome.as_ref().unwrap().to_string(), "declined");
    assert!(
        confirm
            .latency
            .as_ref()
            .unwrap()
            .to_string()
            .starts_with("percentiles")
    );
    // Sections: rules replaced by the empty list; schedule and capacity inherited whole.
    assert!(plan.rules().is_empty());
    assert_eq!(plan.schedule.as_ref().unwrap().phases().len(), 3);
    assert_eq!(plan.capacity.as_ref().unwrap().concurrency, 200);
    assert_eq!(plan.extends.as_deref(), Some("peak-sale"));
    assert_eq!(
        &*plan.description,
        &*Profiles::shipped().get("peak-sale").unwrap().description
    );
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gazua-profile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn load_dir_select_by_name_or_path_and_override_schedule_start() {
    let dir = temp_dir("load");
    std::fs::write(
        dir.join("a.json"),
        r#"{"name": "team-a", "extends": "team-b", "defaults": {"outcome": "error"}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("b.json"),
        r#"{"name": "team-b", "extends": "saturation", "schedule": {"phases": [{"for": "1m", "name": "only"}]}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not a profile").unwrap();
    let start = parse_instant("2026-11-22T10:00:00+09:00").unwrap();
    let profiles = Profiles::load(&LoadOptions {
        profile: Some("team-a".into()),
        dirs: vec![dir.clone()],
        schedule_start: Some(start),
    })
    .unwrap();
    let a = profiles.active();
    assert_eq!(&*a.name, "team-a");
    assert_eq!(
        a.capacity.as_ref().unwrap().concurrency,
        50,
        "from saturation via team-b"
    );
    assert_eq!(a.schedule.as_ref().unwrap().start, Start::At(start));
    assert!(
        a.phase_at(start - Duration::from_secs(1), SystemTime::UNIX_EPOCH)
            .is_none()
    );
    assert_eq!(
        &*a.phase_at(start, SystemTime::UNIX_EPOCH).unwrap().name,
        "only"
    );
    assert!(profiles.get("default").is_some());

    let by_path = Profiles::load(&LoadOptions {
        profile: Some(dir.join("b.json").display().to_string()),
        ..LoadOptions::default()
    })
    .unwrap();
    assert_eq!(&*by_path.active().name, "team-b");
    assert_eq!(
        &*by_path.with_active("happy").unwrap().active().name,
        "happy"
    );

    let unknown = Profiles::load(&LoadOptions {
        profile: Some("nope".into()),
        ..LoadOptions::default()
    })
    .unwrap_err();
    assert!(
        unknown[0].to_string().contains("no profile named 'nope'"),
        "{:?}",
        unknown
    );
}

#[test]
fn a_profiles_dir_file_may_replace_a_shipped_profile_but_names_are_unique() {
    let dir = temp_dir("dup");
    std::fs::write(
        dir.join("a.json"),
        r#"{"name": "default", "defaults": {"latency": "1ms"}}"#,
    )
    .unwrap();
    let profiles = Profiles::load(&LoadOptions {
        dirs: vec![dir.clone()],
        ..LoadOptions::default()
    })
    .unwrap();
    let latency = profiles
        .active()
        .defaults
        .latency
        .as_ref()
        .unwrap()
        .to_string();
    assert_eq!(latency, "1ms");
    std::fs::write(dir.join("b.json"), "{\n\"name\": \"default\"}").unwrap();
    let errors = Profiles::load(&LoadOptions {
        dirs: vec![dir.clone()],
        ..LoadOptions::default()
    })
    .unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].origin.ends_with("b.json"));
    assert_eq!((errors[0].line, errors[0].col), (2, 9));
    assert!(
        errors[0].message.contains("already loaded"),
        "{}",
        errors[0]
    );
}

#[test]
fn check_reports_every_file_and_resolves_extends_among_them() {
    let dir = temp_dir("check");
    let good = dir.join("good.json");
    let child = dir.join("child.json");
    let bad = dir.join("bad.json");
    let cycle_a = dir.join("ca.json");
    let cycle_b = dir.join("cb.json");
    std::fs::write(&good, r#"{"name": "base", "defaults": {"latency": "5ms"}}"#).unwrap();
    std::fs::write(&child, r#"{"name": "child", "extends": "base"}"#).unwrap();
    std::fs::write(
        &bad,
        "{\"name\": \"bad\",\n \"defaults\": {\"latency\": \"5\"}}",
    )
    .unwrap();
    std::fs::write(&cycle_a, r#"{"name": "ca", "extends": "cb"}"#).unwrap();
    std::fs::write(&cycle_b, r#"{"name": "cb", "extends": "ca"}"#).unwrap();
    assert!(check(&[good.clone(), child.clone()], &[]).is_empty());
    // A file named both through its folder and on its own is one profile, not a duplicate.
    let alone = temp_dir("check-alone");
    std::fs::copy(&good, alone.join("good.json")).unwrap();
    assert!(check(&[alone.join("good.json")], std::slice::from_ref(&alone)).is_empty());
    let errors = check(
        &[
            child,
            bad.clone(),
            cycle_a,
            cycle_b,
            dir.join("missing.json"),
        ],
        &[],
    );
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 5, "{shown:#?}");
    assert!(
        shown
            .iter()
            .any(|e| e.contains("child.json:1:") && e.contains("no profile named 'base'"))
    );
    assert!(
        shown
            .iter()
            .any(|e| e.starts_with(&format!("{}:2:", bad.display())))
    );
    assert!(shown.iter().any(|e| e.contains("expected no cycle")));
    assert!(
        shown
            .iter()
            .any(|e| e.contains("missing.json: cannot read"))
    );
}

#[test]
fn describe_prints_the_effective_profile_in_the_directive_grammar() {
    let profiles = Profiles::shipped();
    let d = profiles.get("peak-sale").unwrap().describe();
    assert_eq!(d["name"], "peak-sale");
    assert_eq!(d["extends"], "default");
    assert_eq!(d["capacity"]["concurrency"], 200);
    assert_eq!(d["schedule"]["phases"][1]["name"], "card-network-wobble");
    assert_eq!(d["schedule"]["phases"][0]["for"], "300s");
    assert_eq!(d["routes"]["inquiry"]["latency"], "uniform(10ms, 40ms)");
    // The printed text parses back to the same value (the grammar's round trip).
    let outcome = d["defaults"]["outcome"].as_str().unwrap();
    assert_eq!(
        crate::directive::Outcome::parse_mix(outcome).unwrap(),
        *profiles
            .get("peak-sale")
            .unwrap()
            .defaults
            .outcome
            .as_ref()
            .unwrap()
    );
}

#[test]
fn custom_routes_match_through_the_plan() {
    let plan = Plan::parse(
        r#"{"name": "points", "custom_routes": [
            {"method": "GET", "path": "/v1/points/{userId}", "body": {"userId": "{{path.userId}}", "balance": 5000}},
            {"method": "POST", "path": "/v1/points/{userId}/use", "outcome": "5% error",
             "body": {"used": "{{body./amount}}"}}]}"#,
        "points.json",
    )
    .unwrap();
    let (route, params) = plan
        .match_custom(&Method::POST, "/v1/points/u1/use")
        .unwrap();
    assert_eq!(&*route.path, "/v1/points/{userId}/use");
    assert_eq!(params, vec![("userId", "u1")]);
    assert!(route.directives.outcome.is_some());
    let (route, params) = plan.match_custom(&Method::GET, "/v1/points/u1").unwrap();
    let body = route.render(&params, b"", &HeaderMap::new(), SystemTime::now());
    assert_eq!(&body[..], br#"{"balance":5000,"userId":"u1"}"#);
    assert!(plan.match_custom(&Method::GET, "/v1/payments/x").is_none());
}
