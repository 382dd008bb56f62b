//! The Kubernetes manifests in deploy/k8s, checked without a cluster.
//!
//! Every overlay is rendered with `kubectl kustomize` (deploy/dev/lib.sh installs Debian's
//! kubernetes-client when no kubectl is there; without one the base's files are read directly
//! and the skip of the rendering is printed). Then every document is parsed and checked:
//! probes, resources and a non-root securityContext on every workload; a PodDisruptionBudget
//! and matching selectors for each; StatefulSets name a headless Service; HPAs hold CPU at
//! 60 %; the KEDA ScaledObject follows the topology's consumer group and input topic; the
//! topology configuration parses as the binary's own `TopologyConfig`; partitions are 8 per
//! broker node and enough for every worker; the ClickHouse schema equals the migration; the
//! admin listener has its own ClusterIP Service that nothing exposes, no Secret is committed and
//! each one used is documented, every ClickHouse client logs in with the password Secret, and
//! NetworkPolicies admit exactly the gateway, the topology and their jobs to the broker and
//! ClickHouse; the broker is nisshi with sqlite on its volume; `user.said` is created with its
//! retention. When
//! the `kubernetes-validate` venv (deploy/dev/lib.sh `install_k8s_validator`) is there, the
//! rendered manifests are also validated against the Kubernetes JSON schemas, strictly.
//! Finally the topology's entrypoint is run with a fake resolver and a fake binary.

use serde_yaml::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use switchboard_cli::config::TopologyConfig;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn k8s() -> PathBuf {
    root().join("deploy/k8s")
}

fn kubectl() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("KUBECTL") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join("kubectl"))
        .find(|candidate| candidate.is_file())
}

fn parse_documents(text: &str, origin: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{origin}: not YAML: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

use serde::Deserialize;

/// The rendered overlay, or (without kubectl) the base's resources read as they are.
fn render(overlay: &str) -> Vec<Value> {
    let dir = k8s().join("overlays").join(overlay);
    match kubectl() {
        Some(kubectl) => {
            let output = Command::new(&kubectl).arg("kustomize").arg(&dir).output().expect("run kubectl kustomize");
            assert!(output.status.success(), "kubectl kustomize {}: {}", dir.display(), String::from_utf8_lossy(&output.stderr));
            parse_documents(&String::from_utf8_lossy(&output.stdout), overlay)
        }
        None => {
            eprintln!("kubectl not found: checking the base's files without kustomize rendering (deploy/dev/lib.sh install_kubectl installs it)");
            read_base()
        }
    }
}

/// The base without kustomize: its resources, and its generated ConfigMaps built by hand.
fn read_base() -> Vec<Value> {
    let base = k8s().join("base");
    let kustomization: Value = serde_yaml::from_str(&std::fs::read_to_string(base.join("kustomization.yaml")).expect("kustomization")).expect("kustomization YAML");
    let mut docs = Vec::new();
    for resource in kustomization["resources"].as_sequence().expect("resources") {
        let file = base.join(resource.as_str().expect("resource path"));
        docs.extend(parse_documents(&std::fs::read_to_string(&file).expect("resource file"), &file.display().to_string()));
    }
    for generator in kustomization["configMapGenerator"].as_sequence().expect("configMapGenerator") {
        let mut data = serde_yaml::Mapping::new();
        for file in generator["files"].as_sequence().into_iter().flatten() {
            let path = base.join(file.as_str().expect("file"));
            let key = path.file_name().expect("file name").to_string_lossy().into_owned();
            data.insert(Value::from(key), Value::from(std::fs::read_to_string(&path).expect("generator file")));
        }
        for literal in generator["literals"].as_sequence().into_iter().flatten() {
            let (k, v) = literal.as_str().and_then(|l| l.split_once('=')).expect("KEY=VALUE literal");
            data.insert(Value::from(k), Value::from(v));
        }
        let mut cm = serde_yaml::Mapping::new();
        cm.insert("apiVersion".into(), "v1".into());
        cm.insert("kind".into(), "ConfigMap".into());
        let mut meta = serde_yaml::Mapping::new();
        meta.insert("name".into(), generator["name"].clone());
        cm.insert("metadata".into(), Value::Mapping(meta));
        cm.insert("data".into(), Value::Mapping(data));
        docs.push(Value::Mapping(cm));
    }
    docs
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or("")
}

fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or("")
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    v.as_mapping()
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

fn selects(selector: &BTreeMap<String, String>, pod_labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
}

fn find<'a>(docs: &'a [Value], kind_name: &str, object: &str) -> Option<&'a Value> {
    docs.iter().find(|d| kind(d) == kind_name && name(d) == object)
}

/// A generated ConfigMap by its base name (kustomize appends a content hash).
fn config_map<'a>(docs: &'a [Value], base_name: &str) -> &'a Value {
    docs.iter()
        .find(|d| kind(d) == "ConfigMap" && (name(d) == base_name || name(d).strip_prefix(base_name).is_some_and(|rest| rest.starts_with('-') && rest.len() == 11)))
        .unwrap_or_else(|| panic!("no ConfigMap {base_name}"))
}

fn env_of(container: &Value, key: &str) -> Option<String> {
    container["env"].as_sequence()?.iter().find(|e| e["name"].as_str() == Some(key))?["value"].as_str().map(String::from)
}

fn check_workloads(docs: &[Value], overlay: &str) {
    let workloads: Vec<&Value> = docs.iter().filter(|d| matches!(kind(d), "Deployment" | "StatefulSet")).collect();
    let names: Vec<&str> = workloads.iter().map(|w| name(w)).collect();
    for expected in ["broker", "clickhouse", "qdrant", "model-server", "switchboard-topology", "gateway"] {
        assert!(names.contains(&expected), "{overlay}: no workload {expected} (have {names:?})");
    }
    let pdbs: Vec<&Value> = docs.iter().filter(|d| kind(d) == "PodDisruptionBudget").collect();
    for w in &workloads {
        let what = format!("{overlay}: {} {}", kind(w), name(w));
        let pod_labels = labels(&w["spec"]["template"]["metadata"]["labels"]);
        let selector = labels(&w["spec"]["selector"]["matchLabels"]);
        assert!(selects(&selector, &pod_labels), "{what}: selector {selector:?} does not match its pod labels {pod_labels:?}");
        let pod = &w["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true), "{what}: pods must run as non-root");
        let containers = pod["containers"].as_sequence().unwrap_or_else(|| panic!("{what}: no containers"));
        for c in containers {
            let cname = c["name"].as_str().unwrap_or("?");
            for probe in ["readinessProbe", "livenessProbe"] {
                assert!(c[probe].is_mapping(), "{what}/{cname}: no {probe}");
            }
            for side in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    assert!(!c["resources"][side][resource].is_null(), "{what}/{cname}: no resources.{side}.{resource}");
                }
            }
            assert_eq!(c["securityContext"]["allowPrivilegeEscalation"].as_bool(), Some(false), "{what}/{cname}: privilege escalation allowed");
            assert!(c["image"].as_str().is_some_and(|i| !i.is_empty()), "{what}/{cname}: no image");
        }
        assert!(
            pdbs.iter().any(|p| selects(&labels(&p["spec"]["selector"]["matchLabels"]), &pod_labels)),
            "{what}: no PodDisruptionBudget selects its pods"
        );
        if kind(w) == "StatefulSet" {
            let service_name = w["spec"]["serviceName"].as_str().unwrap_or_else(|| panic!("{what}: no serviceName"));
            let service = find(docs, "Service", service_name).unwrap_or_else(|| panic!("{what}: serviceName {service_name} is not a Service"));
            assert_eq!(service["spec"]["clusterIP"].as_str(), Some("None"), "{what}: Service {service_name} is not headless");
            assert!(selects(&labels(&service["spec"]["selector"]), &pod_labels), "{what}: Service {service_name} does not select its pods");
        }
        // Every ConfigMap a pod mounts or reads exists in the render.
        for volume in pod["volumes"].as_sequence().into_iter().flatten() {
            if let Some(cm) = volume["configMap"]["name"].as_str() {
                assert!(find(docs, "ConfigMap", cm).is_some(), "{what}: mounts missing ConfigMap {cm}");
            }
        }
    }
    // The timely cluster rolls out as a whole (all pods deleted at once), never pod by pod.
    let topology = workloads.iter().find(|w| name(w) == "switchboard-topology").expect("topology workload");
    assert_eq!(topology["spec"]["updateStrategy"]["type"].as_str(), Some("OnDelete"), "{overlay}: the topology must not roll pod by pod");
    assert_eq!(topology["spec"]["podManagementPolicy"].as_str(), Some("Parallel"), "{overlay}: the topology's pods must start together");
    for service in docs.iter().filter(|d| kind(d) == "Service") {
        let selector = labels(&service["spec"]["selector"]);
        assert!(
            workloads.iter().any(|w| selects(&selector, &labels(&w["spec"]["template"]["metadata"]["labels"]))),
            "{overlay}: Service {} selects no workload",
            name(service)
        );
    }
    for pdb in &pdbs {
        let selector = labels(&pdb["spec"]["selector"]["matchLabels"]);
        assert!(
            workloads.iter().any(|w| selects(&selector, &labels(&w["spec"]["template"]["metadata"]["labels"]))),
            "{overlay}: PodDisruptionBudget {} selects no workload",
            name(pdb)
        );
    }
}

fn check_autoscaling(docs: &[Value], overlay: &str) {
    let hpas: Vec<&Value> = docs.iter().filter(|d| kind(d) == "HorizontalPodAutoscaler").collect();
    for target in ["gateway", "model-server"] {
        let hpa = hpas
            .iter()
            .find(|h| h["spec"]["scaleTargetRef"]["name"].as_str() == Some(target))
            .unwrap_or_else(|| panic!("{overlay}: no HPA for {target}"));
        let target_kind = hpa["spec"]["scaleTargetRef"]["kind"].as_str().unwrap_or("");
        assert!(find(docs, target_kind, target).is_some(), "{overlay}: HPA targets missing {target_kind} {target}");
        let cpu = hpa["spec"]["metrics"]
            .as_sequence()
            .into_iter()
            .flatten()
            .find(|m| m["resource"]["name"].as_str() == Some("cpu"))
            .unwrap_or_else(|| panic!("{overlay}: HPA {target} has no CPU metric"));
        assert_eq!(cpu["resource"]["target"]["averageUtilization"].as_u64(), Some(60), "{overlay}: HPA {target} is not at 60 % CPU");
        assert!(hpa["spec"]["minReplicas"].as_u64() <= hpa["spec"]["maxReplicas"].as_u64());
    }

    // The topology's configuration is the binary's own type (unknown fields are refused).
    let topology_cm = config_map(docs, "switchboard-topology");
    let config_text = topology_cm["data"]["config.yaml"].as_str().expect("config.yaml in the topology ConfigMap");
    let config: TopologyConfig = serde_yaml::from_str(config_text).unwrap_or_else(|e| panic!("{overlay}: topology config.yaml: {e}"));
    assert!(config.metrics_listen.ends_with(":9100") && config.metrics_listen.starts_with("0.0.0.0"), "/metrics must listen on the pod's address");

    let scaled = docs.iter().find(|d| kind(d) == "ScaledObject").unwrap_or_else(|| panic!("{overlay}: no KEDA ScaledObject"));
    assert_eq!(scaled["apiVersion"].as_str(), Some("keda.sh/v1alpha1"));
    let target = &scaled["spec"]["scaleTargetRef"];
    assert_eq!((target["kind"].as_str(), target["name"].as_str()), (Some("StatefulSet"), Some("switchboard-topology")));
    let trigger = scaled["spec"]["triggers"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|t| t["type"].as_str() == Some("kafka"))
        .unwrap_or_else(|| panic!("{overlay}: ScaledObject has no kafka trigger"));
    assert_eq!(trigger["metadata"]["consumerGroup"].as_str(), Some(config.group_id.as_str()), "ScaledObject must follow the topology's group");
    assert_eq!(trigger["metadata"]["topic"].as_str(), Some(config.input_topic.as_str()), "ScaledObject must follow the input topic");
    assert!(trigger["metadata"]["lagThreshold"].as_str().and_then(|l| l.parse::<u64>().ok()).is_some_and(|l| l > 0), "no lagThreshold");

    // Partitions: 8 per broker node, and enough for every worker of the largest cluster.
    let cluster = config_map(docs, "switchboard-cluster");
    let per_node: u64 = cluster["data"]["PARTITIONS_PER_NODE"].as_str().and_then(|v| v.parse().ok()).expect("PARTITIONS_PER_NODE");
    let nodes: u64 = cluster["data"]["BROKER_NODES"].as_str().and_then(|v| v.parse().ok()).expect("BROKER_NODES");
    assert_eq!(per_node, 8, "the contract: 8 partitions per broker node");
    let topology = find(docs, "StatefulSet", "switchboard-topology").expect("topology StatefulSet");
    let container = &topology["spec"]["template"]["spec"]["containers"][0];
    let workers: u64 = env_of(container, "WORKERS").and_then(|w| w.parse().ok()).expect("WORKERS");
    let max = scaled["spec"]["maxReplicaCount"].as_u64().expect("maxReplicaCount");
    let min = scaled["spec"]["minReplicaCount"].as_u64().expect("minReplicaCount");
    assert!(max * workers <= per_node * nodes, "{max} processes × {workers} workers exceed {} partitions: idle workers", per_node * nodes);
    assert_eq!(env_of(container, "MAX_CLUSTER_SIZE").and_then(|v| v.parse().ok()), Some(max), "MAX_CLUSTER_SIZE ≠ maxReplicaCount");
    assert_eq!(env_of(container, "MIN_CLUSTER_SIZE").and_then(|v| v.parse().ok()), Some(min), "MIN_CLUSTER_SIZE ≠ minReplicaCount");
    let replicas = topology["spec"]["replicas"].as_u64().expect("topology replicas");
    assert!((min..=max).contains(&replicas), "topology replicas {replicas} outside KEDA's {min}..={max}");
    let command = container["command"].as_sequence().expect("topology command");
    assert!(command.iter().any(|c| c.as_str().is_some_and(|c| c.ends_with("entrypoint.sh"))), "the topology runs its entrypoint");
    assert!(topology_cm["data"]["entrypoint.sh"].as_str().is_some_and(|e| e.contains("switchboard submit --hosts")));

    // The ClickHouse schema is the migrations, every one, byte for byte; there is one copy
    // (deploy/clickhouse/migrations links to the files kustomize reads).
    assert_eq!(
        std::fs::canonicalize(root().join("deploy/clickhouse/migrations")).expect("migrations folder"),
        std::fs::canonicalize(root().join("deploy/k8s/base/clickhouse")).expect("k8s schema folder"),
        "the migrations and the k8s schema are one folder"
    );
    let init = config_map(docs, "clickhouse-init");
    let mut migrations = 0;
    for entry in std::fs::read_dir(root().join("deploy/clickhouse/migrations")).expect("migrations folder") {
        let path = entry.expect("migration entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if !name.ends_with(".sql") {
            continue;
        }
        let migration = std::fs::read_to_string(&path).expect("migration");
        assert_eq!(init["data"][name.as_str()].as_str(), Some(migration.as_str()), "deploy/k8s/base/clickhouse/{name} differs from the migration");
        migrations += 1;
    }
    assert!(migrations >= 2, "the events and sessions migrations");
}

/// Whether a label selector (`matchLabels` and `matchExpressions` with In, NotIn, Exists,
/// DoesNotExist) selects pods with `pod_labels`. An empty selector selects every pod.
fn selector_matches(selector: &Value, pod_labels: &BTreeMap<String, String>) -> bool {
    let by_labels = labels(&selector["matchLabels"]).iter().all(|(k, v)| pod_labels.get(k) == Some(v));
    let by_expressions = selector["matchExpressions"].as_sequence().into_iter().flatten().all(|e| {
        let value = e["key"].as_str().and_then(|k| pod_labels.get(k));
        let listed = |v: &String| e["values"].as_sequence().into_iter().flatten().any(|x| x.as_str() == Some(v.as_str()));
        match e["operator"].as_str() {
            Some("In") => value.is_some_and(listed),
            Some("NotIn") => !value.is_some_and(listed),
            Some("Exists") => value.is_some(),
            Some("DoesNotExist") => value.is_none(),
            other => panic!("unknown selector operator {other:?}"),
        }
    });
    by_labels && by_expressions
}

/// Every pod template of the render (workloads, Jobs, CronJobs): (its object's name, the template).
fn pod_templates(docs: &[Value]) -> Vec<(String, &Value)> {
    docs.iter()
        .filter_map(|d| match kind(d) {
            "Deployment" | "StatefulSet" | "Job" => Some((name(d).to_string(), &d["spec"]["template"])),
            "CronJob" => Some((name(d).to_string(), &d["spec"]["jobTemplate"]["spec"]["template"])),
            _ => None,
        })
        .collect()
}

/// The admin listener, the secrets and the network policies (issue 13, item 6).
fn check_access(docs: &[Value], overlay: &str) {
    // The admin listener: its own ClusterIP Service, never the public one, never an Ingress.
    let gateway = find(docs, "Deployment", "gateway").expect("gateway Deployment");
    let gateway_pod = &gateway["spec"]["template"];
    let container = &gateway_pod["spec"]["containers"][0];
    assert_eq!(env_of(container, "SWITCHBOARD_GATEWAY_ADMIN_LISTEN").as_deref(), Some("0.0.0.0:8081"), "{overlay}: admin listener address");
    let ports: Vec<(&str, u64)> = container["ports"].as_sequence().into_iter().flatten().filter_map(|p| Some((p["name"].as_str()?, p["containerPort"].as_u64()?))).collect();
    assert!(ports.contains(&("admin", 8081)) && ports.contains(&("http", 8080)), "{overlay}: gateway ports {ports:?}");
    let admin = find(docs, "Service", "gateway-admin").unwrap_or_else(|| panic!("{overlay}: no Service gateway-admin"));
    assert!(matches!(admin["spec"]["type"].as_str(), None | Some("ClusterIP")), "{overlay}: gateway-admin must be ClusterIP");
    assert!(selects(&labels(&admin["spec"]["selector"]), &labels(&gateway_pod["metadata"]["labels"])), "{overlay}: gateway-admin does not select the gateway");
    for service in docs.iter().filter(|d| kind(d) == "Service") {
        let targets: Vec<String> = service["spec"]["ports"].as_sequence().into_iter().flatten().map(|p| serde_yaml::to_string(&p["targetPort"]).unwrap_or_default().trim().to_string()).collect();
        let to_admin = targets.iter().any(|t| t == "admin" || t == "8081") && selects(&labels(&service["spec"]["selector"]), &labels(&gateway_pod["metadata"]["labels"]));
        assert!(!to_admin || name(service) == "gateway-admin", "{overlay}: Service {} reaches the admin listener", name(service));
    }
    for ingress in docs.iter().filter(|d| kind(d) == "Ingress") {
        let text = serde_yaml::to_string(ingress).unwrap_or_default();
        assert!(!text.contains("gateway-admin"), "{overlay}: Ingress {} exposes the admin listener", name(ingress));
    }

    // Secrets: none committed; each one used is documented with `kubectl create secret`.
    assert!(!docs.iter().any(|d| kind(d) == "Secret"), "{overlay}: a Secret is rendered from the repository");
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let secret_at = |pod: &Value, path: &str| -> Option<String> {
        let c = &pod["spec"]["containers"][0];
        let mount = c["volumeMounts"].as_sequence()?.iter().find(|m| m["mountPath"].as_str().is_some_and(|mp| Path::new(path).parent() == Some(Path::new(mp))))?;
        let volume = pod["spec"]["volumes"].as_sequence()?.iter().find(|v| v["name"] == mount["name"])?;
        volume["secret"]["secretName"].as_str().map(String::from)
    };
    for (variable, secret) in [("SWITCHBOARD_USERS_FILE", "switchboard-gateway-users"), ("SWITCHBOARD_GATEWAY_RESUME_KEYS_FILE", "switchboard-gateway-resume-keys")] {
        let path = env_of(container, variable).unwrap_or_else(|| panic!("{overlay}: gateway has no {variable}"));
        assert_eq!(secret_at(gateway_pod, &path).as_deref(), Some(secret), "{overlay}: {variable}={path} is not a file of Secret {secret}");
    }
    let mut used = std::collections::BTreeSet::new();
    for (object, pod) in pod_templates(docs) {
        for volume in pod["spec"]["volumes"].as_sequence().into_iter().flatten() {
            if let Some(secret) = volume["secret"]["secretName"].as_str() {
                used.insert(secret.to_string());
            }
        }
        for c in pod["spec"]["containers"].as_sequence().into_iter().flatten() {
            for e in c["env"].as_sequence().into_iter().flatten() {
                let key = e["name"].as_str().unwrap_or("");
                assert!(!(key.contains("PASSWORD") || key.contains("SECRET")) || e["value"].is_null() || key.ends_with("_FILE"), "{overlay}: {object} sets {key} in plain text");
            }
            // Every client of ClickHouse logs in as `switchboard` with the password from the Secret.
            if env_of(c, "SWITCHBOARD_CLICKHOUSE_URL").is_some() {
                assert_eq!(env_of(c, "SWITCHBOARD_CLICKHOUSE_USER").as_deref(), Some("switchboard"), "{overlay}: {object}'s ClickHouse user");
                let file = env_of(c, "SWITCHBOARD_CLICKHOUSE_PASSWORD_FILE").unwrap_or_else(|| panic!("{overlay}: {object} has no ClickHouse password"));
                assert_eq!(secret_at(pod, &file).as_deref(), Some("switchboard-clickhouse"), "{overlay}: {object}'s ClickHouse password file");
            }
        }
    }
    for secret in &used {
        assert!(readme.contains(&format!("create secret generic {secret}")), "{overlay}: README does not say how to create Secret {secret}");
    }

    // ClickHouse: user switchboard's password from the Secret (through the environment), the
    // password-less default user only from inside the pod.
    let clickhouse = find(docs, "StatefulSet", "clickhouse").expect("clickhouse");
    let server = &clickhouse["spec"]["template"]["spec"]["containers"][0];
    let from_secret = server["env"].as_sequence().into_iter().flatten().find(|e| e["name"] == "SWITCHBOARD_CLICKHOUSE_PASSWORD").expect("ClickHouse password variable");
    assert_eq!(from_secret["valueFrom"]["secretKeyRef"]["name"].as_str(), Some("switchboard-clickhouse"));
    let users = config_map(docs, "clickhouse-users")["data"]["switchboard-users.xml"].as_str().expect("users.d override").to_string();
    assert!(users.contains(r#"<password from_env="SWITCHBOARD_CLICKHOUSE_PASSWORD"/>"#) && users.contains("<switchboard>"), "{users}");
    assert!(users.contains(r#"<networks replace="replace">"#) && !users.contains("<password></password>"), "{users}");
    assert!(server["volumeMounts"].as_sequence().into_iter().flatten().any(|m| m["mountPath"].as_str().is_some_and(|p| p.starts_with("/etc/clickhouse-server/users.d/"))));

    // Network policies: only the named clients reach the broker and ClickHouse.
    let policies: Vec<&Value> = docs.iter().filter(|d| kind(d) == "NetworkPolicy").collect();
    for (server, port, allowed) in [
        ("broker", 9092, vec!["create-topics", "gateway", "switchboard-topology"]),
        ("clickhouse", 8123, vec!["clickhouse-retention", "gateway", "switchboard-topology"]),
    ] {
        let server_pod = pod_templates(docs).into_iter().find(|(n, _)| n == server).expect("server workload").1;
        let server_labels = labels(&server_pod["metadata"]["labels"]);
        let guarding: Vec<&&Value> = policies.iter().filter(|p| selector_matches(&p["spec"]["podSelector"], &server_labels)).collect();
        assert!(!guarding.is_empty(), "{overlay}: no NetworkPolicy guards {server}");
        let mut reach = std::collections::BTreeSet::new();
        for policy in &guarding {
            let types: Vec<&str> = policy["spec"]["policyTypes"].as_sequence().into_iter().flatten().filter_map(|t| t.as_str()).collect();
            assert!(types.contains(&"Ingress"), "{overlay}: NetworkPolicy {} does not restrict ingress", name(policy));
            for rule in policy["spec"]["ingress"].as_sequence().into_iter().flatten() {
                let from = rule["from"].as_sequence().filter(|f| !f.is_empty()).unwrap_or_else(|| panic!("{overlay}: a rule of {} admits everyone", name(policy)));
                let ports: Vec<u64> = rule["ports"].as_sequence().into_iter().flatten().filter_map(|p| p["port"].as_u64()).collect();
                assert_eq!(ports, [port], "{overlay}: {} opens ports {ports:?}", name(policy));
                for peer in from {
                    assert!(peer["ipBlock"].is_null(), "{overlay}: {} admits an address block", name(policy));
                    if !peer["namespaceSelector"].is_null() {
                        // Another namespace: only KEDA's operator, for the lag it scales on.
                        assert_eq!(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"].as_str(), Some("keda"), "{overlay}: {}", name(policy));
                        assert_eq!(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"].as_str(), Some("keda-operator"));
                        assert_eq!(server, "broker", "{overlay}: only the broker is read by KEDA");
                        continue;
                    }
                    for (object, pod) in pod_templates(docs) {
                        if selector_matches(&peer["podSelector"], &labels(&pod["metadata"]["labels"])) {
                            reach.insert(object);
                        }
                    }
                }
            }
        }
        assert_eq!(reach.into_iter().collect::<Vec<_>>(), allowed, "{overlay}: pods that reach {server}");
    }
}

/// Validates rendered YAML against the Kubernetes schemas with kubernetes-validate, when installed.
fn schema_validate(overlay: &str) {
    let validator = std::env::var("SWITCHBOARD_K8S_VALIDATE").map(PathBuf::from).unwrap_or_else(|_| {
        let cache = std::env::var("SWITCHBOARD_CACHE").map(PathBuf::from).unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cache/switchboard")
        });
        cache.join("k8s-venv/bin/kubernetes-validate")
    });
    let Some(kubectl) = kubectl() else { return };
    if !validator.is_file() {
        eprintln!("{} not installed: schema validation skipped (deploy/dev/lib.sh install_k8s_validator)", validator.display());
        return;
    }
    let dir = std::env::temp_dir().join(format!("switchboard-k8s-{}-{overlay}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let rendered = dir.join("rendered.yaml");
    let output = Command::new(&kubectl).arg("kustomize").arg(k8s().join("overlays").join(overlay)).output().expect("kustomize");
    std::fs::write(&rendered, &output.stdout).expect("write render");
    let run = |file: &Path| Command::new(&validator).args(["--strict", "--quiet", "-k", "1.32.0"]).arg(file).output().expect("run kubernetes-validate");
    let result = run(&rendered);
    assert!(
        result.status.success(),
        "{overlay}: kubernetes-validate --strict failed:\n{}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    // The validator must be able to fail: a Deployment with a misspelt field is refused.
    let broken = dir.join("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 1\n  selector: {matchLabels: {a: b}}\n  \
         template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: x, image: x}]}\n",
    )
    .expect("write broken");
    assert!(!run(&broken).status.success(), "kubernetes-validate accepted a misspelt field: it checks nothing");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn overlays_render_and_hold_together() {
    for overlay in ["dev", "production"] {
        let docs = render(overlay);
        assert!(docs.len() >= 20, "{overlay}: only {} documents", docs.len());
        for doc in &docs {
            assert!(doc["apiVersion"].is_string() && !kind(doc).is_empty() && !name(doc).is_empty(), "{overlay}: incomplete document {doc:?}");
            if kind(doc) != "Namespace" && kubectl().is_some() {
                assert_eq!(doc["metadata"]["namespace"].as_str(), Some("switchboard"), "{overlay}: {} {} outside the namespace", kind(doc), name(doc));
            }
        }
        check_workloads(&docs, overlay);
        check_autoscaling(&docs, overlay);
        check_access(&docs, overlay);
        schema_validate(overlay);
    }
}

/// The topology's entrypoint, run with a fake `getent` (three pods resolve) and a fake
/// `switchboard` that records its arguments: process index from the pod name, hosts from DNS.
#[test]
fn entrypoint_takes_the_index_from_the_ordinal_and_the_hosts_from_dns() {
    let dir = std::env::temp_dir().join(format!("switchboard-entrypoint-{}", std::process::id()));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("dirs");
    let script = |path: &Path, text: &str| {
        std::fs::write(path, text).expect("write fake");
        Command::new("chmod").arg("+x").arg(path).status().expect("chmod");
    };
    script(&bin.join("getent"), "#!/bin/sh\ncase \"$2\" in sbt-[012].*) echo 10.0.0.1 \"$2\"; exit 0 ;; esac\nexit 2\n");
    script(&bin.join("switchboard"), &format!("#!/bin/sh\necho \"$@\" > {}\n", dir.join("args").display()));
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let run = |pod: &str| {
        Command::new("sh")
            .arg(k8s().join("base/topology/entrypoint.sh"))
            .env("PATH", &path)
            .env("POD_NAME", pod)
            .env("POD_NAMESPACE", "ns")
            .env("STATEFULSET", "sbt")
            .env("SERVICE", "svc")
            .env("MIN_CLUSTER_SIZE", "2")
            .env("HOSTS_FILE", dir.join("hosts"))
            .env("CONFIG_FILE", "/config.yaml")
            .env("SETTLE_SECONDS", "0")
            .env("RESIZE_CHECK_SECONDS", "0")
            .output()
            .expect("run entrypoint")
    };
    let output = run("sbt-1");
    assert!(output.status.success(), "entrypoint failed: {}", String::from_utf8_lossy(&output.stderr));
    let args = std::fs::read_to_string(dir.join("args")).expect("fake switchboard ran");
    assert_eq!(args.trim(), format!("submit --hosts {} --process 1 --workers 2 --config /config.yaml", dir.join("hosts").display()));
    let hosts = std::fs::read_to_string(dir.join("hosts")).expect("hosts file");
    assert_eq!(
        hosts.lines().collect::<Vec<_>>(),
        ["sbt-0.svc.ns.svc.cluster.local:2101", "sbt-1.svc.ns.svc.cluster.local:2101", "sbt-2.svc.ns.svc.cluster.local:2101"]
    );
    let bad = run("not-a-stateful-pod");
    assert_eq!(bad.status.code(), Some(2), "a pod name without an ordinal is refused");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The broker is nisshi (`nisshi broker`, the image of deploy/k8s/images/nisshi.Containerfile)
/// with its sqlite file in the working directory, which is the PersistentVolume.
#[test]
fn the_broker_is_nisshi_with_sqlite_on_its_volume() {
    for overlay in ["dev", "production"] {
        let docs = render(overlay);
        let broker = &find(&docs, "StatefulSet", "broker").expect("broker StatefulSet")["spec"]["template"]["spec"]["containers"][0];
        assert!(broker["image"].as_str().is_some_and(|i| i.contains("nisshi:0.8.1")), "{overlay}: {:?}", broker["image"]);
        let args: Vec<&str> = broker["args"].as_sequence().expect("args").iter().filter_map(Value::as_str).collect();
        assert_eq!((args[0], args.windows(2).find(|w| w[0] == "--storage-engine").map(|w| w[1])), ("broker", Some("sqlite://nisshi.db")), "{overlay}");
        let mounts = broker["volumeMounts"].as_sequence().expect("mounts");
        assert!(mounts.iter().any(|m| m["name"] == "data" && m["mountPath"] == broker["workingDir"]), "{overlay}: the sqlite file is not on the volume");
    }
}

/// The create-topics Job's script, run with a fake `nisshi` that records its arguments and
/// lists the topics it is given: only `user.said` is created with `cleanup.policy=delete` and
/// the retention of the cluster ConfigMap (README "Retention"), and a topic the broker lists
/// (by its exact name in nisshi's JSON) is not created again.
#[test]
fn the_topics_job_creates_user_said_with_its_retention() {
    let docs = render("dev");
    let cluster = config_map(&docs, "switchboard-cluster");
    let retention = cluster["data"]["SWITCHBOARD_USER_SAID_RETENTION_MS"].as_str().expect("retention in switchboard-cluster");
    assert_eq!(retention, "604800000", "the documented default: 7 days");
    let job = find(&docs, "Job", "create-topics").expect("create-topics Job");
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert!(container["image"].as_str().is_some_and(|i| i.starts_with("switchboard-nisshi:")), "{:?}", container["image"]);
    assert!(container["envFrom"].as_sequence().into_iter().flatten().any(|e| e["configMapRef"]["name"].as_str().is_some_and(|n| n.starts_with("switchboard-cluster"))));
    let script = container["args"][0].as_str().expect("the job's script");

    let dir = std::env::temp_dir().join(format!("switchboard-topics-job-{}", std::process::id()));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("dirs");
    let calls = dir.join("calls");
    std::fs::write(
        bin.join("nisshi"),
        format!("#!/bin/sh\necho \"$@\" >> {}\n[ \"$1 $2\" = \"topic list\" ] && printf '%s\\n' \"$FAKE_TOPICS\"\nexit 0\n", calls.display()),
    )
    .expect("fake nisshi");
    Command::new("chmod").arg("+x").arg(bin.join("nisshi")).status().expect("chmod");
    let creates = |listed: &str| -> Vec<String> {
        let _ = std::fs::remove_file(&calls);
        let output = Command::new("sh")
            .args(["-c", script])
            .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()))
            .env("PARTITIONS_PER_NODE", "8")
            .env("BROKER_NODES", "1")
            .env("SWITCHBOARD_USER_SAID_RETENTION_MS", retention)
            .env("FAKE_TOPICS", listed)
            .output()
            .expect("run the job's script");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let calls = std::fs::read_to_string(&calls).expect("nisshi was called");
        assert!(calls.lines().any(|l| l == "topic list --broker tcp://broker-0.broker:9092"), "{calls}");
        calls.lines().filter(|l| l.starts_with("topic create")).map(String::from).collect()
    };
    assert_eq!(
        creates("[]"),
        [
            "topic create user.said --partitions 8 --config cleanup.policy=delete --config retention.ms=604800000 --broker tcp://broker-0.broker:9092",
            "topic create bot.said --partitions 8 --broker tcp://broker-0.broker:9092",
            "topic create switchboard.dead-letter --partitions 8 --broker tcp://broker-0.broker:9092",
        ]
    );
    // bot.said exists; a topic whose name merely contains user.said does not count.
    let listed = r#"[{"error_code":0,"name":"bot.said","partitions":[]},{"error_code":0,"name":"test.user.said.1","partitions":[]}]"#;
    assert_eq!(
        creates(listed),
        [
            "topic create user.said --partitions 8 --config cleanup.policy=delete --config retention.ms=604800000 --broker tcp://broker-0.broker:9092",
            "topic create switchboard.dead-letter --partitions 8 --broker tcp://broker-0.broker:9092",
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
