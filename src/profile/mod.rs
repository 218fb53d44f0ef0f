//! Profiles (docs/profiles.md): JSON files → a compiled [`Plan`] per profile, held in a
//! [`Profiles`] registry. Every directive string is parsed once, at load; the request path only
//! reads typed values (rules, the schedule's phase, per-route defaults, the capacity and rate
//! models).
//!
//! Reload builds a whole new `Profiles` (`Profiles::load` again); the server swaps it in
//! atomically, and a file that does not load leaves the old registry serving.

mod capacity;
mod custom;
mod error;
mod fields;
mod file;
mod rules;
mod schedule;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use http::Method;
use serde_json::{Value, json};

pub use capacity::{Admission, CapacityModel, RateLimiter};
pub use custom::{CustomRoute, Params};
pub use error::ProfileError;
pub use file::{TlsKnob, WebhooksKnob, fraction, webhook_url};
pub use rules::{Rule, RuleInput};
pub use schedule::{Phase, Schedule, Start, parse_instant};

use crate::directive::Directives;
use crate::route::Route;
use error::locate_member;
use file::ProfileFile;

/// The profiles compiled into the binary: `(name, file text)`. `default` is what `gazua`
/// serves with no flags.
pub const SHIPPED: [(&str, &str); 7] = [
    ("default", include_str!("../../profiles/default.json")),
    ("happy", include_str!("../../profiles/happy.json")),
    ("realistic", include_str!("../../profiles/realistic.json")),
    ("degraded", include_str!("../../profiles/degraded.json")),
    ("peak-sale", include_str!("../../profiles/peak-sale.json")),
    (
        "outage-drill",
        include_str!("../../profiles/outage-drill.json"),
    ),
    ("saturation", include_str!("../../profiles/saturation.json")),
];

/// The profile served when none is chosen.
pub const DEFAULT: &str = "default";

/// One compiled profile: everything the engine reads per request, already typed.
#[derive(Debug)]
pub struct Plan {
    pub name: Arc<str>,
    pub description: Arc<str>,
    /// Where it came from: a file path, or `profiles/NAME.json (built in)`.
    pub origin: Arc<str>,
    /// The profile it extends, if any (already merged in).
    pub extends: Option<Arc<str>>,
    /// `defaults`: the profile-wide directives (source 5 of a decision, after the route's).
    pub defaults: Directives,
    /// `routes.*`, indexed by `Route::index()` (empty for routes the file leaves out).
    routes: [Directives; Route::ALL.len()],
    rules: Vec<Rule>,
    pub capacity: Option<CapacityModel>,
    pub rate_limit: Option<RateLimiter>,
    pub schedule: Option<Schedule>,
    custom_routes: Vec<CustomRoute>,
    /// `tls`: the HTTPS listener's handshake delay and refused fraction.
    pub tls: Option<TlsKnob>,
    /// `webhooks`: where events go and how, when this profile is served.
    pub webhooks: Option<WebhooksKnob>,
}

impl Plan {
    /// Parses and compiles one profile file on its own; `extends` may name a shipped profile.
    pub fn parse(text: &str, origin: &str) -> Result<Plan, ProfileError> {
        let mut b = Builder::shipped();
        let name = b.add(text, origin, Kind::File(None))?;
        b.compile(&name, None)
    }

    /// The directives of `routes.<route>`.
    pub fn route(&self, route: Route) -> &Directives {
        &self.routes[route.index()]
    }

    /// The directives of the first rule whose conditions hold for the request (source 3). The
    /// body is parsed at most once, and only if a rule tests a JSON pointer.
    pub fn rule_for(&self, input: &RuleInput<'_>) -> Option<&Directives> {
        if self.rules.is_empty() {
            return None;
        }
        rules::first_match(&self.rules, input)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The schedule phase in force at `now` (source 4); `boot` anchors a `"start": "boot"`
    /// schedule. `None` without a schedule, before its start or after a non-repeating end.
    pub fn phase_at(&self, now: SystemTime, boot: SystemTime) -> Option<&Phase> {
        self.schedule.as_ref()?.phase_at(now, boot)
    }

    /// The custom route answering `method path`, with the path's parameters.
    pub fn match_custom<'p>(
        &'p self,
        method: &Method,
        path: &'p str,
    ) -> Option<(&'p CustomRoute, Params<'p>)> {
        self.custom_routes
            .iter()
            .find_map(|r| r.matches(method, path).map(|p| (r, p)))
    }

    pub fn custom_routes(&self) -> &[CustomRoute] {
        &self.custom_routes
    }

    /// The effective profile as JSON (every directive printed back in the directive grammar),
    /// for `GET /__gazua/profile` and `gazua profiles`.
    pub fn describe(&self) -> Value {
        fn fields(d: &Directives) -> Value {
            let mut m = serde_json::Map::new();
            if let Some(o) = &d.outcome {
                m.insert("outcome".into(), o.to_string().into());
            }
            if let Some(l) = &d.latency {
                m.insert("latency".into(), l.to_string().into());
            }
            if let Some(f) = &d.fault {
                m.insert("fault".into(), f.to_string().into());
            }
            if let Some(s) = d.status {
                m.insert("status".into(), s.as_u16().into());
            }
            if let Some(dep) = &d.deposit {
                m.insert("deposit".into(), dep.to_string().into());
            }
            if let Some(w) = &d.webhook {
                m.insert("webhook".into(), w.to_string().into());
            }
            Value::Object(m)
        }
        let routes: serde_json::Map<String, Value> = Route::ALL
            .iter()
            .filter(|r| !self.route(**r).is_empty())
            .map(|r| (r.name().to_owned(), fields(self.route(*r))))
            .collect();
        json!({
            "name": &*self.name,
            "description": &*self.description,
            "origin": &*self.origin,
            "extends": self.extends.as_deref(),
            "defaults": fields(&self.defaults),
            "routes": routes,
            "rules": self.rules.len(),
            "capacity": self.capacity.as_ref().map(|c| json!({
                "concurrency": c.concurrency, "queue": c.queue, "overflow": c.overflow.to_string(),
            })),
            "rate_limit": self.rate_limit.as_ref().map(|r| json!({
                "rps": r.rps, "burst": r.burst, "outcome": r.outcome.to_string(),
            })),
            "schedule": self.schedule.as_ref().map(|s| json!({
                "start": match s.start {
                    Start::Boot => "boot".to_owned(),
                    Start::At(t) => custom::kst_seconds(t),
                },
                "repeat": s.repeat,
                "phases": s.phases().iter().map(|p| {
                    let mut f = fields(&p.directives);
                    f["name"] = (*p.name).into();
                    f["for"] = crate::directive::duration::Canonical(p.duration).to_string().into();
                    f
                }).collect::<Vec<_>>(),
            })),
            "tls": self.tls.as_ref().map(|t| json!({
                "handshake_latency": t.handshake_latency.as_ref().map(ToString::to_string),
                "handshake_refuse": t.handshake_refuse,
            })),
            "webhooks": self.webhooks.as_ref().map(|w| json!({
                "urls": w.urls.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "delay": w.delay.as_ref().map(ToString::to_string),
                "duplicate": w.duplicate, "drop": w.drop, "reorder": w.reorder,
            })),
            "custom_routes": self.custom_routes.iter()
                .map(|r| format!("{} {}", r.method, r.path)).collect::<Vec<_>>(),
        })
    }
}

/// What `Profiles::load` reads: the serve flags `--profile`, `--profiles-dir` and
/// `--schedule-start`.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--profile NAME|PATH`: a loaded profile's name, or a file (a value containing `/` or
    /// ending in `.json`). `None` serves `default`.
    pub profile: Option<String>,
    /// `--profiles-dir`: every `*.json` inside is loaded; a file may replace a shipped profile
    /// by using its name.
    pub dirs: Vec<PathBuf>,
    /// `--schedule-start`: replaces every schedule's `start`.
    pub schedule_start: Option<SystemTime>,
}

/// Every loaded profile, compiled, and the one served when a request names none.
#[derive(Debug, Clone)]
pub struct Profiles {
    plans: BTreeMap<Arc<str>, Arc<Plan>>,
    active: Arc<Plan>,
}

impl Profiles {
    /// The shipped profiles, serving `default`.
    pub fn shipped() -> Profiles {
        Profiles::load(&LoadOptions::default()).expect("the shipped profiles load")
    }

    /// Loads the shipped profiles, then every file of `dirs`, then a `--profile PATH`, and
    /// compiles them all. Any error refuses the whole set (a reload keeps the old one).
    pub fn load(options: &LoadOptions) -> Result<Profiles, Vec<ProfileError>> {
        let mut b = Builder::shipped();
        let mut errors = Vec::new();
        for dir in &options.dirs {
            errors.extend(b.add_dir(dir));
        }
        let active = match options.profile.as_deref() {
            Some(p) if is_path(p) => match b.add_path(Path::new(p)) {
                Ok(name) => Some(name),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
            Some(name) => Some(name.to_owned()),
            None => Some(DEFAULT.to_owned()),
        };
        let mut plans = BTreeMap::new();
        let names: Vec<String> = b.sources.keys().cloned().collect();
        for name in names {
            match b.compile(&name, options.schedule_start) {
                Ok(plan) => {
                    plans.insert(plan.name.clone(), Arc::new(plan));
                }
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let active = active.expect("errors returned above");
        let Some(plan) = plans.get(active.as_str()).cloned() else {
            let known: Vec<&str> = plans.keys().map(|k| &**k).collect();
            let hint = known
                .iter()
                .map(|k| (crate::directive::headers::edit_distance(&active, k), *k))
                .min()
                .filter(|(distance, _)| *distance <= 3)
                .map_or(String::new(), |(_, k)| format!(" (did you mean {k}?)"));
            return Err(vec![ProfileError::whole(
                "--profile",
                format!(
                    "no profile named '{active}'{hint}; expected one of {} or a path to a .json file",
                    known.join(", ")
                ),
            )]);
        };
        Ok(Profiles {
            plans,
            active: plan,
        })
    }

    /// Some loaded profile has a `webhooks` section naming a URL (so serving it later sends).
    pub fn any_webhook_urls(&self) -> bool {
        self.plans
            .values()
            .any(|p| p.webhooks.as_ref().is_some_and(|w| !w.urls.is_empty()))
    }

    /// The profile a request gets when it names none.
    pub fn active(&self) -> &Arc<Plan> {
        &self.active
    }

    /// A profile by name (`X-Gazua-Profile`).
    pub fn get(&self, name: &str) -> Option<&Arc<Plan>> {
        self.plans.get(name)
    }

    /// Every loaded profile's name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.plans.keys().map(|k| &**k)
    }

    pub fn plans(&self) -> impl Iterator<Item = &Arc<Plan>> {
        self.plans.values()
    }

    /// The same registry serving another of its profiles (`PUT /__gazua/profile`).
    pub fn with_active(&self, name: &str) -> Option<Profiles> {
        Some(Profiles {
            plans: self.plans.clone(),
            active: self.plans.get(name)?.clone(),
        })
    }
}

/// `gazua check FILE…`: every error of the given files, each located. `extends` resolves
/// against the shipped profiles, the files of `dirs` (`--profiles-dir`) and the files given.
pub fn check(files: &[PathBuf], dirs: &[PathBuf]) -> Vec<ProfileError> {
    let mut b = Builder::shipped();
    let mut errors = Vec::new();
    for dir in dirs {
        errors.extend(b.add_dir(dir));
    }
    let mut checked = Vec::new();
    for path in files {
        match b.add_path(path) {
            Ok(name) => checked.push(name),
            Err(e) => errors.push(e),
        }
    }
    for name in checked {
        if let Err(e) = b.compile(&name, None) {
            errors.push(e);
        }
    }
    errors
}

fn is_path(profile: &str) -> bool {
    profile.contains('/') || profile.contains('\\') || profile.ends_with(".json")
}

/// Where a source came from: a shipped profile may be replaced by a file of the same name; two
/// files of the same name are an error.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Shipped,
    /// A file, by its canonical path when it has one: the same file named twice (in
    /// `--profiles-dir` and as `--profile PATH`) is one profile, not a duplicate.
    File(Option<PathBuf>),
}

#[derive(Debug)]
struct Source {
    file: ProfileFile,
    origin: Arc<str>,
    text: Arc<str>,
    kind: Kind,
}

/// Parsed files by name, before `extends` is resolved.
struct Builder {
    sources: BTreeMap<String, Source>,
}

impl Builder {
    fn shipped() -> Builder {
        let mut b = Builder {
            sources: BTreeMap::new(),
        };
        for (name, text) in SHIPPED {
            let origin = format!("profiles/{name}.json (built in)");
            // A broken shipped profile fails its test; at run time it is simply not offered.
            let _ = b.add(text, &origin, Kind::Shipped);
        }
        b
    }

    /// Parses one file; returns its profile's name.
    fn add(&mut self, text: &str, origin: &str, kind: Kind) -> Result<String, ProfileError> {
        let file: ProfileFile =
            serde_json::from_str(text).map_err(|e| ProfileError::from_json(origin, &e))?;
        if let Some(existing) = self.sources.get(&file.name)
            && matches!(existing.kind, Kind::File(_))
            && (existing.kind != kind || kind == Kind::File(None))
        {
            return Err(ProfileError::new(
                origin,
                locate_member(text, "name"),
                format!(
                    "a profile named '{}' is already loaded from {}; expected a unique name",
                    file.name, existing.origin
                ),
            ));
        }
        let name = file.name.clone();
        self.sources.insert(
            name.clone(),
            Source {
                file,
                origin: origin.into(),
                text: text.into(),
                kind,
            },
        );
        Ok(name)
    }

    fn add_path(&mut self, path: &Path) -> Result<String, ProfileError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ProfileError::whole(&origin, format!("cannot read the profile: {e}")))?;
        self.add(&text, &origin, Kind::File(std::fs::canonicalize(path).ok()))
    }

    /// Adds every `*.json` of `dir`, in name order; returns the errors.
    fn add_dir(&mut self, dir: &Path) -> Vec<ProfileError> {
        let origin = dir.display().to_string();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                return vec![ProfileError::whole(
                    &origin,
                    format!("cannot list the profiles directory: {e}"),
                )];
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
            .collect();
        paths.sort();
        paths
            .iter()
            .filter_map(|p| self.add_path(p).err())
            .collect()
    }

    /// Resolves `name`'s `extends` chain and compiles the result.
    fn compile(
        &self,
        name: &str,
        schedule_start: Option<SystemTime>,
    ) -> Result<Plan, ProfileError> {
        let source = &self.sources[name];
        let file = self.resolve(name, &mut HashSet::new())?;
        let capacity = file
            .capacity
            .map(|c| CapacityModel::new(c.concurrency, c.queue, c.overflow));
        let rate_limit = file
            .rate_limit
            .map(|r| RateLimiter::new(r.rps, r.burst, r.outcome, tokio::time::Instant::now()));
        let mut schedule = file.schedule;
        if let (Some(s), Some(start)) = (schedule.as_mut(), schedule_start) {
            s.start = Start::At(start);
        }
        let mut routes: [Directives; Route::ALL.len()] = Default::default();
        if let Some(r) = file.routes {
            for (i, entry) in r.entries().into_iter().enumerate() {
                if let Some(fields) = entry {
                    routes[Route::ALL[i].index()] = fields.clone().into_directives();
                }
            }
        }
        Ok(Plan {
            name: file.name.as_str().into(),
            description: file.description.unwrap_or_default().into(),
            origin: source.origin.clone(),
            extends: file.extends.map(|e| e.as_str().into()),
            defaults: file.defaults.unwrap_or_default().into_directives(),
            routes,
            rules: file.rules.unwrap_or_default(),
            capacity,
            rate_limit,
            schedule,
            custom_routes: file.custom_routes.unwrap_or_default(),
            tls: file.tls,
            webhooks: file.webhooks,
        })
    }

    /// `name`'s file with everything it inherits merged in. `seen` catches a cycle.
    fn resolve(&self, name: &str, seen: &mut HashSet<String>) -> Result<ProfileFile, ProfileError> {
        let source = &self.sources[name];
        let Some(parent) = &source.file.extends else {
            return Ok(source.file.clone());
        };
        let at = locate_member(&source.text, "extends");
        if !self.sources.contains_key(parent) {
            let known: Vec<&str> = self
                .sources
                .keys()
                .map(String::as_str)
                .filter(|k| *k != name)
                .collect();
            return Err(ProfileError::new(
                &source.origin,
                at,
                format!(
                    "extends: no profile named '{parent}'; expected one of {}",
                    known.join(", ")
                ),
            ));
        }
        seen.insert(name.to_owned());
        if seen.contains(parent.as_str()) {
            return Err(ProfileError::new(
                &source.origin,
                at,
                format!("extends: '{parent}' leads back to '{name}'; expected no cycle"),
            ));
        }
        let resolved_parent = self.resolve(parent, seen)?;
        Ok(source.file.clone().inherit(&resolved_parent))
    }
}

#[cfg(test)]
mod tests;
