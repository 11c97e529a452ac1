//! What the pods of a slot really run (`Driver::running`), for both modes
//! of the `kubernetes` driver: the serving container of every Ready pod is
//! mapped back to a version the way `template_patch` maps a version to the
//! pod template — the image tag of `IMAGE:VERSION` and/or the value of the
//! `version_env` variable. The `switchyard.io/version` annotation is not
//! read: it is what Switchyard wrote, not what runs.
//!
//! All Ready pods on one version: `Running::Version`; none Ready (scaled to
//! 0, all still starting): `Running::Nothing`; pods on different versions
//! (a rollout half-way) or an image naming no version: `Running::Unclear`,
//! with words such as "2 of 3 ready pods run registry.example/chat:v7, 1
//! runs registry.example/chat:v6".

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use switchyard_domain::FullId;

use crate::drivers::Running;

/// How a version shows in the serving container (from the cluster's config).
#[derive(Debug, Clone, Copy)]
pub struct VersionMap<'a> {
    /// The model the cluster serves.
    pub model: &'a str,
    /// The container that serves it.
    pub container: &'a str,
    /// The image repository: version `v` runs as `IMAGE:v`.
    pub image: Option<&'a str>,
    /// The environment variable set to the version.
    pub version_env: Option<&'a str>,
}

/// What one container runs: in words, and the version that is, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runs {
    pub what: String,
    pub version: Option<FullId>,
}

/// `repo:tag` (a `@digest` suffix dropped; a `host:port/` prefix is not a tag).
fn split_image(image: &str) -> (&str, Option<&str>) {
    let name_tag = image.split_once('@').map_or(image, |(n, _)| n);
    let last = name_tag.rfind('/').map_or(0, |i| i + 1);
    match name_tag[last..].rfind(':') {
        Some(i) => (&name_tag[..last + i], Some(&name_tag[last + i + 1..])),
        None => (name_tag, None),
    }
}

impl VersionMap<'_> {
    fn version(&self, v: &str) -> Result<FullId, String> {
        FullId::parse(&format!("{}:{v}", self.model))
            .map_err(|_| format!("{v:?} is not a version of {}", self.model))
    }

    /// The version the image names, or why it names none.
    fn from_image(&self, repo: &str, image: Option<&str>) -> Result<FullId, String> {
        let Some(image) = image else {
            return Err("no image".to_owned());
        };
        match split_image(image) {
            (r, Some(tag)) if r == repo => self.version(tag),
            (r, _) if r == repo => Err(format!("no tag naming a version of {}", self.model)),
            _ => Err(format!("not an image of {repo}")),
        }
    }

    /// What `c`, the serving container, runs.
    pub fn of_container(&self, c: &Container) -> Runs {
        let image = self.image.map(|repo| {
            let shown = c.image.clone().unwrap_or_else(|| "no image".to_owned());
            (shown, self.from_image(repo, c.image.as_deref()))
        });
        let env = self.version_env.map(|name| {
            let var = c.env.iter().flatten().find(|v| v.name == name);
            match var {
                Some(v) => match (&v.value, &v.value_from) {
                    (Some(value), _) => (format!("{name}={value}"), self.version(value)),
                    (None, Some(_)) => (
                        format!("{name} from a reference"),
                        Err("a value Switchyard cannot read".to_owned()),
                    ),
                    (None, None) => (format!("{name}="), Err("an empty value".to_owned())),
                },
                None => (format!("no {name}"), Err(format!("{name} unset"))),
            }
        });
        let named = |(shown, found): (String, Result<FullId, String>)| match found {
            Ok(v) => (shown, Some(v)),
            Err(why) => (format!("{shown} ({why})"), None),
        };
        match (image.map(named), env.map(named)) {
            (Some((what, v)), None) | (None, Some((what, v))) => Runs { what, version: v },
            (Some((i, a)), Some((e, b))) => {
                let version = match (a, b) {
                    (Some(a), Some(b)) if a == b => Some(a),
                    _ => None,
                };
                Runs {
                    what: format!("{i} with {e}"),
                    version,
                }
            }
            // The config names at least one (checked when it is parsed).
            (None, None) => Runs {
                what: "a container the config says nothing about".to_owned(),
                version: None,
            },
        }
    }

    /// What a pod runs: its serving container's version.
    pub fn of_pod(&self, pod: &Pod) -> Runs {
        let container = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.iter().find(|c| c.name == self.container));
        match container {
            Some(c) => self.of_container(c),
            None => Runs {
                what: format!("no container {}", self.container),
                version: None,
            },
        }
    }
}

/// Whether the pod is Ready (its `Ready` condition is `True`) and not being deleted.
pub fn ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// What a set of pods runs, judged from its Ready pods only.
pub fn running_of(map: &VersionMap<'_>, pods: &[Pod]) -> Running {
    let mut groups: BTreeMap<String, (usize, Option<FullId>)> = BTreeMap::new();
    let mut total = 0;
    for pod in pods.iter().filter(|p| ready(p)) {
        total += 1;
        let runs = map.of_pod(pod);
        groups.entry(runs.what).or_insert((0, runs.version)).0 += 1;
    }
    if total == 0 {
        return Running::Nothing;
    }
    let mut versions = groups.values().map(|(_, v)| v.as_ref());
    if let Some(Some(first)) = versions.next() {
        if versions.all(|v| v == Some(first)) {
            return Running::Version {
                version: first.clone(),
            };
        }
    }
    let mut sorted: Vec<(String, usize)> = groups.into_iter().map(|(w, (n, _))| (w, n)).collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let verb = |n: usize| if n == 1 { "runs" } else { "run" };
    let parts: Vec<String> = sorted
        .iter()
        .enumerate()
        .map(|(i, (what, n))| match (i, sorted.len()) {
            (0, 1) if total == 1 => format!("the one ready pod runs {what}"),
            (0, 1) => format!("all {total} ready pods run {what}"),
            (0, _) => format!("{n} of {total} ready pods {} {what}", verb(*n)),
            _ => format!("{n} {} {what}", verb(*n)),
        })
        .collect();
    Running::Unclear {
        detail: parts.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const IMAGE: VersionMap<'static> = VersionMap {
        model: "chat",
        container: "model",
        image: Some("registry.example/chat"),
        version_env: None,
    };

    fn pod(image: &str, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": "p" },
            "spec": { "containers": [
                { "name": "sidecar", "image": "registry.example/proxy:1" },
                { "name": "model", "image": image,
                  "env": [{ "name": "MODEL_VERSION", "value": "v7" }] }
            ] },
            "status": { "conditions": [
                { "type": "Ready", "status": if ready { "True" } else { "False" } }
            ] }
        }))
        .expect("pod")
    }

    fn version(s: &str) -> Running {
        Running::Version {
            version: FullId::parse(s).expect("id"),
        }
    }

    #[test]
    fn ready_pods_on_one_version_run_that_version() {
        let pods = [
            pod("registry.example/chat:v7", true),
            pod("registry.example/chat:v7@sha256:0123abcd", true),
            // Not ready: not serving, so it does not count.
            pod("registry.example/chat:v6", false),
        ];
        assert_eq!(running_of(&IMAGE, &pods), version("chat:v7"));
    }

    #[test]
    fn no_ready_pod_runs_nothing() {
        assert_eq!(running_of(&IMAGE, &[]), Running::Nothing);
        let starting = [pod("registry.example/chat:v7", false)];
        assert_eq!(running_of(&IMAGE, &starting), Running::Nothing);
        let mut leaving = pod("registry.example/chat:v7", true);
        leaving.metadata.deletion_timestamp =
            Some(serde_json::from_value(json!("2026-01-01T00:00:00Z")).expect("time"));
        assert_eq!(running_of(&IMAGE, &[leaving]), Running::Nothing);
    }

    #[test]
    fn pods_on_two_versions_are_unclear_with_counts_in_words() {
        let pods = [
            pod("registry.example/chat:v7", true),
            pod("registry.example/chat:v6", true),
            pod("registry.example/chat:v7", true),
        ];
        assert_eq!(
            running_of(&IMAGE, &pods),
            Running::Unclear {
                detail: "2 of 3 ready pods run registry.example/chat:v7, \
                         1 runs registry.example/chat:v6"
                    .into()
            }
        );
    }

    #[test]
    fn an_image_naming_no_version_is_unclear_and_says_why() {
        let cases = [
            ("registry.example/chat:latest", "is not a version of chat"),
            ("registry.example/chat", "no tag naming a version of chat"),
            (
                "registry.example/other:v7",
                "not an image of registry.example/chat",
            ),
            // A registry port is not a tag.
            (
                "registry.example:5000/chat",
                "not an image of registry.example/chat",
            ),
        ];
        for (image, why) in cases {
            let Running::Unclear { detail } = running_of(&IMAGE, &[pod(image, true)]) else {
                panic!("{image} names no version");
            };
            assert!(detail.starts_with("the one ready pod runs "), "{detail}");
            assert!(
                detail.contains(image) && detail.contains(why),
                "{image}: {detail}"
            );
        }
        let two = [
            pod("registry.example/chat:latest", true),
            pod("registry.example/chat:latest", true),
        ];
        let Running::Unclear { detail } = running_of(&IMAGE, &two) else {
            panic!("latest is never a version");
        };
        assert!(
            detail.starts_with("all 2 ready pods run registry.example/chat:latest"),
            "{detail}"
        );
    }

    #[test]
    fn the_version_variable_is_read_and_must_agree_with_the_image() {
        let env = VersionMap {
            image: None,
            version_env: Some("MODEL_VERSION"),
            ..IMAGE
        };
        // The image does not matter when the config names only the variable.
        assert_eq!(
            running_of(&env, &[pod("registry.example/server:3", true)]),
            version("chat:v7")
        );
        let both = VersionMap {
            version_env: Some("MODEL_VERSION"),
            ..IMAGE
        };
        assert_eq!(
            running_of(&both, &[pod("registry.example/chat:v7", true)]),
            version("chat:v7")
        );
        // `kubectl set image` alone: the image says v8, the variable still v7.
        let Running::Unclear { detail } =
            running_of(&both, &[pod("registry.example/chat:v8", true)])
        else {
            panic!("image and variable disagree");
        };
        assert_eq!(
            detail,
            "the one ready pod runs registry.example/chat:v8 with MODEL_VERSION=v7"
        );
        let other = VersionMap {
            container: "server",
            ..IMAGE
        };
        assert_eq!(
            running_of(&other, &[pod("registry.example/chat:v7", true)]),
            Running::Unclear {
                detail: "the one ready pod runs no container server".into()
            }
        );
    }

    #[test]
    fn an_image_splits_into_repository_and_tag() {
        assert_eq!(
            split_image("r.example/chat:v1"),
            ("r.example/chat", Some("v1"))
        );
        assert_eq!(
            split_image("r.example:5000/chat"),
            ("r.example:5000/chat", None)
        );
        assert_eq!(
            split_image("r.example:5000/chat:v1@sha256:ab"),
            ("r.example:5000/chat", Some("v1"))
        );
        assert_eq!(split_image("chat@sha256:ab"), ("chat", None));
    }
}
